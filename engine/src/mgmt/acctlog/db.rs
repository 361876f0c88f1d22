//! The SQLite accounting log (FIG. 29's accounting log DB and the session
//! log of FIG. 11): schema, batched inserts, reads.
//!
//! Durability: WAL journal; `synchronous=FULL` fsyncs the WAL at every
//! commit, so a committed batch survives a power loss; `NORMAL` (the
//! alternative in [`Synchronous`]) fsyncs only at checkpoints: a commit then
//! survives a crash of the process (its pages are in the OS) but the last
//! batches may be lost with the machine. Readers (`pgw accounting`) do not
//! block the writer in WAL mode.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, Row};

use super::rows::{AcctRow, SessionLogRow, SessionStateChange};
use pgw_pipelines::gw::acct::CloseReason;

/// The schema's version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;

/// The schema. Addresses are dotted-quad TEXT (readable with the `sqlite3`
/// shell), times Unix milliseconds, counters INTEGER (SQLite's 64-bit signed;
/// a counter above 2^63 − 1 is stored as 2^63 − 1).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounting (
    id                  INTEGER PRIMARY KEY,
    device_id           TEXT    NOT NULL,
    subscriber_ip       TEXT    NOT NULL,
    subscriber_port     INTEGER NOT NULL,
    service             TEXT    NOT NULL,
    representative_ip   TEXT    NOT NULL,
    representative_port INTEGER NOT NULL,
    proxy_accounting    INTEGER NOT NULL,   -- 0 or 1
    server_name         TEXT    NOT NULL,   -- HTTP Host / TLS SNI, or ''
    real_server_ip      TEXT    NOT NULL,
    real_server_port    INTEGER NOT NULL,
    nat_ip              TEXT    NOT NULL,
    nat_port            INTEGER NOT NULL,
    protocol            INTEGER NOT NULL,
    start_unix_ms       INTEGER NOT NULL,
    end_unix_ms         INTEGER NOT NULL,
    packets_up          INTEGER NOT NULL,
    bytes_up            INTEGER NOT NULL,
    packets_down        INTEGER NOT NULL,
    bytes_down          INTEGER NOT NULL,
    close_reason        TEXT    NOT NULL,   -- 'fin', 'rst', 'idle'
    subscriber_ip6      TEXT    NOT NULL DEFAULT '',  -- NAT64, NAT66: the IPv6 subscriber
    representative_ip6  TEXT    NOT NULL DEFAULT '',  -- NAT64: the IPv6 destination; NAT66: the VIP
    real_server_ip6     TEXT    NOT NULL DEFAULT '',  -- NAT66: the member's IPv6 address
    nat_ip6             TEXT    NOT NULL DEFAULT ''   -- NAT66: the key's IPv6 address
);
CREATE INDEX IF NOT EXISTS accounting_device_start ON accounting (device_id, start_unix_ms);
CREATE TABLE IF NOT EXISTS session_log (
    id              INTEGER PRIMARY KEY,
    session_id      INTEGER NOT NULL,
    device_id       TEXT    NOT NULL,
    user            TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    gw              INTEGER NOT NULL,
    nas_ip          TEXT    NOT NULL,   -- '' if unknown
    acct_session_id TEXT    NOT NULL,
    start_unix_ms   INTEGER NOT NULL,
    end_unix_ms     INTEGER NOT NULL,
    state_history   TEXT    NOT NULL,   -- JSON [{\"state\":\"act\",\"at_unix_ms\":...},...]
    close_cause     TEXT    NOT NULL,
    in_octets       INTEGER NOT NULL,
    out_octets      INTEGER NOT NULL,
    in_packets      INTEGER NOT NULL,
    out_packets     INTEGER NOT NULL,
    session_time_s  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS session_log_device_start ON session_log (device_id, start_unix_ms);
";

/// Schema version 1 → 2 (one transaction: all or nothing).
const MIGRATE_1_TO_2: &str = "BEGIN;
ALTER TABLE accounting ADD COLUMN subscriber_ip6 TEXT NOT NULL DEFAULT '';
PRAGMA user_version=2;
COMMIT;";

/// Schema version 2 → 3: the IPv6 destination, server and key of NAT64 and
/// NAT66 connections (old rows get '').
const MIGRATE_2_TO_3: &str = "BEGIN;
ALTER TABLE accounting ADD COLUMN representative_ip6 TEXT NOT NULL DEFAULT '';
ALTER TABLE accounting ADD COLUMN real_server_ip6 TEXT NOT NULL DEFAULT '';
ALTER TABLE accounting ADD COLUMN nat_ip6 TEXT NOT NULL DEFAULT '';
PRAGMA user_version=3;
COMMIT;";

/// How hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync the WAL at every commit: survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a process crash, not power loss.
    Normal,
}

/// The writer's connection.
pub struct Db {
    conn: Connection,
}

const INSERT_ACCT: &str = "INSERT INTO accounting (device_id, subscriber_ip, subscriber_port, \
     service, representative_ip, representative_port, proxy_accounting, server_name, \
     real_server_ip, real_server_port, nat_ip, nat_port, protocol, start_unix_ms, end_unix_ms, \
     packets_up, bytes_up, packets_down, bytes_down, close_reason, subscriber_ip6, \
     representative_ip6, real_server_ip6, nat_ip6) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, \
     ?22, ?23, ?24)";

const INSERT_SESSION: &str = "INSERT INTO session_log (session_id, device_id, user, address, gw, \
     nas_ip, acct_session_id, start_unix_ms, end_unix_ms, state_history, close_cause, \
     in_octets, out_octets, in_packets, out_packets, session_time_s) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

const SELECT_ACCT: &str = "SELECT device_id, subscriber_ip, subscriber_port, service, \
     representative_ip, representative_port, proxy_accounting, server_name, real_server_ip, \
     real_server_port, nat_ip, nat_port, protocol, start_unix_ms, end_unix_ms, packets_up, \
     bytes_up, packets_down, bytes_down, close_reason, subscriber_ip6, representative_ip6, \
     real_server_ip6, nat_ip6 FROM accounting";

const SELECT_SESSION: &str = "SELECT session_id, device_id, user, address, gw, nas_ip, \
     acct_session_id, start_unix_ms, end_unix_ms, state_history, close_cause, in_octets, \
     out_octets, in_packets, out_packets, session_time_s FROM session_log";

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: {what}: {e}", path.display())
}

impl Db {
    /// Open (create) the database, set WAL and the sync mode, create the
    /// tables. A commit waits up to `busy` for another connection's lock
    /// before it fails (and is retried).
    pub fn open(path: &Path, sync: Synchronous, busy: Duration) -> Result<Db, String> {
        let conn = Connection::open(path).map_err(|e| err(path, "opening", e))?;
        conn.busy_timeout(busy)
            .map_err(|e| err(path, "busy_timeout", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| err(path, "journal_mode=WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(err(path, "journal_mode=WAL", format!("got {mode}")));
        }
        let sync = match sync {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        // (the writer only appends: a page cache of 256 KiB, not SQLite's
        // default 2 MiB that grows with the file through a long run)
        conn.execute_batch(&format!(
            "PRAGMA synchronous={sync}; PRAGMA cache_size=-256;"
        ))
        .map_err(|e| err(path, "synchronous", e))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| err(path, "user_version", e))?;
        if version == 1 {
            // Version 1 had no subscriber_ip6 column: add it (old rows get
            // '', as IPv4 subscribers' rows do).
            conn.execute_batch(MIGRATE_1_TO_2)
                .map_err(|e| err(path, "migrating the schema from version 1", e))?;
        }
        if version == 1 || version == 2 {
            // Version 2 had no IPv6 destination, server or key columns.
            conn.execute_batch(MIGRATE_2_TO_3)
                .map_err(|e| err(path, "migrating the schema from version 2", e))?;
        } else if version != 0 && version != SCHEMA_VERSION {
            return Err(err(
                path,
                "schema",
                format!("version {version}, this pgw writes version {SCHEMA_VERSION}"),
            ));
        }
        conn.execute_batch(SCHEMA)
            .map_err(|e| err(path, "creating the tables", e))?;
        conn.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION};"))
            .map_err(|e| err(path, "user_version", e))?;
        Ok(Db { conn })
    }

    /// Insert both batches in one transaction. On error nothing is written
    /// (the transaction rolls back).
    pub fn insert(&mut self, acct: &[AcctRow], sessions: &[SessionLogRow]) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        {
            let mut st = tx.prepare_cached(INSERT_ACCT).map_err(|e| e.to_string())?;
            for r in acct {
                st.execute(params![
                    r.device_id,
                    r.subscriber_ip.to_string(),
                    r.subscriber_port,
                    r.service,
                    r.representative_ip.to_string(),
                    r.representative_port,
                    r.proxy_accounting,
                    r.server_name,
                    r.real_server_ip.to_string(),
                    r.real_server_port,
                    r.nat_ip.to_string(),
                    r.nat_port,
                    r.protocol,
                    r.start_unix_ms,
                    r.end_unix_ms,
                    sql_u64(r.packets_up),
                    sql_u64(r.bytes_up),
                    sql_u64(r.packets_down),
                    sql_u64(r.bytes_down),
                    close_text(r.close_reason),
                    ip6_text(r.subscriber_ip6),
                    ip6_text(r.representative_ip6),
                    ip6_text(r.real_server_ip6),
                    ip6_text(r.nat_ip6),
                ])
                .map_err(|e| e.to_string())?;
            }
            let mut st = tx
                .prepare_cached(INSERT_SESSION)
                .map_err(|e| e.to_string())?;
            for s in sessions {
                let history = serde_json::to_string(&s.state_history).unwrap_or_default();
                st.execute(params![
                    sql_u64(s.session_id),
                    s.device_id,
                    s.user,
                    s.address.to_string(),
                    s.gw,
                    s.nas_ip.map(|a| a.to_string()).unwrap_or_default(),
                    s.acct_session_id,
                    s.start_unix_ms,
                    s.end_unix_ms,
                    history,
                    s.close_cause,
                    sql_u64(s.in_octets),
                    sql_u64(s.out_octets),
                    sql_u64(s.in_packets),
                    sql_u64(s.out_packets),
                    sql_u64(s.session_time_s),
                ])
                .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }
}

fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn close_text(c: CloseReason) -> &'static str {
    match c {
        CloseReason::Fin => "fin",
        CloseReason::Rst => "rst",
        CloseReason::IdleTimeout => "idle",
        CloseReason::Shutdown => "shutdown",
    }
}

fn close_parse(s: &str) -> Option<CloseReason> {
    match s {
        "fin" => Some(CloseReason::Fin),
        "rst" => Some(CloseReason::Rst),
        "idle" => Some(CloseReason::IdleTimeout),
        "shutdown" => Some(CloseReason::Shutdown),
        _ => None,
    }
}

/// A column that must hold something this module wrote.
/// The SQLite library the accounting database is written with.
pub fn sqlite_version() -> &'static str {
    rusqlite::version()
}

fn bad(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        i,
        rusqlite::types::Type::Text,
        format!("not {what}").into(),
    )
}

