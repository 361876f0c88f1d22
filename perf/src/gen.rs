//! The generator's poll loop: one lcore drives both ports.
//!
//! Per turn (TSC read once): the **reflector** answers every frame that
//! arrived on the servers port and sends it back on the queue it came from;
//! the **access receiver** maps each answer to its connection, records the
//! round-trip latency from the timestamp it carries and advances the
//! connection (SYN-ACK → ACK or data or close, FIN-ACK → last ACK, ...);
//! then the **sender** transmits, per queue in bursts, the answers that
//! connections owe first and new traffic as the token bucket allows. A frame
//! the TX queue refuses (back-pressure) is not counted as sent: the answers
//! are queued again, data packets are simply not sent.
//!
//! Modes:
//! * `established`: open every connection (SYN → SYN-ACK → ACK; UDP: one
//!   datagram echoed), then pump data packets over the open connections in a
//!   strided order at the rate; latency and rates are taken in a window after
//!   a warm-up.
//! * `cps`: connection churn: a free connection is opened (SYN), then `data`
//!   data packets are echoed one after the other, then it is closed (RST, or
//!   FIN → FIN-ACK → last ACK) and goes back to the free list; the rate is
//!   new connections per second. UDP connections send `max(data, 1)`
//!   datagrams.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use hdrhistogram::Histogram;
use pgw_engine::runtime::dpdk::{self, Burst, Mempool, PortId, RxQueue, TxQueue, MAX_BURST};
use pgw_pipelines::wire::build::checksums_ok;
use pgw_pipelines::PortIdx;
use serde_json::{json, Value};

use crate::frame::{self, flags, peek, reflect, Reflect, SizeMix, Template, PROTO_TCP, PROTO_UDP};
use crate::plan::Plan;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    Rst,
    Fin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Established,
    Cps { data: u16, close: Close },
}

#[derive(Clone, Debug)]
pub struct GenCfg {
    pub plan: Plan,
    pub mode: Mode,
    pub sizes: SizeMix,
    /// `established`: up data packets per second; `cps`: new connections per
    /// second. 0 = as fast as the ports take them.
    pub rate: f64,
    /// `established`: SYNs per second while opening; 0 = as fast as possible.
    pub open_rate: f64,
    /// `established`: most SYNs sent and not yet answered.
    pub window: u32,
    pub open_timeout_s: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub drain_s: f64,
    /// Destination MAC of up frames (the gateway's access port).
    pub gw_mac: [u8; 6],
    pub queues: u16,
    pub burst: usize,
    /// Verify the IPv4 and L4 checksums of every answer (costs time).
    pub verify: bool,
}

/// Both ports, and every queue of each: the generator's one lcore polls
/// them all.
pub struct Ports {
    pub access: PortId,
    pub servers: PortId,
    pub access_rx: Vec<RxQueue>,
    pub access_tx: Vec<TxQueue>,
    pub servers_rx: Vec<RxQueue>,
    pub servers_tx: Vec<TxQueue>,
    pub access_mac: [u8; 6],
    pub servers_mac: [u8; 6],
}

// Connection states (one byte each).
const IDLE: u8 = 0;
const SYN_SENT: u8 = 1;
const OPEN: u8 = 2;
const CLOSING: u8 = 3;

// Kinds of up packets.
const K_SYN: u8 = 0;
const K_ACK: u8 = 1;
const K_DATA: u8 = 2;
const K_FIN: u8 = 3;
const K_LAST_ACK: u8 = 4;
const K_RST: u8 = 5;
const K_UDP_FIRST: u8 = 6;
const K_UDP: u8 = 7;
const KINDS: usize = 8;
const KIND_NAMES: [&str; KINDS] = [
    "syn",
    "ack",
    "data",
    "fin",
    "last_ack",
    "rst",
    "udp_first",
    "udp",
];

/// The kind of connection `c`'s first packet: a SYN, or its first UDP datagram.
#[inline]
fn first_kind(plan: &Plan, c: u32) -> u8 {
    if plan.is_udp(c) {
        K_UDP_FIRST
    } else {
        K_SYN
    }
}

fn tcp_flags_of(kind: u8) -> u8 {
    match kind {
        K_SYN => flags::SYN,
        K_ACK | K_LAST_ACK => flags::ACK,
        K_DATA => flags::PSH | flags::ACK,
        K_FIN => flags::FIN | flags::ACK,
        K_RST => flags::RST | flags::ACK,
        _ => 0,
    }
}

