//! Health checks, sans I/O: the probe state machine, the probes it builds
//! and the answers it matches. The engine's management thread runs it (time
//! as an argument, frames in and out as bytes) and sends the probes in-band
//! through the DPDK ports (in production the kernel does not own them).
//!
//! - Real servers (GW role): a TCP SYN from the first pool address and a
//!   port of the reserved probe range (`gw.probe_ports`) to the member's
//!   service port; a SYN-ACK is a pass (the half-open connection is reset at
//!   once), a RST (nothing listens) or no answer within the timeout a fail.
//! - Gateways (LB role): an ARP request for the gateway's address on the LAN
//!   port; a reply is a pass, none within the timeout a fail.
//!
//! `rise` passes in a row bring a target up, `fall` fails bring it down; a
//! change is returned to the caller, which publishes a new table snapshot,
//! so it reaches the workers within one interval. Answers reach the
//! management thread as `Verdict::Control` frames (the GW stage gives the
//! probe port range, the ARP responder gives replies).

use crate::wire::arp::ArpPacket;
use crate::wire::build::{self, FrameSpec, L4};
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
    pub ip: String,
    pub ip4: [u8; 4],
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
}

pub struct Prober {
    cfg: HealthParams,
    src: Source,
    pub targets: Vec<Target>,
    probe_ports: (u16, u16),
    next_port: u16,
    next_round: Option<u64>,
}

