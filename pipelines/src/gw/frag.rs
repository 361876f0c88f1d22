//! IPv4 fragments of NAT44 connections, by shallow virtual reassembly
//! (VPP's `ip4_sv_reass` in front of nat44-ed is the model): fragments are
//! never joined; the first one (offset 0, it carries the L4 header) takes
//! the normal path — lookup, connection start, rewrite — and leaves a
//! **context** behind, keyed by the datagram as it arrived: (arrival port,
//! source, destination, protocol, IPv4 Identification). Every later
//! fragment of that datagram finds the context and gets the IP-level part of
//! the same translation: MACs, addresses, TTL − 1, the header checksum. The
//! L4 checksum is only in the first fragment, and the incremental delta
//! applied there (pseudo-header addresses and ports) is the whole
//! datagram's, since nothing else of it changes.
//!
//! **Out of order**: a fragment that comes before its first one is copied
//! into a hold slot of the worker (pre-sized, [`HOLD_BYTES`] each, a free
//! stack; `Verdict::Consumed`), at most `frag_max_held` per datagram. When
//! the first fragment is translated, the held ones are translated in their
//! slots and queued on the worker's **outbox** of released frames; the
//! engine drains it after each burst ([`GwWorker::drain_released`]: a fresh
//! mbuf per frame, sent behind the burst, so after the first fragment).
//!
//! **End of a context**: when the fragments seen add up to the datagram's
//! length (the last fragment, MF = 0, gives it), or `frag_timeout_ms` after
//! its first fragment of any kind arrived (every context lives the same
//! time, so the oldest-first list of contexts is their expiry order; the
//! timer work of [`GwWorker::expire_due`] walks it). Held fragments of an
//! expired context are dropped as `frag_timeout`. A duplicated fragment
//! counts twice toward the length and may end the context early; the rest
//! of that datagram is then held and times out.
//!
//! **Limits and drops** (each its own counter): no free context
//! (`frag_contexts`) → `frag_table_full` (a first fragment that cannot keep
//! its context is dropped too: the rest of its datagram could not follow);
//! no hold slot → `frag_hold_full`; over `frag_max_held` → `frag_too_many`;
//! larger than a slot → `frag_hold_too_big`; held past the timeout →
//! `frag_timeout`. Fragments of other protocols than TCP and UDP, IPv6
//! fragments, fragments with `frag_contexts = 0`, and a first fragment too
//! short to hold its ports stay `fragment` drops. A first fragment whose
//! packet is not sent (no connection, handed off, refused) leaves no
//! context: the rest of its datagram is held and times out.
//!
//! **More than one worker**: a later fragment has no ports, so it cannot
//! be steered by key. Contexts are per worker; the fragments of one
//! datagram must reach the same worker, which a NIC's RSS gives when it
//! hashes fragments on addresses only (the usual IPv4 RSS of fragments).
//! A first fragment going down that belongs to another worker's key is
//! handed off like any down packet, and its later fragments, with no
//! context on the receiving worker, are held there and time out
//! (`frag_timeout`): fragments of down datagrams are translated only when
//! the key's owner receives them (one worker, or RSS-steered keys).
//!
//! **Memory** per worker: 72 bytes per context and 4 per hash head
//! (`next_pow2(frag_contexts)` heads); 1544 bytes per hold slot and 8 per
//! outbox place. **Cost**: nothing on the path of unfragmented packets
//! (the parse stage's fast path refuses fragments, the general parse names
//! them); per fragment, one hash and a short chain walk.

use super::entry::{unlink, NONE};
use super::hash::flow_hash;
use super::meta::{Kind, Meta};
use super::rewrite::forward4;
use super::tcp_state::{PROTO_TCP, PROTO_UDP};
use super::{GwConfig, GwTables, GwWorker};
use crate::hw::TableAlloc;
use crate::verdict::{DropReason, Pkt, PortIdx, Verdict, WorkerCounters};
use crate::wire;
use crate::wire::checksum::Delta;

/// Bytes of one hold slot: an Ethernet frame of a 1500-byte MTU link,
/// tagged, fits.
pub const HOLD_BYTES: usize = 1536;

