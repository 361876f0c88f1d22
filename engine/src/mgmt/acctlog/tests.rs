use super::*;
use pgw_pipelines::gw::acct::{AcctRecord, CloseReason};
use pgw_pipelines::gw::acct::{Attr, AttrKind};
use pgw_pipelines::gw::tables::ServiceId;
use pgw_pipelines::mgmt::assign::GwId;
use pgw_pipelines::mgmt::session::{
    CloseCause, SessionLogRecord, SessionState, Transition, TransitionCause,
};
use pgw_pipelines::mgmt::session::{NasInfo, SessionRef, Usage};
use std::net::Ipv4Addr;
use std::path::Path;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::AtomicUsize;
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "pgw-acctlog-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const BUSY: Duration = Duration::from_secs(1);

fn row(i: u32) -> AcctRow {
    AcctRow {
        device_id: format!("dev-{i}"),
        subscriber_ip: Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8),
        subscriber_port: 40_000 + (i % 20_000) as u16,
        subscriber_ip6: None,
        representative_ip6: None,
        real_server_ip6: None,
        nat_ip6: None,
        service: if i.is_multiple_of(2) {
            "web".into()
        } else {
            "mail".into()
        },
        representative_ip: Ipv4Addr::new(127, 0, 0, 80),
        representative_port: 443,
        proxy_accounting: i.is_multiple_of(3),
        server_name: if i.is_multiple_of(4) {
            String::new()
        } else {
            format!("h{i}.example")
        },
        real_server_ip: Ipv4Addr::new(127, 0, 1, (i % 7) as u8),
        real_server_port: 8443,
        nat_ip: Ipv4Addr::new(127, 0, 2, 1),
        nat_port: 1024 + (i % 1000) as u16,
        protocol: if i.is_multiple_of(5) { 17 } else { 6 },
        start_unix_ms: 1_700_000_000_000 + i64::from(i),
        end_unix_ms: 1_700_000_100_000 + 2 * i64::from(i),
        packets_up: u64::from(i) + 1,
        bytes_up: 1_000 * u64::from(i) + 40,
        packets_down: 2 * u64::from(i) + 1,
        bytes_down: (1 << 40) + u64::from(i),
        close_reason: [CloseReason::Fin, CloseReason::Rst, CloseReason::IdleTimeout]
            [(i % 3) as usize],
    }
}

fn session(i: u32) -> SessionLogRow {
    SessionLogRow {
        session_id: 900 + u64::from(i),
        device_id: format!("dev-{i}"),
        user: format!("user{i}@example"),
        address: Ipv4Addr::new(127, 3, 0, i as u8),
        gw: 2,
        nas_ip: if i.is_multiple_of(2) {
            Some(Ipv4Addr::new(127, 4, 0, 1))
        } else {
            None
        },
        acct_session_id: format!("A{i:08X}"),
        start_unix_ms: 1_700_000_000_000,
        end_unix_ms: 1_700_000_500_000,
        state_history: vec![
            SessionStateChange {
                state: "act".into(),
                at_unix_ms: 1_700_000_000_000,
                from: "none".into(),
                cause: "entry".into(),
            },
            SessionStateChange {
                state: "dormant".into(),
                at_unix_ms: 1_700_000_200_000,
                from: "act".into(),
                cause: "nas_stop".into(),
            },
            SessionStateChange {
                state: "close".into(),
                at_unix_ms: 1_700_000_500_000,
                from: "dormant".into(),
                cause: "status_close:1".into(),
            },
        ],
        close_cause: "status_close:1".into(),
        in_octets: 11,
        out_octets: 22,
        in_packets: 3,
        out_packets: 4,
        session_time_s: 500,
    }
}

