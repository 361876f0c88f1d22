//! Reading a profile and holding it to its rules: `Profile::load`/`parse`
//! (serde, then every check that names the file and the key at fault, the
//! GW, LB and RADIUS tables built once to prove they can be) and
//! `Profile::notes` (what `pgw check-config` tells an operator).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;

use super::profile::*;
use super::{gw, radius};

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

/// This machine's online CPUs (`/sys/devices/system/cpu/online`, e.g.
/// "0-3,6"): the list as written and the CPU numbers; None if unreadable.
fn online_cpus() -> Option<(String, HashSet<u32>)> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    let list = list.trim().to_string();
    Some((list.clone(), parse_cpu_list(&list)?))
}

/// "0-3,6" → {0, 1, 2, 3, 6}.
fn parse_cpu_list(list: &str) -> Option<HashSet<u32>> {
    let mut set = HashSet::new();
    for part in list.split(',').filter(|x| !x.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if b < a || b - a > 4096 {
            return None;
        }
        set.extend(a..=b);
    }
    Some(set)
}

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
        let Ok(b) = gw::build(self) else {
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
        let (max, rate) = (c.max_conns_per_subscriber, c.new_conns_per_subscriber_per_s);
        if max > 0 || rate > 0 {
            let open = match max {
                0 => "no limit".to_string(),
                n => format!("{n} ({} per worker)", (n as u64).div_ceil(workers)),
            };
            let new = match rate {
                0 => "no limit".to_string(),
                r => format!("{r}/s ({:.2}/s per worker)", r as f64 / workers as f64),
            };
            v.push(format!(
                "{}: gw: per subscriber (IPv4 address, IPv6 /64): open connections {open}, new connections {new}; each worker enforces its share, so with {workers} worker(s) the limits are {}",
                self.source,
                if workers == 1 { "exact" } else { "approximate (README: connection limits per subscriber)" }
            ));
        }
        if let pgw_pipelines::gw::SynProxy::Auto { half_open } = c.syn_proxy {
            v.push(format!(
                "{}: gw: SYN proxy for a VIP address from {half_open} half-open connections to it on ({} per worker: each worker proxies while its own reach its share)",
                self.source,
                (half_open as u64).div_ceil(workers)
            ));
        }
        let _ = g;
        v
    }

    /// The section `key` that this role needs, or the error `msg`.
    fn needed<'a, T>(
        &self,
        section: &'a Option<T>,
        key: &str,
        msg: &str,
    ) -> Result<&'a T, ConfigError> {
        section.as_ref().ok_or_else(|| self.err(key, msg))
    }

    /// `s`, the value of `key`, parses as a `T`: else the error "`s` is not
    /// `what`".
    fn check_parses<T: FromStr>(
        &self,
        key: impl Into<String>,
        s: &str,
        what: &str,
    ) -> Result<(), ConfigError> {
        match s.parse::<T>() {
            Ok(_) => Ok(()),
            Err(_) => Err(self.err(key, format!("{s:?} is not {what}"))),
        }
    }

    /// `n`, the value of `key`, names a `[[port]]`.
    fn check_port(&self, key: impl Into<String>, n: &str) -> Result<(), ConfigError> {
        match self.port_index(n) {
            Some(_) => Ok(()),
            None => Err(self.err(
                key,
                format!("no [[port]] named {n:?} (ports: {})", self.port_names()),
            )),
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
        let online = online_cpus();
        let mut seen = HashSet::new();
        for (i, &c) in self.cores.workers.iter().enumerate() {
            if c >= 128 {
                return Err(self.err(
                    format!("cores.workers[{i}]"),
                    format!("CPU {c} is out of range"),
                ));
            }
            if let Some((list, set)) = &online {
                if !set.contains(&c) {
                    return Err(self.err(
                        format!("cores.workers[{i}]"),
                        format!("CPU {c} does not exist on this machine (online CPUs: {list}); list CPUs of this machine (DPDK would fail to start its lcore)"),
                    ));
                }
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
        if e.burst == 0 || e.burst as usize > pgw_pipelines::MAX_BURST {
            return Err(self.err(
                "engine.burst",
                format!("{} is not within 1..={}", e.burst, pgw_pipelines::MAX_BURST),
            ));
        }
        if !e.handoff_ring.is_power_of_two() || e.handoff_ring < 64 {
            return Err(self.err(
                "engine.handoff_ring",
                format!("{} must be a power of two >= 64", e.handoff_ring),
            ));
        }
        if !(0.0..=3600.0).contains(&e.drain_timeout_s) {
            return Err(self.err(
                "engine.drain_timeout_s",
                format!("{} is not within 0..=3600 (seconds)", e.drain_timeout_s),
            ));
        }
        if !(1..=1000).contains(&e.mgmt_poll_ms) {
            return Err(self.err(
                "engine.mgmt_poll_ms",
                format!("{} is not within 1..=1000 (milliseconds)", e.mgmt_poll_ms),
            ));
        }
        if !MTU_RANGE.contains(&e.mtu) {
            return Err(self.err(
                "engine.mtu",
                format!(
                    "{} is not within {}..={} (bytes of IP packet; 1500 for standard Ethernet, 9000 for jumbo frames)",
                    e.mtu,
                    MTU_RANGE.start(),
                    MTU_RANGE.end()
                ),
            ));
        }
        if let Some(size) = e.mbuf_size {
            if !(1024..=e.frame_room()).contains(&size) {
                return Err(self.err(
                    "engine.mbuf_size",
                    format!(
                        "{size} is not within 1024..={} (bytes of frame per mbuf; unset, {}: the longest frame of engine.mtu = {} in one mbuf)",
                        e.frame_room(),
                        e.frame_room(),
                        e.mtu
                    ),
                ));
            }
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
        // Each mbuf: its data room, the 128-byte `rte_mbuf` and the pool's
        // object header.
        let pool_mb = (e.mbufs as u64 * (e.mbuf_data_room() as u64 + 192)) >> 20;
        if pool_mb >= self.eal.memory_mb as u64 {
            return Err(self.err(
                "engine.mbufs",
                format!(
                    "{} mbufs of {} bytes (engine.mtu = {}{}) take {pool_mb} MiB, not less than eal.memory_mb ({}): lower engine.mbufs{} or raise eal.memory_mb",
                    e.mbufs,
                    e.mbuf_data_room(),
                    e.mtu,
                    e.mbuf_size.map(|s| format!(", engine.mbuf_size = {s}")).unwrap_or_default(),
                    self.eal.memory_mb,
                    if e.mbuf_size.is_none() && e.mtu > 1500 { " (or set engine.mbuf_size = 2048: frames chained over mbufs)" } else { "" }
                ),
            ));
        }
        if self.eal.memory_mb < 64 {
            return Err(self.err("eal.memory_mb", "at least 64 MiB"));
        }
        if self.eal.capture && self.eal.hugepages == HugepageMode::Off {
            return Err(self.err(
                "eal.capture",
                "needs hugepages: dpdk-dumpcap is a secondary process and cannot attach to --no-huge memory; set eal.hugepages = \"required\" (or \"auto\")",
            ));
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
                let w = self.needed(
                    &self.wire,
                    "wire",
                    "role \"wire\" needs a [wire] section with pairs = [[\"a\", \"b\"]]",
                )?;
                let mut used = HashSet::new();
                for (i, [a, b]) in w.pairs.iter().enumerate() {
                    for (j, n) in [a, b].into_iter().enumerate() {
                        self.check_port(format!("wire.pairs[{i}][{j}]"), n)?;
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
                let g = self.needed(&self.gw, "gw", "this role needs a [gw] section")?;
                self.check_port("gw.access_port", &g.access_port)?;
                self.check_port("gw.server_port", &g.server_port)?;
                if g.access_port == g.server_port {
                    return Err(self.err("gw.server_port", "must differ from gw.access_port"));
                }
                gw::build(self).map(|_| ())?;
            }
            Role::Lb => {}
        }
        if matches!(self.instance.role, Role::Lb | Role::LbGw) {
            let l = self.needed(&self.lb, "lb", "this role needs an [lb] section")?;
            self.check_port("lb.access_port", &l.access_port)?;
            self.check_port("lb.lan_port", &l.lan_port)?;
            if self.instance.role == Role::LbGw {
                let g = self.gw.as_ref().expect("checked above");
                if g.access_port != l.access_port {
                    return Err(self.err(
                        "gw.access_port",
                        "with role \"lb+gw\" the GW's access port is the LB's access port",
                    ));
                }
            }
            gw::build_lb(self, [0x02, 0, 0, 0, 0, 0]).map(|_| ())?;
        }
        radius::build(self)?;
        if let Some(c) = &self.control {
            self.check_parses::<SocketAddr>("control.listen", &c.listen, "address:port")?;
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
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(self.err(
                "log.format",
                format!("{:?} is neither \"text\" nor \"json\"", self.log.format),
            ));
        }
        if !(1..=3600).contains(&self.log.repeat_every_s) {
            return Err(self.err(
                "log.repeat_every_s",
                format!(
                    "{} is not within 1..=3600 (seconds)",
                    self.log.repeat_every_s
                ),
            ));
        }
        crate::config::log::filter(&self.log.level)
            .map_err(|e| self.err("log.level", format!("{:?}: {e}", self.log.level)))?;
        if let Some(m) = &self.metrics {
            self.check_parses::<SocketAddr>(
                "metrics.listen",
                &m.listen,
                "address:port (e.g. \"127.0.0.1:9464\")",
            )?;
        }
        if let Some(a) = &self.accounting {
            if let Some(c) = &a.ipfix_collector {
                self.check_parses::<SocketAddr>("accounting.ipfix_collector", c, "address:port")?;
            }
            if !(1..=3600).contains(&a.ipfix_template_s) {
                return Err(self.err(
                    "accounting.ipfix_template_s",
                    format!(
                        "{} is out of range 1..=3600 (seconds between IPFIX template refreshes)",
                        a.ipfix_template_s
                    ),
                ));
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
                    self.check_parses::<Ipv4Addr>(
                        format!("lb.gateway[{i}].ip"),
                        a,
                        "an IPv4 address",
                    )?;
                }
            }
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            self.check_parses::<IpAddr>(format!("neighbor[{i}].ip"), &n.ip, "an IP address")?;
            parse_mac(&n.mac).map_err(|m| self.err(format!("neighbor[{i}].mac"), m))?;
        }
        Ok(())
    }
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
    fn capture_keeps_a_shared_configuration_and_needs_hugepages() {
        let t = GOOD.replace("[cores]", "[eal]\ncapture = true\n[cores]");
        let p = Profile::parse(&t, "cap.toml").unwrap();
        let a = p.eal_args(true);
        assert!(!a.contains(&"--in-memory".to_string()), "{a:?}");
        assert!(a.contains(&"--file-prefix=pgw-t".to_string()), "{a:?}");
        assert!(a.contains(&"--no-pci".to_string()));
        let e = err_of(&t.replace("capture = true", "capture = true\nhugepages = \"off\""));
        assert!(e.contains("eal.capture") && e.contains("--no-huge"), "{e}");
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

    /// Assert that `text` is refused with an error that starts with
    /// `start` (the file, the key, often the value and the fix).
    fn assert_refused(text: &str, start: &str) {
        let e = err_of(text);
        assert!(e.starts_with(start), "{e}");
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = err_of(&GOOD.replace("[engine]", "[engine]\nburts = 3"));
        assert!(e.starts_with("bad.toml"), "{e}");
        assert!(e.contains("burts"), "{e}");
        // (text replaced in GOOD, its replacement, what the error names)
        let cases: [(&str, &str, &[&str]); 6] = [
            (
                "device = \"net_ring1\"",
                "device = \"net_ring1\"\nipv4 = [\"10.0.0.300/24\"]",
                &["port[1].ipv4[0]"],
            ),
            (
                "[\"a\", \"b\"]",
                "[\"a\", \"c\"]",
                &["wire.pairs[0][1]", "\"c\""],
            ),
            (
                "device = \"net_ring1\"",
                "device = \"eth0\"",
                &["port[1].device"],
            ),
            (
                "[engine]",
                "[eal]\nextra_args = [\"-b\", \"00:01.0\"]\n[engine]",
                &["eal.extra_args[0]"],
            ),
            ("mbufs = 16383", "mbufs = 100", &["engine.mbufs"]),
            ("role = \"wire\"", "role = \"router\"", &["role", "router"]),
        ];
        for (from, to, named) in cases {
            let e = err_of(&GOOD.replace(from, to));
            assert!(named.iter().all(|n| e.contains(n)), "{e}");
        }
    }

    /// `engine.mtu`: 1500 by default, 68..=9000, the mbufs sized for it.
    #[test]
    fn engine_mtu() {
        let p = Profile::parse(GOOD, "good.toml").unwrap();
        assert_eq!(p.engine.mtu, 1500);
        assert_eq!(p.engine.max_frame(), 1518);
        // DPDK's default room (2048 + 128 of headroom) until the MTU needs more.
        assert_eq!(p.engine.mbuf_data_room(), 2176);
        let with = |mtu: &str| GOOD.replace("[engine]", &format!("[engine]\nmtu = {mtu}"));
        let p = Profile::parse(&with("9000"), "jumbo.toml").unwrap();
        assert_eq!(p.engine.mtu, 9000);
        assert_eq!(p.engine.max_frame(), 9018);
        assert_eq!(p.engine.mbuf_data_room(), 128 + 9000 + 18 + 4);
        assert_eq!(
            Profile::parse(&with("68"), "min.toml")
                .unwrap()
                .engine
                .max_frame(),
            86
        );
        assert_refused(
            &with("9001"),
            "bad.toml: engine.mtu: 9001 is not within 68..=9000",
        );
        assert_refused(
            &with("67"),
            "bad.toml: engine.mtu: 67 is not within 68..=9000",
        );
        assert_refused(
            &with("0"),
            "bad.toml: engine.mtu: 0 is not within 68..=9000",
        );
        let e = err_of(&with("65536"));
        assert!(e.starts_with("bad.toml") && e.contains("mtu"), "{e}");
        // 9 KiB mbufs: the pool must fit in EAL's memory.
        let small = with("9000").replace("[cores]", "[eal]\nmemory_mb = 128\n[cores]");
        assert_refused(
            &small,
            "bad.toml: engine.mbufs: 16383 mbufs of 9150 bytes (engine.mtu = 9000) take 145 MiB, not less than eal.memory_mb (128)",
        );
        assert!(Profile::parse(&small.replace("mtu = 9000", "mtu = 1500"), "ok.toml").is_ok());
    }

    /// `engine.mbuf_size`: unset, one mbuf per frame; less than the
    /// longest frame, chains (and a quarter of the memory at 9000 bytes);
    /// 1024..=the frame's room, named with the fix when not.
    #[test]
    fn engine_mbuf_size() {
        let with = |keys: &str| GOOD.replace("[engine]", &format!("[engine]\n{keys}"));
        let p = Profile::parse(&with("mtu = 9000"), "jumbo.toml").unwrap();
        assert_eq!(p.engine.frame_room(), 9022);
        assert!(!p.engine.chains());
        let p = Profile::parse(&with("mtu = 9000\nmbuf_size = 2048"), "chains.toml").unwrap();
        assert!(p.engine.chains());
        assert_eq!(p.engine.mbuf_data_room(), 128 + 2048);
        // As large as the frame's room: one mbuf per frame again.
        let p = Profile::parse(&with("mtu = 9000\nmbuf_size = 9022"), "one.toml").unwrap();
        assert!(!p.engine.chains());
        // At the default MTU the default room is 2048 already.
        let p = Profile::parse(&with("mbuf_size = 1024"), "small.toml").unwrap();
        assert!(p.engine.chains());
        assert_refused(
            &with("mbuf_size = 1023"),
            "bad.toml: engine.mbuf_size: 1023 is not within 1024..=2048 (bytes of frame per mbuf; unset, 2048: the longest frame of engine.mtu = 1500 in one mbuf)",
        );
        assert_refused(
            &with("mtu = 9000\nmbuf_size = 9023"),
            "bad.toml: engine.mbuf_size: 9023 is not within 1024..=9022",
        );
        // The pool that does not fit says how chains would.
        let small = with("mtu = 9000").replace("[cores]", "[eal]\nmemory_mb = 128\n[cores]");
        let e = err_of(&small);
        assert!(e.contains("or set engine.mbuf_size = 2048"), "{e}");
        assert!(Profile::parse(
            &small.replace("mtu = 9000", "mtu = 9000\nmbuf_size = 2048"),
            "ok.toml"
        )
        .is_ok());
    }

    /// `gw.answer_ping`: on by default, off when set so, a boolean.
    #[test]
    fn gw_answer_ping() {
        let gw = include_str!("../../../configs/tap-gw.toml");
        let built = |text: &str| {
            crate::config::gw::build(&Profile::parse(text, "gw.toml").unwrap())
                .unwrap()
                .cfg
                .answer_ping
        };
        assert!(built(gw));
        let unset = gw.replace("answer_ping = true", "");
        assert_ne!(unset, gw);
        assert!(built(&unset), "the default");
        assert!(!built(
            &gw.replace("answer_ping = true", "answer_ping = false")
        ));
        let e = err_of(&gw.replace("answer_ping = true", "answer_ping = \"yes\""));
        assert!(
            e.starts_with("bad.toml") && e.contains("answer_ping") && e.contains("boolean"),
            "{e}"
        );
    }

    /// The example GW profile.
    const TAP_GW: &str = include_str!("../../../configs/tap-gw.toml");

    /// [`TAP_GW`] with `extra` in its `[gw]`.
    fn tap_gw_with(extra: &str) -> String {
        TAP_GW.replace(
            "answer_ping = true",
            &format!("answer_ping = true\n{extra}"),
        )
    }

    /// The GW config built from profile `text`.
    fn gw_cfg(text: &str) -> pgw_pipelines::gw::GwConfig {
        crate::config::gw::build(&Profile::parse(text, "gw.toml").unwrap())
            .unwrap()
            .cfg
    }

    /// `gw.exhaustion_reply`: "drop" by default, "rst", nothing else.
    #[test]
    fn gw_exhaustion_reply() {
        use pgw_pipelines::gw::ExhaustionReply;
        let gw = TAP_GW;
        let with = |v: &str| tap_gw_with(&format!("exhaustion_reply = {v}"));
        let built = |text: &str| gw_cfg(text).exhaustion_reply;
        assert_eq!(built(gw), ExhaustionReply::Drop, "the default");
        assert_eq!(built(&with("\"drop\"")), ExhaustionReply::Drop);
        assert_eq!(built(&with("\"rst\"")), ExhaustionReply::Rst);
        assert_refused(
            &with("\"reset\""),
            "bad.toml: gw.exhaustion_reply: \"reset\": use \"drop\"",
        );
    }

    /// `gw.max_conns_per_subscriber` (0 or absent: none) and
    /// `gw.new_conns_per_subscriber_per_s` (absent: none; 1..=10^6).
    #[test]
    fn gw_subscriber_limits() {
        let (gw, with) = (TAP_GW, tap_gw_with);
        let built = |text: &str| {
            let c = gw_cfg(text);
            (c.max_conns_per_subscriber, c.new_conns_per_subscriber_per_s)
        };
        assert_eq!(built(gw), (0, 0), "the default: no limit");
        assert_eq!(
            built(&with(
                "max_conns_per_subscriber = 100\nnew_conns_per_subscriber_per_s = 20"
            )),
            (100, 20)
        );
        assert_eq!(built(&with("max_conns_per_subscriber = 0")), (0, 0));
        // the example's commented lines, as an operator would uncomment them
        let example = gw
            .replace("# max_conns_per_subscriber", "max_conns_per_subscriber")
            .replace(
                "# new_conns_per_subscriber_per_s",
                "new_conns_per_subscriber_per_s",
            );
        assert_eq!(built(&example), (200, 50));
        assert_refused(
            &with("new_conns_per_subscriber_per_s = 0"),
            "bad.toml: gw.new_conns_per_subscriber_per_s: 0: must be in 1..=1000000",
        );
        assert_refused(
            &with("new_conns_per_subscriber_per_s = 2000000"),
            "bad.toml: gw.new_conns_per_subscriber_per_s: 2000000",
        );
        let e = err_of(&with("max_conns_per_subscriber = -1"));
        assert!(
            e.starts_with("bad.toml") && e.contains("max_conns_per_subscriber"),
            "{e}"
        );
    }

    /// `gw.syn_proxy`: "off" by default, "on", "auto" with
    /// `syn_proxy_half_open`; the MSS and Window Scale it advertises.
    #[test]
    fn gw_syn_proxy() {
        use pgw_pipelines::gw::SynProxy;
        let (gw, with) = (TAP_GW, tap_gw_with);
        let built = |text: &str| {
            let c = gw_cfg(text);
            (c.syn_proxy, c.syn_proxy_mss, c.syn_proxy_wscale)
        };
        assert_eq!(built(gw), (SynProxy::Off, 1460, 7), "the defaults");
        assert_eq!(built(&with("syn_proxy = \"on\"")).0, SynProxy::On);
        assert_eq!(
            built(&with("syn_proxy = \"auto\"")).0,
            SynProxy::Auto { half_open: 1000 }
        );
        assert_eq!(
            built(&with(
                "syn_proxy = \"auto\"\nsyn_proxy_half_open = 64\nsyn_proxy_mss = 1360\nsyn_proxy_wscale = 9"
            )),
            (SynProxy::Auto { half_open: 64 }, 1360, 9)
        );
        // the example's commented line, as an operator would uncomment it
        assert_eq!(
            built(&gw.replace("# syn_proxy", "syn_proxy")).0,
            SynProxy::Auto { half_open: 1000 }
        );
        let e = err_of(&with("syn_proxy = \"yes\""));
        assert!(
            e.starts_with("bad.toml: gw.syn_proxy: \"yes\": use \"off\""),
            "{e}"
        );
        let e = err_of(&with("syn_proxy = \"auto\"\nsyn_proxy_half_open = 0"));
        assert!(e.starts_with("bad.toml: gw.syn_proxy_half_open: 0"), "{e}");
        let e = err_of(&with("syn_proxy = \"on\"\nsyn_proxy_wscale = 15"));
        assert!(e.contains("gw.syn_proxy_wscale: 15 is above 14"), "{e}");
        let e = err_of(&with("syn_proxy = \"on\"\nsyn_proxy_mss = 40"));
        assert!(e.contains("gw.syn_proxy_mss: 40 is below"), "{e}");
    }

    #[test]
    fn fragment_keys_build_the_config_and_name_themselves_when_wrong() {
        let (gw, with) = (TAP_GW, tap_gw_with);
        let built = |text: &str| {
            let c = gw_cfg(text);
            (
                c.frag_contexts,
                c.frag_hold_slots,
                c.frag_max_held,
                c.frag_timeout_ms,
            )
        };
        assert_eq!(built(gw), (1024, 256, 3, 100), "the defaults");
        // the example's commented lines, as an operator would uncomment them
        assert_eq!(built(&gw.replace("# frag_", "frag_")), (1024, 256, 3, 100));
        assert_eq!(
            built(&with(
                "frag_contexts = 0\nfrag_hold_slots = 8\nfrag_max_held = 5\nfrag_timeout_ms = 2000"
            )),
            (0, 8, 5, 2000)
        );
        let e = err_of(&with("frag_timeout_ms = 0"));
        assert!(
            e.starts_with("bad.toml: ") && e.contains("gw.frag_timeout_ms: 0 is not in 1..=60000"),
            "{e}"
        );
        let e = err_of(&with("frag_contexts = 2000000"));
        assert!(e.contains("gw.frag_contexts: 2000000 is above"), "{e}");
        let e = err_of(&with("frag_hold_slots = 100000"));
        assert!(e.contains("gw.frag_hold_slots: 100000 is above"), "{e}");
    }

    #[test]
    fn metrics_listen_is_an_address() {
        let ok = format!("{GOOD}[metrics]\nlisten = \"127.0.0.1:9464\"\n");
        let p = Profile::parse(&ok, "m.toml").unwrap();
        assert_eq!(p.metrics.unwrap().listen, "127.0.0.1:9464");
        assert!(Profile::parse(GOOD, "m.toml").unwrap().metrics.is_none());
        for bad in ["localhost", "127.0.0.1", "127.0.0.1:99999", ""] {
            let e = err_of(&format!("{GOOD}[metrics]\nlisten = \"{bad}\"\n"));
            assert!(
                e.starts_with("bad.toml: metrics.listen: ") && e.contains(&format!("{bad:?}")),
                "{bad}: {e}"
            );
        }
        let e = err_of(&format!(
            "{GOOD}[metrics]\nlisten = \"127.0.0.1:9464\"\nport = 1\n"
        ));
        assert!(e.contains("port"), "{e}");
    }

    #[test]
    fn ipfix_template_s_defaults_and_is_range_checked() {
        let acct = |extra: &str| {
            format!("{GOOD}[accounting]\nipfix_collector = \"127.0.0.1:4739\"\n{extra}")
        };
        let p = Profile::parse(&acct(""), "a.toml").unwrap();
        assert_eq!(p.accounting.unwrap().ipfix_template_s, 30);
        let p = Profile::parse(&acct("ipfix_template_s = 5\n"), "a.toml").unwrap();
        assert_eq!(p.accounting.unwrap().ipfix_template_s, 5);
        for bad in [0, 3601] {
            let e = err_of(&acct(&format!("ipfix_template_s = {bad}\n")));
            assert!(
                e.starts_with("bad.toml: accounting.ipfix_template_s: ")
                    && e.contains(&bad.to_string()),
                "{bad}: {e}"
            );
        }
    }

    /// Profiles that parse but cannot work are refused, naming the key.
    #[test]
    fn gw_profiles_that_cannot_work_are_refused() {
        let gw = include_str!("../../../configs/tap-gw.toml");
        assert!(Profile::parse(gw, "gw.toml").is_ok());
        let cases = [
            (
                gw.replace("weight = 3", "weight = 0"),
                "gw.group[1].members[0].weight",
            ),
            (
                gw.replace(
                    "members = [{ name = \"chat1\", ip = \"10.80.0.31\", priority = 0 }, { name = \"chat2\", ip = \"10.80.0.32\", priority = 1 }]",
                    "members = []",
                ),
                "gw.group[2].members",
            ),
            (
                gw.replace("pool = [\"10.80.0.100\"]", "pool = [\"10.50.0.2\"]"),
                "gw.session[0].ip",
            ),
        ];
        for (text, key) in cases {
            assert_ne!(text, gw, "{key}: the edit did not apply");
            let e = err_of(&text);
            assert!(e.starts_with("bad.toml") && e.contains(key), "{key}: {e}");
        }
    }

    /// More profiles that parse but cannot work: each edit of a good
    /// profile is refused naming the key, in the profile's notation
    /// (dotted quads, port numbers, names; no Rust debug output).
    #[test]
    fn bad_edits_name_the_key_in_profile_notation() {
        let gw = include_str!("../../../configs/tap-gw.toml");
        let radius = |ranges: &str| {
            format!(
                "{gw}\n[radius]\nlisten = \"127.0.0.1:18120\"\nacct_listen = \"127.0.0.1:18130\"\n\
                 [[radius.client]]\naddress = \"127.0.0.1\"\nsecret = \"testing123\"\n\
                 [[radius.gateway]]\nname = \"gw1\"\nranges = [{ranges}]\n"
            )
        };
        let lbgw = |first: &str, last: &str| {
            format!(
                "{}\n[lb]\naccess_port = \"access\"\nlan_port = \"servers\"\n\
                 [[lb.gateway]]\nname = \"g1\"\nmac = \"local\"\n\
                 [[lb.range]]\nfirst = \"{first}\"\nlast = \"{last}\"\ngateways = [\"g1\"]\n",
                gw.replace("role = \"gw\"", "role = \"lb+gw\"")
            )
        };
        let v6 = |session: &str| {
            gw.replace(
                "pool = [\"10.80.0.100\"]",
                "pool = [\"10.80.0.100\"]\npool6 = [\"2001:db8:50::1\"]",
            )
            .replace(
                "device_id = 1001",
                &format!("ipv6 = \"{session}\"\ndevice_id = 1001"),
            )
        };
        // The good variants of the edits below are accepted.
        for ok in [
            radius("\"10.50.0.2-10.50.0.200\""),
            lbgw("10.50.0.0", "10.50.0.255"),
            v6("2001:db8:51::/64"),
        ] {
            Profile::parse(&ok, "ok.toml").unwrap_or_else(|e| panic!("{e}\n{ok}"));
        }
        let cases: [(String, &str, &str); 9] = [
            (
                gw.replace("pool = [\"10.80.0.100\"]", "pool = [\"10.80.0.12\"]"),
                "gw.group[0].members[1].ip",
                "10.80.0.12 is also the pool address gw.pool[0]",
            ),
            (
                gw.replace("workers = [0, 1]", "workers = [0, 127]"),
                "cores.workers[1]",
                "CPU 127 does not exist",
            ),
            (
                gw.replace("group = \"chat\"", "group = \"chats\""),
                "gw.vip[2].group",
                "no [[gw.group]] named \"chats\"",
            ),
            (
                format!("{gw}\n[[gw.vip]]\nip = \"10.33.0.1\"\nport = 80\ngroup = \"mail\"\n"),
                "gw.vip[3]",
                "10.33.0.1 port 80 is already gw.vip[0]",
            ),
            (
                gw.replace(
                    "pool = [\"10.80.0.100\"]",
                    "pool = [\"10.80.0.100\", \"10.80.0.100\"]",
                ),
                "gw.pool[1]",
                "10.80.0.100 is listed twice",
            ),
            (
                gw.replace("pool = [\"10.80.0.100\"]", "pool = [\"10.50.0.2\"]"),
                "gw.session[0].ip",
                "10.50.0.2 is also a pool address",
            ),
            (
                radius("\"10.50.0.2-10.50.0.200\", \"10.80.0.50-10.80.0.150\""),
                "radius.gateway[0].ranges[1]",
                "contains the pool address gw.pool[0] (10.80.0.100)",
            ),
            (
                lbgw("10.80.0.0", "10.80.0.255"),
                "gw.pool[0]",
                "10.80.0.100 is inside the subscriber range lb.range[0] (10.80.0.0-10.80.0.255)",
            ),
            (
                v6("2001:db8:50::/64"),
                "gw.session[0].ipv6",
                "contains the pool address gw.pool6[0] (2001:db8:50::1)",
            ),
        ];
        for (text, key, says) in cases {
            assert_ne!(text, gw, "{key}: the edit did not apply");
            let e = err_of(&text);
            assert!(
                e.starts_with(&format!("bad.toml: {key}: ")) && e.contains(says),
                "{key}: {e}"
            );
            assert!(!e.contains("Some(") && !e.contains(", 0, "), "{key}: {e}");
        }
        assert_eq!(
            parse_cpu_list("0-3,6").map(|s| {
                let mut v: Vec<u32> = s.into_iter().collect();
                v.sort_unstable();
                v
            }),
            Some(vec![0, 1, 2, 3, 6])
        );
        assert_eq!(parse_cpu_list("3-1"), None);
    }

    fn demo(name: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo");
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn radius_client_limits_and_cache_are_validated_naming_the_key() {
        let lb = demo("lb1.toml");
        let client = "address = \"127.0.0.1\"\nsecret = \"testing123\"\n";
        assert!(lb.contains(client));
        let p = Profile::parse(
            &lb.replace(client, &format!("{client}rate_per_s = 5\nburst = 9\n")),
            "ok.toml",
        )
        .unwrap();
        let (_, mgr, _, _, clients) = radius::build(&p).unwrap().unwrap();
        assert_eq!(clients.len(), 1);
        assert_eq!(mgr.dup_cache().capacity(), 4096, "the default");
        for (extra, key) in [
            ("rate_per_s = 0\n", "radius.client[0].rate_per_s"),
            ("rate_per_s = 2000000\n", "radius.client[0].rate_per_s"),
            ("burst = 0\n", "radius.client[0].burst"),
            (
                "[[radius.client]]\naddress = \"::ffff:127.0.0.1\"\nsecret = \"x\"\n",
                "radius.client[1].address",
            ),
        ] {
            let e = err_of(&lb.replace(client, &format!("{client}{extra}")));
            assert!(e.starts_with("bad.toml: ") && e.contains(key), "{key}: {e}");
        }
        let with_cache = |n: &str| {
            lb.replace(
                "control_resync_s = 1\n",
                &format!("control_resync_s = 1\nduplicate_cache = {n}\n"),
            )
        };
        assert_refused(&with_cache("0"), "bad.toml: radius.duplicate_cache");
        let p = Profile::parse(&with_cache("128"), "ok.toml").unwrap();
        let (_, mgr, _, _, _) = radius::build(&p).unwrap().unwrap();
        assert_eq!(mgr.dup_cache().capacity(), 128);
        for key in ["session_timeout_s", "idle_timeout_s"] {
            assert_refused(
                &lb.replace("session_timeout_s = 86400\n", &format!("{key} = 0\n")),
                &format!("bad.toml: radius.{key}"),
            );
        }
    }

    #[test]
    fn overlapping_gateway_ranges_are_named_by_key_and_gateway() {
        let lb = demo("lb1.toml");
        let gw2 = "ranges = [\"10.51.0.2-10.51.0.250\"]";
        assert!(lb.contains(gw2));
        let e = err_of(&lb.replace(
            gw2,
            "ranges = [\"10.52.0.1-10.52.0.9\", \"10.50.0.200-10.50.1.10\"]",
        ));
        assert!(
            e.starts_with("bad.toml: radius.gateway[1].ranges[1]: 10.50.0.200-10.50.1.10 of gateway \"gw2\" overlaps radius.gateway[0].ranges[0] (10.50.0.2-10.50.0.250 of gateway \"gw1\")"),
            "{e}"
        );
        assert!(!e.contains("gw0") && !e.contains("GwId"), "{e}");
    }

    #[test]
    fn radius_nas_entry_points_are_validated_naming_the_key() {
        use pgw_pipelines::mgmt::session::NasInfo;
        // The demo maps NAS 192.0.2.1 and 192.0.2.2 ([[radius.nas]] 0 and 1).
        let lb = demo("lb1.toml");
        let nas = |body: &str| format!("{lb}\n[[radius.nas]]\n{body}\n");
        let p = Profile::parse(
            &nas("identifier = \"nas-9\"\nentry_mac = \"02:00:00:00:1b:09\""),
            "ok.toml",
        )
        .unwrap();
        let e = radius::entry_points(&p, p.radius.as_ref().unwrap()).unwrap();
        let of = |ip: Option<&str>, id: Option<&str>| {
            e.of(&NasInfo {
                ip: ip.map(|a| a.parse().unwrap()),
                identifier: id.map(str::to_owned),
                port: None,
            })
        };
        assert_eq!(of(Some("192.0.2.2"), None), Some([2, 0, 0, 0, 0x1b, 2]));
        assert_eq!(
            of(Some("10.255.0.9"), Some("nas-9")),
            Some([2, 0, 0, 0, 0x1b, 9]),
            "by identifier when the address is not mapped"
        );
        assert_eq!(of(Some("10.255.0.9"), None), None);
        assert_eq!(of(None, None), None);
        let mac = "entry_mac = \"02:00:00:00:1b:07\"";
        for (body, key, why) in [
            (mac.to_string(), "radius.nas[2]", "name the NAS"),
            (
                format!("address = \"10.255.0\"\n{mac}"),
                "radius.nas[2].address",
                "not an IPv4",
            ),
            (
                "address = \"10.255.0.1\"\nentry_mac = \"02:00:00:1b:01\"".into(),
                "radius.nas[2].entry_mac",
                "not a MAC",
            ),
            (
                "address = \"10.255.0.1\"\nentry_mac = \"01:00:5e:00:00:01\"".into(),
                "radius.nas[2].entry_mac",
                "multicast",
            ),
            (
                format!("identifier = \"\"\n{mac}"),
                "radius.nas[2].identifier",
                "empty",
            ),
            (
                format!("address = \"192.0.2.1\"\n{mac}"),
                "radius.nas[2].address",
                "already radius.nas[0]",
            ),
        ] {
            let e = err_of(&nas(&body));
            assert!(
                e.starts_with("bad.toml: ") && e.contains(key) && e.contains(why),
                "{key}: {e}"
            );
        }
    }

    /// Hash flooding: the GW's flow-hash seed is drawn from the OS at every
    /// build (every start), never the constant of `GwConfig::default()`.
    #[test]
    fn every_gw_build_draws_a_new_flow_hash_seed() {
        let p = Profile::parse(&demo("gw1.toml"), "gw1.toml").unwrap();
        let seeds: Vec<u64> = (0..4)
            .map(|_| gw::build(&p).unwrap().cfg.hash_seed)
            .collect();
        let fixed = pgw_pipelines::gw::config::GwConfig::default().hash_seed;
        for (i, s) in seeds.iter().enumerate() {
            assert_ne!(*s, fixed, "the default seed");
            assert!(!seeds[..i].contains(s), "seed repeated: {seeds:x?}");
        }
    }
}
