//! Prometheus metrics: `GET /metrics` on `[metrics] listen`, in the
//! Prometheus text format (version 0.0.4) written by `prometheus-client`.
//!
//! The management thread owns the listener and polls it with the control
//! socket: nothing here blocks (non-blocking sockets, a few connections at
//! most, each dropped after [`CONN_TIMEOUT`]), and nothing runs on a worker
//! core. A scrape renders a [`Snapshot`] of what the management thread
//! already reads for `pgw stats`, `pgw stats --runtime`, `pgw accounting`,
//! `pgw sessions` and `pgw ctl servers|neighbors`: the workers' published
//! counters, never anything of theirs that is being written.
//!
//! Counters are the engine's own cumulative counts (`_total`, never reset:
//! the runtime counters are the totals since start, whatever
//! `pgw ctl runtime-clear` did to the `--runtime` window); gauges are
//! levels (link up, mbufs in use, sessions by state, health).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use pgw_pipelines::mgmt::MgmtCounters;

use crate::mgmt::acctlog::AcctLogStats;
use crate::runtime::stats::{Report, RuntimeReport};

/// The `Content-Type` of a scrape (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// A connection that has not sent its request, or not taken its answer,
/// within this long is closed (`pgw_metrics_http_timeouts_total`).
pub const CONN_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at accept
/// (`pgw_metrics_http_refused_total`).
pub const MAX_CONNS: usize = 16;
/// Longest request head read.
const MAX_REQUEST: usize = 8192;

/// The RADIUS side's counters (a management instance).
#[derive(Clone, Debug, Default)]
pub struct RadiusMetrics {
    pub counters: MgmtCounters,
    /// Datagrams from an address that is no configured client.
    pub unknown_client: u64,
    /// Replies the socket refused to send.
    pub send_errors: u64,
    /// Session log records written.
    pub session_log: u64,
    /// Control-protocol datagrams sent to other gateways.
    pub control_sent: u64,
    /// Sessions reported at a NAS that `[[radius.nas]]` does not map.
    pub moves_unmapped: u64,
    /// Sessions by FIG. 11 state name (`act`, `dormant`, ...).
    pub sessions_by_state: Vec<(&'static str, u64)>,
}

/// A health-checked target (server-group member or LB gateway).
#[derive(Clone, Debug, Default)]
pub struct HealthMetric {
    pub group: String,
    pub name: String,
    /// "ipv4" or "ipv6": a member's side (LB gateways: "ipv4").
    pub family: &'static str,
    pub up: bool,
    pub probes: u64,
    pub passes: u64,
    pub changes: u64,
}

/// Everything one scrape shows, as the management thread read it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub version: String,
    pub report: Report,
    /// Runtime accounting since start (the counters).
    pub runtime: RuntimeReport,
    /// Runtime accounting over the `pgw stats --runtime` window (the gauges).
    pub runtime_window: RuntimeReport,
    /// Accounting records drained from the workers.
    pub acct_records: u64,
    pub acctlog: Option<AcctLogStats>,
    pub radius: Option<RadiusMetrics>,
    /// Subscriber sessions in the GW's table (IPv4 entries), by where they
    /// came from: `static`, `radius`, `control`.
    pub gw_sessions: Vec<(&'static str, u64)>,
    /// Server-group members as the GW's table has them (group, member, up).
    pub members: Vec<(String, String, bool)>,
    /// LB gateways (name, up).
    pub lb_gateways: Vec<(String, bool)>,
    pub health: Vec<HealthMetric>,
    pub neighbours: u64,
    pub neighbours_learned: u64,
    pub neighbours_refused: u64,
    pub neighbours_unverified: u64,
    /// Subscribers the management side re-pointed to another entry point.
    pub entry_repoints: u64,
    pub arp_requests: u64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// Control protocol (a GW receiving sessions): accepted, and refused by reason.
    pub ctl_accepted: Option<u64>,
    pub ctl_rejected: Vec<(String, u64)>,
    pub http: HttpCounters,
}

/// The endpoint's own counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpCounters {
    pub ok: u64,
    pub not_found: u64,
    pub bad_method: u64,
    pub bad_request: u64,
    pub refused: u64,
    pub timeouts: u64,
}

/// The stages' named values that are levels, not counts: (event, gauge, help).
const LEVELS: [(&str, &str, &str); 5] = [
    (
        "gw_open_flows",
        "gw_open_flows",
        "Connections a worker has open.",
    ),
    (
        "gw_held",
        "gw_held_flows",
        "Closed connections a worker holds (their key and server kept for the close hold).",
    ),
    (
        "gw_entries_in_use",
        "gw_entries_in_use",
        "Flow entries a worker uses (open or on hold) of gw.max_flows_per_worker.",
    ),
    (
        "gw_half_open",
        "gw_half_open_flows",
        "TCP connections a worker has in SynSent (no answer from the server yet): gw.syn_proxy = \"auto\" proxies while they reach the worker's share of gw.syn_proxy_half_open.",
    ),
    (
        "gw_frag_contexts",
        "gw_frag_contexts",
        "IPv4 fragment reassembly contexts a worker has live, of gw.frag_contexts.",
    ),
];

