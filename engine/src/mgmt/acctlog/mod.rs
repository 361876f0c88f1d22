//! The accounting log (FIG. 28–29, S78–S80; the session log of FIG. 11):
//! connection records from the GW workers, resolved by the management thread
//! to device id, service and times ([`AcctRow::from_record`]), are written by
//! a writer thread of their own to
//!
//! - an embedded SQLite database ([`db`]: tables `accounting` and
//!   `session_log`, WAL, batched transactions), and/or
//! - an IPFIX collector over UDP ([`ipfix`]: RFC 7011, one biflow record
//!   per connection).
//!
//! Contract ([`AcctLogger`]):
//! - `submit` never blocks: a bounded queue; a full queue refuses the row
//!   and counts it (`queue_full`).
//! - Rows are committed in batches: when `batch_rows` are pending or the
//!   oldest pending row is `batch_ms` old, whichever comes first, one
//!   transaction (and its fsync under `synchronous=FULL`).
//! - `acknowledged() == n` means the first `n` rows that `submit` accepted
//!   are durably in the database (the queue is FIFO and batches commit in
//!   order). Without a database it counts rows handed to the IPFIX socket.
//! - IPFIX gets a batch after its commit, so the collector never sees a row
//!   the database lost; UDP itself may lose it (the collector sees the gap
//!   in the sequence numbers).
//! - A failing commit (disk full, I/O error) is counted and retried every
//!   `batch_ms` with the rows kept; while it fails the writer stops taking
//!   rows beyond `4 × batch_rows` so the queue fills and `submit` refuses
//!   (counted) instead of memory growing.
//! - `stop()` (also on drop) takes every row already accepted, commits and
//!   exports it, and joins the thread; rows it still cannot commit are
//!   counted in `lost_on_stop`.

pub mod db;
pub mod ipfix;
pub mod rows;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Serialize;

pub use db::{query_recent, query_recent_sessions, sqlite_version, Synchronous};
pub use rows::{
    close_cause_text, history_rows, state_text, transition_cause_text, AcctRow, SessionLogRow,
    SessionStateChange, WallClock,
};

/// Where and how the log is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcctLogConfig {
    /// SQLite file (created if missing). `None`: no database.
    pub sqlite_path: Option<PathBuf>,
    /// IPFIX collector (UDP). `None`: no export.
    pub ipfix_collector: Option<SocketAddr>,
    /// Commit when this many rows are pending ...
    pub batch_rows: usize,
    /// ... or when the oldest pending row is this old.
    pub batch_ms: u64,
    /// Rows the queue between `submit` and the writer holds.
    pub queue_rows: usize,
    pub synchronous: Synchronous,
    /// How long a commit waits for another connection's lock (a reader
    /// checkpointing, an operator's `sqlite3` shell) before it fails and is
    /// retried after `batch_ms`.
    pub db_busy_ms: u64,
    pub ipfix: ipfix::ExporterConfig,
}

impl Default for AcctLogConfig {
    fn default() -> Self {
        AcctLogConfig {
            sqlite_path: None,
            ipfix_collector: None,
            batch_rows: 512,
            batch_ms: 200,
            queue_rows: 65_536,
            synchronous: Synchronous::Full,
            db_busy_ms: 1_000,
            ipfix: ipfix::ExporterConfig::default(),
        }
    }
}

