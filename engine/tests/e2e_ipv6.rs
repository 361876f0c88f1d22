//! IPv6 subscribers through the single-box LB+GW: the LB stage finds the
//! subscriber's IPv6 range (this box's GW), the GW balances an IPv6
//! representative address over IPv6 servers with NAT66 (pool6 source, the
//! same port keys), and both sides resolve pgw by neighbour discovery.
//! Real IPv6 stacks on both sides; both members answer; counters show the
//! LB's local hand-over and the NAT66 connections.
//!
//! The servers' MACs either come from `[[neighbor]]` entries or, without
//! them, from neighbour discovery: the management thread solicits each
//! IPv6 member from the first pool6 address and learns the advertisements
//! that arrive on the server port for those addresses; one sent from the
//! subscriber side naming a member is refused and counted.
//!
//! Health checks over IPv6: with `gw.health`, each member is probed at its
//! IPv4 and at its IPv6 address (a SYN from the first pool6 address). A
//! member whose IPv6 listener stops is taken out of NAT66 balancing only
//! (its IPv4 side stays up), within interval × fall, and comes back after
//! `rise` passes.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The box's profile; `neighbours`: static MACs for both members; `gw`:
/// more `[gw]` keys.
fn profile(lab: &Lab, neighbours: bool, gw: &str) -> Profile {
    let w = |n: &str, i: &str| {
        format!(r#"{{ name = "{n}", ip = "10.80.0.{i}", ip6 = "2001:db8:80::{i}", port = 8080 }}"#)
    };
    let statics = if neighbours {
        "[[neighbor]]\nip = \"2001:db8:80::11\"\nmac = \"02:00:00:00:80:01\"\n\
         [[neighbor]]\nip = \"2001:db8:80::12\"\nmac = \"02:00:00:00:80:01\"\n"
    } else {
        ""
    };
    lab.profile("lb+gw", "2001:db8:60::1/64")
        .with(&format!(
            "{statics}[lb]\naccess_port = \"access\"\nlan_port = \"servers\""
        ))
        .with(&lb_gateway("me", "local", None))
        .with(&lb_range(
            "range6",
            "2001:db8:60::",
            "2001:db8:60::ffff",
            &["me"],
        ))
        .with(&gw_section(&format!(
            "pool6 = [\"2001:db8:80::100\"]\n{gw}"
        )))
        .with(&gw_service(
            "wap",
            1,
            &[w("w1", "11"), w("w2", "12")],
            "2001:db8:33::1",
            Some(80),
        ))
        .with(
            r#"[[gw.session]]
ip = "10.50.0.2"
ipv6 = "2001:db8:60::/64"
device_id = 660
services = ["wap"]"#,
        )
}

/// Who answers `n` requests to the IPv6 VIP (new connections each).
fn who6(sub: &str, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        *seen
            .entry(curl(sub, "http://[2001:db8:33::1]/who"))
            .or_insert(0) += 1;
    }
    seen
}

/// Eight requests to the IPv6 VIP are answered by both members.
fn both_members_answer(sub: &str) {
    wait_for("a first answer", Duration::from_secs(15), || {
        curl_ok(sub, "http://[2001:db8:33::1]/who")
    });
    let seen = who6(sub, 8);
    assert_eq!(seen.len(), 2, "both IPv6 members should answer: {seen:?}");
}

/// The server namespace (its tap moved in by the caller) and the IPv6
/// subscriber 2001:db8:60::2 with the IPv6 VIPs routed through the GW:
/// (srv, sub).
fn v6_sides(lab: &mut Lab) -> (String, String) {
    let srv = lab.ns("srv");
    let sub = lab.subscriber(&["2001:db8:60::2/64"]);
    lab.route(&sub, "2001:db8:33::/64", "2001:db8:60::1");
    (srv, sub)
}

