//! ICMP about connections and to the gateway's representative addresses,
//! one packet at a time in the parse stage (rare packets, off the
//! TCP/UDP fast path):
//!
//! - ICMP errors (destination unreachable — fragmentation needed with its
//!   next-hop MTU —, time exceeded, parameter problem; RFC 5508, RFC 7915
//!   §4.2 / §5.2) quoting a packet of a connection are translated with that
//!   connection's binding, found from the quoted packet (its key going
//!   down, its tuple reversed in the up table going up), and sent like the
//!   connection's packets. NAT44: the outer addresses, the quoted header,
//!   ports and checksums rewritten in place ([`super::rewrite::icmp_error4`]);
//!   NAT64: through [`crate::xlat`]. An error quoting no live connection is
//!   `no_key` (down) or `no_flow` (up), a malformed quote `xlat_icmp_inner`.
//!   Errors are not counted in the connection's accounting and do not
//!   refresh its idle timer.
//! - Echo requests to a VIP (IPv4, IPv6) are answered by the gateway itself
//!   when `answer_ping` is on ([`super::rewrite::echo_reply4`]).

use super::entry::{flag, Hot, NONE};
use super::hash::{flow_hash, flow_hash6};
use super::keys::KeyLoc;
use super::meta::Meta;
use super::rewrite::{self, set_macs};
use super::tcp_state::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use super::{last4, GwTables, GwWorker};
use crate::hw::TableAlloc;
use crate::verdict::{DropReason, Pkt, Verdict};
use crate::wire::{self, icmp, ip_proto, Parsed};
use crate::xlat::{self, To4, To6};