/// Every counter of a run (plain: one thread writes them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub up_tx: [u64; KINDS],
    pub up_tx_total: u64,
    pub up_tx_bytes: u64,
    /// Frames the access TX queue refused (back-pressure; not sent).
    pub tx_refused: u64,
    pub nombuf: u64,
    /// Servers port: IPv4 TCP/UDP frames received (answered + absorbed).
    pub srv_rx: u64,
    pub srv_answered: u64,
    pub srv_absorbed: u64,
    pub srv_other: u64,
    /// Answers the servers TX queue took / refused.
    pub srv_tx: u64,
    pub srv_tx_refused: u64,
    /// Access port: answers mapped to a connection.
    pub acc_rx: u64,
    pub acc_rx_bytes: u64,
    pub acc_other: u64,
    /// Answers to no connection of the plan.
    pub acc_unknown: u64,
    /// Answers whose source is not the connection's original destination
    /// (the gateway's reverse translation would be wrong).
    pub acc_mismatch: u64,
    pub acc_bad_csum: u64,
    pub synack_rx: u64,
    pub data_rx: u64,
    pub finack_rx: u64,
    pub udp_rx: u64,
    /// Answers that came for a connection not in the state to take them.
    pub late: u64,
    /// `established`: connections opened.
    pub opened: u64,
    /// `cps`: connections completed (closed, or UDP done).
    pub closed: u64,
    /// `cps`: a new connection was due but none was free.
    pub starved: u64,
}

impl Counters {
    fn delta(&self, o: &Counters) -> Counters {
        let mut d = *self;
        for k in 0..KINDS {
            d.up_tx[k] -= o.up_tx[k];
        }
        macro_rules! sub {
            ($($f:ident),*) => { $(d.$f -= o.$f;)* };
        }
        sub!(
            up_tx_total,
            up_tx_bytes,
            tx_refused,
            nombuf,
            srv_rx,
            srv_answered,
            srv_absorbed,
            srv_other,
            srv_tx,
            srv_tx_refused,
            acc_rx,
            acc_rx_bytes,
            acc_other,
            acc_unknown,
            acc_mismatch,
            acc_bad_csum,
            synack_rx,
            data_rx,
            finack_rx,
            udp_rx,
            late,
            opened,
            closed,
            starved
        );
        d
    }