#[test]
fn sqlite_round_trip_keeps_every_value() {
    let d = TempDir::new("roundtrip");
    let path = d.path().join("a.sqlite");
    let mut db = db::Db::open(&path, Synchronous::Full, BUSY).unwrap();
    let rows: Vec<AcctRow> = (0..25).map(row).collect();
    let mut extreme = row(99);
    extreme.packets_up = u64::from(u32::MAX) * 3;
    extreme.bytes_down = i64::MAX as u64;
    extreme.start_unix_ms = 0;
    extreme.device_id = "端末-ü".into(); // non-ASCII survives
    let sessions: Vec<SessionLogRow> = (0..3).map(session).collect();
    db.insert(&rows[..10], &sessions).unwrap();
    db.insert(&rows[10..], &[]).unwrap();
    db.insert(std::slice::from_ref(&extreme), &[]).unwrap();

    let back = query_recent(&path, 1000).unwrap();
    let mut want: Vec<AcctRow> = rows.clone();
    want.push(extreme.clone());
    want.reverse(); // newest first
    assert_eq!(back, want);
    assert_eq!(query_recent(&path, 2).unwrap(), want[..2].to_vec());

    let s = query_recent_sessions(&path, 10).unwrap();
    let mut sw = sessions.clone();
    sw.reverse();
    assert_eq!(s, sw);

    // The columns hold plain values (readable with the sqlite3 shell).
    let c = rusqlite::Connection::open(&path).unwrap();
    let (ip, proxy, close, mode): (String, i64, String, String) = c
        .query_row(
            "SELECT subscriber_ip, proxy_accounting, close_reason, \
             (SELECT journal_mode FROM pragma_journal_mode) FROM accounting WHERE id = 4",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (ip.as_str(), proxy, close.as_str(), mode.as_str()),
        ("127.1.0.3", 1, "fin", "wal")
    );
    let hist: String = c
        .query_row(
            "SELECT state_history FROM session_log WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        hist,
        concat!(
            r#"[{"state":"act","at_unix_ms":1700000000000,"from":"none","cause":"entry"},"#,
            r#"{"state":"dormant","at_unix_ms":1700000200000,"from":"act","cause":"nas_stop"},"#,
            r#"{"state":"close","at_unix_ms":1700000500000,"from":"dormant","cause":"status_close:1"}]"#
        )
    );
}

/// The schema of an older version: the accounting table's columns up to
/// `close_reason`, and `subscriber_ip6` from version 2 on.
fn old_schema(version: i64) -> String {
    let (head, tail) = db::SCHEMA.split_once("    close_reason").unwrap();
    let (_, rest) = tail.split_once("\n);").unwrap();
    let more = match version {
        1 => "",
        2 => ",\n    subscriber_ip6 TEXT NOT NULL DEFAULT ''",
        _ => unreachable!(),
    };
    format!("{head}    close_reason TEXT NOT NULL{more}\n);{rest}")
}

/// A database of schema version 2 (no IPv6 destination, server or key) is
/// migrated on open: its rows stay readable, a NAT66 row keeps its VIP,
/// member and key.
#[test]
fn a_version_2_database_is_migrated_and_keeps_its_rows() {
    let d = TempDir::new("migrate2");
    let path = d.path().join("v2.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&old_schema(2)).unwrap();
        c.execute_batch(
            "INSERT INTO accounting (device_id, subscriber_ip, subscriber_port, service, \
             representative_ip, representative_port, proxy_accounting, server_name, \
             real_server_ip, real_server_port, nat_ip, nat_port, protocol, start_unix_ms, \
             end_unix_ms, packets_up, bytes_up, packets_down, bytes_down, close_reason, \
             subscriber_ip6) VALUES ('old', '0.0.0.0', 1000, 'web', '127.0.0.80', 80, 1, '', \
             '127.0.1.10', 8080, '127.0.2.1', 2000, 6, 10, 20, 1, 2, 3, 4, 'fin', '2001:db8::9'); \
             PRAGMA user_version=2;",
        )
        .unwrap();
        assert!(c.prepare("SELECT nat_ip6 FROM accounting").is_err());
    }
    let mut new = row(6);
    new.subscriber_ip = Ipv4Addr::UNSPECIFIED;
    new.representative_ip = Ipv4Addr::UNSPECIFIED;
    new.subscriber_ip6 = Some("2001:db8::6".parse().unwrap());
    new.representative_ip6 = Some("2001:db8:33::1".parse().unwrap());
    new.real_server_ip6 = Some("2001:db8:80::11".parse().unwrap());
    new.nat_ip6 = Some("2001:db8:80::100".parse().unwrap());
    db::Db::open(&path, Synchronous::Full, BUSY)
        .unwrap()
        .insert(std::slice::from_ref(&new), &[])
        .unwrap();
    let back = query_recent(&path, 10).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0], new);
    assert_eq!(
        (
            back[1].device_id.as_str(),
            back[1].subscriber_ip6,
            back[1].representative_ip6,
            back[1].real_server_ip6,
            back[1].nat_ip6
        ),
        (
            "old",
            Some("2001:db8::9".parse().unwrap()),
            None,
            None,
            None
        )
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, db::SCHEMA_VERSION);
}

