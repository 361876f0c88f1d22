//! Fragments of NAT44, NAT66 and NAT64 connections, by shallow virtual
//! reassembly (VPP's `ip4_sv_reass` / `ip6_sv_reass` in front of its NAT
//! is the model): fragments are never joined; the first one (offset 0, it
//! carries the L4 header) takes the normal path — lookup, connection
//! start, rewrite — and leaves a **context** behind, keyed by the datagram
//! as it arrived: (arrival port, source, destination, protocol,
//! Identification: IPv4's 16 bits, or the 32 bits of the IPv6 Fragment
//! header). Every later fragment of that datagram finds the context and
//! gets the IP-level part of the same translation: MACs, addresses, TTL or
//! hop limit − 1, the IPv4 header checksum. The L4 checksum is only in the
//! first fragment, and the incremental delta applied there (pseudo-header
//! addresses and ports) is the whole datagram's, since nothing else of it
//! changes.
//!
//! **NAT64** ([`crate::xlat`], RFC 7915): up, an IPv6 fragment becomes an
//! IPv4 fragment (§5.1.1: Identification = the low 16 bits of the IPv6
//! one, offset and MF copied, DF 0; the header otherwise as for any
//! translated packet; 28 bytes shorter); down, an IPv4 fragment becomes an
//! IPv6 packet with a Fragment header (§4.1: Identification zero-extended,
//! offset and M copied), 28 bytes longer: one that would exceed
//! `nat64.mtu6` is dropped as `xlat_frag_too_big` (fragments are not cut
//! again). The first fragment's checksum delta is the pseudo-header's, as
//! for a whole packet; a first IPv4 fragment of UDP without a checksum is
//! `xlat_untranslatable` (IPv6 needs one, over the whole datagram).
//!
//! **IPv6**: only a packet whose first extension header is the Fragment
//! header is taken (the parse finds TCP or UDP right after its 8 bytes);
//! a Fragment header behind other extension headers stays dropped as
//! before (`unsupported_proto`). The header is kept as it is (NAT66 does
//! not change the Identification, offset or M flag; NAT64 moves them to the
//! IPv4 header). IPv6 contexts exist
//! only when the profile has NAT64 or NAT66 (`pool6`): their addresses are
//! in a side table.
//!
//! **Out of order**: a fragment that comes before its first one is copied
//! into a hold slot of the worker (pre-sized, [`HOLD_BYTES`] each, a free
//! stack; `Verdict::Consumed`), at most `frag_max_held` per datagram. When
//! the first fragment is translated, the held ones are translated in their
//! slots and queued on the worker's **outbox** of released frames; the
//! engine drains it after each burst ([`GwWorker::drain_released`]: a fresh
//! mbuf per frame, sent behind the burst, so after the first fragment).
//! A later fragment is held only when it could belong to a connection:
//! IPv4 as any IPv4 packet of its direction; IPv6 to a pool6 address from
//! the server side, or to the NAT64 prefix or an IPv6 VIP from the access
//! side. A NAT64 fragment is translated in its slot (moved within it; one
//! that would not fit is dropped at its release).
//!
//! **End of a context**: when the fragments seen add up to the datagram's
//! length (the last fragment, MF / M = 0, gives it), or `frag_timeout_ms`
//! after its first fragment of any kind arrived (every context lives the
//! same time, so the oldest-first list of contexts is their expiry order;
//! the timer work of [`GwWorker::expire_due`] walks it). Held fragments of
//! an expired context are dropped as `frag_timeout`. A duplicated fragment
//! counts twice toward the length and may end the context early; the rest
//! of that datagram is then held and times out.
//!
//! **Limits and drops** (each its own counter): no free context
//! (`frag_contexts`) → `frag_table_full` (a first fragment that cannot keep
//! its context is dropped too: the rest of its datagram could not follow);
//! no hold slot → `frag_hold_full`; over `frag_max_held` → `frag_too_many`;
//! larger than a slot → `frag_hold_too_big`; held past the timeout →
//! `frag_timeout`; a later fragment whose TTL / hop limit would reach 0 →
//! `ttl_exceeded`; NAT64 down over `mtu6` → `xlat_frag_too_big` (a held
//! one at its release). ICMP echo fragments of NAT44 connections are taken
//! like UDP (the identifier, in the first fragment, is the port; ICMPv4
//! has no pseudo-header, so later fragments need nothing more); ICMP
//! fragments of NAT64 connections are `xlat_fragment` drops (the ICMPv6
//! checksum would need the whole datagram's length), and an echo request
//! in fragments to the GW itself (VIP with `answer_ping`, pool address) a
//! `fragment` drop. Fragments of other protocols than TCP, UDP and
//! ICMPv4 echo, ICMPv6 fragments,
//! IPv6 fragments of a profile without NAT64 or NAT66, later IPv6
//! fragments to no pool6 address, IPv6 VIP or NAT64 prefix, fragments with `frag_contexts = 0`, and a first fragment too short to
//! hold its L4 header stay `fragment` drops. A first fragment whose packet
//! is not sent (no connection, handed off, refused) leaves no context: the
//! rest of its datagram is held and times out.
//!
//! **More than one worker**: a later fragment has no ports, so it cannot
//! be steered by key. Contexts are per worker; the fragments of one
//! datagram must reach the same worker, which a NIC's RSS gives when it
//! hashes fragments on addresses only (the usual RSS of fragments).
//! A first fragment going down that belongs to another worker's key is
//! handed off like any down packet, and its later fragments, with no
//! context on the receiving worker, are held there and time out
//! (`frag_timeout`): fragments of down datagrams are translated only when
//! the key's owner receives them (one worker, or RSS-steered keys).
//!
//! **Memory** per worker: 76 bytes per context ([`Ctx`]), plus 64 bytes
//! of IPv6 addresses per context ([`Addrs6`]) when the profile has NAT64
//! or NAT66, and 4 per hash head (`next_pow2(frag_contexts)` heads); 1544
//! bytes per hold slot ([`Slot`]), 4 of free stack and 8 per outbox place;
//! 52 bytes per frame of a burst (the datagrams of its first fragments,
//! noted by the parse stage: the rewrite changes the frame before the
//! context is kept). **Cost**: nothing on the path of unfragmented packets
//! (the parse stage's fast path refuses fragments, the general parse names
//! them); per fragment, one hash and a short chain walk (an IPv6 context
//! compares its 32 address bytes in the side table).