/// One datagram's reassembly context.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    // The datagram as it arrived.
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    proto: u8,
    /// The first fragment was translated: the fields below hold.
    ready: bool,
    port: PortIdx,
    // The translation (from the first fragment as it was sent).
    out_port: PortIdx,
    up: bool,
    macs: [u8; 12],
    nsrc: [u8; 4],
    ndst: [u8; 4],
    /// The connection (its key port checks that the entry still is it).
    e: u32,
    key_port: u16,
    /// IP payload bytes seen, and the datagram's (0 until the last fragment).
    seen: u32,
    total: u32,
    /// Held fragments: first slot, count.
    held: u32,
    nheld: u8,
    born_ms: u32,
    /// Hash chain (the free list when free); the age list.
    chain: u32,
    older: u32,
    younger: u32,
}

impl Ctx {
    const EMPTY: Ctx = Ctx {
        src: [0; 4],
        dst: [0; 4],
        id: 0,
        proto: 0,
        ready: false,
        port: 0,
        out_port: 0,
        up: false,
        macs: [0; 12],
        nsrc: [0; 4],
        ndst: [0; 4],
        e: NONE,
        key_port: 0,
        seen: 0,
        total: 0,
        held: NONE,
        nheld: 0,
        born_ms: 0,
        chain: NONE,
        older: NONE,
        younger: NONE,
    };
}

/// A held fragment.
#[derive(Clone, Copy)]
pub struct Slot {
    len: u16,
    /// Its L3 offset (14, or 18 with a tag).
    l3: u8,
    /// Next held fragment of the same datagram.
    next: u32,
    bytes: [u8; HOLD_BYTES],
}

impl Slot {
    const EMPTY: Slot = Slot {
        len: 0,
        l3: 0,
        next: NONE,
        bytes: [0; HOLD_BYTES],
    };
}

/// Where a datagram's fragment is, read from its IPv4 header.
#[derive(Clone, Copy, Debug)]
struct Frag {
    id: u16,
    /// Offset of its payload in the datagram (bytes), and its length.
    off: u32,
    len: u32,
    more: bool,
}

impl Frag {
    fn of(f: &[u8], l3: usize, l4: usize, end: usize) -> Frag {
        let fo = u16::from_be_bytes([f[l3 + 6], f[l3 + 7]]);
        Frag {
            id: u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]),
            off: (fo & 0x1fff) as u32 * 8,
            len: (end - l4) as u32,
            more: fo & 0x2000 != 0,
        }
    }
}

/// A worker's reassembly contexts, hold slots and outbox.
pub struct Frags<A: TableAlloc> {
    ctx: A::Mem<Ctx>,
    heads: A::Mem<u32>,
    mask: u32,
    free: u32,
    /// The age list: oldest and youngest live context.
    oldest: u32,
    youngest: u32,
    live: u32,
    slots: A::Mem<Slot>,
    slot_free: A::Mem<u32>,
    slot_top: u32,
    /// Released frames: (slot, out port).
    out: A::Mem<(u32, PortIdx)>,
    nout: u32,
    seed: u64,
    timeout_ms: u32,
    max_held: u8,
}

impl<A: TableAlloc> Frags<A> {
    pub fn new(alloc: &A, cfg: &GwConfig) -> Result<Frags<A>, String> {
        let n = cfg.frag_contexts as usize;
        let nh = if n == 0 { 0 } else { n.next_power_of_two() };
        let s = if n == 0 {
            0
        } else {
            cfg.frag_hold_slots as usize
        };
        let mut ctx = alloc.alloc("gw fragment contexts", n, Ctx::EMPTY)?;
        for (i, c) in ctx.iter_mut().enumerate() {
            c.chain = if i + 1 < n { i as u32 + 1 } else { NONE };
        }
        let mut slot_free = alloc.alloc("gw fragment hold free list", s, 0u32)?;
        for (i, f) in slot_free.iter_mut().enumerate() {
            *f = i as u32;
        }
        Ok(Frags {
            ctx,
            heads: alloc.alloc("gw fragment context heads", nh, NONE)?,
            mask: nh.saturating_sub(1) as u32,
            free: if n > 0 { 0 } else { NONE },
            oldest: NONE,
            youngest: NONE,
            live: 0,
            slots: alloc.alloc("gw fragment hold slots", s, Slot::EMPTY)?,
            slot_free,
            slot_top: s as u32,
            out: alloc.alloc("gw released frames", s, (NONE, 0))?,
            nout: 0,
            seed: cfg.hash_seed ^ 0xf4a6_0000_0000_0000,
            timeout_ms: cfg.frag_timeout_ms,
            max_held: cfg.frag_max_held,
        })
    }

