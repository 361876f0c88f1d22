//! The management thread: serves the control socket, takes the frames
//! workers hand it (`Verdict::Control`) off the control ring, resolves the
//! GW's next hops by ARP (in-band, through worker 0's TX path, since the
//! kernel does not own DPDK ports), publishes new table snapshots, and drains
//! the workers' accounting queues.
//!
//! It is not an EAL lcore: it is a plain thread pinned with `core_affinity`
//! to `[cores] management` when the profile names one. It never blocks a
//! worker: workers only enqueue to its rings and queues (a full one is
//! counted by the worker), and read its tables as whole snapshots.

pub mod acctlog;
pub mod control;
pub mod metrics;
pub mod radius;
pub mod telemetry;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pgw_pipelines::gw::acct::AcctRecord;
use pgw_pipelines::gw::tables::{MemberSide, Neighbours};
use pgw_pipelines::ndp;
use pgw_pipelines::pipeline::Tables;
use pgw_pipelines::wire::arp::ArpPacket;
use pgw_pipelines::wire::ether::{ethertype, EthernetFrame};
use serde::Serialize;

use pgw_pipelines::health::{Addr, HealthParams, ProbeKind, Prober, Source, Target};
use pgw_pipelines::PortIdx;

use crate::config::gw::{GwBuild, LbBuild};
use crate::config::{parse_mac, HealthCfg, Profile};
use crate::runtime::link::MgmtLink;

/// Drop reasons an operator must hear of when they happen (resources
/// exhausted, queues full, subscribers over their limits), beyond the
/// counters.
const WARN_DROPS: [pgw_pipelines::DropReason; 8] = [
    pgw_pipelines::DropReason::NatPoolExhausted,
    pgw_pipelines::DropReason::FlowTableFull,
    pgw_pipelines::DropReason::TxFull,
    pgw_pipelines::DropReason::HandoffFull,
    pgw_pipelines::DropReason::ControlFull,
    pgw_pipelines::DropReason::NoServer,
    pgw_pipelines::DropReason::SubscriberConnLimit,
    pgw_pipelines::DropReason::SubscriberRateLimit,
];

/// Events that are refusals answered by a RST (`exhaustion_reply = "rst"`):
/// warned of like the drops they replace.
const WARN_EVENTS: [&str; 3] = [
    "gw_acct_queue_full",
    "gw_rst_nat_pool_exhausted",
    "gw_rst_flow_table_full",
];

/// The rate limit of repeated-event warnings: counters seen at the last
/// look; a counter that grew is logged once with its growth.
struct RepeatLog {
    every: Duration,
    last: Instant,
    seen: HashMap<&'static str, u64>,
}

impl RepeatLog {
    fn new(every: Duration) -> RepeatLog {
        RepeatLog {
            every,
            last: Instant::now(),
            seen: HashMap::new(),
        }
    }