#[test]
fn ipv6_subscriber_reaches_an_ipv6_group_through_lb_and_nat66() {
    let Some(mut lab) = Lab::netns("p66", &[]) else {
        return;
    };
    let t = lab.tag.clone();
    let profile = profile(&lab, true, "");
    let sock = lab.run_pgw("box", &profile);
    let (srv, sub) = v6_sides(&mut lab);
    lab.move_into_with_mac(
        &format!("{t}b"),
        &srv,
        "02:00:00:00:80:01",
        &["2001:db8:80::11/64", "2001:db8:80::12/64"],
    );
    lab.serve_http("w1", &srv, "2001:db8:80::11");
    lab.serve_http("w2", &srv, "2001:db8:80::12");
    both_members_answer(&sub);
    assert!(
        sh(&format!("ip -n {sub} -6 neigh show 2001:db8:60::1")).contains("lladdr"),
        "NDP not answered"
    );
    let r = stats_json(&sock);
    assert!(
        event(&r, "lb_local") >= 8,
        "the LB did not hand the IPv6 frames to the local GW"
    );
    assert!(
        event(&r, "gw_nat66_flows") >= 9,
        "NAT66 flows {}",
        event(&r, "gw_nat66_flows")
    );
    for l in ["w1", "w2"] {
        assert!(
            lab.log(l).contains("2001:db8:80::100"),
            "{l} did not see the pool6 source:\n{}",
            lab.log(l)
        );
    }
    // The connections' records name the IPv6 VIP, key and member.
    let mut rows = vec![];
    wait_for("NAT66 records", Duration::from_secs(10), || {
        let a = pgw_json(&sock, "accounting");
        rows = a["recent"].as_array().cloned().unwrap_or_default();
        rows.len() >= 8
    });
    for row in &rows {
        assert_eq!(row["representative"], "[2001:db8:33::1]:80", "{row}");
        let nat = row["nat"].as_str().unwrap();
        assert!(nat.starts_with("[2001:db8:80::100]:"), "{row}");
        assert!(
            ["[2001:db8:80::11]:8080", "[2001:db8:80::12]:8080"]
                .contains(&row["server"].as_str().unwrap()),
            "{row}"
        );
        assert!(
            row["subscriber"]
                .as_str()
                .unwrap()
                .starts_with("[2001:db8:60::"),
            "{row}"
        );
    }
    lab.stop_pgw("box");
}

