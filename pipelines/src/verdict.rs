//! What a stage says about a packet, and the per-worker counters.

/// Index of a port in the engine's port list (profile order), not a DPDK port id.
pub type PortIdx = u16;

/// Most frames one burst carries (the engine's burst array).
pub const MAX_BURST: usize = 64;

/// One frame handed to a stage.
///
/// `buf` is the whole buffer: `off` bytes of headroom, then the frame (`len`
/// bytes), then the rest of the room. A stage may grow or shrink the frame
/// at the end (up to the buffer's end) or at the front ([`Pkt::prepend`],
/// [`Pkt::adj`]: into the headroom), as DPDK's `rte_pktmbuf_prepend` /
/// `rte_pktmbuf_adj` do; the engine writes `off` and `len` back to the mbuf.
///
/// A frame the PMD chained over several mbufs is its first segment here
/// (`buf`, `off`, `len`: the headers are in it) and [`Pkt::tail`], the
/// bytes of the later segments, which no stage reads or writes. A stage
/// that rewrites headers in place leaves the tail as it is; one that sets a
/// new length ([`Pkt::set_len`]: a reply built in the buffer) ends the
/// frame there, and the engine frees the later segments.
pub struct Pkt<'a> {
    buf: &'a mut [u8],
    // (u32: a view is 32 bytes; mbufs and test buffers are far shorter)
    off: u32,
    len: u32,
    tail: u32,
    /// Port the frame arrived on.
    pub port: PortIdx,
}

impl<'a> Pkt<'a> {
    /// A frame at the start of `data` (no headroom).
    pub fn new(data: &'a mut [u8], len: usize, port: PortIdx) -> Self {
        Self::with_headroom(data, 0, len, port)
    }
    /// A frame `off` bytes into `buf`.
    pub fn with_headroom(buf: &'a mut [u8], off: usize, len: usize, port: PortIdx) -> Self {
        Self::chained(buf, off, len, 0, port)
    }
    /// The first segment of a chained frame, `off` bytes into `buf`, `len`
    /// bytes long, with `tail` more bytes in later segments.
    pub fn chained(buf: &'a mut [u8], off: usize, len: usize, tail: usize, port: PortIdx) -> Self {
        let room = buf.len().min(u32::MAX as usize);
        let off = off.min(room);
        let len = len.min(room - off);
        Pkt {
            buf,
            off: off as u32,
            len: len as u32,
            tail: tail.min(u32::MAX as usize) as u32,
            port,
        }
    }
    /// Length of the frame in this buffer (a chained frame's first segment).
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes of the frame in later segments (0: one buffer holds it all).
    #[inline(always)]
    pub fn tail(&self) -> usize {
        self.tail as usize
    }
    /// The frame is now the first `len` bytes from its start (at most to
    /// the buffer's end), nothing after: a chained frame loses its tail.
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        let room = self.buf.len().min(u32::MAX as usize) - self.off as usize;
        self.len = len.min(room) as u32;
        self.tail = 0;
    }
    /// The frame's current bytes.
    #[inline(always)]
    pub fn frame(&self) -> &[u8] {
        let off = self.off as usize;
        &self.buf[off..off + self.len as usize]
    }
    #[inline(always)]
    pub fn frame_mut(&mut self) -> &mut [u8] {
        let off = self.off as usize;
        &mut self.buf[off..off + self.len as usize]
    }
    /// The room from the frame's first byte to the buffer's end.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.off as usize..]
    }
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.off as usize..]
    }
    /// Bytes before the frame.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.off as usize
    }
    /// Grow the frame by `n` bytes at the front (its first `n` bytes are
    /// then what was headroom); false, unchanged, without enough headroom.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        if n > self.off as usize {
            return false;
        }
        self.off -= n as u32;
        self.len += n as u32;
        true
    }
    /// Remove `n` bytes from the front of the frame; false, unchanged, if
    /// the frame is shorter.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.off += n as u32;
        self.len -= n as u32;
        true
    }
}

