//! Connection state of a flow entry and its transitions.
//!
//! TCP is tracked loosely, as a NAT must (no sequence-number checks):
//!
//! ```text
//!   SYN up ──► SynSent ──SYN-ACK down / ACK up──► Established
//!   FIN up   : SynSent|Established ─► FinUp ; FinDown ─► Closed(fin)
//!   FIN down : SynSent|Established ─► FinDown ; FinUp  ─► Closed(fin)
//!   RST either way, in any open state ─► Closed(rst)
//! ```
//!
//! `Closed` entries stay in the tables for `close_hold_ms` so that late
//! packets of the same connection (the last ACK, a retransmitted FIN) are
//! still translated; they are no longer counted (the accounting record was
//! emitted at the transition to `Closed`). UDP and ICMP flows are `Dgram`
//! until their idle timeout.

use super::acct::CloseReason;
use super::config::GwTimeouts;
use crate::wire::tcp::flags;

/// IP protocol numbers handled by the GW.
pub const PROTO_ICMP: u8 = crate::wire::ip_proto::ICMP;
pub const PROTO_TCP: u8 = crate::wire::ip_proto::TCP;
pub const PROTO_UDP: u8 = crate::wire::ip_proto::UDP;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum FlowState {
    /// Entry unused (its key is free or on hold after an unlinked close).
    #[default]
    Free = 0,
    SynSent,
    Established,
    /// FIN seen from the subscriber only.
    FinUp,
    /// FIN seen from the server only.
    FinDown,
    /// Closed (both FINs, a RST, or idle expiry); key on hold.
    Closed,
    /// UDP / ICMP echo flow.
    Dgram,
}

impl FlowState {
    /// Still an open connection (counted, expirable by idle timeout).
    #[inline]
    pub fn is_open(self) -> bool {
        !matches!(self, FlowState::Free | FlowState::Closed)
    }
}

/// Direction of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Subscriber → server.
    Up,
    /// Server → subscriber.
    Down,
}

/// The state after a TCP packet with `tcp_flags` in direction `dir`, and the
/// close reason if this packet closes the connection.
#[inline]
pub fn tcp_next(s: FlowState, dir: Dir, tcp_flags: u8) -> (FlowState, Option<CloseReason>) {
    use flags::*;
    use FlowState::*;
    if !matches!(s, SynSent | Established | FinUp | FinDown) {
        return (s, None);
    }
    if tcp_flags & RST != 0 {
        return (Closed, Some(CloseReason::Rst));
    }
    let mut n = s;
    if n == SynSent {
        let syn_ack = tcp_flags & (SYN | ACK) == SYN | ACK;
        let ack_only = tcp_flags & (SYN | ACK) == ACK;
        if (dir == Dir::Down && syn_ack) || (dir == Dir::Up && ack_only) {
            n = Established;
        }
    }
    if tcp_flags & FIN != 0 {
        n = match (n, dir) {
            (SynSent | Established, Dir::Up) => FinUp,
            (SynSent | Established, Dir::Down) => FinDown,
            (FinDown, Dir::Up) | (FinUp, Dir::Down) => return (Closed, Some(CloseReason::Fin)),
            (other, _) => other,
        };
    }
    (n, None)
}

/// Idle timeout of a flow in state `s` of protocol `proto`.
#[inline]
pub fn idle_timeout_ms(s: FlowState, proto: u8, t: &GwTimeouts) -> u64 {
    match s {
        FlowState::SynSent => t.syn_ms,
        FlowState::Established => t.established_ms,
        FlowState::FinUp | FlowState::FinDown => t.closing_ms,
        FlowState::Dgram if proto == PROTO_ICMP => t.icmp_ms,
        FlowState::Dgram => t.udp_ms,
        FlowState::Free | FlowState::Closed => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::FlowState::*;
    use super::*;

    #[test]
    fn handshake_and_orderly_close() {
        let (s, r) = tcp_next(SynSent, Dir::Up, SYN);
        assert_eq!((s, r), (SynSent, None));
        assert_eq!(tcp_next(SynSent, Dir::Down, SYN | ACK), (Established, None));
        assert_eq!(tcp_next(SynSent, Dir::Up, ACK), (Established, None));
        assert_eq!(tcp_next(SynSent, Dir::Down, ACK), (SynSent, None));
        assert_eq!(tcp_next(Established, Dir::Up, FIN | ACK), (FinUp, None));
        assert_eq!(tcp_next(FinUp, Dir::Up, FIN | ACK), (FinUp, None));
        assert_eq!(tcp_next(FinUp, Dir::Down, ACK), (FinUp, None));
        assert_eq!(
            tcp_next(FinUp, Dir::Down, FIN | ACK),
            (Closed, Some(CloseReason::Fin))
        );
        assert_eq!(tcp_next(Established, Dir::Down, FIN | ACK), (FinDown, None));
        assert_eq!(
            tcp_next(FinDown, Dir::Up, FIN | ACK),
            (Closed, Some(CloseReason::Fin))
        );
    }

    #[test]
    fn rst_closes_any_open_state_and_closed_is_final() {
        for s in [SynSent, Established, FinUp, FinDown] {
            for d in [Dir::Up, Dir::Down] {
                assert_eq!(tcp_next(s, d, RST | ACK), (Closed, Some(CloseReason::Rst)));
            }
        }
        assert_eq!(tcp_next(Closed, Dir::Up, SYN), (Closed, None));
        assert_eq!(tcp_next(Closed, Dir::Down, FIN), (Closed, None));
        assert_eq!(tcp_next(Dgram, Dir::Down, RST), (Dgram, None));
    }

    #[test]
    fn timeouts_per_state() {
        let t = GwTimeouts {
            syn_ms: 1,
            established_ms: 2,
            closing_ms: 3,
            udp_ms: 4,
            icmp_ms: 5,
            close_hold_ms: 6,
            short_hold_ms: 6,
        };
        assert_eq!(idle_timeout_ms(SynSent, PROTO_TCP, &t), 1);
        assert_eq!(idle_timeout_ms(Established, PROTO_TCP, &t), 2);
        assert_eq!(idle_timeout_ms(FinUp, PROTO_TCP, &t), 3);
        assert_eq!(idle_timeout_ms(FinDown, PROTO_TCP, &t), 3);
        assert_eq!(idle_timeout_ms(Dgram, PROTO_UDP, &t), 4);
        assert_eq!(idle_timeout_ms(Dgram, PROTO_ICMP, &t), 5);
        assert_eq!(idle_timeout_ms(Closed, PROTO_TCP, &t), u64::MAX);
    }
}
