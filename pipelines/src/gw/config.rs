//! Static GW configuration (from the profile).
//!
//! `GwConfig` is built once at start, validated, and shared read-only by
//! every worker (each `GwWorker` keeps its own copy). Nothing in it changes
//! while the engine runs; what changes (groups, sessions, neighbours) lives in
//! [`GwTables`](super::tables::GwTables). The key space it implies is
//! [`KeySpace`](super::keys::KeySpace).

use crate::verdict::PortIdx;
use crate::xlat::{Prefix, XlatConfig};

/// Per-state idle timeouts, in milliseconds of the caller's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GwTimeouts {
    /// TCP: SYN sent up, no answer from the server yet.
    pub syn_ms: u64,
    /// TCP: established (handshake seen).
    pub established_ms: u64,
    /// TCP: one FIN seen (half closed).
    pub closing_ms: u64,
    /// UDP flows.
    pub udp_ms: u64,
    /// ICMP echo flows.
    pub icmp_ms: u64,
    /// After a connection that reached Established closes (FIN, or idle
    /// expiry), its binding rests this long before its (key, server) tuple
    /// can be given to another connection: it covers the server's TIME_WAIT
    /// (60 s on Linux), so the server never sees the tuple reused by a
    /// different subscriber connection (RFC 7857 §2). The same subscriber
    /// 4-tuple may revive the binding during the hold (same key, same
    /// server). Late packets of a connection closed by FIN/RST are still
    /// translated during the hold.
    pub close_hold_ms: u64,
    /// The hold of a connection the server cannot remember: closed by a
    /// RST, never established, UDP and ICMP. Long enough for late packets.
    pub short_hold_ms: u64,
}

impl Default for GwTimeouts {
    fn default() -> Self {
        GwTimeouts {
            syn_ms: 20_000,
            established_ms: 7_200_000,
            closing_ms: 60_000,
            udp_ms: 60_000,
            icmp_ms: 30_000,
            close_hold_ms: 60_000,
            short_hold_ms: 2_000,
        }
    }
}

