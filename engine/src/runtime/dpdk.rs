//! The one module of pgw that calls DPDK: safe wrappers over `rte-sys`.
//!
//! Everything else in the engine goes through these types. Contract:
//! - C return codes become `Result<_, DpdkError>` with DPDK's own error text;
//! - an [`Mbuf`] is an owned packet buffer: dropping it frees it;
//! - a [`Burst`] is a fixed array of owned mbufs on the stack (no heap);
//!   `rx`/`tx`/ring operations move mbufs in and out of it, and whatever TX or
//!   a ring refuses is freed and reported, never leaked.
//!
//! Ownership rules, held by the types (capsule's port/queue handles are the
//! model):
//! - A [`PortId`] comes only from [`PortId::by_name`]; it is a shared,
//!   read-only handle (info, MAC, link, stats, RSS key/RETA), `Copy`, usable
//!   from any thread. Configuring, starting, stopping and closing need the
//!   [`Port`] that [`PortId::configure`] returns, once per port per process.
//! - Queue handles ([`RxQueue`], [`TxQueue`]) are made only by
//!   [`PortId::configure`], one per (port, queue), and taken out of the
//!   [`Port`] once. They are `Send` but neither `Sync` nor `Clone`: a queue
//!   is polled by the one thread that holds it (DPDK's rule for lock-free
//!   queues). Inside they are the plain `(port, queue)` pair of `u16`s.
//! - A ring is made with its modes and comes as its halves: a
//!   [`SpProducer`] (single producer: `Send`, not `Sync`, not `Clone`) or
//!   an [`MpProducer`] (multi-producer: `Send + Sync + Clone`), and one
//!   [`Consumer`] (single consumer: `Send`, not `Sync`, not `Clone`). The
//!   ring is freed when its last half is dropped.
//! - The mempool is created once and never freed: [`Mempool::new`] gives a
//!   `&'static Mempool`, so no [`Mbuf`] can outlive its pool (its memory
//!   goes only with [`eal_cleanup`], which is `unsafe` for that reason).
//! - [`Port::stop`], [`Port::close`] and [`eal_cleanup`] are `unsafe fn`s:
//!   their callers guarantee that no thread still polls (every worker lcore
//!   joined, every queue handle dropped or never used again).
//!
//! The guarantees, checked by the compiler (these must not compile):
//!
//! ```compile_fail,E0423
//! // A port id is made only by `PortId::by_name`.
//! let p = pgw_engine::runtime::dpdk::PortId(3);
//! ```
//! ```compile_fail,E0423
//! // An lcore id is one EAL enabled: made only by `lcores`.
//! let l = pgw_engine::runtime::dpdk::LcoreId(3);
//! ```
//! ```compile_fail,E0451
//! // A queue handle is made only by `PortId::configure`.
//! let q = pgw_engine::runtime::dpdk::TxQueue { port: 0, queue: 0, _thread: Default::default() };
//! ```
//! ```compile_fail,E0277
//! // A TX queue is used by one thread: it is not `Sync` ...
//! fn sync<T: Sync>() {}
//! sync::<pgw_engine::runtime::dpdk::TxQueue>();
//! ```
//! ```compile_fail,E0277
//! // ... and there is only one of it.
//! fn clone<T: Clone>() {}
//! clone::<pgw_engine::runtime::dpdk::TxQueue>();
//! ```
//! ```compile_fail,E0277
//! fn sync<T: Sync>() {}
//! sync::<pgw_engine::runtime::dpdk::RxQueue>();
//! ```
//! ```compile_fail,E0277
//! // The single consumer and single producer of a ring are not `Sync`.
//! fn sync<T: Sync>() {}
//! sync::<pgw_engine::runtime::dpdk::Consumer>();
//! ```
//! ```compile_fail,E0277
//! fn sync<T: Sync>() {}
//! sync::<pgw_engine::runtime::dpdk::SpProducer>();
//! ```
//! ```compile_fail,E0277
//! fn clone<T: Clone>() {}
//! clone::<pgw_engine::runtime::dpdk::SpProducer>();
//! ```
//! ```compile_fail,E0133
//! // Stopping a port, or the EAL, is `unsafe` (workers may still poll).
//! fn f(p: &mut pgw_engine::runtime::dpdk::Port) { p.stop() }
//! ```
//! ```compile_fail,E0133
//! pgw_engine::runtime::dpdk::eal_cleanup();
//! ```
//!
//! And the same properties, stated positively, do compile (so the checks
//! above fail for the reason they state, not a typo):
//!
//! ```
//! use pgw_engine::runtime::dpdk::*;
//! fn send<T: Send>() {}
//! fn sync<T: Sync>() {}
//! fn clone<T: Clone>() {}
//! send::<TxQueue>();
//! send::<RxQueue>();
//! send::<Consumer>();
//! send::<SpProducer>();
//! send::<MpProducer>();
//! sync::<MpProducer>();
//! clone::<MpProducer>();
//! send::<Mbuf>();
//! sync::<Mempool>();
//! sync::<PortId>();
//! fn by_name() -> Result<PortId, DpdkError> { PortId::by_name("net_null0") }
//! fn stop(p: &mut Port) { unsafe { p.stop() } }
//! fn cleanup() { unsafe { eal_cleanup() } }
//! let _ = (by_name, stop, cleanup);
//! ```

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr::NonNull;

use arrayvec::ArrayVec;
use pgw_pipelines::{Pkt, PortIdx};
use rte_sys as sys;

pub use pgw_pipelines::MAX_BURST;

#[derive(Debug, Clone)]
pub struct DpdkError {
    pub what: String,
    pub code: i32,
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (error {})",
            self.what,
            strerror(self.code),
            self.code
        )
    }
}
impl std::error::Error for DpdkError {}

fn strerror(code: i32) -> String {
    let code = code.abs();
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string for any value.
    unsafe { CStr::from_ptr(sys::rte_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

fn rte_errno() -> i32 {
    // SAFETY: reads DPDK's per-thread errno.
    unsafe { sys::shim_errno() }
}

fn check(ret: i32, what: impl FnOnce() -> String) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(DpdkError {
            what: what(),
            code: ret,
        })
    } else {
        Ok(ret)
    }
}

fn cstring(s: &str) -> Result<CString, DpdkError> {
    CString::new(s).map_err(|_| DpdkError {
        what: format!("name {s:?} contains a NUL byte"),
        code: -22,
    })
}

// ---------------------------------------------------------------- EAL

/// Initialise the EAL with `args` (argv[0] included). Once per process.
pub fn eal_init(args: &[String]) -> Result<(), DpdkError> {
    let cargs: Vec<CString> = args.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
    let mut argv: Vec<*mut libc::c_char> = cargs.iter().map(|c| c.as_ptr() as *mut _).collect();
    // SAFETY: argv points at NUL-terminated strings that outlive the call;
    // DPDK may permute argv but does not keep it.
    let ret = unsafe { sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
    if ret < 0 {
        return Err(DpdkError {
            what: "rte_eal_init".into(),
            code: -rte_errno(),
        });
    }
    Ok(())
}

/// Release EAL resources: hugepage memory (the mempool's among it), vdevs,
/// EAL's threads.
///
/// # Safety
///
/// Called once, on the main thread, after [`eal_init`] and after:
/// - every job started by [`launch`] returned and was joined by
///   [`wait_lcore`];
/// - every port was stopped and closed ([`Port::stop`], [`Port::close`]);
/// - no [`Mbuf`], [`Burst`] holding mbufs, ring half, queue handle or
///   [`HugeArray`] is used again: their memory is gone (the `&'static`
///   [`Mempool`] too: `'static` means "until here").
///
/// No DPDK function is called afterwards.
pub unsafe fn eal_cleanup() {
    // SAFETY: the caller's contract above.
    unsafe {
        sys::rte_eal_cleanup();
    }
}

/// Serve `dpdk-dumpcap` (a secondary process): it asks over DPDK's
/// multi-process channel, and only then are RX/TX callbacks installed on
/// the ports it captures (removed when it stops). Needs a shared
/// configuration (not `--in-memory`, not `--no-shconf`).
pub fn pdump_init() -> Result<(), DpdkError> {
    // SAFETY: called once after rte_eal_init, on the main thread.
    let ret = unsafe { sys::rte_pdump_init() };
    check(ret, || "rte_pdump_init".into()).map(|_| ())
}

/// Stop serving `dpdk-dumpcap` (before [`eal_cleanup`]).
pub fn pdump_uninit() {
    // SAFETY: after pdump_init; the workers have stopped.
    unsafe {
        sys::rte_pdump_uninit();
    }
}

/// DPDK's version string, e.g. "DPDK 22.11.11".
pub fn version() -> String {
    // SAFETY: static string.
    unsafe { CStr::from_ptr(sys::rte_version()) }
        .to_string_lossy()
        .into_owned()
}

/// An EAL logical core: only from [`lcores`] (an id EAL enabled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LcoreId(u32);

impl LcoreId {
    /// The EAL lcore id.
    #[inline]
    pub fn id(self) -> u32 {
        self.0
    }
}

/// Every enabled lcore, main first.
pub fn lcores() -> Vec<LcoreId> {
    // SAFETY: EAL is initialised before any caller gets here; the iteration
    // functions only read EAL's lcore table.
    unsafe {
        let main = sys::rte_get_main_lcore();
        let mut v = vec![LcoreId(main)];
        let mut i = sys::rte_get_next_lcore(u32::MAX, 1, 0);
        while i < sys::RTE_MAX_LCORE {
            v.push(LcoreId(i));
            i = sys::rte_get_next_lcore(i, 1, 0);
        }
        v
    }
}

/// The calling thread's lcore id (`u32::MAX` on a non-EAL thread).
pub fn current_lcore() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { sys::shim_lcore_id() }
}

/// The NUMA socket of the calling thread (its lcore's).
pub fn current_socket() -> i32 {
    // SAFETY: reads a thread-local set by EAL.
    let s = unsafe { sys::rte_socket_id() } as i32;
    if s < 0 || s as u32 == u32::MAX {
        0
    } else {
        s
    }
}

/// The OS CPU an lcore runs on.
pub fn lcore_cpu(l: LcoreId) -> i32 {
    // SAFETY: reads EAL's lcore table.
    unsafe { sys::rte_lcore_to_cpu_id(l.0 as i32) }
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// The lcore entry point of [`launch`].
///
/// # Safety
///
/// `arg` is the `Box<Job>` that `launch` turned into a raw pointer for this
/// one call; DPDK passes it exactly once.
unsafe extern "C" fn trampoline(arg: *mut libc::c_void) -> i32 {
    // SAFETY: `arg` is the Box<Job> leaked by `launch` for this call only.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    job()
}

/// Run `f` on worker lcore `l` (not the main lcore). Returns at once.
pub fn launch(l: LcoreId, f: impl FnOnce() -> i32 + Send + 'static) -> Result<(), DpdkError> {
    let job: Box<Job> = Box::new(Box::new(f));
    let raw = Box::into_raw(job) as *mut libc::c_void;
    // SAFETY: the trampoline takes ownership of `raw` exactly once; if the
    // launch fails we take it back here.
    let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), raw, l.0) };
    if ret < 0 {
        // SAFETY: not consumed by DPDK.
        drop(unsafe { Box::from_raw(raw as *mut Job) });
        return Err(DpdkError {
            what: format!("rte_eal_remote_launch on lcore {}", l.0),
            code: ret,
        });
    }
    Ok(())
}

