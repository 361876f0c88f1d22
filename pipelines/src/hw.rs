//! What the pipelines need from the machine but may not touch themselves
//! (they are `forbid(unsafe_code)` and do no I/O): a prefetch hint, and
//! memory for the big per-worker tables. The engine provides both (the CPU's
//! prefetch instruction; hugepage memory on the worker's NUMA socket, first
//! touched by the worker); tests and fuzzing use [`NoPrefetch`] and
//! [`HeapAlloc`].

use core::ops::DerefMut;

/// A hint to bring the cache line holding `r` closer (VPP's
/// `CLIB_PREFETCH`). Implementations only hint: they never fault, never
/// read or write what `r` points at, and may do nothing at all.
pub trait Prefetch {
    fn read<T>(&self, r: &T);
    /// The line will be written (the default is a read hint).
    #[inline(always)]
    fn write<T>(&self, r: &T) {
        self.read(r)
    }
}

/// No prefetching (tests, fuzzing, criterion on plain heap memory).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPrefetch;

impl Prefetch for NoPrefetch {
    #[inline(always)]
    fn read<T>(&self, _r: &T) {}
}

/// An owned table of `T`: a `Vec` on the heap, or hugepage memory the
/// engine allocated. Stages deref it once per burst, not per packet.
pub type Mem<T> = Box<dyn DerefMut<Target = [T]> + Send>;

/// Allocator of the per-worker tables.
pub trait TableAlloc {
    /// `n` elements, each `fill`; `what` names the table in errors.
    fn alloc<T: Copy + Send + 'static>(
        &self,
        what: &str,
        n: usize,
        fill: T,
    ) -> Result<Mem<T>, String>;
}

/// Tables on the heap (`Vec`).
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapAlloc;

impl TableAlloc for HeapAlloc {
    fn alloc<T: Copy + Send + 'static>(
        &self,
        _what: &str,
        n: usize,
        fill: T,
    ) -> Result<Mem<T>, String> {
        Ok(Box::new(vec![fill; n]))
    }
}
