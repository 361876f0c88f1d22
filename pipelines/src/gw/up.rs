//! The up path: subscriber → server (S31–S46, S61–S67, S70–S77).

use super::entry::{flag, xflag, Hot, NONE};
use super::hash::{flow_hash, flow_hash6};
use super::meta::{Kind, Meta};
use super::rewrite::{nat4, nat6, ports, set_macs};
use super::tcp_state::{idle_timeout_ms, tcp_next, Dir, FlowState, PROTO_TCP};
use super::{acct, addr16, last4, AcctSink, GwTables, GwWorker, SynProxy};
use crate::hw::{Prefetch, TableAlloc};
use crate::verdict::{DropReason, Pkt, Verdict, WorkerCounters};
use crate::wire::tcp::flags;
use crate::wire::{self, tcp::TcpPacket};
use crate::xlat::{self, To4};
use core::ops::Range;

/// The hash offset of NAT66 tuples (their VIP is not an IPv4 address).
const NAT66_TAG: u32 = 0x6666_6666;

impl<A: TableAlloc> GwWorker<A> {
    /// Hash the up tuple of packet `i` and prefetch its bucket.
    #[inline(always)]
    pub(super) fn up_hash<P: Prefetch>(&mut self, pkt: &Pkt<'_>, i: usize, pf: &P) {
        let seed = self.cfg.hash_seed;
        let m = &mut self.meta[i];
        m.h = match m.kind {
            Kind::Up4 => flow_hash(
                seed,
                u32::from_be_bytes(m.src),
                u32::from_be_bytes(m.dst),
                m.sport,
                m.dport,
                m.proto,
            ),
            _ => {
                let src6 = addr16(pkt.frame(), m.l3 as usize + 8);
                let dst = if m.kind == Kind::Up66 {
                    u32::from_be_bytes(m.dst) ^ NAT66_TAG
                } else {
                    u32::from_be_bytes(m.dst)
                };
                flow_hash6(seed, &src6, dst, m.sport, m.dport, m.proto)
            }
        };
        pf.read(self.up.primary(m.h));
    }

    /// Whether entry `h` (index `e`) is the connection of up packet `m`.
    #[inline(always)]
    fn up_is(&self, f: &[u8], m: &Meta, e: u32, h: &Hot) -> bool {
        if h.sub_ip != m.src
            || h.dst_ip != m.dst
            || h.sub_port != m.sport
            || h.dst_port != m.dport
            || h.proto != m.proto
        {
            return false;
        }
        match m.kind {
            Kind::Up4 => h.flags & (flag::V6 | flag::NAT66) == 0,
            Kind::Up64 => {
                h.flags & (flag::V6 | flag::NAT66) == flag::V6
                    && self.sub6[e as usize][..] == f[m.l3 as usize + 8..m.l3 as usize + 24]
            }
            _ => {
                h.has(flag::NAT66)
                    && self.sub6[e as usize][..] == f[m.l3 as usize + 8..m.l3 as usize + 24]
                    && self.vip6[e as usize][..] == f[m.l3 as usize + 24..m.l3 as usize + 40]
            }
        }
    }

    /// The entry of up packet `m`, or [`NONE`].
    #[inline(always)]
    pub(super) fn up_find(&self, pkt: &Pkt<'_>, m: &Meta) -> u32 {
        let f = pkt.frame();
        self.up
            .find(m.h, |e| self.up_is(f, m, e, &self.hot[e as usize]))
            .unwrap_or(NONE)
    }

    /// The open stage for up packet `i`: a hit, a lazy expiry, a late packet
    /// of a connection on hold, a revival or a new connection.
    pub(super) fn up_resolve(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        i: usize,
        now: u64,
        acct: &mut impl AcctSink,
        c: &mut WorkerCounters,
    ) -> Result<(), Verdict> {
        let m = self.meta[i];
        let syn = m.proto == PROTO_TCP
            && m.tcp_flags & (flags::SYN | flags::ACK | flags::RST | flags::FIN) == flags::SYN;
        let mut e = m.e;
        let mut held = NONE;
        if self.opened > 0 && (e == NONE || !self.hot[e as usize].has(flag::UP_LINKED)) {
            // An earlier packet of this burst may have opened it, or given
            // the tuple a new binding in place of the one the lookup found.
            e = self.up_find(pkt, &m);
            self.meta[i].e = e;
        }
        if e != NONE {
            let h = &self.hot[e as usize];
            if h.state.is_open() {
                if !self.idle_expired(h, now) {
                    if h.xflags & xflag::PROXY != 0 && h.state == FlowState::SynSent {
                        // (an early segment may be kept whole: not a chain)
                        if m.tail > 0 {
                            return Err(Verdict::Drop(DropReason::Oversize));
                        }
                        if let Some(v) = self.early_segment(pkt, i, e, now, acct) {
                            return Err(v);
                        }
                    }
                    return Ok(());
                }
                self.expire_entry(e, now, acct);
                e = NONE;
            } else if syn {
                // A new connection on the tuple of one on hold.
                held = e;
                e = NONE;
            } else {
                return Ok(()); // a late packet of the closed connection
            }
        }
        debug_assert_eq!(e, NONE);
        if m.proto == PROTO_TCP && !syn {
            if self.cfg.syn_proxy != SynProxy::Off
                && m.kind == Kind::Up4
                && m.tcp_flags & (flags::SYN | flags::ACK | flags::RST | flags::FIN) == flags::ACK
            {
                // (its data may be kept whole: not a chain)
                if m.tail > 0 {
                    return Err(Verdict::Drop(DropReason::Oversize));
                }
                return self.cookie_ack(t, pkt, i, now, c);
            }
            return Err(Verdict::Drop(DropReason::NoFlow));
        }
        if syn && held == NONE && self.proxies(t, &m) {
            return Err(self.send_cookie(pkt, &m, now));
        }
        self.opened += 1;
        let e = self.start(t, pkt, &m, now, held, c)?;
        self.meta[i].e = e;
        Ok(())
    }

