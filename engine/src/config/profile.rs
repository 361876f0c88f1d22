//! The profile file's schema: every section and key of a `configs/*.toml`
//! profile as the types serde reads it into, with their defaults, and the
//! facts derived from a profile alone (EAL arguments, DPDK port names, the
//! control socket). Validation and the tables built from a profile are in
//! the sibling modules.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::Deserialize;

/// A configuration error: `file: key: message`.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.msg)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.msg)
        }
    }
}
impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Plain forwarding between port pairs (l2fwd); no gateway logic.
    Wire,
    /// The first distribution stage only.
    Lb,
    /// The packet gateway only.
    Gw,
    /// LB and GW chained in one box (the single-box default).
    #[serde(rename = "lb+gw")]
    LbGw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HugepageMode {
    /// Hugepages when enough are free, else `--no-huge` (said plainly at start).
    #[default]
    Auto,
    /// Hugepages or fail with instructions.
    Required,
    /// Always `--no-huge` (about 30 % slower; fine for tests).
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub name: String,
    pub role: Role,
    /// Unix socket that `pgw stats` and the other operator commands read.
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eal {
    #[serde(default)]
    pub hugepages: HugepageMode,
    /// Memory for DPDK in MiB (with `--no-huge` it is reserved up front).
    #[serde(default = "d_memory_mb")]
    pub memory_mb: u32,
    /// Further EAL options (log levels, ...). Device, core and memory-mode
    /// options are refused here: they come from the rest of the profile.
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// Live capture with `dpdk-dumpcap --file-prefix=pgw-NAME`: a shared
    /// configuration (hugepage files under the prefix, not `--in-memory`)
    /// and `rte_pdump_init`. Needs hugepages: a secondary process cannot
    /// attach to `--no-huge` memory.
    #[serde(default)]
    pub capture: bool,
}

impl Default for Eal {
    fn default() -> Self {
        Eal {
            hugepages: HugepageMode::Auto,
            memory_mb: d_memory_mb(),
            extra_args: vec![],
            capture: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cores {
    /// CPUs of the worker lcores (the first is EAL's main lcore, which runs
    /// worker 0 itself, as l3fwd does).
    pub workers: Vec<u32>,
    /// CPU the management thread is pinned to.
    #[serde(default)]
    pub management: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineCfg {
    #[serde(default = "d_burst")]
    pub burst: u16,
    /// RX / TX descriptors per queue. Unset: the device's default (see
    /// [`PortCfg::default_desc`]: 2048 for net_af_xdp, whose socket rings
    /// dropped 3.9 % of small frames at 1024 under `iperf3 -M 536` and
    /// 0.3 % at 2048; 1024 otherwise).
    #[serde(default)]
    pub rx_desc: Option<u16>,
    #[serde(default)]
    pub tx_desc: Option<u16>,
    /// Mbufs in the pool (2^n - 1 is best).
    #[serde(default = "d_mbufs")]
    pub mbufs: u32,
    #[serde(default = "d_mbuf_cache")]
    pub mbuf_cache: u32,
    /// IP MTU of every port, 68..=9000 (default 1500). Each port's MTU is
    /// set to it, and every mbuf's data room is sized for its longest frame
    /// ([`EngineCfg::mbuf_data_room`]) so that a frame up to the MTU lands
    /// in one mbuf (unless `mbuf_size` says less); a longer frame is
    /// dropped before the pipeline and counted `oversize`.
    #[serde(default = "d_mtu")]
    pub mtu: u16,
    /// Bytes of frame each mbuf holds (its data room without the
    /// headroom), 1024..=[`EngineCfg::frame_room`]. Unset: the longest
    /// frame, one mbuf per frame. Less (2048, as VPP's and DPDK's default
    /// buffers, with `mtu = 9000`: a quarter of the pool's memory) chains a
    /// longer frame over several mbufs: the ports must receive (RX scatter)
    /// and send (TX multi-segment) chains, checked at start. The stages
    /// rewrite a chain's headers in its first mbuf (NAT44, NAT66, the LB);
    /// fragments, ICMP, NAT64 and the SYN proxy's handshake refuse chains
    /// as `oversize`.
    #[serde(default)]
    pub mbuf_size: Option<u16>,
    /// Flush partially filled TX bursts after this long.
    #[serde(default = "d_drain")]
    pub tx_drain_us: u32,
    /// Idle back-off: after `idle_polls` empty polls in a row, sleep this
    /// long between polls. 0 = busy-poll (benchmarks, production).
    #[serde(default)]
    pub idle_sleep_us: u32,
    #[serde(default = "d_idle_polls")]
    pub idle_polls: u32,
    /// Slots in each worker's handoff ring (power of two).
    #[serde(default = "d_ring")]
    pub handoff_ring: u32,
    /// Time every stage of the worker loop (`pgw stats --runtime`): one TSC
    /// read per stage per burst. `false`: calls, packets and busy/idle
    /// cycles are still counted, the per-stage cycles are not.
    #[serde(default = "d_true")]
    pub runtime_stages: bool,
    /// How long the management thread sleeps when it found nothing to do
    /// (control socket, control ring, RADIUS, accounting queues). Longer
    /// keeps its CPU quieter (benchmarks); it bounds how late an ARP reply
    /// or a control request is seen. 1..=1000.
    #[serde(default = "d_mgmt_poll_ms")]
    pub mgmt_poll_ms: u32,
    /// SIGTERM drains: new connections are refused (`draining` drops),
    /// established ones are served until none is left or this many seconds
    /// have passed; then every open connection's record is closed and the
    /// instance exits 0. 0..=3600; 0 stops at once (records still closed).
    #[serde(default = "d_drain_timeout_s")]
    pub drain_timeout_s: f64,
}

/// Bytes DPDK keeps before each frame (`RTE_PKTMBUF_HEADROOM`); NAT64
/// grows a frame into it.
pub const MBUF_HEADROOM: u16 = 128;
/// The longest frame is the MTU plus an Ethernet header and one 802.1Q tag.
pub const L2_OVERHEAD: u16 = 14 + 4;
/// The MTU range `engine.mtu` accepts (IPv4's minimum, a 9000-byte jumbo).
pub const MTU_RANGE: std::ops::RangeInclusive<u16> = 68..=9000;

impl EngineCfg {
    /// The longest frame the workers accept (Ethernet header, one 802.1Q
    /// tag, an IP packet of `mtu` bytes; no CRC: the PMDs strip it).
    pub fn max_frame(&self) -> usize {
        (self.mtu + L2_OVERHEAD) as usize
    }
    /// Room for the longest frame and a CRC (some PMDs write it before
    /// stripping), never below DPDK's default 2048 bytes
    /// (`RTE_MBUF_DEFAULT_BUF_SIZE` less its headroom): what one mbuf
    /// holds unless `mbuf_size` says less.
    pub fn frame_room(&self) -> u16 {
        (self.mtu + L2_OVERHEAD + 4).max(2048)
    }
    /// Data room of each mbuf, headroom included: `mbuf_size`, or
    /// [`EngineCfg::frame_room`].
    pub fn mbuf_data_room(&self) -> u16 {
        MBUF_HEADROOM + self.mbuf_size.unwrap_or(self.frame_room())
    }
    /// Whether a frame may take several mbufs (`mbuf_size` below the
    /// room of the longest frame).
    pub fn chains(&self) -> bool {
        self.mbuf_size.is_some_and(|s| s < self.frame_room())
    }
}

impl Default for EngineCfg {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCfg {
    /// Name used everywhere else in the profile and in stats.
    pub name: String,
    /// A DPDK virtual device (`net_tap0,iface=pgw0`, `net_ring0`,
    /// `net_null0`, `net_af_xdp0,iface=veth0`, ...) or a PCI address
    /// (`0000:03:00.0`), which then goes on EAL's allow-list.
    pub device: String,
    /// Set this MAC on the port (otherwise the device's own).
    #[serde(default)]
    pub mac: Option<String>,
    /// The gateway's own IPv4 addresses on this port (ARP is answered for them).
    #[serde(default)]
    pub ipv4: Vec<String>,
    /// The gateway's own IPv6 addresses on this port ("2001:db8::1/64";
    /// neighbour solicitations are answered for them).
    #[serde(default)]
    pub ipv6: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wire {
    /// Pairs of port names; frames arriving on one leave on the other.
    pub pairs: Vec<[String; 2]>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborCfg {
    pub ip: String,
    pub mac: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlCfg {
    /// "address:port" where the management instance sends this gateway's sessions.
    pub listen: String,
    /// Shared secret (HMAC-SHA256).
    pub secret: String,
    /// This gateway's name in the management instance's `[[radius.gateway]]`.
    pub gateway: String,
}

/// The Prometheus endpoint (`GET /metrics`), served by the management
/// thread; absent: no listener.
/// `[log]`: what `pgw run` logs (to stderr: journald under systemd).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogCfg {
    /// A level (`error`, `warn`, `info`, `debug`, `trace`) or a filter in
    /// `RUST_LOG` syntax (`info,pgw_engine::mgmt=debug`); `RUST_LOG`, when
    /// set, wins.
    #[serde(default = "d_log_level")]
    pub level: String,
    /// `text` (one line an event, `key=value` fields) or `json` (one
    /// object a line).
    #[serde(default = "d_log_format")]
    pub format: String,
    /// Repeated events (exhaustion drops, full queues, refused RADIUS
    /// clients) are logged at most once per this many seconds each, with
    /// how many there were. 1..=3600.
    #[serde(default = "d_repeat_every_s")]
    pub repeat_every_s: u32,
}

impl Default for LogCfg {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn d_log_level() -> String {
    "info".into()
}
fn d_neighbour_refresh_s() -> f64 {
    30.0
}
fn d_repeat_every_s() -> u32 {
    10
}
fn d_log_format() -> String {
    "text".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCfg {
    /// "address:port" of the HTTP listener ("127.0.0.1:9464"; the port
    /// Prometheus' exporter list gives pgw's kind of exporter).
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingCfg {
    /// SQLite database (WAL, batched transactions; created if missing).
    #[serde(default)]
    pub sqlite: Option<PathBuf>,
    /// IPFIX (RFC 7011) collector, "address:port" (UDP).
    #[serde(default)]
    pub ipfix_collector: Option<String>,
    /// Resend the IPFIX templates every this many seconds (RFC 7011 §8.4;
    /// with records flowing they also go out every 100 messages), 1..=3600.
    #[serde(default = "d_ipfix_template_s")]
    pub ipfix_template_s: u64,
    /// Commit after this many rows ...
    #[serde(default = "d_batch_rows")]
    pub batch_rows: usize,
    /// ... or when the oldest pending row is this old.
    #[serde(default = "d_batch_ms")]
    pub batch_ms: u64,
    /// The records are proxy accounting (the gateway counts for the subscriber).
    #[serde(default = "d_true")]
    pub proxy_accounting: bool,
}

fn d_ipfix_template_s() -> u64 {
    30
}
fn d_batch_rows() -> usize {
    512
}
fn d_batch_ms() -> u64 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbCfg {
    /// Port toward the access network (subscribers).
    pub access_port: String,
    /// Port toward the gateways' LAN (with `lb+gw`, may be the GW's server port).
    pub lan_port: String,
    /// MAC of the access-side router, for down packets to subscribers
    /// without a neighbour entry.
    #[serde(default)]
    pub access_next_hop_mac: Option<String>,
    #[serde(rename = "gateway", default)]
    pub gateways: Vec<LbGatewayCfg>,
    #[serde(rename = "range", default)]
    pub ranges: Vec<LbRangeCfg>,
    /// IPv6 subscriber ranges (first/last IPv6 addresses).
    #[serde(rename = "range6", default)]
    pub ranges6: Vec<LbRangeCfg>,
    /// ARP health checks of the gateways that have an `ip` (from the LAN
    /// port's first address).
    #[serde(default)]
    pub health: Option<HealthCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbGatewayCfg {
    pub name: String,
    /// The gateway's LAN MAC, or "local" for the GW stage of this box (`lb+gw`).
    pub mac: String,
    #[serde(default = "d_true")]
    pub up: bool,
    /// The gateway's LAN address (for ARP health checks).
    #[serde(default)]
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbRangeCfg {
    /// First and last subscriber address of the range (inclusive).
    pub first: String,
    pub last: String,
    /// Gateway names: the primary, then substitutes in order.
    pub gateways: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GwCfg {
    /// Port toward the subscribers (the LBs).
    pub access_port: String,
    /// Port toward the servers.
    pub server_port: String,
    /// SNAT pool: source addresses of translated connections (answered by ARP on the server port).
    pub pool: Vec<String>,
    /// IPv6 source addresses for NAT66, one per `pool` address (paired:
    /// the same keys).
    #[serde(default)]
    pub pool6: Vec<String>,
    /// Key port range `[first, last]` on every pool address.
    #[serde(default = "d_key_ports")]
    pub key_ports: [u16; 2],
    /// Ports kept out of the key range for health probes.
    #[serde(default)]
    pub probe_ports: Option<[u16; 2]>,
    /// Every this many seconds the GW asks again (ARP request, Neighbor
    /// Solicitation) for every member it has learnt, so that a member whose
    /// MAC changed without announcing it is found again (default 30).
    #[serde(default = "d_neighbour_refresh_s")]
    pub neighbour_refresh_s: f64,
    /// Drop traffic from addresses with no active session.
    #[serde(default = "d_true")]
    pub require_session: bool,
    /// Preallocated connections per worker, open or on hold (a closed
    /// connection keeps its entry for the hold): size it for the peak open
    /// connections plus new connections/s × `close_hold_s`.
    #[serde(default = "d_flows")]
    pub max_flows_per_worker: u32,
    /// Keep the subscriber's source port as the NAT key port when the
    /// worker owns it and the destination does not hold it (as nf_nat).
    #[serde(default = "d_true")]
    pub preserve_port: bool,
    /// Host/SNI attributes held at once per worker (0: an eighth of
    /// `max_flows_per_worker`).
    #[serde(default)]
    pub attr_slots: u32,
    /// Service of connections to destinations that are not representative addresses.
    #[serde(default)]
    pub external_service: Option<String>,
    /// Idle timeouts and the close hold, in seconds.
    #[serde(default)]
    pub timeouts: Option<TimeoutsCfg>,
    #[serde(rename = "service", default)]
    pub services: Vec<ServiceCfg>,
    #[serde(rename = "group", default)]
    pub groups: Vec<GroupCfg>,
    #[serde(rename = "vip", default)]
    pub vips: Vec<VipCfg>,
    /// Static sessions (the RADIUS-driven session manager adds its own).
    #[serde(rename = "session", default)]
    pub sessions: Vec<SessionCfg>,
    /// MAC of the router toward destinations that are not group members
    /// (the "external" service: non-VIP destinations) and have no neighbour
    /// entry.
    #[serde(default)]
    pub server_next_hop_mac: Option<String>,
    /// NAT64 for IPv6 subscribers (RFC 6146/7915): `{ prefix = "64:ff9b::/96", mtu4 = 1500, mtu6 = 1500 }`.
    #[serde(default)]
    pub nat64: Option<Nat64ProfileCfg>,
    /// Clamp the MSS option of SYNs toward the servers (wired side).
    #[serde(default)]
    pub mss_clamp_up: Option<u16>,
    /// Clamp the MSS option of SYN-ACKs toward the subscribers (wireless side).
    #[serde(default)]
    pub mss_clamp_down: Option<u16>,
    /// Cap the advertised window toward the subscribers (only on connections
    /// without window scaling).
    #[serde(default)]
    pub window_cap_down: Option<u16>,
    /// Answer ICMP / ICMPv6 echo requests to the representative addresses
    /// (VIPs) from the gateway itself (default on; off: they are balanced
    /// like a connection to an any-port VIP, or dropped).
    #[serde(default = "d_true")]
    pub answer_ping: bool,
    /// A subscriber's TCP SYN refused because no key or no table entry is
    /// left: "drop" (the default; counted `nat_pool_exhausted` /
    /// `flow_table_full`) or "rst" (answered by a TCP RST, `gw_rst_exhausted`:
    /// `gw_rst_nat_pool_exhausted` or `gw_rst_flow_table_full`).
    #[serde(default = "d_exhaustion_reply")]
    pub exhaustion_reply: String,
    /// Open connections of one subscriber (an IPv4 address, an IPv6 /64)
    /// at once; 0 or absent: no limit. Each worker enforces
    /// `ceil(max / workers)`. Over it a start is refused
    /// (`subscriber_conn_limit`) with `exhaustion_reply`.
    #[serde(default)]
    pub max_conns_per_subscriber: u32,
    /// New connections of one subscriber per second (token bucket, burst =
    /// the rate); absent: no limit. Each worker enforces `rate / workers`.
    /// Over it a start is refused (`subscriber_rate_limit`) with
    /// `exhaustion_reply`.
    #[serde(default)]
    pub new_conns_per_subscriber_per_s: Option<u32>,
    /// SYN proxy (SYN cookies) for connections to representative addresses:
    /// "off" (the default), "on" (every SYN to a VIP), or "auto" (while a
    /// worker's half-open connections to a VIP address reach its share of
    /// `syn_proxy_half_open`: for that address).
    #[serde(default = "d_syn_proxy")]
    pub syn_proxy: String,
    /// With `syn_proxy = "auto"`: half-open TCP connections to one VIP
    /// address (all workers) from which SYNs to it are proxied.
    #[serde(default = "d_syn_proxy_half_open")]
    pub syn_proxy_half_open: u32,
    /// MSS the proxy advertises to subscribers.
    #[serde(default = "d_syn_proxy_mss")]
    pub syn_proxy_mss: u16,
    /// Window Scale the proxy advertises to subscribers (best: the servers' own).
    #[serde(default = "d_syn_proxy_wscale")]
    pub syn_proxy_wscale: u8,
    /// Fragments of NAT44, NAT64 and NAT66 connections (shallow virtual reassembly):
    /// reassembly contexts per worker; 0 drops every fragment (`fragment`).
    #[serde(default = "d_frag_contexts")]
    pub frag_contexts: u32,
    /// Fragments per worker held while their datagram's first fragment has
    /// not come (1536 bytes each).
    #[serde(default = "d_frag_hold_slots")]
    pub frag_hold_slots: u32,
    /// Fragments of one datagram held at most (VPP's default: 3).
    #[serde(default = "d_frag_max_held")]
    pub frag_max_held: u8,
    /// Life of a reassembly context, from its datagram's first fragment to
    /// arrive, in ms (VPP's default: 100).
    #[serde(default = "d_frag_timeout_ms")]
    pub frag_timeout_ms: u32,
    /// TCP health checks of the group members (sent from the first pool
    /// address and the `probe_ports` range; a member's `ip6`, with `pool6`,
    /// is checked too, from the first pool6 address, as its IPv6 side).
    #[serde(default)]
    pub health: Option<HealthCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsCfg {
    pub syn_s: Option<f64>,
    pub established_s: Option<f64>,
    pub closing_s: Option<f64>,
    pub udp_s: Option<f64>,
    pub icmp_s: Option<f64>,
    /// Hold of a closed connection that reached Established: its (key,
    /// server) tuple is given to no other connection before it ends, so it
    /// must cover the servers' TIME_WAIT (60 s on Linux). Default 60.
    pub close_hold_s: Option<f64>,
    /// Hold after a RST, a connection never established, UDP, ICMP
    /// (nothing on the server remembers them). Default 2.
    pub short_hold_s: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCfg {
    pub name: String,
    /// 0..=63 (a bit of the allowed-services bitmap).
    pub id: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupCfg {
    pub name: String,
    pub service: String,
    /// round-robin | weighted-round-robin | least-connections | priority
    #[serde(default = "d_policy")]
    pub policy: String,
    pub members: Vec<MemberCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberCfg {
    pub name: String,
    pub ip: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "d_weight")]
    pub weight: u32,
    #[serde(default)]
    pub priority: u32,
    #[serde(default = "d_true")]
    pub up: bool,
    /// The member's IPv6 address (NAT66 to IPv6 VIPs); health-checked on
    /// its own with `gw.health` (a failure leaves NAT66 balancing only).
    #[serde(default)]
    pub ip6: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipCfg {
    pub ip: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub group: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nat64ProfileCfg {
    #[serde(default = "d_nat64_prefix")]
    pub prefix: String,
    #[serde(default = "d_mtu")]
    pub mtu4: u16,
    #[serde(default = "d_mtu")]
    pub mtu6: u16,
}

fn d_nat64_prefix() -> String {
    "64:ff9b::/96".into()
}
fn d_mtu() -> u16 {
    1500
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCfg {
    pub ip: String,
    /// The subscriber's IPv6 prefix ("2001:db8:50:1::/64"), for NAT64.
    #[serde(default)]
    pub ipv6: Option<String>,
    pub device_id: u64,
    pub services: Vec<String>,
}

fn d_key_ports() -> [u16; 2] {
    [1024, 65535]
}
fn d_true() -> bool {
    true
}
fn d_flows() -> u32 {
    65536
}
fn d_policy() -> String {
    "round-robin".into()
}
fn d_frag_contexts() -> u32 {
    pgw_pipelines::gw::GwConfig::default().frag_contexts
}
fn d_frag_hold_slots() -> u32 {
    pgw_pipelines::gw::GwConfig::default().frag_hold_slots
}
fn d_frag_max_held() -> u8 {
    pgw_pipelines::gw::GwConfig::default().frag_max_held
}
fn d_frag_timeout_ms() -> u32 {
    pgw_pipelines::gw::GwConfig::default().frag_timeout_ms
}
fn d_syn_proxy() -> String {
    "off".into()
}
fn d_syn_proxy_half_open() -> u32 {
    1000
}
fn d_syn_proxy_mss() -> u16 {
    1460
}
fn d_syn_proxy_wscale() -> u8 {
    7
}
fn d_exhaustion_reply() -> String {
    "drop".into()
}
fn d_weight() -> u32 {
    1
}

/// A whole profile as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub instance: Instance,
    #[serde(default)]
    pub eal: Eal,
    pub cores: Cores,
    #[serde(default)]
    pub engine: EngineCfg,
    #[serde(rename = "port", default)]
    pub ports: Vec<PortCfg>,
    #[serde(default)]
    pub wire: Option<Wire>,
    #[serde(default)]
    pub gw: Option<GwCfg>,
    #[serde(default)]
    pub lb: Option<LbCfg>,
    /// Listener of the control protocol (sessions from a management instance).
    #[serde(default)]
    pub control: Option<ControlCfg>,
    /// Where accounting records and the session log go.
    #[serde(default)]
    pub accounting: Option<AccountingCfg>,
    /// RADIUS server for the NAS (sessions, address assignment).
    #[serde(default)]
    pub radius: Option<RadiusCfg>,
    /// Prometheus metrics over HTTP (off when absent).
    #[serde(default)]
    pub metrics: Option<MetricsCfg>,
    /// Logging of `pgw run`.
    #[serde(default)]
    pub log: LogCfg,
    /// Static neighbours (next hops whose MAC is known), any role.
    #[serde(rename = "neighbor", default)]
    pub neighbors: Vec<NeighborCfg>,
    /// Where the profile came from (for messages).
    #[serde(skip)]
    pub source: String,
}

fn d_memory_mb() -> u32 {
    512
}
fn d_burst() -> u16 {
    32
}
impl PortCfg {
    /// The descriptors a queue of this device gets when the profile does
    /// not say.
    pub fn default_desc(&self) -> u16 {
        if self.device.starts_with("net_af_xdp") {
            2048
        } else {
            1024
        }
    }
    /// The kernel interface behind a virtual device (`iface=NAME` of
    /// net_af_xdp, net_af_packet, net_tap), whose own counters see drops the
    /// PMD does not report.
    pub fn kernel_iface(&self) -> Option<&str> {
        self.device
            .split(',')
            .find_map(|kv| kv.strip_prefix("iface="))
            .filter(|n| !n.is_empty())
    }
}

impl Profile {
    /// RX and TX descriptors per queue of port `i`.
    pub fn descriptors(&self, i: usize) -> (u16, u16) {
        let d = self.ports[i].default_desc();
        (
            self.engine.rx_desc.unwrap_or(d),
            self.engine.tx_desc.unwrap_or(d),
        )
    }
}
fn d_mbufs() -> u32 {
    16383
}
fn d_mbuf_cache() -> u32 {
    256
}
fn d_drain() -> u32 {
    100
}
fn d_mgmt_poll_ms() -> u32 {
    1
}
fn d_drain_timeout_s() -> f64 {
    10.0
}
fn d_idle_polls() -> u32 {
    256
}
fn d_ring() -> u32 {
    4096
}

/// Does this device string name a PCI device (`DDDD:BB:DD.F` or `BB:DD.F`)?
pub fn is_pci(device: &str) -> bool {
    let addr = device.split(',').next().unwrap_or("");
    let parts: Vec<&str> = addr.split(':').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    let (bus, devfn) = match parts.as_slice() {
        [dom, bus, devfn] if hex(dom, 4) => (*bus, *devfn),
        [bus, devfn] => (*bus, *devfn),
        _ => return false,
    };
    let mut df = devfn.split('.');
    let (Some(d), Some(f), None) = (df.next(), df.next(), df.next()) else {
        return false;
    };
    hex(bus, 2) && hex(d, 2) && f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c))
}

impl Profile {
    pub(crate) fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.source.clone(),
            key: key.into(),
            msg: msg.into(),
        }
    }

    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    pub(crate) fn port_names(&self) -> String {
        self.ports
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Path of the control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.instance
            .control_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/pgw-{}.sock", self.instance.name)))
    }

    /// The EAL argument list (argv[0] included) for this profile, given
    /// whether enough hugepages are free.
    pub fn eal_args(&self, use_huge: bool) -> Vec<String> {
        let mut cpus = self.cores.workers.clone();
        // The first worker CPU is the main lcore; EAL numbers lcores by CPU.
        let main = cpus[0];
        cpus.sort_unstable();
        let mut a = vec![
            "pgw".to_string(),
            "-l".into(),
            cpus.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
            format!("--main-lcore={main}"),
            format!("--file-prefix=pgw-{}", self.instance.name),
        ];
        if use_huge {
            // `--in-memory` keeps no shared configuration: no secondary
            // process (dpdk-dumpcap) can attach to it.
            if !self.eal.capture {
                a.push("--in-memory".into());
            }
        } else {
            a.extend([
                "--no-huge".into(),
                "--no-shconf".into(),
                "-m".into(),
                self.eal.memory_mb.to_string(),
            ]);
        }
        let mut any_pci = false;
        for p in &self.ports {
            if is_pci(&p.device) {
                any_pci = true;
                a.push("-a".into());
                a.push(p.device.clone());
            } else {
                a.push(format!("--vdev={}", p.device));
            }
        }
        if !any_pci {
            a.push("--no-pci".into());
        }
        a.extend(self.eal.extra_args.iter().cloned());
        a
    }

    /// The DPDK device name of port `i` (what `rte_eth_dev_get_port_by_name` takes).
    pub fn dpdk_name(&self, i: usize) -> String {
        let d = &self.ports[i].device;
        let first = d.split(',').next().unwrap_or(d).to_string();
        if is_pci(d) && first.len() == 7 {
            format!("0000:{first}")
        } else {
            first
        }
    }
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16)
            .map_err(|_| format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"))?;
    }
    Ok(m)
}

/// Parse `a.b.c.d/len` (or a bare address, /32).
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            l.parse::<u8>()
                .map_err(|_| format!("{s:?}: bad prefix length"))?,
        ),
        None => (s, 32),
    };
    let ip: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
    if len > 32 {
        return Err(format!("{s:?}: prefix length over 32"));
    }
    Ok((ip, len))
}

/// Free hugepage memory in MiB (from /proc/meminfo).
pub fn free_hugepage_mb() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    let field = |k: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    field("HugePages_Free:") * field("Hugepagesize:") / 1024
}

/// `[radius]`: the RADIUS server and session manager of a management instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusCfg {
    /// Authentication port (Access-Request), e.g. "127.0.0.1:1812".
    pub listen: String,
    /// Accounting port (Accounting-Request), e.g. "127.0.0.1:1813".
    pub acct_listen: String,
    /// Name of the `[[radius.gateway]]` this instance is.
    #[serde(default)]
    pub this_gateway: Option<String>,
    /// Act → Dormant without traffic (seconds; absent: only on Stop).
    #[serde(default)]
    pub dormant_s: Option<f64>,
    /// Dormant → Close after this long (seconds).
    #[serde(default = "d_session_s")]
    pub session_s: f64,
    /// Act → Close without an Interim-Update for this long (absent: off).
    #[serde(default)]
    pub interim_monitor_s: Option<f64>,
    /// Interval the NAS is told to send Interim-Updates at.
    #[serde(default)]
    pub interim_interval_s: Option<u32>,
    /// Session-Timeout in Access-Accept (RFC 2865 §5.27): the NAS ends the
    /// session after this many seconds, and the session manager closes it
    /// then itself (Act or Dormant → Close, `session_timeout`) if the NAS
    /// did not (absent: not sent, no lifetime).
    #[serde(default)]
    pub session_timeout_s: Option<u32>,
    /// Idle-Timeout in Access-Accept (RFC 2865 §5.28), seconds; without a
    /// `dormant_s`, also the session's own dormant timer. Absent:
    /// `dormant_s` rounded up when that is set (the NAS's idle timer and
    /// the dormant timer agree), else not sent.
    #[serde(default)]
    pub idle_timeout_s: Option<u32>,
    /// Shared secret of the control protocol toward the gateway instances
    /// (`[[radius.gateway]] control`), see `ctlproto`.
    #[serde(default)]
    pub control_secret: Option<String>,
    /// Resend every remote gateway its session table this often (seconds).
    #[serde(default = "d_resync_s")]
    pub control_resync_s: f64,
    /// Replies kept for retransmitted requests (entries; the oldest is
    /// evicted when full). Default 4096.
    #[serde(default)]
    pub duplicate_cache: Option<usize>,
    /// Service ids (bits of the allowed-services bitmap), when this instance
    /// has no `[gw]` section of its own; must match the gateways' ids.
    #[serde(rename = "service", default)]
    pub services: Vec<ServiceCfg>,
    #[serde(rename = "client", default)]
    pub clients: Vec<ClientCfg>,
    #[serde(rename = "user", default)]
    pub users: Vec<UserCfg>,
    #[serde(rename = "gateway", default)]
    pub gateways: Vec<AssignGwCfg>,
    /// Where each NAS's subscribers enter: a session reported at another
    /// NAS moves its subscriber's connections to that NAS's entry point.
    #[serde(rename = "nas", default)]
    pub nases: Vec<NasCfg>,
}

/// `[[radius.nas]]`: a NAS, as its requests name it, and the LB its
/// subscribers' packets come through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NasCfg {
    /// NAS-IP-Address of its requests.
    #[serde(default)]
    pub address: Option<String>,
    /// NAS-Identifier of its requests (when it sends no NAS-IP-Address).
    #[serde(default)]
    pub identifier: Option<String>,
    /// The MAC the gateways see on the up packets of this NAS's
    /// subscribers: the LAN port of the LB the NAS sits behind.
    pub entry_mac: String,
}

fn d_session_s() -> f64 {
    3600.0
}
fn d_resync_s() -> f64 {
    2.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCfg {
    /// Source address of the NAS.
    pub address: String,
    pub secret: String,
    #[serde(default)]
    pub require_message_authenticator: bool,
    /// Requests a second this NAS may send on average (a token bucket;
    /// over it, requests are dropped and counted). Default 200.
    #[serde(default)]
    pub rate_per_s: Option<u32>,
    /// Requests it may send at once (the bucket's size). Default twice
    /// `rate_per_s`.
    #[serde(default)]
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCfg {
    pub user: String,
    pub password: String,
    /// Mobile device id (the NAS sends it as Calling-Station-Id).
    pub device_id: String,
    #[serde(default)]
    pub phone: String,
    /// Services this device may use (`[[gw.service]]` names).
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignGwCfg {
    pub name: String,
    /// Address ranges "first-last" handed to this gateway's subscribers.
    pub ranges: Vec<String>,
    #[serde(default = "d_true")]
    pub up: bool,
    /// IPv6 block of this gateway ("2001:db8:50::/48"): session i gets its
    /// i-th /64 as Framed-IPv6-Prefix (dual stack, NAT64 for IPv6 subscribers).
    #[serde(default)]
    pub ipv6_prefix: Option<String>,
    /// Control listener of that gateway's pgw instance ("address:port"),
    /// where its session table is sent (not needed for `this_gateway`).
    #[serde(default)]
    pub control: Option<String>,
}

/// `health = {...}` of `[gw]` and `[lb]`: the health checks' timing.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCfg {
    #[serde(default = "d_interval")]
    pub interval_s: f64,
    #[serde(default = "d_timeout")]
    pub timeout_s: f64,
    #[serde(default = "d_rise")]
    pub rise: u32,
    #[serde(default = "d_fall")]
    pub fall: u32,
    /// TCP port probed on members that have no port of their own.
    #[serde(default)]
    pub port: Option<u16>,
}

fn d_interval() -> f64 {
    2.0
}
fn d_timeout() -> f64 {
    1.0
}
fn d_rise() -> u32 {
    2
}
fn d_fall() -> u32 {
    3
}
