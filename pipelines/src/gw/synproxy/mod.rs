//! The SYN proxy: SYN cookies for connections to representative addresses
//! (DPVS's synproxy and Linux's syncookies are the models).
//!
//! While it is active ([`super::SynProxy`]: always, or while the worker's
//! half-open connections to the VIP address are at its share of a
//! threshold, counted per address in [`half_open`]), a subscriber's
//! SYN to a VIP opens nothing. The GW answers it with a SYN-ACK built in
//! place whose sequence number is a **cookie**: a keyed hash of the tuple,
//! a 64-second time slot and what the GW must remember of the SYN (the MSS,
//! the Window Scale, SACK-permitted: 8 bits). Only the subscriber's ACK
//! carrying the cookie + 1 (checked: the hash, a slot at most one old)
//! opens the connection: the ACK becomes the SYN the server gets, with the
//! subscriber's own sequence number and options. A flood of SYNs from
//! spoofed sources thus takes no entry, key or server slot; their SYN-ACKs
//! go nowhere.
//!
//! The server answers the GW's SYN with its own SYN-ACK, which the GW
//! consumes: it learns the server's initial sequence number S, answers
//! with the ACK that completes the server's handshake (or, when the
//! subscriber already sent its first data, that segment instead: it
//! acknowledges as well), and from then on translates every segment of the
//! connection: down `seq + (C - S)`, up `ack - (C - S)` and the SACK edges
//! with it (C: the cookie), with incremental checksums. The subscriber
//! saw the GW's Window Scale (`syn_proxy_wscale`); when the server's
//! differs, the down window is converted to it (and, for a server that
//! does not scale at all, the up window to the unscaled field).
//!
//! What is kept in the cookie, and what is not:
//! * MSS: one of [`MSS_TABLE`], the largest not above the subscriber's
//!   (536 without the option); the subscriber is told `syn_proxy_mss`.
//! * Window Scale (0–14) and SACK-permitted: passed to the server as the
//!   subscriber sent them.
//! * Timestamps are not negotiated on proxied connections (the GW's
//!   SYN-ACK does not carry the option; DPVS's default too): a
//!   subscriber's TSval could not be echoed consistently once the server
//!   answers.
//!
//! The server's SYN-ACK must acknowledge the SYN the GW sent (the
//! subscriber's ISN + 1, kept until then); another is dropped
//! (`synproxy_bad_synack`).
//!
//! Early data: the first segment with data the subscriber sends before the
//! server answered (an ACK of the cookie without SYN or RST) is kept (one per connection, from a per-worker pool of
//! [`STASH_SLOTS`] slots of [`STASH_BYTES`]) and sent to the server in
//! place of the handshake's ACK (`synproxy_stashed`); any other segment in
//! that time is dropped (`synproxy_early`, the subscriber retransmits it),
//! since its acknowledgment cannot be translated yet. A RST either way is
//! passed. A server silent for [`RESYN_MS`] after the SYN gets the SYN
//! again, rebuilt from the subscriber's next retransmission (it carries the
//! cookie: `synproxy_resyn`). A server still silent at the SYN timeout
//! (`timeouts.syn_ms` since the connection opened) ends it: the
//! subscriber's next segment is answered by a RST in its sequence space
//! (`synproxy_server_silent`), as the subscriber, established with the GW,
//! would otherwise retransmit its data for many minutes. (A subscriber that
//! sends nothing after its ACK, waiting for the server to speak first, sees
//! nothing: its connection expires at the SYN timeout.)
//!
//! Not proxied: IPv6 subscribers (NAT64, NAT66), destinations that are not
//! VIPs, a SYN on the tuple of a connection on hold (it revives its
//! binding, as without the proxy). ICMP errors about a proxied connection
//! quote its segment untranslated.

use super::meta::Meta;
use super::rst::{tcp_reply_v4, TcpReply};
use crate::verdict::Pkt;
use crate::wire::ipv4;
use crate::wire::tcp::{self, flags, TcpOption, TcpOptions, TcpPacket};

/// The MSS values a cookie can carry (3 bits).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1360, 1400, 1440, 1452, 1460];

/// A cookie's time slot: `now_ms >> SLOT_SHIFT` (65.5 s).
pub const SLOT_SHIFT: u32 = 16;

/// A cookie is accepted in its slot and this many after it.
pub const MAX_AGE: u32 = 1;