/// Wait for the job on lcore `l` to return; its return value.
pub fn wait_lcore(l: LcoreId) -> i32 {
    // SAFETY: blocks until the lcore is idle.
    unsafe { sys::rte_eal_wait_lcore(l.0) }
}

/// Time-stamp counter (one `rdtsc`).
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the TSC.
    unsafe { sys::shim_rdtsc() }
}

/// TSC ticks per second, as measured by EAL.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init.
    unsafe { sys::rte_get_tsc_hz() }
}

// ---------------------------------------------------------------- mempool

/// A pktmbuf pool. Created once and never freed ([`Mempool::new`] gives a
/// `&'static`): every [`Mbuf`] is taken from a pool that outlives it, and
/// the RX queues set up with it may fill from it until the process ends.
/// Its memory goes with [`eal_cleanup`].
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
}
// SAFETY: the pool is never freed (no `Drop`), so the pointer stays valid on
// any thread. `rte_pktmbuf_pool_create` uses the default ops (`ring_mp_mc`):
// get and put are multi-producer/multi-consumer safe; the per-lcore cache
// is touched only by the thread of that lcore (EAL runs one thread per
// lcore) and bypassed on non-EAL threads (the management thread). The
// counts read by `in_use`/`available` are snapshots.
unsafe impl Send for Mempool {}
// SAFETY: as for `Send`: every method takes `&self` and is MT-safe.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `n` mbufs of `data_room` bytes (headroom included), `cache` per lcore.
    /// The pool lives until the process ends (it is never freed).
    pub fn new(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<&'static Mempool, DpdkError> {
        let cname = cstring(name)?;
        // SAFETY: valid C string; DPDK copies the name.
        let p =
            unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(p)
            .map(|ptr| &*Box::leak(Box::new(Mempool { ptr })))
            .ok_or_else(|| DpdkError {
                what: format!("rte_pktmbuf_pool_create({name}, {n} mbufs)"),
                code: -rte_errno(),
            })
    }
    /// Mbufs currently taken from the pool (in rings, queues, bursts).
    pub fn in_use(&self) -> u32 {
        // SAFETY: pool is alive.
        unsafe { sys::shim_mempool_in_use(self.ptr.as_ptr()) }
    }
    pub fn available(&self) -> u32 {
        // SAFETY: pool is alive.
        unsafe { sys::shim_mempool_avail(self.ptr.as_ptr()) }
    }
    /// Allocate one mbuf (data length 0).
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: pool is alive; a non-null result is a fresh mbuf we own.
        NonNull::new(unsafe { sys::shim_pktmbuf_alloc(self.ptr.as_ptr()) }).map(Mbuf)
    }
    fn raw(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

// ---------------------------------------------------------------- mbuf

/// One owned packet buffer. Dropping it returns it to its pool, which is
/// never freed (see [`Mempool`]).
pub struct Mbuf(NonNull<sys::rte_mbuf>);
// SAFETY: an `Mbuf` is the only handle to its buffer (made from an alloc,
// an RX burst or a dequeue, each handing over ownership; never copied), so
// moving it moves the ownership; freeing from any thread is MT-safe (see
// `Mempool`'s `Send`). It is not `Sync`: `&Mbuf` gives no shared mutation,
// but nothing needs it.
unsafe impl Send for Mbuf {}

impl Mbuf {
    #[inline]
    fn m(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.0.as_ref() }
    }
    /// Length of the frame in the first segment (all of it unless chained).
    #[inline]
    pub fn len(&self) -> usize {
        self.m().data_len as usize
    }
    /// Length of the whole frame, every segment of a chain.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.m().pkt_len as usize
    }
    /// Append the chain `tail` to this one (`rte_pktmbuf_chain`): one frame
    /// of both; `tail` back if the chain would be too long (segments or
    /// bytes).
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        // SAFETY: both are owned, distinct mbufs; on success the head owns
        // the tail's segments (freed with it), so the tail's handle is
        // given up without freeing.
        let ret = unsafe { sys::shim_pktmbuf_chain(self.0.as_ptr(), tail.0.as_ptr()) };
        if ret != 0 {
            return Err(tail);
        }
        let _ = tail.into_raw();
        Ok(())
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of segments (more than 1: a chain).
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.m().nb_segs
    }
    /// DPDK port id the mbuf arrived on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.m().port
    }
    /// Record the DPDK port the frame arrived on (not every PMD sets it).
    #[inline]
    pub fn set_port(&mut self, port: PortId) {
        // SAFETY: we own the mbuf.
        unsafe { (*self.0.as_ptr()).port = port.0 }
    }
    /// The writable room from the first byte of the frame to the buffer end.
    #[inline]
    pub fn room_mut(&mut self) -> &mut [u8] {
        // SAFETY: single-segment mbuf that we own: [buf_addr + data_off,
        // buf_addr + buf_len) is its data area, valid and not aliased.
        unsafe { room(self.0.as_ptr()) }
    }
    /// Set the frame length (clamped to the room).
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        // SAFETY: we own the mbuf.
        unsafe { set_len(self.0.as_ptr(), len) }
    }
    /// Replace the contents with `bytes`; false if they do not fit.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        let room = self.room_mut();
        if bytes.len() > room.len() {
            return false;
        }
        room[..bytes.len()].copy_from_slice(bytes);
        self.set_len(bytes.len());
        true
    }
    /// The frame's bytes.
    pub fn frame(&mut self) -> &[u8] {
        let n = self.len();
        &self.room_mut()[..n]
    }
    fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own it; freeing returns it to its pool.
        unsafe { sys::shim_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// The writable room of a single-segment mbuf, from the frame's first byte.
///
/// # Safety
///
/// `m` is a valid single-segment mbuf the caller owns, and no other
/// reference to its data is alive while the slice (of the caller's chosen
/// lifetime `'a`, not longer than the ownership) is.
#[inline]
unsafe fn room<'a>(m: *mut sys::rte_mbuf) -> &'a mut [u8] {
    // SAFETY: caller guarantees `m` is a valid single-segment mbuf it owns.
    unsafe {
        let mb = &*m;
        let off = mb.data_off as usize;
        let len = (mb.buf_len as usize).saturating_sub(off);
        std::slice::from_raw_parts_mut((mb.buf_addr as *mut u8).add(off), len)
    }
}

/// The whole buffer of an mbuf (of a chain, its first segment): headroom,
/// data, tailroom.
///
/// # Safety
///
/// As for [`room`]: `m` is a valid mbuf the caller owns and the slice is
/// its only reference to the buffer for `'a`.
#[inline]
unsafe fn buffer<'a>(m: *mut sys::rte_mbuf) -> &'a mut [u8] {
    // SAFETY: caller guarantees `m` is a valid mbuf it owns (of a chain,
    // the first segment): [buf_addr, buf_addr + buf_len) is its buffer,
    // valid and not aliased.
    unsafe {
        let mb = &*m;
        std::slice::from_raw_parts_mut(mb.buf_addr as *mut u8, mb.buf_len as usize)
    }
}

/// Set the data and packet length of an mbuf (clamped): the frame is then
/// the first `len` bytes of its first segment, the others of a chain freed.
///
/// # Safety
///
/// `m` is a valid mbuf the caller owns, with no reference to its header
/// (or to a later segment) alive.
#[inline]
unsafe fn set_len(m: *mut sys::rte_mbuf, len: usize) {
    // SAFETY: caller owns `m`, and through it its later segments.
    unsafe {
        let mb = &mut *m;
        if !mb.next.is_null() {
            sys::shim_pktmbuf_free(mb.next);
            mb.next = std::ptr::null_mut();
            mb.nb_segs = 1;
        }
        let max = (mb.buf_len as usize).saturating_sub(mb.data_off as usize);
        let len = len.min(max);
        mb.data_len = len as u16;
        mb.pkt_len = len as u32;
    }
}

/// A fixed array of owned mbufs, on the stack. Dropping it frees what it holds.
pub struct Burst {
    ptrs: [*mut sys::rte_mbuf; MAX_BURST],
    len: usize,
}
// SAFETY: the first `len` pointers are owned mbufs (see `Mbuf`'s `Send`),
// the rest are unused; nothing else refers to them. Not `Sync` (raw
// pointers), and nothing needs it.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    pub const fn new() -> Self {
        Burst {
            ptrs: [std::ptr::null_mut(); MAX_BURST],
            len: 0,
        }
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }
    #[inline]
    pub fn room(&self) -> usize {
        MAX_BURST - self.len
    }

    /// Append up to `max` packets received on `queue`; how many came.
    #[inline]
    pub fn rx(&mut self, queue: &RxQueue, max: usize) -> usize {
        let n = max.min(self.room());
        // SAFETY: the array has room for `n` pointers; DPDK writes owned
        // mbufs. `queue` is a set-up RX queue of a configured port, polled
        // only by this thread (the handle is neither `Sync` nor `Clone`).
        let got = unsafe {
            sys::shim_rx_burst(
                queue.port,
                queue.queue,
                self.ptrs.as_mut_ptr().add(self.len),
                n as u16,
            )
        };
        self.len += got as usize;
        got as usize
    }

    /// Transmit everything on `queue`. Returns (sent, freed): what the
    /// queue refused is freed here (the caller counts it as `tx_full`).
    #[inline]
    pub fn tx(&mut self, queue: &TxQueue) -> (usize, usize) {
        if self.len == 0 {
            return (0, 0);
        }
        // SAFETY: the first `len` pointers are owned mbufs; DPDK takes the
        // first `sent` of them. `queue` is a set-up TX queue of a configured
        // port, used only by this thread (not `Sync`, not `Clone`).
        let sent = unsafe {
            sys::shim_tx_burst(
                queue.port,
                queue.queue,
                self.ptrs.as_mut_ptr(),
                self.len as u16,
            )
        } as usize;
        self.free_from(sent)
    }

    /// Enqueue everything on the ring of `producer` (a [`SpProducer`] or an
    /// [`MpProducer`]). Returns (enqueued, freed).
    #[inline]
    pub fn enqueue<M>(&mut self, producer: &Producer<M>) -> (usize, usize) {
        if self.len == 0 {
            return (0, 0);
        }
        // SAFETY: as for `tx`; the ring takes ownership of the enqueued
        // ones. The ring is alive (the producer keeps it) and its producer
        // mode holds: a single-producer ring has one `SpProducer`, which is
        // not `Sync`, so only its holder's thread enqueues.
        let sent = unsafe {
            sys::shim_ring_enqueue_burst(
                producer.ptr.as_ptr(),
                self.ptrs.as_ptr() as *const *mut libc::c_void,
                self.len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        self.free_from(sent)
    }

    /// The end of [`Burst::tx`] and [`Burst::enqueue`]: the first `sent`
    /// mbufs were taken, the rest is freed here; the burst is empty after.
    /// Returns (sent, freed).
    #[inline]
    fn free_from(&mut self, sent: usize) -> (usize, usize) {
        let freed = self.len - sent;
        if freed > 0 {
            // SAFETY: the pointers from `sent` to `len` are owned mbufs
            // nobody took.
            unsafe { sys::shim_pktmbuf_free_bulk(self.ptrs.as_mut_ptr().add(sent), freed as u32) };
        }
        self.len = 0;
        (sent, freed)
    }

    /// Append up to `max` mbufs dequeued from the ring of `consumer`.
    #[inline]
    pub fn dequeue(&mut self, consumer: &Consumer, max: usize) -> usize {
        self.dequeue_raw(consumer.ptr, max)
    }

    /// [`Burst::dequeue`] from `ring`, of which the caller is the only
    /// consumer (it holds the ring's `Consumer`, or the last half is gone).
    #[inline(always)]
    fn dequeue_raw(&mut self, ring: NonNull<sys::rte_ring>, max: usize) -> usize {
        let n = max.min(self.room());
        // SAFETY: the ring holds owned mbufs (only `Burst::enqueue` and the
        // net_ring PMD put anything on the rings we hold); we take
        // ownership of those we get. The ring is single-consumer and
        // `consumer` is its one consumer, not `Sync`: only this thread
        // dequeues.
        let got = unsafe {
            sys::shim_ring_dequeue_burst(
                ring.as_ptr(),
                self.ptrs.as_mut_ptr().add(self.len) as *mut *mut libc::c_void,
                n as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        self.len += got;
        got
    }

    /// Free, in place, every mbuf longer than `max_frame` bytes, and every
    /// chain (a frame a PMD received over several mbufs) unless `chains`
    /// (the ports were configured to receive and send them); the others
    /// keep their order. Returns how many were freed (the caller counts
    /// them `oversize`) and how many chains were kept. Reads only the mbuf
    /// headers the PMD just wrote.
    #[inline]
    pub fn free_oversize(&mut self, max_frame: usize, chains: bool) -> (usize, usize) {
        let (mut kept, mut chained) = (0, 0);
        for i in 0..self.len {
            let p = self.ptrs[i];
            // SAFETY: the first `len` pointers are owned mbufs.
            let (segs, len) = unsafe { ((*p).nb_segs, (*p).pkt_len as usize) };
            if len <= max_frame && (segs == 1 || chains) {
                self.ptrs[kept] = p;
                kept += 1;
                chained += (segs > 1) as usize;
            } else {
                // SAFETY: owned, and no longer in the array's first `kept`
                // (freeing a chain frees every segment).
                unsafe { sys::shim_pktmbuf_free(p) };
            }
        }
        let freed = self.len - kept;
        self.len = kept;
        (freed, chained)
    }

    /// Free every mbuf held, in one bulk call.
    #[inline]
    pub fn free(&mut self) {
        if self.len > 0 {
            // SAFETY: the first `len` pointers are owned mbufs.
            unsafe { sys::shim_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Append one mbuf; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Take every mbuf out, in order.
    #[inline]
    pub fn drain(&mut self) -> Drain<'_> {
        let n = self.len;
        self.len = 0;
        Drain { b: self, i: 0, n }
    }

    /// Run `f` over zero-copy views of every frame (the pipeline's input).
    /// The arrival port is `arrival` for a burst read from one port, else the
    /// mbuf's own `port` field mapped through `port_of` (DPDK port id → the
    /// engine's port index): handed-off mbufs carry it (see [`Mbuf::set_port`]).
    /// Each view is the whole buffer with the mbuf's headroom before the
    /// frame, so a stage may grow the frame at the front; the frames'
    /// offsets and lengths as `f` leaves them are written back to the mbufs.
    /// A chain (multi-segment mbuf) is its first segment, with the bytes of
    /// the others as the view's tail ([`Pkt::tail`]); a stage that set a new
    /// length ended the frame in the first segment, and the others are
    /// freed here.
    #[inline]
    pub fn with_pkts<R>(
        &mut self,
        port_of: &[PortIdx],
        arrival: Option<PortIdx>,
        f: impl FnOnce(&mut [Pkt<'_>]) -> R,
    ) -> R {
        let mut at = [(0u16, 0u16, false); MAX_BURST];
        let r;
        {
            let mut views: ArrayVec<Pkt<'_>, MAX_BURST> = ArrayVec::new();
            for &p in &self.ptrs[..self.len] {
                // SAFETY: distinct owned mbufs: their buffers do not
                // overlap, so the mutable slices do not alias; the borrow of
                // `self` keeps them alive.
                let (buf, off, len, tail, port) = unsafe {
                    let mb = &*p;
                    let len = mb.data_len as usize;
                    // (a chain's later segments: `pkt_len` counts them all)
                    let tail = if mb.nb_segs > 1 {
                        (mb.pkt_len as usize).saturating_sub(len)
                    } else {
                        0
                    };
                    (buffer(p), mb.data_off as usize, len, tail, mb.port)
                };
                let idx = arrival
                    .unwrap_or_else(|| port_of.get(port as usize).copied().unwrap_or(PortIdx::MAX));
                views.push(Pkt::chained(buf, off, len, tail, idx));
            }
            r = f(&mut views);
            for (i, v) in views.iter().enumerate() {
                at[i] = (v.headroom() as u16, v.len() as u16, v.tail() > 0);
            }
        }
        for (i, &(off, len, keeps_tail)) in at.iter().enumerate().take(self.len) {
            // SAFETY: owned mbufs; the views are gone. A chain's later
            // segments are owned through its first: freed once, unlinked.
            unsafe {
                let mb = &mut *self.ptrs[i];
                let tail = mb.pkt_len.saturating_sub(mb.data_len as u32);
                mb.data_off = off;
                mb.data_len = len;
                if keeps_tail {
                    mb.pkt_len = len as u32 + tail;
                } else {
                    if !mb.next.is_null() {
                        sys::shim_pktmbuf_free(mb.next);
                        mb.next = std::ptr::null_mut();
                        mb.nb_segs = 1;
                    }
                    mb.pkt_len = len as u32;
                }
            }
        }
        r
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the first `len` pointers are owned mbufs.
            unsafe { sys::shim_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
        }
    }
}

/// Owned mbufs taken out of a [`Burst`]; any not taken are freed on drop.
pub struct Drain<'a> {
    b: &'a mut Burst,
    i: usize,
    n: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;
    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.i == self.n {
            return None;
        }
        let p = self.b.ptrs[self.i];
        self.i += 1;
        // SAFETY: owned, non-null mbuf pointer moved out exactly once.
        Some(Mbuf(unsafe { NonNull::new_unchecked(p) }))
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

// ---------------------------------------------------------------- rings

/// A DPDK ring of mbufs (lock-free), used for worker → worker handoff and
/// worker ↔ management thread traffic. It is reached only through its
/// halves ([`Producer`], [`Consumer`]), made with it by [`Ring::mpsc`] or
/// [`Ring::spsc`]; the ring is freed (mbufs left in it too) when the last
/// half is dropped.
pub struct Ring {
    ptr: NonNull<sys::rte_ring>,
    /// Made by us (freed on drop), not looked up.
    owned: bool,
}

// SAFETY: a `Ring` has no method: the halves use the pointer under their
// own rules, and `Ring` only frees the ring in `Drop`, which runs once, on
// whichever thread drops the last half, when nobody uses the ring any more.
unsafe impl Send for Ring {}
// SAFETY: as for `Send`: nothing is reachable through `&Ring`.
unsafe impl Sync for Ring {}

/// Marker of a producer that may be shared ([`MpProducer`]).
pub enum Multi {}
/// Marker of the one producer of a single-producer ring ([`SpProducer`]):
/// not `Sync`.
pub struct Single(std::marker::PhantomData<std::cell::Cell<()>>);

/// The enqueue side of a ring; [`Burst::enqueue`] uses it.
pub struct Producer<M> {
    /// The ring, read directly on the hot path (no indirection through
    /// `_ring`, which only keeps it alive).
    ptr: NonNull<sys::rte_ring>,
    _ring: std::sync::Arc<Ring>,
    _mode: std::marker::PhantomData<M>,
}
/// The one producer of a single-producer ring: `Send`, not `Sync`, not
/// `Clone`.
pub type SpProducer = Producer<Single>;
/// A producer of a multi-producer ring: `Send + Sync + Clone`.
pub type MpProducer = Producer<Multi>;

// SAFETY: enqueueing from any thread is allowed for either mode as long as
// the mode's rule holds: a `Single` producer is not `Sync` nor `Clone`, so
// the one thread holding it is the only producer; a `Multi` one enqueues
// on a ring created multi-producer. `_ring` keeps the ring alive.
unsafe impl<M> Send for Producer<M> {}
// SAFETY: only the multi-producer kind: its ring was created without
// RING_F_SP_ENQ, so concurrent enqueues are what it is made for.
unsafe impl Sync for Producer<Multi> {}

impl Clone for Producer<Multi> {
    fn clone(&self) -> Self {
        Producer {
            ptr: self.ptr,
            _ring: self._ring.clone(),
            _mode: std::marker::PhantomData,
        }
    }
}

impl<M> Producer<M> {
    /// Objects currently in the ring.
    pub fn count(&self) -> u32 {
        // SAFETY: ring alive; a racy read of two indexes, memory-safe.
        unsafe { sys::shim_ring_count(self.ptr.as_ptr()) }
    }
}

/// The one consumer of a single-consumer ring: `Send`, not `Sync`, not
/// `Clone`; [`Burst::dequeue`] uses it.
pub struct Consumer {
    ptr: NonNull<sys::rte_ring>,
    _ring: std::sync::Arc<Ring>,
}
// SAFETY: the ring is single-consumer and this is its only consumer handle
// (not `Clone`, not `Sync`: `NonNull` makes it `!Sync`), so moving it to
// another thread moves the one consumer. `_ring` keeps the ring alive.
unsafe impl Send for Consumer {}

impl Consumer {
    /// Objects currently in the ring.
    pub fn count(&self) -> u32 {
        // SAFETY: ring alive; a racy read of two indexes, memory-safe.
        unsafe { sys::shim_ring_count(self.ptr.as_ptr()) }
    }
    /// Free every mbuf left in the ring.
    pub fn drain_free(&self) -> usize {
        drain_free(self.ptr)
    }
}

/// Dequeue and free every mbuf of `ring`, whose only consumer is the caller.
fn drain_free(ring: NonNull<sys::rte_ring>) -> usize {
    let mut total = 0;
    loop {
        let mut b = Burst::new();
        let n = b.dequeue_raw(ring, MAX_BURST);
        total += n;
        if n == 0 {
            return total;
        }
    }
}

impl Ring {
    fn create(
        name: &str,
        count: u32,
        socket: i32,
        flags: u32,
    ) -> Result<std::sync::Arc<Ring>, DpdkError> {
        let cname = cstring(name)?;
        // SAFETY: valid name; DPDK allocates the ring.
        let p = unsafe { sys::rte_ring_create(cname.as_ptr(), count, socket, flags) };
        NonNull::new(p)
            .map(|ptr| {
                LIVE_RINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::sync::Arc::new(Ring { ptr, owned: true })
            })
            .ok_or_else(|| DpdkError {
                what: format!("rte_ring_create({name}, {count})"),
                code: -rte_errno(),
            })
    }

    fn consumer(ring: &std::sync::Arc<Ring>) -> Consumer {
        Consumer {
            ptr: ring.ptr,
            _ring: ring.clone(),
        }
    }

    fn producer<M>(ring: &std::sync::Arc<Ring>) -> Producer<M> {
        Producer {
            ptr: ring.ptr,
            _ring: ring.clone(),
            _mode: std::marker::PhantomData,
        }
    }

    /// A multi-producer, single-consumer ring of `count` slots (a power of
    /// two): a shareable producer and the one consumer.
    pub fn mpsc(name: &str, count: u32, socket: i32) -> Result<(MpProducer, Consumer), DpdkError> {
        let r = Self::create(name, count, socket, sys::RING_F_SC_DEQ)?;
        Ok((Self::producer(&r), Self::consumer(&r)))
    }

    /// A single-producer, single-consumer ring of `count` slots (a power of
    /// two): its one producer and its one consumer.
    pub fn spsc(name: &str, count: u32, socket: i32) -> Result<(SpProducer, Consumer), DpdkError> {
        let r = Self::create(name, count, socket, sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ)?;
        Ok((Self::producer(&r), Self::consumer(&r)))
    }

    /// Objects in the ring named `name`, created elsewhere in this process
    /// (e.g. by the net_ring PMD). A snapshot.
    pub fn count_of(name: &str) -> Result<u32, DpdkError> {
        let p = Self::find(name)?;
        // SAFETY: rings are never freed while EAL runs except by their
        // maker (net_ring: at port close); a racy read of two indexes.
        Ok(unsafe { sys::shim_ring_count(p.as_ptr()) })
    }

    fn find(name: &str) -> Result<NonNull<sys::rte_ring>, DpdkError> {
        let cname = cstring(name)?;
        // SAFETY: valid name.
        let p = unsafe { sys::rte_ring_lookup(cname.as_ptr()) };
        NonNull::new(p).ok_or_else(|| DpdkError {
            what: format!("rte_ring_lookup({name})"),
            code: -rte_errno(),
        })
    }

    /// The halves of a ring created elsewhere in this process (e.g. by the
    /// net_ring PMD, whose rings are single-producer, single-consumer). The
    /// ring is not freed when they are dropped.
    ///
    /// # Safety
    ///
    /// While the halves are alive, nobody else enqueues on the ring (its
    /// maker's producer, e.g. the TX queue of a net_ring port, is idle)
    /// nor dequeues from it (its RX queue is not polled), and the ring is
    /// not freed (the port is not closed).
    pub unsafe fn lookup(name: &str) -> Result<(SpProducer, Consumer), DpdkError> {
        let ptr = Self::find(name)?;
        let r = std::sync::Arc::new(Ring { ptr, owned: false });
        Ok((Self::producer(&r), Self::consumer(&r)))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.owned {
            // The last half is gone: this thread is the only consumer.
            drain_free(self.ptr);
            // SAFETY: we created it; the last half is gone, so nobody uses
            // it any more.
            unsafe { sys::rte_ring_free(self.ptr.as_ptr()) }
            LIVE_RINGS.fetch_sub(1, std::sync::atomic::Ordering::Release);
        }
    }
}

// ---------------------------------------------------------------- ports

/// A port of this process, found by name ([`PortId::by_name`]): the
/// shared, read-only handle (info, MAC, link, stats, RSS key and RETA),
/// usable from any thread. Configuring it gives the one [`Port`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(u16);

/// RX queue `queue` of port `port`, set up by [`PortId::configure`] and
/// taken once out of its [`Port`] ([`Port::take_rx`]). `Send` (it moves to
/// the worker that polls it), neither `Sync` nor `Clone`: one thread
/// polls it. Plain `u16`s inside.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
    _thread: std::marker::PhantomData<std::cell::Cell<()>>,
}

/// TX queue `queue` of port `port`; as [`RxQueue`], from
/// [`Port::take_tx`].
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
    _thread: std::marker::PhantomData<std::cell::Cell<()>>,
}

/// Queue handles of each port not dropped yet (made by `configure`), and
/// owned rings not freed yet: [`shutdown`] releases nothing while any is.
static LIVE_QUEUES: [std::sync::atomic::AtomicU32; sys::RTE_MAX_ETHPORTS as usize] =
    [const { std::sync::atomic::AtomicU32::new(0) }; sys::RTE_MAX_ETHPORTS as usize];
static LIVE_RINGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn queue_made(port: u16) {
    if let Some(c) = LIVE_QUEUES.get(port as usize) {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn queue_gone(port: u16) {
    if let Some(c) = LIVE_QUEUES.get(port as usize) {
        // Release: the holder's last burst happens-before `shutdown` sees 0.
        c.fetch_sub(1, std::sync::atomic::Ordering::Release);
    }
}

/// What both queue handles have: the count of live handles (`Drop`), the
/// port and the queue index.
macro_rules! queue_handle {
    ($($t:ident),*) => {$(
        impl Drop for $t {
            fn drop(&mut self) {
                queue_gone(self.port);
            }
        }

        impl $t {
            /// The port this queue belongs to.
            #[inline]
            pub fn port(&self) -> PortId {
                PortId(self.port)
            }
            #[inline]
            pub fn index(&self) -> u16 {
                self.queue
            }
        }
    )*};
}
queue_handle!(RxQueue, TxQueue);

/// A configured port: what starts, stops and closes it, and its queues
/// until they are taken ([`Port::take_rx`], [`Port::take_tx`]). One per
/// port per process ([`PortId::configure`] refuses a second).
#[derive(Debug)]
pub struct Port {
    id: PortId,
    rss: bool,
    rx: Vec<Option<RxQueue>>,
    tx: Vec<Option<TxQueue>>,
}

/// Ports configured by this process and not closed: a port's queue handles
/// are made once.
static CONFIGURED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// What a port can do (from `rte_eth_dev_info_get`).
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss_offloads: u64,
    pub reta_size: u16,
    pub hash_key_size: u8,
    pub socket: i32,
    /// The MTUs the device accepts, and its longest frame.
    pub min_mtu: u16,
    pub max_mtu: u16,
    pub max_rx_pktlen: u32,
    /// Its RX and TX offload capabilities (`RTE_ETH_RX_OFFLOAD_*`,
    /// `RTE_ETH_TX_OFFLOAD_*`).
    pub rx_offloads: u64,
    pub tx_offloads: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// Hardware/PMD counters of a port (`rte_eth_stats_get`).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// `RTE_ETH_RX_OFFLOAD_SCATTER`: a frame longer than one mbuf is received
/// over several.
pub const RX_OFFLOAD_SCATTER: u64 = 1 << 13;
/// `RTE_ETH_TX_OFFLOAD_MULTI_SEGS`: chained mbufs can be sent.
pub const TX_OFFLOAD_MULTI_SEGS: u64 = 1 << 15;

/// RSS hash functions the engine asks for (IPv4/IPv6, TCP, UDP).
pub const RSS_HF: u64 =
    (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 10) | (1 << 11);

impl PortId {
    /// The port whose device name is `name` (e.g. `net_tap0`, `0000:03:00.0`).
    pub fn by_name(name: &str) -> Result<PortId, DpdkError> {
        let cname = cstring(name)?;
        let mut id = 0u16;
        // SAFETY: valid name and out-pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        check(ret, || {
            format!("no DPDK port named {name:?} (is the device in the profile and its driver present?)")
        })?;
        Ok(PortId(id))
    }

    fn info_raw(self) -> Result<PortInfo, DpdkError> {
        let mut di = sys::rte_eth_dev_info::default();
        // SAFETY: valid out-pointer.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.0, &mut di) };
        check(ret, || format!("rte_eth_dev_info_get(port {})", self.0))?;
        let driver = if di.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: static driver name string.
            unsafe { CStr::from_ptr(di.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: port exists.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.0) };
        Ok(PortInfo {
            driver,
            max_rx_queues: di.max_rx_queues,
            max_tx_queues: di.max_tx_queues,
            rss_offloads: di.flow_type_rss_offloads,
            reta_size: di.reta_size,
            hash_key_size: di.hash_key_size,
            socket,
            min_mtu: di.min_mtu,
            max_mtu: di.max_mtu,
            max_rx_pktlen: di.max_rx_pktlen,
            rx_offloads: di.rx_offload_capa,
            tx_offloads: di.tx_offload_capa,
        })
    }

    /// The DPDK port number (for reports, and to map an mbuf's `port`
    /// field back to the port).
    #[inline]
    pub fn raw(self) -> u16 {
        self.0
    }

    /// Configure `nrxq` RX and `ntxq` TX queues, RSS over IP/TCP/UDP when
    /// there is more than one RX queue and the device hashes, and set every
    /// queue up with `pool` (which outlives the port: it is never freed).
    /// The [`Port`] holds the queue handles; a port already configured by
    /// this process (and not closed) is refused.
    pub fn configure(
        self,
        nrxq: u16,
        ntxq: u16,
        rx_desc: u16,
        tx_desc: u16,
        pool: &'static Mempool,
    ) -> Result<Port, DpdkError> {
        self.configure_chains(nrxq, ntxq, rx_desc, tx_desc, pool, false)
    }

    /// [`PortId::configure`]; with `chains`, the port sends chains of
    /// mbufs (TX multi-segment: `-ENOTSUP` where the device cannot) and
    /// receives a frame longer than one mbuf over several (RX scatter,
    /// where the device offers it).
    pub fn configure_chains(
        self,
        nrxq: u16,
        ntxq: u16,
        rx_desc: u16,
        tx_desc: u16,
        pool: &'static Mempool,
        chains: bool,
    ) -> Result<Port, DpdkError> {
        let mut configured = CONFIGURED.lock().unwrap_or_else(|e| e.into_inner());
        if configured.contains(&self.0) {
            return Err(DpdkError {
                what: format!("port {} is already configured", self.0),
                code: -libc::EBUSY,
            });
        }
        let info = self.info_raw()?;
        let mut conf = sys::rte_eth_conf::default();
        let rss = nrxq > 1 && info.rss_offloads & RSS_HF != 0;
        if rss {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = RSS_HF & info.rss_offloads;
        }
        if chains {
            // Sending a chain needs the capability (a PMD without it sends
            // the first segment only, or nothing). Receiving one: asked
            // where the PMD offers it; some chain long frames without
            // saying so (net_pcap), the others drop them (`ierrors`).
            if info.tx_offloads & TX_OFFLOAD_MULTI_SEGS == 0 {
                return Err(DpdkError {
                    what: format!(
                        "port {} (driver {}) cannot send a frame over several mbufs (no TX multi-segment offload)",
                        self.0, info.driver
                    ),
                    code: -libc::ENOTSUP,
                });
            }
            conf.txmode.offloads |= TX_OFFLOAD_MULTI_SEGS;
            conf.rxmode.offloads |= info.rx_offloads & RX_OFFLOAD_SCATTER;
        }
        // SAFETY: valid conf pointer.
        let ret = unsafe { sys::rte_eth_dev_configure(self.0, nrxq, ntxq, &conf) };
        check(ret, || {
            format!("rte_eth_dev_configure(port {}, {nrxq} rx, {ntxq} tx queues; driver {} allows {} rx / {} tx)", self.0, info.driver, info.max_rx_queues, info.max_tx_queues)
        })?;
        let (mut nrx, mut ntx) = (rx_desc, tx_desc);
        // SAFETY: valid out-pointers.
        let ret = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.0, &mut nrx, &mut ntx) };
        check(ret, || {
            format!("rte_eth_dev_adjust_nb_rx_tx_desc(port {})", self.0)
        })?;
        for q in 0..nrxq {
            // SAFETY: NULL rxconf = driver defaults; the pool is `'static`
            // (never freed), so it outlives the queue.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.0,
                    q,
                    nrx,
                    info.socket.max(0) as u32,
                    std::ptr::null(),
                    pool.raw(),
                )
            };
            check(ret, || {
                format!("rte_eth_rx_queue_setup(port {}, queue {q})", self.0)
            })?;
        }
        for q in 0..ntxq {
            // SAFETY: NULL txconf = driver defaults.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(
                    self.0,
                    q,
                    ntx,
                    info.socket.max(0) as u32,
                    std::ptr::null(),
                )
            };
            check(ret, || {
                format!("rte_eth_tx_queue_setup(port {}, queue {q})", self.0)
            })?;
        }
        configured.push(self.0);
        let thread = std::marker::PhantomData;
        for _ in 0..nrxq as u32 + ntxq as u32 {
            queue_made(self.0);
        }
        Ok(Port {
            id: self,
            rss,
            rx: (0..nrxq)
                .map(|queue| {
                    Some(RxQueue {
                        port: self.0,
                        queue,
                        _thread: thread,
                    })
                })
                .collect(),
            tx: (0..ntxq)
                .map(|queue| {
                    Some(TxQueue {
                        port: self.0,
                        queue,
                        _thread: thread,
                    })
                })
                .collect(),
        })
    }

    fn mac_raw(self) -> Result<[u8; 6], DpdkError> {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: valid out-pointer.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.0, &mut a) };
        check(ret, || format!("rte_eth_macaddr_get(port {})", self.0))?;
        Ok(a.addr_bytes)
    }

    fn link_raw(self) -> LinkStatus {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid out-pointer; the nowait variant does not block.
        unsafe { sys::rte_eth_link_get_nowait(self.0, &mut l) };
        let (status, duplex, speed) = (l.link_status(), l.link_duplex(), l.link_speed);
        LinkStatus {
            up: status != 0,
            speed_mbps: speed,
            full_duplex: duplex != 0,
        }
    }

    fn stats_raw(self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_stats_get(self.0, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }
}