    fn to_json(self) -> Value {
        let kinds: serde_json::Map<String, Value> = KIND_NAMES
            .iter()
            .zip(self.up_tx.iter())
            .map(|(n, v)| (n.to_string(), json!(v)))
            .collect();
        json!({
            "up_tx_by_kind": kinds,
            "up_tx": self.up_tx_total, "up_tx_bytes": self.up_tx_bytes,
            "tx_refused": self.tx_refused, "nombuf": self.nombuf,
            "srv_rx": self.srv_rx, "srv_answered": self.srv_answered,
            "srv_absorbed": self.srv_absorbed, "srv_other": self.srv_other,
            "srv_tx": self.srv_tx, "srv_tx_refused": self.srv_tx_refused,
            "acc_rx": self.acc_rx, "acc_rx_bytes": self.acc_rx_bytes, "acc_other": self.acc_other,
            "acc_unknown": self.acc_unknown, "acc_mismatch": self.acc_mismatch,
            "acc_bad_csum": self.acc_bad_csum,
            "synack_rx": self.synack_rx, "data_rx": self.data_rx,
            "finack_rx": self.finack_rx, "udp_rx": self.udp_rx, "late": self.late,
            "opened": self.opened, "closed": self.closed, "starved": self.starved,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `established`: opening connections.
    Open,
    Warm,
    Measure,
    Drain,
}

struct Gen<'a> {
    cfg: &'a GenCfg,
    ports: &'a Ports,
    pool: &'a Mempool,
    st: Vec<u8>,
    echoes: Vec<u16>,
    pending: VecDeque<(u32, u8)>,
    free: VecDeque<u32>,
    tcp_t: Vec<Template>,
    udp_t: Vec<Template>,
    size_ctr: usize,
    txb: Vec<Burst>,
    meta: Vec<[(u32, u8, u16); MAX_BURST]>,
    c: Counters,
    inflight: u32,
    cps: bool,
    recording: bool,
    rtt: Histogram<u64>,
    oneway: Histogram<u64>,
}

impl Gen<'_> {
    #[inline]
    fn emit(&mut self, c: u32, kind: u8, now: u64) -> bool {
        let q = (c % self.cfg.queues as u32) as usize;
        if self.txb[q].is_full() {
            self.flush(q);
        }
        let Some(mut m) = self.pool.alloc() else {
            self.c.nombuf += 1;
            self.refused(c, kind);
            return false;
        };
        let k = self.cfg.plan.conn(c);
        let slot = self.size_ctr % self.cfg.sizes.cycle.len();
        self.size_ctr = self.size_ctr.wrapping_add(1);
        let t = if k.proto == PROTO_TCP {
            &self.tcp_t[slot]
        } else {
            &self.udp_t[slot]
        };
        let n = t.write(
            m.room_mut(),
            (k.src, k.sport),
            (k.dst, k.dport),
            tcp_flags_of(kind),
            now,
        );
        m.set_len(n);
        let i = self.txb[q].len();
        self.meta[q][i] = (c, kind, (n + frame::FCS) as u16);
        let _ = self.txb[q].push(m);
        true
    }

    fn refused(&mut self, c: u32, kind: u8) {
        match kind {
            // Pumped data: simply not sent.
            K_DATA | K_UDP if !self.cps => {}
            _ => self.pending.push_back((c, kind)),
        }
    }

    fn flush(&mut self, q: usize) {
        let n = self.txb[q].len();
        if n == 0 {
            return;
        }
        let (sent, _) = self.txb[q].tx(&self.ports.access_tx[q]);
        for i in 0..n {
            let (c, kind, bytes) = self.meta[q][i];
            if i >= sent {
                self.c.tx_refused += 1;
                self.refused(c, kind);
                continue;
            }
            self.c.up_tx[kind as usize] += 1;
            self.c.up_tx_bytes += bytes as u64;
            match kind {
                K_SYN | K_UDP_FIRST => {
                    self.st[c as usize] = SYN_SENT;
                    if !self.cps {
                        self.inflight += 1;
                    }
                }
                K_FIN => self.st[c as usize] = CLOSING,
                K_RST | K_LAST_ACK => self.done(c),
                _ => {}
            }
        }
        self.c.up_tx_total += sent as u64;
    }

    fn flush_all(&mut self) {
        for q in 0..self.txb.len() {
            self.flush(q);
        }
    }

    /// `cps`: connection `c` is complete and free again.
    fn done(&mut self, c: u32) {
        self.st[c as usize] = IDLE;
        self.c.closed += 1;
        self.free.push_back(c);
    }

    /// `cps`: what TCP connection `c` sends after an answer.
    fn cps_next(&mut self, c: u32, data: u16, close: Close) {
        if self.echoes[c as usize] < data {
            self.pending.push_back((c, K_DATA));
        } else {
            self.pending.push_back((
                c,
                match close {
                    Close::Rst => K_RST,
                    Close::Fin => K_FIN,
                },
            ));
        }
    }

    /// One answer on the access port.
    #[inline]
    fn on_answer(&mut self, f: &[u8], now: u64) {
        let Some(s) = peek(f) else {
            self.c.acc_other += 1;
            return;
        };
        let plan = &self.cfg.plan;
        let Some(c) = plan.index_of(s.dst, s.dport) else {
            self.c.acc_unknown += 1;
            return;
        };
        let k = plan.conn(c);
        if k.dst != s.src || k.dport != s.sport || k.proto != s.proto {
            self.c.acc_mismatch += 1;
            return;
        }
        if self.cfg.verify && !checksums_ok(f) {
            self.c.acc_bad_csum += 1;
        }
        self.c.acc_rx += 1;
        self.c.acc_rx_bytes += (f.len() + frame::FCS) as u64;
        if let (true, Some(ts)) = (self.recording, s.ts) {
            self.rtt
                .saturating_record(now.wrapping_sub(ts) & frame::TS_MASK);
        }
        let ci = c as usize;
        let (data, close) = match self.cfg.mode {
            Mode::Cps { data, close } => (data, close),
            Mode::Established => (0, Close::Rst),
        };
        if s.proto == PROTO_UDP {
            self.c.udp_rx += 1;
            match (self.st[ci], self.cps) {
                (SYN_SENT, false) => {
                    self.st[ci] = OPEN;
                    self.c.opened += 1;
                    self.inflight = self.inflight.saturating_sub(1);
                }
                (SYN_SENT | OPEN, true) => {
                    self.st[ci] = OPEN;
                    self.echoes[ci] += 1;
                    if self.echoes[ci] < data.max(1) {
                        self.pending.push_back((c, K_UDP));
                    } else {
                        self.done(c);
                    }
                }
                (OPEN, false) => {}
                _ => self.c.late += 1,
            }
            return;
        }
        let fl = s.tcp_flags;
        if fl & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK {
            self.c.synack_rx += 1;
            if self.st[ci] != SYN_SENT {
                self.c.late += 1;
                return;
            }
            self.st[ci] = OPEN;
            if self.cps {
                self.echoes[ci] = 0;
                self.cps_next(c, data, close);
            } else {
                self.c.opened += 1;
                self.inflight = self.inflight.saturating_sub(1);
                self.pending.push_back((c, K_ACK));
            }
        } else if fl & flags::FIN != 0 {
            self.c.finack_rx += 1;
            if self.st[ci] == CLOSING {
                self.pending.push_back((c, K_LAST_ACK));
            } else {
                self.c.late += 1;
            }
        } else {
            self.c.data_rx += 1;
            if self.cps {
                if self.st[ci] == OPEN {
                    self.echoes[ci] += 1;
                    self.cps_next(c, data, close);
                } else {
                    self.c.late += 1;
                }
            }
        }
    }
}

/// Latency summary in microseconds from a histogram of TSC ticks.
fn lat_json(h: &Histogram<u64>, hz: u64) -> Value {
    let us = |t: u64| (t as f64) * 1e6 / hz as f64;
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "mean_us": h.mean() * 1e6 / hz as f64,
        "p50_us": us(h.value_at_quantile(0.50)),
        "p90_us": us(h.value_at_quantile(0.90)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p999_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
    })
}

