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

/// Allocator of the per-worker tables. The table type is the allocator's
/// own (`Vec` on the heap, hugepage memory in the engine), so that every
/// access compiles to a plain slice access: the GW is generic over it.
pub trait TableAlloc {
    /// An owned table of `T`.
    type Mem<T: Copy + Send + 'static>: DerefMut<Target = [T]> + Send;
    /// `n` elements, each `fill`; `what` names the table in errors.
    fn alloc<T: Copy + Send + 'static>(
        &self,
        what: &str,
        n: usize,
        fill: T,
    ) -> Result<Self::Mem<T>, String>;
}

/// Tables on the heap (`Vec`).
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapAlloc;

impl TableAlloc for HeapAlloc {
    type Mem<T: Copy + Send + 'static> = Vec<T>;
    fn alloc<T: Copy + Send + 'static>(
        &self,
        _what: &str,
        n: usize,
        fill: T,
    ) -> Result<Vec<T>, String> {
        Ok(vec![fill; n])
    }
}