impl PortId {
    /// The RSS hash key in use (Toeplitz), or an error where the device
    /// has none (virtual devices).
    fn rss_key_raw(self) -> Result<Vec<u8>, DpdkError> {
        let info = self.info_raw()?;
        let len = if info.rss_offloads == 0 {
            0
        } else if info.hash_key_size == 0 {
            40
        } else {
            info.hash_key_size as usize
        };
        if len == 0 {
            return Err(DpdkError {
                what: format!("port {} does not hash (no RSS)", self.0),
                code: -libc::ENOTSUP,
            });
        }
        let mut key = vec![0u8; len];
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: len as u8,
            rss_hf: 0,
        };
        // SAFETY: `key` outlives the call and is `rss_key_len` bytes long.
        let ret = unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.0, &mut conf) };
        check(ret, || {
            format!("rte_eth_dev_rss_hash_conf_get(port {})", self.0)
        })?;
        key.truncate(conf.rss_key_len as usize);
        Ok(key)
    }

    /// The redirection table: the RX queue of every entry.
    fn reta_raw(self) -> Result<Vec<u16>, DpdkError> {
        let size = self.info_raw()?.reta_size as usize;
        if size == 0 {
            return Err(DpdkError {
                what: format!("port {} has no redirection table", self.0),
                code: -libc::ENOTSUP,
            });
        }
        let mut conf: Vec<sys::rte_eth_rss_reta_entry64> = (0..size.div_ceil(64))
            .map(|_| sys::rte_eth_rss_reta_entry64 {
                mask: u64::MAX,
                reta: [0; 64],
            })
            .collect();
        // SAFETY: `conf` holds `reta_size` entries in groups of 64.
        let ret =
            unsafe { sys::rte_eth_dev_rss_reta_query(self.0, conf.as_mut_ptr(), size as u16) };
        check(ret, || {
            format!("rte_eth_dev_rss_reta_query(port {})", self.0)
        })?;
        Ok(conf
            .iter()
            .flat_map(|e| e.reta.iter().copied())
            .take(size)
            .collect())
    }
}

