//! `pgw top`: a live view of a running instance over its control socket,
//! in the manner of `htop` and VPP's `show runtime`.
//!
//! Every interval the command takes a [`Snapshot`] (the `stats`, `runtime`,
//! `sessions` and `servers` answers) and draws one frame from the last two
//! with [`render`], a pure function: rates are the difference of two
//! snapshots over the instance's own clock (`uptime_ms`). On a terminal
//! each frame redraws the screen (ANSI escapes; `q` or Ctrl-C quits and
//! the terminal is restored); otherwise frames are plain text separated by
//! a blank line, like `top -b`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgw_engine::mgmt::control;
use serde_json::Value;

/// What one look at an instance returned: each answer as JSON; a section
/// the instance does not have (`sessions` without `[radius]`) is `None`.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub stats: Value,
    pub runtime: Option<Value>,
    pub sessions: Option<Value>,
    pub servers: Option<Value>,
}

/// How a frame is drawn.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Most drop reasons listed.
    pub drops: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { drops: 10 }
    }
}

/// Ask the instance at `path` for a snapshot.
pub fn take(path: &Path) -> Result<Snapshot, String> {
    let parse = |req: &str| -> Result<Option<Value>, String> {
        let text = control::request(path, req)?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("bad answer to {req} from {}: {e}", path.display()))?;
        Ok(if v.get("error").is_some() {
            None
        } else {
            Some(v)
        })
    };
    let stats = parse("stats")?.ok_or_else(|| format!("{}: no stats", path.display()))?;
    Ok(Snapshot {
        stats,
        runtime: parse("runtime")?,
        sessions: parse("sessions")?,
        servers: parse("servers")?,
    })
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