/// The logger's counters (a copy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AcctLogStats {
    /// Accounting rows `submit` accepted.
    pub submitted: u64,
    /// Rows (accounting or session) `submit*` refused: queue full or stopped.
    pub queue_full: u64,
    /// Accounting rows committed to the database.
    pub rows_written: u64,
    /// Session log rows committed.
    pub sessions_written: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Failed commits (each retried).
    pub db_errors: u64,
    /// IPFIX messages sent.
    pub ipfix_messages: u64,
    /// Data records exported (what the sequence numbers count; includes
    /// those of refused messages, so the collector sees them as lost).
    pub ipfix_records: u64,
    /// Messages that carried the template.
    pub ipfix_templates: u64,
    /// Messages the socket refused (collector unreachable, buffer full).
    pub ipfix_errors: u64,
    /// Rows still uncommitted when the writer stopped.
    pub lost_on_stop: u64,
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    queue_full: AtomicU64,
    acknowledged: AtomicU64,
    rows_written: AtomicU64,
    sessions_written: AtomicU64,
    batches: AtomicU64,
    db_errors: AtomicU64,
    ipfix_messages: AtomicU64,
    ipfix_records: AtomicU64,
    ipfix_templates: AtomicU64,
    ipfix_errors: AtomicU64,
    lost_on_stop: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

enum Msg {
    Acct(AcctRow),
    Session(SessionLogRow),
    Flush(Sender<()>),
}

/// The accounting log writer: a thread, a bounded queue to it, counters.
pub struct AcctLogger {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
}