impl Port {
    /// The shared, read-only handle.
    #[inline]
    pub fn id(&self) -> PortId {
        self.id
    }

    /// Whether RSS spreads RX over the queues.
    pub fn rss(&self) -> bool {
        self.rss
    }

    /// RX queue `q`, the first time it is asked for.
    pub fn take_rx(&mut self, q: u16) -> Option<RxQueue> {
        self.rx.get_mut(q as usize)?.take()
    }

    /// TX queue `q`, the first time it is asked for.
    pub fn take_tx(&mut self, q: u16) -> Option<TxQueue> {
        self.tx.get_mut(q as usize)?.take()
    }

    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: a configured port (we hold its `Port`).
        let ret = unsafe { sys::rte_eth_dev_start(self.id.0) };
        check(ret, || format!("rte_eth_dev_start(port {})", self.id.0)).map(|_| ())
    }

    /// Set the port's IP MTU (`rte_eth_dev_set_mtu`; net_tap, af_xdp and
    /// af_packet pass it to the kernel interface). Call before `start`.
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), DpdkError> {
        // SAFETY: a configured port.
        let ret = unsafe { sys::rte_eth_dev_set_mtu(self.id.0, mtu) };
        check(ret, || {
            format!("rte_eth_dev_set_mtu(port {}, {mtu})", self.id.0)
        })
        .map(|_| ())
    }

    pub fn set_promiscuous(&mut self, on: bool) -> Result<(), DpdkError> {
        // SAFETY: a configured port.
        let ret = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id.0)
            } else {
                sys::rte_eth_promiscuous_disable(self.id.0)
            }
        };
        // Some virtual devices do not implement it (-ENOTSUP): harmless.
        if ret == -libc::ENOTSUP {
            return Ok(());
        }
        check(ret, || format!("promiscuous mode on port {}", self.id.0)).map(|_| ())
    }

    pub fn set_mac(&mut self, mac: [u8; 6]) -> Result<(), DpdkError> {
        let mut a = sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: valid pointer.
        let ret = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.id.0, &mut a) };
        check(ret, || format!("setting MAC on port {}", self.id.0)).map(|_| ())
    }

    /// Stop the port (RX and TX stop; queues keep their set-up).
    ///
    /// # Safety
    ///
    /// No thread is in, or will again enter, a burst call on this port's
    /// queues: every [`RxQueue`]/[`TxQueue`] taken from it is dropped (a
    /// worker's with its job: [`wait_lcore`] returned for its lcore) or
    /// its holder never polls again.
    pub unsafe fn stop(&mut self) {
        // SAFETY: no burst on the port's queues (the caller's contract).
        unsafe {
            sys::rte_eth_dev_stop(self.id.0);
        }
    }

    /// Close the port: DPDK frees its queues and, for a virtual device, the
    /// port itself.
    ///
    /// # Safety
    ///
    /// As for [`Port::stop`], which was called; and no other thread is in
    /// a call on this port's [`PortId`] (stats, link: the management thread
    /// has stopped). Calls on the `PortId` afterwards get an error (the
    /// port is gone) until [`eal_cleanup`].
    pub unsafe fn close(self) {
        // SAFETY: a stopped port nobody else uses (the caller's contract).
        unsafe {
            sys::rte_eth_dev_close(self.id.0);
        }
        CONFIGURED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&p| p != self.id.0);
    }
}