use super::entry::{flag, unlink, NONE};
use super::free_stack::FreeStack;
use super::hash::flow_hash;
use super::meta::{Kind, Meta};
use super::rewrite::forward4;
use super::tcp_state::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use super::{last4, GwConfig, GwTables, GwWorker};
use crate::hw::TableAlloc;
use crate::verdict::{DropReason, Pkt, PortIdx, Verdict, WorkerCounters, MAX_BURST};
use crate::wire::checksum::Delta;
use crate::wire::{self, ip_proto, Parsed};
use crate::xlat::{self, To4, To6, XlatConfig};

/// Bytes of one hold slot: an Ethernet frame of a 1500-byte MTU link,
/// tagged, fits.
pub const HOLD_BYTES: usize = 1536;

/// Length of the IPv6 Fragment header.
const FRAG_HDR: usize = 8;

/// What a context's translation does to its datagram's later fragments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// NAT44: IPv4 in, IPv4 out.
    #[default]
    Nat44,
    /// NAT66: IPv6 in, IPv6 out (addresses in the side table).
    Nat66,
    /// NAT64 up: IPv6 in (addresses in the side table), IPv4 out.
    Up64,
    /// NAT64 down: IPv4 in, IPv6 out (addresses in the side table).
    Down64,
}

/// One datagram's reassembly context.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    // The datagram as it arrived: IPv4 addresses, or the last 4 bytes of
    // IPv6 ones (`v6`: the whole ones are in the side table).
    src: [u8; 4],
    dst: [u8; 4],
    id: u32,
    proto: u8,
    v6: bool,
    /// The first fragment was translated: the fields below hold.
    ready: bool,
    mode: Mode,
    port: PortIdx,
    // The translation (from the first fragment as it was sent).
    out_port: PortIdx,
    up: bool,
    macs: [u8; 12],
    /// IPv4 addresses out (IPv6 ones are in the side table).
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
        v6: false,
        ready: false,
        mode: Mode::Nat44,
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

