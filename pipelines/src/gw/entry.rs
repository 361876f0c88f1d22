//! A connection's entry: one 64-byte hot line and a 32-byte cold record.
//!
//! Everything an established packet reads or writes, both ways, is in
//! [`Hot`]: the subscriber-side tuple (up lookups compare it), the
//! translation (server, key), the state, the indices of the LB MAC and the
//! next hop (worker-local tables), last-seen and the counters. [`Cold`] is
//! touched when a connection opens and closes, when its timer is due, and
//! once for the Host/SNI of its first payload. IPv6 addresses (NAT64,
//! NAT66) live in side tables indexed like the entries, present only when
//! the profile enables them.
//!
//! Entries are preallocated for `max_flows_per_worker` connections, open or
//! on hold; a free entry is on the worker's free list (threaded through
//! `Cold::link.next`).

use super::tcp_state::FlowState;

/// "No entry" / "no link".
pub const NONE: u32 = u32::MAX;

/// Take `e` out of the singly linked chain (of a hash bucket) that starts
/// at `*head`, the links being the field `link` gives of each of `items`
/// (ends at [`NONE`]); nothing when `e` is not on it.
#[inline]
pub fn unlink<T>(head: &mut u32, items: &mut [T], e: u32, link: impl Fn(&mut T) -> &mut u32) {
    let after = *link(&mut items[e as usize]);
    if *head == e {
        *head = after;
        return;
    }
    let mut p = *head;
    while p != NONE {
        let l = link(&mut items[p as usize]);
        if *l == e {
            *l = after;
            return;
        }
        p = *l;
    }
}

/// Bits of [`Hot::flags`].
pub mod flag {
    /// NAT64: the subscriber is IPv6 (side table `sub6`).
    pub const V6: u8 = 1;
    /// NAT66: subscriber, VIP and server are IPv6 (side tables).
    pub const NAT66: u8 = 2;
    /// The first up payload was looked at for a Host/SNI.
    pub const ATTR_DONE: u8 = 4;
    /// The subscriber's SYN carried a Window Scale option.
    pub const WS_UP: u8 = 8;
    /// The server's SYN-ACK carried a Window Scale option.
    pub const WS_DOWN: u8 = 16;
    /// The SYN-ACK was seen (whether scaling is on is known).
    pub const SYNACK_SEEN: u8 = 32;
    /// The entry is in the up table (an idle-expired connection's is not:
    /// its late packets are not translated).
    pub const UP_LINKED: u8 = 64;
    /// The connection reached Established (its server may hold TIME_WAIT:
    /// the long hold applies).
    pub const ESTABLISHED: u8 = 128;

    /// Window scaling is in effect (RFC 7323 §2.2: both sides sent it).
    #[inline]
    pub const fn scaled(f: u8) -> bool {
        f & (WS_UP | WS_DOWN) == WS_UP | WS_DOWN
    }
}

/// Bits of [`Hot::xflags`].
pub mod xflag {
    /// Opened by the SYN proxy: its sequence numbers are translated
    /// ([`super::super::synproxy`], side table `px`).
    pub const PROXY: u8 = 1;
    /// Proxied, and its window fields are rescaled (the server's Window
    /// Scale is not the one the subscriber was told).
    pub const RESCALE: u8 = 2;
    /// TCP: the subscriber sent an ACK after the server's SYN-ACK (its side
    /// of the handshake is done); until then the connection counts as
    /// half-open.
    pub const SUB_ACKED: u8 = 4;
    /// TCP: the server's SYN-ACK was seen (an ACK before it proves nothing:
    /// a blind flood sends SYN then ACK).
    pub const SRV_ANSWERED: u8 = 8;
}

/// The hot line of a connection.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Hot {
    /// Subscriber address (a NAT64/NAT66 subscriber: its last 4 bytes).
    pub sub_ip: [u8; 4],
    /// Original destination: the VIP, or the plain destination (NAT64: the
    /// embedded IPv4 address; NAT66: the VIP's last 4 bytes).
    pub dst_ip: [u8; 4],
    pub sub_port: u16,
    pub dst_port: u16,
    /// The server (NAT66: the member's IPv4 identity).
    pub srv_ip: [u8; 4],
    pub srv_port: u16,
    /// The NAT key: `pool` address index and `key_port`.
    pub key_port: u16,
    pub pool: u8,
    pub proto: u8,
    pub state: FlowState,
    /// [`flag`] bits.
    pub flags: u8,
    /// Index of the LB's MAC in the worker's LB table (where down packets
    /// go: the latest up packet's source MAC).
    pub lb: u8,
    /// High bits of the packet counters (40-bit counters).
    pub up_pkts_hi: u8,
    /// Index of the server's next hop in the worker's next-hop cache.
    pub nh: u16,
    /// Last packet, ms of the worker's clock (mod 2^32: compared with
    /// wrapping arithmetic; timeouts are far below 2^31 ms).
    pub last_ms: u32,
    /// Next entry with the same key (pool, key_port): a key is unique per
    /// destination, so several destinations may share it.
    pub key_next: u32,
    pub up_pkts: u32,
    pub down_pkts: u32,
    pub down_pkts_hi: u8,
    /// [`xflag`] bits.
    pub xflags: u8,
    /// The moves epoch ([`super::moves`]) this connection last looked at,
    /// mod 2^16.
    pub move_epoch: u16,
    pub up_bytes: u64,
    pub down_bytes: u64,
}