/// Whether ports and EAL may still be called: [`shutdown`] sets it false
/// while it holds it exclusively, so no [`PortId`] reader (the management
/// thread's stats and link) is inside a call when ports close, and none
/// reaches DPDK afterwards (they get an error, or zeros).
static DPDK_UP: std::sync::RwLock<bool> = std::sync::RwLock::new(true);

fn dpdk_gone() -> DpdkError {
    DpdkError {
        what: "DPDK is shut down".into(),
        code: -libc::ENODEV,
    }
}

/// `f()` while DPDK is up (shared with other readers), else `gone()`.
fn while_up<R>(gone: impl FnOnce() -> R, f: impl FnOnce() -> R) -> R {
    let up = DPDK_UP.read().unwrap_or_else(|e| e.into_inner());
    if *up {
        f()
    } else {
        gone()
    }
}

/// The read-only calls: from any thread, while DPDK is up.
impl PortId {
    /// What the port can do.
    pub fn info(self) -> Result<PortInfo, DpdkError> {
        while_up(|| Err(dpdk_gone()), || self.info_raw())
    }
    /// Its MAC address.
    pub fn mac(self) -> Result<[u8; 6], DpdkError> {
        while_up(|| Err(dpdk_gone()), || self.mac_raw())
    }
    /// Its link, without waiting (down once DPDK is shut down).
    pub fn link(self) -> LinkStatus {
        while_up(LinkStatus::default, || self.link_raw())
    }
    /// Its counters (zeros once DPDK is shut down).
    pub fn stats(self) -> PortStats {
        while_up(PortStats::default, || self.stats_raw())
    }
    /// The RSS hash key in use (Toeplitz), or an error where the device
    /// has none (virtual devices).
    pub fn rss_key(self) -> Result<Vec<u8>, DpdkError> {
        while_up(|| Err(dpdk_gone()), || self.rss_key_raw())
    }
    /// The redirection table: the RX queue of every entry.
    pub fn reta(self) -> Result<Vec<u16>, DpdkError> {
        while_up(|| Err(dpdk_gone()), || self.reta_raw())
    }
}

