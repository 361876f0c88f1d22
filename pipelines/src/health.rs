//! Health checks, sans I/O: the probe state machine, the probes it builds
//! and the answers it matches. The engine's management thread runs it (time
//! as an argument, frames in and out as bytes) and sends the probes in-band
//! through the DPDK ports (in production the kernel does not own them).
//!
//! - Real servers (GW role): a TCP SYN from the first pool address and a
//!   port of the reserved probe range (`gw.probe_ports`) to the member's
//!   service port; a SYN-ACK is a pass (the half-open connection is reset at
//!   once), a RST (nothing listens) or no answer within the timeout a fail.
//!   A member with an IPv6 address is a second target ([`Addr::V6`]): the
//!   same SYN over IPv6 from the first `gw.pool6` address (the source NAT66
//!   connections reach the member from), matched and reset the same way; its
//!   verdict is the member's IPv6 side only.
//! - Gateways (LB role): an ARP request for the gateway's address on the LAN
//!   port; a reply is a pass, none within the timeout a fail.
//!
//! `rise` passes in a row bring a target up, `fall` fails bring it down; a
//! change is returned to the caller, which publishes a new table snapshot,
//! so it reaches the workers within one interval. Answers reach the
//! management thread as `Verdict::Control` frames (the GW stage gives the
//! probe port range, IPv4 and IPv6; the ARP responder gives replies).

use crate::wire::arp::ArpPacket;
use crate::wire::build::{self, FrameSpec, Ip6Spec, L4};
use crate::wire::ether::{ethertype, EthernetFrame};
use crate::wire::tcp::{flags, TcpPacket};
use crate::wire::MacAddr;
use crate::PortIdx;

/// The timing of a prober (the profile's `health = {...}`, in ms).
#[derive(Clone, Copy, Debug)]
pub struct HealthParams {
    /// A round of probes this often.
    pub interval_ms: u64,
    /// An unanswered probe fails after this long.
    pub timeout_ms: u64,
    /// Passes in a row that bring a target up.
    pub rise: u32,
    /// Fails in a row that bring a target down.
    pub fall: u32,
}

/// A target's address: the family its probes and answers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    /// `"ipv4"` or `"ipv6"` (what `pgw servers` and the metrics show).
    pub fn family(&self) -> &'static str {
        match self {
            Addr::V4(_) => "ipv4",
            Addr::V6(_) => "ipv6",
        }
    }

    /// The source of a parsed IPv4 or IPv6 packet.
    fn src_of(p: &crate::wire::Parsed) -> Addr {
        if p.is_ipv4() {
            Addr::V4(p.src_v4())
        } else {
            Addr::V6(p.src)
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::V4(a) => std::net::Ipv4Addr::from(*a).fmt(f),
            Addr::V6(a) => std::net::Ipv6Addr::from(*a).fmt(f),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// TCP SYN to this port.
    Tcp(u16),
    /// ARP request for the address.
    Arp,
}

/// One monitored target.
#[derive(Clone, Debug)]
pub struct Target {
    /// Group (servers) or "gateway".
    pub group: String,
    pub name: String,
    /// `addr` as text.
    pub ip: String,
    pub addr: Addr,
    pub kind: ProbeKind,
    pub up: bool,
    pub passes_in_row: u32,
    pub fails_in_row: u32,
    pub probes: u64,
    pub passes: u64,
    pub changes: u64,
    pub last_result: String,
    /// The probe in flight: (source port, sent at ms).
    outstanding: Option<(u16, u64)>,
}

/// What the prober sends from.
pub struct Source {
    pub port: PortIdx,
    pub mac: MacAddr,
    pub ip: [u8; 4],
    /// The source of IPv6 probes (none: IPv6 targets are not probed).
    pub ip6: Option<[u8; 16]>,
}

pub struct Prober {
    cfg: HealthParams,
    src: Source,
    pub targets: Vec<Target>,
    probe_ports: (u16, u16),
    next_port: u16,
    next_round: Option<u64>,
}

/// A target whose state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub group: String,
    pub name: String,
    /// The target's family: a member's IPv4 or IPv6 side.
    pub v6: bool,
    pub up: bool,
}

