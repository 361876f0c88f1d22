//! Durability of the accounting log: a writer process killed with SIGKILL
//! mid-stream loses no row it had acknowledged, and the rows it holds form a
//! gap-free prefix of what was submitted.
//!
//! The writer is this test binary run again with `PGW_ACCTLOG_CHILD_DB` set
//! (test `child_writer`): it submits rows 0, 1, 2, ... (row `i` has device id
//! `dev-i` and subscriber port `i % 65536`) and prints `ACK <n>` each time
//! `acknowledged()` grows. The parent kills it once it has seen several
//! batches acknowledged, then opens the database.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgw_engine::mgmt::acctlog::{query_recent, AcctLogConfig, AcctLogger, AcctRow, Synchronous};
use pgw_pipelines::gw::acct::CloseReason;

const CHILD_ENV: &str = "PGW_ACCTLOG_CHILD_DB";

fn row(i: u64) -> AcctRow {
    AcctRow {
        device_id: format!("dev-{i}"),
        subscriber_ip: Ipv4Addr::new(127, 1, 0, 1),
        subscriber_port: i as u16,
        subscriber_ip6: None,
        representative_ip6: None,
        real_server_ip6: None,
        nat_ip6: None,
        service: "web".into(),
        representative_ip: Ipv4Addr::new(127, 0, 0, 80),
        representative_port: 80,
        proxy_accounting: false,
        server_name: "durable.example".into(),
        real_server_ip: Ipv4Addr::new(127, 0, 1, 1),
        real_server_port: 8080,
        nat_ip: Ipv4Addr::new(127, 0, 2, 1),
        nat_port: 1024,
        protocol: 6,
        start_unix_ms: 1_700_000_000_000 + i as i64,
        end_unix_ms: 1_700_000_000_500 + i as i64,
        packets_up: i,
        bytes_up: 40 * i,
        packets_down: i + 1,
        bytes_down: 1500 * i,
        close_reason: CloseReason::Fin,
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("pgw-acctlog-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A fresh scratch directory `tag` and the database path in it, for a
/// parent test; `None` in the child process (the parent tests do nothing
/// there).
fn parent_scratch(tag: &str) -> Option<(PathBuf, PathBuf)> {
    if std::env::var(CHILD_ENV).is_ok() {
        return None;
    }
    let dir = tempdir(tag);
    let db = dir.join("acct.sqlite");
    Some((dir, db))
}

/// The child side; a no-op unless run by `sigkill_loses_no_acknowledged_row`.
#[test]
fn child_writer() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let l = AcctLogger::start(AcctLogConfig {
        sqlite_path: Some(db.into()),
        batch_rows: 200,
        batch_ms: 20,
        queue_rows: 4096,
        synchronous: Synchronous::Full,
        ..AcctLogConfig::default()
    })
    .unwrap();
    let mut last = 0;
    let mut i = 0u64;
    let t = Instant::now();
    // Bounded: the parent kills us long before this ends.
    while t.elapsed() < Duration::from_secs(60) {
        if l.submit(row(i)) {
            i += 1;
        } else {
            std::thread::sleep(Duration::from_micros(200)); // queue full: retry the same row
        }
        let a = l.acknowledged();
        if a != last {
            println!("ACK {a}");
            last = a;
        }
    }
    // Never reached in the test: no clean stop on purpose.
    std::process::abort();
}

fn assert_prefix(db: &Path, acked: u64) -> u64 {
    let rows = query_recent(db, usize::MAX >> 1).unwrap();
    let n = rows.len() as u64;
    assert!(
        n >= acked,
        "{} rows in the database but {acked} were acknowledged",
        n
    );
    // newest first: row k from the end is row (n - 1 - k); all equal to what was sent
    for (k, r) in rows.iter().enumerate() {
        let i = n - 1 - k as u64;
        assert_eq!(*r, row(i), "row {i}");
    }
    n
}

#[test]
fn sigkill_loses_no_acknowledged_row() {
    let Some((dir, db)) = parent_scratch("durability") else {
        return;
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Kept open until the kill: a closed pipe would make the child's
    // println! panic and unwind (dropping the logger = a clean stop).
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0u64;
    let mut acks_seen = 0;
    let t = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            let n: u64 = n.trim().parse().unwrap();
            assert!(n > acked, "acknowledged went back: {acked} then {n}");
            acked = n;
            acks_seen += 1;
            if acks_seen >= 15 && acked >= 3_000 {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(50),
            "child too slow: {acked} acknowledged"
        );
    }
    // A few ms more (varying from run to run) so the kill lands anywhere in
    // the writer's batch cycle (batch_ms = 20), then SIGKILL while the child
    // keeps submitting: no destructor, no flush.
    std::thread::sleep(Duration::from_millis(u64::from(std::process::id() % 25)));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    drop(lines);
    assert!(
        acked >= 3_000,
        "the child stopped early: {acked} acknowledged"
    );
    let n = assert_prefix(&db, acked);
    println!("acknowledged {acked} before SIGKILL, {n} rows in the database");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clean_stop_flushes_every_submitted_row() {
    let Some((dir, db)) = parent_scratch("cleanstop") else {
        return;
    };
    let mut l = AcctLogger::start(AcctLogConfig {
        sqlite_path: Some(db.clone()),
        batch_rows: 1000,
        batch_ms: 60_000, // nothing commits before stop but full batches
        queue_rows: 10_000,
        ..AcctLogConfig::default()
    })
    .unwrap();
    let n = 2_345u64;
    for i in 0..n {
        assert!(l.submit(row(i)));
    }
    let st = l.stop();
    assert_eq!(l.acknowledged(), n);
    assert_eq!((st.rows_written, st.lost_on_stop, st.queue_full), (n, 0, 0));
    assert_eq!(assert_prefix(&db, n), n);
    let _ = std::fs::remove_dir_all(&dir);
}