/// Early segments a worker can keep at once, and the largest frame kept.
pub const STASH_SLOTS: usize = 1024;
pub const STASH_BYTES: usize = 1536;

/// "No Window Scale option" in [`SynOpts::wscale`] and [`Px`].
pub const NO_WS: u8 = 15;

/// "No stash slot".
pub const NO_STASH: u16 = u16::MAX;

/// A proxied connection's server silent this long (ms) after its SYN: the
/// subscriber's next retransmission is sent to it as the SYN again.
pub const RESYN_MS: u32 = 1_000;

/// What a cookie keeps of the subscriber's SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynOpts {
    /// Index in [`MSS_TABLE`].
    pub mss_idx: u8,
    /// The Window Scale shift (0–14), or [`NO_WS`].
    pub wscale: u8,
    pub sack: bool,
}

impl SynOpts {
    /// The options of a SYN (its option bytes).
    pub fn from_options(opts: &[u8]) -> SynOpts {
        let mut o = SynOpts {
            mss_idx: 0,
            wscale: NO_WS,
            sack: false,
        };
        for opt in TcpOptions::new(opts) {
            match opt {
                TcpOption::Mss(m) => {
                    o.mss_idx = MSS_TABLE.iter().rposition(|&t| t <= m).unwrap_or(0) as u8;
                }
                TcpOption::WindowScale(s) => o.wscale = s.min(14),
                TcpOption::SackPermitted => o.sack = true,
                _ => {}
            }
        }
        o
    }
    /// The MSS sent to the server.
    pub fn mss(self) -> u16 {
        MSS_TABLE[self.mss_idx as usize & 7]
    }
    fn encode(self) -> u32 {
        (self.mss_idx as u32 & 7) | (self.wscale as u32 & 15) << 3 | (self.sack as u32) << 7
    }
    fn decode(d: u32) -> Option<SynOpts> {
        let wscale = (d >> 3 & 15) as u8;
        (d < 256 && (wscale <= 14 || wscale == NO_WS)).then_some(SynOpts {
            mss_idx: (d & 7) as u8,
            wscale,
            sack: d >> 7 & 1 == 1,
        })
    }
}

/// The subscriber-side tuple a cookie is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
}

impl Tuple {
    pub fn of(m: &Meta) -> Tuple {
        Tuple {
            src: m.src,
            dst: m.dst,
            sport: m.sport,
            dport: m.dport,
        }
    }
}

/// The cookie function: SipHash-2-4 under a 128-bit key drawn at start (as
/// Linux's), laid out as `H0(tuple) + isn + (slot mod 4) << 30 | data << 22
/// | H1(tuple, slot, data) mod 2^22`: 22 bits check the tuple, the slot and
/// the 8 bits of options together (a forged ACK passes with probability
/// 2^-22, as with Linux's cookies).
#[derive(Clone, Copy, Debug)]
pub struct CookieKey {
    k: [u64; 2],
}

impl CookieKey {
    pub fn new(k: [u64; 2]) -> CookieKey {
        CookieKey { k }
    }

    fn hash(&self, t: &Tuple, slot: u32, data: u32, which: u64) -> u32 {
        use core::hash::Hasher;
        #[allow(deprecated)] // (the standard library's SipHash-2-4, keyed)
        let mut h = core::hash::SipHasher::new_with_keys(self.k[0] ^ which, self.k[1]);
        h.write(&t.src);
        h.write(&t.dst);
        h.write_u16(t.sport);
        h.write_u16(t.dport);
        h.write_u32(slot);
        h.write_u32(data);
        h.finish() as u32
    }

    /// The cookie (the GW's initial sequence number) for a SYN of `t` with
    /// sequence number `isn` in time slot `slot`.
    pub fn cookie(&self, t: &Tuple, isn: u32, slot: u32, o: SynOpts) -> u32 {
        let d = o.encode();
        let low = (slot & 3) << 30 | d << 22 | self.hash(t, slot, d, 1) & 0x3f_ffff;
        self.hash(t, 0, 0, 0).wrapping_add(isn).wrapping_add(low)
    }