/// Static configuration of the GW stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GwConfig {
    /// Port facing the LBs / subscribers (up packets arrive here).
    pub access_port: PortIdx,
    /// Port facing the servers (down packets arrive here). May equal
    /// `access_port` (one-arm): then a packet whose destination is a pool
    /// address is a down packet, anything else an up packet.
    pub server_port: PortIdx,
    /// Our MAC on `access_port`.
    pub access_mac: [u8; 6],
    /// Our MAC on `server_port`.
    pub server_mac: [u8; 6],
    /// SNAT pool: the GW addresses used as source toward the servers.
    /// At most [`GwConfig::MAX_POOL`] addresses, no duplicates.
    pub pool: Vec<[u8; 4]>,
    /// First port of the key range (inclusive).
    pub key_port_first: u16,
    /// Last port of the key range (inclusive).
    pub key_port_last: u16,
    /// Ports reserved for the management thread's health probes (inclusive
    /// range, clipped to the key range); down packets to them are `Control`.
    pub reserved_ports: Option<(u16, u16)>,
    /// Number of workers (each owns a slice of the key space).
    pub workers: u16,
    pub timeouts: GwTimeouts,
    /// Connections a worker holds at once, open or on hold: its entries
    /// (64 + 32 bytes each, plus about 18 bytes of up table) are
    /// preallocated for this many.
    pub max_flows_per_worker: u32,
    /// Keep the subscriber's source port as the key port when this worker
    /// owns it and the destination does not hold it (as nf_nat does).
    pub preserve_port: bool,
    /// Host/SNI attributes held at once (51 bytes each; a connection whose
    /// attribute finds the pool full is accounted without it, counted as
    /// `gw_attr_full`). 0: an eighth of `max_flows_per_worker`.
    pub attr_slots: u32,
    /// Distinct server addresses a worker tracks connection counts for
    /// (least connections), `1..=16384`; the table has `next_pow2(2 x)`
    /// slots of 8 bytes.
    pub max_servers: u32,
    /// A new connection needs an active session for its source address
    /// (IPv4), or for a prefix holding it (IPv6 subscribers, NAT64: see
    /// [`Sessions::get6`](super::tables::Sessions::get6)).
    pub require_session: bool,
    /// Router toward the servers, used when a server (or a plain, non-VIP
    /// destination) has no neighbour entry.
    pub server_next_hop_mac: Option<[u8; 6]>,
    /// Seed of the flow hash (pick it at random at start).
    pub hash_seed: u64,
    /// TCP MSS clamp on SYNs going up (to the servers): an MSS option larger
    /// than this is lowered to it. `None`: off.
    pub mss_clamp_up: Option<u16>,
    /// TCP MSS clamp on SYN-ACKs going down (to the subscribers, the
    /// wireless side). `None`: off.
    pub mss_clamp_down: Option<u16>,
    /// Cap of the TCP window field in segments going down, applied only to
    /// connections that did not negotiate window scaling (see the GW module
    /// docs). `None`: off.
    pub window_cap_down: Option<u16>,
    /// RSS-steered key choice (see [`RssSteer`]). `None`: off, keys are
    /// taken strictly in FIFO order.
    pub rss: Option<RssSteer>,
    /// NAT64 of IPv6 subscribers (see the GW module docs). `None`: off,
    /// IPv6 frames are dropped as `unsupported_ethertype`.
    pub nat64: Option<Nat64Cfg>,
    /// NAT66 source addresses, paired one to one with `pool`: a NAT66
    /// connection on key (`pool[i]`, port) leaves from (`pool6[i]`, port),
    /// so NAT66 and IPv4 connections share the keys. Empty: no NAT66.
    pub pool6: Vec<[u8; 16]>,
    /// ICMP (ICMPv6) echo requests from the access side to a representative
    /// address (any port of it, IPv4 or IPv6) are answered by the gateway
    /// itself (`vip_echo_replies`). Off: they are balanced to a member of
    /// the VIP's group like any connection (an any-port VIP), or go nowhere.
    pub answer_ping: bool,
    /// What a subscriber's TCP SYN refused for exhaustion (no key left for
    /// its destination, `nat_pool_exhausted`; no table entry left,
    /// `flow_table_full`) gets: dropped and counted under that reason, or a
    /// TCP RST built in place (`rst_exhausted`), so the client fails at once
    /// instead of retransmitting into the full gateway. Other protocols are
    /// always dropped.
    pub exhaustion_reply: ExhaustionReply,
    /// Open connections of one subscriber (an IPv4 address, an IPv6 /64)
    /// at once; 0: no limit. Each worker enforces its share,
    /// `ceil(max / workers)` (see [`super::limit`]). A connection start over
    /// it is refused as `subscriber_conn_limit`, with `exhaustion_reply`.
    pub max_conns_per_subscriber: u32,
    /// New connections of one subscriber per second (a token bucket, burst
    /// = the rate); 0: no limit. Each worker enforces `rate / workers`
    /// (at least one connection of burst). A start over it is refused as
    /// `subscriber_rate_limit`, with `exhaustion_reply`.
    pub new_conns_per_subscriber_per_s: u32,
    /// The SYN proxy of connections to representative addresses (see
    /// [`super::synproxy`]).
    pub syn_proxy: SynProxy,
    /// MSS the SYN proxy advertises to subscribers in its SYN-ACK.
    pub syn_proxy_mss: u16,
    /// Window Scale the SYN proxy advertises to subscribers that sent one;
    /// the servers' own scale is converted to it.
    pub syn_proxy_wscale: u8,
    /// IP fragments of NAT44, NAT66 and NAT64 connections ([`super::frag`]):
    /// reassembly contexts per worker (0: fragments are dropped as
    /// `fragment`).
    pub frag_contexts: u32,
    /// Fragments per worker held while their datagram's first fragment
    /// has not come (1536-byte slots).
    pub frag_hold_slots: u32,
    /// Fragments of one datagram held at most.
    pub frag_max_held: u8,
    /// Life of a reassembly context from its first fragment (any).
    pub frag_timeout_ms: u32,
    /// Key of the SYN cookies' hash (draw it at random at start; every
    /// worker shares it).
    pub cookie_secret: [u64; 2],
}