impl AcctLogger {
    /// Open the database and the IPFIX socket (errors here, not later) and
    /// start the writer thread.
    pub fn start(cfg: AcctLogConfig) -> Result<AcctLogger, String> {
        if cfg.sqlite_path.is_none() && cfg.ipfix_collector.is_none() {
            return Err("accounting log: neither a SQLite path nor an IPFIX collector".into());
        }
        if cfg.batch_rows == 0 || cfg.queue_rows == 0 {
            return Err("accounting log: batch_rows and queue_rows must be at least 1".into());
        }
        if cfg.ipfix.max_message < ipfix::min_message() || cfg.ipfix.max_message > 65_507 {
            return Err(format!(
                "accounting log: ipfix max_message {} out of range {}..=65507",
                cfg.ipfix.max_message,
                ipfix::min_message()
            ));
        }
        let db = match &cfg.sqlite_path {
            Some(p) => Some(db::Db::open(
                p,
                cfg.synchronous,
                Duration::from_millis(cfg.db_busy_ms),
            )?),
            None => None,
        };
        let ipfix = match cfg.ipfix_collector {
            Some(addr) => Some(IpfixOut::connect(addr, cfg.ipfix)?),
            None => None,
        };
        let (tx, rx) = channel::bounded(cfg.queue_rows);
        let counters = Arc::new(Counters::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let w = Writer {
            rx,
            db,
            ipfix,
            batch_rows: cfg.batch_rows,
            batch: Duration::from_millis(cfg.batch_ms),
            acct: Vec::with_capacity(cfg.batch_rows),
            sessions: Vec::new(),
            oldest: None,
            retry_at: None,
            counters: counters.clone(),
            stopping: stopping.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("pgw-acctlog".into())
            .spawn(move || w.run())
            .map_err(|e| format!("accounting log: starting the writer thread: {e}"))?;
        Ok(AcctLogger {
            tx: Some(tx),
            thread: Some(thread),
            counters,
            stopping,
        })
    }

    fn send(&self, m: Msg) -> bool {
        let ok = match &self.tx {
            Some(tx) => match tx.try_send(m) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if !ok {
            add(&self.counters.queue_full, 1);
        }
        ok
    }

    /// Queue one accounting row; never blocks. `false`: the queue was full
    /// (or the logger stopped); the row is dropped and counted.
    pub fn submit(&self, row: AcctRow) -> bool {
        let ok = self.send(Msg::Acct(row));
        if ok {
            add(&self.counters.submitted, 1);
        }
        ok
    }

    /// Queue one session log row; never blocks (as [`submit`](Self::submit)).
    pub fn submit_session(&self, row: SessionLogRow) -> bool {
        self.send(Msg::Session(row))
    }

    /// Accounting rows durably committed: the first `acknowledged()` rows
    /// `submit` accepted (without a database: rows exported).
    pub fn acknowledged(&self) -> u64 {
        self.counters.acknowledged.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> AcctLogStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AcctLogStats {
            submitted: g(&c.submitted),
            queue_full: g(&c.queue_full),
            rows_written: g(&c.rows_written),
            sessions_written: g(&c.sessions_written),
            batches: g(&c.batches),
            db_errors: g(&c.db_errors),
            ipfix_messages: g(&c.ipfix_messages),
            ipfix_records: g(&c.ipfix_records),
            ipfix_templates: g(&c.ipfix_templates),
            ipfix_errors: g(&c.ipfix_errors),
            lost_on_stop: g(&c.lost_on_stop),
        }
    }

    /// Commit (and export) everything queued before this call, waiting at
    /// most `timeout`. Blocks: not for the management loop's hot turn; for
    /// tools, tests and shutdown. `false` on timeout or a failing commit.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else { return false };
        let (done_tx, done_rx) = channel::bounded(1);
        let deadline = Instant::now() + timeout;
        if tx.send_timeout(Msg::Flush(done_tx), timeout).is_err() {
            return false;
        }
        done_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Stop: commit and export every row accepted so far, join the thread.
    /// Returns the final counters. Idempotent.
    pub fn stop(&mut self) -> AcctLogStats {
        self.stopping.store(true, Ordering::Release);
        self.tx = None; // the writer drains the queue, then sees it closed
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for AcctLogger {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The IPFIX side of the writer: a connected UDP socket and the exporter.
struct IpfixOut {
    sock: UdpSocket,
    exporter: ipfix::Exporter,
}

impl IpfixOut {
    fn connect(addr: SocketAddr, cfg: ipfix::ExporterConfig) -> Result<IpfixOut, String> {
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let e = |what: &str, e: std::io::Error| format!("ipfix collector {addr}: {what}: {e}");
        let sock = UdpSocket::bind(local).map_err(|x| e("bind", x))?;
        sock.connect(addr).map_err(|x| e("connect", x))?;
        // A collector that is slow or gone must not stall the database side.
        sock.set_nonblocking(true)
            .map_err(|x| e("set_nonblocking", x))?;
        Ok(IpfixOut {
            sock,
            exporter: ipfix::Exporter::new(cfg),
        })
    }
}

struct Writer {
    rx: Receiver<Msg>,
    db: Option<db::Db>,
    ipfix: Option<IpfixOut>,
    batch_rows: usize,
    batch: Duration,
    acct: Vec<AcctRow>,
    sessions: Vec<SessionLogRow>,
    /// When the oldest pending row arrived.
    oldest: Option<Instant>,
    /// After a failed commit: not before then.
    retry_at: Option<Instant>,
    counters: Arc<Counters>,
    stopping: Arc<AtomicBool>,
}

/// Idle wait when nothing is pending.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Shortest wait before a failed commit is tried again.
const RETRY_MIN: Duration = Duration::from_millis(10);
/// Commits tried at stop before rows are given up.
const STOP_TRIES: u32 = 3;

impl Writer {
    fn pending(&self) -> usize {
        self.acct.len() + self.sessions.len()
    }

    /// Rows held beyond which a failing writer stops taking more.
    fn cap(&self) -> usize {
        self.batch_rows.saturating_mul(4)
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Acct(r) => self.acct.push(r),
            Msg::Session(s) => self.sessions.push(s),
            Msg::Flush(done) => {
                if self.commit() {
                    let _ = done.send(());
                }
                return;
            }
        }
        self.oldest.get_or_insert_with(Instant::now);
    }

    fn due(&self, now: Instant) -> bool {
        if self.pending() == 0 {
            return false;
        }
        if let Some(t) = self.retry_at {
            return now >= t;
        }
        self.pending() >= self.batch_rows
            || self
                .oldest
                .is_some_and(|t| now.duration_since(t) >= self.batch)
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.pending() == 0 {
            return None;
        }
        self.retry_at.or(self.oldest.map(|t| t + self.batch))
    }

    /// The IPFIX template refresh timer: send the templates alone when due.
    /// Returns how long until it is due next (`None`: no timer yet).
    fn refresh_templates(&mut self) -> Option<Duration> {
        let out = self.ipfix.as_mut()?;
        let now_ms = u64::try_from(unix_ms_now()).unwrap_or(0);
        if let Some(m) = out.exporter.refresh(now_ms) {
            let c = &self.counters;
            match out.sock.send(&m) {
                Ok(_) => {
                    add(&c.ipfix_messages, 1);
                    add(&c.ipfix_templates, 1);
                }
                Err(_) => add(&c.ipfix_errors, 1),
            }
        }
        let at = out.exporter.refresh_at()?;
        Some(Duration::from_millis(at.saturating_sub(now_ms)))
    }

    fn run(mut self) {
        loop {
            let now = Instant::now();
            if self.due(now) {
                self.commit();
            }
            let refresh_in = self.refresh_templates();
            let failing = self.retry_at.is_some();
            if failing && self.pending() >= self.cap() {
                // Hold back: the queue fills, `submit` refuses and counts.
                if self.stopping.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep(self.batch.clamp(RETRY_MIN, IDLE_WAIT));
                continue;
            }
            let wait = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(IDLE_WAIT)
                .min(refresh_in.unwrap_or(IDLE_WAIT).max(RETRY_MIN));
            match self.rx.recv_timeout(wait) {
                Ok(m) => {
                    self.take(m);
                    // Take what else is there without waiting, up to a batch.
                    while self.pending() < self.batch_rows {
                        match self.rx.try_recv() {
                            Ok(m) => self.take(m),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Stopping: everything still queued, then the last commits.
        while let Ok(m) = self.rx.try_recv() {
            self.take(m);
        }
        for i in 0..STOP_TRIES {
            if self.pending() == 0 || self.commit() {
                break;
            }
            if i + 1 < STOP_TRIES {
                std::thread::sleep(self.batch.clamp(RETRY_MIN, IDLE_WAIT));
            }
        }
        add(&self.counters.lost_on_stop, self.pending() as u64);
    }

    /// Commit what is pending, then export it. `true` if nothing is pending
    /// afterwards.
    fn commit(&mut self) -> bool {
        if self.pending() == 0 {
            return true;
        }
        let c = self.counters.clone();
        if let Some(db) = &mut self.db {
            if let Err(e) = db.insert(&self.acct, &self.sessions) {
                let n = c.db_errors.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::error!(
                        rows = self.pending(),
                        errors = n + 1,
                        "accounting log: commit failed, retrying: {e}"
                    );
                }
                self.retry_at = Some(Instant::now() + self.batch.max(RETRY_MIN));
                return false;
            }
            add(&c.batches, 1);
            add(&c.rows_written, self.acct.len() as u64);
            add(&c.sessions_written, self.sessions.len() as u64);
            c.acknowledged
                .fetch_add(self.acct.len() as u64, Ordering::Release);
        }
        if let Some(out) = &mut self.ipfix {
            let now_ms = u64::try_from(unix_ms_now()).unwrap_or(0);
            let enc = out.exporter.encode(&self.acct, now_ms);
            for m in &enc.messages {
                match out.sock.send(m) {
                    Ok(_) => add(&c.ipfix_messages, 1),
                    Err(_) => add(&c.ipfix_errors, 1),
                }
            }
            add(&c.ipfix_records, enc.records);
            add(&c.ipfix_templates, enc.templates);
            if self.db.is_none() {
                c.acknowledged
                    .fetch_add(self.acct.len() as u64, Ordering::Release);
            }
        }
        self.acct.clear();
        self.sessions.clear();
        self.oldest = None;
        self.retry_at = None;
        true
    }
}

/// Unix ms now (for callers building rows by hand).
pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
