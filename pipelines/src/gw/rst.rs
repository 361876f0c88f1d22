//! The proxy reply of service authorization (S66–S67): turn a refused SYN
//! into the TCP RST the gateway answers the subscriber with, in place.

use crate::verdict::Pkt;
use crate::wire::ether::EthernetFrame;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::tcp::{self, flags, TcpPacket};
use crate::wire::{ip_proto, Parsed};

/// Minimum Ethernet frame without FCS; shorter replies are zero-padded to it
/// when the buffer has room (not every NIC pads).
pub const ETH_MIN_FRAME: usize = 60;

/// Rewrite the SYN in `pkt` (parsed as `p`, IPv4/TCP) into the RST that
/// refuses it (RFC 9293 §3.10.7.1, "no connection"):
///
/// * Ethernet: destination = the SYN's source, source = `our_mac`; an 802.1Q
///   tag stays as it was;
/// * IPv4: no options, TOS 0, id 0, DF, TTL 64, source and destination
///   swapped, checksum computed;
/// * TCP: ports swapped, seq 0, ack = SYN seq + SYN (1) + payload length
///   (+ 1 with FIN), flags RST|ACK, window 0, no options, checksum computed;
/// * frame length = L2 + 40, zero-padded to 60 bytes when the buffer allows.
///
/// Needs `pkt.len >= l2 + 40`, which holds for any frame `parse` accepted as
/// TCP (IPv4 header >= 20, TCP header >= 20).
pub fn syn_to_rst(pkt: &mut Pkt<'_>, p: &Parsed, our_mac: [u8; 6]) {
    let l2 = p.l2_len();
    let end = l2 + ipv4::HEADER_LEN + tcp::HEADER_LEN;
    debug_assert!(pkt.len >= end);
    let (src_ip, dst_ip) = (p.src_v4(), p.dst_v4());
    let (sport, dport) = (p.src_port, p.dst_port);
    let seq = {
        let t = TcpPacket::new_unchecked(&pkt.data[p.l4_off as usize..p.ip_end()]);
        t.seq_number()
    };
    let seg_len = p.payload_len as u32 + 1 + (p.tcp_flags & flags::FIN != 0) as u32;

    let mut eth = EthernetFrame::new_unchecked(&mut pkt.data[..l2]);
    let peer_mac = eth.src_addr();
    eth.set_dst_addr(peer_mac);
    eth.set_src_addr(our_mac);

    let mut ip = Ipv4Packet::new_unchecked(&mut pkt.data[l2..end]);
    ip.set_version_and_header_len(ipv4::HEADER_LEN);
    ip.set_dscp_ecn(0, 0);
    ip.set_total_len((ipv4::HEADER_LEN + tcp::HEADER_LEN) as u16);
    ip.set_ident(0);
    ip.set_flags_and_frag_offset(true, false, 0);
    ip.set_ttl(64);
    ip.set_protocol(ip_proto::TCP);
    ip.set_src_addr(dst_ip);
    ip.set_dst_addr(src_ip);
    ip.fill_checksum();

    let mut t = TcpPacket::new_unchecked(&mut pkt.data[l2 + ipv4::HEADER_LEN..end]);
    t.set_src_port(dport);
    t.set_dst_port(sport);
    t.set_seq_number(0);
    t.set_ack_number(seq.wrapping_add(seg_len));
    t.set_header_len(tcp::HEADER_LEN);
    t.set_flags(flags::RST | flags::ACK);
    t.set_window_len(0);
    t.set_urgent_at(0);
    t.fill_checksum_v4(dst_ip, src_ip);

    let mut len = end;
    if len < ETH_MIN_FRAME && pkt.data.len() >= ETH_MIN_FRAME {
        pkt.data[len..ETH_MIN_FRAME].fill(0);
        len = ETH_MIN_FRAME;
    }
    pkt.len = len;
}