#[test]
fn ipv6_members_are_resolved_by_neighbour_discovery_not_from_the_access_side() {
    let Some(mut lab) = Lab::netns("p6n", &["python3"]) else {
        return;
    };
    let t = lab.tag.clone();
    let profile = profile(&lab, false, "neighbour_refresh_s = 1");
    let sock = lab.run_pgw("box", &profile);
    let (srv, sub) = v6_sides(&mut lab);
    // The kernel's own MAC for the server side (no fixed one).
    lab.move_into(
        &format!("{t}b"),
        &srv,
        &["2001:db8:80::11/64", "2001:db8:80::12/64"],
    );
    let real_mac = sh(&format!("ip -n {srv} -br link show {t}b"))
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    lab.serve_http("w1", &srv, "2001:db8:80::11");
    lab.serve_http("w2", &srv, "2001:db8:80::12");
    let neighbours = || -> serde_json::Value {
        serde_json::from_str(&pgw_at(&sock, "ctl", "neighbors")).unwrap()
    };
    let learned6 = || -> HashMap<String, String> {
        neighbours()["learned6"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e[0].as_str().unwrap().to_string(),
                    e[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    wait_for("both members learnt by ND", Duration::from_secs(15), || {
        learned6().len() == 2
    });
    for m in ["2001:db8:80::11", "2001:db8:80::12"] {
        assert_eq!(learned6()[m], real_mac, "{m}");
    }
    assert!(
        neighbours()["neighbor_solicitations_sent"]
            .as_u64()
            .unwrap()
            >= 2
    );
    both_members_answer(&sub);

    // The spoof: "2001:db8:80::11 is at <the subscriber's MAC>" (override),
    // to all-nodes and to pgw's access MAC, five times each, valid ND.
    let spoof = lab.write(
        "spoof6.py",
        &format!(
            r#"import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("{t}a", 0))
me = s.getsockname()[4]
gw = bytes.fromhex(sys.argv[1].replace(":", ""))
src = socket.inet_pton(socket.AF_INET6, "2001:db8:60::2")
target = socket.inet_pton(socket.AF_INET6, "2001:db8:80::11")
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
for dmac, dst in ((b"\x33\x33\x00\x00\x00\x01", socket.inet_pton(socket.AF_INET6, "ff02::1")),
                  (gw, socket.inet_pton(socket.AF_INET6, "2001:db8:60::1"))):
    na = struct.pack("!BBHI16sBB6s", 136, 0, 0, 0x20000000, target, 2, 1, me)
    pseudo = src + dst + struct.pack("!I3xB", len(na), 58)
    na = na[:2] + struct.pack("!H", csum(pseudo + na)) + na[4:]
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(na), 58, 255, src, dst)
    for _ in range(5):
        s.send(dmac + me + b"\x86\xdd" + ip6 + na)
print("sent")
"#
        ),
    );
    let gw_mac = pgw_json(&sock, "stats")["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    let refused0 = neighbours()["neighbours_refused"].as_u64().unwrap();
    let out = sh(&format!(
        "ip netns exec {sub} python3 {} {gw_mac}",
        spoof.display()
    ));
    assert_eq!(out.trim(), "sent");
    wait_for(
        "pgw to count the refused advertisements",
        Duration::from_secs(5),
        || neighbours()["neighbours_refused"].as_u64().unwrap_or(0) >= refused0 + 10,
    );
    assert_eq!(
        learned6()["2001:db8:80::11"],
        real_mac,
        "a spoofed advertisement re-pointed w1"
    );
    both_members_answer(&sub);

    // The servers' interface takes another MAC and announces nothing (no
    // unsolicited advertisement): pgw's refresh (every second here) asks
    // again and learns it; both members answer from it.
    let new_mac = "02:00:00:00:80:99";
    let ns0 = neighbours()["neighbor_solicitations_sent"]
        .as_u64()
        .unwrap();
    sh(&format!("ip -n {srv} link set {t}b address {new_mac}"));
    wait_for(
        "the new MAC learnt by the refresh",
        Duration::from_secs(10),
        || {
            let l = learned6();
            l["2001:db8:80::11"] == new_mac && l["2001:db8:80::12"] == new_mac
        },
    );
    assert!(
        neighbours()["neighbor_solicitations_sent"]
            .as_u64()
            .unwrap()
            > ns0,
        "no solicitation sent for a learnt member"
    );
    both_members_answer(&sub);
    lab.stop_pgw("box");
}

#[test]
fn an_ipv6_member_that_stops_listening_leaves_nat66_then_comes_back() {
    let Some(mut lab) = Lab::netns("p6h", &["python3", "curl"]) else {
        return;
    };
    let t = lab.tag.clone();
    let profile = profile(
        &lab,
        false,
        &format!("key_ports = [1024, 59999]\nprobe_ports = [60000, 60999]\n{QUICK_HEALTH}"),
    );
    let sock = lab.run_pgw("box", &profile);
    let (srv, sub) = v6_sides(&mut lab);
    // Dual-stack members: both families answer on 8080, each its own
    // listener (w1 and w2 over IPv4, w1v6 and w2v6 over IPv6).
    lab.move_into(
        &format!("{t}b"),
        &srv,
        &[
            "10.80.0.11/24",
            "10.80.0.12/24",
            "2001:db8:80::11/64",
            "2001:db8:80::12/64",
        ],
    );
    lab.serve_http("w1", &srv, "10.80.0.11");
    lab.serve_http("w2", &srv, "10.80.0.12");
    lab.serve_http("w1v6", &srv, "2001:db8:80::11");
    lab.serve_http("w2v6", &srv, "2001:db8:80::12");
    let servers = || pgw_json(&sock, "servers");
    // (up, up6) of a member as the tables have them.
    let state = |v: &serde_json::Value, name: &str| -> (bool, bool) {
        let m = v["groups"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
            .clone();
        (m["up"].as_bool().unwrap(), m["up6"].as_bool().unwrap())
    };
    let health = |v: &serde_json::Value, name: &str, family: &str| -> serde_json::Value {
        v["health"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name && h["family"] == family)
            .unwrap_or_else(|| panic!("no {family} health row for {name}: {v}"))
            .clone()
    };
    wait_for(
        "both members' IPv4 and IPv6 sides answered a probe and are up",
        Duration::from_secs(20),
        || {
            let v = servers();
            let rows = v["health"].as_array().unwrap();
            rows.len() == 4
                && rows
                    .iter()
                    .all(|h| h["up"] == true && h["passes"].as_u64().unwrap() >= 1)
                && state(&v, "w1") == (true, true)
                && state(&v, "w2") == (true, true)
        },
    );
    let v = servers();
    let h6 = health(&v, "w2", "ipv6");
    assert_eq!(h6["ip"], "2001:db8:80::12", "{h6}");
    assert_eq!(h6["last_result"], "SYN-ACK", "{h6}");
    both_members_answer(&sub);

    // w2 stops listening on its IPv6 address only: its kernel answers the
    // IPv6 probes with RST.
    lab.interrupt("w2v6", Duration::from_secs(5));
    let t0 = Instant::now();
    wait_for("w2's IPv6 side marked down", Duration::from_secs(5), || {
        state(&servers(), "w2") == (true, false)
    });
    let took = t0.elapsed();
    // interval × fall = 0.6 s, plus one interval of phase.
    assert!(
        took < Duration::from_millis(1500),
        "w2's IPv6 side marked down after {took:?}"
    );
    let v = servers();
    assert_eq!(health(&v, "w2", "ipv6")["up"], false);
    assert_eq!(health(&v, "w2", "ipv6")["last_result"], "refused (RST)");
    assert_eq!(
        health(&v, "w2", "ipv4")["up"],
        true,
        "the IPv4 side is fine"
    );
    let seen = who6(&sub, 12);
    assert_eq!(
        seen.get("w1v6"),
        Some(&12),
        "new IPv6 connections must avoid w2: {seen:?}"
    );
    let text = pgw_at(&sock, "servers", "");
    assert!(
        text.lines()
            .any(|l| l.contains("2001:db8:80::12") && l.contains("DOWN")),
        "pgw servers does not show w2's IPv6 side down:\n{text}"
    );
    // A reload keeps the health checks' verdicts, the IPv6 side's too.
    let out = pgw_at(&sock, "ctl", "reload");
    assert!(out.contains(r#""ok":true"#), "{out}");
    assert_eq!(state(&servers(), "w2"), (true, false), "after reload");

    // It listens again: up after `rise` passes, used again.
    lab.serve_http("w2v6", &srv, "2001:db8:80::12");
    wait_for("w2's IPv6 side marked up", Duration::from_secs(10), || {
        state(&servers(), "w2") == (true, true)
    });
    let seen = who6(&sub, 10);
    assert!(
        seen.get("w2v6").copied().unwrap_or(0) >= 3,
        "w2 not used again over IPv6: {seen:?}"
    );
    let h6 = health(&servers(), "w2", "ipv6");
    assert!(h6["changes"].as_u64().unwrap() >= 2, "{h6}");
    assert!(
        lab.log("w2v6").contains("2001:db8:80::100"),
        "w2v6 did not see the pool6 source:\n{}",
        lab.log("w2v6")
    );

    // By hand: w1's IPv6 side down leaves w2 for NAT66; w1 stays up.
    let out = pgw_at(&sock, "set", "server6 wap w1 down");
    assert!(out.contains(r#""family":"ipv6""#), "{out}");
    assert_eq!(state(&servers(), "w1"), (true, false));
    let seen = who6(&sub, 6);
    assert_eq!(seen.get("w2v6"), Some(&6), "{seen:?}");
    pgw_at(&sock, "set", "server6 wap w1 up");
    assert_eq!(state(&servers(), "w1"), (true, true));
    lab.stop_pgw("box");
}