    /// The options of a valid cookie `c` (the ACK's acknowledgment - 1) of
    /// `t` whose SYN had sequence number `isn` (the ACK's - 1), in slot
    /// `now_slot` or at most [`MAX_AGE`] before.
    pub fn check(&self, t: &Tuple, isn: u32, c: u32, now_slot: u32) -> Option<SynOpts> {
        let x = c.wrapping_sub(self.hash(t, 0, 0, 0)).wrapping_sub(isn);
        let age = now_slot.wrapping_sub(x >> 30) & 3;
        if age > MAX_AGE {
            return None;
        }
        let slot = now_slot.wrapping_sub(age);
        let d = x >> 22 & 0xff;
        if x & 0x3f_ffff != self.hash(t, slot, d, 1) & 0x3f_ffff {
            return None;
        }
        SynOpts::decode(d)
    }
}

/// The numbers of an up TCP segment the proxy reads.
struct SegNums {
    seq: u32,
    ack: u32,
    win: u16,
}

impl SegNums {
    fn of(pkt: &Pkt<'_>, m: &Meta) -> Option<SegNums> {
        let s = pkt.frame().get(m.l4 as usize..m.end as usize)?;
        let t = TcpPacket::new_unchecked(s);
        Some(SegNums {
            seq: t.seq_number(),
            ack: t.ack_number(),
            win: t.window_len(),
        })
    }
}

/// Per-connection state of a proxied connection (a side table indexed like
/// the entries, present only with the proxy configured): 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Px {
    /// The cookie: the GW's initial sequence number toward the subscriber.
    pub cookie: u32,
    /// Once the server answered: added to down sequence numbers, taken
    /// from up acknowledgments, cookie - the server's ISN. Until then: the
    /// subscriber's ISN + 1, what the server's SYN-ACK must acknowledge
    /// (and the translation is cookie + 1: the server's RST to the SYN has
    /// sequence number 0; see [`GwWorker::px_delta`]).
    pub delta: u32,
    /// The early segment kept, its slot and length.
    pub stash: u16,
    pub stash_len: u16,
    /// The subscriber's window field of its ACK (for the handshake's ACK).
    pub win: u16,
    /// Window Scale shifts of the subscriber and the server, or [`NO_WS`].
    pub ws_sub: u8,
    pub ws_srv: u8,
}

impl Px {
    pub const EMPTY: Px = Px {
        cookie: 0,
        delta: 0,
        stash: NO_STASH,
        stash_len: 0,
        win: 0,
        ws_sub: NO_WS,
        ws_srv: NO_WS,
    };

    /// The (from, to) shift of the down window field when the server's scale
    /// is not the one the subscriber was told (`adv`), and the shift the up
    /// window field needs when the server does not scale at all.
    pub fn rescale(&self, adv: u8) -> Option<((u8, u8), u8)> {
        if self.ws_sub == NO_WS {
            return None; // no scaling on either side
        }
        let (from, up) = if self.ws_srv == NO_WS {
            (0, self.ws_sub)
        } else {
            (self.ws_srv, 0)
        };
        (from != adv || up != 0).then_some(((from, adv), up))
    }
}

pub(super) mod half_open;
mod segment;
pub use segment::*;

use super::acct::{AcctSink, CloseReason};
use super::entry::{flag, xflag, NONE, NO_GROUP};
use super::meta::{fast_v4, Kind};
use super::tcp_state::FlowState;
use super::{GwTables, GwWorker, SynProxy};
use crate::hw::TableAlloc;
use crate::verdict::{DropReason, Verdict, WorkerCounters};

impl<A: TableAlloc> GwWorker<A> {
    /// Whether a new SYN to VIP address `vip` gets a cookie now (the mode,
    /// and with `auto` the worker's half-open connections to that address).
    #[inline]
    fn proxy_active(&self, vip: [u8; 4]) -> bool {
        match self.cfg.syn_proxy {
            SynProxy::Off => false,
            SynProxy::On => true,
            SynProxy::Auto { .. } => self.vip_half_open.count(vip) >= self.half_open_share,
        }
    }

    /// Whether the SYN of up packet `m` is proxied: the proxy is active, an
    /// IPv4 subscriber to a VIP with a group, and nothing the start would
    /// refuse at once (session, authorization, draining: those get their
    /// usual answer from [`GwWorker::start`]).
    pub(super) fn proxies(&self, t: &GwTables, m: &Meta) -> bool {
        if m.kind != Kind::Up4 || self.cfg.syn_proxy == SynProxy::Off || self.draining {
            return false;
        }
        let svc = &t.services;
        let Some(g) = svc.vip(m.dst, m.dport).and_then(|g| svc.group(g)) else {
            return false;
        };
        if !self.proxy_active(m.dst) {
            return false;
        }
        match t.sessions.get(m.src).filter(|s| s.active) {
            Some(s) => s.allows(g.group.service),
            None => !self.cfg.require_session,
        }
    }