    /// Rewrite and account up packet `i` of its connection (S34–S46,
    /// S70–S77).
    pub(super) fn forward_up(
        &mut self,
        t: &GwTables,
        pkt: &mut Pkt<'_>,
        i: usize,
        now: u64,
    ) -> Verdict {
        let m = self.meta[i];
        let e = m.e;
        let Some(srv_mac) = self.next_hop(t, e) else {
            return Verdict::Drop(DropReason::NoNeighbor);
        };
        let h = &mut self.hot[e as usize];
        let src_mac: [u8; 6] = pkt.frame()[6..12].try_into().unwrap_or([0; 6]);
        if self.lbs.get(h.lb) != src_mac {
            if let Some(lb) = self.lbs.index(src_mac) {
                h.lb = lb;
                self.counters.lb_moves += 1;
                self.note_entry_point(t, e, src_mac);
            }
        }
        let h = &mut self.hot[e as usize];
        if !h.has(flag::ATTR_DONE) && m.payload_len() > 0 {
            h.flags |= flag::ATTR_DONE;
            if let Some(a) = acct::find_attr(&pkt.frame()[m.payload as usize..m.end as usize]) {
                match self.attr_free.take() {
                    Some(s) => {
                        self.attrs[s as usize] = a;
                        self.cold[e as usize].attr = s;
                    }
                    None => self.counters.attr_full += 1,
                }
            }
        }
        let h = &self.hot[e as usize];
        let (pool, key_port, srv_ip, srv_port) = (h.pool, h.key_port, h.srv_ip, h.srv_port);
        let pool_ip = self.ks.pool()[pool as usize];
        let server_mac = self.cfg.server_mac;
        let l4 = match m.kind {
            Kind::Up4 => {
                let f = &mut pkt.data_mut()[..m.end as usize];
                nat4(
                    f,
                    &m,
                    (srv_mac, server_mac),
                    (pool_ip, key_port),
                    (srv_ip, srv_port),
                    key_port,
                );
                m.l4 as usize..m.end as usize
            }
            Kind::Up66 => {
                let Some(src6) = self.cfg.pool6.get(pool as usize).copied() else {
                    return Verdict::Drop(DropReason::UnsupportedEthertype);
                };
                let srv6 = self.srv6[e as usize];
                let f = &mut pkt.data_mut()[..m.end as usize];
                nat6(
                    f,
                    &m,
                    (srv_mac, server_mac),
                    (&src6, key_port),
                    (&srv6, srv_port),
                );
                m.l4 as usize..m.end as usize
            }
            _ => {
                // NAT64: the IP header first (it cannot fail for a frame
                // `parse` accepted; a failure is still dropped under its
                // reason, before any counter of the connection moved), then
                // the ports, then the MACs.
                let Some(n64) = self.cfg.nat64 else {
                    return Verdict::Drop(DropReason::UnsupportedEthertype);
                };
                let l4_len = m.end as usize - m.l4 as usize;
                // (IPv4 fragmentation and Packet Too Big toward the
                // subscriber are not done: only mtu4 < mtu6 - 20 gets here)
                if wire::ipv4::HEADER_LEN + l4_len > n64.xlat.mtu4 as usize {
                    return Verdict::Drop(DropReason::TooBig);
                }
                let to = To4::new(pool_ip, srv_ip).ident(self.xlat_ident);
                if let Err(r) = xlat::v6_to_v4(pkt, &n64.xlat, &to) {
                    return Verdict::Drop(r);
                }
                self.xlat_ident = self.xlat_ident.wrapping_add(1);
                let l4 = m.l3 as usize + wire::ipv4::HEADER_LEN;
                let f = pkt.data_mut();
                ports(f, l4, m.proto, (key_port, srv_port), key_port);
                set_macs(f, srv_mac, server_mac);
                l4..l4 + l4_len
            }
        };
        if m.proto == PROTO_TCP && m.tcp_flags & (flags::SYN | flags::ACK) == flags::SYN {
            self.syn_up(pkt, l4.clone(), e);
        }
        // (an established connection, not proxied: one test)
        if self.hot[e as usize].xflags & (xflag::PROXY | xflag::SUB_ACKED) != xflag::SUB_ACKED {
            self.tcp_up_rare(pkt, l4, e, m.tcp_flags);
        }
        self.counters.up_pkts += 1;
        let server_port = Verdict::Tx {
            port: self.cfg.server_port,
        };
        let h = &mut self.hot[e as usize];
        if h.state == FlowState::Closed {
            self.counters.late_pkts += 1;
            return server_port;
        }
        h.count_up(m.ip_len());
        h.last_ms = now as u32;
        if h.proto == PROTO_TCP {
            let old = h.state;
            let (s, closed) = tcp_next(old, Dir::Up, m.tcp_flags);
            self.tcp_moved(e, old, s, closed, now);
        }
        server_port
    }

