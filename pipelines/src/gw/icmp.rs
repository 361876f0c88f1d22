//! ICMP errors about connections (RFC 7915 §4.2 / §5.2, RFC 5508): today
//! those of NAT64 connections, translated both ways with the connection
//! found from the quoted packet. Errors about IPv4 connections stay
//! `unsupported_proto`. Rare packets: one at a time, in the parse stage.

use super::entry::{flag, NONE};
use super::hash::flow_hash6;
use super::keys::KeyLoc;
use super::rewrite::set_macs;
use super::tcp_state::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use super::{last4, GwTables, GwWorker};
use crate::hw::TableAlloc;
use crate::verdict::{DropReason, Pkt, Verdict};
use crate::wire::{self, icmp, ip_proto, Parsed};
use crate::xlat::{self, To4, To6};

impl<A: TableAlloc> GwWorker<A> {
    /// A frame `parse` refused as an unsupported protocol, with NAT64 on:
    /// an ICMPv4 error to a pool address (down) or an ICMPv6 error to a
    /// NAT64 address (up) may be about a NAT64 connection; anything else
    /// stays `unsupported_proto`.
    pub(super) fn icmp_error(&mut self, t: &GwTables, pkt: &mut Pkt<'_>, now: u64) -> Verdict {
        const UNSUPPORTED: Verdict = Verdict::Drop(DropReason::UnsupportedProto);
        let Ok(p) = wire::parse_l3(pkt.frame()) else {
            return UNSUPPORTED;
        };
        let Some(n64) = &self.cfg.nat64 else {
            return UNSUPPORTED;
        };
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        if p.fragment || end < l4 + 8 {
            return UNSUPPORTED;
        }
        let ty = pkt.frame()[l4];
        let dst_mac: [u8; 6] = pkt.frame()[0..6].try_into().unwrap_or([0; 6]);
        if p.ip_version == 4
            && p.proto == PROTO_ICMP
            && matches!(
                ty,
                icmp::v4::DEST_UNREACHABLE | icmp::v4::TIME_EXCEEDED | xlat::icmp::V4_PARAM_PROBLEM
            )
            && pkt.port == self.cfg.server_port
            && self.ks.pool_index(p.dst_v4()).is_some()
        {
            if dst_mac != self.cfg.server_mac {
                return Verdict::Drop(DropReason::NotForUs);
            }
            return self.down_icmp_error(pkt, &p, now);
        }
        if p.ip_version == 6
            && p.proto == ip_proto::ICMPV6
            && (1..=4).contains(&ty)
            && pkt.port == self.cfg.access_port
            && n64.prefix.contains(&p.dst)
        {
            if dst_mac != self.cfg.access_mac {
                return Verdict::Drop(DropReason::NotForUs);
            }
            return self.up_icmp_error(t, pkt, &p);
        }
        UNSUPPORTED
    }

    /// An ICMPv4 error (destination unreachable, time exceeded, parameter
    /// problem) from the server side to a pool address, quoting an up
    /// packet of ours (pool address : key port → server). The key is the
    /// quoted source: another worker's key → `Handoff`; a NAT64
    /// connection's → the quoted ports become the subscriber's view, then
    /// RFC 7915 translation with the outer source embedded under the
    /// prefix, the quoted packet subscriber → prefix-embedded original
    /// destination; sent to the subscriber. Errors about IPv4 connections
    /// are not translated (`unsupported_proto`); a quote matching no live
    /// connection is `no_key`, a malformed quote `xlat_icmp_inner`. Not
    /// counted in the connection's accounting, and does not refresh its
    /// idle timer.
    fn down_icmp_error(&mut self, pkt: &mut Pkt<'_>, p: &Parsed, now: u64) -> Verdict {
        const INNER: Verdict = Verdict::Drop(DropReason::XlatIcmpInner);
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        let f = pkt.frame();
        let q = l4 + 8;
        if end < q + wire::ipv4::HEADER_LEN + 8 || f[q] >> 4 != 4 {
            return INNER;
        }
        let ihl = (f[q] & 0x0f) as usize * 4;
        let ql4 = q + ihl;
        if ihl < wire::ipv4::HEADER_LEN || end < ql4 + 8 {
            return INNER;
        }
        let qproto = f[q + 9];
        let qsrc = [f[q + 12], f[q + 13], f[q + 14], f[q + 15]];
        let qdst = [f[q + 16], f[q + 17], f[q + 18], f[q + 19]];
        let rd = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
        let (qsport, qdport) = match qproto {
            PROTO_TCP | PROTO_UDP => (rd(ql4), rd(ql4 + 2)),
            PROTO_ICMP if f[ql4] == icmp::v4::ECHO_REQUEST => (rd(ql4 + 4), 0),
            PROTO_ICMP => return INNER,
            _ => return Verdict::Drop(DropReason::UnsupportedProto),
        };
        let k = match self.ks.locate(qsrc, qsport) {
            KeyLoc::Reserved => return Verdict::Control, // about a health probe
            KeyLoc::NotPool | KeyLoc::Unowned => return Verdict::Drop(DropReason::NoKey),
            KeyLoc::Key { owner, .. } if owner != self.id => {
                return Verdict::Handoff { worker: owner }
            }
            KeyLoc::Key { pool_idx, off, .. } => self.ks.key_index(pool_idx, off),
        };
        let mut e = self.key_head[k as usize];
        while e != NONE {
            let h = &self.hot[e as usize];
            if (h.state.is_open() || h.has(flag::UP_LINKED))
                && h.proto == qproto
                && h.srv_ip == qdst
                && !h.has(flag::NAT66)
                && (qproto == PROTO_ICMP || h.srv_port == qdport)
            {
                break;
            }
            e = h.key_next;
        }
        if e == NONE {
            return Verdict::Drop(DropReason::NoKey);
        }
        let h = self.hot[e as usize];
        if h.state.is_open() && self.idle_expired(&h, now) {
            return Verdict::Drop(DropReason::NoKey);
        }
        if !h.has(flag::V6) {
            return Verdict::Drop(DropReason::UnsupportedProto);
        }
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let Some(n64) = &self.cfg.nat64 else {
            return Verdict::Drop(DropReason::UnsupportedProto);
        };
        let sub6 = self.sub6[e as usize];
        let to =
            To6::new(n64.prefix.embed(p.src_v4()), sub6).inner(sub6, n64.prefix.embed(h.dst_ip));
        // The quoted packet as the subscriber sent it: its ports, then its
        // addresses (the translator).
        xlat::rewrite_quoted_ports(
            &mut pkt.data_mut()[l4..end],
            ql4 - l4,
            qproto,
            h.sub_port,
            h.dst_port,
        );
        if let Err(r) = xlat::v4_to_v6(pkt, &n64.xlat, &to) {
            return Verdict::Drop(r);
        }
        set_macs(pkt.data_mut(), self.lbs.get(h.lb), self.cfg.access_mac);
        self.counters.icmp_err_down += 1;
        Verdict::Tx {
            port: self.cfg.access_port,
        }
    }