/// A context's IPv6 addresses (the side table, present when the profile
/// has NAT64 or NAT66): the datagram's source and destination as it
/// arrived (an IPv6 one), and as it is sent (an IPv6 one).
pub type Addrs6 = [[u8; 16]; 4];
const SRC: usize = 0;
const DST: usize = 1;
const NSRC: usize = 2;
const NDST: usize = 3;

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

/// Where a datagram's fragment is, read from its IPv4 header or IPv6
/// Fragment header.
#[derive(Clone, Copy, Debug, Default)]
struct Frag {
    /// Offset of its payload in the datagram (bytes), and its length.
    off: u32,
    len: u32,
    more: bool,
}

impl Frag {
    /// IPv4 header at `l3`, payload `l4..end`.
    fn of4(f: &[u8], l3: usize, l4: usize, end: usize) -> Frag {
        let fo = u16::from_be_bytes([f[l3 + 6], f[l3 + 7]]);
        Frag {
            off: (fo & 0x1fff) as u32 * 8,
            len: (end - l4) as u32,
            more: fo & 0x2000 != 0,
        }
    }
    /// IPv6 Fragment header at `fh` (8 bytes in the frame), packet end
    /// `end`.
    fn of6(f: &[u8], fh: usize, end: usize) -> Frag {
        let fo = u16::from_be_bytes([f[fh + 2], f[fh + 3]]);
        Frag {
            off: (fo & 0xfff8) as u32,
            len: (end - fh - FRAG_HDR) as u32,
            more: fo & 1 != 0,
        }
    }
}

/// A datagram as it arrived: a context's key.
#[derive(Clone, Copy, Debug, Default)]
struct Key {
    port: PortIdx,
    /// IPv4 addresses are the last 4 bytes (the rest 0).
    src: [u8; 16],
    dst: [u8; 16],
    /// IPv4 Identification (16 bits), IPv6 Fragment header's (32).
    id: u32,
    proto: u8,
    v6: bool,
}

impl Key {
    fn v4(port: PortIdx, src: [u8; 4], dst: [u8; 4], id: u16, proto: u8) -> Key {
        let mut k = Key {
            port,
            id: id as u32,
            proto,
            ..Key::default()
        };
        k.src[12..].copy_from_slice(&src);
        k.dst[12..].copy_from_slice(&dst);
        k
    }
}

const _: () = assert!(core::mem::size_of::<(Key, Frag)>() == 52);