    /// On: fragments of NAT44 connections are translated.
    #[inline]
    pub fn on(&self) -> bool {
        !self.ctx.is_empty()
    }
    /// Live contexts.
    pub fn live(&self) -> u32 {
        self.live
    }
    /// Fragments held now.
    pub fn held(&self) -> u32 {
        self.slots.len() as u32 - self.slot_top - self.nout
    }
    pub fn bytes(&self) -> usize {
        use core::mem::size_of;
        self.ctx.len() * size_of::<Ctx>()
            + self.heads.len() * 4
            + self.slots.len() * (size_of::<Slot>() + 4)
            + self.out.len() * size_of::<(u32, PortIdx)>()
    }

    #[inline]
    fn bucket(&self, port: PortIdx, src: [u8; 4], dst: [u8; 4], id: u16, proto: u8) -> usize {
        let h = flow_hash(
            self.seed,
            u32::from_be_bytes(src),
            u32::from_be_bytes(dst),
            id,
            port,
            proto,
        );
        (h as u32 & self.mask) as usize
    }

    /// The context of a datagram, or `NONE`.
    fn find(&self, port: PortIdx, src: [u8; 4], dst: [u8; 4], id: u16, proto: u8) -> u32 {
        let mut c = self.heads[self.bucket(port, src, dst, id, proto)];
        while c != NONE {
            let x = &self.ctx[c as usize];
            if x.id == id && x.src == src && x.dst == dst && x.proto == proto && x.port == port {
                return c;
            }
            c = x.chain;
        }
        NONE
    }

    /// A new context (youngest), or `NONE` if the table is full.
    fn insert(
        &mut self,
        port: PortIdx,
        src: [u8; 4],
        dst: [u8; 4],
        id: u16,
        proto: u8,
        now: u64,
    ) -> u32 {
        let c = self.free;
        if c == NONE {
            return NONE;
        }
        let b = self.bucket(port, src, dst, id, proto);
        self.free = self.ctx[c as usize].chain;
        self.ctx[c as usize] = Ctx {
            src,
            dst,
            id,
            proto,
            port,
            born_ms: now as u32,
            chain: self.heads[b],
            older: self.youngest,
            ..Ctx::EMPTY
        };
        self.heads[b] = c;
        if self.youngest != NONE {
            self.ctx[self.youngest as usize].younger = c;
        } else {
            self.oldest = c;
        }
        self.youngest = c;
        self.live += 1;
        c
    }

    /// End context `c`: its held fragments are dropped (how many).
    fn remove(&mut self, c: u32) -> u32 {
        let x = self.ctx[c as usize];
        let b = self.bucket(x.port, x.src, x.dst, x.id, x.proto);
        unlink(&mut self.heads[b], &mut self.ctx, c, |x| &mut x.chain);
        if x.older != NONE {
            self.ctx[x.older as usize].younger = x.younger;
        } else {
            self.oldest = x.younger;
        }
        if x.younger != NONE {
            self.ctx[x.younger as usize].older = x.older;
        } else {
            self.youngest = x.older;
        }
        let mut s = x.held;
        while s != NONE {
            let next = self.slots[s as usize].next;
            self.slot_free[self.slot_top as usize] = s;
            self.slot_top += 1;
            s = next;
        }
        self.ctx[c as usize] = Ctx {
            chain: self.free,
            ..Ctx::EMPTY
        };
        self.free = c;
        self.live -= 1;
        x.nheld as u32
    }

    /// Keep a copy of `frame` (L3 at `l3`) with context `c`.
    fn hold(&mut self, c: u32, frame: &[u8], l3: usize) -> Result<(), DropReason> {
        if self.ctx[c as usize].nheld >= self.max_held {
            return Err(DropReason::FragTooMany);
        }
        if frame.len() > HOLD_BYTES {
            return Err(DropReason::FragHoldTooBig);
        }
        if self.slot_top == 0 {
            return Err(DropReason::FragHoldFull);
        }
        self.slot_top -= 1;
        let s = self.slot_free[self.slot_top as usize];
        let x = &mut self.ctx[c as usize];
        let slot = &mut self.slots[s as usize];
        slot.bytes[..frame.len()].copy_from_slice(frame);
        slot.len = frame.len() as u16;
        slot.l3 = l3 as u8;
        slot.next = x.held;
        x.held = s;
        x.nheld += 1;
        Ok(())
    }

    /// Count `fr`'s bytes toward its datagram; true when all have been seen
    /// (the context can end).
    fn account(&mut self, c: u32, fr: &Frag) -> bool {
        let x = &mut self.ctx[c as usize];
        x.seen = x.seen.saturating_add(fr.len);
        if !fr.more {
            x.total = fr.off + fr.len;
        }
        x.ready && x.total != 0 && x.seen >= x.total
    }