type Labels = Vec<(&'static str, String)>;
/// A family read off one row type: name, help, the value of a row.
type Field<T, V> = (&'static str, &'static str, fn(&T) -> V);
/// The same with a unit.
type UnitField<T, V> = (&'static str, &'static str, Option<Unit>, fn(&T) -> V);
/// A family read off one row type whose value is a list (one per port).
type ListField<T> = (&'static str, &'static str, fn(&T) -> &[u64]);

/// One metric family: its descriptor, then a sample per label set (none:
/// the family is left out).
fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    rows: Vec<(Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let mut m = enc.encode_descriptor(name, help, unit.as_ref(), first.1.metric_type())?;
    for (labels, v) in &rows {
        v.encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A family per field, its samples what `samples` makes of the field's
/// getter.
fn per_field<T, V, M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    fields: &[Field<T, V>],
    samples: impl Fn(fn(&T) -> V) -> Vec<(Labels, M)>,
) -> Result<(), std::fmt::Error> {
    for (name, help, f) in fields {
        family(enc, name, help, None, samples(*f))?;
    }
    Ok(())
}

/// A counter family per field, a sample per row (labelled by `labels`).
fn counters<T>(
    enc: &mut DescriptorEncoder,
    rows: &[T],
    labels: impl Fn(&T) -> Labels,
    fields: &[Field<T, u64>],
) -> Result<(), std::fmt::Error> {
    per_field(enc, fields, |f| {
        rows.iter().map(|r| counter(labels(r), f(r))).collect()
    })
}

/// Families of one unlabelled counter each: (name, help, value).
fn scalar_counters(
    enc: &mut DescriptorEncoder,
    rows: &[(&str, &str, u64)],
) -> Result<(), std::fmt::Error> {
    for (name, help, v) in rows {
        family(enc, name, help, None, vec![counter(vec![], *v)])?;
    }
    Ok(())
}

fn counter(labels: Labels, v: u64) -> (Labels, ConstCounter<u64>) {
    (labels, ConstCounter::new(v))
}

fn gauge<N>(labels: Labels, v: N) -> (Labels, ConstGauge<N>) {
    (labels, ConstGauge::new(v))
}

fn l1(k: &'static str, v: impl ToString) -> Labels {
    vec![(k, v.to_string())]
}

fn l2(k1: &'static str, v1: impl ToString, k2: &'static str, v2: impl ToString) -> Labels {
    vec![(k1, v1.to_string()), (k2, v2.to_string())]
}

fn flag(b: bool) -> i64 {
    b as i64
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = &self.report;
        family(
            &mut e,
            "info",
            "The instance: pgw version, role, name and DPDK version (always 1).",
            None,
            vec![gauge(
                vec![
                    ("version", self.version.clone()),
                    ("role", r.role.clone()),
                    ("instance", r.instance.clone()),
                    ("dpdk", r.dpdk.clone()),
                ],
                1i64,
            )],
        )?;
        family(
            &mut e,
            "uptime",
            "Time since the engine started.",
            Some(Unit::Seconds),
            vec![gauge(vec![], r.uptime_ms as f64 / 1000.0)],
        )?;
        family(
            &mut e,
            "mbufs_in_use",
            "Mbufs of the pool in use (in rings, queues, descriptors, bursts).",
            None,
            vec![gauge(vec![], r.mbufs_in_use as i64)],
        )?;
        family(
            &mut e,
            "mbufs_available",
            "Mbufs of the pool free.",
            None,
            vec![gauge(vec![], r.mbufs_available as i64)],
        )?;
        family(
            &mut e,
            "control_frames",
            "Frames the workers handed to the management thread (ARP, probe answers).",
            None,
            vec![counter(vec![], r.control_rx)],
        )?;

        // Ports: the PMD's counters, and the kernel interface's behind a virtual device.
        let port = |f: &dyn Fn(&crate::runtime::stats::PortReport) -> u64| {
            r.ports
                .iter()
                .map(|p| counter(l1("port", &p.name), f(p)))
                .collect::<Vec<_>>()
        };
        family(
            &mut e,
            "port_up",
            "Link state of a port (1 up).",
            None,
            r.ports
                .iter()
                .map(|p| gauge(l2("port", &p.name, "driver", &p.driver), flag(p.link_up)))
                .collect(),
        )?;
        type P = crate::runtime::stats::PortReport;
        let ports: [UnitField<P, u64>; 8] = [
            (
                "port_rx_packets",
                "Packets received by a port (PMD).",
                None,
                |p| p.pmd.ipackets,
            ),
            (
                "port_tx_packets",
                "Packets sent by a port (PMD).",
                None,
                |p| p.pmd.opackets,
            ),
            (
                "port_rx",
                "Bytes received by a port (PMD).",
                Some(Unit::Bytes),
                |p| p.pmd.ibytes,
            ),
            (
                "port_tx",
                "Bytes sent by a port (PMD).",
                Some(Unit::Bytes),
                |p| p.pmd.obytes,
            ),
            (
                "port_rx_missed_packets",
                "Packets a port dropped for lack of RX descriptors (imissed).",
                None,
                |p| p.pmd.imissed,
            ),
            (
                "port_rx_errors",
                "Erroneous packets received by a port (ierrors).",
                None,
                |p| p.pmd.ierrors,
            ),
            (
                "port_tx_errors",
                "Packets a port failed to send (oerrors).",
                None,
                |p| p.pmd.oerrors,
            ),
            (
                "port_rx_nombuf",
                "RX mbuf allocation failures of a port.",
                None,
                |p| p.pmd.rx_nombuf,
            ),
        ];
        for (name, help, unit, f) in ports {
            family(&mut e, name, help, unit, port(&f))?;
        }
        let kernel: [Field<P, Option<u64>>; 3] = [
            (
                "port_kernel_rx_dropped_packets",
                "Drops counted by the kernel interface behind a virtual port (rx_dropped).",
                |p| p.kernel_rx_dropped,
            ),
            (
                "port_kernel_tx_dropped_packets",
                "Drops counted by the kernel interface behind a virtual port (tx_dropped).",
                |p| p.kernel_tx_dropped,
            ),
            (
                "port_kernel_rx_missed_packets",
                "Misses counted by the kernel interface behind a virtual port (rx_missed).",
                |p| p.kernel_rx_missed,
            ),
        ];
        per_field(&mut e, &kernel, |f| {
            r.ports
                .iter()
                .filter_map(|p| {
                    let iface = p.kernel_iface.as_deref().unwrap_or("");
                    f(p).map(|v| counter(l2("port", &p.name, "iface", iface), v))
                })
                .collect()
        })?;

        // Workers: their published counters.
        type W = crate::runtime::stats::WorkerReport;
        let workers: [Field<W, u64>; 9] = [
            (
                "worker_rx_packets",
                "Packets a worker took in (ports and handoff ring).",
                |w| w.loops.rx,
            ),
            ("worker_tx_packets", "Packets a worker sent.", |w| {
                w.loops.tx
            }),
            (
                "worker_handoff_out_packets",
                "Packets a worker handed to the worker owning their key.",
                |w| w.loops.handoff_out,
            ),
            (
                "worker_handoff_in_packets",
                "Packets a worker took from its handoff ring.",
                |w| w.loops.handoff_in,
            ),
            (
                "worker_rx_chained_frames",
                "Frames a worker received over several mbufs (engine.mbuf_size below their length).",
                |w| w.loops.rx_chained,
            ),
            (
                "worker_control_packets",
                "Packets a worker handed to the management thread.",
                |w| w.loops.control_out,
            ),
            ("worker_polls", "Poll-loop turns of a worker.", |w| {
                w.loops.polls
            }),
            (
                "worker_empty_polls",
                "Poll-loop turns that received nothing.",
                |w| w.loops.empty_polls,
            ),
            (
                "worker_idle_sleeps",
                "Idle back-off sleeps of a worker.",
                |w| w.loops.idle_sleeps,
            ),
        ];
        counters(&mut e, &r.workers, |w| l1("worker", w.worker), &workers)?;
        let worker_ports: [ListField<W>; 2] = [
            (
                "worker_port_rx_packets",
                "Packets a worker received on a port.",
                |w| &w.port_rx,
            ),
            (
                "worker_port_tx_packets",
                "Packets a worker sent on a port.",
                |w| &w.port_tx,
            ),
        ];
        for (name, help, f) in worker_ports {
            let rows = r
                .workers
                .iter()
                .flat_map(|w| {
                    f(w).iter()
                        .zip(&r.ports)
                        .map(|(v, p)| counter(l2("worker", w.worker, "port", &p.name), *v))
                })
                .collect();
            family(&mut e, name, help, None, rows)?;
        }
        family(
            &mut e,
            "drops",
            "Packets dropped, by worker and reason (every reason, zeros included).",
            None,
            r.workers
                .iter()
                .flat_map(|w| {
                    w.drops
                        .iter()
                        .map(|(reason, v)| counter(l2("worker", w.worker, "reason", reason), *v))
                })
                .collect(),
        )?;
        family(
            &mut e,
            "events",
            "Events of the pipeline's stages (GW connections opened, closed, revived, ...), by worker.",
            None,
            r.workers
                .iter()
                .flat_map(|w| {
                    w.events
                        .iter()
                        .filter(|(ev, _)| !LEVELS.iter().any(|(l, _, _)| l == ev))
                        .map(|(ev, v)| counter(l2("worker", w.worker, "event", ev), *v))
                })
                .collect(),
        )?;
        for (ev, name, help) in LEVELS {
            let rows = r
                .workers
                .iter()
                .filter_map(|w| {
                    w.events
                        .iter()
                        .find(|(n, _)| n == ev)
                        .map(|(_, v)| gauge(l1("worker", w.worker), *v as i64))
                })
                .collect();
            family(&mut e, name, help, None, rows)?;
        }

        // Runtime accounting (`pgw stats --runtime`).
        let rt = &self.runtime;
        family(
            &mut e,
            "tsc_frequency_hertz",
            "TSC ticks per second: the unit of the cycle counters.",
            None,
            vec![gauge(vec![], rt.tsc_hz as i64)],
        )?;
        type R = crate::runtime::stats::WorkerRuntime;
        let loops: [Field<R, u64>; 5] = [
            (
                "worker_busy_cycles",
                "TSC cycles of loop turns that moved packets.",
                |w| w.busy_cycles,
            ),
            (
                "worker_idle_cycles",
                "TSC cycles of loop turns that moved nothing.",
                |w| w.idle_cycles,
            ),
            ("worker_turns", "Loop turns (runtime accounting).", |w| {
                w.turns
            }),
            ("worker_busy_turns", "Loop turns that moved packets.", |w| {
                w.busy_turns
            }),
            (
                "worker_runtime_packets",
                "Packets the runtime accounting counted (its cycles per packet divide by these).",
                |w| w.packets,
            ),
        ];
        counters(&mut e, &rt.workers, |w| l1("worker", w.worker), &loops)?;
        type S = crate::runtime::stats::StageReport;
        let stages: [Field<S, u64>; 3] = [
            ("stage_calls", "Calls of a worker's stage.", |s| s.calls),
            ("stage_packets", "Packets through a worker's stage.", |s| {
                s.packets
            }),
            (
                "stage_cycles",
                "TSC cycles spent in a worker's stage (engine.runtime_stages).",
                |s| s.cycles,
            ),
        ];
        per_field(&mut e, &stages, |f| {
            rt.workers
                .iter()
                .flat_map(|w| {
                    w.stages
                        .iter()
                        .map(move |s| counter(l2("worker", w.worker, "stage", &s.name), f(s)))
                })
                .collect()
        })?;
        let win = &self.runtime_window;
        let window: [UnitField<R, f64>; 3] = [
            (
                "worker_busy",
                "Busy share of a worker's cycles over the runtime window (since start or pgw ctl runtime-clear); rate() of the cycle counters gives it over any window.",
                Some(Unit::Other("ratio".into())),
                |w| w.busy_pct / 100.0,
            ),
            (
                "worker_busy_cycles_per_packet",
                "Busy TSC cycles per packet of a worker over the runtime window.",
                None,
                |w| w.busy_cycles_per_pkt,
            ),
            (
                "worker_capacity_mpps",
                "What a worker would carry busy all the time at its cost per packet over the runtime window (millions of packets per second).",
                None,
                |w| w.capacity_mpps,
            ),
        ];
        for (name, help, unit, f) in window {
            let rows = win
                .workers
                .iter()
                .map(|w| gauge(l1("worker", w.worker), f(w)))
                .collect();
            family(&mut e, name, help, unit, rows)?;
        }
        family(
            &mut e,
            "stage_cycles_per_packet",
            "TSC cycles per packet of a worker's stage over the runtime window.",
            None,
            win.workers
                .iter()
                .flat_map(|w| {
                    w.stages.iter().map(move |s| {
                        gauge(l2("worker", w.worker, "stage", &s.name), s.cycles_per_pkt)
                    })
                })
                .collect(),
        )?;

        // Accounting.
        family(
            &mut e,
            "accounting_records",
            "Accounting records (closed connections) drained from the workers.",
            None,
            vec![counter(vec![], self.acct_records)],
        )?;
        if let Some(a) = &self.acctlog {
            let rows: [(&str, &str, u64); 10] = [
                (
                    "accounting_writer_submitted_rows",
                    "Accounting rows handed to the writer.",
                    a.submitted,
                ),
                (
                    "accounting_writer_queue_full",
                    "Rows (accounting or session log) refused: the writer's queue was full.",
                    a.queue_full,
                ),
                (
                    "accounting_writer_rows_written",
                    "Accounting rows committed to SQLite.",
                    a.rows_written,
                ),
                (
                    "accounting_writer_sessions_written",
                    "Session log rows committed to SQLite.",
                    a.sessions_written,
                ),
                (
                    "accounting_writer_batches",
                    "SQLite transactions committed.",
                    a.batches,
                ),
                (
                    "accounting_writer_db_errors",
                    "Failed SQLite commits (each retried).",
                    a.db_errors,
                ),
                (
                    "accounting_writer_ipfix_messages",
                    "IPFIX messages sent.",
                    a.ipfix_messages,
                ),
                (
                    "accounting_writer_ipfix_records",
                    "IPFIX data records exported.",
                    a.ipfix_records,
                ),
                (
                    "accounting_writer_ipfix_errors",
                    "IPFIX messages the socket refused.",
                    a.ipfix_errors,
                ),
                (
                    "accounting_writer_lost_on_stop",
                    "Rows still uncommitted when the writer stopped.",
                    a.lost_on_stop,
                ),
            ];
            scalar_counters(&mut e, &rows)?;
        }

        // RADIUS and sessions (a management instance).
        if let Some(rad) = &self.radius {
            let c = &rad.counters;
            let rows: Vec<(&str, &str, u64)> = vec![
                ("access", "accept", c.access_accept),
                ("access", "unknown_user", c.reject_unknown_user),
                ("access", "bad_password", c.reject_bad_password),
                ("access", "device_mismatch", c.reject_device_mismatch),
                ("access", "no_password", c.reject_no_password),
                ("access", "no_address", c.reject_no_address),
                ("accounting", "entered", c.acct_entered),
                ("accounting", "started", c.acct_started),
                ("accounting", "restarted", c.acct_restarted),
                ("accounting", "interim", c.acct_interim),
                ("accounting", "stopped", c.acct_stopped),
                ("accounting", "closed", c.acct_closed),
                ("accounting", "nas_on_off", c.acct_nas_on_off),
                ("accounting", "no_device", c.acct_no_device),
                ("accounting", "no_address", c.acct_no_address),
                ("accounting", "unknown_session", c.acct_unknown_session),
                ("accounting", "session_mismatch", c.acct_session_mismatch),
                ("accounting", "ignored", c.acct_ignored),
                (
                    "accounting",
                    "unknown_status_type",
                    c.acct_unknown_status_type,
                ),
                ("accounting", "deferred", c.acct_deferred),
                ("other", "duplicate", c.duplicate),
                ("other", "malformed", c.malformed),
                ("other", "unsupported_code", c.unsupported_code),
                ("other", "bad_authenticator", c.bad_authenticator),
                (
                    "other",
                    "missing_message_authenticator",
                    c.missing_message_authenticator,
                ),
            ];
            family(
                &mut e,
                "radius_requests",
                "RADIUS requests by type (access, accounting; other: refused before either) and result.",
                None,
                rows.into_iter()
                    .map(|(t, res, v)| counter(l2("type", t, "result", res), v))
                    .collect(),
            )?;
            let more: [(&str, &str, u64); 7] = [
                (
                    "radius_nas_moves",
                    "Sessions an accounting request reported at another NAS than their own.",
                    c.nas_moves,
                ),
                (
                    "radius_nas_moves_unmapped",
                    "Of those, moves to a NAS no [[radius.nas]] maps to an entry point (nothing re-pointed).",
                    rad.moves_unmapped,
                ),
                (
                    "radius_unknown_client_datagrams",
                    "RADIUS datagrams from an address that is no configured client (dropped).",
                    rad.unknown_client,
                ),
                (
                    "radius_send_errors",
                    "RADIUS replies the socket refused.",
                    rad.send_errors,
                ),
                (
                    "radius_hold_expired",
                    "Addresses returned to the pool because no Accounting Start came.",
                    c.hold_expired,
                ),
                (
                    "session_log_records",
                    "Session log records written (closed sessions).",
                    rad.session_log,
                ),
                (
                    "control_messages_sent",
                    "Control-protocol datagrams sent to gateway instances.",
                    rad.control_sent,
                ),
            ];
            scalar_counters(&mut e, &more)?;
            family(
                &mut e,
                "sessions",
                "Subscriber sessions of the session manager by FIG. 11 state.",
                None,
                rad.sessions_by_state
                    .iter()
                    .map(|(s, n)| gauge(l1("state", s), *n as i64))
                    .collect(),
            )?;
        }
        family(
            &mut e,
            "gw_sessions",
            "Subscriber sessions in the GW's table (IPv4 entries) by source.",
            None,
            self.gw_sessions
                .iter()
                .map(|(s, n)| gauge(l1("source", s), *n as i64))
                .collect(),
        )?;
        if let Some(acc) = self.ctl_accepted {
            let mut rows = vec![counter(l1("result", "accepted"), acc)];
            rows.extend(
                self.ctl_rejected
                    .iter()
                    .map(|(why, n)| counter(l1("result", why), *n)),
            );
            family(
                &mut e,
                "control_messages_received",
                "Control-protocol datagrams received: accepted, or refused by reason.",
                None,
                rows,
            )?;
        }

        // Health of members and gateways.
        family(
            &mut e,
            "server_member_up",
            "A server-group member the GW may choose for new connections (1) or not (0).",
            None,
            self.members
                .iter()
                .map(|(g, m, up)| gauge(l2("group", g, "member", m), flag(*up)))
                .collect(),
        )?;
        family(
            &mut e,
            "lb_gateway_up",
            "A gateway the LB sends its ranges to (1) or fails over from (0).",
            None,
            self.lb_gateways
                .iter()
                .map(|(g, up)| gauge(l1("gateway", g), flag(*up)))
                .collect(),
        )?;
        let hl = |h: &HealthMetric| {
            let mut l = l2("group", &h.group, "member", &h.name);
            l.push(("family", h.family.to_string()));
            l
        };
        family(
            &mut e,
            "health_up",
            "Verdict of the health check of a target (group \"gateway\": LB gateways).",
            None,
            self.health
                .iter()
                .map(|h| gauge(hl(h), flag(h.up)))
                .collect(),
        )?;
        let health: [Field<HealthMetric, u64>; 3] = [
            ("health_probes", "Health probes sent to a target.", |h| {
                h.probes
            }),
            (
                "health_probe_passes",
                "Health probes a target answered in time.",
                |h| h.passes,
            ),
            (
                "health_changes",
                "Up/down changes of a target's verdict.",
                |h| h.changes,
            ),
        ];
        counters(&mut e, &self.health, hl, &health)?;

        // Neighbours, reloads, this endpoint.
        let rest: [(&str, &str, u64); 5] = [
            (
                "neighbours_unverified",
                "Unsolicited ARP frames or advertisements claiming another MAC for a learnt member: not applied, the member asked for instead.",
                self.neighbours_unverified,
            ),
            (
                "gw_entry_repoints",
                "Subscribers re-pointed to another entry point because RADIUS reported them at another NAS.",
                self.entry_repoints,
            ),
            (
                "neighbours_learned",
                "Server-side neighbours learned or changed by ARP.",
                self.neighbours_learned,
            ),
            (
                "neighbours_refused",
                "ARP frames not learned from: wrong port or an address not resolved there.",
                self.neighbours_refused,
            ),
            (
                "arp_requests_sent",
                "ARP requests the management thread sent for next hops.",
                self.arp_requests,
            ),
        ];
        scalar_counters(&mut e, &rest)?;
        family(
            &mut e,
            "neighbours",
            "Server-side neighbours learned by ARP.",
            None,
            vec![gauge(vec![], self.neighbours as i64)],
        )?;
        family(
            &mut e,
            "config_reloads",
            "pgw ctl reload requests by result (ok, error: the profile was refused and nothing changed).",
            None,
            vec![
                counter(l1("result", "ok"), self.reloads_ok),
                counter(l1("result", "error"), self.reloads_failed),
            ],
        )?;
        let h = &self.http;
        family(
            &mut e,
            "metrics_http_requests",
            "Requests to this endpoint by status code.",
            None,
            [
                ("200", h.ok),
                ("400", h.bad_request),
                ("404", h.not_found),
                ("405", h.bad_method),
            ]
            .into_iter()
            .map(|(code, v)| counter(l1("code", code), v))
            .collect(),
        )?;
        scalar_counters(
            &mut e,
            &[
                (
                    "metrics_http_refused_connections",
                    "Connections to this endpoint closed at accept (too many open).",
                    h.refused,
                ),
                (
                    "metrics_http_timeouts",
                    "Connections to this endpoint closed for sending or reading too slowly.",
                    h.timeouts,
                ),
            ],
        )?;
        Ok(())
    }
}

/// The text of a scrape.
pub fn render(s: Snapshot) -> String {
    let mut reg = Registry::with_prefix("pgw");
    reg.register_collector(Box::new(s));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
    out
}

/// One HTTP connection: its request head so far, then its answer.
struct Conn {
    s: TcpStream,
    head: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    since: Instant,
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

fn parse_request(head: &[u8]) -> Request {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut w = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (w.next(), w.next(), w.next()) else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || w.next().is_some() {
        return Request::Bad;
    }
    if method != "GET" {
        return Request::BadMethod;
    }
    let path = target.split('?').next().unwrap_or("");
    if path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

fn response(status: &str, content_type: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn head_complete(b: &[u8]) -> bool {
    b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n")
}

/// The `/metrics` listener (non-blocking; polled by the management thread).
pub struct Server {
    listener: TcpListener,
    conns: Vec<Conn>,
    pub counters: HttpCounters,
}

impl Server {
    /// Listen on `addr` (`metrics.listen`).
    pub fn bind(addr: &str) -> Result<Server, String> {
        let listener =
            TcpListener::bind(addr).map_err(|err| format!("metrics.listen {addr}: {err}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|err| format!("metrics.listen {addr}: {err}"))?;
        Ok(Server {
            listener,
            conns: Vec::new(),
            counters: HttpCounters::default(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept, read and answer what is pending, without waiting for
    /// anything. `render` is called (at most once) when a complete request
    /// asks for `/metrics`, with this endpoint's counters. True if any
    /// connection made progress.
    pub fn poll(&mut self, render: impl FnOnce(HttpCounters) -> String) -> bool {
        let mut busy = false;
        while let Ok((s, _)) = self.listener.accept() {
            busy = true;
            if self.conns.len() >= MAX_CONNS || s.set_nonblocking(true).is_err() {
                self.counters.refused += 1;
                continue;
            }
            self.conns.push(Conn {
                s,
                head: Vec::new(),
                out: Vec::new(),
                sent: 0,
                since: Instant::now(),
            });
        }
        let mut render = Some(render);
        let mut body: Option<String> = None;
        let mut i = 0;
        while i < self.conns.len() {
            let c = &mut self.conns[i];
            let mut done = false;
            if c.out.is_empty() {
                let mut buf = [0u8; 2048];
                loop {
                    match c.s.read(&mut buf) {
                        Ok(0) => {
                            // Closed before a whole request.
                            done = true;
                            break;
                        }
                        Ok(n) => {
                            busy = true;
                            c.head.extend_from_slice(&buf[..n]);
                            if c.head.len() > MAX_REQUEST || head_complete(&c.head) {
                                break;
                            }
                        }
                        Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                        Err(err) => {
                            done = err.kind() != ErrorKind::WouldBlock;
                            break;
                        }
                    }
                }
                if !done && (c.head.len() > MAX_REQUEST || head_complete(&c.head)) {
                    let req = if head_complete(&c.head) {
                        parse_request(&c.head)
                    } else {
                        Request::Bad
                    };
                    let plain = "text/plain; charset=utf-8";
                    c.out = match req {
                        Request::Metrics => {
                            self.counters.ok += 1;
                            if body.is_none() {
                                let f = render.take().expect("rendered once");
                                body = Some(f(self.counters));
                            }
                            response("200 OK", CONTENT_TYPE, body.as_deref().unwrap_or(""), "")
                        }
                        Request::NotFound => {
                            self.counters.not_found += 1;
                            response("404 Not Found", plain, "not found: try /metrics\n", "")
                        }
                        Request::BadMethod => {
                            self.counters.bad_method += 1;
                            response(
                                "405 Method Not Allowed",
                                plain,
                                "only GET\n",
                                "Allow: GET\r\n",
                            )
                        }
                        Request::Bad => {
                            self.counters.bad_request += 1;
                            response("400 Bad Request", plain, "bad request\n", "")
                        }
                    };
                }
            }
            if !c.out.is_empty() && !done {
                loop {
                    match c.s.write(&c.out[c.sent..]) {
                        Ok(0) => {
                            done = true;
                            break;
                        }
                        Ok(n) => {
                            busy = true;
                            c.sent += n;
                            if c.sent == c.out.len() {
                                let _ = c.s.shutdown(std::net::Shutdown::Write);
                                done = true;
                                break;
                            }
                        }
                        Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                        Err(err) => {
                            done = err.kind() != ErrorKind::WouldBlock;
                            break;
                        }
                    }
                }
            }
            if !done && c.since.elapsed() > CONN_TIMEOUT {
                self.counters.timeouts += 1;
                done = true;
            }
            if done {
                self.conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
        busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::dpdk::PortStats;
    use crate::runtime::stats::{
        LoopCounters, PortReport, StageReport, WorkerReport, WorkerRuntime,
    };

    fn snapshot() -> Snapshot {
        let worker = WorkerReport {
            worker: 0,
            loops: LoopCounters {
                rx: 100,
                tx: 90,
                ..Default::default()
            },
            port_rx: vec![60, 40],
            port_tx: vec![40, 50],
            drops: vec![("no_route".into(), 7), ("no_session".into(), 3)],
            events: vec![("gw_new_flows".into(), 5), ("gw_open_flows".into(), 2)],
            ..Default::default()
        };
        let port = |name: &str, rx: u64| PortReport {
            name: name.into(),
            driver: "net_tap".into(),
            link_up: true,
            pmd: PortStats {
                ipackets: rx,
                ibytes: rx * 100,
                ..Default::default()
            },
            kernel_iface: Some(format!("t{name}")),
            kernel_rx_dropped: Some(2),
            ..Default::default()
        };
        let wrt = WorkerRuntime {
            worker: 0,
            busy_cycles: 9000,
            idle_cycles: 1000,
            busy_pct: 90.0,
            packets: 100,
            busy_cycles_per_pkt: 90.0,
            stages: vec![StageReport {
                name: "rx".into(),
                calls: 4,
                packets: 100,
                cycles: 3000,
                cycles_per_pkt: 30.0,
                pkts_per_call: 25.0,
            }],
            ..Default::default()
        };
        let runtime = RuntimeReport {
            tsc_hz: 2_000_000_000,
            workers: vec![wrt],
            ..Default::default()
        };
        Snapshot {
            version: "0.1.0".into(),
            report: Report {
                instance: "gw1".into(),
                role: "gw".into(),
                dpdk: "DPDK 22.11.4".into(),
                uptime_ms: 1500,
                ports: vec![port("access", 60), port("servers", 40)],
                workers: vec![worker],
                ..Default::default()
            },
            runtime: runtime.clone(),
            runtime_window: runtime,
            acct_records: 4,
            acctlog: Some(AcctLogStats {
                rows_written: 4,
                ..Default::default()
            }),
            radius: Some(RadiusMetrics {
                counters: MgmtCounters {
                    access_accept: 2,
                    reject_bad_password: 1,
                    acct_started: 2,
                    ..Default::default()
                },
                sessions_by_state: vec![("act", 2), ("dormant", 1)],
                ..Default::default()
            }),
            gw_sessions: vec![("static", 1), ("radius", 2)],
            members: vec![("wap".into(), "w1".into(), true)],
            lb_gateways: vec![("gw2".into(), false)],
            health: vec![
                HealthMetric {
                    group: "wap".into(),
                    name: "w1".into(),
                    family: "ipv4",
                    up: true,
                    probes: 10,
                    passes: 9,
                    changes: 1,
                },
                HealthMetric {
                    group: "wap".into(),
                    name: "w1".into(),
                    family: "ipv6",
                    up: false,
                    probes: 7,
                    passes: 3,
                    changes: 2,
                },
            ],
            reloads_ok: 1,
            reloads_failed: 2,
            ctl_accepted: Some(3),
            ctl_rejected: vec![("bad_hmac".into(), 1)],
            ..Default::default()
        }
    }

    /// The families of a scrape: name → type, and every sample line.
    fn parse(text: &str) -> (Vec<(String, String)>, Vec<String>) {
        let mut types = Vec::new();
        let mut samples = Vec::new();
        for l in text.lines() {
            if let Some(t) = l.strip_prefix("# TYPE ") {
                let mut w = t.split(' ');
                types.push((w.next().unwrap().into(), w.next().unwrap().into()));
            } else if !l.starts_with('#') && !l.is_empty() {
                samples.push(l.to_string());
            }
        }
        (types, samples)
    }

    #[test]
    fn scrape_has_names_types_and_labels() {
        let text = render(snapshot());
        let (types, samples) = parse(&text);
        let ty = |n: &str| {
            types
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, t)| t.as_str())
                .unwrap_or_else(|| panic!("no family {n} in\n{text}"))
        };
        let has = |line: &str| {
            assert!(
                samples.iter().any(|s| s == line),
                "no sample {line:?} in\n{text}"
            )
        };
        // Every family is prefixed, every counter ends in _total, and has HELP.
        for (name, t) in &types {
            assert!(name.starts_with("pgw_"), "{name}");
            assert_eq!(t == "counter", name.ends_with("_total"), "{name} {t}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}: no HELP");
        }
        assert_eq!(ty("pgw_info"), "gauge");
        has(r#"pgw_info{version="0.1.0",role="gw",instance="gw1",dpdk="DPDK 22.11.4"} 1"#);
        assert_eq!(ty("pgw_uptime_seconds"), "gauge");
        has("pgw_uptime_seconds 1.5");
        assert_eq!(ty("pgw_port_rx_packets_total"), "counter");
        has(r#"pgw_port_rx_packets_total{port="access"} 60"#);
        has(r#"pgw_port_rx_bytes_total{port="servers"} 4000"#);
        has(r#"pgw_port_up{port="access",driver="net_tap"} 1"#);
        has(r#"pgw_port_kernel_rx_dropped_packets_total{port="access",iface="taccess"} 2"#);
        has(r#"pgw_worker_rx_packets_total{worker="0"} 100"#);
        has(r#"pgw_worker_port_tx_packets_total{worker="0",port="servers"} 50"#);
        assert_eq!(ty("pgw_drops_total"), "counter");
        has(r#"pgw_drops_total{worker="0",reason="no_route"} 7"#);
        has(r#"pgw_drops_total{worker="0",reason="no_session"} 3"#);
        has(r#"pgw_events_total{worker="0",event="gw_new_flows"} 5"#);
        // A level among the events is a gauge of its own, not a counter.
        assert!(!text.contains(r#"event="gw_open_flows""#), "{text}");
        assert_eq!(ty("pgw_gw_open_flows"), "gauge");
        has(r#"pgw_gw_open_flows{worker="0"} 2"#);
        has(r#"pgw_worker_busy_cycles_total{worker="0"} 9000"#);
        has(r#"pgw_stage_cycles_total{worker="0",stage="rx"} 3000"#);
        assert_eq!(ty("pgw_worker_busy_ratio"), "gauge");
        has(r#"pgw_worker_busy_ratio{worker="0"} 0.9"#);
        has(r#"pgw_worker_busy_cycles_per_packet{worker="0"} 90.0"#);
        has(r#"pgw_stage_cycles_per_packet{worker="0",stage="rx"} 30.0"#);
        has("pgw_accounting_records_total 4");
        has("pgw_accounting_writer_rows_written_total 4");
        has(r#"pgw_radius_requests_total{type="access",result="accept"} 2"#);
        has(r#"pgw_radius_requests_total{type="access",result="bad_password"} 1"#);
        has(r#"pgw_radius_requests_total{type="accounting",result="started"} 2"#);
        assert_eq!(ty("pgw_sessions"), "gauge");
        has(r#"pgw_sessions{state="act"} 2"#);
        has(r#"pgw_sessions{state="dormant"} 1"#);
        has(r#"pgw_gw_sessions{source="radius"} 2"#);
        has(r#"pgw_control_messages_received_total{result="bad_hmac"} 1"#);
        has(r#"pgw_server_member_up{group="wap",member="w1"} 1"#);
        has(r#"pgw_lb_gateway_up{gateway="gw2"} 0"#);
        has(r#"pgw_health_up{group="wap",member="w1",family="ipv4"} 1"#);
        has(r#"pgw_health_probes_total{group="wap",member="w1",family="ipv4"} 10"#);
        // A member's IPv6 side is a series of its own.
        has(r#"pgw_health_up{group="wap",member="w1",family="ipv6"} 0"#);
        has(r#"pgw_health_changes_total{group="wap",member="w1",family="ipv6"} 2"#);
        has(r#"pgw_config_reloads_total{result="ok"} 1"#);
        has(r#"pgw_config_reloads_total{result="error"} 2"#);
        has(r#"pgw_metrics_http_requests_total{code="200"} 0"#);
        // The 0.0.4 text format: no OpenMetrics terminator.
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn families_without_data_are_left_out() {
        let text = render(Snapshot::default());
        assert!(text.contains("pgw_info{"), "{text}");
        for absent in ["pgw_radius_requests_total", "pgw_sessions", "pgw_health_up"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
    }

    #[test]
    fn requests() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::BadMethod
        );
        assert_eq!(parse_request(b"hello\r\n\r\n"), Request::Bad);
    }

    /// A real socket: a scrape, a 404, and a client that never sends its
    /// request does not hold the others up.
    #[test]
    fn server_answers_without_blocking() {
        let mut srv = Server::bind("127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let idle = TcpStream::connect(addr).unwrap();
        let ask = |req: &'static str| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(req.as_bytes()).unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                out
            })
        };
        let a = ask("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        let b = ask("GET /nothing HTTP/1.1\r\n\r\n");
        let start = Instant::now();
        let mut renders = 0;
        while !(a.is_finished() && b.is_finished()) {
            let t = Instant::now();
            srv.poll(|c| {
                renders += 1;
                render(Snapshot {
                    http: c,
                    ..Default::default()
                })
            });
            assert!(t.elapsed() < Duration::from_millis(200), "poll blocked");
            assert!(start.elapsed() < Duration::from_secs(10), "no answer");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(
            a.contains("\r\nContent-Type: text/plain; version=0.0.4"),
            "{a}"
        );
        let body = a.split("\r\n\r\n").nth(1).unwrap();
        assert!(body.contains("pgw_info{"), "{a}");
        assert!(
            body.contains(r#"pgw_metrics_http_requests_total{code="200"} 1"#),
            "{a}"
        );
        assert!(a.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(b.starts_with("HTTP/1.1 404 Not Found\r\n"), "{b}");
        assert_eq!(renders, 1);
        assert_eq!((srv.counters.ok, srv.counters.not_found), (1, 1));
        drop(idle);
    }
}