    /// A TCP connection went from `old` to `new` (`closed`: it ends): note
    /// Established, queue the close for the accounting lap, or bring the
    /// timer forward when the new state's idle timeout is shorter.
    #[inline]
    pub(super) fn tcp_moved(
        &mut self,
        e: u32,
        old: FlowState,
        new: FlowState,
        closed: Option<super::CloseReason>,
        now: u64,
    ) {
        if old == new {
            return;
        }
        let h = &mut self.hot[e as usize];
        h.state = new;
        if new == FlowState::Established {
            h.flags |= flag::ESTABLISHED;
        }
        if let Some(r) = closed {
            // (state Closed now: later packets of the burst are late.) A
            // packet closes at most one connection, so the burst's list
            // has room; were it full, the record would be counted lost.
            match self.closing.get_mut(self.nclosing) {
                Some(slot) => {
                    *slot = (e, r);
                    self.nclosing += 1;
                }
                None => self.counters.acct_queue_full += 1,
            }
            return;
        }
        let t = &self.cfg.timeouts;
        let (to_old, to_new) = (
            idle_timeout_ms(old, h.proto, t),
            idle_timeout_ms(new, h.proto, t),
        );
        if to_new < to_old {
            let last = super::t64(now, h.last_ms);
            self.wheel.reschedule(
                &mut self.cold,
                e,
                last.saturating_add(to_new).saturating_add(1),
            );
        }
    }

    /// A TCP segment going up (already NAT'd) of a proxied connection, or
    /// of one whose subscriber has not sent an ACK yet: the sequence
    /// translation, the end of the half-open count.
    fn tcp_up_rare(&mut self, pkt: &mut Pkt<'_>, l4: Range<usize>, e: u32, tcp_flags: u8) {
        let x = self.hot[e as usize].xflags;
        if x & xflag::PROXY != 0 {
            self.proxy_up(&mut pkt.data_mut()[l4], e);
        }
        if x & (xflag::SUB_ACKED | xflag::SRV_ANSWERED) == xflag::SRV_ANSWERED
            && tcp_flags & flags::ACK != 0
        {
            self.sub_acked(e);
        }
    }

    /// A SYN going up (already NAT'd): MSS clamp, and the Window Scale
    /// option noted when the window cap is on.
    #[inline]
    fn syn_up(&mut self, pkt: &mut Pkt<'_>, l4: Range<usize>, e: u32) {
        let mut t = TcpPacket::new_unchecked(&mut pkt.data_mut()[l4]);
        if let Some(m) = self.cfg.mss_clamp_up {
            if t.clamp_mss(m).is_some() {
                self.counters.mss_clamped_up += 1;
            }
        }
        if self.cfg.window_cap_down.is_some() {
            // (a retransmitted SYN updates its own bit only)
            let ws = if t.has_window_scale() { flag::WS_UP } else { 0 };
            let h = &mut self.hot[e as usize];
            h.flags = (h.flags & !flag::WS_UP) | ws;
        }
    }

    /// The IPv6 subscriber / VIP of up packet `m` (NAT64, NAT66).
    pub(super) fn up_addrs6(pkt: &Pkt<'_>, m: &Meta) -> ([u8; 16], [u8; 16]) {
        let f = pkt.frame();
        (addr16(f, m.l3 as usize + 8), addr16(f, m.l3 as usize + 24))
    }

    /// The up-table hash of entry `e` (to remove it).
    pub(super) fn entry_hash(&self, e: u32) -> u64 {
        let h = &self.hot[e as usize];
        let seed = self.cfg.hash_seed;
        if h.has(flag::NAT66) {
            flow_hash6(
                seed,
                &self.sub6[e as usize],
                u32::from_be_bytes(last4(&self.vip6[e as usize])) ^ NAT66_TAG,
                h.sub_port,
                h.dst_port,
                h.proto,
            )
        } else if h.has(flag::V6) {
            flow_hash6(
                seed,
                &self.sub6[e as usize],
                u32::from_be_bytes(h.dst_ip),
                h.sub_port,
                h.dst_port,
                h.proto,
            )
        } else {
            flow_hash(
                seed,
                u32::from_be_bytes(h.sub_ip),
                u32::from_be_bytes(h.dst_ip),
                h.sub_port,
                h.dst_port,
                h.proto,
            )
        }
    }
}
