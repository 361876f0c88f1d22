//! Accounting durability across a crash: a GW with `[accounting] sqlite`
//! carries a stream of 10,000 short TCP connections (HTTP/1.0, one request
//! each, one after the other) from a real subscriber namespace to a server
//! namespace; it is killed with SIGKILL in the middle of the stream and
//! started again on the same database while the client goes on. Every
//! connection the client saw closed at least 1 s before the kill has exactly
//! one record (matched by the subscriber port, which the client chooses
//! itself: one port per connection, 20000 and up), so has every connection
//! closed through the restarted GW, no port has two, the database passes
//! `PRAGMA integrity_check`, and a curl through the restarted instance gets
//! its record while it runs.
//!
//! The kill comes once 3,000 connections closed at least 1 s earlier (about
//! 6,000 closed in all, 2.4 s into the stream on a loaded 2-core VM, where
//! the whole stream and the restart take about 10 s); the few connections
//! tried while the GW is down fail and are not counted.
//! The 1 s window is the accounting writer's: a record is committed (WAL,
//! `synchronous=FULL`) at most `batch_ms` (200 ms, the default) after the
//! management thread takes it from the worker's queue; records of the
//! connections closed in the last few hundred ms before a SIGKILL are lost
//! (the test prints how many).

mod common;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const FIRST_PORT: u32 = 20000;
const CONNECTIONS: u32 = 10_000;
/// The kill comes once this many connections closed at least 1 s earlier.
const BEFORE_KILL: usize = 3_000;

/// The HTTP server: answers every request with a 2-byte body and closes.
const SERVER: &str = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.80.0.11", 8080))
s.listen(512)
while True:
    c, a = s.accept()
    try:
        c.settimeout(5)
        d = b""
        while b"\r\n\r\n" not in d:
            x = c.recv(4096)
            if not x:
                break
            d += x
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        pass
    c.close()
"#;

