//! The spec's fifth function end to end: an IPv6-only subscriber reaches an
//! IPv4 server group through pgw's NAT64 (RFC 6146 stateful, RFC 6052
//! well-known prefix, RFC 7915 translation). The subscriber gets its IPv6
//! prefix from RADIUS (Framed-IPv6-Prefix, RFC 3162) and its session from
//! Accounting Start; `curl -6` to `64:ff9b::10.33.0.1` downloads a file
//! from the IPv4 servers byte-identical; pgw answers neighbour discovery for
//! its own IPv6 address; the SQLite accounting row has the IPv6 subscriber,
//! the service and the connection's counts; the MSS toward the IPv6 side is
//! clamped. The same record exported over IPFIX to a real `nfcapd` reads
//! back with `nfdump` as an IPv6 flow (the subscriber, its NAT64
//! destination) with the IPv4 NAT translation (pool address, real server).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn ipv6_only_subscriber_downloads_from_ipv4_servers() {
    let Some(mut lab) = Lab::netns("p6", &["nfcapd", "nfdump"]) else {
        return;
    };
    let t = lab.tag.clone();
    let db = lab.dir.join("acct.db");
    let (flows, ipfix_port) = lab.nfcapd();
    let auth = 26000 + (std::process::id() % 15000) as u16;
    let profile = lab
        .profile("gw", "2001:db8:50::1/64")
        .with(&format!(
            "[accounting]\nsqlite = \"{}\"\nbatch_ms = 50\n\
             ipfix_collector = \"127.0.0.1:{ipfix_port}\"\nipfix_template_s = 5",
            db.display()
        ))
        .with(&gw_section(
            "nat64 = { prefix = \"64:ff9b::/96\", mtu4 = 1500, mtu6 = 1500 }\n\
             mss_clamp_down = 1440",
        ))
        .with(&wap(&[
            member("w1", "10.80.0.11", 8080),
            member("w2", "10.80.0.12", 8080),
        ]))
        .with(&radius_head(auth, "this_gateway = \"gw1\""))
        .with(&radius_user("v6user", "pw6", "0906", &["wap"]))
        .with(
            r#"[[radius.gateway]]
name = "gw1"
ranges = ["10.50.0.2-10.50.0.9"]
ipv6_prefix = "2001:db8:50::/48""#,
        );
    let sock = lab.run_pgw("gw", &profile);
    let srv = lab.servers(&["10.80.0.11/24", "10.80.0.12/24"]);
    let blob = random_file(&lab.dir, "blob.bin", 3145728);
    for (n, a) in [("w1", "10.80.0.11"), ("w2", "10.80.0.12")] {
        let d = lab.serve_http(n, &srv, a);
        std::fs::copy(&blob, d.join("blob.bin")).unwrap();
    }

    // RADIUS: the Accept carries the IPv6 /64 of the session.
    let rad = |kind: &str, port: u16, attrs: &str| radclient(2, port, kind, "testing123", attrs).1;
    let out = rad(
        "auth",
        auth,
        "User-Name=v6user,User-Password=pw6,Calling-Station-Id=0906",
    );
    assert!(
        out.contains("Access-Accept") && out.contains("Framed-IPv6-Prefix = 2001:db8:50::/64"),
        "{out}"
    );
    let out = rad("acct", auth + 1, "User-Name=v6user,Acct-Status-Type=Start,Acct-Session-Id=v6,Calling-Station-Id=0906,Framed-IP-Address=10.50.0.2");
    assert!(out.contains("Accounting-Response"), "{out}");

    // The IPv6-only subscriber: its address in that /64, nothing IPv4.
    let sub = lab.subscriber(&["2001:db8:50::2/64"]);
    lab.route(&sub, "64:ff9b::/96", "2001:db8:50::1");
    lab.wait_neighbours(&sock, &["10.80.0.11", "10.80.0.12"]);
    lab.tcpdump(
        "dump",
        &sub,
        &format!("{t}a"),
        1,
        "ip6 and tcp and src port 80 and ip6[53] & 2 != 0",
    );
    download_intact(&lab, &sub, "http://[64:ff9b::a21:1]/blob.bin", &blob, 30);
    // NDP answered (the kernel resolved the gateway), MSS clamped toward IPv6.
    assert!(sh(&format!("ip -n {sub} -6 neigh show 2001:db8:50::1")).contains("lladdr"));
    wait_for("tcpdump", Duration::from_secs(5), || {
        !lab.is_running("dump")
    });
    assert!(lab.log("dump").contains("mss 1440"), "{}", lab.log("dump"));

    // Accounting: the row has the IPv6 subscriber, the service, the VIP.
    let mut rows = Vec::new();
    wait_for("the accounting row", Duration::from_secs(10), || {
        rows = pgw_engine::mgmt::acctlog::query_recent(&db, 10).unwrap_or_default();
        rows.iter().any(|r| r.bytes_down > 3_145_728)
    });
    let r = rows.iter().find(|r| r.bytes_down > 3_145_728).unwrap();
    assert_eq!(
        r.subscriber_ip6.map(|a| a.to_string()).as_deref(),
        Some("2001:db8:50::2"),
        "{r:?}"
    );
    assert_eq!(r.device_id, "0906");
    assert_eq!(r.service, "wap");
    assert_eq!(r.representative_ip.to_string(), "10.33.0.1");
    assert!(["10.80.0.11", "10.80.0.12"].contains(&r.real_server_ip.to_string().as_str()));
    assert!(r.packets_up > 10 && r.packets_down > 2000, "{r:?}");
    let st = stats_json(&sock);
    assert!(event(&st, "gw_nat64_flows") >= 1);

    // IPFIX (template 257): stop the collector (it writes its file on the
    // way out), read every file it wrote.
    let (records, dump) = lab.nfcapd_records(&flows);
    let rec = records
        .iter()
        .find(|x| x["src_port"] == r.subscriber_port)
        .unwrap_or_else(|| {
            panic!(
                "no record of port {} in {flows:?}: {dump}",
                r.subscriber_port
            )
        });
    assert_eq!(rec["src6_addr"], "2001:db8:50::2", "{rec}");
    assert_eq!(rec["dst6_addr"], "64:ff9b::a21:1", "{rec}");
    assert_eq!(rec["dst_port"], 80, "{rec}");
    assert_eq!(rec["src4_xlt_ip"], r.nat_ip.to_string(), "{rec}");
    assert_eq!(rec["dst4_xlt_ip"], r.real_server_ip.to_string(), "{rec}");
    assert_eq!(
        rec["src_xlt_port"].to_string().trim_matches('"'),
        r.nat_port.to_string(),
        "{rec}"
    );
    assert_eq!(
        rec["dst_xlt_port"].to_string().trim_matches('"'),
        "8080",
        "{rec}"
    );
    assert_eq!(rec["in_packets"], r.packets_up, "{rec}");
    assert_eq!(rec["out_bytes"], r.bytes_down, "{rec}");
    lab.stop_pgw("gw");
}
