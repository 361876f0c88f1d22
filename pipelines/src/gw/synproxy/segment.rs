//! The SYN proxy's segments, built and translated in place: the SYN-ACK
//! carrying the cookie, the server's SYN rebuilt from the subscriber's ACK,
//! the handshake's ACK to the server, and the sequence, acknowledgment,
//! SACK and window translation of proxied connections' segments.

use super::super::meta::Meta;
use super::super::rst::{set_len_padded, tcp_reply_v4, TcpReply};
use super::{SynOpts, NO_WS};
use crate::verdict::Pkt;
use crate::wire::checksum;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::tcp::{self, flags, option_kind, TcpOption, TcpOptions, TcpPacket};

/// The TCP options the GW sends: MSS, then SACK-permitted and Window Scale
/// when `o` has them (NOP-padded to 4-byte words); their length.
fn write_options(b: &mut [u8], mss: u16, sack: bool, ws: Option<u8>) -> usize {
    let m = mss.to_be_bytes();
    b[..4].copy_from_slice(&[option_kind::MSS, 4, m[0], m[1]]);
    let mut n = 4;
    if sack {
        b[n..n + 4].copy_from_slice(&[
            option_kind::NOP,
            option_kind::NOP,
            option_kind::SACK_PERMITTED,
            2,
        ]);
        n += 4;
    }
    if let Some(s) = ws {
        b[n..n + 4].copy_from_slice(&[option_kind::NOP, option_kind::WINDOW_SCALE, 3, s]);
        n += 4;
    }
    n
}

/// Most bytes of TCP header the GW writes (20 + MSS, SACK-permitted, WS).
pub const MAX_TCP_HEADER: usize = tcp::HEADER_LEN + 12;

/// Rewrite the subscriber's SYN `m` (IPv4, TCP) into the GW's SYN-ACK with
/// sequence number `cookie`: back to the sender from `our_mac`; IPv4 from
/// the VIP, no options, DF, TTL 64; TCP ports swapped, ack = SYN's + 1,
/// window 65535, options MSS `mss`, SACK-permitted and Window Scale `ws`
/// when the SYN had them, no data. False (frame unchanged) when the buffer
/// cannot hold it.
pub fn syn_to_synack(
    pkt: &mut Pkt<'_>,
    m: &Meta,
    o: SynOpts,
    cookie: u32,
    mss: u16,
    ws: u8,
    our_mac: [u8; 6],
) -> bool {
    let l2 = m.l3 as usize;
    let l4 = l2 + ipv4::HEADER_LEN;
    if pkt.data().len() < l4 + MAX_TCP_HEADER || (m.l4 as usize) + tcp::HEADER_LEN > pkt.len() {
        return false;
    }
    let isn = TcpPacket::new_unchecked(&pkt.frame()[m.l4 as usize..]).seq_number();
    let mut opts = [0u8; 12];
    let ws = (o.wscale != NO_WS).then_some(ws);
    let n = write_options(&mut opts, mss, o.sack, ws);
    let r = TcpReply {
        ports: (m.dport, m.sport),
        seq: cookie,
        ack: isn.wrapping_add(1),
        flags: flags::SYN | flags::ACK,
        win: 0xffff,
        opts: &opts[..n],
    };
    tcp_reply_v4(pkt, l2, (m.dst, m.src), &r, our_mac);
    true
}

/// Whether [`ack_to_syn`] can rewrite the ACK `m` in `pkt`'s buffer.
pub fn ack_to_syn_fits(pkt: &Pkt<'_>, m: &Meta) -> bool {
    let l4 = m.l4 as usize;
    pkt.data().len() >= l4 + MAX_TCP_HEADER && l4 + tcp::HEADER_LEN <= pkt.len()
}

/// The subscriber's ACK `m` (IPv4, TCP) rewritten in place into the SYN the
/// server gets: same addresses, ports and IP header (its total length and
/// checksum updated); TCP seq = ACK's - 1, ack 0, flags SYN, window `win`,
/// options MSS / SACK-permitted / Window Scale from `o`, no data. The new
/// end of the IP packet. Needs [`ack_to_syn_fits`].
pub fn ack_to_syn(pkt: &mut Pkt<'_>, m: &Meta, o: SynOpts, win: u16) -> usize {
    let (l3, l4) = (m.l3 as usize, m.l4 as usize);
    debug_assert!(ack_to_syn_fits(pkt, m));
    let mut opts = [0u8; 12];
    let ws = (o.wscale != NO_WS).then_some(o.wscale);
    let n = write_options(&mut opts, o.mss(), o.sack, ws);
    let end = l4 + tcp::HEADER_LEN + n;
    let mut ip = Ipv4Packet::new_unchecked(&mut pkt.data_mut()[l3..l4]);
    ip.set_total_len((end - l3) as u16);
    ip.fill_checksum();
    let mut t = TcpPacket::new_unchecked(&mut pkt.data_mut()[l4..end]);
    let seq = t.seq_number().wrapping_sub(1);
    t.set_seq_number(seq);
    t.set_ack_number(0);
    t.set_header_len(tcp::HEADER_LEN + n);
    t.set_flags(flags::SYN);
    t.set_window_len(win);
    t.set_urgent_at(0);
    t.options_mut().copy_from_slice(&opts[..n]);
    t.fill_checksum_v4(m.src, m.dst);
    set_len_padded(pkt, end);
    end
}