/// A database of schema version 1 (no subscriber_ip6 column) is migrated
/// on open: its rows stay readable, new rows carry the IPv6 subscriber.
#[test]
fn a_version_1_database_is_migrated_and_keeps_its_rows() {
    let d = TempDir::new("migrate");
    let path = d.path().join("v1.sqlite");
    let v1_schema = old_schema(1);
    assert_ne!(v1_schema, db::SCHEMA);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&v1_schema).unwrap();
        c.execute_batch(
            "INSERT INTO accounting (device_id, subscriber_ip, subscriber_port, service, \
             representative_ip, representative_port, proxy_accounting, server_name, \
             real_server_ip, real_server_port, nat_ip, nat_port, protocol, start_unix_ms, \
             end_unix_ms, packets_up, bytes_up, packets_down, bytes_down, close_reason) VALUES \
             ('old', '127.9.0.1', 1000, 'web', '127.0.0.80', 80, 1, '', '127.0.1.10', 8080, \
             '127.0.2.1', 2000, 6, 10, 20, 1, 2, 3, 4, 'fin'); PRAGMA user_version=1;",
        )
        .unwrap();
        // (the column really is missing in version 1)
        assert!(c.prepare("SELECT subscriber_ip6 FROM accounting").is_err());
    }
    let mut new = row(5);
    new.subscriber_ip = Ipv4Addr::UNSPECIFIED;
    new.subscriber_ip6 = Some("2001:db8::5".parse().unwrap());
    db::Db::open(&path, Synchronous::Full, BUSY)
        .unwrap()
        .insert(std::slice::from_ref(&new), &[])
        .unwrap();
    let back = query_recent(&path, 10).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0], new);
    assert_eq!(
        (back[1].device_id.as_str(), back[1].subscriber_ip6),
        ("old", None)
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, db::SCHEMA_VERSION);
    let ip6: String = c
        .query_row(
            "SELECT subscriber_ip6 FROM accounting WHERE device_id = 'dev-5'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ip6, "2001:db8::5");
    // Reopening a migrated database changes nothing; an unknown version is
    // refused, naming the file.
    drop(db::Db::open(&path, Synchronous::Full, BUSY).unwrap());
    c.execute_batch("PRAGMA user_version=9;").unwrap();
    let e = db::Db::open(&path, Synchronous::Full, BUSY).err().unwrap();
    assert!(e.contains("v1.sqlite") && e.contains("version 9"), "{e}");
}

#[test]
fn reopening_keeps_rows_and_missing_file_is_an_error() {
    let d = TempDir::new("reopen");
    let path = d.path().join("b.sqlite");
    db::Db::open(&path, Synchronous::Normal, BUSY)
        .unwrap()
        .insert(&[row(1)], &[])
        .unwrap();
    db::Db::open(&path, Synchronous::Full, BUSY)
        .unwrap()
        .insert(&[row(2)], &[])
        .unwrap();
    assert_eq!(query_recent(&path, 10).unwrap(), vec![row(2), row(1)]);
    let e = query_recent(&d.path().join("none.sqlite"), 10).unwrap_err();
    assert!(e.contains("none.sqlite"), "{e}");
}

#[test]
fn from_record_resolves_and_shifts_times() {
    let mut attr = Attr {
        kind: AttrKind::TlsSni,
        len: 9,
        ..Attr::default()
    };
    attr.buf[..9].copy_from_slice(b"a.example");
    let r = AcctRecord {
        device_id: 42,
        subscriber_ip: [127, 1, 0, 2],
        subscriber_port: 40001,
        nat66: None,
        rep_ip: [127, 0, 0, 80],
        rep_port: 443,
        nat_ip: [127, 0, 2, 1],
        nat_port: 1030,
        server_ip: [127, 0, 1, 5],
        server_port: 8443,
        proto: 6,
        service: Some(ServiceId(3)),
        group: Some(1),
        start_ms: 1_000,
        end_ms: 61_500,
        up_pkts: 10,
        up_bytes: 1_500,
        down_pkts: 20,
        down_bytes: 30_000,
        attr,
        close: CloseReason::Rst,
        subscriber_ip6: None,
    };
    let a = AcctRow::from_record(
        &r,
        "dev-42".into(),
        "web".into(),
        &WallClock::offset_ms(1_700_000_000_000),
        true,
    );
    assert_eq!(
        a,
        AcctRow {
            device_id: "dev-42".into(),
            subscriber_ip: Ipv4Addr::new(127, 1, 0, 2),
            subscriber_port: 40001,
            subscriber_ip6: None,
            representative_ip6: None,
            real_server_ip6: None,
            nat_ip6: None,
            service: "web".into(),
            representative_ip: Ipv4Addr::new(127, 0, 0, 80),
            representative_port: 443,
            proxy_accounting: true,
            server_name: "a.example".into(),
            real_server_ip: Ipv4Addr::new(127, 0, 1, 5),
            real_server_port: 8443,
            nat_ip: Ipv4Addr::new(127, 0, 2, 1),
            nat_port: 1030,
            protocol: 6,
            start_unix_ms: 1_700_000_001_000,
            end_unix_ms: 1_700_000_061_500,
            packets_up: 10,
            bytes_up: 1_500,
            packets_down: 20,
            bytes_down: 30_000,
            close_reason: CloseReason::Rst,
        }
    );
}