/// Whether DPDK is still up: false once [`shutdown`] released it.
pub fn is_up() -> bool {
    *DPDK_UP.read().unwrap_or_else(|e| e.into_inner())
}

/// The end of DPDK in this process, safe by ownership and checks. It waits
/// for every worker lcore's job to return; then, if no queue handle of
/// `ports` and no ring made by [`Ring::mpsc`]/[`Ring::spsc`] is still
/// alive (anywhere: a management thread still holding its ring halves
/// counts), it stops and closes every port, stops serving `dpdk-dumpcap`
/// when `pdump`, and cleans up EAL, holding [`PortId`]'s readers off
/// throughout (they get errors from then on). Otherwise it says what is
/// still held and releases nothing: the process's exit does.
///
/// Mbufs and [`HugeArray`]s live in EAL memory too: the caller has dropped
/// its own (the workers' went with their jobs).
pub fn shutdown(ports: Vec<Port>, pdump: bool) -> Result<(), String> {
    use std::sync::atomic::Ordering::Acquire;
    // (each step's time is logged: on a loaded machine an instance once
    // took over 30 s from its final counters to its exit)
    let t0 = std::time::Instant::now();
    for &l in lcores().iter().skip(1) {
        wait_lcore(l);
    }
    let joined = t0.elapsed();
    let mut ports = ports;
    for p in &mut ports {
        p.rx.clear();
        p.tx.clear();
    }
    let mut up = DPDK_UP.write().unwrap_or_else(|e| e.into_inner());
    if !*up {
        return Err("DPDK is already shut down".into());
    }
    let held: u32 = ports
        .iter()
        .filter_map(|p| LIVE_QUEUES.get(p.id.0 as usize))
        .map(|c| c.load(Acquire))
        .sum();
    let rings = LIVE_RINGS.load(Acquire);
    if held > 0 || rings > 0 {
        return Err(format!(
            "DPDK left to the process exit: {held} queue handles and {rings} rings still held"
        ));
    }
    let mut closed = Vec::new();
    for mut p in ports {
        let (t, id) = (std::time::Instant::now(), p.id.0);
        // SAFETY: every lcore job returned and every queue handle of the
        // port is dropped (its count is 0, read with Acquire after the
        // holders' Release), so no burst runs on its queues; `DPDK_UP` is
        // held exclusively, so no `PortId` reader is inside a call.
        unsafe {
            p.stop();
            p.close();
        }
        closed.push(format!("{id}: {} ms", t.elapsed().as_millis()));
    }
    tracing::info!(
        "shutdown: lcores joined in {} ms, ports stopped and closed ({})",
        joined.as_millis(),
        closed.join(", ")
    );
    if pdump {
        pdump_uninit();
    }
    *up = false;
    let t = std::time::Instant::now();
    // SAFETY: lcores joined; ports stopped and closed; every ring we made
    // is freed (count 0); `PortId` readers are held off for good (`up` is
    // false); the pool is never used again by the engine (its mbufs: the
    // caller's contract above). Called once (`up` was true).
    unsafe { eal_cleanup() };
    tracing::info!(
        "shutdown: EAL cleaned up in {} ms ({} ms in all)",
        t.elapsed().as_millis(),
        t0.elapsed().as_millis()
    );
    Ok(())
}

