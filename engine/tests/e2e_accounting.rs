//! Accounting end to end: a subscriber exchanges a known number of UDP
//! datagrams with a server through a representative address; when the flow
//! ends (UDP idle timeout) the GW's record reaches the SQLite database with
//! the device id, service, representative address and exact counts, and a
//! real IPFIX collector (`nfcapd`, read back with `nfdump`) has the same
//! record.
//!
//! Header arithmetic: every datagram carries 100 bytes of payload; the GW
//! counts IP total length, so each packet is 100 + 8 (UDP) + 20 (IPv4) = 128
//! bytes: 10 datagrams up = 10 packets / 1280 bytes, 10 echoes down the same.
//! The record's start and end times lie, to the millisecond, within the
//! wall-clock interval of the first and the last exchange. The GW runs two
//! workers and the subscriber 16 such flows one after the other (from
//! ports 40001–40016, which the taps' queues spread over both workers):
//! every worker's records are on the one clock.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn udp_exchange_lands_in_sqlite_and_ipfix_with_exact_counts() {
    let Some(mut lab) = Lab::netns("pa", &["nfcapd", "nfdump"]) else {
        return;
    };
    let db = lab.dir.join("acct.db");
    let (flow_dir, port) = lab.nfcapd();
    let profile = lab
        .one_service_gw(
            "timeouts = { udp_s = 1 }",
            ("chat", 3),
            ("c1", 9000),
            "10.33.0.3",
        )
        .with(&format!(
            "[accounting]\nsqlite = \"{}\"\nipfix_collector = \"127.0.0.1:{port}\"\nbatch_ms = 50",
            db.display()
        ));
    let profile = profile.engine(Engine {
        workers: vec![0, 1],
        mbufs: 16383,
        ..Engine::default()
    });
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.gw_sides(&["10.80.0.21/24"]);
    lab.udp_echo(&srv, "10.80.0.21", 9000, false);
    let client = lab.write(
        "client.py",
        "import socket,sys,time\nms=lambda: time.time_ns()//1000000\n\
         for p in range(40001,40017):\n\
         \x20   s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         \x20   s.bind(('10.50.0.2',p))\n\
         \x20   s.settimeout(3)\n\
         \x20   for i in range(10):\n\
         \x20       if i==0: t0=ms()\n\
         \x20       if i==9: t9=ms()\n\
         \x20       s.sendto(bytes([65+i])*100,('10.33.0.3',5000))\n\
         \x20       d,a=s.recvfrom(2048)\n\
         \x20       if i==0: t0r=ms()\n\
         \x20       assert d==bytes([65+i])*100 and a==('10.33.0.3',5000), (d,a)\n\
         \x20   print('ok',p,t0,t0r,t9,ms())\n\
         \x20   s.close()\n",
    );
    // The first exchange may wait for pgw to resolve the server's MAC.
    lab.wait_neighbours(&sock, &["10.80.0.21"]);
    let out = sh(&format!("ip netns exec {sub} python3 {}", client.display()));
    // Per flow: its port, then wall-clock ms: before the first datagram
    // left, after its echo came back, before the last one left, after the
    // last echo came back.
    let flows: Vec<(u16, Vec<i64>)> = out
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.first(), Some(&"ok"), "{out}");
            (
                w[1].parse().unwrap(),
                w[2..].iter().map(|x| x.parse().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(flows.len(), 16, "{out}");

    // Idle timeout (1 s) + sweep + commit: about 1 s idle; the margin is a
    // loaded machine's.
    let mut rows = Vec::new();
    wait_for_or(
        "the SQLite rows",
        Duration::from_secs(30),
        || {
            rows = pgw_engine::mgmt::acctlog::query_recent(&db, 100).unwrap_or_default();
            flows
                .iter()
                .all(|(p, _)| rows.iter().any(|r| r.subscriber_port == *p))
        },
        || {
            format!(
                "rows of subscriber ports {:?}\n{}",
                pgw_engine::mgmt::acctlog::query_recent(&db, 100)
                    .unwrap_or_default()
                    .iter()
                    .map(|r| r.subscriber_port)
                    .collect::<Vec<_>>(),
                pgw_at(&sock, "stats", "")
            )
        },
    );
    // Both workers opened some of them.
    let st = stats_json(&sock);
    let per_worker = worker_events(&st, "gw_new_flows");
    assert!(
        per_worker.len() == 2 && per_worker.iter().all(|n| *n > 0),
        "flows per worker {per_worker:?}"
    );
    // The record's times are the wall clock's: the first packet passed the
    // GW between its send and its echo, the last one between the last send
    // and its echo (to the millisecond: both clocks round down, hence -1).
    let within = |what: &str, ms: i64, exchange: &str, sent: i64, echoed: i64| {
        assert!(
            (sent - 1..=echoed).contains(&ms),
            "{what} {ms} not within the {exchange} exchange [{sent}, {echoed}]"
        )
    };
    for (p, t) in &flows {
        let r = rows.iter().find(|r| r.subscriber_port == *p).unwrap();
        assert_eq!((r.packets_up, r.bytes_up), (10, 1280), "{r:?}");
        assert_eq!((r.packets_down, r.bytes_down), (10, 1280), "{r:?}");
        within("start", r.start_unix_ms, "first", t[0], t[1]);
        within("end", r.end_unix_ms, "last", t[2], t[3]);
    }
    let r = rows.iter().find(|r| r.subscriber_port == 40001).unwrap();
    assert_eq!(r.device_id, "9015550101");
    assert_eq!(r.service, "chat");
    assert_eq!(r.representative_ip.to_string(), "10.33.0.3");
    assert_eq!(r.representative_port, 5000);
    assert_eq!(r.real_server_ip.to_string(), "10.80.0.21");
    assert_eq!(r.real_server_port, 9000);
    assert_eq!(r.protocol, 17);
    assert_eq!((r.packets_up, r.bytes_up), (10, 1280), "{r:?}");
    assert_eq!((r.packets_down, r.bytes_down), (10, 1280), "{r:?}");
    assert!(r.proxy_accounting);

    // IPFIX: stop the collector (it writes its file on the way out) and read
    // every file it wrote: with `-t 60` it also rotates at each minute, so a
    // run that crosses one leaves the record in either file.
    let (records, dump) = lab.nfcapd_records(&flow_dir);
    let rec = records
        .iter()
        .find(|x| x["src_port"] == 40001)
        .unwrap_or_else(|| panic!("no record of port 40001 in {flow_dir:?}: {dump}"));
    assert_eq!(rec["src4_addr"], "10.50.0.2");
    assert_eq!(rec["dst4_addr"], "10.33.0.3");
    assert_eq!(rec["dst4_xlt_ip"], "10.80.0.21");
    assert_eq!(rec["in_packets"], 10);
    assert_eq!(rec["in_bytes"], 1280);
    assert_eq!(rec["out_packets"], 10);
    assert_eq!(rec["out_bytes"], 1280);
    lab.stop_pgw("gw");
}