#[test]
fn session_row_from_record() {
    let rec = SessionLogRecord {
        session: SessionRef {
            session_id: 7,
            device_id: "dev-7".into(),
            addr: Ipv4Addr::new(127, 3, 0, 7),
            gw: GwId(1),
        },
        acct_session_id: "S1".into(),
        nas: NasInfo {
            ip: Some(Ipv4Addr::new(127, 4, 0, 1)),
            ..NasInfo::default()
        },
        started_ms: 100,
        closed_ms: 900,
        cause: CloseCause::SessionTimer,
        usage: Usage {
            in_octets: 1,
            out_octets: 2,
            in_packets: 3,
            out_packets: 4,
            session_time_s: 5,
        },
        history: vec![
            Transition {
                from: SessionState::None,
                to: SessionState::Act,
                at_ms: 100,
                cause: TransitionCause::Entry,
            },
            Transition {
                from: SessionState::Act,
                to: SessionState::Dormant,
                at_ms: 400,
                cause: TransitionCause::DormantTimer,
            },
            Transition {
                from: SessionState::Dormant,
                to: SessionState::Close,
                at_ms: 900,
                cause: TransitionCause::Close(CloseCause::SessionTimer),
            },
        ],
    };
    // 10 000.4 ms at engine time 0: times round down, as the engine's do.
    let wall = WallClock {
        us_per_ms: 1000.0,
        at_zero_us: 10_000_400.0,
    };
    let s = SessionLogRow::from_record(&rec, "u".into(), history_rows(&rec.history, &wall), &wall);
    let h: Vec<_> = s
        .state_history
        .iter()
        .map(|c| {
            (
                c.from.as_str(),
                c.state.as_str(),
                c.at_unix_ms,
                c.cause.as_str(),
            )
        })
        .collect();
    assert_eq!(
        h,
        [
            ("none", "act", 10_100, "entry"),
            ("act", "dormant", 10_400, "dormant_timer"),
            ("dormant", "close", 10_900, "session_timer"),
        ]
    );
    // Rows written before transitions carried `from` and `cause` still read.
    let old: Vec<SessionStateChange> =
        serde_json::from_str(r#"[{"state":"act","at_unix_ms":5}]"#).unwrap();
    assert_eq!((old[0].from.as_str(), old[0].cause.as_str()), ("", ""));
    assert_eq!(
        (s.session_id, s.gw, s.start_unix_ms, s.end_unix_ms),
        (7, 1, 10_100, 10_900)
    );
    assert_eq!(WallClock::offset_ms(0).unix_ms(0), 0);
    // A TSC 0.2 % fast: 1000 engine ms were 998 real ones.
    let fast = WallClock {
        us_per_ms: 998.0,
        at_zero_us: 0.0,
    };
    assert_eq!(fast.unix_ms(1000), 998);
    assert_eq!(s.close_cause, "session_timer");
    assert_eq!(s.nas_ip, Some(Ipv4Addr::new(127, 4, 0, 1)));
    assert_eq!((s.in_octets, s.out_packets, s.session_time_s), (1, 4, 5));
    assert_eq!(
        close_cause_text(&CloseCause::StatusClose {
            terminate_cause: Some(4)
        }),
        "status_close:4"
    );
}

/// A logger started with `cfg` writing to the database `file` in a fresh
/// scratch directory `tag` (kept while the first value lives), and the
/// database's path.
fn logging_to(tag: &str, file: &str, cfg: AcctLogConfig) -> (TempDir, PathBuf, AcctLogger) {
    let d = TempDir::new(tag);
    let path = d.path().join(file);
    let l = AcctLogger::start(AcctLogConfig {
        sqlite_path: Some(path.clone()),
        ..cfg
    })
    .unwrap();
    (d, path, l)
}

#[test]
fn clean_stop_commits_every_accepted_row() {
    let (_d, path, mut l) = logging_to(
        "stop",
        "c.sqlite",
        AcctLogConfig {
            batch_rows: 64,
            batch_ms: 10_000, // only the size trigger and stop commit
            ..AcctLogConfig::default()
        },
    );
    let n = 1_000u32;
    for i in 0..n {
        assert!(l.submit(row(i)));
    }
    for i in 0..5 {
        assert!(l.submit_session(session(i)));
    }
    let st = l.stop();
    assert_eq!(l.acknowledged(), u64::from(n));
    assert_eq!(st.submitted, u64::from(n));
    assert_eq!((st.rows_written, st.sessions_written), (u64::from(n), 5));
    assert_eq!((st.queue_full, st.db_errors, st.lost_on_stop), (0, 0, 0));
    let back = query_recent(&path, 10_000).unwrap();
    let want: Vec<AcctRow> = (0..n).rev().map(row).collect();
    assert_eq!(back, want);
    assert_eq!(query_recent_sessions(&path, 10).unwrap().len(), 5);
    // Stopped: submit refuses and counts.
    assert!(!l.submit(row(0)));
    assert_eq!(l.stats().queue_full, 1);
}

#[test]
fn drop_flushes_and_the_time_trigger_commits() {
    let (_d, path, l) = logging_to(
        "drop",
        "d.sqlite",
        AcctLogConfig {
            batch_rows: 1_000_000,
            batch_ms: 30,
            ..AcctLogConfig::default()
        },
    );
    for i in 0..3 {
        l.submit(row(i));
    }
    // The size trigger cannot fire; the age trigger does.
    let t = Instant::now();
    while l.acknowledged() < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "batch_ms never fired"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(l.stats().batches, 1);
    for i in 3..10 {
        l.submit(row(i));
    }
    assert!(l.flush(Duration::from_secs(10)));
    assert_eq!(l.acknowledged(), 10);
    l.submit(row(10));
    drop(l);
    assert_eq!(query_recent(&path, 100).unwrap().len(), 11);
}

/// A UDP collector on 127.0.0.1 (receives time out after 10 s) and a
/// logger started with `cfg` exporting IPFIX to it.
fn exporting(cfg: AcctLogConfig) -> (UdpSocket, AcctLogger) {
    let coll = UdpSocket::bind("127.0.0.1:0").unwrap();
    coll.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let l = AcctLogger::start(AcctLogConfig {
        ipfix_collector: Some(coll.local_addr().unwrap()),
        ..cfg
    })
    .unwrap();
    (coll, l)
}

#[test]
fn ipfix_only_logger_exports_to_a_udp_socket() {
    let (coll, mut l) = exporting(AcctLogConfig {
        batch_rows: 4,
        batch_ms: 10_000,
        ..AcctLogConfig::default()
    });
    for i in 0..10 {
        l.submit(row(i));
    }
    let st = l.stop();
    assert_eq!(l.acknowledged(), 10);
    assert_eq!((st.ipfix_records, st.ipfix_errors), (10, 0));
    // batches of 4, 4, 2 → three messages, the first with the template
    assert_eq!((st.ipfix_messages, st.ipfix_templates), (3, 1));
    let mut buf = [0u8; 2048];
    let mut seqs = vec![];
    for _ in 0..3 {
        let n = coll.recv(&mut buf).unwrap();
        assert_eq!(&buf[0..2], &[0, 10]);
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]) as usize, n);
        seqs.push(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
    }
    assert_eq!(seqs, [0, 4, 8]);
}