/// The client: one connection per source port, sequentially; a line
/// `port close_ms` for each connection it saw answered and closed (its own
/// close() returned), `fail port close_ms why` for one that failed (then it
/// waits 0.2 s and goes on with the next port); it gives up after 100 s.
const CLIENT: &str = r#"
import socket, sys, time
first, n = int(sys.argv[1]), int(sys.argv[2])
out = open(sys.argv[3], "w", buffering=1)
end = time.time() + 100
for p in range(first, first + n):
    if time.time() > end:
        break
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    try:
        s.bind(("10.50.0.2", p))
        s.connect(("10.33.0.1", 80))
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        d = b""
        while True:
            x = s.recv(4096)
            if not x:
                break
            d += x
        s.close()
        if not d.endswith(b"ok"):
            raise OSError("bad answer %r" % d)
        out.write("%d %d\n" % (p, time.time_ns() // 1000000))
    except OSError as e:
        out.write("fail %d %d %s\n" % (p, time.time_ns() // 1000000, e))
        s.close()
        time.sleep(0.2)
"#;

/// Rows per subscriber port, and `PRAGMA integrity_check`'s answer, read
/// with python3's sqlite3 module.
const QUERY: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("PRAGMA integrity_check").fetchone()[0])
q = "SELECT subscriber_port, count(*) FROM accounting WHERE subscriber_ip = '10.50.0.2' AND protocol = 6 GROUP BY subscriber_port"
for p, n in c.execute(q):
    print(p, n)
"#;

/// Rows per subscriber port, and `PRAGMA integrity_check`'s answer.
fn read_db(lab: &Lab, db: &std::path::Path) -> (HashMap<u32, u32>, String) {
    let q = lab.write("query.py", QUERY);
    let out = sh(&format!("python3 {} {}", q.display(), db.display()));
    let mut lines = out.lines();
    let check = lines.next().unwrap_or_default().to_string();
    let rows = lines
        .map(|l| {
            let mut w = l.split_whitespace().map(|x| x.parse::<u32>().unwrap());
            (w.next().unwrap(), w.next().unwrap())
        })
        .collect();
    (rows, check)
}

#[test]
fn records_of_closed_connections_survive_sigkill() {
    let Some(mut lab) = Lab::netns("pk", &["python3", "curl"]) else {
        return;
    };
    let db = lab.dir.join("acct.db");
    let profile = lab
        .profile("gw", "10.50.0.1/24")
        .with(&format!("[accounting]\nsqlite = \"{}\"", db.display()))
        .with(&gw_section(""))
        .with(&wap(&[member("wap1", "10.80.0.11", 8080)]))
        .with(&gw_session("10.50.0.2", 9015550101, &["wap"]));
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.gw_sides(&["10.80.0.11/24"]);
    let server = lab.write("server.py", SERVER);
    lab.spawn(
        "http",
        &format!("ip netns exec {srv} python3 {}", server.display()),
    );
    lab.wait_listen(&srv, "tcp", "10.80.0.11:8080");
    lab.wait_neighbours(&sock, &["10.80.0.11"]);

    let client = lab.write("client.py", CLIENT);
    let log = lab.dir.join("client.out");
    let started = Instant::now();
    lab.spawn(
        "client",
        &format!(
            "ip netns exec {sub} python3 {} {FIRST_PORT} {CONNECTIONS} {}",
            client.display(),
            log.display()
        ),
    );
    // The client's log: (port, ms, answered) per connection.
    let read_log = || -> Vec<(u32, i64, bool)> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // (whole lines only: the client may be writing the last one)
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        whole
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let ok = w.first() != Some(&"fail");
                let (p, t) = if ok {
                    (w.first()?, w.get(1)?)
                } else {
                    (w.get(1)?, w.get(2)?)
                };
                Some((p.parse().ok()?, t.parse().ok()?, ok))
            })
            .collect()
    };
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    wait_for(
        &format!("{BEFORE_KILL} connections closed by the client 1 s ago"),
        Duration::from_secs(90),
        || {
            let old = now_ms() - 1000;
            read_log().iter().filter(|c| c.2 && c.1 <= old).count() >= BEFORE_KILL
        },
    );
    let kill_ms = now_ms();
    lab.signal("gw", "KILL");
    let kill_s = started.elapsed().as_secs_f64();
    assert_eq!(
        lab.wait_exit("gw", Duration::from_secs(10)),
        None,
        "SIGKILL leaves no exit code"
    );
    wait_for(
        "the client to see the GW gone",
        Duration::from_secs(20),
        || read_log().iter().any(|c| !c.2 && c.1 >= kill_ms),
    );

    // The same profile and database again; the taps are new.
    let _ = std::fs::remove_file(&sock);
    let sock = lab.run_pgw("gw2", &profile);
    lab.move_into(&format!("{}a", lab.tag), &sub, &["10.50.0.2/24"]);
    lab.route(&sub, "10.33.0.0/24", "10.50.0.1");
    lab.move_into(&format!("{}b", lab.tag), &srv, &["10.80.0.11/24"]);
    lab.wait_neighbours(&sock, &["10.80.0.11"]);
    let restart_ms = now_ms();
    let body = sh(&format!(
        "ip netns exec {sub} curl -sS --fail --max-time 5 --local-port 40000 http://10.33.0.1/"
    ));
    assert_eq!(body, "ok");
    let mut rows = HashMap::new();
    let mut check = String::new();
    wait_for(
        "the record of curl's connection through the restarted GW",
        Duration::from_secs(10),
        || {
            (rows, check) = read_db(&lab, &db);
            rows.contains_key(&40000)
        },
    );
    assert!(
        lab.wait_exit("client", Duration::from_secs(110)).is_some(),
        "the client did not finish"
    );
    let total_s = started.elapsed().as_secs_f64();
    // A clean stop writes the records of what is still open or unflushed.
    lab.stop_pgw("gw2");
    let (rows, check) = read_db(&lab, &db);
    assert_eq!(check, "ok", "PRAGMA integrity_check");
    assert_eq!(rows.get(&40000), Some(&1), "curl's connection");

    let conns = read_log();
    let answered: Vec<&(u32, i64, bool)> = conns.iter().filter(|c| c.2).collect();
    let before: Vec<u32> = answered
        .iter()
        .filter(|c| c.1 <= kill_ms - 1000)
        .map(|c| c.0)
        .collect();
    let last_second: Vec<u32> = answered
        .iter()
        .filter(|c| c.1 > kill_ms - 1000 && c.1 <= kill_ms)
        .map(|c| c.0)
        .collect();
    let after: Vec<u32> = answered
        .iter()
        .filter(|c| c.1 > restart_ms)
        .map(|c| c.0)
        .collect();
    let failed = conns.iter().filter(|c| !c.2).count();
    let lost = last_second.iter().filter(|p| !rows.contains_key(p)).count();
    eprintln!(
        "{} connections answered in {total_s:.1} s ({failed} failed while the GW was down); \
         killed at {kill_s:.1} s: {} closed at least 1 s before the kill, {} in its last second \
         ({lost} of these without a record); {} closed through the restarted GW; {} records",
        answered.len(),
        before.len(),
        last_second.len(),
        after.len(),
        rows.len()
    );
    assert_eq!(
        conns.len(),
        CONNECTIONS as usize,
        "the client tried each of its {CONNECTIONS} connections (it stops after 100 s): {} tried",
        conns.len()
    );
    assert!(
        before.len() >= BEFORE_KILL,
        "{} connections closed 1 s before the kill",
        before.len()
    );
    assert!(
        answered.len() > before.len() + last_second.len(),
        "the kill did not come in the middle of the stream"
    );
    assert!(
        !after.is_empty(),
        "no connection of the client after the restart"
    );
    for (what, ports) in [
        ("closed 1 s before the kill", &before),
        ("closed after the restart", &after),
    ] {
        let missing: Vec<u32> = ports
            .iter()
            .copied()
            .filter(|p| !rows.contains_key(p))
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} connections {what} have no record: {:?}",
            missing.len(),
            ports.len(),
            &missing[..missing.len().min(20)]
        );
    }
    let twice: Vec<(&u32, &u32)> = rows.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "ports with more than one record: {twice:?}"
    );
    let stray: Vec<&u32> = rows
        .keys()
        .filter(|p| **p != 40000 && !conns.iter().any(|c| c.0 == **p))
        .collect();
    assert!(
        stray.is_empty(),
        "records of ports the client never used: {stray:?}"
    );
}