fn ip(r: &Row, i: usize) -> rusqlite::Result<Ipv4Addr> {
    let s: String = r.get(i)?;
    s.parse().map_err(|_| bad(i, "an IPv4 address"))
}

fn u64_col(r: &Row, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| bad(i, "a counter"))
}

fn acct_from_row(r: &Row) -> rusqlite::Result<AcctRow> {
    let close: String = r.get(19)?;
    Ok(AcctRow {
        device_id: r.get(0)?,
        subscriber_ip: ip(r, 1)?,
        subscriber_port: r.get(2)?,
        service: r.get(3)?,
        representative_ip: ip(r, 4)?,
        representative_port: r.get(5)?,
        proxy_accounting: r.get(6)?,
        server_name: r.get(7)?,
        real_server_ip: ip(r, 8)?,
        real_server_port: r.get(9)?,
        nat_ip: ip(r, 10)?,
        nat_port: r.get(11)?,
        protocol: r.get(12)?,
        start_unix_ms: r.get(13)?,
        end_unix_ms: r.get(14)?,
        packets_up: u64_col(r, 15)?,
        bytes_up: u64_col(r, 16)?,
        packets_down: u64_col(r, 17)?,
        bytes_down: u64_col(r, 18)?,
        close_reason: close_parse(&close).ok_or_else(|| bad(19, "a close reason"))?,
        subscriber_ip6: ip6(r, 20)?,
        representative_ip6: ip6(r, 21)?,
        real_server_ip6: ip6(r, 22)?,
        nat_ip6: ip6(r, 23)?,
    })
}