impl<A: TableAlloc> GwWorker<A> {
    /// A frame `parse` refused as an unsupported protocol: an ICMPv4 error
    /// to a pool address (down) or from the access side (up), or an ICMPv6
    /// error to a NAT64 address (up, NAT64 on), may be about a connection;
    /// anything else stays `unsupported_proto`.
    pub(super) fn icmp_error(&mut self, t: &GwTables, pkt: &mut Pkt<'_>, now: u64) -> Verdict {
        const UNSUPPORTED: Verdict = Verdict::Drop(DropReason::UnsupportedProto);
        let Ok(p) = wire::parse_l3(pkt.frame()) else {
            return UNSUPPORTED;
        };
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        if p.fragment || end < l4 + 8 {
            return UNSUPPORTED;
        }
        let ty = pkt.frame()[l4];
        let dst_mac: [u8; 6] = pkt.frame()[0..6].try_into().unwrap_or([0; 6]);
        let port = pkt.port;
        if p.ip_version == 4
            && p.proto == PROTO_ICMP
            && matches!(
                ty,
                icmp::v4::DEST_UNREACHABLE | icmp::v4::TIME_EXCEEDED | xlat::icmp::V4_PARAM_PROBLEM
            )
        {
            // (the direction as `direct_v4` tells it)
            let to_pool = self.ks.pool_index(p.dst_v4()).is_some();
            if port == self.cfg.server_port && (port != self.cfg.access_port || to_pool) {
                if !to_pool {
                    return UNSUPPORTED;
                }
                if dst_mac != self.cfg.server_mac {
                    return Verdict::Drop(DropReason::NotForUs);
                }
                return self.down_icmp_error(pkt, &p, now);
            }
            if port == self.cfg.access_port {
                if dst_mac != self.cfg.access_mac {
                    return Verdict::Drop(DropReason::NotForUs);
                }
                return self.up_icmp_error4(t, pkt, &p, now);
            }
            return UNSUPPORTED;
        }
        let Some(n64) = &self.cfg.nat64 else {
            return UNSUPPORTED;
        };
        if p.ip_version == 6
            && p.proto == ip_proto::ICMPV6
            && (1..=4).contains(&ty)
            && port == self.cfg.access_port
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
    /// quoted source: another worker's key → `Handoff`; a probe port →
    /// `Control`. A NAT44 connection's: outer source the server → the VIP
    /// the subscriber knows (a router's address is kept), outer destination
    /// → the subscriber, the quoted packet as the subscriber sent it
    /// (subscriber → VIP, its ports); sent to the subscriber like the
    /// connection's down packets. A NAT64 connection's: the quoted ports
    /// become the subscriber's view, then RFC 7915 translation with the
    /// outer source embedded under the prefix, the quoted packet subscriber
    /// → prefix-embedded original destination. A quote matching no live
    /// connection is `no_key`, a malformed quote `xlat_icmp_inner`.
    fn down_icmp_error(&mut self, pkt: &mut Pkt<'_>, p: &Parsed, now: u64) -> Verdict {
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        let Quote {
            ql4,
            proto: qproto,
            src: qsrc,
            dst: qdst,
            sport: qsport,
            dport: qdport,
        } = match quote4(pkt.frame(), l4, end, icmp::v4::ECHO_REQUEST) {
            Ok(q) => q,
            Err(v) => return v,
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
        let h = match self.quoted_conn(e, p, now, DropReason::NoKey) {
            Ok(h) => h,
            Err(v) => return v,
        };
        if !h.has(flag::V6) {
            let src = p.src_v4();
            let outer_src = if src == h.srv_ip { h.dst_ip } else { src };
            let f = &mut pkt.data_mut()[..end];
            rewrite::icmp_error4(
                f,
                p.l3_off as usize,
                l4,
                ql4,
                qproto,
                (outer_src, h.sub_ip),
                (h.sub_ip, h.sub_port),
                (h.dst_ip, h.dst_port),
            );
            set_macs(f, self.lbs.get(h.lb), self.cfg.access_mac);
            self.counters.icmp_err_down += 1;
            return Verdict::Tx {
                port: self.cfg.access_port,
            };
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

    /// An ICMPv4 error from the access side (the subscriber, or a router on
    /// its side) quoting a down packet of a NAT44 connection (VIP →
    /// subscriber). The connection is found in the up table by the
    /// reversed quoted tuple (subscriber, its port or the echo reply's
    /// identifier, VIP, VIP port). Outer source → the pool address (a
    /// subscriber-side address means nothing on the server side), outer
    /// destination → the server, the quoted packet as the server sent it
    /// (server → pool address : key port); sent to the connection's next
    /// hop on `server_port`. The table is this worker's: an error another
    /// worker receives finds nothing (`no_flow`), as does a quote of no
    /// live connection; a malformed quote is `xlat_icmp_inner`.
    fn up_icmp_error4(&mut self, t: &GwTables, pkt: &mut Pkt<'_>, p: &Parsed, now: u64) -> Verdict {
        let (l4, end) = (p.l4_off as usize, p.ip_end());
        let q = match quote4(pkt.frame(), l4, end, icmp::v4::ECHO_REPLY) {
            Ok(q) => q,
            Err(v) => return v,
        };
        let Quote {
            ql4,
            proto,
            src: qsrc,
            dst: qdst,
            ..
        } = q;
        // The up tuple: subscriber = quoted destination (an echo reply's
        // identifier is the subscriber's).
        let (sport, dport) = if proto == PROTO_ICMP {
            (q.sport, 0)
        } else {
            (q.dport, q.sport)
        };
        let h = flow_hash(
            self.cfg.hash_seed,
            u32::from_be_bytes(qdst),
            u32::from_be_bytes(qsrc),
            sport,
            dport,
            proto,
        );
        let e = self
            .up
            .find(h, |e| {
                let x = &self.hot[e as usize];
                x.flags & (flag::V6 | flag::NAT66) == 0
                    && x.sub_ip == qdst
                    && x.dst_ip == qsrc
                    && x.sub_port == sport
                    && x.dst_port == dport
                    && x.proto == proto
            })
            .unwrap_or(NONE);
        let x = match self.quoted_conn(e, p, now, DropReason::NoFlow) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let Some(srv_mac) = self.next_hop(t, e) else {
            return Verdict::Drop(DropReason::NoNeighbor);
        };
        let pool_ip = self.ks.pool()[x.pool as usize];
        // (an echo reply's identifier is the quoted source's "port")
        let qs_port = if proto == PROTO_ICMP {
            x.key_port
        } else {
            x.srv_port
        };
        let f = &mut pkt.data_mut()[..end];
        rewrite::icmp_error4(
            f,
            p.l3_off as usize,
            l4,
            ql4,
            proto,
            (pool_ip, x.srv_ip),
            (x.srv_ip, qs_port),
            (pool_ip, x.key_port),
        );
        set_macs(f, srv_mac, self.cfg.server_mac);
        self.counters.icmp_err_up += 1;
        Verdict::Tx {
            port: self.cfg.server_port,
        }
    }

    /// The connection `e` (`NONE`: none) an ICMPv4 error `p` quotes, to
    /// pass the error on to: `gone` where there is none or it idled out,
    /// `ttl_exceeded` where the error may go no further itself.
    #[inline]
    fn quoted_conn(&self, e: u32, p: &Parsed, now: u64, gone: DropReason) -> Result<Hot, Verdict> {
        if e == NONE {
            return Err(Verdict::Drop(gone));
        }
        let h = self.hot[e as usize];
        if h.state.is_open() && self.idle_expired(&h, now) {
            return Err(Verdict::Drop(gone));
        }
        if p.ttl <= 1 {
            return Err(Verdict::Drop(DropReason::TtlExceeded));
        }
        Ok(h)
    }

    /// An ICMP echo request from the access side to a VIP (`answer_ping`
    /// on; `m` from the parse stage): the gateway's reply, in place, back
    /// on the port it came from.
    pub(super) fn vip_echo(&mut self, pkt: &mut Pkt<'_>, m: &Meta) -> Verdict {
        let f = &mut pkt.data_mut()[..m.end as usize];
        rewrite::echo_reply4(f, m.l3 as usize, m.l4 as usize, self.cfg.access_mac);
        self.counters.vip_echo_replies += 1;
        Verdict::Tx { port: pkt.port }
    }

    /// [`GwWorker::vip_echo`] for an ICMPv6 echo request to an IPv6 VIP.
    pub(super) fn vip_echo6(&mut self, pkt: &mut Pkt<'_>, m: &Meta) -> Verdict {
        let f = &mut pkt.data_mut()[..m.end as usize];
        rewrite::echo_reply6(f, m.l3 as usize, m.l4 as usize, self.cfg.access_mac);
        self.counters.vip_echo_replies += 1;
        Verdict::Tx { port: pkt.port }
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

/// The packet an ICMPv4 error quotes.
struct Quote {
    /// Offset of its L4 header in the frame.
    ql4: usize,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    /// Its source port (TCP, UDP) or identifier (an ICMP echo).
    sport: u16,
    /// Its destination port (TCP, UDP); 0 for an ICMP echo.
    dport: u16,
}

/// The IPv4 packet quoted by the ICMPv4 error at `l4` (IP end `end`), with
/// 8 bytes of its L4 header at least: TCP, UDP or an ICMP echo of type
/// `echo` (the one a connection's packet in that direction is). Else
/// `xlat_icmp_inner` (a fragment too: the gateway sends none, so none is
/// about a connection; another ICMP message) or `unsupported_proto`.
#[inline]
fn quote4(f: &[u8], l4: usize, end: usize, echo: u8) -> Result<Quote, Verdict> {
    const INNER: Verdict = Verdict::Drop(DropReason::XlatIcmpInner);
    let q = l4 + 8;
    if end < q + wire::ipv4::HEADER_LEN + 8 || f[q] >> 4 != 4 {
        return Err(INNER);
    }
    // MF or a fragment offset
    if f[q + 6] & 0x3f != 0 || f[q + 7] != 0 {
        return Err(INNER);
    }
    let ihl = (f[q] & 0x0f) as usize * 4;
    let ql4 = q + ihl;
    if ihl < wire::ipv4::HEADER_LEN || end < ql4 + 8 {
        return Err(INNER);
    }
    let proto = f[q + 9];
    let rd = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    let (sport, dport) = match proto {
        PROTO_TCP | PROTO_UDP => (rd(ql4), rd(ql4 + 2)),
        PROTO_ICMP if f[ql4] == echo => (rd(ql4 + 4), 0),
        PROTO_ICMP => return Err(INNER),
        _ => return Err(Verdict::Drop(DropReason::UnsupportedProto)),
    };
    Ok(Quote {
        ql4,
        proto,
        sport,
        dport,
        src: [f[q + 12], f[q + 13], f[q + 14], f[q + 15]],
        dst: [f[q + 16], f[q + 17], f[q + 18], f[q + 19]],
    })
}