    /// Answer the SYN in `pkt` (up packet `m`) with the cookie SYN-ACK.
    pub(super) fn send_cookie(&mut self, pkt: &mut Pkt<'_>, m: &Meta, now: u64) -> Verdict {
        let l4 = m.l4 as usize;
        let Some(opts) = pkt.frame().get(l4..m.end as usize).map(|seg| {
            let t = TcpPacket::new_unchecked(seg);
            let opts = seg.get(tcp::HEADER_LEN..t.header_len()).unwrap_or(&[]);
            (t.seq_number(), SynOpts::from_options(opts))
        }) else {
            return Verdict::Drop(DropReason::BadL4);
        };
        let (isn, o) = opts;
        let slot = (now >> SLOT_SHIFT) as u32;
        let cookie = self.cookie_key.cookie(&Tuple::of(m), isn, slot, o);
        let mss = match self.cfg.mss_clamp_down {
            Some(c) => c.min(self.cfg.syn_proxy_mss),
            None => self.cfg.syn_proxy_mss,
        };
        let (ws, mac) = (self.cfg.syn_proxy_wscale, self.cfg.access_mac);
        if !syn_to_synack(pkt, m, o, cookie, mss, ws, mac) {
            return Verdict::Drop(DropReason::TooBig);
        }
        self.counters.syncookies_sent += 1;
        Verdict::Tx { port: pkt.port }
    }

    /// An ACK (up packet `i`) that matches no connection, with the proxy
    /// configured: a valid cookie opens the connection (the ACK becomes the
    /// server's SYN, its data kept for later), anything else is
    /// `syncookie_invalid`.
    pub(super) fn cookie_ack(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        i: usize,
        now: u64,
        c: &mut WorkerCounters,
    ) -> Result<(), Verdict> {
        let m = self.meta[i];
        let Some(SegNums { seq, ack, win }) = SegNums::of(pkt, &m) else {
            return Err(Verdict::Drop(DropReason::BadL4));
        };
        let cookie = ack.wrapping_sub(1);
        let Some(o) = self.valid_cookie(&m, seq, ack, now) else {
            return Err(Verdict::Drop(DropReason::SyncookieInvalid));
        };
        if !ack_to_syn_fits(pkt, &m) {
            return Err(Verdict::Drop(DropReason::TooBig));
        }
        // The connection first (its refusals answer the ACK as it is), then
        // the ACK becomes the server's SYN.
        let mut ms = m;
        ms.tcp_flags = flags::SYN;
        self.opened += 1;
        let e = match self.start(t, pkt, &ms, now, NONE, c) {
            Ok(e) => e,
            Err(v) => {
                if v == (Verdict::Tx { port: pkt.port }) {
                    // The RST refusing it: the subscriber's side is
                    // established, its RST must carry the next sequence
                    // number it expects (RFC 5961 §3.2).
                    // (the RST's TCP header follows an option-less IPv4 header)
                    let l4 = m.l3 as usize + ipv4::HEADER_LEN;
                    set_seq_ack(pkt.data_mut(), l4, cookie.wrapping_add(1), seq);
                }
                return Err(v);
            }
        };
        // The data the ACK carries is kept for the server's handshake.
        let (stash, stash_len) = if m.payload_len() > 0 {
            let kept = self.stash_take(pkt.frame());
            if kept.0 == NO_STASH {
                // (the subscriber retransmits it once the server answered)
                self.counters.synproxy_stash_miss += 1;
            }
            kept
        } else {
            (NO_STASH, 0)
        };
        self.rewrite_as_syn(pkt, i, o, win);
        self.meta[i].e = e;
        self.sub_acked(e);
        self.hot[e as usize].xflags |= xflag::PROXY;
        self.px[e as usize] = Px {
            cookie,
            delta: seq,
            stash,
            stash_len,
            win,
            ws_sub: o.wscale,
            ws_srv: NO_WS,
        };
        self.counters.syncookies_valid += 1;
        Ok(())
    }