/// The verdict of a pipeline on one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the frame (its first `Pkt::len` bytes) on `port`.
    Tx { port: PortIdx },
    /// Another worker owns this packet's flow (down packets: the owner of the
    /// NAT key); the engine hands the mbuf over through that worker's ring.
    Handoff { worker: u16 },
    /// The management thread wants this frame (ARP replies, health-probe
    /// answers, control traffic addressed to the gateway itself).
    Control,
    /// Drop, counted under this reason.
    Drop(DropReason),
    /// The stage kept a copy of the frame's bytes to send later (the SYN
    /// proxy's early segment, a fragment waiting for its datagram's first
    /// one); the engine frees the buffer, nothing is counted as dropped.
    Consumed,
}

macro_rules! drop_reasons {
    ($($(#[$m:meta])* $v:ident = $name:literal,)*) => {
        /// Every reason a packet can be dropped. Each has its own counter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $($(#[$m])* $v,)* }
        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)*];
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name used in `pgw stats` and in logs.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$v => $name,)* }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than an Ethernet header, or a truncated 802.1Q tag.
    BadEther = "bad_ether",
    /// Ethertype the pipeline does not handle.
    UnsupportedEthertype = "unsupported_ethertype",
    /// ARP that is malformed or not for one of our addresses.
    ArpIgnored = "arp_ignored",
    /// Truncated or inconsistent IPv4 header (version, IHL, total length).
    BadIpv4 = "bad_ipv4",
    /// Truncated or inconsistent IPv6 header.
    BadIpv6 = "bad_ipv6",
    /// Truncated TCP/UDP/ICMP header or bad data offset.
    BadL4 = "bad_l4",
    /// IP fragment the GW does not translate: fragments off with
    /// `frag_contexts = 0`, of a protocol other than TCP and UDP, IPv6
    /// fragments of a profile without NAT64 or NAT66, malformed ones (see
    /// `gw::frag`).
    Fragment = "fragment",
    /// A fragment needing a new reassembly context found the worker's
    /// table full (`gw.frag_contexts`).
    FragTableFull = "frag_table_full",
    /// A fragment that came before its datagram's first one found no free
    /// hold slot (`gw.frag_hold_slots`).
    FragHoldFull = "frag_hold_full",
    /// A fragment that came before its datagram's first one: the datagram
    /// already holds `gw.frag_max_held` fragments.
    FragTooMany = "frag_too_many",
    /// A fragment that came before its datagram's first one, larger than a
    /// hold slot (1536 bytes).
    FragHoldTooBig = "frag_hold_too_big",
    /// A held fragment whose datagram's first fragment did not come within
    /// `gw.frag_timeout_ms`.
    FragTimeout = "frag_timeout",
    /// IP protocol other than TCP, UDP, ICMP echo.
    UnsupportedProto = "unsupported_proto",
    /// TTL / hop limit would reach zero.
    TtlExceeded = "ttl_exceeded",
    /// Destination MAC is neither ours nor broadcast/multicast we accept.
    NotForUs = "not_for_us",
    /// LB: source address in no subscriber range.
    LbNoRange = "lb_no_range",
    /// LB: primary and every substitute gateway are down.
    LbAllDown = "lb_all_down",
    /// LB/GW: next-hop MAC not known (ARP unresolved).
    NoNeighbor = "no_neighbor",
    /// GW: source address has no active session (profile `require_session`).
    NoSession = "no_session",
    /// GW: service not allowed; the gateway answered with a TCP RST itself.
    Unauthorized = "unauthorized",
    /// GW: no free NAT key (pool addresses x ports exhausted on this worker).
    NatPoolExhausted = "nat_pool_exhausted",
    /// GW: flow table full.
    FlowTableFull = "flow_table_full",
    /// GW: a connection start over the subscriber's open-connection limit
    /// (`gw.max_conns_per_subscriber`, this worker's share); counted whatever
    /// the reply (`gw.exhaustion_reply`: dropped, or answered by a RST).
    SubscriberConnLimit = "subscriber_conn_limit",
    /// GW: a connection start over the subscriber's new-connection rate
    /// (`gw.new_conns_per_subscriber_per_s`, this worker's share); counted
    /// whatever the reply, as `subscriber_conn_limit`.
    SubscriberRateLimit = "subscriber_rate_limit",
    /// GW: a new connection while the instance drains (SIGTERM): refused
    /// so that established ones finish; the client retries elsewhere.
    Draining = "draining",
    /// GW: up packet that is not a connection start and matches no flow.
    NoFlow = "no_flow",
    /// GW with the SYN proxy: an ACK that matches no connection and carries
    /// no valid SYN cookie (forged, too old, or of a connection long gone).
    SyncookieInvalid = "syncookie_invalid",
    /// GW with the SYN proxy: a subscriber's segment while the server's
    /// handshake is pending that could not be kept (not the first with
    /// data, or the early-segment pool is full); the subscriber retransmits.
    SynproxyEarly = "synproxy_early",
    /// GW with the SYN proxy: a server's SYN-ACK to a proxied connection
    /// that does not acknowledge the SYN the GW sent (stale or forged).
    SynproxyBadSynack = "synproxy_bad_synack",
    /// GW: down packet whose key holds no connection (or a different peer).
    NoKey = "no_key",
    /// GW: server group has no member that is up.
    NoServer = "no_server",
    /// Engine: TX queue refused the packet.
    TxFull = "tx_full",
    /// Engine: the owner worker's handoff ring was full.
    HandoffFull = "handoff_full",
    /// Engine: the control ring to the management thread was full.
    ControlFull = "control_full",
    /// Engine: the frame's destination does not exist: a `Tx` verdict (or a
    /// frame from the management thread) naming a port the worker does not
    /// transmit on, a `Handoff` verdict naming no other worker (out of range
    /// or the worker itself). A bug upstream, counted rather than sent or
    /// looped.
    BadDestination = "bad_destination",
    /// A frame the stage released after its burst (a held fragment whose
    /// first fragment came) found no mbuf in the pool.
    ReleasedNoMbuf = "released_no_mbuf",
    /// Wire forwarding: the frame arrived on a port that has no peer.
    NoRoute = "no_route",
    /// LB/GW: the frame arrived on a port the stage does not serve (neither
    /// its access nor its LAN/server port).
    UnexpectedPort = "unexpected_port",
    /// LB without a GW stage: the range's gateway is this box's own LAN MAC
    /// (a configuration error), counted rather than looped.
    LbLocalNoGw = "lb_local_no_gw",
    /// No table snapshot published yet (the engine publishes one before
    /// starting the workers).
    NoTables = "no_tables",
    /// Frame too large to be rewritten within the buffer.
    TooBig = "too_big",
    /// Engine: a received frame longer than `engine.mtu` allows (the MTU
    /// plus an Ethernet header and one 802.1Q tag), or one the PMD chained
    /// over several mbufs where a port cannot send chains; dropped before
    /// the pipeline. Stages: a chained frame on a path that reads or moves
    /// more than its headers (fragments, ICMP, NAT64, the SYN proxy's
    /// handshake, the management thread's frames).
    Oversize = "oversize",
    /// NAT64: a fragment the translator does not take: of ICMP (or another
    /// protocol than TCP and UDP), or quoted inside an ICMP error.
    XlatFragment = "xlat_fragment",
    /// NAT64 (GW): an IPv4 fragment whose IPv6 translation (28 bytes
    /// longer: the IPv6 header and a Fragment header) would exceed
    /// `nat64.mtu6`; fragments are not cut again.
    XlatFragTooBig = "xlat_frag_too_big",
    /// NAT64: no counterpart in the other protocol (an ICMP type or code
    /// RFC 7915 says to drop silently, an unexpired IPv4 source route, an
    /// IPv6 Routing header with segments left).
    XlatUntranslatable = "xlat_untranslatable",
    /// GW (NAT44, NAT64): an ICMP error whose quoted packet cannot be
    /// translated (too short, malformed, a fragment, extension headers, an
    /// ICMP error in an ICMP error).
    XlatIcmpInner = "xlat_icmp_inner",
}

/// Plain per-worker counters, owned and written only by that worker.
/// The engine copies them to shared atomics on its drain timer.
#[derive(Clone, Debug)]
pub struct WorkerCounters {
    pub drops: [u64; DropReason::COUNT],
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            drops: [0; DropReason::COUNT],
        }
    }
}

impl WorkerCounters {
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn drop_names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