/// With no records flowing, the writer resends the templates alone on the
/// refresh timer (RFC 7011 §8.4), sequence number unchanged.
#[test]
fn the_writer_refreshes_templates_on_its_timer_while_idle() {
    let (coll, mut l) = exporting(AcctLogConfig {
        batch_rows: 1,
        ipfix: ipfix::ExporterConfig {
            template_every_ms: 300,
            ..ipfix::ExporterConfig::default()
        },
        ..AcctLogConfig::default()
    });
    l.submit(row(1));
    let mut buf = [0u8; 2048];
    let n = coll.recv(&mut buf).unwrap();
    assert!(n > 16 + 328, "the data message carries the templates");
    let t0 = std::time::Instant::now();
    // Two refreshes without any record: template set only, sequence 1.
    for _ in 0..2 {
        let n = coll.recv(&mut buf).unwrap();
        assert_eq!(n, 16 + 328);
        assert_eq!(&buf[8..12], &[0, 0, 0, 1]);
        assert_eq!(&buf[16..18], &[0, 2]);
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "refreshed too early: {waited:?}"
    );
    let st = l.stop();
    assert!(st.ipfix_templates >= 3, "{st:?}");
    assert_eq!((st.ipfix_records, st.ipfix_errors), (1, 0));
}

#[test]
fn start_refuses_bad_configurations() {
    let e = |c: AcctLogConfig| AcctLogger::start(c).err().unwrap();
    assert!(e(AcctLogConfig::default()).contains("neither"));
    let bad_dir = AcctLogConfig {
        sqlite_path: Some("/nonexistent-dir/x/acct.sqlite".into()),
        ..AcctLogConfig::default()
    };
    assert!(e(bad_dir).contains("/nonexistent-dir/x/acct.sqlite"));
    let small = AcctLogConfig {
        ipfix_collector: Some("127.0.0.1:9".parse().unwrap()),
        ipfix: ipfix::ExporterConfig {
            max_message: 500,
            ..ipfix::ExporterConfig::default()
        },
        ..AcctLogConfig::default()
    };
    assert!(e(small).contains("max_message"));
}