fn fl(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A count as a person reads it: 3 significant-ish digits and k, M, G.
pub fn si(x: f64) -> String {
    let a = x.abs();
    if a < 10.0 && a.fract() != 0.0 {
        format!("{x:.1}")
    } else if a < 1e3 {
        format!("{x:.0}")
    } else if a < 1e6 {
        format!("{:.1}k", x / 1e3)
    } else if a < 1e9 {
        format!("{:.1}M", x / 1e6)
    } else {
        format!("{:.1}G", x / 1e9)
    }
}

/// Milliseconds as `[Nd ]hh:mm:ss`.
pub fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// (name, count) pairs of a report's list (`drops`, `events`), summed over
/// its workers.
fn sum_pairs(stats: &Value, list: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for w in arr(stats, "workers") {
        for p in arr(w, list) {
            if let (Some(n), Some(c)) = (p[0].as_str(), p[1].as_u64()) {
                *out.entry(n.to_string()).or_insert(0) += c;
            }
        }
    }
    out
}

/// One frame from the snapshots `prev` and `cur` of the same instance.
pub fn render(prev: &Snapshot, cur: &Snapshot, opt: &Options) -> String {
    let (p, c) = (&prev.stats, &cur.stats);
    // An instance that restarted between the two counts from zero.
    let restarted = u(c, "uptime_ms") < u(p, "uptime_ms");
    let zero = Value::Null;
    let p = if restarted { &zero } else { p };
    let dt_ms = u(c, "uptime_ms").saturating_sub(u(p, "uptime_ms")).max(1);
    let dt = dt_ms as f64 / 1000.0;
    let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / dt;
    let mut s = String::new();

    // Header.
    let _ = writeln!(
        s,
        "pgw top — instance {} ({})  up {}  {}  {}  mbufs {} in use / {} free  rates over {:.2} s",
        c["instance"].as_str().unwrap_or("?"),
        c["role"].as_str().unwrap_or("?"),
        uptime(u(c, "uptime_ms")),
        c["dpdk"].as_str().unwrap_or("DPDK ?"),
        if c["hugepages"].as_bool() == Some(true) {
            "hugepages"
        } else {
            "no-huge"
        },
        u(c, "mbufs_in_use"),
        u(c, "mbufs_available"),
        dt
    );

    // Workers: counters from `stats`, cycles from `runtime`.
    let rt_cur = cur.runtime.as_ref();
    let rt_prev = prev.runtime.as_ref().filter(|r| {
        // A `runtime-clear` between the snapshots starts a new window.
        !restarted && rt_cur.is_some_and(|c| fl(c, "window_s") >= fl(r, "window_s"))
    });
    let tsc_hz = rt_cur.map(|r| u(r, "tsc_hz")).unwrap_or(0);
    let _ = writeln!(s, "\nworkers");
    let _ = writeln!(
        s,
        "  {:>3} {:>5} {:>6} {:>8} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "#", "lcore", "busy%", "Mpps", "rx pps", "tx pps", "drop/s", "cyc/pkt", "capacity"
    );
    let (mut all_busy, mut all_pkts, mut all_rx, mut all_tx, mut all_drops) = (0, 0, 0.0, 0.0, 0.0);
    let workers = arr(c, "workers");
    for w in workers {
        let i = u(w, "worker");
        let find = |r: &Value| -> Value {
            arr(r, "workers")
                .iter()
                .find(|x| u(x, "worker") == i)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let pw = find(p);
        let drops =
            |v: &Value| -> u64 { arr(v, "drops").iter().filter_map(|x| x[1].as_u64()).sum() };
        let (rx, tx, dr) = (
            rate(u(w, "rx"), u(&pw, "rx")),
            rate(u(w, "tx"), u(&pw, "tx")),
            rate(drops(w), drops(&pw)),
        );
        all_rx += rx;
        all_tx += tx;
        all_drops += dr;
        let (busy, mpps, cpp, cap) = match rt_cur {
            Some(rc) => {
                let (a, b) = (find(rc), rt_prev.map(find).unwrap_or(Value::Null));
                let d = |k: &str| u(&a, k).saturating_sub(u(&b, k));
                let (bc, ic, pk) = (d("busy_cycles"), d("idle_cycles"), d("packets"));
                all_busy += bc;
                all_pkts += pk;
                let busy = if bc + ic > 0 {
                    format!("{:.1}", 100.0 * bc as f64 / (bc + ic) as f64)
                } else {
                    "-".into()
                };
                let (cpp, cap) = per_packet(bc, pk, tsc_hz);
                (busy, format!("{:.3}", rate(pk, 0) / 1e6), cpp, cap)
            }
            None => (
                "-".into(),
                format!("{:.3}", rx / 1e6),
                "-".into(),
                "-".into(),
            ),
        };
        let _ = writeln!(
            s,
            "  {:>3} {:>5} {:>6} {:>8} {:>9} {:>9} {:>8} {:>9} {:>10}",
            i,
            u(w, "lcore"),
            busy,
            mpps,
            si(rx),
            si(tx),
            si(dr),
            cpp,
            cap
        );
    }
    if workers.len() > 1 {
        let (cpp, cap) = per_packet(all_busy, all_pkts, tsc_hz);
        let cap = cap
            .parse::<f64>()
            .map(|c| format!("{:.2}", c * workers.len() as f64))
            .unwrap_or(cap);
        let _ = writeln!(
            s,
            "  {:>9} {:>6} {:>8} {:>9} {:>9} {:>8} {:>9} {:>10}",
            "all",
            "",
            if rt_cur.is_some() {
                format!("{:.3}", rate(all_pkts, 0) / 1e6)
            } else {
                format!("{:.3}", all_rx / 1e6)
            },
            si(all_rx),
            si(all_tx),
            si(all_drops),
            cpp,
            cap
        );
    }
    if rt_cur.is_some() {
        let _ = writeln!(
            s,
            "  (Mpps: packets taken in; capacity: Mpps a worker would carry busy all the time at this cost)"
        );
    }

    // Ports.
    let _ = writeln!(s, "\nports");
    let _ = writeln!(
        s,
        "  {:<10} {:<4} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9}",
        "name", "link", "rx pps", "rx bps", "tx pps", "tx bps", "missed/s", "err/s", "kdrop/s"
    );
    for port in arr(c, "ports") {
        let name = port["name"].as_str().unwrap_or("?");
        let pp = arr(p, "ports")
            .iter()
            .find(|x| x["name"] == port["name"])
            .cloned()
            .unwrap_or(Value::Null);
        let r = |k: &str| rate(u(port, k), u(&pp, k));
        let errs = |v: &Value| u(v, "ierrors") + u(v, "oerrors") + u(v, "rx_nombuf");
        let kern = |v: &Value| -> Option<u64> {
            let d = v["kernel_rx_dropped"].as_u64()?;
            Some(d + u(v, "kernel_rx_missed") + u(v, "kernel_tx_dropped"))
        };
        let kdrop = match kern(port) {
            Some(k) => si(rate(k, kern(&pp).unwrap_or(0))),
            None => "-".into(),
        };
        let _ = writeln!(
            s,
            "  {:<10} {:<4} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9}",
            name,
            if port["link_up"].as_bool() == Some(true) {
                "up"
            } else {
                "down"
            },
            si(r("ipackets")),
            si(8.0 * r("ibytes")),
            si(r("opackets")),
            si(8.0 * r("obytes")),
            si(r("imissed")),
            si(rate(errs(port), errs(&pp))),
            kdrop
        );
    }

    // Drops by reason: those counted at all, the fastest first.
    let (dc, dp) = (sum_pairs(c, "drops"), sum_pairs(p, "drops"));
    let mut drops: Vec<(&String, f64, u64)> = dc
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(n, v)| (n, rate(*v, dp.get(n).copied().unwrap_or(0)), *v))
        .collect();
    drops.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
    if drops.is_empty() {
        let _ = writeln!(s, "\ndrops by reason: none");
    } else {
        let more = drops.len().saturating_sub(opt.drops);
        let _ = writeln!(
            s,
            "\ndrops by reason{}",
            if more > 0 {
                format!(" (top {} of {})", opt.drops, drops.len())
            } else {
                String::new()
            }
        );
        let _ = writeln!(s, "  {:<28} {:>10} {:>12}", "reason", "per s", "total");
        for (n, r, t) in drops.iter().take(opt.drops) {
            let _ = writeln!(s, "  {:<28} {:>10} {:>12}", n, si(*r), t);
        }
    }

    // Connections (GW) and LB decisions, from the stages' events.
    let (ec, ep) = (sum_pairs(c, "events"), sum_pairs(p, "events"));
    let ev = |n: &str| ec.get(n).copied().unwrap_or(0);
    let er = |names: &[&str]| -> f64 {
        names
            .iter()
            .map(|n| rate(ev(n), ep.get(*n).copied().unwrap_or(0)))
            .sum()
    };
    if ec.contains_key("gw_new_flows") {
        let _ = writeln!(
            s,
            "\nconnections  new {}/s  closed {}/s  refused (unauthorized) {}/s  open {}  held {}  entries in use {}",
            si(er(&["gw_new_flows"])),
            si(er(&[
                "gw_closed_fin",
                "gw_closed_rst",
                "gw_expired",
                "gw_closed_shutdown"
            ])),
            si(er(&["gw_rst_unauthorized"])),
            ev("gw_open_flows"),
            ev("gw_held"),
            ev("gw_entries_in_use")
        );
    }
    if ec.contains_key("lb_to_primary") {
        let _ = writeln!(
            s,
            "\nlb  to primary {}/s  to substitute {}/s  local {}/s  down path {}/s",
            si(er(&["lb_to_primary"])),
            si(er(&["lb_to_substitute"])),
            si(er(&["lb_local"])),
            si(er(&["lb_down_path"]))
        );
    }

    // Sessions of the session manager (instances with [radius]).
    if let Some(sess) = &cur.sessions {
        let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
        for r in arr(sess, "sessions") {
            *by_state
                .entry(r["state"].as_str().unwrap_or("?"))
                .or_insert(0) += 1;
        }
        let mut states: Vec<String> = ["Act", "Dormant", "Close"]
            .iter()
            .map(|st| format!("{st} {}", by_state.remove(st).unwrap_or(0)))
            .collect();
        states.extend(by_state.iter().map(|(st, n)| format!("{st} {n}")));
        let _ = writeln!(
            s,
            "\nsessions  {} total: {}  closed (session log) {}",
            arr(sess, "sessions").len(),
            states.join("  "),
            u(sess, "session_log_total")
        );
    }

    // Health: server group members (GW), gateways (LB).
    if let Some(srv) = &cur.servers {
        let mut members = (0, 0, Vec::new());
        // Members' IPv6 sides (those with an `ip6`), NAT66 only.
        let mut sides6 = (0, 0, Vec::new());
        for g in arr(srv, "groups") {
            for m in arr(g, "members") {
                match m["up6"].as_bool() {
                    Some(true) => sides6.0 += 1,
                    Some(false) => {
                        sides6.1 += 1;
                        sides6.2.push(format!(
                            "{}/{}",
                            g["group"].as_str().unwrap_or("?"),
                            m["name"].as_str().unwrap_or("?")
                        ));
                    }
                    None => {}
                }
                if m["up"].as_bool() == Some(true) {
                    members.0 += 1;
                } else {
                    members.1 += 1;
                    members.2.push(format!(
                        "{}/{}",
                        g["group"].as_str().unwrap_or("?"),
                        m["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
        let mut gws = (0, 0, Vec::new());
        for g in arr(srv, "gateways") {
            if g["up"].as_bool() == Some(true) {
                gws.0 += 1;
            } else {
                gws.1 += 1;
                gws.2.push(g["gateway"].as_str().unwrap_or("?").to_string());
            }
        }
        let line = |what: &str, (up, down, names): &(usize, usize, Vec<String>)| {
            let mut l = format!("{what} {up} up, {down} down");
            if !names.is_empty() {
                let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
                let _ = write!(
                    l,
                    " ({}{})",
                    shown.join(" "),
                    if names.len() > 5 { " ..." } else { "" }
                );
            }
            l
        };
        let mut parts = Vec::new();
        if members.0 + members.1 > 0 {
            parts.push(line("members", &members));
        }
        if sides6.0 + sides6.1 > 0 {
            parts.push(line("ipv6 sides", &sides6));
        }
        if gws.0 + gws.1 > 0 {
            parts.push(line("gateways", &gws));
        }
        if !parts.is_empty() {
            let _ = writeln!(s, "\nhealth  {}", parts.join("  "));
        }
    }
    s
}

/// Busy cycles per packet and the capacity it implies (Mpps), as text.
fn per_packet(busy: u64, pkts: u64, tsc_hz: u64) -> (String, String) {
    if pkts == 0 || busy == 0 {
        return ("-".into(), "-".into());
    }
    let cpp = busy as f64 / pkts as f64;
    (
        format!("{cpp:.1}"),
        format!("{:.2}", tsc_hz as f64 / cpp / 1e6),
    )
}

/// The terminal while `pgw top` draws on it: keys unbuffered and not
/// echoed (by `stty`, when stdin is the terminal), the alternate screen,
/// the cursor hidden; all put back on drop.
struct Screen {
    stty: Option<String>,
}

impl Screen {
    fn enter() -> Screen {
        let stty = std::io::stdin()
            .is_terminal()
            .then(|| {
                let saved = Command::new("stty")
                    .arg("-g")
                    .stdin(Stdio::inherit())
                    .stderr(Stdio::null())
                    .output()
                    .ok()
                    .filter(|o| o.status.success())?;
                let saved = String::from_utf8_lossy(&saved.stdout).trim().to_string();
                Command::new("stty")
                    .args(["-icanon", "-echo", "min", "0", "time", "0"])
                    .stdin(Stdio::inherit())
                    .status()
                    .ok()
                    .filter(|s| s.success())
                    .map(|_| saved)
            })
            .flatten();
        print!("\x1b[?1049h\x1b[?25l");
        let _ = std::io::stdout().flush();
        Screen { stty }
    }

    /// Whether `q` (or Ctrl-C as a byte) was typed.
    fn quit_key(&self) -> bool {
        if self.stty.is_none() {
            return false;
        }
        let mut buf = [0u8; 64];
        match std::io::stdin().read(&mut buf) {
            Ok(n) => buf[..n].iter().any(|b| matches!(b, b'q' | b'Q' | 3)),
            Err(_) => false,
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
        if let Some(saved) = &self.stty {
            let _ = Command::new("stty")
                .arg(saved)
                .stdin(Stdio::inherit())
                .status();
        }
    }
}

/// `pgw top`: frames of the instance at `path` every `interval` seconds,
/// `iterations` of them or until `q`, Ctrl-C or SIGTERM.
pub fn run(path: &Path, interval: f64, iterations: Option<u64>) -> ExitCode {
    let interval = Duration::from_secs_f64(interval.max(0.1));
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("error: signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let mut prev = match take(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let screen = std::io::stdout().is_terminal().then(Screen::enter);
    if screen.is_some() {
        println!(
            "\x1b[H\x1b[2Jpgw top: {} every {:.1} s (q quits)",
            path.display(),
            interval.as_secs_f64()
        );
        let _ = std::io::stdout().flush();
    }
    let opt = Options::default();
    let mut frames = 0u64;
    loop {
        let until = Instant::now() + interval;
        while Instant::now() < until {
            if stop.load(Relaxed) || screen.as_ref().is_some_and(Screen::quit_key) {
                return ExitCode::SUCCESS;
            }
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
        let cur = match take(path) {
            Ok(s) => s,
            Err(e) => {
                drop(screen);
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let frame = render(&prev, &cur, &opt);
        let mut out = std::io::stdout().lock();
        let written = if screen.is_some() {
            write!(out, "\x1b[H\x1b[2J{frame}")
        } else if frames > 0 {
            write!(out, "\n{frame}")
        } else {
            write!(out, "{frame}")
        };
        if written.and_then(|_| out.flush()).is_err() {
            // (the reader went away: `pgw top | head`)
            return ExitCode::SUCCESS;
        }
        drop(out);
        frames += 1;
        if iterations.is_some_and(|n| frames >= n) {
            return ExitCode::SUCCESS;
        }
        prev = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stats(uptime_ms: u64, rx: u64, ipackets: u64, ibytes: u64, no_session: u64) -> Value {
        json!({
            "instance": "gw1", "role": "gw", "dpdk": "DPDK 23.11.0", "hugepages": false,
            "uptime_ms": uptime_ms, "mbufs_in_use": 100, "mbufs_available": 900, "control_rx": 0,
            "ports": [
                {"name": "access", "device": "net_tap0", "driver": "net_tap", "dpdk_port": 0,
                 "mac": "02:00:00:00:00:01", "link_up": true, "rx_queues": 1, "tx_queues": 1,
                 "rss": false, "ipackets": ipackets, "opackets": ipackets / 2, "ibytes": ibytes,
                 "obytes": 0, "imissed": 0, "ierrors": 0, "oerrors": 0, "rx_nombuf": 0,
                 "kernel_iface": "gwa", "kernel_rx_dropped": 0, "kernel_tx_dropped": 0,
                 "kernel_rx_missed": 0},
                {"name": "servers", "device": "net_tap1", "driver": "net_tap", "dpdk_port": 1,
                 "mac": "02:00:00:00:00:02", "link_up": false, "rx_queues": 1, "tx_queues": 1,
                 "rss": false, "ipackets": 0, "opackets": 0, "ibytes": 0, "obytes": 0,
                 "imissed": 0, "ierrors": 0, "oerrors": 0, "rx_nombuf": 0}
            ],
            "workers": [
                {"worker": 0, "lcore": 1, "rx": rx, "tx": rx, "polls": 0, "empty_polls": 0,
                 "idle_sleeps": 0, "handoff_in": 0, "handoff_out": 0, "control_out": 0,
                 "port_rx": [rx, 0], "port_tx": [0, rx],
                 "drops": [["no_session", no_session], ["no_route", 0], ["malformed", 7]],
                 "events": [["gw_new_flows", rx / 10], ["gw_open_flows", 4], ["gw_held", 2],
                            ["gw_closed_fin", rx / 20]]}
            ]
        })
    }

    fn runtime(window_s: f64, busy: u64, idle: u64, packets: u64) -> Value {
        json!({
            "tsc_hz": 2_000_000_000u64, "window_s": window_s, "timed": true,
            "workers": [{"worker": 0, "lcore": 1, "turns": 10, "busy_turns": 5,
                         "cycles": busy + idle, "busy_cycles": busy, "idle_cycles": idle,
                         "busy_pct": 0.0, "packets": packets, "busy_cycles_per_pkt": 0.0,
                         "capacity_mpps": 0.0, "stages": []}],
            "total": {"packets": packets, "busy_cycles": busy, "busy_cycles_per_pkt": 0.0,
                      "capacity_mpps": 0.0}
        })
    }

    fn line<'a>(frame: &'a str, start: &str) -> &'a str {
        frame
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{frame}"))
    }

    fn cols(l: &str) -> Vec<&str> {
        l.split_whitespace().collect()
    }

    fn pair() -> (Snapshot, Snapshot) {
        let a = Snapshot {
            stats: stats(10_000, 1_000, 1_000, 1_000_000, 5),
            runtime: Some(runtime(10.0, 1_000_000, 9_000_000, 1_000)),
            sessions: None,
            servers: Some(json!({"groups": [], "gateways": [], "health": []})),
        };
        // 2 s later: 20 000 more packets (10 000/s), 2.5 MB more in, 6
        // more no_session drops (3/s), busy 25 % at 200 cycles/packet.
        let b = Snapshot {
            stats: stats(12_000, 21_000, 21_000, 3_500_000, 11),
            runtime: Some(runtime(12.0, 5_000_000, 21_000_000, 21_000)),
            ..a.clone()
        };
        (a, b)
    }

    #[test]
    fn rates_are_differences_over_the_instance_clock() {
        let (a, b) = pair();
        let f = render(&a, &b, &Options::default());
        assert!(f.starts_with("pgw top — instance gw1 (gw)  up 00:00:12  DPDK 23.11.0  no-huge"));
        assert!(f.contains("rates over 2.00 s"), "{f}");
        // worker 0: lcore 1, busy 4M/(4M+12M) = 25 %, 20 000 pkts / 2 s,
        // 200 cycles/packet at 2 GHz = 10 Mpps of capacity.
        let w = cols(line(&f, "0 "));
        assert_eq!(
            w,
            ["0", "1", "25.0", "0.010", "10.0k", "10.0k", "3", "200.0", "10.00"],
            "{f}"
        );
        // access: 10 000 pps in, 2.5 MB * 8 / 2 s = 10 Mbit/s, 5 000 pps out.
        let p = cols(line(&f, "access"));
        assert_eq!(
            p,
            ["access", "up", "10.0k", "10.0M", "5.0k", "0", "0", "0", "0"],
            "{f}"
        );
        // no kernel counters on servers: "-".
        assert_eq!(cols(line(&f, "servers")).last(), Some(&"-"));
        assert_eq!(cols(line(&f, "servers"))[1], "down");
    }

    #[test]
    fn drops_by_reason_fastest_first_zeros_left_out() {
        let (a, b) = pair();
        let f = render(&a, &b, &Options::default());
        let ns = line(&f, "no_session");
        assert_eq!(cols(ns), ["no_session", "3", "11"]);
        assert_eq!(cols(line(&f, "malformed")), ["malformed", "0", "7"]);
        assert!(f.find("no_session").unwrap() < f.find("malformed").unwrap());
        assert!(!f.contains("no_route"), "{f}");
        // Only the top N.
        let f = render(&a, &b, &Options { drops: 1 });
        assert!(f.contains("drops by reason (top 1 of 2)"), "{f}");
        assert!(!f.contains("malformed"), "{f}");
        // None at all.
        let mut quiet = b.clone();
        quiet.stats = stats(12_000, 21_000, 21_000, 3_500_000, 0);
        quiet.stats["workers"][0]["drops"] = json!([["no_session", 0]]);
        let f = render(&a, &quiet, &Options::default());
        assert!(f.contains("drops by reason: none"), "{f}");
    }

    #[test]
    fn connections_from_the_gw_events() {
        let (a, b) = pair();
        let f = render(&a, &b, &Options::default());
        // 2 000 new flows in 2 s, 1 000 closed by FIN; levels as they are.
        let l = line(&f, "connections");
        assert!(l.contains("new 1.0k/s"), "{l}");
        assert!(l.contains("closed 500/s"), "{l}");
        assert!(l.contains("open 4  held 2"), "{l}");
        assert!(!f.contains("\nlb "), "{f}");
    }

    #[test]
    fn sections_an_instance_lacks_are_left_out() {
        // A wire instance: no events, no runtime, no sessions, no health.
        let mut a = pair().0;
        let mut b = pair().1;
        for s in [&mut a, &mut b] {
            s.stats["role"] = json!("wire");
            s.stats["workers"][0]["events"] = json!([]);
            s.runtime = None;
        }
        let f = render(&a, &b, &Options::default());
        assert!(!f.contains("connections"), "{f}");
        assert!(!f.contains("sessions"), "{f}");
        assert!(!f.contains("health"), "{f}");
        assert!(!f.contains("capacity: Mpps"), "{f}");
        // Without runtime: rx Mpps from the counters, no cycles.
        assert_eq!(
            cols(line(&f, "0 ")),
            ["0", "1", "-", "0.010", "10.0k", "10.0k", "3", "-", "-"]
        );
    }

    #[test]
    fn sessions_by_state_and_health() {
        let (mut a, mut b) = pair();
        for s in [&mut a, &mut b] {
            s.sessions = Some(json!({
                "sessions": [{"state": "Act"}, {"state": "Act"}, {"state": "Dormant"}],
                "session_log_total": 4
            }));
            s.servers = Some(json!({
                "groups": [{"group": "wap", "members": [
                    {"name": "w1", "up": true, "up6": false}, {"name": "w2", "up": false},
                    {"name": "w3", "up": true, "up6": true}]}],
                "gateways": [{"gateway": "gw1", "up": true}, {"gateway": "gw2", "up": null}]
            }));
        }
        let f = render(&a, &b, &Options::default());
        assert!(
            f.contains("sessions  3 total: Act 2  Dormant 1  Close 0  closed (session log) 4"),
            "{f}"
        );
        assert!(
            f.contains(
                "health  members 2 up, 1 down (wap/w2)  ipv6 sides 1 up, 1 down (wap/w1)  gateways 1 up, 1 down (gw2)"
            ),
            "{f}"
        );
    }

    #[test]
    fn a_restart_or_a_runtime_clear_counts_from_zero() {
        let (a, mut b) = pair();
        // Restarted: 1 s up, 3 000 packets since.
        b.stats = stats(1_000, 3_000, 3_000, 0, 0);
        b.runtime = Some(runtime(1.0, 300_000, 700_000, 3_000));
        let f = render(&a, &b, &Options::default());
        assert!(f.contains("rates over 1.00 s"), "{f}");
        let w = cols(line(&f, "0 "));
        assert_eq!(&w[2..6], ["30.0", "0.003", "3.0k", "3.0k"], "{f}");
        // Cleared runtime window, same instance: cycles from the new window.
        let (a, mut b) = pair();
        b.runtime = Some(runtime(0.5, 200_000, 600_000, 1_000));
        let f = render(&a, &b, &Options::default());
        let w = cols(line(&f, "0 "));
        assert_eq!(w[2], "25.0", "{f}");
        assert_eq!(w[7], "200.0", "{f}");
    }

    #[test]
    fn two_workers_and_their_sum() {
        let (mut a, mut b) = pair();
        for s in [&mut a, &mut b] {
            let mut w1 = s.stats["workers"][0].clone();
            w1["worker"] = json!(1);
            w1["lcore"] = json!(2);
            s.stats["workers"].as_array_mut().unwrap().push(w1);
            let rt = s.runtime.as_mut().unwrap();
            let mut r1 = rt["workers"][0].clone();
            r1["worker"] = json!(1);
            r1["lcore"] = json!(2);
            // Worker 1 idle all the time.
            r1["busy_cycles"] = json!(0);
            r1["packets"] = json!(0);
            rt["workers"].as_array_mut().unwrap().push(r1);
        }
        let f = render(&a, &b, &Options::default());
        assert_eq!(
            cols(line(&f, "1 ")),
            ["1", "2", "0.0", "0.000", "10.0k", "10.0k", "3", "-", "-"]
        );
        // All: 20 000 pps each way, 6 drops/s, 4M cycles over 20 000
        // packets, 2 workers at 10 Mpps each; the busy column left empty.
        let all = line(&f, "all");
        assert_eq!(
            cols(all),
            ["all", "0.010", "20.0k", "20.0k", "6", "200.0", "20.00"]
        );
        let w0 = line(&f, "0 ");
        assert_eq!(all.find("0.010"), w0.find("0.010"), "columns:\n{f}");
        // Drops and events summed over both.
        assert_eq!(cols(line(&f, "no_session")), ["no_session", "6", "22"]);
        assert!(line(&f, "connections").contains("open 8  held 4"), "{f}");
    }

    #[test]
    fn numbers_as_people_read_them() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(2.5), "2.5");
        assert_eq!(si(999.0), "999");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(1.5e6), "1.5M");
        assert_eq!(si(4.2e10), "42.0G");
        assert_eq!(uptime(3_723_000), "01:02:03");
        assert_eq!(uptime(90_061_000), "1d 01:01:01");
    }
}
