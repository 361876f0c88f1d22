//! ARP responder: answers ARP requests for this box's own addresses (and
//! VIPs) in place, and hands neighbours' ARP replies to the management thread.
//!
//! Contract, per frame arriving on `pkt.port`:
//! * an Ethernet/IPv4 ARP request whose target address is configured for that
//!   port is rewritten in place into the reply (opcode 2; sender = our MAC and
//!   the asked address; target = the asker; Ethernet dst = the asker's MAC,
//!   src = our MAC; an 802.1Q tag and any padding stay) → `Tx { port: pkt.port }`;
//! * an ARP reply, or a gratuitous ARP request (sender address = target
//!   address) → `Control` (the management thread learns neighbours from it);
//! * anything else (requests for other hosts, malformed ARP, other opcodes,
//!   non-ARP frames) → `Drop(ArpIgnored)`, counted.
//!
//! The responder does not check the Ethernet destination (the caller's
//! `NotForUs` filter does).
//!
//! Cost: one binary search over the entries (sorted by port, address) and a
//! rewrite of 42 bytes. Memory: 12 bytes per entry.

use crate::verdict::{DropReason, Pkt, PortIdx, Verdict, WorkerCounters};
use crate::wire::arp::{operation, ArpPacket};
use crate::wire::ether::{ethertype, EthernetFrame};
use crate::wire::MacAddr;

/// One address this box answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArpEntry {
    pub port: PortIdx,
    pub ip: [u8; 4],
    pub mac: MacAddr,
}

/// The responder's table (immutable once built; rebuild to change).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArpResponder {
    /// Sorted by `(port, ip)`, one entry per pair (the last given wins).
    entries: Vec<ArpEntry>,
}

impl ArpResponder {
    /// Build from `(port, ip, mac)` triples. A repeated `(port, ip)` keeps the
    /// last MAC given.
    pub fn new<I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (PortIdx, [u8; 4], MacAddr)>,
    {
        let mut v: Vec<ArpEntry> = Vec::new();
        for (port, ip, mac) in entries {
            v.push(ArpEntry { port, ip, mac });
        }
        // Stable sort then keep the last of equal keys.
        v.sort_by_key(|e| (e.port, e.ip));
        let mut out: Vec<ArpEntry> = Vec::with_capacity(v.len());
        for e in v {
            match out.last_mut() {
                Some(l) if (l.port, l.ip) == (e.port, e.ip) => *l = e,
                _ => out.push(e),
            }
        }
        ArpResponder { entries: out }
    }

    /// The configured entries, sorted by `(port, ip)`.
    pub fn entries(&self) -> &[ArpEntry] {
        &self.entries
    }

    /// Our MAC for `ip` on `port`, if we answer for it.
    #[inline]
    pub fn lookup(&self, port: PortIdx, ip: [u8; 4]) -> Option<MacAddr> {
        self.entries
            .binary_search_by(|e| (e.port, e.ip).cmp(&(port, ip)))
            .ok()
            .map(|i| self.entries[i].mac)
    }

    /// Process one frame (see the module doc for the contract).
    #[inline]
    pub fn process(&self, pkt: &mut Pkt<'_>, c: &mut WorkerCounters) -> Verdict {
        let v = self.decide(pkt);
        if let Verdict::Drop(r) = v {
            c.drop(r);
        }
        v
    }