#[test]
fn a_locked_database_is_retried_and_a_full_queue_refuses() {
    let (_d, path, mut l) = logging_to(
        "locked",
        "e.sqlite",
        AcctLogConfig {
            batch_rows: 2,
            batch_ms: 20,
            queue_rows: 4,
            db_busy_ms: 10,
            ..AcctLogConfig::default()
        },
    );
    // Another connection holds the write lock far longer than db_busy_ms:
    // commits fail, are counted and retried; the writer holds at most
    // 4 × batch_rows, then the queue fills and submit refuses.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut accepted = 0u64;
    for i in 0..40 {
        if l.submit(row(i)) {
            accepted += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = l.stats();
    assert_eq!(l.acknowledged(), 0, "committed through another's lock");
    assert!(st.db_errors >= 2, "{st:?}");
    assert!(accepted <= 8 + 4 + 2, "accepted {accepted} while failing");
    assert_eq!(st.queue_full, 40 - accepted);
    other.execute_batch("COMMIT").unwrap();
    let t = Instant::now();
    while l.acknowledged() < accepted {
        assert!(t.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(10));
    }
    let st = l.stop();
    assert_eq!((st.rows_written, st.lost_on_stop), (accepted, 0));
    // The accepted rows, in order, are the first ones (later ones refused).
    let back = query_recent(&path, 100).unwrap();
    assert_eq!(back.len() as u64, accepted);
    assert_eq!(back.last(), Some(&row(0)));
}

/// NAT64 rows get their IPv6 destination (the representative under the
/// prefix); NAT66 rows (representative 0.0.0.0) and IPv4 rows do not.
#[test]
fn nat64_rows_get_the_rfc6052_destination() {
    use pgw_pipelines::xlat::rfc6052::Prefix;
    let p = Prefix::WELL_KNOWN;
    let mut r = row(1);
    assert_eq!(
        r.clone().with_nat64_prefix(Some(&p)).representative_ip6,
        None
    );
    r.subscriber_ip = Ipv4Addr::UNSPECIFIED;
    r.subscriber_ip6 = Some("2001:db8::1".parse().unwrap());
    r.representative_ip = Ipv4Addr::new(192, 0, 2, 33);
    let want: std::net::Ipv6Addr = "64:ff9b::c000:221".parse().unwrap();
    assert_eq!(
        r.clone().with_nat64_prefix(Some(&p)).representative_ip6,
        Some(want)
    );
    assert_eq!(r.clone().with_nat64_prefix(None).representative_ip6, None);
    let mut nat66 = r;
    nat66.representative_ip = Ipv4Addr::UNSPECIFIED;
    assert_eq!(nat66.with_nat64_prefix(Some(&p)).representative_ip6, None);
}
