//! The control protocol between pgw instances: how the management instance
//! (RADIUS + session manager) tells the gateway instances about sessions
//! (FIG. 6: session start notification, status change, session
//! termination notification).
//!
//! Transport: UDP datagrams. Each carries the **whole session table of the
//! receiving gateway** (not a delta), sent at once when it changes and again
//! every `resync` interval, so a lost datagram or a restarted gateway heals
//! by itself; the FIG. 6 event that caused the send travels with it for the
//! log. Format: one JSON document, a space, and the hex HMAC-SHA256 of the
//! JSON under the shared secret. The receiver checks the MAC, refuses a
//! `seq` not greater than the last one accepted from that sender epoch
//! (replays), and refuses messages older than 30 s.
//!
//! ```text
//! {"v":1,"epoch":<sender start, unix ms>,"seq":<n>,"ts":<unix ms>,"gateway":"gw1",
//!  "event":"session_start 0901 10.50.0.2",
//!  "sessions":[{"addr":"10.50.0.2","device":"0901","device_key":901,"active":true,"allowed":2}]}  <hmac>
//! ```
//! A table of more than [`CHUNK`] sessions is sent in parts (`table`, `part`,
//! `parts`); the receiver applies it when every part of the newest table
//! has arrived ([`Receiver::assemble`]); a lost part is healed by the next
//! resync.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Oldest message accepted.
pub const MAX_AGE_MS: i64 = 30_000;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SessionEntry {
    pub addr: Ipv4Addr,
    pub device: String,
    pub device_key: u64,
    pub active: bool,
    pub allowed: u64,
    /// The subscriber's IPv6 /64 (dual stack; NAT64), if it has one.
    #[serde(default)]
    pub prefix6: Option<std::net::Ipv6Addr>,
    /// The MAC of the LB the subscriber's NAS sits behind, when RADIUS
    /// reported the session at a NAS the profile maps to an entry point
    /// (`[[radius.nas]]`): the GW re-points the subscriber's connections
    /// when this changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_mac: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    pub v: u32,
    pub epoch: i64,
    pub seq: u64,
    pub ts: i64,
    pub gateway: String,
    pub event: String,
    /// The table this datagram is a part of (the `seq` of its first part),
    /// and which part of how many: a table larger than [`CHUNK`] entries
    /// travels in several datagrams and is applied once all arrived.
    #[serde(default)]
    pub table: u64,
    #[serde(default)]
    pub part: u32,
    #[serde(default = "one")]
    pub parts: u32,
    pub sessions: Vec<SessionEntry>,
}

fn one() -> u32 {
    1
}

/// Session entries per datagram (≈ 150 bytes each: well under 64 KiB).
pub const CHUNK: usize = 300;

fn mac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(body);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encode and sign.
pub fn encode(msg: &Message, secret: &[u8]) -> Vec<u8> {
    sign(&serde_json::to_vec(msg).expect("serializable"), secret)
}

/// A datagram of `body` signed with `secret`: the body, a space, the MAC.
pub fn sign(body: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.push(b' ');
    out.extend_from_slice(mac_hex(secret, body).as_bytes());
    out
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    Malformed,
    BadMac,
    Replay,
    Stale,
    WrongGateway,
}

/// A table being assembled: its sender's epoch and its id.
type TableId = (i64, u64);

/// The receiving end: verifies, refuses replays, assembles tables.
pub struct Receiver {
    secret: Vec<u8>,
    gateway: String,
    last: HashMap<i64, u64>,
    /// The table being assembled: (epoch, table id) and its parts.
    pending: Option<(TableId, Vec<Option<Vec<SessionEntry>>>)>,
    pub accepted: u64,
    pub rejected: HashMap<String, u64>,
}

impl Receiver {
    pub fn new(secret: &[u8], gateway: &str) -> Receiver {
        Receiver {
            secret: secret.to_vec(),
            gateway: gateway.into(),
            last: HashMap::new(),
            pending: None,
            accepted: 0,
            rejected: HashMap::new(),
        }
    }

    pub fn accept(&mut self, datagram: &[u8], now_unix_ms: i64) -> Result<Message, Reject> {
        let r = self.check(datagram, now_unix_ms);
        match &r {
            Ok(_) => self.accepted += 1,
            Err(e) => *self.rejected.entry(format!("{e:?}")).or_default() += 1,
        }
        r
    }

    /// Add an accepted message; the whole table once its last part is in.
    /// Parts of an older table than the one being assembled are ignored.
    pub fn assemble(&mut self, m: Message) -> Option<Vec<SessionEntry>> {
        let parts = m.parts.clamp(1, 10_000) as usize;
        let id = (m.epoch, m.table);
        let newer = match &self.pending {
            None => true,
            Some((cur, _)) => id.0 != cur.0 || id.1 > cur.1,
        };
        if newer {
            self.pending = Some((id, vec![None; parts]));
        }
        let (cur, slots) = self.pending.as_mut()?;
        if *cur != id || slots.len() != parts || m.part as usize >= parts {
            return None;
        }
        slots[m.part as usize] = Some(m.sessions);
        if slots.iter().all(Option::is_some) {
            let table = self
                .pending
                .take()?
                .1
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            return Some(table);
        }
        None
    }