/// Run the generator on ports that are started and up. Returns the report.
pub fn run(cfg: &GenCfg, ports: &Ports, pool: &Mempool, quit: &AtomicBool) -> Value {
    let hz = dpdk::tsc_hz();
    let total = cfg.plan.total();
    let cps = matches!(cfg.mode, Mode::Cps { .. });
    let q = cfg.queues as usize;
    let burst = cfg.burst.clamp(1, MAX_BURST);
    let mk = |proto| {
        cfg.sizes
            .cycle
            .iter()
            .map(|&s| Template::new(proto, s, ports.access_mac, cfg.gw_mac))
            .collect::<Vec<_>>()
    };
    let mut g = Gen {
        cfg,
        ports,
        pool,
        st: vec![IDLE; total as usize],
        echoes: if cps {
            vec![0; total as usize]
        } else {
            Vec::new()
        },
        pending: VecDeque::with_capacity(if cps {
            total as usize
        } else {
            (cfg.window as usize).min(total as usize) + 4096
        }),
        free: if cps {
            (0..total).collect()
        } else {
            VecDeque::new()
        },
        tcp_t: mk(PROTO_TCP),
        udp_t: mk(PROTO_UDP),
        size_ctr: 0,
        txb: (0..q).map(|_| Burst::new()).collect(),
        meta: vec![[(0, 0, 0); MAX_BURST]; q],
        c: Counters::default(),
        inflight: 0,
        cps,
        recording: false,
        rtt: Histogram::new_with_bounds(1, hz.max(2), 3).expect("histogram"),
        oneway: Histogram::new_with_bounds(1, hz.max(2), 3).expect("histogram"),
    };
    let stride = cfg.plan.stride();
    let port_of = [PortIdx::MAX; 64];
    let mut rx = Burst::new();
    let mut stx = Burst::new();
    let secs = |t: f64| (t * hz as f64) as u64;

    let t0 = dpdk::tsc();
    let mut phase = if cps { Phase::Warm } else { Phase::Open };
    let mut phase_since = t0;
    let mut open_ticks = 0u64;
    let mut win = (Counters::default(), Counters::default());
    let mut win_ticks = 0u64;
    let mut next_open: u32 = 0;
    let mut cursor: u32 = 0;
    let mut tokens = 0f64;
    let mut last_tok = t0;
    let max_new = burst * q;
    let mut interrupted = false;
    // Opening: SYNs (or first datagrams) unanswered for a second are sent again.
    let mut last_opened = 0u64;
    let mut last_progress = t0;
    let mut last_open_at = t0;
    let mut resent = 0u64;
    let mut rounds_without_progress = 0u32;

    loop {
        let now = dpdk::tsc();
        if quit.load(Relaxed) && !interrupted {
            interrupted = true;
            if phase == Phase::Measure {
                win.1 = g.c;
                win_ticks = now - phase_since;
            }
            phase = Phase::Drain;
            phase_since = now;
            g.recording = false;
        }
        let elapsed = now - phase_since;
        match phase {
            Phase::Open => {
                if g.c.opened != last_opened {
                    last_opened = g.c.opened;
                    last_progress = now;
                    last_open_at = now;
                    rounds_without_progress = 0;
                } else if now - last_progress >= hz && next_open >= total && g.pending.is_empty() {
                    rounds_without_progress += 1;
                    g.inflight = 0;
                    for c in 0..total {
                        if g.st[c as usize] == SYN_SENT {
                            let k = first_kind(&cfg.plan, c);
                            g.pending.push_back((c, k));
                            resent += 1;
                        }
                    }
                    last_progress = now;
                }
                // Done: all open, the time is up, or 3 re-sends in a row
                // brought nothing (the DUT refuses those connections).
                if g.c.opened >= total as u64
                    || elapsed >= secs(cfg.open_timeout_s)
                    || rounds_without_progress > 3
                {
                    open_ticks = elapsed;
                    phase = Phase::Warm;
                    phase_since = now;
                    last_tok = now;
                }
            }
            Phase::Warm => {
                if elapsed >= secs(cfg.warmup_s) {
                    phase = Phase::Measure;
                    phase_since = now;
                    win.0 = g.c;
                    g.recording = true;
                    // (once per run: scripts/bench.sh starts the DUT's
                    // runtime window on this line)
                    eprintln!("pgw-gen: window start");
                }
            }
            Phase::Measure => {
                if elapsed >= secs(cfg.duration_s) {
                    win.1 = g.c;
                    win_ticks = elapsed;
                    phase = Phase::Drain;
                    phase_since = now;
                    g.recording = false;
                    eprintln!("pgw-gen: window end");
                }
            }
            Phase::Drain => {
                if elapsed >= secs(cfg.drain_s) {
                    break;
                }
            }
        }

        // Reflector: the servers' side.
        for qi in 0..q {
            let n = rx.rx(&ports.servers_rx[qi], burst);
            if n == 0 {
                continue;
            }
            let now = if g.recording { dpdk::tsc() } else { now };
            let mut keep = 0u64;
            let mac = ports.servers_mac;
            let (rec, ow) = (g.recording, &mut g.oneway);
            let c = &mut g.c;
            rx.with_pkts(&port_of, Some(1), |pkts| {
                for (i, p) in pkts.iter_mut().enumerate() {
                    let f = p.frame_mut();
                    if rec {
                        if let Some(ts) = peek(f).and_then(|s| s.ts) {
                            ow.saturating_record(now.wrapping_sub(ts) & frame::TS_MASK);
                        }
                    }
                    match reflect(f, mac) {
                        Reflect::Answer => {
                            c.srv_rx += 1;
                            c.srv_answered += 1;
                            keep |= 1 << i;
                        }
                        Reflect::Absorb => {
                            c.srv_rx += 1;
                            c.srv_absorbed += 1;
                        }
                        Reflect::Other => c.srv_other += 1,
                    }
                }
            });
            for (i, m) in rx.drain().enumerate() {
                if keep & (1 << i) != 0 {
                    let _ = stx.push(m);
                }
            }
            let (sent, refused) = stx.tx(&ports.servers_tx[qi]);
            g.c.srv_tx += sent as u64;
            g.c.srv_tx_refused += refused as u64;
        }

        // Access receiver: the subscribers' side.
        for qi in 0..q {
            let n = rx.rx(&ports.access_rx[qi], burst);
            if n == 0 {
                continue;
            }
            let now = if g.recording { dpdk::tsc() } else { now };
            let gg = &mut g;
            rx.with_pkts(&port_of, Some(0), |pkts| {
                for p in pkts.iter() {
                    gg.on_answer(p.frame(), now);
                }
            });
            drop(rx.drain());
        }

        // Sender: what connections owe first, then new traffic.
        let mut budget = max_new;
        while budget > 0 {
            let Some((c, kind)) = g.pending.pop_front() else {
                break;
            };
            g.emit(c, kind, now);
            budget -= 1;
        }
        if phase != Phase::Drain {
            let want = if phase == Phase::Open {
                if cfg.open_rate > 0.0 {
                    tokens += (now - last_tok) as f64 * cfg.open_rate / hz as f64;
                }
                last_tok = now;
                if cfg.open_rate > 0.0 {
                    tokens = tokens.min(max_new as f64);
                    tokens as usize
                } else {
                    max_new
                }
            } else {
                if cfg.rate > 0.0 {
                    tokens += (now - last_tok) as f64 * cfg.rate / hz as f64;
                    tokens = tokens.min(max_new as f64);
                }
                last_tok = now;
                if cfg.rate > 0.0 {
                    tokens as usize
                } else {
                    max_new
                }
            };
            let mut sent = 0usize;
            match phase {
                Phase::Open => {
                    while sent < want && next_open < total && g.inflight < cfg.window {
                        let kind = first_kind(&cfg.plan, next_open);
                        g.emit(next_open, kind, now);
                        next_open += 1;
                        sent += 1;
                    }
                }
                _ if cps => {
                    while sent < want {
                        let Some(c) = g.free.pop_front() else {
                            g.c.starved += 1;
                            break;
                        };
                        let kind = first_kind(&cfg.plan, c);
                        g.emit(c, kind, now);
                        sent += 1;
                    }
                }
                _ => {
                    let mut tries = 0;
                    while sent < want && tries < 4 * want {
                        let c = cursor;
                        cursor = ((cursor as u64 + stride as u64) % total as u64) as u32;
                        tries += 1;
                        if g.st[c as usize] == OPEN {
                            let kind = if cfg.plan.is_udp(c) { K_UDP } else { K_DATA };
                            g.emit(c, kind, now);
                            sent += 1;
                        }
                    }
                }
            }
            if cfg.rate > 0.0 || cfg.open_rate > 0.0 {
                tokens = (tokens - sent as f64).max(0.0);
            }
        }
        g.flush_all();
    }
    g.flush_all();

    let dt = win_ticks as f64 / hz as f64;
    let d = win.1.delta(&win.0);
    let per_s = |v: u64| if dt > 0.0 { v as f64 / dt } else { 0.0 };
    let cnt = g.c;
    let loss_up = cnt.up_tx_total as i64 - cnt.srv_rx as i64;
    let loss_down = cnt.srv_tx as i64 - (cnt.acc_rx + cnt.acc_mismatch + cnt.acc_unknown) as i64;
    // The opening rate counts until the last connection opened, not the
    // re-send rounds that followed.
    let open_s = (last_open_at.min(t0 + open_ticks).saturating_sub(t0)) as f64 / hz as f64;
    let open_s = if open_s > 0.0 {
        open_s
    } else {
        open_ticks as f64 / hz as f64
    };
    json!({
        "mode": match cfg.mode { Mode::Established => "established", Mode::Cps{..} => "cps" },
        "connections": total,
        "subs": cfg.plan.subs,
        "conns_per_sub": cfg.plan.conns_per_sub,
        "udp_pct": cfg.plan.udp_pct,
        "size": cfg.sizes.name,
        "mean_wire_bytes": cfg.sizes.mean(),
        "rate_asked": cfg.rate,
        "queues": cfg.queues,
        "tsc_hz": hz,
        "interrupted": interrupted,
        "open": if cps { Value::Null } else { json!({
            "opened": cnt.opened, "seconds": open_s, "resent": resent,
            "per_s": if open_s > 0.0 { cnt.opened as f64 / open_s } else { 0.0 },
        })},
        "window": {
            "seconds": dt,
            "up_tx_pps": per_s(d.up_tx_total),
            "up_rx_pps": per_s(d.srv_rx),
            "down_tx_pps": per_s(d.srv_tx),
            "down_rx_pps": per_s(d.acc_rx),
            "dut_pps": per_s(d.srv_rx + d.acc_rx),
            "up_tx_bps": per_s(d.up_tx_bytes) * 8.0,
            "down_rx_bps": per_s(d.acc_rx_bytes) * 8.0,
            "handshakes_per_s": per_s(d.synack_rx),
            "completed_per_s": per_s(d.closed),
            "tx_refused_ps": per_s(d.tx_refused),
            "counters": d.to_json(),
        },
        "latency_rtt": lat_json(&g.rtt, hz),
        "latency_up_oneway": lat_json(&g.oneway, hz),
        "loss": {
            "up": loss_up, "down": loss_down,
            "up_pct": if cnt.up_tx_total > 0 { 100.0 * loss_up as f64 / cnt.up_tx_total as f64 } else { 0.0 },
            "down_pct": if cnt.srv_tx > 0 { 100.0 * loss_down as f64 / cnt.srv_tx as f64 } else { 0.0 },
        },
        "pending_left": g.pending.len(),
        "totals": cnt.to_json(),
    })
}