    /// An up segment of proxied connection `e` while the server's handshake
    /// is pending: a RST goes through; the first segment with data is kept
    /// (`Consumed`); anything else is `synproxy_early`.
    pub(super) fn early_segment(
        &mut self,
        pkt: &mut Pkt<'_>,
        i: usize,
        e: u32,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Option<Verdict> {
        let m = self.meta[i];
        if m.tcp_flags & flags::RST != 0 {
            return None;
        }
        // The server has not answered for the SYN timeout since the
        // connection opened: the subscriber, established with the GW, gets
        // the RST the server's silence means (its segment is the RST now).
        let acks_cookie = self.acks_cookie(pkt, &m, e);
        if acks_cookie
            && u64::from((now as u32).wrapping_sub(self.cold[e as usize].start_ms))
                >= self.cfg.timeouts.syn_ms
        {
            return Some(self.server_silent(pkt, i, e, now, acct));
        }
        // The server has been silent for RESYN_MS since the SYN: the SYN may
        // be lost. The subscriber's retransmission (seq ISN + 1, ack cookie
        // + 1) carries the cookie again: it becomes the SYN once more.
        if (now as u32).wrapping_sub(self.hot[e as usize].last_ms) >= RESYN_MS
            && m.tcp_flags & (flags::SYN | flags::FIN | flags::ACK) == flags::ACK
            && self.resyn(pkt, i, now)
        {
            self.counters.synproxy_resyn += 1;
            return None;
        }
        if acks_cookie && m.payload_len() > 0 && self.px[e as usize].stash == NO_STASH {
            let (s, len) = self.stash_take(pkt.frame());
            if s != NO_STASH {
                let px = &mut self.px[e as usize];
                (px.stash, px.stash_len) = (s, len);
                return Some(Verdict::Consumed);
            }
        }
        Some(Verdict::Drop(DropReason::SynproxyEarly))
    }

    /// Whether up segment `m` of proxied connection `e` is the subscriber's
    /// in its established state: ACK without SYN or RST, acknowledging the
    /// cookie SYN-ACK (cookie + 1).
    fn acks_cookie(&self, pkt: &Pkt<'_>, m: &Meta, e: u32) -> bool {
        m.tcp_flags & (flags::SYN | flags::RST | flags::ACK) == flags::ACK
            && SegNums::of(pkt, m)
                .is_some_and(|n| n.ack == self.px[e as usize].cookie.wrapping_add(1))
    }

    /// Up segment `i` of proxied connection `e` whose server stayed silent
    /// for the SYN timeout becomes the RST to the subscriber, in its
    /// sequence space (seq: the cookie + 1, the next sequence number the
    /// subscriber expects, RFC 5961 §3.2); the connection ends as by a RST
    /// (`synproxy_server_silent`).
    fn server_silent(
        &mut self,
        pkt: &mut Pkt<'_>,
        i: usize,
        e: u32,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Verdict {
        let m = self.meta[i];
        let Some(n) = SegNums::of(pkt, &m) else {
            return Verdict::Drop(DropReason::BadL4);
        };
        let seg_len = m.payload_len() as u32 + u32::from(m.tcp_flags & flags::FIN != 0);
        let r = TcpReply {
            ports: (m.dport, m.sport),
            // (the GW's SYN-ACK's cookie + 1, whatever the segment claims)
            seq: self.px[e as usize].cookie.wrapping_add(1),
            ack: n.seq.wrapping_add(seg_len),
            flags: flags::RST | flags::ACK,
            win: 0,
            opts: &[],
        };
        tcp_reply_v4(pkt, m.l3 as usize, (m.dst, m.src), &r, self.cfg.access_mac);
        self.close_flow(e, CloseReason::Rst, now, acct);
        self.counters.synproxy_server_silent += 1;
        Verdict::Tx { port: pkt.port }
    }

    /// Rewrite up packet `i` (a subscriber's ACK-bearing segment with a
    /// valid cookie) into the server's SYN again; whether it was.
    fn resyn(&mut self, pkt: &mut Pkt<'_>, i: usize, now: u64) -> bool {
        let m = self.meta[i];
        let Some(n) = SegNums::of(pkt, &m) else {
            return false;
        };
        match self.valid_cookie(&m, n.seq, n.ack, now) {
            Some(o) if ack_to_syn_fits(pkt, &m) => {
                self.rewrite_as_syn(pkt, i, o, n.win);
                true
            }
            _ => false,
        }
    }

    /// The options of the cookie an ACK-bearing segment of up packet `m`
    /// (sequence number `seq`, acknowledgment `ack`) carries, if valid now.
    fn valid_cookie(&self, m: &Meta, seq: u32, ack: u32, now: u64) -> Option<SynOpts> {
        let slot = (now >> SLOT_SHIFT) as u32;
        self.cookie_key.check(
            &Tuple::of(m),
            seq.wrapping_sub(1),
            ack.wrapping_sub(1),
            slot,
        )
    }

    /// Up packet `i` (an ACK-bearing segment with window field `win`,
    /// [`ack_to_syn_fits`]) rewritten into the server's SYN with the
    /// cookie's options `o`; its meta follows.
    fn rewrite_as_syn(&mut self, pkt: &mut Pkt<'_>, i: usize, o: SynOpts, win: u16) {
        // (the SYN's window: the segment's as the subscriber means it,
        // unscaled)
        let syn_win = if o.wscale == NO_WS {
            win
        } else {
            scale(win, o.wscale, 0)
        };
        let end = ack_to_syn(pkt, &self.meta[i], o, syn_win);
        let mi = &mut self.meta[i];
        mi.tcp_flags = flags::SYN;
        mi.end = end as u16;
        mi.payload = end as u8;
    }

    /// The server's SYN-ACK (down packet `i`) of proxied connection `e`:
    /// the translation is known; the packet becomes the ACK that completes
    /// the server's handshake (`Err(Tx)`), or the subscriber's early
    /// segment, then rewritten as an up packet (`Ok`: packet `i` is now up).
    pub(super) fn proxy_synack(
        &mut self,
        pkt: &mut Pkt<'_>,
        i: usize,
        now: u64,
    ) -> Result<(), Verdict> {
        let m = self.meta[i];
        let e = m.e;
        let Some(seg) = pkt.frame().get(m.l4 as usize..m.end as usize) else {
            return Err(Verdict::Drop(DropReason::BadL4));
        };
        let t = TcpPacket::new_unchecked(seg);
        let (srv_isn, ack) = (t.seq_number(), t.ack_number());
        if ack != self.px[e as usize].delta {
            // (not the answer to the SYN the GW sent: stale or forged)
            return Err(Verdict::Drop(DropReason::SynproxyBadSynack));
        }
        let ws_srv = window_scale(seg);
        let adv = self.cfg.syn_proxy_wscale;
        let px = &mut self.px[e as usize];
        px.delta = px.cookie.wrapping_sub(srv_isn);
        px.ws_srv = ws_srv;
        let rescale = px.rescale(adv).is_some();
        let (stash, stash_len, win) = (px.stash, px.stash_len, px.win);
        px.stash = NO_STASH;
        let h = &mut self.hot[e as usize];
        if rescale {
            h.xflags |= xflag::RESCALE;
        }
        // (the window cap's view of the handshake: the subscriber scales
        // when it sent the option and so did the server)
        h.xflags |= xflag::SRV_ANSWERED;
        h.flags |= flag::SYNACK_SEEN | if ws_srv != NO_WS { flag::WS_DOWN } else { 0 };
        h.count_down(m.ip_len());
        h.last_ms = now as u32;
        self.tcp_moved(e, FlowState::SynSent, FlowState::Established, None, now);
        self.counters.down_pkts += 1;
        if stash != NO_STASH {
            let len = stash_len as usize;
            if pkt.data().len() >= len {
                pkt.data_mut()[..len].copy_from_slice(&self.stash[stash as usize][..len]);
                pkt.set_len(len);
                self.stash_give(stash);
                if let Some(mut nm) = fast_v4(pkt.frame()) {
                    nm.kind = Kind::Up4;
                    nm.e = e;
                    self.meta[i] = nm;
                    self.counters.synproxy_stashed += 1;
                    return Ok(());
                }
                // (a frame the fast parse took when it was kept)
                return Err(Verdict::Drop(DropReason::SynproxyEarly));
            }
            self.stash_give(stash);
            self.counters.synproxy_stash_miss += 1;
        }
        // (a server that does not scale reads the window field as bytes)
        let win = if ws_srv == NO_WS && self.px[e as usize].ws_sub != NO_WS {
            scale(win, self.px[e as usize].ws_sub, 0)
        } else {
            win
        };
        let mac = self.cfg.server_mac;
        synack_to_ack(pkt, &m, win, mac);
        Err(Verdict::Tx {
            port: self.cfg.server_port,
        })
    }

    /// Keep a copy of `frame` (a slot and its length), or [`NO_STASH`]: the
    /// pool is full or the frame too large, or the fast parse would not take
    /// it back.
    fn stash_take(&mut self, frame: &[u8]) -> (u16, u16) {
        if frame.len() > STASH_BYTES || fast_v4(frame).is_none() {
            return (NO_STASH, 0);
        }
        let Some(s) = self.stash_free.take() else {
            return (NO_STASH, 0);
        };
        self.stash[s as usize][..frame.len()].copy_from_slice(frame);
        (s as u16, frame.len() as u16)
    }

    /// Give back stash slot `s` (nothing for [`NO_STASH`]).
    pub(super) fn stash_give(&mut self, s: u16) {
        if s != NO_STASH {
            self.stash_free.give(s as u32);
        }
    }

    /// The sequence translation of a proxied connection's segment going up
    /// (`l4`: its TCP header onward, already NAT'd).
    #[inline]
    pub(super) fn proxy_up(&self, f: &mut [u8], e: u32) {
        let px = &self.px[e as usize];
        let up = if self.hot[e as usize].xflags & xflag::RESCALE != 0 {
            px.rescale(self.cfg.syn_proxy_wscale).map_or(0, |r| r.1)
        } else {
            0
        };
        translate_up(f, self.px_delta(e), up);
    }

    /// The same going down.
    #[inline]
    pub(super) fn proxy_down(&self, f: &mut [u8], e: u32) {
        let px = &self.px[e as usize];
        let shift = if self.hot[e as usize].xflags & xflag::RESCALE != 0 {
            px.rescale(self.cfg.syn_proxy_wscale).map(|r| r.0)
        } else {
            None
        };
        translate_down(f, self.px_delta(e), shift);
    }

    /// The sequence translation of proxied connection `e` ([`Px::delta`]).
    #[inline]
    fn px_delta(&self, e: u32) -> u32 {
        let px = &self.px[e as usize];
        if self.hot[e as usize].xflags & xflag::SRV_ANSWERED != 0 {
            px.delta
        } else {
            px.cookie.wrapping_add(1)
        }
    }

    /// A proxied connection ends: its early segment, if any, is given back.
    pub(super) fn proxy_close(&mut self, e: u32) {
        if self.hot[e as usize].xflags & xflag::PROXY != 0 {
            let s = core::mem::replace(&mut self.px[e as usize].stash, NO_STASH);
            self.stash_give(s);
        }
    }

    /// TCP connection `e`'s subscriber sent an ACK (or the connection
    /// ended): no longer half-open. Idempotent.
    #[inline]
    pub(super) fn sub_acked(&mut self, e: u32) {
        let h = &mut self.hot[e as usize];
        if h.xflags & xflag::SUB_ACKED == 0 {
            h.xflags |= xflag::SUB_ACKED;
            debug_assert!(self.half_open > 0, "half-open count underflow");
            self.half_open = self.half_open.saturating_sub(1);
            if let Some(vip) = self.half_open_vip(e) {
                self.vip_half_open.sub(vip);
            }
        }
    }

    /// TCP connection `e` starts half-open (its SYN was sent on).
    #[inline]
    pub(super) fn half_opened(&mut self, e: u32) {
        self.half_open += 1;
        if let Some(vip) = self.half_open_vip(e) {
            self.vip_half_open.add(vip);
        }
    }

    /// The VIP address connection `e` counts under while half-open, with
    /// `auto` (the only mode that reads the counts; the mode is fixed for
    /// the worker's life): an IPv4 subscriber's connection to a VIP (a
    /// group's), the only ones the proxy answers.
    #[inline]
    fn half_open_vip(&self, e: u32) -> Option<[u8; 4]> {
        if !matches!(self.cfg.syn_proxy, SynProxy::Auto { .. }) {
            return None;
        }
        let h = &self.hot[e as usize];
        (h.flags & (flag::V6 | flag::NAT66) == 0 && self.cold[e as usize].group != NO_GROUP)
            .then_some(h.dst_ip)
    }

    /// Half-open connections of this worker: TCP connections whose
    /// subscriber has not sent an ACK yet (a SYN flood's, whether or not
    /// the server answered).
    pub fn half_open(&self) -> u32 {
        self.half_open
    }

    /// Free slots of the early-segment pool.
    pub fn synproxy_stash_free(&self) -> u32 {
        self.stash_free.available()
    }
}

const _: () = assert!(core::mem::size_of::<Px>() == 16);