    fn check(&mut self, datagram: &[u8], now_unix_ms: i64) -> Result<Message, Reject> {
        let sp = datagram
            .iter()
            .rposition(|&b| b == b' ')
            .ok_or(Reject::Malformed)?;
        let (body, mac) = (&datagram[..sp], &datagram[sp + 1..]);
        let want = mac_hex(&self.secret, body);
        // Constant-time comparison.
        if mac.len() != want.len()
            || mac
                .iter()
                .zip(want.as_bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                != 0
        {
            return Err(Reject::BadMac);
        }
        let m: Message = serde_json::from_slice(body).map_err(|_| Reject::Malformed)?;
        if m.v != 1 {
            return Err(Reject::Malformed);
        }
        if m.gateway != self.gateway {
            return Err(Reject::WrongGateway);
        }
        // abs_diff: a timestamp near i64::MIN or MAX must not overflow.
        if now_unix_ms.abs_diff(m.ts) > MAX_AGE_MS.unsigned_abs() {
            return Err(Reject::Stale);
        }
        let last = self.last.entry(m.epoch).or_insert(0);
        if m.seq <= *last {
            return Err(Reject::Replay);
        }
        *last = m.seq;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, ts: i64) -> Message {
        Message {
            v: 1,
            epoch: 7,
            seq,
            ts,
            gateway: "gw1".into(),
            event: "session_start".into(),
            table: seq,
            part: 0,
            parts: 1,
            sessions: vec![SessionEntry {
                addr: Ipv4Addr::new(10, 50, 0, 2),
                device: "0901".into(),
                device_key: 901,
                active: true,
                allowed: 2,
                prefix6: None,
                entry_mac: None,
            }],
        }
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let mut r = Receiver::new(b"s3cret", "gw1");
        let d = encode(&msg(1, 1000), b"s3cret");
        assert_eq!(r.accept(&d, 1000).unwrap(), msg(1, 1000));
        assert_eq!(
            r.accept(&d, 1000),
            Err(Reject::Replay),
            "the same datagram twice"
        );
        assert_eq!(
            r.accept(&encode(&msg(2, 1000), b"other"), 1000),
            Err(Reject::BadMac)
        );
        let mut tampered = encode(&msg(3, 1000), b"s3cret");
        let i = tampered.windows(4).position(|w| w == b"true").unwrap();
        tampered[i..i + 4].copy_from_slice(b"fals");
        assert_eq!(r.accept(&tampered, 1000), Err(Reject::BadMac));
        assert_eq!(
            r.accept(&encode(&msg(4, 1000), b"s3cret"), 1000 + MAX_AGE_MS + 1),
            Err(Reject::Stale)
        );
        let mut other = msg(5, 1000);
        other.gateway = "gw2".into();
        assert_eq!(
            r.accept(&encode(&other, b"s3cret"), 1000),
            Err(Reject::WrongGateway)
        );
        assert_eq!(r.accept(b"garbage", 1000), Err(Reject::Malformed));
        assert!(r.accept(&encode(&msg(6, 1000), b"s3cret"), 1000).is_ok());
        // A new sender epoch (a restarted management instance) starts over.
        let mut m = msg(1, 1000);
        m.epoch = 8;
        assert!(r.accept(&encode(&m, b"s3cret"), 1000).is_ok());
        assert_eq!(r.accepted, 3);
    }

    #[test]
    fn extreme_timestamps_are_stale_not_an_overflow() {
        let mut r = Receiver::new(b"s3cret", "gw1");
        for (i, ts) in [i64::MIN, i64::MAX, i64::MIN + 1].into_iter().enumerate() {
            let d = encode(&msg(i as u64 + 1, ts), b"s3cret");
            assert_eq!(r.accept(&d, 1000), Err(Reject::Stale), "ts {ts}");
        }
        let d = encode(&msg(8, i64::MAX), b"s3cret");
        assert_eq!(r.accept(&d, i64::MIN), Err(Reject::Stale));
        let d = encode(&msg(9, i64::MIN), b"s3cret");
        assert!(
            r.accept(&d, i64::MIN).is_ok(),
            "same instant, even at the limit"
        );
    }

    #[test]
    fn a_table_in_parts_is_applied_when_complete_and_old_parts_are_ignored() {
        let mut r = Receiver::new(b"s3cret", "gw1");
        let entry = |i: u8| SessionEntry {
            addr: Ipv4Addr::new(10, 50, 1, i),
            device: format!("d{i}"),
            device_key: i as u64,
            active: true,
            allowed: 1,
            prefix6: None,
            entry_mac: None,
        };
        let part = |table: u64, p: u32, n: u32, e: Vec<SessionEntry>| Message {
            table,
            part: p,
            parts: n,
            sessions: e,
            ..msg(table + p as u64, 1000)
        };
        assert_eq!(r.assemble(part(10, 0, 3, vec![entry(1), entry(2)])), None);
        assert_eq!(r.assemble(part(10, 2, 3, vec![entry(5)])), None);
        let t = r
            .assemble(part(10, 1, 3, vec![entry(3), entry(4)]))
            .unwrap();
        assert_eq!(
            t.iter().map(|e| e.addr.octets()[3]).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        // A newer table replaces a partial one; late parts of the old one do nothing.
        assert_eq!(r.assemble(part(20, 0, 2, vec![entry(7)])), None);
        assert_eq!(r.assemble(part(30, 0, 1, vec![entry(9)])).unwrap().len(), 1);
        assert_eq!(r.assemble(part(20, 1, 2, vec![entry(8)])), None);
        // An empty table is one part with no entries.
        assert_eq!(r.assemble(part(40, 0, 1, vec![])), Some(vec![]));
    }
}