/// [`GwConfig::syn_proxy`]: when the GW answers a subscriber's SYN to a
/// representative address itself, with a SYN cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynProxy {
    /// Never: every SYN opens a connection toward a server.
    #[default]
    Off,
    /// Always.
    On,
    /// For a VIP address, while the worker's half-open connections to it
    /// (a SYN seen, no ACK from the subscriber yet, whether or not the
    /// server answered) are at least its share (`ceil(half_open /
    /// workers)`) of this number.
    Auto { half_open: u32 },
}

/// [`GwConfig::exhaustion_reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExhaustionReply {
    /// Drop the SYN (counted as `nat_pool_exhausted` / `flow_table_full`).
    #[default]
    Drop,
    /// Answer it with a RST (counted as `rst_exhausted`).
    Rst,
}

/// How the NIC on `server_port` spreads down packets over RX queues, so a
/// worker can pick keys whose down packets land on its own queue (worker
/// `w` polls queue `w`).
///
/// The engine fills it from the port after configuring RSS: `key` from
/// `rte_eth_dev_rss_hash_conf_get` (or the key it set itself), `reta` from
/// `rte_eth_dev_rss_reta_query` over `dev_info.reta_size` entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssSteer {
    /// The Toeplitz key, as the NIC holds it (40 bytes on most NICs, 52 on
    /// i40e/ice). Only the first 16 bytes matter for an IPv4 4-tuple.
    pub key: Vec<u8>,
    /// The redirection table: the RX queue of each entry. The NIC takes
    /// entry `hash & (reta.len() - 1)`: the length is a power of two.
    pub reta: Vec<u16>,
    /// Free keys looked at per connection start (`1..=256`).
    pub probe: u16,
    /// The NIC hashes TCP on the 4-tuple (ports included); `false`: on the
    /// addresses only (RSS type IPv4 without NONFRAG_IPV4_TCP).
    pub ports_tcp: bool,
    /// The same for UDP.
    pub ports_udp: bool,
}

impl RssSteer {
    /// Default probe depth: with 2 queues a key is steered with
    /// probability 1 - 2^-8; with 4, 1 - 0.75^8 = 0.90.
    pub const PROBE: u16 = 8;

    /// `key` and `reta` with the defaults: probe [`Self::PROBE`] keys, TCP
    /// and UDP hashed on the 4-tuple (ICMP always on the addresses).
    pub fn new(key: Vec<u8>, reta: Vec<u16>) -> RssSteer {
        RssSteer {
            key,
            reta,
            probe: Self::PROBE,
            ports_tcp: true,
            ports_udp: true,
        }
    }
}

/// NAT64 settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nat64Cfg {
    /// IPv6 destinations under this prefix are NAT64'd to the embedded IPv4
    /// address (RFC 6052); the reply's IPv6 source is the embedding of the
    /// original IPv4 destination (the VIP).
    pub prefix: Prefix,
    /// Link MTUs for the translator; `mtu6` also bounds the IPv6 packets
    /// sent to subscribers (larger ones are dropped as `too_big`).
    pub xlat: XlatConfig,
}

impl Default for Nat64Cfg {
    fn default() -> Self {
        Nat64Cfg {
            prefix: Prefix::WELL_KNOWN,
            xlat: XlatConfig::default(),
        }
    }
}