impl Prober {
    pub fn new(cfg: HealthParams, src: Source, probe_ports: (u16, u16)) -> Prober {
        Prober {
            cfg,
            src,
            targets: Vec::new(),
            probe_ports,
            next_port: probe_ports.0,
            next_round: None,
        }
    }

    /// Monitor `addr` (ARP probes: IPv4 only; an IPv6 address with
    /// [`ProbeKind::Arp`] is never probed).
    pub fn add(&mut self, group: &str, name: &str, addr: Addr, kind: ProbeKind, up: bool) {
        self.targets.push(Target {
            group: group.into(),
            name: name.into(),
            ip: addr.to_string(),
            addr,
            kind,
            up,
            passes_in_row: 0,
            fails_in_row: 0,
            probes: 0,
            passes: 0,
            changes: 0,
            last_result: "none yet".into(),
            outstanding: None,
        });
    }

    fn result(
        t: &mut Target,
        pass: bool,
        why: &str,
        cfg: &HealthParams,
        changes: &mut Vec<Change>,
    ) {
        t.outstanding = None;
        t.last_result = why.to_string();
        if pass {
            t.passes += 1;
            t.passes_in_row += 1;
            t.fails_in_row = 0;
            if !t.up && t.passes_in_row >= cfg.rise {
                t.up = true;
                t.changes += 1;
                changes.push(Self::change(t));
            }
        } else {
            t.fails_in_row += 1;
            t.passes_in_row = 0;
            if t.up && t.fails_in_row >= cfg.fall {
                t.up = false;
                t.changes += 1;
                changes.push(Self::change(t));
            }
        }
    }

    fn change(t: &Target) -> Change {
        Change {
            group: t.group.clone(),
            name: t.name.clone(),
            v6: matches!(t.addr, Addr::V6(_)),
            up: t.up,
        }
    }

    /// A bare TCP segment from the prober to `dst` (no payload, TTL or hop
    /// limit 64), padded to the Ethernet minimum.
    fn tcp_frame(
        &self,
        macs: (MacAddr, MacAddr),
        dst: Addr,
        ports: (u16, u16),
        fl: u8,
        seq_ack: (u32, u32),
        window: u16,
    ) -> Option<Vec<u8>> {
        let mut spec = FrameSpec::tcp(ports.0, ports.1, fl);
        (spec.src_mac, spec.dst_mac) = macs;
        spec.ttl = 64;
        spec.payload.clear();
        match dst {
            Addr::V4(d) => (spec.src_ip, spec.dst_ip) = (self.src.ip, d),
            Addr::V6(d) => {
                spec.ip6 = Some(Ip6Spec {
                    src: self.src.ip6?,
                    dst: d,
                    fragment: false,
                })
            }
        }
        if let L4::Tcp {
            seq,
            ack,
            window: w,
            ..
        } = &mut spec.l4
        {
            (*seq, *ack, *w) = (seq_ack.0, seq_ack.1, window);
        }
        let mut f = spec.build();
        if spec.ip6.is_some() {
            // Version 6, no traffic class, no flow label (the builder's is
            // a test pattern).
            f[14..18].copy_from_slice(&0x6000_0000u32.to_be_bytes());
        }
        f.resize(f.len().max(60), 0);
        Some(f)
    }

