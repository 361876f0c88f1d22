//! One deadline per key, ordered: O(log n) set / cancel / next expired.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

#[derive(Debug)]
pub(crate) struct Timers<T> {
    by_deadline: BTreeSet<(u64, T)>,
    by_key: HashMap<T, u64>,
}

impl<T: Ord + Hash + Clone> Timers<T> {
    pub(crate) fn new() -> Self {
        Timers {
            by_deadline: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }

    /// Sets (or moves) `key`'s deadline; `None` cancels it.
    pub(crate) fn set(&mut self, key: &T, deadline: Option<u64>) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_deadline.remove(&(old, key.clone()));
        }
        if let Some(d) = deadline {
            self.by_key.insert(key.clone(), d);
            self.by_deadline.insert((d, key.clone()));
        }
    }

    pub(crate) fn next(&self) -> Option<u64> {
        self.by_deadline.first().map(|(d, _)| *d)
    }

    /// Removes and returns a key whose deadline is at or before `now_ms`.
    pub(crate) fn pop_expired(&mut self, now_ms: u64) -> Option<(u64, T)> {
        let (d, _) = self.by_deadline.first()?;
        if *d > now_ms {
            return None;
        }
        let (d, key) = self.by_deadline.pop_first()?;
        self.by_key.remove(&key);
        Some((d, key))
    }

    pub(crate) fn get(&self, key: &T) -> Option<u64> {
        self.by_key.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_move_cancel_pop() {
        let mut t = Timers::new();
        t.set(&"a", Some(10));
        t.set(&"b", Some(5));
        assert_eq!(t.next(), Some(5));
        t.set(&"b", Some(20));
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.pop_expired(9), None);
        assert_eq!(t.pop_expired(10), Some((10, "a")));
        t.set(&"b", None);
        assert_eq!(t.next(), None);
        assert_eq!(t.get(&"b"), None);
    }
}