impl Default for GwConfig {
    fn default() -> Self {
        GwConfig {
            access_port: 0,
            server_port: 1,
            access_mac: [0x02, 0, 0, 0, 0, 0x01],
            server_mac: [0x02, 0, 0, 0, 0, 0x02],
            pool: Vec::new(),
            key_port_first: 1024,
            key_port_last: 65535,
            reserved_ports: None,
            workers: 1,
            timeouts: GwTimeouts::default(),
            max_flows_per_worker: 65_536,
            preserve_port: true,
            attr_slots: 0,
            max_servers: 1024,
            require_session: true,
            server_next_hop_mac: None,
            hash_seed: 0x9e37_79b9_7f4a_7c15,
            mss_clamp_up: None,
            mss_clamp_down: None,
            window_cap_down: None,
            rss: None,
            nat64: None,
            pool6: Vec::new(),
            answer_ping: true,
            exhaustion_reply: ExhaustionReply::Drop,
            max_conns_per_subscriber: 0,
            new_conns_per_subscriber_per_s: 0,
            syn_proxy: SynProxy::Off,
            syn_proxy_mss: 1460,
            syn_proxy_wscale: 7,
            cookie_secret: [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344],
            frag_contexts: 1024,
            frag_hold_slots: 256,
            frag_max_held: 3,
            frag_timeout_ms: 100,
        }
    }
}

impl GwConfig {
    /// Most pool addresses a config may have (the down path scans the pool).
    pub const MAX_POOL: usize = 256;
    /// Smallest MSS clamp accepted (the IPv4 minimum MTU, 68, minus 40
    /// bytes of headers is 28; anything this small is a typo).
    pub const MIN_MSS_CLAMP: u16 = 88;
    /// Largest `new_conns_per_subscriber_per_s` accepted.
    pub const MAX_SUB_RATE: u32 = 1_000_000;