    /// Time out unanswered probes and start a new round when it is due.
    /// `mac_of` resolves a target's next hop (TCP probes); `send` queues a
    /// frame on a port.
    pub fn tick(
        &mut self,
        now_ms: u64,
        mac_of: impl Fn(Addr) -> Option<MacAddr>,
        send: &mut impl FnMut(PortIdx, Vec<u8>),
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for t in &mut self.targets {
            if let Some((_, sent)) = t.outstanding {
                if now_ms.saturating_sub(sent) >= self.cfg.timeout_ms {
                    Self::result(t, false, "timeout", &self.cfg, &mut changes);
                }
            }
        }
        if self.next_round.is_some_and(|n| now_ms < n) {
            return changes;
        }
        self.next_round = Some(now_ms + self.cfg.interval_ms);
        for i in 0..self.targets.len() {
            let port = self.next_port;
            self.next_port = if port >= self.probe_ports.1 {
                self.probe_ports.0
            } else {
                port + 1
            };
            let t = &self.targets[i];
            let frame = match (t.kind, t.addr) {
                (ProbeKind::Tcp(dport), addr) => {
                    // Not resolved yet (start-up): no verdict either way; a
                    // server that stops answering ARP / ND keeps its last
                    // entry, so its probes go out and time out.
                    let Some(dmac) = mac_of(addr) else {
                        self.targets[i].last_result = "next hop unresolved".into();
                        continue;
                    };
                    let seq = 0x5047_0000 | port as u32;
                    let f = self.tcp_frame(
                        (self.src.mac, dmac),
                        addr,
                        (port, dport),
                        flags::SYN,
                        (seq, 0),
                        1024,
                    );
                    let Some(f) = f else {
                        self.targets[i].last_result = "no IPv6 source address".into();
                        continue;
                    };
                    f
                }
                (ProbeKind::Arp, Addr::V4(ip)) => {
                    let mut f = build::arp(
                        self.src.mac,
                        [0xff; 6],
                        1,
                        self.src.mac,
                        self.src.ip,
                        [0; 6],
                        ip,
                    );
                    f.resize(f.len().max(60), 0);
                    f
                }
                (ProbeKind::Arp, Addr::V6(_)) => {
                    self.targets[i].last_result = "ARP probes are IPv4 only".into();
                    continue;
                }
            };
            let t = &mut self.targets[i];
            t.probes += 1;
            t.outstanding = Some((port, now_ms));
            send(self.src.port, frame);
        }
        changes
    }

