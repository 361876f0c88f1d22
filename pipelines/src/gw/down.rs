//! The down path: server → subscriber (S101–S117).

use super::entry::{flag, xflag, NONE};
use super::keys::KeyLoc;
use super::meta::{Kind, Meta};
use super::rewrite::{nat4, nat6, ports, set_macs};
use super::tcp_state::{tcp_next, Dir, FlowState, PROTO_ICMP, PROTO_TCP};
use super::{rst, AcctSink, GwWorker};
use crate::hw::{Prefetch, TableAlloc};
use crate::verdict::{DropReason, Pkt, Verdict};
use crate::wire::tcp::flags;
use crate::wire::{self, tcp::TcpPacket};
use crate::xlat::{self, To6};
use core::ops::Range;

impl<A: TableAlloc> GwWorker<A> {
    /// Find the key of down packet `i`: another worker's key → `Handoff`
    /// (frame untouched); a probe port → `Control`; else its key index, and
    /// prefetch the chain head.
    #[inline(always)]
    pub(super) fn down_locate<P: Prefetch>(&mut self, i: usize, pf: &P) -> Result<(), Verdict> {
        let m = &mut self.meta[i];
        let loc = match m.kind {
            Kind::Down4 => self.ks.locate(m.dst, m.dport),
            _ => self.ks.locate_port(m.aux, m.dport),
        };
        let k = match loc {
            KeyLoc::NotPool => return Err(Verdict::Drop(DropReason::NotForUs)),
            KeyLoc::Reserved => return Err(Verdict::Control),
            KeyLoc::Unowned => return Err(Verdict::Drop(DropReason::NoKey)),
            KeyLoc::Key { owner, .. } if owner != self.id => {
                return Err(Verdict::Handoff { worker: owner })
            }
            KeyLoc::Key { pool_idx, off, .. } => self.ks.key_index(pool_idx, off),
        };
        m.aux = k;
        pf.read(&self.key_head[k as usize]);
        Ok(())
    }

    /// The connection of down packet `m` on its key's chain (starting at
    /// `m.e`), or [`NONE`]. A connection on hold answers only if it was
    /// closed by FIN or RST (its late packets are translated), not after an
    /// idle expiry.
    #[inline(always)]
    pub(super) fn down_find(&self, pkt: &Pkt<'_>, m: &Meta) -> u32 {
        let mut e = m.e;
        while e != NONE {
            let h = &self.hot[e as usize];
            let live = h.state.is_open() || h.has(flag::UP_LINKED);
            if live
                && h.proto == m.proto
                && (m.proto == PROTO_ICMP || h.srv_port == m.sport)
                && match m.kind {
                    Kind::Down4 => h.srv_ip == m.src && !h.has(flag::NAT66),
                    _ => {
                        h.has(flag::NAT66)
                            && self.srv6[e as usize][..]
                                == pkt.frame()[m.l3 as usize + 8..m.l3 as usize + 24]
                    }
                }
            {
                return e;
            }
            e = h.key_next;
        }
        NONE
    }

    /// The open stage for down packet `i`: no connection, or a lazy idle
    /// expiry, is `no_key`.
    pub(super) fn down_resolve(
        &mut self,
        pkt: &mut Pkt<'_>,
        i: usize,
        now: u64,
        acct: &mut impl AcctSink,
    ) -> Result<(), Verdict> {
        let m = self.meta[i];
        if m.e == NONE {
            return Err(Verdict::Drop(DropReason::NoKey));
        }
        let h = &self.hot[m.e as usize];
        if h.state.is_open() && self.idle_expired(h, now) {
            self.expire_entry(m.e, now, acct);
            return Err(Verdict::Drop(DropReason::NoKey));
        }
        if m.ttl <= 1 {
            return Err(Verdict::Drop(DropReason::TtlExceeded));
        }
        if h.xflags & xflag::PROXY != 0
            && h.state == FlowState::SynSent
            && m.proto == PROTO_TCP
            && m.tcp_flags & (flags::SYN | flags::ACK | flags::RST) == flags::SYN | flags::ACK
        {
            if m.tail > 0 {
                return Err(Verdict::Drop(DropReason::Oversize));
            }
            return self.proxy_synack(pkt, i, now);
        }
        Ok(())
    }