/// An optional IPv6 address column ('' for none).
fn ip6(r: &Row, i: usize) -> rusqlite::Result<Option<std::net::Ipv6Addr>> {
    let s: String = r.get(i)?;
    if s.is_empty() {
        Ok(None)
    } else {
        Ok(Some(s.parse().map_err(|_| bad(i, "an IPv6 address"))?))
    }
}

fn ip6_text(a: Option<std::net::Ipv6Addr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

fn session_from_row(r: &Row) -> rusqlite::Result<SessionLogRow> {
    let nas: String = r.get(5)?;
    let history: String = r.get(9)?;
    let state_history: Vec<SessionStateChange> =
        serde_json::from_str(&history).map_err(|_| bad(9, "a state history"))?;
    Ok(SessionLogRow {
        session_id: u64_col(r, 0)?,
        device_id: r.get(1)?,
        user: r.get(2)?,
        address: ip(r, 3)?,
        gw: r.get(4)?,
        nas_ip: if nas.is_empty() {
            None
        } else {
            Some(nas.parse().map_err(|_| bad(5, "an IPv4 address"))?)
        },
        acct_session_id: r.get(6)?,
        start_unix_ms: r.get(7)?,
        end_unix_ms: r.get(8)?,
        state_history,
        close_cause: r.get(10)?,
        in_octets: u64_col(r, 11)?,
        out_octets: u64_col(r, 12)?,
        in_packets: u64_col(r, 13)?,
        out_packets: u64_col(r, 14)?,
        session_time_s: u64_col(r, 15)?,
    })
}

/// Open an existing log for reading (never creates one).
fn open_existing(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err(path, "opening the accounting log", e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| err(path, "busy_timeout", e))?;
    Ok(conn)
}

/// The `limit` most recent accounting rows (last written first).
pub fn query_recent(path: &Path, limit: usize) -> Result<Vec<AcctRow>, String> {
    query_latest(path, "accounting", SELECT_ACCT, limit, acct_from_row)
}

/// The `limit` most recent session log rows (last written first).
pub fn query_recent_sessions(path: &Path, limit: usize) -> Result<Vec<SessionLogRow>, String> {
    query_latest(path, "session_log", SELECT_SESSION, limit, session_from_row)
}

/// The `limit` rows of `select` (a query of `table`) with the highest ids,
/// last written first; errors name the file and the table.
fn query_latest<T>(
    path: &Path,
    table: &str,
    select: &str,
    limit: usize,
    from_row: fn(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>, String> {
    let conn = open_existing(path)?;
    let mut st = conn
        .prepare(&format!("{select} ORDER BY id DESC LIMIT ?1"))
        .map_err(|e| err(path, table, e))?;
    let rows = st
        .query_map([sql_u64(limit as u64)], from_row)
        .map_err(|e| err(path, table, e))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, table, e))
}