/// A target whose state changed: (group, name, up).
pub type Change = (String, String, bool);

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

    pub fn add(&mut self, group: &str, name: &str, ip: [u8; 4], kind: ProbeKind, up: bool) {
        self.targets.push(Target {
            group: group.into(),
            name: name.into(),
            ip: std::net::Ipv4Addr::from(ip).to_string(),
            ip4: ip,
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
                changes.push((t.group.clone(), t.name.clone(), true));
            }
        } else {
            t.fails_in_row += 1;
            t.passes_in_row = 0;
            if t.up && t.fails_in_row >= cfg.fall {
                t.up = false;
                t.changes += 1;
                changes.push((t.group.clone(), t.name.clone(), false));
            }
        }
    }

    /// Time out unanswered probes and start a new round when it is due.
    /// `mac_of` resolves a target's next hop (TCP probes); `send` queues a
    /// frame on a port.
    pub fn tick(
        &mut self,
        now_ms: u64,
        mac_of: impl Fn([u8; 4]) -> Option<MacAddr>,
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
            let t = &mut self.targets[i];
            let frame = match t.kind {
                ProbeKind::Tcp(dport) => {
                    // Not resolved yet (start-up): no verdict either way; a
                    // server that stops answering ARP keeps its last entry,
                    // so its probes go out and time out.
                    let Some(dmac) = mac_of(t.ip4) else {
                        t.last_result = "next hop unresolved".into();
                        continue;
                    };
                    let mut spec = FrameSpec::tcp(port, dport, flags::SYN);
                    spec.src_mac = self.src.mac;
                    spec.dst_mac = dmac;
                    spec.src_ip = self.src.ip;
                    spec.dst_ip = t.ip4;
                    spec.ttl = 64;
                    if let L4::Tcp { seq, window, .. } = &mut spec.l4 {
                        *seq = 0x5047_0000 | port as u32;
                        *window = 1024;
                    }
                    spec.build()
                }
                ProbeKind::Arp => build::arp(
                    self.src.mac,
                    [0xff; 6],
                    1,
                    self.src.mac,
                    self.src.ip,
                    [0; 6],
                    t.ip4,
                ),
            };
            let mut frame = frame;
            if frame.len() < 60 {
                frame.resize(60, 0);
            }
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
                if t.kind == ProbeKind::Arp && t.ip4 == ip && t.outstanding.is_some() {
                    Self::result(t, true, "arp reply", &self.cfg, &mut changes);
                }
            }
            return changes;
        }
        let Ok(p) = crate::wire::parse(frame) else {
            return changes;
        };
        if p.proto != 6 || !p.is_ipv4() || p.dst_v4() != self.src.ip {
            return changes;
        }
        let src = p.src_v4();
        let Ok(tcp) = TcpPacket::new_checked(&frame[p.l4_off as usize..]) else {
            return changes;
        };
        for t in &mut self.targets {
            let ProbeKind::Tcp(dport) = t.kind else {
                continue;
            };
            let Some((sport, _)) = t.outstanding else {
                continue;
            };
            if t.ip4 != src || p.src_port != dport || p.dst_port != sport {
                continue;
            }
            if tcp.rst() {
                Self::result(t, false, "refused (RST)", &self.cfg, &mut changes);
            } else if tcp.syn() && tcp.ack() {
                Self::result(t, true, "SYN-ACK", &self.cfg, &mut changes);
                // Close the half-open connection on the server.
                let mut spec = FrameSpec::tcp(sport, dport, flags::RST);
                spec.src_mac = eth.dst_addr();
                spec.dst_mac = eth.src_addr();
                spec.src_ip = self.src.ip;
                spec.dst_ip = src;
                spec.ttl = 64;
                if let L4::Tcp { seq, ack, .. } = &mut spec.l4 {
                    *seq = tcp.ack_number();
                    *ack = 0;
                }
                let mut f = spec.build();
                f.resize(f.len().max(60), 0);
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

    fn prober(kind: ProbeKind) -> Prober {
        let cfg = HealthParams {
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 2,
        };
        let mut p = Prober::new(
            cfg,
            Source {
                port: 1,
                mac: [2, 0, 0, 0, 0, 1],
                ip: [10, 80, 0, 100],
            },
            (60000, 60009),
        );
        p.add("wap", "w1", [10, 80, 0, 11], kind, true);
        p
    }

    fn answer(p: &Prober, fl: u8) -> Vec<u8> {
        let (sport, _) = p.targets[0].outstanding.unwrap();
        let mut spec = FrameSpec::tcp(8080, sport, fl);
        spec.src_ip = [10, 80, 0, 11];
        spec.dst_ip = [10, 80, 0, 100];
        spec.build()
    }

    #[test]
    fn tcp_probe_fall_and_rise_with_a_fake_clock() {
        let mut p = prober(ProbeKind::Tcp(8080));
        let mac = |_| Some([2, 0, 0, 0, 0, 9]);
        let sent = RefCell::new(Vec::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        let t0 = 7_000u64;
        assert!(p.tick(t0, mac, &mut send).is_empty());
        assert_eq!(sent.borrow().len(), 1);
        let syn = crate::wire::parse(&sent.borrow()[0].1).unwrap();
        assert_eq!(syn.dst_port, 8080);
        assert!(build::checksums_ok(&sent.borrow()[0].1));
        // RST: refused, one fail (fall = 2: still up).
        assert!(p
            .on_frame(Some(1), &answer(&p, flags::RST | flags::ACK), &mut send)
            .is_empty());
        assert!(p.targets[0].up);
        // Next round: no answer → timeout → down.
        assert!(p.tick(t0 + 1000, mac, &mut send).is_empty());
        let ch = p.tick(t0 + 1600, mac, &mut send);
        assert_eq!(ch, vec![("wap".to_string(), "w1".to_string(), false)]);
        // Two SYN-ACKs → up again; each SYN-ACK is answered with a RST.
        p.tick(t0 + 2000, mac, &mut send);
        let n = sent.borrow().len();
        assert!(p
            .on_frame(Some(1), &answer(&p, flags::SYN | flags::ACK), &mut send)
            .is_empty());
        assert_eq!(sent.borrow().len(), n + 1);
        let rst = crate::wire::parse(&sent.borrow()[n].1).unwrap();
        assert_eq!(rst.tcp_flags & flags::RST, flags::RST);
        p.tick(t0 + 3000, mac, &mut send);
        let ch = p.on_frame(Some(1), &answer(&p, flags::SYN | flags::ACK), &mut send);
        assert_eq!(ch, vec![("wap".to_string(), "w1".to_string(), true)]);
        // Answers that match no outstanding probe change nothing.
        p.tick(t0 + 4000, mac, &mut send);
        let passes = p.targets[0].passes;
        let mut stray = FrameSpec::tcp(8080, 1, flags::SYN | flags::ACK);
        stray.src_ip = [10, 80, 0, 11];
        stray.dst_ip = [10, 80, 0, 100];
        assert!(p.on_frame(Some(1), &stray.build(), &mut send).is_empty());
        assert_eq!(p.targets[0].passes, passes);
        assert!(p.targets[0].outstanding.is_some());
    }

    #[test]
    fn arp_probe_and_unresolved_next_hop() {
        let mut p = prober(ProbeKind::Arp);
        let sent = RefCell::new(Vec::new());
        let mut send = |port: PortIdx, f: Vec<u8>| sent.borrow_mut().push((port, f));
        let t0 = 7_000u64;
        p.tick(t0, |_| None, &mut send);
        assert_eq!(sent.borrow().len(), 1, "ARP probes need no next hop");
        let reply = build::arp(
            [2, 0, 0, 0, 0, 9],
            [2, 0, 0, 0, 0, 1],
            2,
            [2, 0, 0, 0, 0, 9],
            [10, 80, 0, 11],
            [2, 0, 0, 0, 0, 1],
            [10, 80, 0, 100],
        );
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