    /// End contexts older than the timeout; their held fragments are
    /// counted `frag_timeout`. Contexts ended.
    pub fn expire(&mut self, now: u64, c: &mut WorkerCounters) -> usize {
        let mut n = 0;
        while self.oldest != NONE {
            let o = self.oldest;
            if (now as u32).wrapping_sub(self.ctx[o as usize].born_ms) < self.timeout_ms {
                break;
            }
            for _ in 0..self.remove(o) {
                c.drop(DropReason::FragTimeout);
            }
            n += 1;
        }
        n
    }
}

/// The IP-level translation of context `x` on the fragment at `l3` of `f`.
#[inline]
fn translate(f: &mut [u8], l3: usize, x: &Ctx) {
    f[0..12].copy_from_slice(&x.macs);
    let old_src: [u8; 4] = f[l3 + 12..l3 + 16].try_into().unwrap_or([0; 4]);
    let old_dst: [u8; 4] = f[l3 + 16..l3 + 20].try_into().unwrap_or([0; 4]);
    let mut d = Delta::default();
    d.addr4(old_src, x.nsrc);
    d.addr4(old_dst, x.ndst);
    forward4(f, l3, d, (x.nsrc, x.ndst));
}

impl<A: TableAlloc> GwWorker<A> {
    /// The parse stage for an IPv4 fragment (`wire::parse` said
    /// `Fragment`): a first fragment of TCP or UDP goes on as a packet
    /// (its [`Meta`] marked `frag`); a later one is translated by its
    /// datagram's context, or held for the first one.
    pub(super) fn fragment(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        now: u64,
    ) -> Result<Meta, Verdict> {
        const FRAGMENT: Verdict = Verdict::Drop(DropReason::Fragment);
        if !self.frags.on() {
            return Err(FRAGMENT);
        }
        let Ok(p) = wire::parse_l3(pkt.frame()) else {
            return Err(FRAGMENT);
        };
        if !p.is_ipv4() || (p.proto != PROTO_TCP && p.proto != PROTO_UDP) {
            return Err(FRAGMENT);
        }
        let mut m = Meta::from_parsed(&p);
        let (l3, l4, end) = (p.l3_off as usize, p.l4_off as usize, p.ip_end());
        let fr = Frag::of(pkt.frame(), l3, l4, end);
        if fr.off == 0 {
            // The first fragment: the L4 header must be all there.
            let f = pkt.frame();
            let hdr = if p.proto == PROTO_TCP {
                if end - l4 < 20 {
                    return Err(FRAGMENT);
                }
                let doff = (f[l4 + 12] >> 4) as usize * 4;
                if doff < 20 || l4 + doff > end {
                    return Err(FRAGMENT);
                }
                m.tcp_flags = f[l4 + 13];
                doff
            } else {
                if end - l4 < 8 {
                    return Err(FRAGMENT);
                }
                8
            };
            m.sport = u16::from_be_bytes([f[l4], f[l4 + 1]]);
            m.dport = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
            m.payload = (l4 + hdr) as u8;
            m.frag = true;
            self.direct_v4(t, pkt, &mut m)?;
            return Ok(m);
        }
        self.direct_v4(t, pkt, &mut m)?;
        let port = pkt.port;
        let mut c = self.frags.find(port, m.src, m.dst, fr.id, m.proto);
        if c == NONE {
            c = self.frags.insert(port, m.src, m.dst, fr.id, m.proto, now);
            if c == NONE {
                return Err(Verdict::Drop(DropReason::FragTableFull));
            }
        }
        let x = self.frags.ctx[c as usize];
        if !x.ready {
            self.frags.hold(c, pkt.frame(), l3).map_err(Verdict::Drop)?;
            self.frags.account(c, &fr);
            self.counters.frag_held += 1;
            return Err(Verdict::Consumed);
        }
        translate(pkt.frame_mut(), l3, &x);
        self.frag_sent(&x, m.ip_len());
        if self.frags.account(c, &fr) {
            self.frags.remove(c);
        }
        Err(Verdict::Tx { port: x.out_port })
    }

