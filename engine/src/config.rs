//! Profiles: the TOML files under `configs/` that say what one `pgw`
//! instance runs (role, ports, cores, EAL options, table sizes).
//!
//! Every error names the file, the key and what is wrong. The EAL argument
//! list is derived here and nowhere else, so the PCI rule lives in one place:
//! `--no-pci` unless a `[[port]]` names a PCI address, and then only an
//! allow-list (`-a`) of exactly those addresses.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

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
}

impl Default for Eal {
    fn default() -> Self {
        Eal {
            hugepages: HugepageMode::Auto,
            memory_mb: d_memory_mb(),
            extra_args: vec![],
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingCfg {
    /// SQLite database (WAL, batched transactions; created if missing).
    #[serde(default)]
    pub sqlite: Option<PathBuf>,
    /// IPFIX (RFC 7011) collector, "address:port" (UDP).
    #[serde(default)]
    pub ipfix_collector: Option<String>,
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
    pub health: Option<crate::health::HealthCfg>,
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
    /// TCP health checks of the group members (sent from the first pool
    /// address and the `probe_ports` range).
    #[serde(default)]
    pub health: Option<crate::health::HealthCfg>,
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
    /// The member's IPv6 address (NAT66 to IPv6 VIPs).
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
    pub radius: Option<crate::radius::RadiusCfg>,
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

/// EAL options a profile may not pass in `extra_args`, with where they belong.
const FORBIDDEN_EAL: &[(&str, &str)] = &[
    ("-a", "[[port]] device = \"<PCI address>\""),
    ("--allow", "[[port]] device = \"<PCI address>\""),
    ("-w", "[[port]] device = \"<PCI address>\""),
    (
        "-b",
        "nothing: pgw never probes PCI devices it is not given",
    ),
    (
        "--block",
        "nothing: pgw never probes PCI devices it is not given",
    ),
    ("--vdev", "[[port]] device = \"net_...\""),
    ("--no-pci", "nothing: it is the default without PCI ports"),
    ("-l", "[cores] workers"),
    ("-c", "[cores] workers"),
    ("--lcores", "[cores] workers"),
    (
        "--main-lcore",
        "[cores] workers (the first is the main lcore)",
    ),
    ("--no-huge", "[eal] hugepages = \"off\""),
    ("--in-memory", "[eal] hugepages"),
    ("-m", "[eal] memory_mb"),
    ("--file-prefix", "[instance] name"),
];

impl Profile {
    /// Read and validate a profile file.
    pub fn load(path: &Path) -> Result<Profile, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: String::new(),
            msg: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Parse and validate profile text; `file` is used in messages.
    pub fn parse(text: &str, file: &str) -> Result<Profile, ConfigError> {
        let mut p: Profile = toml::from_str(text).map_err(|e| ConfigError {
            file: file.to_string(),
            key: String::new(),
            msg: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        p.source = file.to_string();
        p.validate()?;
        Ok(p)
    }

    /// What the profile implies that an operator should know, and warnings
    /// (`warning: file: key: ...`) about settings that work but hurt:
    /// printed by `pgw check-config` and at the start of `pgw run`.
    pub fn notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        let Some(g) = &self.gw else {
            return v;
        };
        let Ok(b) = crate::gwcfg::build(self) else {
            return v;
        };
        let c = &b.cfg;
        let ks = pgw_pipelines::gw::KeySpace::new(c);
        let workers = c.workers as u64;
        let keys = ks.keys_per_worker() as u64 * workers;
        let hold_s = c.timeouts.close_hold_ms as f64 / 1000.0;
        let entries = c.max_flows_per_worker as u64 * workers;
        v.push(format!(
            "{}: gw: {} pool address(es) x {} key ports = {keys} keys; a key is unique per destination (server address, port, protocol), so each destination takes up to {keys} connections open or on hold",
            self.source,
            c.pool.len(),
            ks.usable
        ));
        v.push(format!(
            "{}: gw: sustainable new connections per destination from distinct subscriber 4-tuples: {keys} keys / close_hold {hold_s} s = {:.0}/s (a subscriber reusing its own port revives its binding and is not limited by the hold); across all destinations: {entries} entries ({} workers x max_flows_per_worker {}) / close_hold = {:.0}/s at most",
            self.source,
            keys as f64 / hold_s,
            workers,
            c.max_flows_per_worker,
            entries as f64 / hold_s
        ));
        if c.timeouts.close_hold_ms < 60_000 {
            v.push(format!(
                "warning: {}: gw.timeouts.close_hold_s: {hold_s} s is shorter than a Linux server's TIME_WAIT (60 s): a (key, server) tuple may go to another subscriber connection while the server still holds it, and the server may refuse its SYN (PAWS); use at least 60 unless the servers' TIME_WAIT is shorter",
                self.source
            ));
        }
        let _ = g;
        v
    }

    pub(crate) fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.source.clone(),
            key: key.into(),
            msg: msg.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let name = &self.instance.name;
        if name.is_empty()
            || name.len() > 24
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.err("instance.name", format!("{name:?}: use 1-24 letters, digits, '-' or '_' (it names DPDK objects and files)")));
        }
        if self.cores.workers.is_empty() {
            return Err(self.err("cores.workers", "at least one worker CPU is needed"));
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as u32;
        let mut seen = HashSet::new();
        for (i, &c) in self.cores.workers.iter().enumerate() {
            if c >= 128 {
                return Err(self.err(
                    format!("cores.workers[{i}]"),
                    format!("CPU {c} is out of range"),
                ));
            }
            if !seen.insert(c) {
                return Err(self.err(
                    format!("cores.workers[{i}]"),
                    format!("CPU {c} is listed twice"),
                ));
            }
        }
        if let Some(m) = self.cores.management {
            if m >= ncpu.max(1) {
                return Err(self.err(
                    "cores.management",
                    format!("CPU {m} does not exist on this machine ({ncpu} CPUs)"),
                ));
            }
        }
        let e = &self.engine;
        if e.burst == 0 || e.burst as usize > crate::dpdk::MAX_BURST {
            return Err(self.err(
                "engine.burst",
                format!("{} is not within 1..={}", e.burst, crate::dpdk::MAX_BURST),
            ));
        }
        if !e.handoff_ring.is_power_of_two() || e.handoff_ring < 64 {
            return Err(self.err(
                "engine.handoff_ring",
                format!("{} must be a power of two >= 64", e.handoff_ring),
            ));
        }
        if !(1..=1000).contains(&e.mgmt_poll_ms) {
            return Err(self.err(
                "engine.mgmt_poll_ms",
                format!("{} is not within 1..=1000 (milliseconds)", e.mgmt_poll_ms),
            ));
        }
        let descs: u32 = (0..self.ports.len())
            .map(|i| {
                let (r, t) = self.descriptors(i);
                r as u32 + t as u32
            })
            .sum();
        let min_mbufs = self.cores.workers.len() as u32 * descs + 1024;
        if e.mbufs < min_mbufs {
            return Err(self.err("engine.mbufs", format!("{} is too few for {} workers x {descs} descriptors over {} ports (engine.rx_desc / tx_desc, or the devices' defaults): use at least {min_mbufs}", e.mbufs, self.cores.workers.len(), self.ports.len())));
        }
        if self.eal.memory_mb < 64 {
            return Err(self.err("eal.memory_mb", "at least 64 MiB"));
        }
        for (i, a) in self.eal.extra_args.iter().enumerate() {
            let flag = a.split('=').next().unwrap_or("");
            if let Some((_, instead)) = FORBIDDEN_EAL.iter().find(|(f, _)| {
                *f == flag || (f.len() == 2 && flag.starts_with(f) && !flag.starts_with("--"))
            }) {
                return Err(self.err(
                    format!("eal.extra_args[{i}]"),
                    format!("{a:?} is set by the profile itself; use {instead}"),
                ));
            }
        }
        if self.ports.is_empty() {
            return Err(self.err("port", "no [[port]]: a gateway needs at least one port"));
        }
        let mut names = HashSet::new();
        let mut devs = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let k = format!("port[{i}]");
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(self.err(
                    format!("{k}.name"),
                    format!("{:?} is empty or used twice", p.name),
                ));
            }
            let dev = p.device.split(',').next().unwrap_or("");
            if dev.is_empty() {
                return Err(self.err(format!("{k}.device"), "empty device"));
            }
            if !is_pci(&p.device) && !dev.starts_with("net_") {
                return Err(self.err(format!("{k}.device"), format!("{:?} is neither a PCI address (0000:03:00.0) nor a DPDK virtual device (net_tap0, net_ring0, ...)", p.device)));
            }
            if !devs.insert(dev.to_string()) {
                return Err(self.err(
                    format!("{k}.device"),
                    format!("device {dev:?} is used by two ports"),
                ));
            }
            if let Some(m) = &p.mac {
                parse_mac(m).map_err(|msg| self.err(format!("{k}.mac"), msg))?;
            }
            for (j, a) in p.ipv4.iter().enumerate() {
                parse_cidr(a).map_err(|msg| self.err(format!("{k}.ipv4[{j}]"), msg))?;
            }
        }
        match self.instance.role {
            Role::Wire => {
                let w = self.wire.as_ref().ok_or_else(|| {
                    self.err(
                        "wire",
                        "role \"wire\" needs a [wire] section with pairs = [[\"a\", \"b\"]]",
                    )
                })?;
                let mut used = HashSet::new();
                for (i, [a, b]) in w.pairs.iter().enumerate() {
                    for (j, n) in [a, b].into_iter().enumerate() {
                        if self.port_index(n).is_none() {
                            return Err(self.err(
                                format!("wire.pairs[{i}][{j}]"),
                                format!("no [[port]] named {n:?} (ports: {})", self.port_names()),
                            ));
                        }
                        if !used.insert(n.as_str()) {
                            return Err(self.err(
                                format!("wire.pairs[{i}][{j}]"),
                                format!("port {n:?} is in two pairs"),
                            ));
                        }
                    }
                    if a == b {
                        return Err(self.err(
                            format!("wire.pairs[{i}]"),
                            "a port cannot be paired with itself",
                        ));
                    }
                }
            }
            Role::Gw | Role::LbGw => {
                let g = self
                    .gw
                    .as_ref()
                    .ok_or_else(|| self.err("gw", "this role needs a [gw] section"))?;
                for (k, n) in [
                    ("gw.access_port", &g.access_port),
                    ("gw.server_port", &g.server_port),
                ] {
                    if self.port_index(n).is_none() {
                        return Err(self.err(
                            k,
                            format!("no [[port]] named {n:?} (ports: {})", self.port_names()),
                        ));
                    }
                }
                if g.access_port == g.server_port {
                    return Err(self.err("gw.server_port", "must differ from gw.access_port"));
                }
                crate::gwcfg::build(self).map(|_| ())?;
            }
            Role::Lb => {}
        }
        if matches!(self.instance.role, Role::Lb | Role::LbGw) {
            let l = self
                .lb
                .as_ref()
                .ok_or_else(|| self.err("lb", "this role needs an [lb] section"))?;
            for (k, n) in [
                ("lb.access_port", &l.access_port),
                ("lb.lan_port", &l.lan_port),
            ] {
                if self.port_index(n).is_none() {
                    return Err(self.err(
                        k,
                        format!("no [[port]] named {n:?} (ports: {})", self.port_names()),
                    ));
                }
            }
            if self.instance.role == Role::LbGw {
                let g = self.gw.as_ref().expect("checked above");
                if g.access_port != l.access_port {
                    return Err(self.err(
                        "gw.access_port",
                        "with role \"lb+gw\" the GW's access port is the LB's access port",
                    ));
                }
            }
            crate::gwcfg::build_lb(self, [0x02, 0, 0, 0, 0, 0]).map(|_| ())?;
        }
        crate::radius::build(self)?;
        if let Some(c) = &self.control {
            c.listen.parse::<std::net::SocketAddr>().map_err(|_| {
                self.err(
                    "control.listen",
                    format!("{:?} is not address:port", c.listen),
                )
            })?;
            if c.secret.len() < 8 {
                return Err(self.err("control.secret", "use a secret of at least 8 characters"));
            }
            if self.gw.is_none() {
                return Err(self.err(
                    "control",
                    "only a gateway (role gw or lb+gw) receives sessions",
                ));
            }
        }
        if let Some(a) = &self.accounting {
            if let Some(c) = &a.ipfix_collector {
                c.parse::<std::net::SocketAddr>().map_err(|_| {
                    self.err(
                        "accounting.ipfix_collector",
                        format!("{c:?} is not address:port"),
                    )
                })?;
            }
            if a.sqlite.is_none() && a.ipfix_collector.is_none() {
                return Err(self.err(
                    "accounting",
                    "give sqlite = \"FILE\" and/or ipfix_collector = \"ADDR:PORT\"",
                ));
            }
        }
        if let Some(g) = &self.gw {
            if let Some(h) = &g.health {
                if g.probe_ports.is_none() {
                    return Err(self.err("gw.health", "health checks need gw.probe_ports (a port range kept out of the NAT keys for the probes)"));
                }
                for (i, grp) in g.groups.iter().enumerate() {
                    for (j, m) in grp.members.iter().enumerate() {
                        if m.port.is_none() && h.port.is_none() {
                            return Err(self.err(
                                format!("gw.group[{i}].members[{j}]"),
                                "no port to probe: give the member a port or set gw.health.port",
                            ));
                        }
                    }
                }
            }
        }
        if let Some(l) = &self.lb {
            if l.health.is_some() {
                let lan = self.port_index(&l.lan_port);
                if lan.map(|i| self.ports[i].ipv4.is_empty()).unwrap_or(true) {
                    return Err(self.err("lb.health", "ARP health checks need an ipv4 address on the LAN port (the probes' source)"));
                }
            }
            for (i, g) in l.gateways.iter().enumerate() {
                if let Some(a) = &g.ip {
                    a.parse::<Ipv4Addr>().map_err(|_| {
                        self.err(
                            format!("lb.gateway[{i}].ip"),
                            format!("{a:?} is not an IPv4 address"),
                        )
                    })?;
                }
            }
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            n.ip.parse::<std::net::IpAddr>().map_err(|_| {
                self.err(
                    format!("neighbor[{i}].ip"),
                    format!("{:?} is not an IP address", n.ip),
                )
            })?;
            parse_mac(&n.mac).map_err(|m| self.err(format!("neighbor[{i}].mac"), m))?;
        }
        Ok(())
    }

    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    fn port_names(&self) -> String {
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
            a.push("--in-memory".into());
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[instance]
name = "t"
role = "wire"
[cores]
workers = [0, 1]
[engine]
mbufs = 16383
[[port]]
name = "a"
device = "net_ring0"
[[port]]
name = "b"
device = "net_ring1"
[wire]
pairs = [["a", "b"]]
"#;

    #[test]
    fn good_profile_gives_no_pci() {
        let p = Profile::parse(GOOD, "good.toml").unwrap();
        let a = p.eal_args(false);
        assert!(a.contains(&"--no-pci".to_string()));
        assert!(a.contains(&"--vdev=net_ring0".to_string()));
        assert!(!a.iter().any(|x| x == "-a"));
        assert!(a.contains(&"--no-huge".to_string()));
        assert!(p.eal_args(true).contains(&"--in-memory".to_string()));
    }

    #[test]
    fn pci_port_gives_allow_list_only() {
        let t = GOOD.replace("net_ring1", "0000:03:00.0");
        let p = Profile::parse(&t, "pci.toml").unwrap();
        let a = p.eal_args(true);
        assert!(!a.contains(&"--no-pci".to_string()));
        let i = a.iter().position(|x| x == "-a").unwrap();
        assert_eq!(a[i + 1], "0000:03:00.0");
        assert_eq!(a.iter().filter(|x| *x == "-a").count(), 1);
    }

    #[test]
    fn pci_detection() {
        assert!(is_pci("0000:03:00.0"));
        assert!(is_pci("03:00.1"));
        assert!(is_pci("0000:af:00.7,rxq=2"));
        assert!(!is_pci("net_tap0,iface=x"));
        assert!(!is_pci("03:00.8"));
        assert!(!is_pci("net_pcap0,rx_pcap=a:b.0"));
    }

    fn err_of(text: &str) -> String {
        Profile::parse(text, "bad.toml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = err_of(&GOOD.replace("[engine]", "[engine]\nburts = 3"));
        assert!(e.starts_with("bad.toml"), "{e}");
        assert!(e.contains("burts"), "{e}");
        let e = err_of(&GOOD.replace(
            "device = \"net_ring1\"",
            "device = \"net_ring1\"\nipv4 = [\"10.0.0.300/24\"]",
        ));
        assert!(e.contains("port[1].ipv4[0]"), "{e}");
        let e = err_of(&GOOD.replace("[\"a\", \"b\"]", "[\"a\", \"c\"]"));
        assert!(e.contains("wire.pairs[0][1]") && e.contains("\"c\""), "{e}");
        let e = err_of(&GOOD.replace("device = \"net_ring1\"", "device = \"eth0\""));
        assert!(e.contains("port[1].device"), "{e}");
        let e = err_of(&GOOD.replace(
            "[engine]",
            "[eal]\nextra_args = [\"-b\", \"00:01.0\"]\n[engine]",
        ));
        assert!(e.contains("eal.extra_args[0]"), "{e}");
        let e = err_of(&GOOD.replace("mbufs = 16383", "mbufs = 100"));
        assert!(e.contains("engine.mbufs"), "{e}");
        let e = err_of(&GOOD.replace("role = \"wire\"", "role = \"router\""));
        assert!(e.contains("role") && e.contains("router"), "{e}");
    }
}