    /// Log each of `counters` that grew since the last call (the first
    /// call only records them).
    fn look(&mut self, counters: impl IntoIterator<Item = (&'static str, u64)>) {
        for (name, v) in counters {
            let before = self.seen.insert(name, v);
            if let Some(b) = before {
                if v > b {
                    tracing::warn!(
                        counter = name,
                        delta = v - b,
                        total = v,
                        "{name}: {} more in the last {} s (total {v})",
                        v - b,
                        self.every.as_secs()
                    );
                }
            }
        }
    }
}

/// How often unresolved next hops are asked for again.
const ARP_RETRY: Duration = Duration::from_millis(250);
/// A reply within this long after the GW asked for a member answers it.
const ANSWER_WINDOW: Duration = Duration::from_secs(1);
/// Accounting records kept in memory for `pgw accounting`.
const ACCT_KEEP: usize = 1024;

pub struct Management {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    socket: PathBuf,
}

/// An IPv4 address as the IPv4-mapped IPv6 address (one key space for
/// [`GwMgmt::asked`]).
fn mapped(ip: [u8; 4]) -> [u8; 16] {
    std::net::Ipv4Addr::from(ip).to_ipv6_mapped().octets()
}

/// The GW part of the management state.
struct GwMgmt {
    server_port: PortIdx,
    server_mac: [u8; 6],
    arp_src: [u8; 4],
    members: Vec<[u8; 4]>,
    static_neigh: Vec<([u8; 4], [u8; 6])>,
    static_neigh6: Vec<([u8; 16], [u8; 6])>,
    learned: HashMap<[u8; 4], [u8; 6]>,
    /// IPv6 members resolved by neighbour discovery, from the first
    /// `gw.pool6` address (none: no solicitations).
    members6: Vec<[u8; 16]>,
    ns_src: Option<[u8; 16]>,
    learned6: HashMap<[u8; 16], [u8; 6]>,
    last_arp: Option<Instant>,
    /// Learnt members are asked for again every `refresh`
    /// (`gw.neighbour_refresh_s`); the last time they were.
    refresh: Duration,
    last_refresh: Instant,
    /// When the GW last asked for each member (ARP request, NS) and no
    /// reply came yet: the first reply within [`ANSWER_WINDOW`] of it
    /// answers it and may change a learnt MAC.
    asked: HashMap<[u8; 16], Instant>,
    /// Members to ask for at once: an unsolicited frame claimed another
    /// MAC for them (their owner's answer decides).
    recheck: Vec<[u8; 16]>,
    service_names: Vec<(u8, String)>,
    /// `gw.nat64.prefix` (accounting rows of NAT64 connections).
    nat64_prefix: Option<pgw_pipelines::xlat::rfc6052::Prefix>,
}

impl GwMgmt {
    /// Whether a frame about `ip` (a reply: an ARP reply, an advertisement
    /// with the Solicited flag) answers the GW's own request: the first
    /// reply within [`ANSWER_WINDOW`] of asking; it closes the request.
    fn answered(&mut self, ip: &[u8; 16], reply: bool) -> bool {
        let a = reply
            && self
                .asked
                .get(ip)
                .is_some_and(|t| t.elapsed() <= ANSWER_WINDOW);
        if a {
            self.asked.remove(ip);
        }
        a
    }
}

/// What a server-side frame claiming that member `ip` is at `mac` did.
enum Claim {
    /// The MAC it already had.
    Same,
    /// Learnt: a first sighting, or the answer to the GW's own request.
    Learnt,
    /// Another MAC, unsolicited: not applied.
    Unverified,
}

/// Apply a claim to a family's learnt table (`answer`: it answers the GW's
/// own request).
fn claim<K: Eq + std::hash::Hash>(
    learned: &mut HashMap<K, [u8; 6]>,
    ip: K,
    mac: [u8; 6],
    answer: bool,
) -> Claim {
    match learned.get(&ip) {
        Some(m) if *m == mac => Claim::Same,
        Some(_) if !answer => Claim::Unverified,
        _ => {
            learned.insert(ip, mac);
            Claim::Learnt
        }
    }
}

#[derive(Serialize)]
struct AcctRow {
    device_id: String,
    subscriber: String,
    representative: String,
    service: String,
    server: String,
    nat: String,
    proto: u8,
    start_ms: u64,
    end_ms: u64,
    up_pkts: u64,
    up_bytes: u64,
    down_pkts: u64,
    down_bytes: u64,
    attribute: String,
    close: String,
}

struct State {
    /// The profile file, for `reload`.
    profile_path: PathBuf,
    link: MgmtLink,
    gw: Option<GwMgmt>,
    acct_total: u64,
    acct_recent: VecDeque<AcctRecord>,
    neighbours_learned: u64,
    /// ARP frames not learned from: wrong port or an address not resolved
    /// there (neighbour poisoning attempts among them).
    neighbours_refused: u64,
    /// Unsolicited ARP frames or advertisements claiming another MAC for a
    /// learnt member: not applied; the member is asked for instead.
    neighbours_unverified: u64,
    arp_sent: u64,
    /// Neighbor Solicitations sent for IPv6 members.
    ns_sent: u64,
    /// LB gateway names by id.
    lb_gateways: Option<Vec<String>>,
    /// Health checks (servers for the GW, gateways for the LB).
    probers: Vec<Prober>,
    /// SQLite + IPFIX writer of accounting records and the session log.
    acctlog: Option<crate::mgmt::acctlog::AcctLogger>,
    proxy_accounting: bool,
    /// Sessions: the profile's static ones, this instance's RADIUS ones, and
    /// those a management instance sent (merged in that order).
    static_sessions: crate::mgmt::radius::Sessions4and6,
    radius_sessions: crate::mgmt::radius::Sessions4and6,
    remote_sessions: crate::mgmt::radius::Sessions4and6,
    remote_devices: HashMap<u64, String>,
    /// The entry point (LB MAC) the management instance last named for
    /// each subscriber of the remote table (`entry_mac`): a change is a move.
    remote_entries: HashMap<[u8; 4], [u8; 6]>,
    /// Subscribers re-pointed to another entry point because RADIUS
    /// reported them at another NAS (this instance's or a remote manager's).
    entry_repoints: u64,
    /// Control-protocol listener (a gateway instance).
    ctl: Option<(std::net::UdpSocket, pgw_pipelines::mgmt::ctlproto::Receiver)>,
    /// The RADIUS server and session manager, when the profile has one.
    radius: Option<crate::mgmt::radius::RadiusSide>,
    /// Runtime counters at the last `runtime-clear` (per worker), and when.
    runtime_base: Vec<pgw_pipelines::runtime::Runtime>,
    runtime_since: Instant,
    runtime_timed: bool,
    /// The Prometheus endpoint (`[metrics]`).
    metrics: Option<metrics::Server>,
    /// `reload` requests applied, and refused (nothing changed).
    reloads_ok: u64,
    reloads_failed: u64,
    repeat_log: RepeatLog,
}

fn ipstr(a: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

impl State {
    /// The workers' runtime counters since start or the last clear.
    fn runtime_report(&self) -> crate::runtime::stats::RuntimeReport {
        crate::runtime::stats::RuntimeReport::new(
            self.link.tsc_hz(),
            self.runtime_since.elapsed().as_secs_f64(),
            self.runtime_timed,
            &self.link.runtime(),
            &self.runtime_base,
        )
    }

    fn service_name(&self, id: Option<u8>) -> String {
        let Some(id) = id else { return "-".into() };
        self.gw
            .as_ref()
            .and_then(|g| {
                g.service_names
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map(|(_, n)| n.clone())
            })
            .unwrap_or_else(|| id.to_string())
    }

    /// Handle frames from the workers; true if any.
    fn control_frames(&mut self) -> bool {
        let mut changed = false;
        let mut health_changes = Vec::new();
        let mut out: Vec<(PortIdx, Vec<u8>)> = Vec::new();
        let (probers, gw) = (&mut self.probers, &mut self.gw);
        let (learned, refused, unverified) = (
            &mut self.neighbours_learned,
            &mut self.neighbours_refused,
            &mut self.neighbours_unverified,
        );
        let n = self.link.recv(|port, f| {
            for pr in probers.iter_mut() {
                health_changes
                    .extend(pr.on_frame(port, f, &mut |port, frame| out.push((port, frame))));
            }
            let Ok(eth) = EthernetFrame::new_checked(f) else {
                return;
            };
            // What a claim did: counted; an unverified one asked about.
            let mut tally = |c: Claim, key: [u8; 16], g: &mut GwMgmt| match c {
                Claim::Same => {}
                Claim::Unverified => {
                    *unverified += 1;
                    g.recheck.push(key);
                }
                Claim::Learnt => {
                    *learned += 1;
                    changed = true;
                }
            };
            if let (Some(g), Some((ip, mac, solicited))) = (gw.as_mut(), ndp::advertisement(f)) {
                // The same rule as for ARP: IPv6 members are learnt only
                // from the server port and only for their own addresses.
                if port != Some(g.server_port) || !g.members6.contains(&ip) {
                    *refused += 1;
                    return;
                }
                let answer = g.answered(&ip, solicited);
                let c = claim(&mut g.learned6, ip, mac, answer);
                tally(c, ip, g);
                return;
            }
            if eth.ethertype() != ethertype::ARP {
                return;
            }
            let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
                return;
            };
            if let Some(g) = gw.as_mut() {
                let (ip, mac) = (arp.sender_protocol_addr(), arp.sender_hardware_addr());
                // Server-side entries come only from the server port and
                // only for the members resolved there: an ARP reply from
                // the access side (or for another address) changes nothing.
                if port != Some(g.server_port) || !g.members.contains(&ip) {
                    *refused += 1;
                    return;
                }
                // A learnt MAC changes only by a reply to the GW's own
                // request; an unsolicited claim (a gratuitous ARP, a stray
                // reply) makes the GW ask, and the owner's reply decides.
                let reply = eth.payload().get(6..8) == Some(&[0, 2][..]);
                let key = mapped(ip);
                let answer = g.answered(&key, reply);
                let c = claim(&mut g.learned, ip, mac, answer);
                tally(c, key, g);
            }
        });
        if n == 0 {
            return false;
        }
        if changed {
            self.publish_neighbours();
        }
        self.link
            .send(out.iter().map(|(port, f)| (*port, f.as_slice())));
        for c in health_changes {
            self.apply_health(c);
        }
        true
    }

    /// Run the health checks' timers; publish what changed.
    fn health_tick(&mut self) {
        if self.probers.is_empty() {
            return;
        }
        let now_ms = self.link.timebase().now_ms();
        let cur = self.link.tables.load();
        let neigh = cur.gw.as_ref().map(|g| g.neighbours.clone());
        let mut out: Vec<(PortIdx, Vec<u8>)> = Vec::new();
        let mut changes = Vec::new();
        for pr in &mut self.probers {
            let mac_of = |a: Addr| {
                neigh.as_ref().and_then(|n| match a {
                    Addr::V4(ip) => n.get(ip),
                    Addr::V6(ip) => n.get6(&ip),
                })
            };
            changes.extend(pr.tick(now_ms, mac_of, &mut |port, f| out.push((port, f))));
        }
        self.link
            .send(out.iter().map(|(port, f)| (*port, f.as_slice())));
        for c in changes {
            self.apply_health(c);
        }
    }

    fn apply_health(&mut self, c: pgw_pipelines::health::Change) {
        let (group, name, up) = (&c.group, &c.name, c.up);
        let r = if group == "gateway" {
            if let Some(rad) = self.radius.as_mut() {
                rad.set_gw_up(name, up);
            }
            self.set_gateway(name, up)
        } else if c.v6 {
            self.set_server6(group, name, up)
        } else {
            self.set_server(group, name, up)
        };
        let family = if c.v6 { "ipv6" } else { "ipv4" };
        tracing::warn!(
            group = %group,
            member = %name,
            family,
            state = if up { "UP" } else { "DOWN" },
            "health: {group}/{name} ({family}) is now {} ({r})",
            if up { "UP" } else { "DOWN" }
        );
    }

    fn publish_neighbours(&self) {
        let Some(g) = &self.gw else { return };
        let cur = self.link.tables.load();
        let Some(gt) = &cur.gw else { return };
        // Static entries win over learned ones.
        let mut all: HashMap<[u8; 4], [u8; 6]> = g.learned.clone();
        all.extend(g.static_neigh.iter().copied());
        let mut all6: HashMap<[u8; 16], [u8; 6]> = g.learned6.clone();
        all6.extend(g.static_neigh6.iter().copied());
        let next = Tables {
            gw: Some(gt.with_neighbours(Neighbours::new(all).with_v6(all6))),
            ..(**cur).clone()
        };
        self.link.tables.store(Arc::new(next));
    }

    /// Ask (again) for every member whose MAC is unknown, and every
    /// `refresh` for the learnt ones too (broadcast ARP, multicast NS: a
    /// member whose MAC changed answers from its new one). Static entries
    /// are never asked for.
    fn resolve(&mut self) {
        let Some(g) = self.gw.as_mut() else { return };
        if g.last_arp.is_some_and(|t| t.elapsed() < ARP_RETRY) {
            return;
        }
        let now = Instant::now();
        g.last_arp = Some(now);
        let refresh = g.last_refresh.elapsed() >= g.refresh;
        if refresh {
            g.last_refresh = now;
        }
        let recheck = std::mem::take(&mut g.recheck);
        let mut frames = Vec::new();
        for ip in &g.members {
            if (!refresh && g.learned.contains_key(ip) && !recheck.contains(&mapped(*ip)))
                || g.static_neigh.iter().any(|(a, _)| a == ip)
            {
                continue;
            }
            g.asked.insert(mapped(*ip), now);
            let frame = pgw_pipelines::wire::build::arp(
                g.server_mac,
                [0xff; 6],
                1,
                g.server_mac,
                g.arp_src,
                [0; 6],
                *ip,
            );
            let mut padded = frame;
            padded.resize(60, 0);
            frames.push(padded);
        }
        let port = g.server_port;
        self.arp_sent += self.link.send(frames.iter().map(|f| (port, f.as_slice()))) as u64;
        let Some(src) = g.ns_src else { return };
        let solicit: Vec<Vec<u8>> = g
            .members6
            .iter()
            .filter(|ip| refresh || !g.learned6.contains_key(*ip) || recheck.contains(ip))
            .filter(|ip| !g.static_neigh6.iter().any(|(a, _)| a == *ip))
            .map(|ip| ndp::solicitation(g.server_mac, src, *ip))
            .collect();
        for ip in &g.members6 {
            if refresh || !g.learned6.contains_key(ip) || recheck.contains(ip) {
                g.asked.insert(*ip, now);
            }
        }
        self.ns_sent += self.link.send(solicit.iter().map(|f| (port, f.as_slice()))) as u64;
    }

    /// Warn, at most once per `log.repeat_every_s` each, of exhaustion
    /// drops, lost accounting records and refused RADIUS clients.
    fn log_repeats(&mut self) {
        if self.repeat_log.last.elapsed() < self.repeat_log.every
            && !self.repeat_log.seen.is_empty()
        {
            return;
        }
        self.repeat_log.last = Instant::now();
        let r = self.link.report();
        let mut c: Vec<(&'static str, u64)> = WARN_DROPS
            .iter()
            .map(|&d| (d.name(), r.drop_count(d)))
            .collect();
        c.extend(WARN_EVENTS.iter().map(|&e| (e, r.event(e))));
        if let Some(rad) = &self.radius {
            c.push(("radius_unknown_client", rad.unknown_client()));
        }
        self.repeat_log.look(c);
    }

    /// The engine's clock on the wall clock, measured now.
    fn wall_clock(&self) -> crate::mgmt::acctlog::WallClock {
        let (us_per_ms, at_zero_us) = self.link.timebase().wall();
        crate::mgmt::acctlog::WallClock {
            us_per_ms,
            at_zero_us,
        }
    }

    fn drain_acct(&mut self) {
        let wall = self.wall_clock();
        for q in &self.link.acct {
            while let Some(r) = q.pop() {
                self.acct_total += 1;
                if let Some(log) = &self.acctlog {
                    let dev = self
                        .radius
                        .as_ref()
                        .and_then(|x| x.devices.get(&r.device_id).cloned())
                        .or_else(|| self.remote_devices.get(&r.device_id).cloned())
                        .unwrap_or_else(|| r.device_id.to_string());
                    let svc = self.service_name(r.service.map(|s| s.0));
                    let nat64 = self.gw.as_ref().and_then(|g| g.nat64_prefix.as_ref());
                    log.submit(
                        crate::mgmt::acctlog::AcctRow::from_record(
                            &r,
                            dev,
                            svc,
                            &wall,
                            self.proxy_accounting,
                        )
                        .with_nat64_prefix(nat64),
                    );
                }
                if self.acct_recent.len() == ACCT_KEEP {
                    self.acct_recent.pop_front();
                }
                self.acct_recent.push_back(r);
            }
        }
    }

    fn answer(&mut self, req: &str) -> String {
        match req {
            "servers" => {
                let cur = self.link.tables.load();
                let groups: Vec<serde_json::Value> = cur
                    .gw
                    .as_ref()
                    .map(|g| {
                        g.services
                            .groups()
                            .enumerate()
                            .map(|(gi, grp)| {
                                let svc = &g.services;
                                serde_json::json!({
                                    "group": grp.name,
                                    "service": self.service_name(Some(grp.service.0)),
                                    "policy": format!("{:?}", grp.policy),
                                    "members": grp.members.iter().enumerate().map(|(mi, m)| {
                                        let ip6 = svc.member_ip6(gi as u16, mi as u16);
                                        serde_json::json!({
                                            "name": m.name, "ip": ipstr(m.ip), "port": m.port, "weight": m.weight,
                                            "priority": m.priority, "up": m.up,
                                            "ip6": ip6.map(|a| std::net::Ipv6Addr::from(a).to_string()),
                                            "up6": ip6.map(|_| svc.member_up6(gi as u16, mi as u16)),
                                        })
                                    }).collect::<Vec<_>>(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let gateways: Vec<serde_json::Value> = match (&cur.lb, &self.lb_gateways) {
                    (Some(snap), Some(names)) => names
                        .iter()
                        .enumerate()
                        .map(|(i, n)| {
                            let up = snap
                                .table
                                .gateways()
                                .find(|g| g.id == i as u16)
                                .map(|g| g.up);
                            serde_json::json!({ "gateway": n, "up": up })
                        })
                        .collect(),
                    _ => vec![],
                };
                let health: Vec<HealthRow> = self
                    .probers
                    .iter()
                    .flat_map(|p| p.targets.iter())
                    .map(HealthRow::from)
                    .collect();
                serde_json::json!({ "groups": groups, "gateways": gateways, "health": health })
                    .to_string()
            }
            "reload" => self.reload(),
            "sessions" => match &self.radius {
                Some(r) => r.sessions_json(&self.wall_clock()),
                None => "{\"error\":\"this instance has no [radius] section\"}".into(),
            },
            "stats" => serde_json::to_string(&self.link.report()).unwrap_or_default(),
            "runtime" => serde_json::to_string(&self.runtime_report()).unwrap_or_default(),
            "runtime-clear" => {
                self.runtime_base = self.link.runtime().into_iter().map(|(_, r)| r).collect();
                self.runtime_since = Instant::now();
                "{\"ok\":true}".into()
            }
            "accounting" => {
                let rows: Vec<AcctRow> = self
                    .acct_recent
                    .iter()
                    .map(|r| AcctRow {
                        device_id: self
                            .radius
                            .as_ref()
                            .and_then(|x| x.devices.get(&r.device_id).cloned())
                            .unwrap_or_else(|| r.device_id.to_string()),
                        subscriber: endpoint(r.subscriber_ip, r.subscriber_ip6, r.subscriber_port),
                        // (NAT66: the IPv6 VIP, member and key)
                        representative: endpoint(r.rep_ip, r.nat66.map(|n| n.vip), r.rep_port),
                        service: self.service_name(r.service.map(|s| s.0)),
                        server: endpoint(r.server_ip, r.nat66.map(|n| n.server), r.server_port),
                        nat: endpoint(r.nat_ip, r.nat66.map(|n| n.key), r.nat_port),
                        proto: r.proto,
                        start_ms: r.start_ms,
                        end_ms: r.end_ms,
                        up_pkts: r.up_pkts,
                        up_bytes: r.up_bytes,
                        down_pkts: r.down_pkts,
                        down_bytes: r.down_bytes,
                        attribute: String::from_utf8_lossy(&r.attr.buf[..r.attr.len as usize])
                            .into_owned(),
                        close: format!("{:?}", r.close).to_lowercase(),
                    })
                    .collect();
                let log = self
                    .acctlog
                    .as_ref()
                    .map(|l| serde_json::to_value(l.stats()).unwrap_or_default());
                serde_json::json!({ "total": self.acct_total, "recent": rows, "writer": log })
                    .to_string()
            }
            "neighbors" => {
                let t = self.link.tables.load();
                let mac = crate::runtime::stats::mac_string;
                type Pairs = Vec<(String, String)>;
                let (learned, learned6): (Pairs, Pairs) = self
                    .gw
                    .as_ref()
                    .map(|g| {
                        (
                            g.learned
                                .iter()
                                .map(|(ip, m)| (ipstr(*ip), mac(*m)))
                                .collect(),
                            g.learned6
                                .iter()
                                .map(|(ip, m)| (std::net::Ipv6Addr::from(*ip).to_string(), mac(*m)))
                                .collect(),
                        )
                    })
                    .unwrap_or_default();
                serde_json::json!({ "learned": learned, "learned6": learned6, "neighbours_learned": self.neighbours_learned, "neighbours_refused": self.neighbours_refused, "neighbours_unverified": self.neighbours_unverified, "arp_requests_sent": self.arp_sent, "neighbor_solicitations_sent": self.ns_sent, "has_gw_tables": t.gw.is_some() })
                    .to_string()
            }
            other => {
                let w: Vec<&str> = other.split_whitespace().collect();
                match w.as_slice() {
                    ["gateway", name, st @ ("up" | "down")] => self.set_gateway(name, *st == "up"),
                    ["server", group, member, st @ ("up" | "down")] => self.set_server(group, member, *st == "up"),
                    ["server6", group, member, st @ ("up" | "down")] => self.set_server6(group, member, *st == "up"),
                    ["session-history", device] => match &self.radius {
                        Some(r) => r.session_history_json(device, &self.wall_clock()),
                        None => "{\"error\":\"this instance has no [radius] section\"}".into(),
                    },
                    _ => format!(
                        "{{\"error\":\"unknown request {other:?}; try: stats, accounting, neighbors, sessions, session-history DEVICE, gateway NAME up|down, server GROUP MEMBER up|down, server6 GROUP MEMBER up|down\"}}"
                    ),
                }
            }
        }
    }
}

impl State {
    /// Serve the Prometheus endpoint, if any.
    fn poll_metrics(&mut self) {
        let Some(mut srv) = self.metrics.take() else {
            return;
        };
        srv.poll(|http| metrics::render(self.metrics_snapshot(http)));
        self.metrics = Some(srv);
    }

    /// What a scrape shows: the counters and levels the other requests read.
    fn metrics_snapshot(&self, http: metrics::HttpCounters) -> metrics::Snapshot {
        let cur = self.link.tables.load();
        let members = cur
            .gw
            .as_ref()
            .map(|g| {
                g.services
                    .groups()
                    .flat_map(|grp| {
                        grp.members
                            .iter()
                            .map(|m| (grp.name.clone(), m.name.clone(), m.up))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let lb_gateways = match (&cur.lb, &self.lb_gateways) {
            (Some(snap), Some(names)) => names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    snap.table
                        .gateways()
                        .find(|g| g.id == i as u16)
                        .map(|g| (n.clone(), g.up))
                })
                .collect(),
            _ => vec![],
        };
        let health = self
            .probers
            .iter()
            .flat_map(|p| p.targets.iter())
            .map(|t| metrics::HealthMetric {
                group: t.group.clone(),
                name: t.name.clone(),
                family: t.addr.family(),
                up: t.up,
                probes: t.probes,
                passes: t.passes,
                changes: t.changes,
            })
            .collect();
        let gw_sessions = if self.gw.is_some() {
            vec![
                ("static", self.static_sessions.0.len() as u64),
                ("radius", self.radius_sessions.0.len() as u64),
                ("control", self.remote_sessions.0.len() as u64),
            ]
        } else {
            vec![]
        };
        let (ctl_accepted, ctl_rejected) = match &self.ctl {
            Some((_, rx)) => {
                let mut rej: Vec<(String, u64)> =
                    rx.rejected.iter().map(|(k, v)| (k.clone(), *v)).collect();
                rej.sort();
                (Some(rx.accepted), rej)
            }
            None => (None, vec![]),
        };
        metrics::Snapshot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            report: self.link.report(),
            runtime: crate::runtime::stats::RuntimeReport::new(
                self.link.tsc_hz(),
                self.link.timebase().now_ms() as f64 / 1000.0,
                self.runtime_timed,
                &self.link.runtime(),
                &[],
            ),
            runtime_window: self.runtime_report(),
            acct_records: self.acct_total,
            acctlog: self.acctlog.as_ref().map(|l| l.stats()),
            radius: self.radius.as_ref().map(|r| metrics::RadiusMetrics {
                counters: r.counters().clone(),
                unknown_client: r.unknown_client(),
                send_errors: r.send_errors,
                session_log: r.session_log_total,
                control_sent: r.control_sent,
                moves_unmapped: r.moves_unmapped,
                sessions_by_state: r.sessions_by_state(),
            }),
            gw_sessions,
            members,
            lb_gateways,
            health,
            neighbours: self.gw.as_ref().map_or(0, |g| g.learned.len() as u64),
            neighbours_learned: self.neighbours_learned,
            neighbours_refused: self.neighbours_refused,
            neighbours_unverified: self.neighbours_unverified,
            entry_repoints: self.entry_repoints,
            arp_requests: self.arp_sent,
            reloads_ok: self.reloads_ok,
            reloads_failed: self.reloads_failed,
            ctl_accepted,
            ctl_rejected,
            http,
        }
    }

    /// Publish the merged session table to the workers.
    fn publish_sessions(&self) {
        let cur = self.link.tables.load();
        let Some(gt) = &cur.gw else { return };
        let parts = [
            &self.static_sessions,
            &self.remote_sessions,
            &self.radius_sessions,
        ];
        let v4 = parts.iter().flat_map(|p| p.0.iter()).cloned();
        let v6 = parts.iter().flat_map(|p| p.1.iter()).cloned();
        let sessions = pgw_pipelines::gw::tables::Sessions::new(v4).with_v6(v6);
        let next = Tables {
            gw: Some(gt.with_sessions(sessions)),
            ..(**cur).clone()
        };
        self.link.tables.store(Arc::new(next));
    }

    /// Session tables from the management instance (control protocol).
    fn poll_control(&mut self) {
        let Some((sock, rx)) = self.ctl.as_mut() else {
            return;
        };
        let mut buf = [0u8; 65536];
        let mut changed = false;
        let mut moves = Vec::new();
        while let Ok((n, _from)) = sock.recv_from(&mut buf) {
            let Ok(m) = rx.accept(&buf[..n], crate::mgmt::acctlog::unix_ms_now()) else {
                continue;
            };
            let Some(table) = rx.assemble(m) else {
                continue;
            };
            {
                let m = pgw_pipelines::mgmt::ctlproto::Message {
                    sessions: table,
                    ..Default::default()
                };
                let sess = |e: &pgw_pipelines::mgmt::ctlproto::SessionEntry| {
                    pgw_pipelines::gw::tables::SubscriberAuth {
                        device_id: e.device_key,
                        active: e.active,
                        allowed: e.allowed,
                    }
                };
                self.remote_sessions = (
                    m.sessions
                        .iter()
                        .map(|e| (e.addr.octets(), sess(e)))
                        .collect(),
                    m.sessions
                        .iter()
                        .filter_map(|e| e.prefix6.map(|p| (p.octets(), 64, sess(e))))
                        .collect(),
                );
                let mut entries = HashMap::with_capacity(m.sessions.len());
                for e in &m.sessions {
                    self.remote_devices.insert(e.device_key, e.device.clone());
                    let Some(mac) = e.entry_mac.as_deref().and_then(|m| parse_mac(m).ok()) else {
                        continue;
                    };
                    let a = e.addr.octets();
                    if self.remote_entries.get(&a).is_some_and(|old| *old != mac) {
                        moves.push(crate::mgmt::radius::EntryMove {
                            addr: a,
                            prefix6: e.prefix6.map(|p| p.octets()),
                            mac,
                        });
                    }
                    entries.insert(a, mac);
                }
                self.remote_entries = entries;
                changed = true;
            }
        }
        if changed {
            self.publish_sessions();
        }
        self.repoint(&moves);
    }

    /// Subscribers RADIUS reported behind another entry point (IPv4
    /// address, IPv6 /64, LB MAC): written to the GW's moves table, so each
    /// of their connections, on every worker, takes that LB with its next
    /// down packet (even a connection that carries nothing up).
    fn repoint(&mut self, moves: &[crate::mgmt::radius::EntryMove]) {
        if moves.is_empty() {
            return;
        }
        let cur = self.link.tables.load();
        let Some(gt) = &cur.gw else { return };
        for m in moves {
            gt.moves
                .repoint(pgw_pipelines::gw::moves::key_v4(m.addr), m.mac);
            if let Some(p) = &m.prefix6 {
                gt.moves.repoint(pgw_pipelines::gw::moves::key_v6(p), m.mac);
            }
            self.entry_repoints += 1;
        }
    }

    /// Serve RADIUS; publish the GW's session table when it changed.
    fn poll_radius(&mut self) {
        let now_ms = self.link.timebase().now_ms();
        let wall = self.wall_clock();
        let Some(r) = self.radius.as_mut() else {
            return;
        };
        let sessions = r.poll(now_ms);
        let moves = std::mem::take(&mut r.local_moves);
        for rec in std::mem::take(&mut r.pending_log) {
            if let Some(log) = &self.acctlog {
                let user = r.user_of(&rec.session.device_id);
                log.submit_session(crate::mgmt::acctlog::SessionLogRow::from_record(
                    &rec,
                    user,
                    crate::mgmt::acctlog::history_rows(&rec.history, &wall),
                    &wall,
                ));
            }
        }
        if let Some(sessions) = sessions {
            self.radius_sessions = sessions;
            self.publish_sessions();
        }
        self.repoint(&moves);
    }

    /// Re-read the profile: server groups, VIPs, services and static
    /// sessions (GW), users and service orders (RADIUS) change without a
    /// restart; anything else that differs is reported as needing one.
    fn reload(&mut self) -> String {
        let r = self.try_reload();
        match &r {
            Ok(_) => self.reloads_ok += 1,
            Err(_) => self.reloads_failed += 1,
        }
        r.unwrap_or_else(|e| e)
    }

    /// [`State::reload`]: its answer, or the error answer.
    fn try_reload(&mut self) -> Result<String, String> {
        let p = match crate::config::Profile::load(&self.profile_path) {
            Ok(p) => p,
            Err(e) => return Err(serde_json::json!({ "error": e.to_string() }).to_string()),
        };
        let mut applied = Vec::new();
        if p.gw.is_some() {
            match crate::config::gw::build(&p) {
                Ok(b) => {
                    let cur = self.link.tables.load();
                    if let Some(gt) = &cur.gw {
                        // Keep the health checks' verdicts on members that still exist.
                        let mut services = b.services.clone();
                        for t in self.probers.iter().flat_map(|pr| pr.targets.iter()) {
                            if t.group != "gateway" && !t.up {
                                let side = match t.addr {
                                    Addr::V4(_) => MemberSide::V4,
                                    Addr::V6(_) => MemberSide::V6,
                                };
                                if let Ok(s) =
                                    services.with_member_state(&t.group, &t.name, side, false)
                                {
                                    services = s;
                                }
                            }
                        }
                        self.link.tables.store(Arc::new(Tables {
                            gw: Some(gt.with_services(services)),
                            ..(**cur).clone()
                        }));
                        applied.push("gw groups, VIPs and services");
                    }
                    if let Some(g) = self.gw.as_mut() {
                        // (records and `pgw accounting` name services by these)
                        g.service_names = b.service_names.clone();
                    }
                    self.static_sessions = (b.static_sessions, b.static_sessions6);
                    self.publish_sessions();
                    applied.push("static sessions");
                }
                Err(e) => return Err(serde_json::json!({ "error": e.to_string() }).to_string()),
            }
        }
        if let Some(r) = self.radius.as_mut() {
            match r.reload(&p) {
                Ok(local) => {
                    if let Some(l) = local {
                        self.radius_sessions = l;
                        self.publish_sessions();
                    }
                    applied.push("RADIUS users and service orders");
                }
                Err(e) => return Err(serde_json::json!({ "error": e }).to_string()),
            }
        }
        Ok(serde_json::json!({ "ok": true, "applied": applied, "restart_needed_for": "ports, cores, EAL, pool, key ranges, per-subscriber limits, LB ranges, RADIUS listeners and address ranges" }).to_string())
    }

    /// Mark an LB gateway up or down and publish the new LB table.
    fn set_gateway(&self, name: &str, up: bool) -> String {
        let cur = self.link.tables.load();
        let (Some(snap), Some(names)) = (&cur.lb, &self.lb_gateways) else {
            return "{\"error\":\"this instance has no LB table\"}".into();
        };
        let Some(id) = names.iter().position(|n| n == name) else {
            return format!("{{\"error\":\"no gateway {name:?}; gateways: {names:?}\"}}");
        };
        let mut next = snap.clone();
        let ranges = next.table.set_gw_up(id as u16, up);
        self.link.tables.store(Arc::new(Tables {
            lb: Some(next),
            ..(**cur).clone()
        }));
        format!("{{\"ok\":true,\"gateway\":{name:?},\"up\":{up},\"ranges\":{ranges}}}")
    }

    /// Mark a server-group member up or down and publish the new services.
    fn set_server(&self, group: &str, member: &str, up: bool) -> String {
        self.set_member(group, member, MemberSide::V4, up)
    }

    /// Mark a member's IPv6 side up or down (NAT66 balancing only) and
    /// publish the new services.
    fn set_server6(&self, group: &str, member: &str, up: bool) -> String {
        self.set_member(group, member, MemberSide::V6, up)
    }

    fn set_member(&self, group: &str, member: &str, side: MemberSide, up: bool) -> String {
        let cur = self.link.tables.load();
        let Some(gt) = &cur.gw else {
            return "{\"error\":\"this instance has no GW tables\"}".into();
        };
        match gt.services.with_member_state(group, member, side, up) {
            Ok(s) => {
                self.link.tables.store(Arc::new(Tables {
                    gw: Some(gt.with_services(s)),
                    ..(**cur).clone()
                }));
                let family = match side {
                    MemberSide::V4 => "ipv4",
                    MemberSide::V6 => "ipv6",
                };
                format!("{{\"ok\":true,\"group\":{group:?},\"member\":{member:?},\"family\":{family:?},\"up\":{up}}}")
            }
            Err(e) => format!("{{\"error\":{e:?}}}"),
        }
    }
}

impl Management {
    /// Start the management thread of an engine: `link` is its handle on
    /// the running engine, `gw` and `lb` what the profile built for the
    /// roles it runs. Errors name the profile key or the socket at fault.
    pub fn start(
        profile: &Profile,
        link: MgmtLink,
        gw: Option<&GwBuild>,
        lb: Option<&LbBuild>,
    ) -> Result<Management, String> {
        let socket = profile.control_socket();
        let listener = control::bind(&socket)
            .map_err(|err| format!("control socket {}: {err}", socket.display()))?;
        let probers = build_probers(profile, &link, gw, lb);
        let telemetry = telemetry::register()?;
        let gw_static = gw;
        let gw = gw.map(|g| GwMgmt {
            server_port: g.cfg.server_port,
            server_mac: link.port_mac(g.cfg.server_port),
            arp_src: g.cfg.pool.first().copied().unwrap_or([0; 4]),
            members: g.members.clone(),
            static_neigh: g.neighbours.clone(),
            static_neigh6: g.neighbours6.clone(),
            learned: HashMap::new(),
            members6: g.members6.clone(),
            ns_src: g.cfg.pool6.first().copied(),
            learned6: HashMap::new(),
            last_arp: None,
            refresh: g.neighbour_refresh,
            last_refresh: Instant::now(),
            asked: HashMap::new(),
            recheck: Vec::new(),
            service_names: g.service_names.clone(),
            nat64_prefix: g.cfg.nat64.map(|n| n.prefix),
        });
        let mut st = State {
            profile_path: PathBuf::from(&profile.source),
            link,
            gw,
            acct_total: 0,
            acct_recent: VecDeque::new(),
            neighbours_learned: 0,
            neighbours_refused: 0,
            neighbours_unverified: 0,
            arp_sent: 0,
            ns_sent: 0,
            lb_gateways: lb.map(|b| b.gateway_names.clone()),
            radius: radius::RadiusSide::start(profile)?,
            static_sessions: gw_static
                .map(|g| (g.static_sessions.clone(), g.static_sessions6.clone()))
                .unwrap_or_default(),
            radius_sessions: Default::default(),
            remote_sessions: Default::default(),
            remote_devices: HashMap::new(),
            remote_entries: HashMap::new(),
            entry_repoints: 0,
            ctl: match &profile.control {
                Some(c) => {
                    let s = std::net::UdpSocket::bind(&c.listen)
                        .map_err(|err| format!("control.listen {}: {err}", c.listen))?;
                    s.set_nonblocking(true).map_err(|err| err.to_string())?;
                    Some((
                        s,
                        pgw_pipelines::mgmt::ctlproto::Receiver::new(
                            c.secret.as_bytes(),
                            &c.gateway,
                        ),
                    ))
                }
                None => None,
            },
            runtime_base: Vec::new(),
            runtime_since: Instant::now(),
            runtime_timed: profile.engine.runtime_stages,
            repeat_log: RepeatLog::new(Duration::from_secs(profile.log.repeat_every_s as u64)),
            metrics: match &profile.metrics {
                Some(m) => Some(metrics::Server::bind(&m.listen)?),
                None => None,
            },
            reloads_ok: 0,
            reloads_failed: 0,
            probers,
            acctlog: match &profile.accounting {
                Some(a) => Some(
                    crate::mgmt::acctlog::AcctLogger::start(crate::mgmt::acctlog::AcctLogConfig {
                        sqlite_path: a.sqlite.clone(),
                        ipfix_collector: a.ipfix_collector.as_ref().and_then(|c| c.parse().ok()),
                        batch_rows: a.batch_rows,
                        batch_ms: a.batch_ms,
                        ipfix: crate::mgmt::acctlog::ipfix::ExporterConfig {
                            template_every_ms: a.ipfix_template_s.saturating_mul(1000),
                            ..Default::default()
                        },
                        ..Default::default()
                    })
                    .map_err(|err| format!("accounting: {err}"))?,
                ),
                None => None,
            },
            proxy_accounting: profile
                .accounting
                .as_ref()
                .map(|a| a.proxy_accounting)
                .unwrap_or(true),
        };
        let core = profile.cores.management;
        let poll = Duration::from_millis(profile.engine.mgmt_poll_ms as u64);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("pgw-mgmt".into())
            .spawn(move || {
                if let Some(c) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: c as usize }) {
                        tracing::warn!(cpu = c, "could not pin the management thread");
                    }
                }
                while !stop2.load(Relaxed) {
                    let busy = st.control_frames();
                    st.poll_radius();
                    st.poll_control();
                    st.health_tick();
                    st.resolve();
                    st.drain_acct();
                    st.log_repeats();
                    control::serve_pending(&listener, |req| st.answer(req));
                    while let Ok(r) = telemetry.try_recv() {
                        let _ = r.reply.try_send(st.answer(r.control));
                    }
                    st.poll_metrics();
                    if !busy {
                        std::thread::sleep(poll);
                    }
                }
                st.drain_acct();
            })
            .map_err(|err| format!("spawning the management thread: {err}"))?;
        Ok(Management {
            stop,
            handle: Some(handle),
            socket,
        })
    }

    /// Stop the thread (it drains the accounting queues one last time and
    /// flushes the accounting writer), wait for it, remove the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        telemetry::stop();
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Management {
    /// A management side dropped without [`Management::stop`] (an error
    /// path) stops the same way.
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A health target as `pgw ctl servers` shows it.
#[derive(Serialize)]
struct HealthRow {
    group: String,
    name: String,
    /// "ipv4" or "ipv6": which side of a member the target checks.
    family: &'static str,
    ip: String,
    up: bool,
    passes_in_row: u32,
    fails_in_row: u32,
    probes: u64,
    passes: u64,
    changes: u64,
    last_result: String,
}

impl From<&Target> for HealthRow {
    fn from(t: &Target) -> HealthRow {
        HealthRow {
            group: t.group.clone(),
            name: t.name.clone(),
            family: t.addr.family(),
            ip: t.ip.clone(),
            up: t.up,
            passes_in_row: t.passes_in_row,
            fails_in_row: t.fails_in_row,
            probes: t.probes,
            passes: t.passes,
            changes: t.changes,
            last_result: t.last_result.clone(),
        }
    }
}

fn health_params(h: &HealthCfg) -> HealthParams {
    HealthParams {
        interval_ms: (h.interval_s * 1000.0) as u64,
        timeout_ms: (h.timeout_s * 1000.0) as u64,
        rise: h.rise,
        fall: h.fall,
    }
}

/// Health checks from the profile: TCP probes of every server-group member
/// (GW) at its IPv4 address and, with `gw.pool6`, at its IPv6 address if it
/// has one (from the first `gw.pool6` address, the source of its NAT66
/// connections); ARP probes of every gateway with an address (LB).
fn build_probers(
    profile: &Profile,
    link: &MgmtLink,
    gw: Option<&GwBuild>,
    lb: Option<&LbBuild>,
) -> Vec<Prober> {
    let mut v = Vec::new();
    if let (Some(g), Some(gc)) = (gw, profile.gw.as_ref()) {
        if let (Some(h), Some((lo, hi))) = (gc.health, g.cfg.reserved_ports) {
            let mut pr = Prober::new(
                health_params(&h),
                Source {
                    port: g.cfg.server_port,
                    mac: link.port_mac(g.cfg.server_port),
                    ip: g.cfg.pool[0],
                    ip6: g.cfg.pool6.first().copied(),
                },
                (lo, hi),
            );
            let svc = &g.services;
            for (gi, grp) in svc.groups().enumerate() {
                for (mi, m) in grp.members.iter().enumerate() {
                    let Some(port) = m.port.or(h.port) else {
                        continue;
                    };
                    pr.add(
                        &grp.name,
                        &m.name,
                        Addr::V4(m.ip),
                        ProbeKind::Tcp(port),
                        m.up,
                    );
                    let (gi, mi) = (gi as u16, mi as u16);
                    if let (Some(ip6), false) = (svc.member_ip6(gi, mi), g.cfg.pool6.is_empty()) {
                        let up6 = svc.member_up6(gi, mi);
                        pr.add(&grp.name, &m.name, Addr::V6(ip6), ProbeKind::Tcp(port), up6);
                    }
                }
            }
            v.push(pr);
        }
    }
    if let (Some(b), Some(lc)) = (lb, profile.lb.as_ref()) {
        if let Some(h) = lc.health {
            let lan = b.cfg.lan_port as usize;
            let src_ip = profile.ports[lan]
                .ipv4
                .first()
                .and_then(|c| crate::config::parse_cidr(c).ok())
                .map(|(a, _)| a.octets());
            if let Some(ip) = src_ip {
                let mut pr = Prober::new(
                    health_params(&h),
                    Source {
                        port: b.cfg.lan_port,
                        mac: link.port_mac(b.cfg.lan_port),
                        ip,
                        ip6: None,
                    },
                    (0, 0),
                );
                for gw in &lc.gateways {
                    if let Some(a) = gw
                        .ip
                        .as_ref()
                        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
                    {
                        pr.add(
                            "gateway",
                            &gw.name,
                            Addr::V4(a.octets()),
                            ProbeKind::Arp,
                            gw.up,
                        );
                    }
                }
                v.push(pr);
            }
        }
    }
    v
}

/// `a:port`, or `[a6]:port` where the IPv6 address `a6` is given.
fn endpoint(a: [u8; 4], a6: Option<[u8; 16]>, port: u16) -> String {
    match a6 {
        Some(a6) => format!("[{}]:{port}", std::net::Ipv6Addr::from(a6)),
        None => format!("{}:{port}", ipstr(a)),
    }
}