/// A worker's reassembly contexts, hold slots and outbox.
pub struct Frags<A: TableAlloc> {
    ctx: A::Mem<Ctx>,
    /// IPv6 addresses by context (empty without NAT64 and NAT66).
    a6: A::Mem<Addrs6>,
    heads: A::Mem<u32>,
    mask: u32,
    free: u32,
    /// The age list: oldest and youngest live context.
    oldest: u32,
    youngest: u32,
    live: u32,
    slots: A::Mem<Slot>,
    slot_free: FreeStack<A>,
    /// Released frames: (slot, out port).
    out: A::Mem<(u32, PortIdx)>,
    nout: u32,
    /// The burst's first fragments: their datagram, read by the parse
    /// stage (the rewrite changes the frame before the context is kept).
    first: A::Mem<(Key, Frag)>,
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
        let n6 = if cfg.nat64.is_some() || !cfg.pool6.is_empty() {
            n
        } else {
            0
        };
        let mut ctx = alloc.alloc("gw fragment contexts", n, Ctx::EMPTY)?;
        for (i, c) in ctx.iter_mut().enumerate() {
            c.chain = if i + 1 < n { i as u32 + 1 } else { NONE };
        }
        let slot_free = FreeStack::new(alloc, "gw fragment hold free list", s)?;
        Ok(Frags {
            ctx,
            a6: alloc.alloc("gw fragment contexts (IPv6)", n6, [[0u8; 16]; 4])?,
            heads: alloc.alloc("gw fragment context heads", nh, NONE)?,
            mask: nh.saturating_sub(1) as u32,
            free: if n > 0 { 0 } else { NONE },
            oldest: NONE,
            youngest: NONE,
            live: 0,
            slots: alloc.alloc("gw fragment hold slots", s, Slot::EMPTY)?,
            slot_free,
            out: alloc.alloc("gw released frames", s, (NONE, 0))?,
            nout: 0,
            first: alloc.alloc(
                "gw first fragments of the burst",
                if n > 0 { MAX_BURST } else { 0 },
                (Key::default(), Frag::default()),
            )?,
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
    /// IPv6 contexts too (NAT64, NAT66 profiles).
    #[inline]
    fn v6_on(&self) -> bool {
        !self.a6.is_empty()
    }
    /// Live contexts.
    pub fn live(&self) -> u32 {
        self.live
    }
    /// Fragments held now.
    pub fn held(&self) -> u32 {
        self.slots.len() as u32 - self.slot_free.available() - self.nout
    }
    pub fn bytes(&self) -> usize {
        use core::mem::size_of;
        self.ctx.len() * size_of::<Ctx>()
            + self.a6.len() * size_of::<Addrs6>()
            + self.heads.len() * 4
            + self.slots.len() * size_of::<Slot>()
            + self.slot_free.bytes()
            + self.out.len() * size_of::<(u32, PortIdx)>()
            + self.first.len() * size_of::<(Key, Frag)>()
    }

    #[inline]
    fn bucket(&self, k: &Key) -> usize {
        let h = flow_hash(
            self.seed,
            u32::from_be_bytes(last4(&k.src)) ^ (k.id & 0xffff_0000),
            u32::from_be_bytes(last4(&k.dst)),
            k.id as u16,
            k.port,
            k.proto | (k.v6 as u8) << 7,
        );
        (h as u32 & self.mask) as usize
    }

    /// The key of live context `c`.
    fn key_of(&self, c: u32) -> Key {
        let x = &self.ctx[c as usize];
        let mut k = Key::v4(x.port, x.src, x.dst, 0, x.proto);
        k.id = x.id;
        if x.v6 {
            k.v6 = true;
            k.src = self.a6[c as usize][SRC];
            k.dst = self.a6[c as usize][DST];
        }
        k
    }

    /// The context of a datagram, or `NONE`.
    fn find(&self, k: &Key) -> u32 {
        let (s4, d4) = (last4(&k.src), last4(&k.dst));
        let mut c = self.heads[self.bucket(k)];
        while c != NONE {
            let x = &self.ctx[c as usize];
            if x.id == k.id
                && x.src == s4
                && x.dst == d4
                && x.proto == k.proto
                && x.port == k.port
                && x.v6 == k.v6
                && (!k.v6
                    || (self.a6[c as usize][SRC] == k.src && self.a6[c as usize][DST] == k.dst))
            {
                return c;
            }
            c = x.chain;
        }
        NONE
    }

    /// A new context (youngest), or `NONE` if the table is full (or an
    /// IPv6 one without the side table).
    fn insert(&mut self, k: &Key, now: u64) -> u32 {
        let c = self.free;
        if c == NONE || (k.v6 && !self.v6_on()) {
            return NONE;
        }
        let b = self.bucket(k);
        self.free = self.ctx[c as usize].chain;
        self.ctx[c as usize] = Ctx {
            src: last4(&k.src),
            dst: last4(&k.dst),
            id: k.id,
            proto: k.proto,
            v6: k.v6,
            port: k.port,
            born_ms: now as u32,
            chain: self.heads[b],
            older: self.youngest,
            ..Ctx::EMPTY
        };
        if k.v6 {
            self.a6[c as usize][SRC] = k.src;
            self.a6[c as usize][DST] = k.dst;
        }
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
        let b = self.bucket(&self.key_of(c));
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
            self.free_slot(s);
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

    #[inline]
    fn free_slot(&mut self, s: u32) {
        self.slot_free.give(s);
    }

    /// Keep a copy of `frame` (L3 at `l3`) with context `c`.
    fn hold(&mut self, c: u32, frame: &[u8], l3: usize) -> Result<(), DropReason> {
        if self.ctx[c as usize].nheld >= self.max_held {
            return Err(DropReason::FragTooMany);
        }
        if frame.len() > HOLD_BYTES {
            return Err(DropReason::FragHoldTooBig);
        }
        let Some(s) = self.slot_free.take() else {
            return Err(DropReason::FragHoldFull);
        };
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

/// The IP length (header and payload, no padding) of the IPv4 or IPv6
/// packet at `l3` of a frame checked by the parse stage.
#[inline]
fn ip_len(f: &[u8], l3: usize) -> usize {
    let w = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]) as usize;
    if f[l3] >> 4 == 4 {
        w(l3 + 2)
    } else {
        40 + w(l3 + 4)
    }
}

/// The IP-level translation of context `x` (its IPv6 addresses `a6`) on
/// the later fragment `pkt` (L3 at `l3`): MACs, addresses, TTL / hop
/// limit − 1 (checked > 1 by the parse stage), the IPv4 header checksum;
/// NAT64 (`xl`: the translator's settings): the IP header translated
/// ([`xlat`], the Fragment header added or removed). A NAT64 fragment may
/// fail (too big for the IPv6 link: `xlat_frag_too_big`), unchanged.
#[inline]
fn translate(
    pkt: &mut Pkt<'_>,
    l3: usize,
    x: &Ctx,
    a6: &Addrs6,
    xl: &XlatConfig,
) -> Result<(), DropReason> {
    let f = pkt.frame_mut();
    match x.mode {
        Mode::Nat44 => {
            let old_src: [u8; 4] = f[l3 + 12..l3 + 16].try_into().unwrap_or([0; 4]);
            let old_dst: [u8; 4] = f[l3 + 16..l3 + 20].try_into().unwrap_or([0; 4]);
            let mut d = Delta::default();
            d.addr4(old_src, x.nsrc);
            d.addr4(old_dst, x.ndst);
            forward4(f, l3, d, (x.nsrc, x.ndst));
        }
        Mode::Nat66 => {
            f[l3 + 7] = f[l3 + 7].wrapping_sub(1);
            f[l3 + 8..l3 + 24].copy_from_slice(&a6[NSRC]);
            f[l3 + 24..l3 + 40].copy_from_slice(&a6[NDST]);
        }
        Mode::Up64 => {
            // (the IPv4 packet is 28 bytes shorter: header and Fragment header)
            let plen = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) as usize;
            if plen + 40 - 28 > xl.mtu4 as usize {
                return Err(DropReason::TooBig);
            }
            xlat::v6_to_v4(pkt, xl, &To4::new(x.nsrc, x.ndst))?;
        }
        Mode::Down64 => {
            let total = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize;
            let ihl = (f[l3] & 0xf) as usize * 4;
            if total - ihl + 48 > xl.mtu6 as usize {
                return Err(DropReason::XlatFragTooBig);
            }
            xlat::v4_to_v6(pkt, xl, &To6::new(a6[NSRC], a6[NDST]))?;
        }
    }
    pkt.frame_mut()[0..12].copy_from_slice(&x.macs);
    Ok(())
}

mod path;