    /// A later fragment of context `x` (`ip_len` bytes) went out: counters.
    fn frag_sent(&mut self, x: &Ctx, ip_len: usize) {
        self.counters.frag_translated += 1;
        if x.up {
            self.counters.up_pkts += 1;
        } else {
            self.counters.down_pkts += 1;
        }
        // (the connection's own counters, while its entry is still it)
        let Some(h) = self.hot.get_mut(x.e as usize) else {
            return;
        };
        if h.key_port == x.key_port && h.state.is_open() {
            if x.up {
                h.count_up(ip_len);
            } else {
                h.count_down(ip_len);
            }
        }
    }

    /// The rewrite stage sent (`v`) the first fragment `i`: keep its
    /// translation for the rest of the datagram and release what was held.
    /// The verdict (a drop if no context could be kept).
    pub(super) fn first_fragment(
        &mut self,
        pkt: &Pkt<'_>,
        i: usize,
        v: Verdict,
        now: u64,
    ) -> Verdict {
        let Verdict::Tx { port: out_port } = v else {
            return v;
        };
        let m = self.meta[i];
        let f = pkt.frame();
        let l3 = m.l3 as usize;
        // Only a NAT44 translation of the packet is kept (not a reply the
        // stage built in its place, nor a NAT64 connection's packet).
        let Some(h) = self.hot.get(m.e as usize) else {
            return v;
        };
        let ndst: [u8; 4] = f[l3 + 16..l3 + 20].try_into().unwrap_or([0; 4]);
        let forwarded = match m.kind {
            Kind::Up4 => out_port == self.cfg.server_port && ndst == h.srv_ip,
            _ => out_port == self.cfg.access_port && ndst == h.sub_ip,
        };
        if !forwarded || h.has(super::entry::flag::V6) {
            return v;
        }
        let fr = Frag::of(f, l3, m.l4 as usize, m.end as usize);
        let mut c = self.frags.find(pkt.port, m.src, m.dst, fr.id, m.proto);
        if c == NONE {
            c = self
                .frags
                .insert(pkt.port, m.src, m.dst, fr.id, m.proto, now);
            if c == NONE {
                return Verdict::Drop(DropReason::FragTableFull);
            }
        } else if self.frags.ctx[c as usize].ready {
            // (the first fragment again: the translation is the same)
            return v;
        }
        let h = &self.hot[m.e as usize];
        let x = &mut self.frags.ctx[c as usize];
        x.ready = true;
        x.out_port = out_port;
        x.up = m.kind == Kind::Up4;
        x.macs.copy_from_slice(&f[0..12]);
        x.nsrc.copy_from_slice(&f[l3 + 12..l3 + 16]);
        x.ndst.copy_from_slice(&f[l3 + 16..l3 + 20]);
        x.e = m.e;
        x.key_port = h.key_port;
        let x = *x;
        self.counters.frag_first += 1;
        // The held fragments: translated in their slots, to the outbox.
        let mut s = x.held;
        while s != NONE {
            let slot = &mut self.frags.slots[s as usize];
            let (len, sl3, next) = (slot.len as usize, slot.l3 as usize, slot.next);
            translate(&mut slot.bytes[..len], sl3, &x);
            let ip_len = u16::from_be_bytes([slot.bytes[sl3 + 2], slot.bytes[sl3 + 3]]);
            let n = self.frags.nout as usize;
            self.frags.out[n] = (s, out_port);
            self.frags.nout += 1;
            self.frag_sent(&x, ip_len as usize);
            s = next;
        }
        let cx = &mut self.frags.ctx[c as usize];
        cx.held = NONE;
        cx.nheld = 0;
        if self.frags.account(c, &fr) {
            self.frags.remove(c);
        }
        v
    }

    /// Hand every released frame (held fragments whose first fragment came)
    /// to `send` (bytes, port), then free their slots. How many.
    pub fn drain_released(&mut self, mut send: impl FnMut(&[u8], PortIdx)) -> usize {
        let n = self.frags.nout as usize;
        for k in 0..n {
            let (s, port) = self.frags.out[k];
            let slot = &self.frags.slots[s as usize];
            send(&slot.bytes[..slot.len as usize], port);
            let top = self.frags.slot_top as usize;
            self.frags.slot_free[top] = s;
            self.frags.slot_top += 1;
        }
        self.frags.nout = 0;
        n
    }

    /// Reassembly contexts live now, and fragments held.
    pub fn frag_state(&self) -> (u32, u32) {
        (self.frags.live(), self.frags.held())
    }

    /// Timer work of the fragments: contexts past `frag_timeout_ms` end.
    pub(super) fn frag_expire(&mut self, now: u64, c: &mut WorkerCounters) -> usize {
        self.frags.expire(now, c)
    }
}
