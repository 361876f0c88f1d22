//! The life of a running instance around its workers: signals (SIGINT
//! stops at once, SIGTERM drains then stops, SIGHUP reloads the profile),
//! systemd's notification protocol (READY, STOPPING, the watchdog), the
//! `--duration` and `--stats-every` of `pgw run`.
//!
//! One plain thread, woken every 100 ms; it never touches a worker: it
//! sets the engine's drain and quit flags, reads the shared counters, and
//! asks the management thread over the control socket like `pgw ctl`.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pgw_engine::mgmt::control;
use pgw_engine::runtime::info::Info;

/// What the thread watches and drives.
pub struct Lifecycle {
    /// Stops every worker (SIGINT, the end of a drain, `--duration`).
    pub quit: Arc<AtomicBool>,
    /// Workers refuse new connections while set.
    pub drain: Arc<AtomicBool>,
    pub info: Arc<Info>,
    pub socket: PathBuf,
    pub drain_timeout: Duration,
    pub duration: Option<f64>,
    pub stats_every: Option<f64>,
}

/// The signal flags (set by the handlers, taken by the thread).
pub struct Signals {
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

/// SIGINT sets `quit`; SIGTERM and SIGHUP set flags the lifecycle thread
/// takes.
pub fn install(quit: &Arc<AtomicBool>) -> Result<Signals, String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let s = Signals {
        term: Arc::new(AtomicBool::new(false)),
        hup: Arc::new(AtomicBool::new(false)),
    };
    for (sig, flag) in [(SIGINT, quit), (SIGTERM, &s.term), (SIGHUP, &s.hup)] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| format!("installing the handler of signal {sig}: {e}"))?;
    }
    Ok(s)
}

/// `sd_notify(3)`: one datagram to `$NOTIFY_SOCKET` (a path, or an abstract
/// name after `@`); nothing when pgw was not started by systemd.
pub fn notify(state: &str) {
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = addr.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&addr))
    };
    if let Err(e) = sent {
        tracing::warn!("sd_notify {state:?}: {e}");
    }
}

/// The watchdog interval systemd asked for (`WatchdogSec=`), if it is ours.
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    match std::env::var("WATCHDOG_PID") {
        Ok(pid) if pid.parse::<u32>().ok() != Some(std::process::id()) => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

impl Lifecycle {
    /// Run the thread; it ends when `quit` is set.
    pub fn spawn(self, signals: Signals) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("pgw-life".into())
            .spawn(move || self.run(signals))
            .expect("spawning the lifecycle thread")
    }

    fn open_flows(&self) -> u64 {
        self.info.report().event("gw_open_flows")
    }

    /// Every worker's loop turns (they advance while it is alive).
    fn polls(&self) -> Vec<u64> {
        self.info
            .report()
            .workers
            .iter()
            .map(|w| w.loops.polls)
            .collect()
    }

    fn run(self, sig: Signals) {
        let start = Instant::now();
        let tick = Duration::from_millis(100);
        let mut next_stats = self.stats_every.map(Duration::from_secs_f64);
        let watchdog = watchdog_interval();
        let mut last_ping = start;
        let mut last_polls = self.polls();
        let mut ready = false;
        let mut drain_until: Option<Instant> = None;
        while !self.quit.load(Relaxed) {
            std::thread::sleep(tick);
            let polls = self.polls();
            // Ready when every worker has turned its loop and the
            // management thread answers.
            if !ready
                && polls.iter().all(|&p| p > 0)
                && control::request(&self.socket, "stats").is_ok()
            {
                notify("READY=1\nSTATUS=running");
                ready = true;
            }
            if let Some(every) = watchdog {
                // Ping at half the interval, only while every worker and the
                // management thread make progress (else systemd acts).
                if ready && last_ping.elapsed() >= every / 2 {
                    let alive = polls.iter().zip(&last_polls).all(|(a, b)| a > b)
                        && control::request(&self.socket, "stats").is_ok();
                    if alive {
                        notify("WATCHDOG=1");
                        last_ping = Instant::now();
                        last_polls = polls;
                    }
                }
            }
            if sig.hup.swap(false, Relaxed) {
                match control::request(&self.socket, "reload") {
                    Ok(answer) => tracing::info!("SIGHUP: reload: {answer}"),
                    Err(e) => tracing::error!("SIGHUP: reload: {e}"),
                }
            }
            if sig.term.swap(false, Relaxed) {
                if drain_until.is_some() || self.drain_timeout.is_zero() {
                    // A second SIGTERM, or no drain wanted: stop now.
                    self.quit.store(true, Relaxed);
                    break;
                }
                let open = self.open_flows();
                tracing::warn!(
                    open,
                    "SIGTERM: draining: new connections refused, {open} open; stopping when none is left or in {:.1} s",
                    self.drain_timeout.as_secs_f64()
                );
                notify(&format!(
                    "STOPPING=1\nSTATUS=draining, {open} connections open"
                ));
                self.drain.store(true, Relaxed);
                drain_until = Some(Instant::now() + self.drain_timeout);
            }
            if let Some(until) = drain_until {
                let open = self.open_flows();
                if open == 0 || Instant::now() >= until {
                    tracing::warn!(
                        open,
                        "drain over: {open} connection(s) still open are closed now"
                    );
                    self.quit.store(true, Relaxed);
                    break;
                }
            }
            if let Some(d) = self.duration {
                if start.elapsed().as_secs_f64() >= d {
                    self.quit.store(true, Relaxed);
                    break;
                }
            }
            if let (Some(n), Some(every)) = (next_stats, self.stats_every) {
                if start.elapsed() >= n {
                    if let Ok(r) = control::fetch_stats(&self.socket) {
                        println!("{}", r.render());
                    }
                    next_stats = Some(n + Duration::from_secs_f64(every));
                }
            }
        }
        if drain_until.is_none() {
            notify("STOPPING=1");
        }
    }
}
