//! A running GW's life as systemd and an operator see it: `READY=1` on
//! `$NOTIFY_SOCKET` once it serves, SIGHUP reloads the profile (a service
//! added to the file appears), and SIGTERM drains — new connections are
//! refused (`draining` drops) while a download in progress finishes; one
//! still running at the drain timeout is cut, and every connection ends
//! with exactly one accounting record in SQLite (`fin` for the one that
//! finished, `shutdown` for the one cut); `STOPPING=1`, exit code 0.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

const BIG: u64 = 8 << 20;
const SMALL: u64 = 1 << 20;

/// The notifications received so far (each datagram's text).
fn notes(sock: &UnixDatagram, into: &mut Vec<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        into.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

#[test]
fn sigterm_drains_then_closes_every_record() {
    let Some(mut lab) = Lab::netns("lc", &["curl", "python3"]) else {
        return;
    };
    let db = lab.dir.join("acct.db");
    let notify_path = lab.dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_nonblocking(true).unwrap();
    let base = |extra: &str| {
        lab.profile("gw", "10.50.0.1/24")
            .engine(Engine {
                extra: "drain_timeout_s = 6".into(),
                ..Engine::default()
            })
            .with(&format!(
                "[accounting]\nsqlite = \"{}\"\nbatch_ms = 50",
                db.display()
            ))
            .with(&gw_section(""))
            .with(&wap(&[member("w1", "10.80.0.21", 8080)]))
            .with(extra)
    };
    let first = base(&gw_session("10.50.0.2", 9015550101, &["wap"]));
    // The same with a second service the subscriber may use.
    let reloaded = base(&format!(
        "{}{}",
        gw_service(
            "mail",
            2,
            &[member("m1", "10.80.0.21", 8080)],
            "10.33.0.2",
            Some(80),
        ),
        gw_session("10.50.0.2", 9015550101, &["wap", "mail"])
    ));
    let base = first;
    let sock = base.sock.clone();
    let taps: Vec<String> = vec![format!("{}a", lab.tag), format!("{}b", lab.tag)];
    let taps: Vec<&str> = taps.iter().map(String::as_str).collect();
    lab.start_pgw_env(
        "gw",
        &base.to_string(),
        &sock,
        &taps,
        &format!("NOTIFY_SOCKET={}", notify_path.display()),
    );
    let (sub, srv) = lab.gw_sides(&["10.80.0.21/24"]);
    let www = lab.serve_http("www", &srv, "10.80.0.21");
    for (name, len) in [("big.bin", BIG), ("small.bin", SMALL)] {
        random_file(&www, name, len);
    }
    lab.wait_neighbours(&sock, &["10.80.0.21"]);
    wait_for("the VIP to answer", Duration::from_secs(10), || {
        curl_ok(&sub, "http://10.33.0.1/who")
    });
    let mut got = Vec::new();
    wait_for("READY=1", Duration::from_secs(10), || {
        notes(&notify, &mut got);
        got.iter().any(|n| n.lines().any(|l| l == "READY=1"))
    });

    // SIGHUP: the profile file gains a service; the running instance has it.
    lab.write("gw.toml", &reloaded.to_string());
    lab.signal("gw", "HUP");
    wait_for("the reloaded group", Duration::from_secs(10), || {
        pgw_json(&sock, "servers")["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["group"] == "mail"))
    });
    // The reloaded VIP answers (curl panics unless it gets a 2xx).
    curl(&sub, "http://10.33.0.2/who");

    // Two downloads: one that ends within the drain (1 MB at 1 MB/s), one
    // that cannot (8 MB at 256 kB/s).
    let small = lab.dir.join("small.got");
    let big = lab.dir.join("big.got");
    lab.spawn(
        "small",
        &format!(
            "ip netns exec {sub} curl -sS --fail --local-port 41001 --limit-rate 1M -o {} http://10.33.0.1/small.bin",
            small.display()
        ),
    );
    lab.spawn(
        "big",
        &format!(
            "ip netns exec {sub} curl -sS --fail --local-port 41002 --limit-rate 256k -o {} http://10.33.0.1/big.bin",
            big.display()
        ),
    );
    wait_for("both downloads under way", Duration::from_secs(10), || {
        event(&stats_json(&sock), "gw_open_flows") >= 2
    });
    let records_before = pgw_engine::mgmt::acctlog::query_recent(&db, 100)
        .unwrap_or_default()
        .len();

    let term_at = Instant::now();
    lab.signal("gw", "TERM");
    // While it drains: a new connection is refused and counted (one
    // attempt, well within the drain: a loaded machine once took so long
    // over repeated ones that the instance was gone when asked).
    wait_for("the drain to start", Duration::from_secs(3), || {
        lab.log("gw").contains("SIGTERM: draining")
    });
    let refused = drops(&stats_json(&sock), "draining");
    assert!(
        !curl_ok(&sub, "http://10.33.0.1/who"),
        "a new connection was served while draining"
    );
    assert!(drops(&stats_json(&sock), "draining") > refused);
    // The small download finishes whole, through the drain.
    assert_eq!(lab.wait_exit("small", Duration::from_secs(10)), Some(0));
    assert_eq!(sha256(&small), sha256(&www.join("small.bin")));
    // The instance stops at the drain timeout (6 s), with 0.
    lab.wait_pgw("gw", Duration::from_secs(15));
    let took = term_at.elapsed();
    assert!(
        took >= Duration::from_secs(5),
        "stopped after {took:?}, before the drain timeout, with a download open"
    );
    let log = lab.log("gw");
    assert!(log.contains("SIGTERM: draining"), "{log}");
    notes(&notify, &mut got);
    assert!(
        got.iter().any(|n| n.lines().any(|l| l == "STOPPING=1")),
        "{got:?}"
    );
    let cut = std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0);
    assert!(cut > 0 && cut < BIG, "the big download got {cut} bytes");

    // Exactly one record per connection: the small one by FIN, the big one
    // at shutdown with the bytes it carried.
    let rows = pgw_engine::mgmt::acctlog::query_recent(&db, 100).unwrap();
    let of = |port: u16| -> Vec<_> { rows.iter().filter(|r| r.subscriber_port == port).collect() };
    let (s, b) = (of(41001), of(41002));
    assert_eq!((s.len(), b.len()), (1, 1), "{rows:?}");
    assert_eq!(
        s[0].close_reason,
        pgw_pipelines::gw::acct::CloseReason::Fin,
        "{:?}",
        s[0]
    );
    assert!(s[0].bytes_down > SMALL, "{:?}", s[0]);
    assert_eq!(
        b[0].close_reason,
        pgw_pipelines::gw::acct::CloseReason::Shutdown,
        "{:?}",
        b[0]
    );
    assert!(
        b[0].bytes_down >= cut && b[0].bytes_down < BIG + BIG / 10,
        "{:?} (curl got {cut})",
        b[0]
    );
    assert!(rows.len() >= records_before + 2);
    // The reloaded service's records carry its name.
    assert!(
        rows.iter()
            .filter(|r| r.representative_ip.to_string() == "10.33.0.2")
            .all(|r| r.service == "mail"),
        "{rows:?}"
    );
}

/// `[log]`: JSON lines with fields, the level filter in `RUST_LOG` syntax
/// (`info,pgw_engine::runtime=warn`: info lines but the runtime's), and a repeated event (50 new flows refused as `no_server`)
/// logged at most once per `repeat_every_s` with its count, not 50 times.
#[test]
fn logs_are_json_filtered_and_repeats_rate_limited() {
    let Some(mut lab) = Lab::netns("lg", &["python3"]) else {
        return;
    };
    let profile = lab
        .one_service_gw("", ("wap", 1), ("w1", 8080), "10.33.0.1")
        .with("[log]\nlevel = \"info,pgw_engine::runtime=warn\"\nformat = \"json\"\nrepeat_every_s = 1");
    let sock = lab.run_pgw("gw", &profile);
    let (sub, _srv) = lab.gw_sides(&["10.80.0.21/24"]);
    pgw_at(&sock, "set", "server wap w1 down");
    let send = lab.write(
        "send.py",
        "import socket\nfor p in range(42000, 42050):\n    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n    s.bind(('10.50.0.2',p))\n    s.sendto(b'x',('10.33.0.1',53))\n    s.close()\n",
    );
    sh(&format!("ip netns exec {sub} python3 {}", send.display()));
    wait_for("50 no_server drops", Duration::from_secs(5), || {
        drops(&stats_json(&sock), "no_server") >= 50
    });
    let json_lines = |lab: &Lab| -> Vec<serde_json::Value> {
        lab.log("gw")
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    };
    let warned = |lines: &[serde_json::Value]| -> Vec<serde_json::Value> {
        lines
            .iter()
            .filter(|v| v["fields"]["counter"] == "no_server")
            .cloned()
            .collect()
    };
    wait_for("the no_server warning", Duration::from_secs(5), || {
        !warned(&json_lines(&lab)).is_empty()
    });
    // Two more intervals: nothing new happened, nothing more is said.
    std::thread::sleep(Duration::from_millis(2500));
    let lines = json_lines(&lab);
    let w = warned(&lines);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["level"], "WARN");
    assert_eq!(w[0]["fields"]["delta"], 50, "{:?}", w[0]);
    // The binary's info line, with its fields; no info line of the runtime's.
    let running = lines
        .iter()
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("running on"))
        })
        .unwrap_or_else(|| panic!("no start line in {lines:?}"));
    assert_eq!(running["level"], "INFO");
    assert_eq!(running["fields"]["role"], "gw");
    assert!(
        lines.iter().all(|v| v["level"] != "INFO"
            || !v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("pgw_engine::runtime"))),
        "a runtime info line passed the filter: {lines:?}"
    );
    lab.stop_pgw("gw");
}