    /// An answer from the data path, with the port it arrived on. Only
    /// frames from the prober's own port count (a reply forged on another
    /// port changes nothing). A SYN-ACK is reset (queued on `send`).
    pub fn on_frame(
        &mut self,
        port: Option<PortIdx>,
        frame: &[u8],
        send: &mut impl FnMut(PortIdx, Vec<u8>),
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        if port != Some(self.src.port) {
            return changes;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return changes;
        };
        if eth.ethertype() == ethertype::ARP {
            let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
                return changes;
            };
            let ip = arp.sender_protocol_addr();
            for t in &mut self.targets {
                if t.kind == ProbeKind::Arp && t.addr == Addr::V4(ip) && t.outstanding.is_some() {
                    Self::result(t, true, "arp reply", &self.cfg, &mut changes);
                }
            }
            return changes;
        }
        let Ok(p) = crate::wire::parse(frame) else {
            return changes;
        };
        // To our probe source of the packet's family.
        let to_us = if p.is_ipv4() {
            p.dst_v4() == self.src.ip
        } else {
            p.is_ipv6() && Some(p.dst) == self.src.ip6
        };
        if p.proto != 6 || !to_us {
            return changes;
        }
        let src = Addr::src_of(&p);
        let Ok(tcp) = TcpPacket::new_checked(&frame[p.l4_off as usize..]) else {
            return changes;
        };
        let mut resets = Vec::new();
        for t in &mut self.targets {
            let ProbeKind::Tcp(dport) = t.kind else {
                continue;
            };
            let Some((sport, _)) = t.outstanding else {
                continue;
            };
            if t.addr != src || p.src_port != dport || p.dst_port != sport {
                continue;
            }
            if tcp.rst() {
                Self::result(t, false, "refused (RST)", &self.cfg, &mut changes);
            } else if tcp.syn() && tcp.ack() {
                Self::result(t, true, "SYN-ACK", &self.cfg, &mut changes);
                resets.push((sport, dport));
            }
        }
        // Close the half-open connections on the server.
        for (sport, dport) in resets {
            let macs = (eth.dst_addr(), eth.src_addr());
            let seq_ack = (tcp.ack_number(), 0);
            if let Some(f) = self.tcp_frame(macs, src, (sport, dport), flags::RST, seq_ack, 0) {
                send(self.src.port, f);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    const W1: [u8; 4] = [10, 80, 0, 11];
    const SRC4: [u8; 4] = [10, 80, 0, 100];
    const SRC_MAC: MacAddr = [2, 0, 0, 0, 0, 1];
    const W1_MAC: MacAddr = [2, 0, 0, 0, 0, 9];
    /// 2001:db8:80::11, the member's IPv6 address.
    const W1_6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11,
    ];
    /// 2001:db8:ff::10, the first pool6 address.
    const SRC6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn params() -> HealthParams {
        HealthParams {
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 2,
        }
    }

    fn source() -> Source {
        Source {
            port: 1,
            mac: SRC_MAC,
            ip: SRC4,
            ip6: Some(SRC6),
        }
    }

    fn prober(kind: ProbeKind) -> Prober {
        let mut p = Prober::new(params(), source(), (60000, 60009));
        p.add("wap", "w1", Addr::V4(W1), kind, true);
        p
    }

    /// w1 at both addresses (IPv4 target first, then IPv6).
    fn dual() -> Prober {
        let mut p = prober(ProbeKind::Tcp(8080));
        p.add("wap", "w1", Addr::V6(W1_6), ProbeKind::Tcp(8080), true);
        p
    }

    fn change(v6: bool, up: bool) -> Change {
        Change {
            group: "wap".into(),
            name: "w1".into(),
            v6,
            up,
        }
    }

    fn answer(p: &Prober, fl: u8) -> Vec<u8> {
        let (sport, _) = p.targets[0].outstanding.unwrap();
        let mut spec = FrameSpec::tcp(8080, sport, fl);
        spec.src_ip = W1;
        spec.dst_ip = SRC4;
        spec.build()
    }

    /// An IPv6 answer from `src`:`sport` to `dst`:`dport`, ack 0x50470000|dport + 1.
    fn answer6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, fl: u8) -> Vec<u8> {
        let mut spec = FrameSpec::tcp(sport, dport, fl);
        (spec.src_mac, spec.dst_mac) = (W1_MAC, SRC_MAC);
        spec.ip6 = Some(Ip6Spec {
            src,
            dst,
            fragment: false,
        });
        if let L4::Tcp { seq, ack, .. } = &mut spec.l4 {
            (*seq, *ack) = (0x1111_2222, (0x5047_0000 | dport as u32) + 1);
        }
        spec.build()
    }

    /// The probe port of target `i`'s outstanding probe.
    fn port_of(p: &Prober, i: usize) -> u16 {
        p.targets[i].outstanding.unwrap().0
    }

    /// RFC 1071 over the IPv6 pseudo-header and the TCP segment, written
    /// here apart from the crate's checksum code.
    fn tcp6_checksum(src: &[u8; 16], dst: &[u8; 16], seg: &[u8]) -> u16 {
        let len = (seg.len() as u32).to_be_bytes();
        crate::wire::checksum::reference::rfc1071(&[src, dst, &len, &[0, 0, 0, 6], seg])
    }