/// Number of ports EAL created.
pub fn port_count() -> u16 {
    // SAFETY: reads EAL's port table.
    unsafe { sys::rte_eth_dev_count_avail() }
}

// ---------------------------------------------------------------- CPU and memory for the pipelines

/// The CPU's prefetch instruction for the pipelines' batched lookups.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuPrefetch;

impl pgw_pipelines::hw::Prefetch for CpuPrefetch {
    #[inline(always)]
    fn read<T>(&self, r: &T) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it never faults and neither reads
        // nor writes the data architecturally; `r` is a valid reference.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                r as *const T as *const i8,
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = r;
    }
}

/// An array in DPDK's hugepage memory (`rte_malloc_socket`), or on the heap
/// when EAL had none left; 64-byte aligned either way. Freed on drop.
pub struct HugeArray<T> {
    ptr: NonNull<T>,
    n: usize,
    /// Allocated with `std::alloc` (the fallback), not `rte_malloc`.
    heap: bool,
}

// SAFETY: the array owns its `n` elements alone, like a Vec (no other
// pointer to them exists), so moving it moves them (hence `T: Send`);
// `rte_free` and `dealloc` may run on any thread. Its memory is EAL's:
// it is dropped before `shutdown` (a worker's tables go with its job).
unsafe impl<T: Send> Send for HugeArray<T> {}

impl<T> std::ops::Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `n` initialised elements at `ptr`, owned by us.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.n) }
    }
}

impl<T> std::ops::DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.n) }
    }
}

impl<T> HugeArray<T> {
    fn layout(n: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(
            (n * std::mem::size_of::<T>()).max(1),
            std::mem::align_of::<T>().max(64),
        )
        .expect("table layout")
    }
}

impl<T> Drop for HugeArray<T> {
    fn drop(&mut self) {
        if self.n == 0 {
            return;
        }
        // SAFETY: allocated as `heap` says, with this layout; the elements
        // are `Copy` (no destructor to run).
        unsafe {
            if self.heap {
                std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(self.n));
            } else {
                sys::rte_free(self.ptr.as_ptr() as *mut libc::c_void);
            }
        }
    }
}

/// The pipelines' table allocator: DPDK hugepage memory on `socket` (the
/// worker's NUMA node), written through once by the calling thread — the
/// worker itself — so every page is first touched where it is used. When
/// EAL has no memory left (or runs `--no-huge` with a small `-m`), the
/// table goes to the heap instead and `fallbacks` counts it (the engine
/// says so at start).
pub struct HugeAlloc {
    pub socket: i32,
    pub bytes: std::cell::Cell<usize>,
    pub fallbacks: std::cell::Cell<usize>,
}

impl HugeAlloc {
    pub fn new(socket: i32) -> HugeAlloc {
        HugeAlloc {
            socket,
            bytes: std::cell::Cell::new(0),
            fallbacks: std::cell::Cell::new(0),
        }
    }
}

impl pgw_pipelines::hw::TableAlloc for HugeAlloc {
    type Mem<T: Copy + Send + 'static> = HugeArray<T>;

    fn alloc<T: Copy + Send + 'static>(
        &self,
        what: &str,
        n: usize,
        fill: T,
    ) -> Result<HugeArray<T>, String> {
        if n == 0 {
            return Ok(HugeArray {
                ptr: NonNull::dangling(),
                n: 0,
                heap: true,
            });
        }
        let size = n
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| format!("{what}: {n} entries overflow"))?;
        let align = std::mem::align_of::<T>().max(64);
        // SAFETY: a plain allocation request; NULL on failure.
        let p =
            unsafe { sys::rte_malloc_socket(std::ptr::null(), size, align as u32, self.socket) };
        let (ptr, heap) = match NonNull::new(p as *mut T) {
            Some(p) => {
                self.bytes.set(self.bytes.get() + size);
                (p, false)
            }
            None => {
                self.fallbacks.set(self.fallbacks.get() + 1);
                // SAFETY: a non-zero layout.
                let p = unsafe { std::alloc::alloc(HugeArray::<T>::layout(n)) } as *mut T;
                let p = NonNull::new(p)
                    .ok_or_else(|| format!("{what}: out of memory ({size} bytes)"))?;
                (p, true)
            }
        };
        for i in 0..n {
            // SAFETY: `n` elements of room at `ptr`, aligned for T; each is
            // written once before any read (the first touch of the page).
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        Ok(HugeArray { ptr, n, heap })
    }
}