    /// An ICMPv6 error (destination unreachable, packet too big, time
    /// exceeded, parameter problem) from the subscriber side to a NAT64
    /// address, quoting a down packet of ours (prefix-embedded VIP →
    /// subscriber). The connection is found in the up table by the reversed
    /// quoted tuple; the quoted ports become the server's view (VIP port →
    /// server port, subscriber port → key port; an echo reply's identifier
    /// → the key port), then RFC 7915 translation: pool address → server,
    /// quoting server → pool address; sent on `server_port`. No connection:
    /// `no_flow`; a malformed quote: `xlat_icmp_inner`.
    fn up_icmp_error(&mut self, t: &GwTables, pkt: &mut Pkt<'_>, p: &Parsed) -> Verdict {
        const INNER: Verdict = Verdict::Drop(DropReason::XlatIcmpInner);
        const V6H: usize = wire::ipv6::HEADER_LEN;
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        let f = pkt.frame();
        let q = l4 + 8;
        if end < q + V6H + 8 || f[q] >> 4 != 6 {
            return INNER;
        }
        let ql4 = q + V6H;
        let qnh = f[q + 6];
        let mut qsrc = [0u8; 16];
        let mut qdst = [0u8; 16];
        qsrc.copy_from_slice(&f[q + 8..q + 24]);
        qdst.copy_from_slice(&f[q + 24..q + 40]);
        let rd = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
        // The up tuple of the connection: (subscriber = quoted destination,
        // its port = quoted destination port / identifier, VIP, VIP port).
        let (proto, sport, dport) = match qnh {
            PROTO_TCP | PROTO_UDP => (qnh, rd(ql4 + 2), rd(ql4)),
            ip_proto::ICMPV6 if f[ql4] == icmp::v6::ECHO_REPLY => (PROTO_ICMP, rd(ql4 + 4), 0),
            _ => return INNER,
        };
        let Some(n64) = self.cfg.nat64 else {
            return Verdict::Drop(DropReason::UnsupportedProto);
        };
        let Some(dst4) = n64.prefix.extract(&qsrc) else {
            return Verdict::Drop(DropReason::NoFlow);
        };
        let h = flow_hash6(
            self.cfg.hash_seed,
            &qdst,
            u32::from_be_bytes(dst4),
            sport,
            dport,
            proto,
        );
        let sub4 = last4(&qdst);
        let Some(e) = self.up.find(h, |e| {
            let x = &self.hot[e as usize];
            x.flags & (flag::V6 | flag::NAT66) == flag::V6
                && x.sub_ip == sub4
                && x.dst_ip == dst4
                && x.sub_port == sport
                && x.dst_port == dport
                && x.proto == proto
                && self.sub6[e as usize] == qdst
        }) else {
            return Verdict::Drop(DropReason::NoFlow);
        };
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let Some(srv_mac) = self.next_hop(t, e) else {
            return Verdict::Drop(DropReason::NoNeighbor);
        };
        let x = self.hot[e as usize];
        let nat_ip = self.ks.pool()[x.pool as usize];
        let to = To4::new(nat_ip, x.srv_ip)
            .inner(x.srv_ip, nat_ip)
            .ident(self.xlat_ident);
        let (qs, qd) = if proto == PROTO_ICMP {
            (x.key_port, 0)
        } else {
            (x.srv_port, x.key_port)
        };
        xlat::rewrite_quoted_ports(&mut pkt.data_mut()[l4..end], ql4 - l4, qnh, qs, qd);
        if let Err(r) = xlat::v6_to_v4(pkt, &n64.xlat, &to) {
            return Verdict::Drop(r);
        }
        self.xlat_ident = self.xlat_ident.wrapping_add(1);
        set_macs(pkt.data_mut(), srv_mac, self.cfg.server_mac);
        self.counters.icmp_err_up += 1;
        Verdict::Tx {
            port: self.cfg.server_port,
        }
    }
}
