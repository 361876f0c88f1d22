//! IPv6 neighbour discovery for the gateway's own addresses (RFC 4861): the
//! IPv6 counterpart of [`crate::arp::ArpResponder`].
//!
//! A Neighbor Solicitation for one of our addresses on the port it arrived
//! on is rewritten in place into the Neighbor Advertisement (Solicited,
//! Override; Router when the entry says so) with our link-layer address as
//! the Target Link-Layer Address option, sent back on the same port. A
//! Neighbor Advertisement is handed to the management thread (`Control`),
//! which learns neighbours from it. Anything else ICMPv6-ND that is not for
//! us is dropped as `arp_ignored` (the neighbour-resolution drop counter).
//! Checks follow RFC 4861 §7.1.1: hop limit 255, ICMPv6 code 0, length ≥ 24.
//! Cost: a scan of the (short) entry list and one checksum over 32 bytes.

use crate::verdict::{DropReason, Pkt, PortIdx, Verdict, WorkerCounters};
use crate::wire::checksum::l4_checksum_v6;
use crate::wire::MacAddr;

const ETH: usize = 14;
const IP6: usize = 40;
/// ICMPv6 type of a Neighbor Solicitation / Advertisement.
pub const NS: u8 = 135;
pub const NA: u8 = 136;
const NH_ICMPV6: u8 = 58;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdpEntry {
    pub port: PortIdx,
    pub ip: [u8; 16],
    pub mac: MacAddr,
    /// Set the Router flag (the gateway routes for its subscribers).
    pub router: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NdpResponder {
    entries: Vec<NdpEntry>,
}

/// Is this frame (untagged) ICMPv6 neighbour discovery (NS or NA)?
#[inline]
pub fn is_nd(frame: &[u8]) -> bool {
    frame.len() >= ETH + IP6 + 4
        && frame[12..14] == [0x86, 0xdd]
        && frame[ETH + 6] == NH_ICMPV6
        && (frame[ETH + IP6] == NS || frame[ETH + IP6] == NA)
}

impl NdpResponder {
    pub fn new(entries: impl IntoIterator<Item = NdpEntry>) -> Self {
        NdpResponder {
            entries: entries.into_iter().collect(),
        }
    }

    pub fn entries(&self) -> &[NdpEntry] {
        &self.entries
    }

    pub fn process(&self, pkt: &mut Pkt<'_>, c: &mut WorkerCounters) -> Verdict {
        let v = self.decide(pkt);
        if let Verdict::Drop(r) = v {
            c.drop(r);
        }
        v
    }

    fn decide(&self, pkt: &mut Pkt<'_>) -> Verdict {
        let len = pkt.len();
        let port = pkt.port;
        let f = &mut pkt.data_mut()[..];
        if !is_nd(&f[..len]) {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        let plen = u16::from_be_bytes([f[ETH + 4], f[ETH + 5]]) as usize;
        let hop = f[ETH + 7];
        let icmp = ETH + IP6;
        if plen < 24 || ETH + IP6 + plen > len || hop != 255 || f[icmp + 1] != 0 {
            return Verdict::Drop(DropReason::ArpIgnored);
        }
        if f[icmp] == NA {
            return Verdict::Control;
        }
        let mut target = [0u8; 16];
        target.copy_from_slice(&f[icmp + 8..icmp + 24]);
        let Some(e) = self
            .entries
            .iter()
            .find(|e| e.port == port && e.ip == target)
        else {
            return Verdict::Drop(DropReason::ArpIgnored);
        };
        // A solicitation from the unspecified address (duplicate address
        // detection) is answered to all-nodes; else to its source (RFC 4861 §7.2.4).
        let mut src = [0u8; 16];
        src.copy_from_slice(&f[ETH + 8..ETH + 24]);
        let unspecified = src == [0u8; 16];
        let (dst_ip, dst_mac): ([u8; 16], MacAddr) = if unspecified {
            let mut a = [0u8; 16];
            a[0] = 0xff;
            a[1] = 0x02;
            a[15] = 1;
            (a, [0x33, 0x33, 0, 0, 0, 1])
        } else {
            let mut m = [0u8; 6];
            m.copy_from_slice(&f[6..12]);
            (src, m)
        };
        let need = ETH + IP6 + 32;
        if f.len() < need {
            return Verdict::Drop(DropReason::TooBig);
        }
        // Ethernet.
        f[0..6].copy_from_slice(&dst_mac);
        f[6..12].copy_from_slice(&e.mac);
        // IPv6: payload 32 (24 + TLLA option), hop limit 255, from our address.
        f[ETH + 4..ETH + 6].copy_from_slice(&32u16.to_be_bytes());
        f[ETH + 7] = 255;
        f[ETH + 8..ETH + 24].copy_from_slice(&e.ip);
        f[ETH + 24..ETH + 40].copy_from_slice(&dst_ip);
        // ICMPv6 NA: type, code, checksum, flags R|S|O, target, option 2.
        f[icmp] = NA;
        f[icmp + 1] = 0;
        f[icmp + 2] = 0;
        f[icmp + 3] = 0;
        let flags = (if e.router { 0x80 } else { 0 }) | (if unspecified { 0 } else { 0x40 }) | 0x20;
        f[icmp + 4..icmp + 8].copy_from_slice(&[flags, 0, 0, 0]);
        f[icmp + 8..icmp + 24].copy_from_slice(&e.ip);
        f[icmp + 24] = 2;
        f[icmp + 25] = 1;
        f[icmp + 26..icmp + 32].copy_from_slice(&e.mac);
        let ck = l4_checksum_v6(&e.ip, &dst_ip, NH_ICMPV6, &f[icmp..icmp + 32]);
        f[icmp + 2..icmp + 4].copy_from_slice(&ck.to_be_bytes());
        pkt.set_len(need);
        Verdict::Tx { port }
    }
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1)
/// and its Ethernet address (RFC 2464 §7).
pub fn solicited_node(target: &[u8; 16]) -> ([u8; 16], MacAddr) {
    let mut ip = [0u8; 16];
    ip[0] = 0xff;
    ip[1] = 0x02;
    ip[11] = 1;
    ip[12] = 0xff;
    ip[13..16].copy_from_slice(&target[13..16]);
    (ip, [0x33, 0x33, ip[12], ip[13], ip[14], ip[15]])
}

/// A Neighbor Solicitation for `target` from `src_ip`/`src_mac` to its
/// solicited-node address, with our Source Link-Layer Address option: what
/// the management thread sends to resolve an IPv6 server (RFC 4861 §7.2.2).
pub fn solicitation(src_mac: MacAddr, src_ip: [u8; 16], target: [u8; 16]) -> Vec<u8> {
    let (dst_ip, dst_mac) = solicited_node(&target);
    let mut f = vec![0u8; ETH + IP6 + 32];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[ETH] = 0x60;
    f[ETH + 4..ETH + 6].copy_from_slice(&32u16.to_be_bytes());
    f[ETH + 6] = NH_ICMPV6;
    f[ETH + 7] = 255;
    f[ETH + 8..ETH + 24].copy_from_slice(&src_ip);
    f[ETH + 24..ETH + 40].copy_from_slice(&dst_ip);
    let i = ETH + IP6;
    f[i] = NS;
    f[i + 8..i + 24].copy_from_slice(&target);
    f[i + 24] = 1;
    f[i + 25] = 1;
    f[i + 26..i + 32].copy_from_slice(&src_mac);
    let ck = l4_checksum_v6(&src_ip, &dst_ip, NH_ICMPV6, &f[i..i + 32]);
    f[i + 2..i + 4].copy_from_slice(&ck.to_be_bytes());
    f
}

/// The (target, link-layer address, Solicited flag) of a Neighbor
/// Advertisement: the address is its Target Link-Layer Address option, else
/// the frame's Ethernet source; the flag says it answers a solicitation.
/// `None` unless it is a well-formed NA (RFC 4861 §7.1.2: hop limit 255,
/// code 0, length ≥ 24, a valid checksum, options of non-zero length).
pub fn advertisement(frame: &[u8]) -> Option<([u8; 16], MacAddr, bool)> {
    if !is_nd(frame) || frame[ETH + IP6] != NA {
        return None;
    }
    let plen = u16::from_be_bytes([frame[ETH + 4], frame[ETH + 5]]) as usize;
    let i = ETH + IP6;
    if plen < 24 || i + plen > frame.len() || frame[ETH + 7] != 255 || frame[i + 1] != 0 {
        return None;
    }
    let icmp = &frame[i..i + plen];
    let src: [u8; 16] = frame[ETH + 8..ETH + 24].try_into().ok()?;
    let dst: [u8; 16] = frame[ETH + 24..ETH + 40].try_into().ok()?;
    let mut zeroed = icmp.to_vec();
    zeroed[2] = 0;
    zeroed[3] = 0;
    if l4_checksum_v6(&src, &dst, NH_ICMPV6, &zeroed) != u16::from_be_bytes([icmp[2], icmp[3]]) {
        return None;
    }
    let target: [u8; 16] = icmp[8..24].try_into().ok()?;
    let mut mac: MacAddr = frame[6..12].try_into().ok()?;
    let mut at = 24;
    while at + 2 <= icmp.len() {
        let len = icmp[at + 1] as usize * 8;
        if len == 0 || at + len > icmp.len() {
            return None;
        }
        if icmp[at] == 2 && len >= 8 {
            mac.copy_from_slice(&icmp[at + 2..at + 8]);
        }
        at += len;
    }
    Some((target, mac, icmp[4] & 0x40 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmp::IcmpPacket;

    const OUR: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const PEER: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const OUR_MAC: MacAddr = [2, 0, 0, 0, 0, 1];
    const PEER_MAC: MacAddr = [2, 0, 0, 0, 0, 2];

    fn ns(src: [u8; 16], target: [u8; 16], hop: u8) -> Vec<u8> {
        let mut f = solicitation(PEER_MAC, src, target);
        // (the checksum does not cover the hop limit)
        f[ETH + 7] = hop;
        f
    }

    fn responder() -> NdpResponder {
        NdpResponder::new([NdpEntry {
            port: 0,
            ip: OUR,
            mac: OUR_MAC,
            router: true,
        }])
    }

    #[test]
    fn solicitation_for_us_becomes_the_advertisement() {
        let mut buf = ns(PEER, OUR, 255);
        buf.resize(128, 0xa5);
        let mut c = WorkerCounters::default();
        let n = ETH + IP6 + 32;
        let mut p = Pkt::new(&mut buf, n, 0);
        assert_eq!(responder().process(&mut p, &mut c), Verdict::Tx { port: 0 });
        assert_eq!(p.len(), n);
        let f = p.frame().to_vec();
        assert_eq!(&f[0..6], &PEER_MAC);
        assert_eq!(&f[6..12], &OUR_MAC);
        assert_eq!(&f[ETH + 8..ETH + 24], &OUR);
        assert_eq!(&f[ETH + 24..ETH + 40], &PEER);
        let i = ETH + IP6;
        assert_eq!(f[i], NA);
        assert_eq!(f[i + 4], 0x80 | 0x40 | 0x20, "router, solicited, override");
        assert_eq!(&f[i + 8..i + 24], &OUR);
        assert_eq!(&f[i + 24..i + 32], &[2, 1, 2, 0, 0, 0, 0, 1]);
        // (wire::parse takes only echo among ICMP types, so check directly.)
        assert!(
            IcmpPacket::new_unchecked(&f[ETH + IP6..]).verify_checksum_v6(&OUR, &PEER),
            "ICMPv6 checksum"
        );
        assert_eq!(c.total_drops(), 0);
    }

    #[test]
    fn dad_is_answered_to_all_nodes_and_others_are_dropped() {
        let mut c = WorkerCounters::default();
        let mut b = ns([0; 16], OUR, 255);
        let n = b.len();
        let mut p = Pkt::new(&mut b, n, 0);
        assert_eq!(responder().process(&mut p, &mut c), Verdict::Tx { port: 0 });
        assert_eq!(&p.frame()[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(p.frame()[ETH + IP6 + 4] & 0x40, 0, "not solicited");
        for (mut f, port) in [
            (ns(PEER, PEER, 255), 0),
            (ns(PEER, OUR, 64), 0),
            (ns(PEER, OUR, 255), 1),
            (vec![0u8; 30], 0),
        ] {
            let n = f.len();
            let mut p = Pkt::new(&mut f, n, port);
            assert_eq!(
                responder().process(&mut p, &mut c),
                Verdict::Drop(DropReason::ArpIgnored)
            );
        }
        assert_eq!(c.total_drops(), 4);
        // An advertisement goes to the management thread.
        let mut na = ns(PEER, OUR, 255);
        na[ETH + IP6] = NA;
        let n = na.len();
        assert_eq!(
            responder().process(&mut Pkt::new(&mut na, n, 0), &mut c),
            Verdict::Control
        );
    }

    /// The management thread's solicitation, answered by a responder (as a
    /// server's stack would), gives back the target and its MAC.
    #[test]
    fn solicitation_bytes_and_the_advertisement_it_draws() {
        let target = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0x11,
        ];
        let f = solicitation(OUR_MAC, OUR, target);
        assert_eq!(f.len(), 86);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0xab, 0xcd, 0x11]);
        assert_eq!(&f[6..12], &OUR_MAC);
        assert_eq!(
            &f[ETH + 24..ETH + 40],
            &[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xab, 0xcd, 0x11]
        );
        assert_eq!(f[ETH + 7], 255);
        let i = ETH + IP6;
        assert_eq!((f[i], f[i + 1]), (NS, 0));
        assert_eq!(&f[i + 8..i + 24], &target);
        assert_eq!(&f[i + 24..i + 32], &[1, 1, 2, 0, 0, 0, 0, 1]);
        let mut z = f[i..].to_vec();
        z[2] = 0;
        z[3] = 0;
        let dst: [u8; 16] = f[ETH + 24..ETH + 40].try_into().unwrap();
        assert_eq!(
            l4_checksum_v6(&OUR, &dst, 58, &z),
            u16::from_be_bytes([f[i + 2], f[i + 3]])
        );
        // The server (here a responder for `target`) answers with its MAC.
        let server = NdpResponder::new([NdpEntry {
            port: 1,
            ip: target,
            mac: PEER_MAC,
            router: false,
        }]);
        let mut b = f.clone();
        let n = b.len();
        let mut p = Pkt::new(&mut b, n, 1);
        let mut c = WorkerCounters::default();
        assert_eq!(server.process(&mut p, &mut c), Verdict::Tx { port: 1 });
        let na = p.frame().to_vec();
        assert_eq!(
            advertisement(&na),
            Some((target, PEER_MAC, true)),
            "an answer to a solicitation"
        );
        // The ICMPv6 checksum of an edited frame, made right again.
        let resum = |mut g: Vec<u8>| {
            let src: [u8; 16] = g[ETH + 8..ETH + 24].try_into().unwrap();
            let dst: [u8; 16] = g[ETH + 24..ETH + 40].try_into().unwrap();
            g[i + 2] = 0;
            g[i + 3] = 0;
            let ck = l4_checksum_v6(&src, &dst, 58, &g[i..]);
            g[i + 2..i + 4].copy_from_slice(&ck.to_be_bytes());
            g
        };
        // Unsolicited (the S flag clear, the checksum made right).
        let mut unsolicited = na.clone();
        unsolicited[i + 4] &= !0x40;
        let unsolicited = resum(unsolicited);
        assert_eq!(advertisement(&unsolicited), Some((target, PEER_MAC, false)));
        // Without the option: the Ethernet source.
        let mut bare = na[..ETH + IP6 + 24].to_vec();
        bare[ETH + 4..ETH + 6].copy_from_slice(&24u16.to_be_bytes());
        let mut bare = resum(bare);
        bare[6..12].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
        assert_eq!(
            advertisement(&bare),
            Some((target, [2, 9, 9, 9, 9, 9], true))
        );
        // Refused: a solicitation, hop limit 64, a bad checksum, an option
        // of length 0, cut short.
        assert_eq!(advertisement(&f), None);
        let mut hop = na.clone();
        hop[ETH + 7] = 64;
        assert_eq!(advertisement(&hop), None);
        let mut sum = na.clone();
        sum[i + 2] ^= 1;
        assert_eq!(advertisement(&sum), None);
        let mut zero = na.clone();
        zero[i + 25] = 0;
        assert_eq!(advertisement(&resum(zero)), None);
        assert_eq!(advertisement(&na[..na.len() - 1]), None);
    }
}