    /// Check the config; the error names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.pool.is_empty() {
            return Err("gw.pool: empty; list at least one SNAT address".into());
        }
        if self.pool.len() > Self::MAX_POOL {
            return Err(format!(
                "gw.pool: {} addresses, at most {} are supported; use fewer",
                self.pool.len(),
                Self::MAX_POOL
            ));
        }
        for (i, a) in self.pool.iter().enumerate() {
            if self.pool[..i].contains(a) {
                return Err(format!(
                    "gw.pool: address {a:?} listed twice; remove the duplicate"
                ));
            }
        }
        if self.key_port_first == 0 || self.key_port_first > self.key_port_last {
            return Err(format!(
                "gw.key_ports: {}..={} is empty or starts at 0; use e.g. 1024..=65535",
                self.key_port_first, self.key_port_last
            ));
        }
        if let Some((lo, hi)) = self.reserved_ports {
            if lo > hi {
                return Err(format!(
                    "gw.reserved_ports: {lo}..={hi} is reversed; write low..=high"
                ));
            }
        }
        if self.workers == 0 {
            return Err("gw.workers: 0; need at least one worker".into());
        }
        let ks = super::keys::KeySpace::new(self);
        if ks.per_worker == 0 {
            return Err(format!(
                "gw.key_ports: {} usable ports for {} workers, less than one each; widen the range or shrink gw.reserved_ports",
                ks.usable, self.workers
            ));
        }
        if (ks.per_worker as u64) * (self.pool.len() as u64) >= u32::MAX as u64 / 2 {
            return Err("gw.pool: too many keys per worker".into());
        }
        if self.max_flows_per_worker == 0 || self.max_flows_per_worker > (1 << 30) {
            return Err("gw.max_flows_per_worker: must be in 1..=2^30".into());
        }
        if self.max_servers == 0 || self.max_servers > 1 << 14 {
            return Err("gw.max_servers: must be in 1..=16384".into());
        }
        if self.new_conns_per_subscriber_per_s > Self::MAX_SUB_RATE {
            return Err(format!(
                "gw.new_conns_per_subscriber_per_s: {} is above {}; lower it, or leave it out for no limit",
                self.new_conns_per_subscriber_per_s,
                Self::MAX_SUB_RATE
            ));
        }
        for (key, v) in [
            ("gw.mss_clamp_up", self.mss_clamp_up),
            ("gw.mss_clamp_down", self.mss_clamp_down),
        ] {
            if matches!(v, Some(m) if m < Self::MIN_MSS_CLAMP) {
                return Err(format!(
                    "{key}: {} is below {}; use the link MTU minus 40 (IPv4) or 60 (IPv6), e.g. 1360, or leave it out",
                    v.unwrap_or(0),
                    Self::MIN_MSS_CLAMP
                ));
            }
        }
        if self.syn_proxy_mss < Self::MIN_MSS_CLAMP {
            return Err(format!(
                "gw.syn_proxy_mss: {} is below {}; use the access link's MTU minus 40, e.g. 1460",
                self.syn_proxy_mss,
                Self::MIN_MSS_CLAMP
            ));
        }
        if self.syn_proxy_wscale > 14 {
            return Err(format!(
                "gw.syn_proxy_wscale: {} is above 14 (RFC 7323 §2.3); use the servers' own, e.g. 7",
                self.syn_proxy_wscale
            ));
        }
        if self.syn_proxy == (SynProxy::Auto { half_open: 0 }) {
            return Err(
                "gw.syn_proxy_half_open: 0; use \"on\" to proxy every SYN, or a threshold such as 1000"
                    .into(),
            );
        }
        if self.frag_contexts > 1 << 20 {
            return Err(format!(
                "gw.frag_contexts: {} is above 2^20; a few thousand per worker is plenty, e.g. 1024",
                self.frag_contexts
            ));
        }
        if self.frag_hold_slots > 1 << 16 {
            return Err(format!(
                "gw.frag_hold_slots: {} is above 65536 (1536 bytes each); use e.g. 256",
                self.frag_hold_slots
            ));
        }
        if self.frag_timeout_ms == 0 || self.frag_timeout_ms > 60_000 {
            return Err(format!(
                "gw.frag_timeout_ms: {} is not in 1..=60000; use e.g. 100 (VPP's default)",
                self.frag_timeout_ms
            ));
        }
        if self.window_cap_down == Some(0) {
            return Err(
                "gw.window_cap_down: 0 would stall every connection; use e.g. 65535 or leave it out"
                    .into(),
            );
        }
        if let Some(r) = &self.rss {
            if r.key.len() < 16 {
                return Err(format!(
                    "gw.rss.key: {} bytes; the Toeplitz hash of an IPv4 4-tuple needs at least 16 (pass the NIC's whole key)",
                    r.key.len()
                ));
            }
            if r.reta.is_empty() || !r.reta.len().is_power_of_two() || r.reta.len() > 1 << 16 {
                return Err(format!(
                    "gw.rss.reta: {} entries; the NIC's redirection table has a power of two (e.g. 128 or 512)",
                    r.reta.len()
                ));
            }
            if let Some((i, q)) = r.reta.iter().enumerate().find(|(_, &q)| q >= self.workers) {
                return Err(format!(
                    "gw.rss.reta[{i}]: queue {q}, but only {} workers poll queues 0..{}; configure the RETA over the workers' queues",
                    self.workers, self.workers
                ));
            }
            if r.probe == 0 || r.probe > 256 {
                return Err(format!("gw.rss.probe: {}; use 1..=256, e.g. 8", r.probe));
            }
        }
        if let Some(n) = &self.nat64 {
            if n.xlat.mtu6 < 1280 {
                return Err(format!(
                    "gw.nat64.mtu6: {} is below the IPv6 minimum 1280; use the access link's MTU",
                    n.xlat.mtu6
                ));
            }
            if n.xlat.mtu4 < 68 {
                return Err(format!(
                    "gw.nat64.mtu4: {} is below the IPv4 minimum 68; use the server link's MTU",
                    n.xlat.mtu4
                ));
            }
        }
        if !self.pool6.is_empty() && self.pool6.len() != self.pool.len() {
            return Err(format!(
                "gw.pool6: {} addresses for {} in gw.pool; NAT66 pairs them one to one, list as many",
                self.pool6.len(),
                self.pool.len()
            ));
        }
        for (i, a) in self.pool6.iter().enumerate() {
            if self.pool6[..i].contains(a) || *a == [0; 16] {
                return Err(format!(
                    "gw.pool6: address {} is :: or listed twice; fix or remove it",
                    std::net::Ipv6Addr::from(*a)
                ));
            }
        }
        if self.timeouts.close_hold_ms == 0 || self.timeouts.short_hold_ms == 0 {
            return Err(
                "gw.timeouts.close_hold_s / short_hold_s: 0 would reuse a key at once; use e.g. 60 and 2".into(),
            );
        }
        if self.timeouts.short_hold_ms > self.timeouts.close_hold_ms {
            return Err(format!(
                "gw.timeouts.short_hold_s: {} s is longer than close_hold_s ({} s); the short hold is for connections the server forgot: make it shorter",
                self.timeouts.short_hold_ms as f64 / 1000.0,
                self.timeouts.close_hold_ms as f64 / 1000.0
            ));
        }
        let longest = [
            self.timeouts.syn_ms,
            self.timeouts.established_ms,
            self.timeouts.closing_ms,
            self.timeouts.udp_ms,
            self.timeouts.icmp_ms,
            self.timeouts.close_hold_ms,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        if longest >= 1 << 31 {
            return Err(format!(
                "gw.timeouts: {longest} ms is too long (connection times are kept mod 2^32 ms); use at most 24 days"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two pool addresses, key ports 1000..=1099, `workers` workers and the
    /// reserved port range `rsv` (the key space tests use it too).
    pub(crate) fn cfg(workers: u16, rsv: Option<(u16, u16)>) -> GwConfig {
        GwConfig {
            pool: vec![[192, 0, 2, 1], [192, 0, 2, 2]],
            key_port_first: 1000,
            key_port_last: 1099,
            reserved_ports: rsv,
            workers,
            ..GwConfig::default()
        }
    }

    #[test]
    fn validate_names_the_key() {
        let mut c = cfg(1, None);
        c.pool.clear();
        assert!(c.validate().unwrap_err().contains("gw.pool"));
        let mut c = cfg(200, None);
        c.key_port_last = 1050;
        assert!(c.validate().unwrap_err().contains("gw.key_ports"));
        let mut c = cfg(1, None);
        c.pool.push([192, 0, 2, 1]);
        assert!(c.validate().unwrap_err().contains("twice"));
        let mut c = cfg(1, None);
        c.mss_clamp_down = Some(40);
        assert!(c.validate().unwrap_err().contains("gw.mss_clamp_down"));
        c.mss_clamp_down = Some(1360);
        c.mss_clamp_up = Some(1360);
        c.window_cap_down = Some(0);
        assert!(c.validate().unwrap_err().contains("gw.window_cap_down"));
        c.window_cap_down = Some(16384);
        c.validate().unwrap();
    }

    #[test]
    fn validate_rss_and_nat64() {
        let ok = RssSteer::new(vec![0x6d; 40], vec![0, 1, 0, 1]);
        let with = |r: RssSteer| GwConfig {
            rss: Some(r),
            ..cfg(2, None)
        };
        with(ok.clone()).validate().unwrap();
        let e = with(RssSteer::new(vec![1; 12], vec![0, 1]))
            .validate()
            .unwrap_err();
        assert!(e.contains("gw.rss.key"), "{e}");
        let e = with(RssSteer::new(vec![1; 40], vec![0, 1, 0]))
            .validate()
            .unwrap_err();
        assert!(e.contains("gw.rss.reta:"), "{e}");
        let e = with(RssSteer::new(vec![1; 40], vec![0, 2]))
            .validate()
            .unwrap_err();
        assert!(e.contains("gw.rss.reta[1]"), "{e}");
        let e = with(RssSteer { probe: 0, ..ok }).validate().unwrap_err();
        assert!(e.contains("gw.rss.probe"), "{e}");
        let mut n = Nat64Cfg::default();
        let c = GwConfig {
            nat64: Some(n),
            ..cfg(1, None)
        };
        c.validate().unwrap();
        n.xlat.mtu6 = 1200;
        let e = GwConfig {
            nat64: Some(n),
            ..cfg(1, None)
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("gw.nat64.mtu6"), "{e}");
        // new fields default to off
        assert_eq!(
            (GwConfig::default().rss, GwConfig::default().nat64),
            (None, None)
        );
    }
}
