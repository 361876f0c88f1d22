//! `pgw`: the command line of the gateway.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

mod lifecycle;
mod top;

use clap::{Parser, Subcommand};
use pgw_engine::config::Profile;
use pgw_engine::mgmt::control;
use pgw_engine::mgmt::Management;
use pgw_engine::runtime::engine::Engine;

// The control side allocates (profiles, reports, tables it rebuilds);
// mimalloc serves it. The data path does not allocate at all.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pgw",
    version,
    about = "pgw — a DPDK poll-mode packet gateway: session-sticky LB, port-keyed full NAT, server-group balancing, service authorization, per-connection accounting",
    long_about = "pgw — a DPDK poll-mode packet gateway.\n\n\
        Each instance runs the role its profile names (wire forwarding, LB, GW or LB+GW) on the ports \
        the profile lists: DPDK virtual devices (net_tap, net_af_xdp, net_af_packet, net_memif, net_ring, \
        net_null, net_pcap) or PCI NICs on an explicit allow-list. Without a PCI port in the profile DPDK \
        runs with --no-pci and never touches the machine's own NICs.\n\n\
        Examples:\n  pgw check-config configs/tap-wire.toml\n  pgw run --profile configs/tap-wire.toml\n  pgw stats --profile configs/tap-wire.toml\n  pgw eal-args configs/bare-metal.toml"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run an instance: SIGINT stops it, SIGTERM drains it first (new
    /// connections refused, up to `engine.drain_timeout_s`), SIGHUP reloads
    /// the profile; prints final counters on exit.
    Run {
        /// Profile (TOML) to run.
        #[arg(long, short)]
        profile: PathBuf,
        /// Stop by itself after this many seconds (tests, demos).
        #[arg(long)]
        duration: Option<f64>,
        /// Print the counters every N seconds while running.
        #[arg(long)]
        stats_every: Option<f64>,
    },
    /// Accounting records of a running GW (the most recent, in memory).
    Accounting {
        #[command(flatten)]
        at: Instance,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a running instance's state: `gateway NAME up|down` (LB table),
    /// `server GROUP MEMBER up|down` (GW server groups), `server6 GROUP
    /// MEMBER up|down` (a member's IPv6 side: NAT66 only). Takes effect for
    /// new connections at once.
    Set {
        #[command(flatten)]
        at: Instance,
        /// e.g. `gateway gw1 down` or `server wap wap2 up`
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
    },
    /// Sessions of a running instance's session manager (RADIUS): device,
    /// address, gateway, state (Act / Dormant / Close), and the session log.
    Sessions {
        #[command(flatten)]
        at: Instance,
        #[arg(long)]
        json: bool,
        /// The state transitions (wall-clock time, cause) of DEVICE's
        /// current session and of its sessions in the recent session log.
        #[arg(long, value_name = "DEVICE")]
        history: Option<String>,
    },
    /// Server groups and gateways of a running instance, with their health.
    Servers {
        #[command(flatten)]
        at: Instance,
        #[arg(long)]
        json: bool,
    },
    /// Send one raw control request and print the JSON answer
    /// (stats, sessions, accounting, servers, neighbors, ...).
    Ctl {
        #[command(flatten)]
        at: Instance,
        #[arg(required = true, num_args = 1..)]
        request: Vec<String>,
    },
    /// A live view of a running instance, refreshed every interval (like
    /// htop and VPP's `show runtime`): workers (busy %, Mpps, cycles per
    /// packet, capacity), ports (pps, bps, missed, errors, kernel drops),
    /// drops by reason, connections, sessions by state, health. Rates are
    /// the difference of two successive looks. On a terminal `q` or Ctrl-C
    /// quits; otherwise frames are printed one after another, separated
    /// by a blank line (`pgw top -n 3 > file`).
    Top {
        #[command(flatten)]
        at: Instance,
        /// Seconds between frames.
        #[arg(long, short = 'd', default_value_t = 1.0)]
        interval: f64,
        /// Stop after this many frames.
        #[arg(long, short = 'n')]
        iterations: Option<u64>,
    },
    /// pgw's version, the DPDK it runs on, and what it was built with.
    Version,
    /// Validate a profile; errors name the file, the key and the fix.
    CheckConfig { profile: PathBuf },
    /// Print the EAL arguments a profile implies (shows --no-pci / the allow-list).
    EalArgs {
        profile: PathBuf,
        /// Show the variant with --no-huge.
        #[arg(long)]
        no_huge: bool,
    },
    /// Counters of a running instance: per port, per worker, drops by reason.
    Stats {
        #[command(flatten)]
        at: Instance,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
        /// Refresh every N seconds until interrupted.
        #[arg(long)]
        watch: Option<f64>,
        /// Runtime accounting instead (VPP's `show runtime`): per worker and
        /// stage the calls, packets, cycles per packet; busy %, capacity.
        /// Since start or `pgw ctl runtime-clear`.
        #[arg(long)]
        runtime: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Version => {
            println!("pgw {}", env!("CARGO_PKG_VERSION"));
            println!("dpdk {}", pgw_engine::runtime::dpdk::version());
            println!("sqlite {}", pgw_engine::mgmt::acctlog::sqlite_version());
            println!(
                "roles: wire lb gw lb+gw; nat: nat44 nat64 nat66; radius; accounting: sqlite ipfix; systemd: notify watchdog"
            );
            ExitCode::SUCCESS
        }
        Cmd::CheckConfig { profile } => match Profile::load(&profile) {
            Ok(p) => {
                println!(
                    "{}: ok — instance {:?}, role {:?}, {} port(s), {} worker(s)",
                    profile.display(),
                    p.instance.name,
                    p.instance.role,
                    p.ports.len(),
                    p.cores.workers.len()
                );
                for n in p.notes() {
                    println!("{n}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::EalArgs { profile, no_huge } => match Profile::load(&profile) {
            Ok(p) => {
                println!("{}", p.eal_args(!no_huge).join(" "));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Stats {
            at,
            json,
            watch,
            runtime,
        } => stats(at, json, watch, runtime),
        Cmd::Accounting { at, json } => accounting(at, json),
        Cmd::Set { at, what } => match ask(at, &what.join(" ")) {
            Ok(reply) if reply.contains("\"ok\":true") => {
                println!("{reply}");
                ExitCode::SUCCESS
            }
            Ok(reply) => {
                eprintln!("error: {reply}");
                ExitCode::from(1)
            }
            Err(code) => code,
        },
        Cmd::Sessions {
            at,
            json,
            history: Some(dev),
        } => session_history(at, &dev, json),
        Cmd::Sessions {
            at,
            json,
            history: None,
        } => sessions(at, json),
        Cmd::Top {
            at,
            interval,
            iterations,
        } => match at.socket() {
            Ok(path) => top::run(&path, interval, iterations),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Servers { at, json } => servers(at, json),
        Cmd::Ctl { at, request } => match ask(at, &request.join(" ")) {
            Ok(reply) => {
                println!("{reply}");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::Run {
            profile,
            duration,
            stats_every,
        } => run(&profile, duration, stats_every),
    }
}

/// Which running instance a client command talks to.
#[derive(clap::Args)]
struct Instance {
    /// The instance's control socket.
    #[arg(long, conflicts_with = "profile")]
    socket: Option<PathBuf>,
    /// Or the profile it runs (the socket is read from it).
    #[arg(long)]
    profile: Option<PathBuf>,
}

impl Instance {
    /// The control socket: the one named, or the one its profile names.
    fn socket(self) -> Result<PathBuf, String> {
        match (self.socket, self.profile) {
            (Some(s), _) => Ok(s),
            (None, Some(p)) => Profile::load(&p)
                .map(|p| p.control_socket())
                .map_err(|e| e.to_string()),
            (None, None) => Err("say which instance: --socket PATH or --profile FILE".into()),
        }
    }
}

/// One request to an instance's control socket (named by `--socket` or
/// by its profile): the reply, or the error said and the exit code.
fn ask(at: Instance, request: &str) -> Result<String, ExitCode> {
    at.socket()
        .and_then(|p| control::request(&p, request))
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(1)
        })
}

/// A request whose answer is shown as a table: the parsed answer; or, with
/// `--json` or when the instance answers an error, the answer printed as
/// it came and the exit code (an error answer exits 1).
fn ask_for_table(at: Instance, request: &str, json: bool) -> Result<serde_json::Value, ExitCode> {
    let text = ask(at, request)?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if v.get("error").is_some() {
        println!("{text}");
        return Err(ExitCode::from(1));
    }
    if json {
        println!("{text}");
        return Err(ExitCode::SUCCESS);
    }
    Ok(v)
}

fn stats(at: Instance, json: bool, watch: Option<f64>, runtime: bool) -> ExitCode {
    let path = match at.socket() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    loop {
        let out = match (runtime, json) {
            (false, true) => control::request(&path, "stats"),
            (false, false) => control::fetch_stats(&path).map(|r| r.render()),
            (true, true) => control::request(&path, "runtime"),
            (true, false) => control::request(&path, "runtime").and_then(|t| {
                serde_json::from_str::<pgw_engine::runtime::stats::RuntimeReport>(&t)
                    .map(|r| r.render())
                    .map_err(|e| format!("runtime report: {e}: {t}"))
            }),
        };
        match out {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
        match watch {
            Some(secs) => std::thread::sleep(Duration::from_secs_f64(secs.max(0.1))),
            None => return ExitCode::SUCCESS,
        }
    }
}

fn accounting(at: Instance, json: bool) -> ExitCode {
    let v = match ask_for_table(at, "accounting", json) {
        Ok(v) => v,
        Err(code) => return code,
    };
    println!("{} records in total; most recent:", v["total"]);
    print!(
        "{}",
        table(
            &[
                Col(">8", "device", "device_id"),
                Col("<21", "subscriber", "subscriber"),
                Col("<21", "representative", "representative"),
                Col("<8", "service", "service"),
                Col("<21", "server", "server"),
                Col(">8", "up pkts", "up_pkts"),
                Col(">10", "up bytes", "up_bytes"),
                Col(">8", "dn pkts", "down_pkts"),
                Col(">10", "dn bytes", "down_bytes"),
                Col("<6", "close", "close"),
                Col("", "attribute", "attribute"),
            ],
            &v["recent"],
        )
    );
    ExitCode::SUCCESS
}

/// A column of a client table: alignment and width (`>8` right in 8,
/// `<21` left in 21, empty: as it is, for the last), header, and the
/// field of each row shown in it.
struct Col(&'static str, &'static str, &'static str);

/// The header and one line per row of the JSON array `rows` (strings
/// unquoted, a missing field empty), in the columns `cols`.
fn table(cols: &[Col], rows: &serde_json::Value) -> String {
    let cell = |c: &Col, text: &str| -> String {
        let w: usize = c.0.get(1..).and_then(|w| w.parse().ok()).unwrap_or(0);
        if c.0.starts_with('>') {
            format!("{text:>w$}")
        } else {
            format!("{text:<w$}")
        }
    };
    let line = |cells: Vec<String>| cells.join(" ").trim_end().to_string() + "\n";
    let mut out = line(cols.iter().map(|c| cell(c, c.1)).collect());
    for r in rows.as_array().into_iter().flatten() {
        out += &line(
            cols.iter()
                .map(|c| {
                    let v = &r[c.2];
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        v => v.to_string(),
                    };
                    cell(c, &text)
                })
                .collect(),
        );
    }
    out
}

fn sessions(at: Instance, json: bool) -> ExitCode {
    let v = match ask_for_table(at, "sessions", json) {
        Ok(v) => v,
        Err(code) => return code,
    };
    print!(
        "{}",
        table(
            &[
                Col(">6", "id", "session_id"),
                Col("<16", "device", "device_id"),
                Col("<16", "address", "address"),
                Col("<8", "gateway", "gateway"),
                Col("<8", "state", "state"),
                Col("", "acct session", "acct_session_id"),
            ],
            &v["sessions"],
        )
    );
    println!(
        "session log: {} closed session(s); counters: {}",
        v["session_log_total"],
        v["counters"].as_str().unwrap_or("")
    );
    let r = &v["radius"];
    println!(
        "radius: dropped from unknown clients {}, over a client's rate {}; duplicate cache {}/{} (evicted {})",
        r["unknown_client"],
        r["rate_limited"],
        r["duplicate_cache_entries"],
        r["duplicate_cache_capacity"],
        r["duplicate_cache_evicted"]
    );
    ExitCode::SUCCESS
}

fn session_history(at: Instance, device: &str, json: bool) -> ExitCode {
    if device.is_empty() || device.chars().any(char::is_whitespace) {
        eprintln!("error: --history: {device:?} is not a device id (no spaces)");
        return ExitCode::from(2);
    }
    let v = match ask_for_table(at, &format!("session-history {device}"), json) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let time = |ms: i64| {
        let secs = ms.div_euclid(1000);
        let (d, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, dd) = civil_from_days(d);
        format!(
            "{y:04}-{m:02}-{dd:02} {:02}:{:02}:{:02}.{:03}Z",
            s / 3600,
            s / 60 % 60,
            s % 60,
            ms.rem_euclid(1000)
        )
    };
    for s in v["sessions"].as_array().into_iter().flatten() {
        println!(
            "session {} of {} ({}), now {}{}",
            s["session_id"],
            device,
            s["address"].as_str().unwrap_or(""),
            s["state"].as_str().unwrap_or(""),
            match s["history_dropped"].as_u64() {
                Some(n) if n > 0 => format!(", {n} older transition(s) dropped"),
                _ => String::new(),
            }
        );
        for h in s["history"].as_array().into_iter().flatten() {
            println!(
                "  {}  {:<8} -> {:<8} {}",
                time(h["at_unix_ms"].as_i64().unwrap_or(0)),
                h["from"].as_str().unwrap_or(""),
                h["state"].as_str().unwrap_or(""),
                h["cause"].as_str().unwrap_or("")
            );
        }
    }
    ExitCode::SUCCESS
}

/// `UP` for a JSON `true`, else `DOWN`.
fn up_down(v: &serde_json::Value) -> &'static str {
    if v.as_bool() == Some(true) {
        "UP"
    } else {
        "DOWN"
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn servers(at: Instance, json: bool) -> ExitCode {
    let v = match ask_for_table(at, "servers", json) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let health = v["health"].as_array().cloned().unwrap_or_default();
    let check_of = |group: &str, name: &str, family: &str| -> String {
        health
            .iter()
            .find(|h| h["group"] == group && h["name"] == name && h["family"] == family)
            .map(|h| {
                format!(
                    "{} probes, {} passes, last: {}",
                    h["probes"],
                    h["passes"],
                    h["last_result"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_else(|| "not checked".into())
    };
    let check = |group: &str, name: &str| check_of(group, name, "ipv4");
    for g in v["groups"].as_array().into_iter().flatten() {
        println!(
            "group {} (service {}, {})",
            g["group"].as_str().unwrap_or(""),
            g["service"].as_str().unwrap_or(""),
            g["policy"].as_str().unwrap_or("")
        );
        for m in g["members"].as_array().into_iter().flatten() {
            let name = m["name"].as_str().unwrap_or("");
            println!(
                "  {:<10} {:<15} port {:<6} weight {:<4} priority {:<4} {:<5} {}",
                name,
                m["ip"].as_str().unwrap_or(""),
                m["port"],
                m["weight"],
                m["priority"],
                up_down(&m["up"]),
                check(g["group"].as_str().unwrap_or(""), name)
            );
            // The member's IPv6 side (NAT66), with its own verdict.
            if let Some(ip6) = m["ip6"].as_str() {
                println!(
                    "  {:<10} {:<15} ipv6 side {:<5} {}",
                    "",
                    ip6,
                    up_down(&m["up6"]),
                    check_of(g["group"].as_str().unwrap_or(""), name, "ipv6")
                );
            }
        }
    }
    for g in v["gateways"].as_array().into_iter().flatten() {
        let name = g["gateway"].as_str().unwrap_or("");
        println!(
            "gateway {:<10} {:<5} {}",
            name,
            up_down(&g["up"]),
            check("gateway", name)
        );
    }
    ExitCode::SUCCESS
}

fn run(path: &Path, duration: Option<f64>, stats_every: Option<f64>) -> ExitCode {
    let profile = match Profile::load(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let socket = profile.control_socket();
    pgw_engine::config::log::init(&profile.log);
    for n in profile.notes().iter().filter(|n| n.starts_with("warning")) {
        tracing::warn!("{n}");
    }
    let mut engine = match Engine::init(profile) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let quit = engine.quit_flag();
    let signals = match lifecycle::install(&quit) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    };
    {
        let r = engine.report();
        tracing::info!(
            instance = %r.instance,
            role = %r.role,
            "instance {} ({}) running on {} worker(s), {}; ports: {}; control socket {}",
            r.instance,
            r.role,
            r.workers.len(),
            if r.hugepages { "hugepages" } else { "no-huge" },
            r.ports
                .iter()
                .map(|p| format!("{}={} ({}, {})", p.name, p.device, p.driver, p.mac))
                .collect::<Vec<_>>()
                .join(", "),
            socket.display()
        );
    }
    let link = match engine.mgmt_link() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{}: {e}", engine.profile.source);
            return ExitCode::from(1);
        }
    };
    let mgmt = match Management::start(
        &engine.profile,
        link,
        engine.gw.as_ref(),
        engine.lb.as_ref(),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{}: {e}", engine.profile.source);
            return ExitCode::from(1);
        }
    };
    let life = lifecycle::Lifecycle {
        quit: quit.clone(),
        drain: engine.drain_flag(),
        info: engine.info().clone(),
        socket: socket.clone(),
        drain_timeout: Duration::from_secs_f64(engine.profile.engine.drain_timeout_s),
        duration,
        stats_every,
    }
    .spawn(signals);
    let result = engine.run();
    // (the workers closed every open connection's record; the management
    // thread drains them, flushes the writer and IPFIX, then stops)
    quit.store(true, Relaxed);
    let _ = life.join();
    mgmt.stop();
    match result {
        Ok(r) => {
            println!("pgw: stopped; final counters\n{}", r.render());
            drop(engine);
            tracing::info!("exiting");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_pad_numbers_and_strings_alike_and_leave_missing_fields_empty() {
        let cols = [
            Col(">6", "id", "session_id"),
            Col("<8", "device", "device_id"),
            Col("", "state", "state"),
        ];
        let rows = json!([
            {"session_id": 7, "device_id": "0901", "state": "Act"},
            {"session_id": 12345, "state": null},
        ]);
        assert_eq!(
            table(&cols, &rows),
            "    id device   state\n     7 0901     Act\n 12345\n"
        );
        assert_eq!(table(&cols, &json!(null)), "    id device   state\n");
    }
}