/// The server's SYN-ACK `m` (IPv4, TCP, to a pool address) rewritten in
/// place into the ACK that completes the server's handshake: back to the
/// sender from `our_mac`; IPv4 from the pool address to the server, no
/// options, DF, TTL 64; TCP ports swapped, seq = the SYN-ACK's ack, ack =
/// its seq + 1, window `win`, no options. The SYN-ACK's frame is at least
/// as long (its TCP header is 20 bytes or more).
pub fn synack_to_ack(pkt: &mut Pkt<'_>, m: &Meta, win: u16, our_mac: [u8; 6]) {
    let (seq, ack) = {
        let t = TcpPacket::new_unchecked(&pkt.frame()[m.l4 as usize..]);
        (t.seq_number(), t.ack_number())
    };
    let r = TcpReply {
        ports: (m.dport, m.sport),
        seq: ack,
        ack: seq.wrapping_add(1),
        flags: flags::ACK,
        win,
        opts: &[],
    };
    tcp_reply_v4(pkt, m.l3 as usize, (m.dst, m.src), &r, our_mac);
}

/// Set the sequence and acknowledgment numbers of the TCP segment at `l4`
/// (the RST refusing a proxied connection: the subscriber expects the
/// cookie + 1, and acknowledges up to its ACK's sequence number).
pub fn set_seq_ack(f: &mut [u8], l4: usize, seq: u32, ack: u32) {
    let mut t = TcpPacket::new_unchecked(&mut f[l4..]);
    let c = checksum::update32(t.checksum(), t.seq_number(), seq);
    let c = checksum::update32(c, t.ack_number(), ack);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_checksum(c);
}

/// A 32-bit field at offset `at` of the segment changed from `old` to
/// `new`: the checksum update (an odd offset sums byte-swapped, RFC 1071).
#[inline]
fn sum32(d: &mut checksum::Delta, at: usize, old: u32, new: u32) {
    if at & 1 == 0 {
        d.word32(old, new);
    } else {
        d.word(
            ((old >> 16) as u16).swap_bytes(),
            ((new >> 16) as u16).swap_bytes(),
        );
        d.word((old as u16).swap_bytes(), (new as u16).swap_bytes());
    }
}

/// `w << from >> to`, at most 65535, and not 0 for a window that was not
/// (a window below one unit of the new scale is rounded up, not closed).
#[inline]
pub(super) fn scale(w: u16, from: u8, to: u8) -> u16 {
    let n = (((w as u64) << from) >> to).min(0xffff) as u16;
    if n == 0 && w != 0 {
        1
    } else {
        n
    }
}

/// An up segment (already NAT'd, TCP header at the start of `seg`) of a
/// proxied connection into the server's sequence space: its
/// acknowledgment and SACK edges minus `delta`; its window field shifted
/// left by `up_shift` (a server that does not scale).
#[inline]
pub fn translate_up(seg: &mut [u8], delta: u32, up_shift: u8) {
    let mut t = TcpPacket::new_unchecked(&mut *seg);
    let mut d = checksum::Delta::default();
    if t.flags() & flags::ACK != 0 {
        let a = t.ack_number();
        let n = a.wrapping_sub(delta);
        d.word32(a, n);
        t.set_ack_number(n);
    }
    if up_shift != 0 {
        let w = t.window_len();
        let n = scale(w, up_shift, 0);
        d.word(w, n);
        t.set_window_len(n);
    }
    let hl = t.header_len();
    if hl > tcp::HEADER_LEN && hl <= seg.len() {
        // SACK blocks: edges in the server's sequence space.
        let mut at = tcp::HEADER_LEN;
        while at < hl {
            match seg[at] {
                option_kind::END => break,
                option_kind::NOP => at += 1,
                k => {
                    let len = seg.get(at + 1).copied().unwrap_or(0) as usize;
                    if len < 2 || at + len > hl {
                        break;
                    }
                    if k == option_kind::SACK {
                        let mut e = at + 2;
                        while e + 4 <= at + len {
                            let old =
                                u32::from_be_bytes([seg[e], seg[e + 1], seg[e + 2], seg[e + 3]]);
                            let new = old.wrapping_sub(delta);
                            sum32(&mut d, e, old, new);
                            seg[e..e + 4].copy_from_slice(&new.to_be_bytes());
                            e += 4;
                        }
                    }
                    at += len;
                }
            }
        }
    }
    let mut t = TcpPacket::new_unchecked(seg);
    let c = d.apply(t.checksum());
    t.set_checksum(c);
}

/// A down segment (already NAT'd) of a proxied connection into the
/// subscriber's sequence space: sequence number plus `delta`; the window
/// field from the server's scale to the one the subscriber was told
/// (`shift` = (from, to), or none).
#[inline]
pub fn translate_down(seg: &mut [u8], delta: u32, shift: Option<(u8, u8)>) {
    let mut t = TcpPacket::new_unchecked(seg);
    let mut d = checksum::Delta::default();
    let s = t.seq_number();
    let n = s.wrapping_add(delta);
    d.word32(s, n);
    t.set_seq_number(n);
    if let Some((from, to)) = shift {
        let w = t.window_len();
        let n = scale(w, from, to);
        d.word(w, n);
        t.set_window_len(n);
    }
    let c = d.apply(t.checksum());
    t.set_checksum(c);
}

/// The Window Scale option of a SYN-ACK (its TCP header at the start of
/// `seg`), or [`NO_WS`].
pub fn window_scale(seg: &[u8]) -> u8 {
    let t = TcpPacket::new_unchecked(seg);
    let hl = t.header_len().min(seg.len()).max(tcp::HEADER_LEN);
    TcpOptions::new(&seg[tcp::HEADER_LEN.min(seg.len())..hl])
        .find_map(|o| match o {
            TcpOption::WindowScale(s) => Some(s.min(14)),
            _ => None,
        })
        .unwrap_or(NO_WS)
}
