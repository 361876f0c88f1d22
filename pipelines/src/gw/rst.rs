//! Replies the gateway builds in place from the packet they answer: the
//! proxy reply of service authorization (S66–S67: a refused SYN becomes the
//! TCP RST, IPv4 or IPv6), and the ICMPv4 Fragmentation Needed a NAT64
//! down packet too big for the IPv6 link gets.

use crate::verdict::Pkt;
use crate::wire::ether::ethertype;
use crate::wire::ether::EthernetFrame;
use crate::wire::icmp::IcmpPacket;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::tcp::{self, flags, TcpPacket};
use crate::wire::{ip_proto, Parsed};

/// Minimum Ethernet frame without FCS; shorter replies are zero-padded to it
/// when the buffer has room (not every NIC pads).
pub const ETH_MIN_FRAME: usize = 60;

/// Address the Ethernet header `eth` (tag included) back to its sender, from
/// `our_mac`.
fn back_to_sender(eth: &mut [u8], our_mac: [u8; 6]) {
    let mut eth = EthernetFrame::new_unchecked(eth);
    let peer_mac = eth.src_addr();
    eth.set_dst_addr(peer_mac);
    eth.set_src_addr(our_mac);
}

/// The headers of an IPv4 reply in the frame of `pkt` (its L2 header `l2`
/// bytes): Ethernet back to its sender from `our_mac`; an option-less IPv4
/// header of total length `total`: TOS 0, id 0, DF if `df`, TTL 64,
/// checksum computed.
fn reply_ipv4(
    pkt: &mut Pkt<'_>,
    l2: usize,
    total: usize,
    df: bool,
    proto: u8,
    (src, dst): ([u8; 4], [u8; 4]),
    our_mac: [u8; 6],
) {
    back_to_sender(&mut pkt.data_mut()[..l2], our_mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut pkt.data_mut()[l2..l2 + ipv4::HEADER_LEN]);
    ip.set_version_and_header_len(ipv4::HEADER_LEN);
    ip.set_dscp_ecn(0, 0);
    ip.set_total_len(total as u16);
    ip.set_ident(0);
    ip.set_flags_and_frag_offset(df, false, 0);
    ip.set_ttl(64);
    ip.set_protocol(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
}

/// The acknowledgment number of the RST refusing the SYN in `pkt`: the SYN's
/// sequence number + SYN (1) + payload length (+ 1 with FIN); `beyond`:
/// its bytes past the first buffer of a chained frame.
fn ack_of_syn(pkt: &Pkt<'_>, p: &Parsed, beyond: usize) -> u32 {
    let seq = TcpPacket::new_unchecked(&pkt.data()[p.l4_off as usize..p.ip_end()]).seq_number();
    let seg_len =
        (p.payload_len as usize + beyond) as u32 + 1 + (p.tcp_flags & flags::FIN != 0) as u32;
    seq.wrapping_add(seg_len)
}

/// A TCP segment the gateway builds in place of the one it answers.
pub(super) struct TcpReply<'o> {
    /// Source and destination ports.
    pub ports: (u16, u16),
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub win: u16,
    /// Options (a multiple of 4 bytes).
    pub opts: &'o [u8],
}

impl TcpReply<'_> {
    /// The RST refusing the SYN `p`: ports swapped, seq 0, `ack`, RST|ACK,
    /// window 0, no options.
    fn rst_of_syn(p: &Parsed, ack: u32) -> TcpReply<'static> {
        TcpReply {
            ports: (p.dst_port, p.src_port),
            seq: 0,
            ack,
            flags: flags::RST | flags::ACK,
            win: 0,
            opts: &[],
        }
    }
    /// Its length.
    fn len(&self) -> usize {
        tcp::HEADER_LEN + self.opts.len()
    }
    /// Write the header into `t` (the checksum is the caller's).
    fn write(&self, t: &mut TcpPacket<&mut [u8]>) {
        t.set_src_port(self.ports.0);
        t.set_dst_port(self.ports.1);
        t.set_seq_number(self.seq);
        t.set_ack_number(self.ack);
        t.set_header_len(self.len());
        t.set_flags(self.flags);
        t.set_window_len(self.win);
        t.set_urgent_at(0);
        t.options_mut().copy_from_slice(self.opts);
    }
}

/// Rewrite the frame in `pkt` (its L2 header `l2` bytes) into the segment
/// `r` going back to its sender: Ethernet back to the sender from
/// `our_mac` (a tag stays); IPv4 without options, TOS 0, id 0, DF, TTL
/// 64, from `src` to `dst`; TCP `r`, checksums computed; frame length
/// zero-padded to [`ETH_MIN_FRAME`] when the buffer allows. Needs
/// `pkt.data()` to hold `l2 + 20 + r.len()` bytes.
pub(super) fn tcp_reply_v4(
    pkt: &mut Pkt<'_>,
    l2: usize,
    (src, dst): ([u8; 4], [u8; 4]),
    r: &TcpReply<'_>,
    our_mac: [u8; 6],
) {
    let l4 = l2 + ipv4::HEADER_LEN;
    let end = l4 + r.len();
    debug_assert!(pkt.data().len() >= end);
    reply_ipv4(pkt, l2, end - l2, true, ip_proto::TCP, (src, dst), our_mac);
    let mut t = TcpPacket::new_unchecked(&mut pkt.data_mut()[l4..end]);
    r.write(&mut t);
    t.fill_checksum_v4(src, dst);
    set_len_padded(pkt, end);
}