    /// Rewrite and account down packet `i` of its connection.
    pub(super) fn forward_down(&mut self, pkt: &mut Pkt<'_>, i: usize, now: u64) -> Verdict {
        let m = self.meta[i];
        let e = m.e;
        let h = &self.hot[e as usize];
        let (dst_ip, dst_port, sub_ip, sub_port, v6) =
            (h.dst_ip, h.dst_port, h.sub_ip, h.sub_port, h.has(flag::V6));
        let (lb_mac, access_mac) = (self.lbs.get(h.lb), self.cfg.access_mac);
        let (l4, ip_len): (Range<usize>, usize) = if m.kind == Kind::Down66 {
            let (vip6, sub6) = (self.vip6[e as usize], self.sub6[e as usize]);
            let f = &mut pkt.data_mut()[..m.end as usize];
            nat6(
                f,
                &m,
                (lb_mac, access_mac),
                (&vip6, h.dst_port),
                (&sub6, h.sub_port),
            );
            (m.l4 as usize..m.end as usize, m.ip_len())
        } else if v6 {
            // NAT64: IPv4 -> IPv6 toward the subscriber, then the ports
            // (the translation moves the payload: not of a chain).
            if m.tail > 0 {
                return Verdict::Drop(DropReason::Oversize);
            }
            let Some(n64) = self.cfg.nat64 else {
                return Verdict::Drop(DropReason::UnsupportedEthertype);
            };
            let l4_len = m.end as usize - m.l4 as usize;
            // (a first fragment gets a Fragment header)
            let fh = if m.frag { 8 } else { 0 };
            let ip_len = wire::ipv6::HEADER_LEN + fh + l4_len;
            if ip_len > n64.xlat.mtu6 as usize {
                if m.frag {
                    return Verdict::Drop(DropReason::XlatFragTooBig);
                }
                // No IPv6 fragmentation here (RFC 7915 §4 would fragment a
                // DF = 0 packet, and a fragment again): with DF, tell the
                // server the MTU.
                let df = pkt.frame()[m.l3 as usize + 6] & 0x40 != 0;
                let Ok(p) = wire::parse(pkt.frame()) else {
                    return Verdict::Drop(DropReason::TooBig);
                };
                if !df {
                    return Verdict::Drop(DropReason::TooBig);
                }
                let mtu =
                    n64.xlat.mtu6 - wire::ipv6::HEADER_LEN as u16 + wire::ipv4::HEADER_LEN as u16;
                rst::frag_needed_v4(pkt, &p, mtu, self.cfg.server_mac);
                self.counters.frag_needed += 1;
                return Verdict::Tx { port: pkt.port };
            }
            let to = To6::new(n64.prefix.embed(dst_ip), self.sub6[e as usize]);
            if let Err(r) = xlat::v4_to_v6(pkt, &n64.xlat, &to) {
                return Verdict::Drop(r);
            }
            let l4 = m.l3 as usize + wire::ipv6::HEADER_LEN + fh;
            let f = pkt.data_mut();
            ports(f, l4, m.proto, (dst_port, sub_port), sub_port);
            set_macs(f, lb_mac, access_mac);
            (l4..l4 + l4_len, ip_len)
        } else {
            let f = &mut pkt.data_mut()[..m.end as usize];
            nat4(
                f,
                &m,
                (lb_mac, access_mac),
                (dst_ip, dst_port),
                (sub_ip, sub_port),
                sub_port,
            );
            (m.l4 as usize..m.end as usize, m.ip_len())
        };
        if m.proto == PROTO_TCP {
            if self.hot[e as usize].xflags & xflag::PROXY != 0 {
                self.proxy_down(&mut pkt.data_mut()[l4.clone()], e);
            }
            self.tcp_down(pkt, l4, m.tcp_flags, e);
        }
        self.counters.down_pkts += 1;
        let access = Verdict::Tx {
            port: self.cfg.access_port,
        };
        let h = &mut self.hot[e as usize];
        if h.state == FlowState::Closed {
            self.counters.late_pkts += 1;
            return access;
        }
        h.count_down(ip_len);
        h.last_ms = now as u32;
        if h.proto == PROTO_TCP {
            let old = h.state;
            let (s, closed) = tcp_next(old, Dir::Down, m.tcp_flags);
            self.tcp_moved(e, old, s, closed, now);
        }
        access
    }

    /// A TCP segment going down (already NAT'd): MSS clamp of a SYN-ACK,
    /// window scaling learned from it, and the window cap.
    #[inline]
    fn tcp_down(&mut self, pkt: &mut Pkt<'_>, l4: Range<usize>, tcp_flags: u8, e: u32) {
        let cap = self.cfg.window_cap_down;
        let syn_ack = tcp_flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK;
        if syn_ack {
            self.hot[e as usize].xflags |= xflag::SRV_ANSWERED;
        }
        if !syn_ack && cap.is_none() {
            return;
        }
        let mut t = TcpPacket::new_unchecked(&mut pkt.data_mut()[l4]);
        let h = &mut self.hot[e as usize];
        if syn_ack {
            if let Some(m) = self.cfg.mss_clamp_down {
                if t.clamp_mss(m).is_some() {
                    self.counters.mss_clamped_down += 1;
                }
            }
            if cap.is_some() {
                let ws = if t.has_window_scale() {
                    flag::WS_DOWN
                } else {
                    0
                };
                h.flags = (h.flags & !flag::WS_DOWN) | ws | flag::SYNACK_SEEN;
            }
        }
        if let Some(cap) = cap {
            let known = h.has(flag::SYNACK_SEEN);
            if known && !flag::scaled(h.flags) && t.cap_window(cap).is_some() {
                self.counters.window_capped += 1;
            }
        }
    }
}