    #[test]
    fn tcp_probe_fall_and_rise_with_a_fake_clock() {
        let mut p = prober(ProbeKind::Tcp(8080));
        let mac = |_| Some(W1_MAC);
        let sent = RefCell::new(Vec::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        let t0 = 7_000u64;
        assert!(p.tick(t0, mac, &mut send).is_empty());
        assert_eq!(sent.borrow().len(), 1);
        let syn = crate::wire::parse(&sent.borrow()[0].1).unwrap();
        assert_eq!(syn.dst_port, 8080);
        assert_eq!((syn.payload_len, syn.tcp_flags), (0, flags::SYN));
        assert!(build::checksums_ok(&sent.borrow()[0].1));
        // RST: refused, one fail (fall = 2: still up).
        assert!(p
            .on_frame(Some(1), &answer(&p, flags::RST | flags::ACK), &mut send)
            .is_empty());
        assert!(p.targets[0].up);
        // Next round: no answer → timeout → down.
        assert!(p.tick(t0 + 1000, mac, &mut send).is_empty());
        let ch = p.tick(t0 + 1600, mac, &mut send);
        assert_eq!(ch, vec![change(false, false)]);
        // Two SYN-ACKs → up again; each SYN-ACK is answered with a RST.
        p.tick(t0 + 2000, mac, &mut send);
        let n = sent.borrow().len();
        assert!(p
            .on_frame(Some(1), &answer(&p, flags::SYN | flags::ACK), &mut send)
            .is_empty());
        assert_eq!(sent.borrow().len(), n + 1);
        let rst = crate::wire::parse(&sent.borrow()[n].1).unwrap();
        assert_eq!(rst.tcp_flags & flags::RST, flags::RST);
        assert!(rst.is_ipv4());
        p.tick(t0 + 3000, mac, &mut send);
        let ch = p.on_frame(Some(1), &answer(&p, flags::SYN | flags::ACK), &mut send);
        assert_eq!(ch, vec![change(false, true)]);
        // Answers that match no outstanding probe change nothing.
        p.tick(t0 + 4000, mac, &mut send);
        let passes = p.targets[0].passes;
        let mut stray = FrameSpec::tcp(8080, 1, flags::SYN | flags::ACK);
        stray.src_ip = W1;
        stray.dst_ip = SRC4;
        assert!(p.on_frame(Some(1), &stray.build(), &mut send).is_empty());
        assert_eq!(p.targets[0].passes, passes);
        assert!(p.targets[0].outstanding.is_some());
    }

    #[test]
    fn ipv6_probe_is_this_exact_frame() {
        let mut p = dual();
        let sent = RefCell::new(Vec::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        let macs = |a: Addr| {
            Some(if a == Addr::V6(W1_6) {
                [2, 0, 0, 0, 0x66, 9]
            } else {
                W1_MAC
            })
        };
        p.tick(5_000, macs, &mut send);
        let sent = sent.borrow();
        assert_eq!(sent.len(), 2);
        // The IPv4 target took probe port 60000, the IPv6 one 60001.
        assert_eq!((port_of(&p, 0), port_of(&p, 1)), (60000, 60001));
        let (port, f) = &sent[1];
        assert_eq!(*port, 1);
        let mut want = vec![
            2, 0, 0, 0, 0x66, 9, // destination MAC: the member's (ND)
            2, 0, 0, 0, 0, 1, // source MAC: the server port's
            0x86, 0xdd, // IPv6
            0x60, 0, 0, 0, // version 6, no class or flow label
            0, 20, 6, 64, // payload 20 bytes, TCP, hop limit 64
        ];
        want.extend_from_slice(&SRC6);
        want.extend_from_slice(&W1_6);
        let tcp = [
            0xea, 0x61, // source port 60001
            0x1f, 0x90, // destination port 8080
            0x50, 0x47, 0xea, 0x61, // seq 0x5047_0000 | 60001
            0, 0, 0, 0, // ack
            0x50, 0x02, // 20-byte header, SYN
            0x04, 0x00, // window 1024
            0, 0, // checksum (below)
            0, 0, // urgent
        ];
        let ck = tcp6_checksum(&SRC6, &W1_6, &tcp);
        want.extend_from_slice(&tcp);
        want[54 + 16..54 + 18].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(f, &want);
        assert!(build::checksums_ok(f));
        // The IPv4 probe of the same member is an IPv4 SYN from the pool.
        let v4 = crate::wire::parse(&sent[0].1).unwrap();
        assert!(v4.is_ipv4());
        assert_eq!((v4.src_v4(), v4.dst_v4(), v4.dst_port), (SRC4, W1, 8080));
        assert_eq!(sent[0].1[..6], W1_MAC);
        assert_eq!(p.targets[1].ip, "2001:db8:80::11");
        assert_eq!(p.targets[1].addr.family(), "ipv6");
    }

    #[test]
    fn ipv6_syn_ack_passes_and_is_reset_over_ipv6() {
        let mut p = dual();
        p.targets[1].up = false;
        let mac = |_| Some(W1_MAC);
        let sent = RefCell::new(Vec::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        p.tick(0, mac, &mut send);
        let sport = port_of(&p, 1);
        let sa = answer6(W1_6, 8080, SRC6, sport, flags::SYN | flags::ACK);
        assert!(p.on_frame(Some(1), &sa, &mut send).is_empty());
        assert_eq!(p.targets[1].passes, 1);
        assert_eq!(p.targets[1].last_result, "SYN-ACK");
        assert_eq!(p.targets[0].passes, 0, "the IPv4 target is untouched");
        // The reset: IPv6, pool6 → member, the probe's ports, seq = their ack.
        let (port, rst) = sent.borrow().last().cloned().unwrap();
        assert_eq!(port, 1);
        let r = crate::wire::parse(&rst).unwrap();
        assert!(r.is_ipv6());
        assert_eq!((r.src, r.dst), (SRC6, W1_6));
        assert_eq!((r.src_port, r.dst_port), (sport, 8080));
        assert_eq!(r.tcp_flags, flags::RST);
        assert_eq!(rst[..12], [W1_MAC, SRC_MAC].concat());
        let seq = u32::from_be_bytes(rst[58..62].try_into().unwrap());
        assert_eq!(seq, (0x5047_0000 | sport as u32) + 1);
        assert!(build::checksums_ok(&rst));
        // rise = 2: the second pass brings the IPv6 side up.
        p.tick(1000, mac, &mut send);
        let sport = port_of(&p, 1);
        let sa = answer6(W1_6, 8080, SRC6, sport, flags::SYN | flags::ACK);
        assert_eq!(
            p.on_frame(Some(1), &sa, &mut send),
            vec![change(true, true)]
        );
        assert!(p.targets[1].up);
    }

    #[test]
    fn ipv6_rst_and_timeout_bring_down_the_ipv6_side_only() {
        let mut p = dual();
        let mac = |_| Some(W1_MAC);
        let mut send = |_: PortIdx, _: Vec<u8>| {};
        p.tick(0, mac, &mut send);
        let rst = answer6(W1_6, 8080, SRC6, port_of(&p, 1), flags::RST | flags::ACK);
        assert!(p.on_frame(Some(1), &rst, &mut send).is_empty());
        assert_eq!(p.targets[1].last_result, "refused (RST)");
        assert_eq!(p.targets[1].fails_in_row, 1);
        // The IPv4 side answers; the IPv6 side does not: timeout → down.
        p.tick(1000, mac, &mut send);
        let sa = answer(&p, flags::SYN | flags::ACK);
        assert!(p.on_frame(Some(1), &sa, &mut send).is_empty());
        assert_eq!(p.tick(1499, mac, &mut send), vec![]);
        assert_eq!(p.tick(1500, mac, &mut send), vec![change(true, false)]);
        assert_eq!(p.targets[1].last_result, "timeout");
        assert!(p.targets[0].up && !p.targets[1].up);
    }

    #[test]
    fn ipv6_answers_not_matching_the_probe_are_ignored() {
        let mut p = dual();
        let mac = |_| Some(W1_MAC);
        let sent = RefCell::new(Vec::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        p.tick(0, mac, &mut send);
        let n = sent.borrow().len();
        let sport = port_of(&p, 1);
        let sa = flags::SYN | flags::ACK;
        let mut other = W1_6;
        other[15] = 0x12;
        let mut not_us = SRC6;
        not_us[15] = 0x11;
        for (why, f) in [
            ("another server", answer6(other, 8080, SRC6, sport, sa)),
            ("another server port", answer6(W1_6, 8081, SRC6, sport, sa)),
            (
                "another probe port",
                answer6(W1_6, 8080, SRC6, sport + 1, sa),
            ),
            (
                "not to the probe source",
                answer6(W1_6, 8080, not_us, sport, sa),
            ),
            ("a bare ACK", answer6(W1_6, 8080, SRC6, sport, flags::ACK)),
        ] {
            assert!(p.on_frame(Some(1), &f, &mut send).is_empty(), "{why}");
            assert_eq!(
                p.targets[1].passes + p.targets[1].fails_in_row as u64,
                0,
                "{why}"
            );
        }
        // The right answer on the wrong port (forged on the access side).
        let good = answer6(W1_6, 8080, SRC6, sport, sa);
        assert!(p.on_frame(Some(0), &good, &mut send).is_empty());
        assert!(p.on_frame(None, &good, &mut send).is_empty());
        assert_eq!(p.targets[1].passes, 0);
        // The same ports over IPv4 from the member's IPv4 address do not
        // answer the IPv6 probe.
        let mut v4 = FrameSpec::tcp(8080, sport, sa);
        (v4.src_ip, v4.dst_ip) = (W1, SRC4);
        p.on_frame(Some(1), &v4.build(), &mut send);
        assert_eq!(p.targets[1].passes, 0);
        assert_eq!(sent.borrow().len(), n, "nothing reset");
        assert!(p.targets[1].outstanding.is_some());
        // Garbage changes nothing either.
        for len in [0, 13, 14, 54, 60, 73] {
            assert!(p
                .on_frame(Some(1), &good[..len.min(good.len())], &mut send)
                .is_empty());
        }
        p.on_frame(Some(1), &good, &mut send);
        assert_eq!(p.targets[1].passes, 1);
    }

    #[test]
    fn ipv6_targets_need_a_source_and_a_neighbour() {
        let mut p = Prober::new(
            params(),
            Source {
                ip6: None,
                ..source()
            },
            (60000, 60009),
        );
        p.add("wap", "w1", Addr::V6(W1_6), ProbeKind::Tcp(80), true);
        p.add("gateway", "g", Addr::V6(W1_6), ProbeKind::Arp, true);
        let sent = RefCell::new(Vec::<(PortIdx, Vec<u8>)>::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        p.tick(0, |_| Some(W1_MAC), &mut send);
        assert!(sent.borrow().is_empty());
        assert_eq!(p.targets[0].last_result, "no IPv6 source address");
        assert_eq!(p.targets[1].last_result, "ARP probes are IPv4 only");
        // Unresolved (no NA yet): no probe, no verdict.
        let mut q = dual();
        q.tick(0, |a| matches!(a, Addr::V4(_)).then_some(W1_MAC), &mut send);
        assert_eq!(sent.borrow().len(), 1);
        assert_eq!(q.targets[1].last_result, "next hop unresolved");
        assert_eq!(q.targets[1].fails_in_row, 0);
    }

    #[test]
    fn arp_probe_and_unresolved_next_hop() {
        let mut p = prober(ProbeKind::Arp);
        let sent = RefCell::new(Vec::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        let t0 = 7_000u64;
        p.tick(t0, |_| None, &mut send);
        assert_eq!(sent.borrow().len(), 1, "ARP probes need no next hop");
        let reply = build::arp(W1_MAC, SRC_MAC, 2, W1_MAC, W1, SRC_MAC, SRC4);
        // The same reply arriving on another port (forged there) is no pass.
        assert!(p.on_frame(Some(0), &reply, &mut send).is_empty());
        assert!(p.on_frame(None, &reply, &mut send).is_empty());
        assert_eq!(p.targets[0].passes, 0);
        p.on_frame(Some(1), &reply, &mut send);
        assert_eq!(p.targets[0].passes, 1);
        // TCP target with no MAC yet: nothing sent, no verdict.
        let mut q = prober(ProbeKind::Tcp(80));
        let sent2 = RefCell::new(Vec::<(PortIdx, Vec<u8>)>::new());
        let mut send2 = |port: PortIdx, f: Vec<u8>| sent2.borrow_mut().push((port, f));
        q.tick(t0, |_| None, &mut send2);
        assert!(sent2.borrow().is_empty());
        assert_eq!(q.targets[0].fails_in_row, 0);
        assert_eq!(q.targets[0].last_result, "next hop unresolved");
    }
}