/// Set the frame's length to `len`, zero-padded to [`ETH_MIN_FRAME`] when
/// the buffer allows.
pub(super) fn set_len_padded(pkt: &mut Pkt<'_>, len: usize) {
    let mut len = len;
    if len < ETH_MIN_FRAME && pkt.data().len() >= ETH_MIN_FRAME {
        pkt.data_mut()[len..ETH_MIN_FRAME].fill(0);
        len = ETH_MIN_FRAME;
    }
    pkt.set_len(len);
}

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
/// Needs `pkt.len() >= l2 + 40`, which holds for any frame `parse` accepted as
/// TCP (IPv4 header >= 20, TCP header >= 20).
pub fn syn_to_rst(pkt: &mut Pkt<'_>, p: &Parsed, beyond: usize, our_mac: [u8; 6]) {
    debug_assert!(pkt.len() >= p.l2_len() + ipv4::HEADER_LEN + tcp::HEADER_LEN);
    let r = TcpReply::rst_of_syn(p, ack_of_syn(pkt, p, beyond));
    tcp_reply_v4(pkt, p.l2_len(), (p.dst_v4(), p.src_v4()), &r, our_mac);
}

/// The IPv6 counterpart of [`syn_to_rst`], for a refused NAT64 SYN: the same
/// Ethernet and TCP rules; IPv6: traffic class 0, flow label 0, payload
/// length 20, next header TCP, hop limit 64, source and destination
/// swapped (the RST comes from the IPv6 address the subscriber connected
/// to), no extension headers; checksum over the IPv6 pseudo-header. Frame
/// length L2 + 60 (always above the Ethernet minimum).
///
/// Needs a frame `parse` accepted as IPv6/TCP (no extension headers, so the
/// TCP header follows the IPv6 header).
pub fn syn_to_rst_v6(pkt: &mut Pkt<'_>, p: &Parsed, beyond: usize, our_mac: [u8; 6]) {
    let l2 = p.l2_len();
    let l4 = l2 + ipv6::HEADER_LEN;
    let end = l4 + tcp::HEADER_LEN;
    debug_assert!(pkt.len() >= end && p.l4_off as usize == l4);
    let (src_ip, dst_ip) = (p.src, p.dst);
    let ack = ack_of_syn(pkt, p, beyond);
    back_to_sender(&mut pkt.data_mut()[..l2], our_mac);
    debug_assert_eq!(
        EthernetFrame::new_unchecked(&pkt.data()[..l2]).ethertype(),
        ethertype::IPV6
    );

    let mut ip = Ipv6Packet::new_unchecked(&mut pkt.data_mut()[l2..l4]);
    ip.set_version_tc_flow(0, 0);
    ip.set_payload_len(tcp::HEADER_LEN as u16);
    ip.set_next_header(ip_proto::TCP);
    ip.set_hop_limit(64);
    ip.set_src_addr(dst_ip);
    ip.set_dst_addr(src_ip);

    let mut t = TcpPacket::new_unchecked(&mut pkt.data_mut()[l4..end]);
    TcpReply::rst_of_syn(p, ack).write(&mut t);
    t.fill_checksum_v6(&dst_ip, &src_ip);
    pkt.set_len(end);
}

/// Most bytes of the offending datagram an ICMPv4 error quotes: the error
/// stays within 576 bytes (RFC 1812 §4.3.2.3).
pub const ICMP4_QUOTE_MAX: usize = 576 - ipv4::HEADER_LEN - 8;

/// Rewrite the IPv4 packet in `pkt` (parsed as `p`) into the ICMPv4
/// Destination Unreachable / Fragmentation Needed (type 3, code 4, RFC
/// 1191) that tells its sender the next-hop MTU is `mtu`:
///
/// * Ethernet: destination = the packet's source MAC, source = `our_mac`
///   (a tag stays);
/// * IPv4: TOS 0, id 0, no DF, TTL 64, ICMP, from the packet's destination
///   (our pool address) to its source, checksum computed;
/// * ICMP: bytes 6..8 = `mtu`, then the packet's first bytes (IP header
///   included) up to [`ICMP4_QUOTE_MAX`], checksum computed.
///
/// The frame only shrinks or stays (a packet this is built for is larger
/// than the quote).
pub fn frag_needed_v4(pkt: &mut Pkt<'_>, p: &Parsed, mtu: u16, our_mac: [u8; 6]) {
    let l3 = p.l2_len();
    let total = p.ip_end() - l3;
    let q = total.min(ICMP4_QUOTE_MAX);
    let (src_ip, dst_ip) = (p.src_v4(), p.dst_v4());
    let icmp_at = l3 + ipv4::HEADER_LEN;
    let end = icmp_at + 8 + q;
    debug_assert!(end <= pkt.data().len());
    pkt.data_mut().copy_within(l3..l3 + q, icmp_at + 8);

    reply_ipv4(
        pkt,
        l3,
        end - l3,
        false,
        ip_proto::ICMP,
        (dst_ip, src_ip),
        our_mac,
    );

    let mut i = IcmpPacket::new_unchecked(&mut pkt.data_mut()[icmp_at..end]);
    i.set_msg_type(crate::wire::icmp::v4::DEST_UNREACHABLE);
    i.set_msg_code(4);
    i.set_echo_ident(0);
    i.set_echo_seq_no(mtu);
    i.fill_checksum_v4();
    pkt.set_len(end);
}