// ---------------------------------------------------------------- telemetry

/// A value in a telemetry answer (DPDK 22.11's `rte_tel_data`): a string
/// (at most [`TEL_MAX_STRING`] bytes; longer ones are cut), an unsigned or
/// a signed 32-bit number.
#[derive(Debug, Clone, PartialEq)]
pub enum TelScalar {
    Str(String),
    U64(u64),
    Int(i32),
}

/// An entry of a telemetry answer's top-level dict: a value, or a container
/// of values (a dict, or an array). DPDK 22.11 nests no deeper.
#[derive(Debug, Clone, PartialEq)]
pub enum TelItem {
    Scalar(TelScalar),
    Dict(Vec<(String, TelScalar)>),
    Array(Vec<TelScalar>),
}

/// A telemetry answer: DPDK prints it as one JSON object.
pub type TelAnswer = Vec<(String, TelItem)>;

/// `RTE_TEL_MAX_STRING_LEN` minus the NUL: the longest string value or name.
pub const TEL_MAX_STRING: usize = sys::RTE_TEL_MAX_STRING_LEN as usize - 1;

type TelHandler = std::sync::Arc<dyn Fn(&str, &str) -> TelAnswer + Send + Sync>;

/// The answerer of every command pgw registered (none: not running).
static TEL_HANDLER: std::sync::Mutex<Option<TelHandler>> = std::sync::Mutex::new(None);
/// Commands registered with DPDK so far (22.11 cannot unregister one).
static TEL_COMMANDS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Register `cmds` (name, help) with DPDK's telemetry, all answered by
/// `handler(command, parameters)` on DPDK's telemetry thread (one thread per
/// connected client): it must not touch workers or ports. A later call
/// replaces the handler; [`telemetry_stop`] removes it (the commands then
/// answer an error).
pub fn telemetry_register(
    cmds: &[(&str, &str)],
    handler: impl Fn(&str, &str) -> TelAnswer + Send + Sync + 'static,
) -> Result<(), DpdkError> {
    *TEL_HANDLER.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::sync::Arc::new(handler));
    let mut done = TEL_COMMANDS.lock().unwrap_or_else(|e| e.into_inner());
    for (cmd, help) in cmds {
        if done.iter().any(|c| c == cmd) {
            continue;
        }
        let c = cstring(cmd)?;
        let h = cstring(help)?;
        // SAFETY: DPDK copies both strings into its command table; the
        // callback is a plain function that lives as long as the process.
        let ret = unsafe {
            sys::rte_telemetry_register_cmd(c.as_ptr(), Some(telemetry_callback), h.as_ptr())
        };
        check(ret, || format!("rte_telemetry_register_cmd {cmd}"))?;
        done.push(cmd.to_string());
    }
    Ok(())
}

/// Remove the handler: pgw's commands answer `{"error": ...}` from now on.
pub fn telemetry_stop() {
    *TEL_HANDLER.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The callback DPDK runs for every pgw command.
///
/// # Safety
///
/// DPDK calls it with `cmd` a NUL-terminated string, `params` NULL or a
/// NUL-terminated string, and `d` the fresh `rte_tel_data` of this request.
unsafe extern "C" fn telemetry_callback(
    cmd: *const libc::c_char,
    params: *const libc::c_char,
    d: *mut sys::rte_tel_data,
) -> libc::c_int {
    if d.is_null() {
        return -libc::EINVAL;
    }
    // No panic may unwind into DPDK's thread.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let text = |p: *const libc::c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: non-NULL, NUL-terminated (DPDK's contract above).
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        let (cmd, params) = (text(cmd), text(params));
        let handler = TEL_HANDLER
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let answer = match handler {
            Some(h) => h(&cmd, &params),
            None => vec![(
                "error".to_string(),
                TelItem::Scalar(TelScalar::Str("pgw is not running".into())),
            )],
        };
        // SAFETY: `d` is this request's data (contract above).
        unsafe { tel_write(d, &answer) }
    }))
    .unwrap_or(-libc::EINVAL)
}

/// A name or string value as DPDK 22.11 takes it: at most
/// [`TEL_MAX_STRING`] bytes, no NUL, and none of the characters its JSON
/// writer does not escape (quote, backslash, controls).
fn tel_cstring(s: &str) -> CString {
    let mut out = String::with_capacity(s.len().min(TEL_MAX_STRING));
    for ch in s.chars() {
        let ch = if ch == '"' || ch == '\\' || ch.is_control() {
            '_'
        } else {
            ch
        };
        if out.len() + ch.len_utf8() > TEL_MAX_STRING {
            break;
        }
        out.push(ch);
    }
    CString::new(out).unwrap_or_default()
}

/// A dict key as DPDK 22.11.x takes it: letters, digits, `_` and `/` (it
/// refuses any other name); other characters become `_`.
pub fn tel_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '/' {
                c
            } else {
                '_'
            }
        })
        .take(TEL_MAX_STRING)
        .collect()
}

/// Put one value into dict `d` under `name`.
///
/// # Safety
///
/// `d` is a valid `rte_tel_data` started as a dict.
unsafe fn tel_dict_scalar(d: *mut sys::rte_tel_data, name: &CString, v: &TelScalar) -> i32 {
    // SAFETY: `d` is valid (caller); DPDK copies `name` and string values.
    unsafe {
        match v {
            TelScalar::Str(s) => {
                sys::rte_tel_data_add_dict_string(d, name.as_ptr(), tel_cstring(s).as_ptr())
            }
            TelScalar::U64(x) => sys::rte_tel_data_add_dict_u64(d, name.as_ptr(), *x),
            TelScalar::Int(x) => sys::rte_tel_data_add_dict_int(d, name.as_ptr(), *x),
        }
    }
}

/// Write `answer` into the request's data `d`. Entries past DPDK's limits
/// (256 per dict, 512 per array) are left out, as DPDK's own commands do.
///
/// # Safety
///
/// `d` is the `rte_tel_data` DPDK passed to the running callback.
unsafe fn tel_write(d: *mut sys::rte_tel_data, answer: &TelAnswer) -> libc::c_int {
    // SAFETY: `d` is valid (caller). Every container is either handed to
    // DPDK (keep = 0: DPDK frees it with `d`) or freed here when refused.
    unsafe {
        sys::rte_tel_data_start_dict(d);
        for (name, item) in answer {
            let name = tel_cstring(&tel_name(name));
            let c = match item {
                TelItem::Scalar(v) => {
                    tel_dict_scalar(d, &name, v);
                    continue;
                }
                TelItem::Dict(entries) => {
                    let c = sys::rte_tel_data_alloc();
                    if c.is_null() {
                        continue;
                    }
                    sys::rte_tel_data_start_dict(c);
                    for (k, v) in entries {
                        tel_dict_scalar(c, &tel_cstring(&tel_name(k)), v);
                    }
                    c
                }
                TelItem::Array(values) => {
                    let c = sys::rte_tel_data_alloc();
                    if c.is_null() {
                        continue;
                    }
                    let all_u64 = values.iter().all(|v| matches!(v, TelScalar::U64(_)));
                    let all_int = values.iter().all(|v| matches!(v, TelScalar::Int(_)));
                    let ty = if all_u64 {
                        sys::rte_tel_value_type_RTE_TEL_U64_VAL
                    } else if all_int {
                        sys::rte_tel_value_type_RTE_TEL_INT_VAL
                    } else {
                        sys::rte_tel_value_type_RTE_TEL_STRING_VAL
                    };
                    sys::rte_tel_data_start_array(c, ty);
                    for v in values {
                        match v {
                            TelScalar::U64(x) if all_u64 => sys::rte_tel_data_add_array_u64(c, *x),
                            TelScalar::Int(x) if all_int => sys::rte_tel_data_add_array_int(c, *x),
                            TelScalar::Str(s) => {
                                sys::rte_tel_data_add_array_string(c, tel_cstring(s).as_ptr())
                            }
                            TelScalar::U64(x) => sys::rte_tel_data_add_array_string(
                                c,
                                tel_cstring(&x.to_string()).as_ptr(),
                            ),
                            TelScalar::Int(x) => sys::rte_tel_data_add_array_string(
                                c,
                                tel_cstring(&x.to_string()).as_ptr(),
                            ),
                        };
                    }
                    c
                }
            };
            if sys::rte_tel_data_add_dict_container(d, name.as_ptr(), c, 0) < 0 {
                sys::rte_tel_data_free(c);
            }
        }
    }
    0
}