const _: () = assert!(core::mem::size_of::<Hot>() == 64, "one cache line");

impl Hot {
    pub const EMPTY: Hot = Hot {
        sub_ip: [0; 4],
        dst_ip: [0; 4],
        sub_port: 0,
        dst_port: 0,
        srv_ip: [0; 4],
        srv_port: 0,
        key_port: 0,
        pool: 0,
        proto: 0,
        state: FlowState::Free,
        flags: 0,
        lb: 0,
        up_pkts_hi: 0,
        nh: 0,
        last_ms: 0,
        key_next: NONE,
        up_pkts: 0,
        down_pkts: 0,
        down_pkts_hi: 0,
        xflags: 0,
        move_epoch: 0,
        up_bytes: 0,
        down_bytes: 0,
    };

    #[inline(always)]
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    /// Count an up packet of `bytes` (IP length).
    #[inline(always)]
    pub fn count_up(&mut self, bytes: usize) {
        count(
            &mut self.up_pkts,
            &mut self.up_pkts_hi,
            &mut self.up_bytes,
            bytes,
        );
    }
    /// Count a down packet of `bytes` (IP length).
    #[inline(always)]
    pub fn count_down(&mut self, bytes: usize) {
        count(
            &mut self.down_pkts,
            &mut self.down_pkts_hi,
            &mut self.down_bytes,
            bytes,
        );
    }
    pub fn up_packets(&self) -> u64 {
        (self.up_pkts_hi as u64) << 32 | self.up_pkts as u64
    }
    pub fn down_packets(&self) -> u64 {
        (self.down_pkts_hi as u64) << 32 | self.down_pkts as u64
    }
    /// Reset the counters (a revived binding starts a new connection).
    pub fn zero_counts(&mut self) {
        (self.up_pkts, self.up_pkts_hi, self.up_bytes) = (0, 0, 0);
        (self.down_pkts, self.down_pkts_hi, self.down_bytes) = (0, 0, 0);
    }
}

/// One more packet of `bytes` on a direction's counters: the packet count
/// in 32 bits with its carries in `hi`, and the byte count.
#[inline(always)]
fn count(pkts: &mut u32, hi: &mut u8, total: &mut u64, bytes: usize) {
    let (v, o) = pkts.overflowing_add(1);
    *pkts = v;
    *hi = hi.wrapping_add(o as u8);
    *total += bytes as u64;
}

/// "No group" (not balanced: the destination is no representative address).
pub const NO_GROUP: super::tables::GroupIdx = u16::MAX;
/// "No service".
pub const NO_SERVICE: u8 = u8::MAX;
/// "In no wheel slot".
pub const NO_SLOT: u16 = u16::MAX;

/// The cold part of a connection.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Cold {
    /// Device id of the subscriber's session at the start (0: none).
    pub device_id: u64,
    /// Start, ms of the worker's clock (mod 2^32).
    pub start_ms: u32,
    /// Index in the worker's attribute pool (Host/SNI), or [`NONE`].
    pub attr: u32,
    /// The timer wheel's doubly linked list (a free entry: `next` threads
    /// the free list).
    pub prev: u32,
    pub next: u32,
    pub group: u16,
    /// The server's slot in the balancer's count table.
    pub load_slot: u16,
    /// The wheel slot the entry is in, or [`NO_SLOT`].
    pub slot: u16,
    pub service: u8,
    /// 1: the connection is counted in the worker's subscriber limits
    /// ([`super::limit`]); released when it closes.
    pub sub_counted: u8,
}

const _: () = assert!(core::mem::size_of::<Cold>() == 32);

impl Cold {
    pub const EMPTY: Cold = Cold {
        device_id: 0,
        start_ms: 0,
        attr: NONE,
        prev: NONE,
        next: NONE,
        group: NO_GROUP,
        load_slot: super::balance::NO_SLOT,
        slot: NO_SLOT,
        service: NO_SERVICE,
        sub_counted: 0,
    };
}