    fn decide(&self, pkt: &mut Pkt<'_>) -> Verdict {
        const IGNORED: Verdict = Verdict::Drop(DropReason::ArpIgnored);
        let port = pkt.port;
        let frame = pkt.frame_mut();
        let Ok(eth) = EthernetFrame::new_checked(&mut *frame) else {
            return IGNORED;
        };
        if eth.ethertype() != ethertype::ARP {
            return IGNORED;
        }
        let l3 = eth.header_len();
        let Ok(mut arp) = ArpPacket::new_checked(&mut frame[l3..]) else {
            return IGNORED;
        };
        if !arp.is_ethernet_ipv4() {
            return IGNORED;
        }
        let spa = arp.sender_protocol_addr();
        let tpa = arp.target_protocol_addr();
        match arp.operation() {
            operation::REPLY => Verdict::Control,
            operation::REQUEST if spa == tpa => Verdict::Control,
            operation::REQUEST => {
                let Some(our_mac) = self.lookup(port, tpa) else {
                    return IGNORED;
                };
                let sha = arp.sender_hardware_addr();
                arp.set_operation(operation::REPLY);
                arp.set_target_hardware_addr(sha);
                arp.set_target_protocol_addr(spa);
                arp.set_sender_hardware_addr(our_mac);
                arp.set_sender_protocol_addr(tpa);
                let mut eth = EthernetFrame::new_unchecked(&mut *frame);
                eth.set_dst_addr(sha);
                eth.set_src_addr(our_mac);
                Verdict::Tx { port }
            }
            _ => IGNORED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build;
    use crate::wire::ether::BROADCAST;

    const OUR_MAC: MacAddr = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
    const OUR_IP: [u8; 4] = [192, 0, 2, 1];
    const VIP: [u8; 4] = [10, 33, 0, 1];
    const HOST_MAC: MacAddr = [0x02, 0x00, 0x00, 0x00, 0x09, 0x09];
    const HOST_IP: [u8; 4] = [192, 0, 2, 9];

    fn responder() -> ArpResponder {
        ArpResponder::new([
            (0, OUR_IP, OUR_MAC),
            (0, VIP, OUR_MAC),
            (1, [198, 51, 100, 1], [0x02, 0, 0, 0, 2, 2]),
        ])
    }

    #[test]
    fn request_becomes_reply_byte_by_byte() {
        #[rustfmt::skip]
        let request: [u8; 60] = [
            // Ethernet: dst broadcast, src host, ARP
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x00, 0x00, 0x00, 0x09, 0x09,
            0x08, 0x06,
            // ARP: Ethernet/IPv4, request
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            0x02, 0x00, 0x00, 0x00, 0x09, 0x09, 192, 0, 2, 9, // sha spa
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 1, // tha tpa
            // 18 bytes of Ethernet padding
            0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
            0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        ];
        #[rustfmt::skip]
        let reply: [u8; 60] = [
            0x02, 0x00, 0x00, 0x00, 0x09, 0x09,
            0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
            0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
            0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 192, 0, 2, 1,
            0x02, 0x00, 0x00, 0x00, 0x09, 0x09, 192, 0, 2, 9,
            0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
            0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        ];
        let mut buf = build::with_room(&request, 128);
        let mut c = WorkerCounters::default();
        let mut pkt = Pkt::new(&mut buf, 60, 0);
        assert_eq!(
            responder().process(&mut pkt, &mut c),
            Verdict::Tx { port: 0 }
        );
        assert_eq!(pkt.len(), 60);
        assert_eq!(pkt.frame(), &reply[..]);
        assert!(buf[60..].iter().all(|&b| b == build::FILL));
        assert_eq!(c.total_drops(), 0);
    }

    #[test]
    fn vip_and_vlan_tagged_request_answered() {
        let f = build::arp(
            HOST_MAC,
            BROADCAST,
            operation::REQUEST,
            HOST_MAC,
            HOST_IP,
            [0; 6],
            VIP,
        );
        // Insert an 802.1Q tag (VLAN 42).
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 42]);
        tagged.extend_from_slice(&f[12..]);
        let mut buf = tagged.clone();
        let mut c = WorkerCounters::default();
        let mut pkt = Pkt::new(&mut buf, tagged.len(), 0);
        assert_eq!(
            responder().process(&mut pkt, &mut c),
            Verdict::Tx { port: 0 }
        );
        let eth = EthernetFrame::new_checked(pkt.frame()).unwrap();
        assert_eq!(eth.vlan_id(), Some(42));
        assert_eq!(eth.dst_addr(), HOST_MAC);
        assert_eq!(eth.src_addr(), OUR_MAC);
        let arp = ArpPacket::new_checked(&pkt.frame()[18..]).unwrap();
        assert_eq!(arp.operation(), operation::REPLY);
        assert_eq!(arp.sender_protocol_addr(), VIP);
        assert_eq!(arp.sender_hardware_addr(), OUR_MAC);
        assert_eq!(arp.target_protocol_addr(), HOST_IP);
        assert_eq!(arp.target_hardware_addr(), HOST_MAC);
    }

    #[test]
    fn replies_and_gratuitous_go_to_control() {
        let r = responder();
        let mut c = WorkerCounters::default();
        let reply = build::arp(
            HOST_MAC,
            OUR_MAC,
            operation::REPLY,
            HOST_MAC,
            HOST_IP,
            OUR_MAC,
            OUR_IP,
        );
        let garp = build::arp(
            HOST_MAC,
            BROADCAST,
            operation::REQUEST,
            HOST_MAC,
            HOST_IP,
            [0; 6],
            HOST_IP,
        );
        for f in [reply, garp] {
            let mut b = f.clone();
            let mut pkt = Pkt::new(&mut b, f.len(), 0);
            assert_eq!(r.process(&mut pkt, &mut c), Verdict::Control);
            assert_eq!(pkt.frame(), &f[..], "frame must be left unchanged");
        }
        assert_eq!(c.total_drops(), 0);
    }

    #[test]
    fn others_ignored_and_counted() {
        let r = responder();
        let mut c = WorkerCounters::default();
        let req = |tpa| {
            build::arp(
                HOST_MAC,
                BROADCAST,
                operation::REQUEST,
                HOST_MAC,
                HOST_IP,
                [0; 6],
                tpa,
            )
        };
        let mut cases = vec![
            (req([192, 0, 2, 77]), 0), // not ours
            (req(OUR_IP), 1),          // ours, but on port 0 only
            (req(OUR_IP)[..41].to_vec(), 0),
            (build::FrameSpec::default().build(), 0),
            (vec![0u8; 10], 0),
        ];
        let mut bad_hlen = req(OUR_IP);
        bad_hlen[18] = 8;
        cases.push((bad_hlen, 0));
        let mut rarp = req(OUR_IP);
        rarp[21] = 3;
        cases.push((rarp, 0));
        let n = cases.len() as u64;
        for (f, port) in cases {
            let mut b = f.clone();
            let mut pkt = Pkt::new(&mut b, f.len(), port);
            assert_eq!(
                r.process(&mut pkt, &mut c),
                Verdict::Drop(DropReason::ArpIgnored)
            );
            assert_eq!(pkt.frame(), &f[..]);
        }
        assert_eq!(c.drops[DropReason::ArpIgnored as usize], n);
    }

    #[test]
    fn lookup_and_duplicates() {
        let r = ArpResponder::new([
            (1, [1, 1, 1, 1], [1; 6]),
            (0, [2, 2, 2, 2], [2; 6]),
            (1, [1, 1, 1, 1], [3; 6]),
        ]);
        assert_eq!(r.entries().len(), 2);
        assert_eq!(r.lookup(1, [1, 1, 1, 1]), Some([3; 6]));
        assert_eq!(r.lookup(0, [2, 2, 2, 2]), Some([2; 6]));
        assert_eq!(r.lookup(0, [1, 1, 1, 1]), None);
    }
}
