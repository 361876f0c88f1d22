//! ICMP through the GW's NAT44 between real Linux stacks: path MTU
//! discovery across the GW both ways, traceroute through it, and echo to a
//! representative address.
//!
//! - Download with a 1280-byte hop on the subscriber side (a router
//!   namespace between the GW's access tap and the subscriber): the
//!   server's full-size DF segments reach the router, whose Fragmentation
//!   Needed (to the VIP) crosses the GW up to the server, translated with
//!   the connection's binding; the server's TCP lowers its segment size and
//!   `curl` gets all 10 MB byte-identical. Without the translation the
//!   server never learns the MTU and the transfer stalls.
//! - Upload with a 1280-byte hop on the server side (a router namespace
//!   between the GW's server tap and the server): the subscriber's
//!   full-size segments get a Fragmentation Needed (to the pool address)
//!   that crosses the GW down to the subscriber; `curl -T` of 10 MB
//!   arrives whole. `traceroute -T` from the subscriber to the VIP shows
//!   the server-side router: its Time Exceeded comes back through the GW.
//! - `ping` to the VIP (IPv4, and an IPv6 VIP of NAT66) is answered by
//!   the GW (`gw.answer_ping`, on by default) and counted, and not at all
//!   when it is off.

mod common;
use common::*;
use std::time::Duration;

const MB10: u64 = 10 * 1024 * 1024;

/// The GW (one worker) for subscriber `sub_ip`, the `wap` VIP 10.33.0.1:80
/// on member `member_ip`:8080, its access address 10.50.0.1; `extra` more
/// `[gw]` keys.
fn gw_profile(lab: &Lab, sub_ip: &str, member_ip: &str, extra: &str) -> Profile {
    lab.profile("gw", "10.50.0.1/24")
        .engine(Engine {
            idle_sleep_us: 20,
            mbufs: 16383,
            ..Engine::default()
        })
        .with(&gw_section(extra))
        .with(&wap(&[member("w1", member_ip, 8080)]))
        .with(&gw_session(sub_ip, 1001, &["wap"]))
}

/// A router namespace `name`: forwarding on, no reverse-path filter.
fn router(lab: &mut Lab, name: &str) -> String {
    let ns = lab.ns(name);
    sh(&format!(
        "ip netns exec {ns} sysctl -qw net.ipv4.ip_forward=1 \
         net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0"
    ));
    ns
}

/// A veth pair `a` (in `ns_a`, address `cidr_a`, MTU `mtu_a`) — `b` (in
/// `ns_b`, `cidr_b`, MTU 1500).
fn veth(ns_a: &str, a: &str, cidr_a: &str, mtu_a: u32, ns_b: &str, b: &str, cidr_b: &str) {
    sh(&format!(
        "ip -n {ns_a} link add {a} mtu {mtu_a} type veth peer name {b} netns {ns_b}"
    ));
    sh(&format!(
        "ip -n {ns_a} addr add {cidr_a} dev {a} && ip -n {ns_a} link set {a} up"
    ));
    sh(&format!(
        "ip -n {ns_b} link set {b} mtu 1500 && ip -n {ns_b} addr add {cidr_b} dev {b} \
         && ip -n {ns_b} link set {b} up"
    ));
}

/// Whether `ping -c 3` from `ns` to `ip` gets 3 answers: the count it got.
fn pings(ns: &str, ip: &str) -> u32 {
    let out = sh_output(&format!("ip netns exec {ns} ping -n -c 3 -i 0.3 -W 2 {ip}"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(" packets transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("ping said: {text}"))
}

#[test]
fn pmtud_down_the_subscriber_side_and_ping_to_the_vip() {
    let Some(mut lab) = Lab::netns("pm", &["curl", "ping"]) else {
        return;
    };
    let t = lab.tag.clone();
    let profile = gw_profile(&lab, "10.60.0.2", "10.80.0.11", "");
    let access = profile.taps[0].clone();
    let sock = lab.run_pgw("gw", &profile);
    let srv = lab.servers(&["10.80.0.11/24"]);
    // subscriber (MTU 1500) — router (1280 toward it) — GW — server
    let rtr = router(&mut lab, "rtr");
    lab.move_into(&access, &rtr, &["10.50.0.254/24"]);
    lab.route(&rtr, "10.33.0.0/24", "10.50.0.1");
    let sub = lab.ns("sub");
    veth(
        &rtr,
        &format!("{t}r"),
        "10.60.0.1/24",
        1280,
        &sub,
        &format!("{t}s"),
        "10.60.0.2/24",
    );
    lab.route(&sub, "default", "10.60.0.1");
    let www = lab.serve_http("w1", &srv, "10.80.0.11");
    let file = random_file(&www, "blob.bin", MB10);
    wait_for(
        "first answer through the VIP",
        Duration::from_secs(20),
        || curl_ok(&sub, "http://10.33.0.1/who"),
    );

    // The server's TCP sends full-size DF segments (the subscriber said MSS
    // 1460); the router's Fragmentation Needed must reach it through the GW.
    let got = download_intact(&lab, &sub, "http://10.33.0.1/blob.bin", &file, 120);
    assert_eq!(std::fs::metadata(&got).unwrap().len(), MB10);
    let r = stats_json(&sock);
    assert!(
        event(&r, "gw_icmp_errors") >= 1,
        "no ICMP error crossed the GW: {r}"
    );
    // The server learned the path MTU of the pool address.
    let cached = sh(&format!("ip -n {srv} route get 10.80.0.100"));
    assert!(cached.contains("mtu 1280"), "server's route: {cached}");

    // Echo to the VIP: answered by the GW itself, no connection opened.
    let flows = event(&r, "gw_new_flows");
    assert_eq!(pings(&sub, "10.33.0.1"), 3);
    let r = stats_json(&sock);
    assert_eq!(event(&r, "gw_vip_echo_replies"), 3, "{r}");
    assert_eq!(
        event(&r, "gw_new_flows"),
        flows,
        "the pings opened connections"
    );
    lab.stop_pgw("gw");
}

#[test]
fn vip_does_not_answer_ping_when_switched_off() {
    let Some(mut lab) = Lab::netns("pn", &["ping"]) else {
        return;
    };
    let profile = gw_profile(&lab, "10.50.0.2", "10.80.0.11", "answer_ping = false");
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.gw_sides(&["10.80.0.11/24"]);
    lab.serve_http("w1", &srv, "10.80.0.11");
    wait_for(
        "first answer through the VIP",
        Duration::from_secs(20),
        || curl_ok(&sub, "http://10.33.0.1/who"),
    );
    // (the VIP is on port 80 only: an echo to it is no connection either)
    assert_eq!(pings(&sub, "10.33.0.1"), 0);
    let r = stats_json(&sock);
    assert_eq!(event(&r, "gw_vip_echo_replies"), 0, "{r}");
    lab.stop_pgw("gw");
}

#[test]
fn ping_to_an_ipv6_vip_is_answered_by_the_gw() {
    let Some(mut lab) = Lab::netns("p6p", &["ping"]) else {
        return;
    };
    let member = r#"{ name = "w1", ip = "10.80.0.11", ip6 = "2001:db8:80::11", port = 8080 }"#;
    let profile = lab
        .profile("gw", "2001:db8:60::1/64")
        .with(&gw_section(r#"pool6 = ["2001:db8:80::100"]"#))
        .with(&gw_service(
            "wap",
            1,
            &[member.to_string()],
            "2001:db8:33::1",
            Some(80),
        ));
    let sock = lab.run_pgw("gw", &profile);
    lab.servers(&[]);
    let sub = lab.subscriber(&["2001:db8:60::2/64"]);
    lab.route(&sub, "2001:db8:33::/64", "2001:db8:60::1");
    // (neighbour discovery first, at its own pace)
    wait_for("a first echo reply", Duration::from_secs(15), || {
        sh_ok(&format!(
            "ip netns exec {sub} ping -n -c 1 -W 1 2001:db8:33::1"
        ))
    });
    let before = event(&stats_json(&sock), "gw_vip_echo_replies");
    assert!(before >= 1);
    assert_eq!(pings(&sub, "2001:db8:33::1"), 3);
    let r = stats_json(&sock);
    assert_eq!(event(&r, "gw_vip_echo_replies"), before + 3, "{r}");
    lab.stop_pgw("gw");
}

/// An HTTP server on `addr`:8080 in `ns` whose PUT answers with the SHA-256
/// of the body it read.
const PUT_SERVER: &str = r#"
import hashlib, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"up\n")
    def do_PUT(self):
        n = int(self.headers["Content-Length"]); h = hashlib.sha256()
        while n > 0:
            b = self.rfile.read(min(n, 65536))
            if not b: break
            h.update(b); n -= len(b)
        body = (h.hexdigest() + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
HTTPServer((sys.argv[1], 8080), H).serve_forever()
"#;

#[test]
fn pmtud_up_the_server_side_and_traceroute_through_the_gw() {
    let Some(mut lab) = Lab::netns("pu", &["curl", "traceroute", "python3"]) else {
        return;
    };
    let t = lab.tag.clone();
    let rmac = "02:00:00:80:00:fe";
    let profile = gw_profile(
        &lab,
        "10.50.0.2",
        "10.81.0.11",
        &format!("server_next_hop_mac = \"{rmac}\""),
    );
    let servers_tap = profile.taps[1].clone();
    let sock = lab.run_pgw("gw", &profile);
    let sub = lab.subscriber(&["10.50.0.2/24"]);
    lab.route(&sub, "default", "10.50.0.1");
    // GW — router (1280 toward the server) — server (MTU 1500)
    let rtr = router(&mut lab, "rtr");
    lab.move_into_with_mac(&servers_tap, &rtr, rmac, &["10.80.0.254/24"]);
    let srv = lab.ns("srv");
    veth(
        &rtr,
        &format!("{t}r"),
        "10.81.0.1/24",
        1280,
        &srv,
        &format!("{t}s"),
        "10.81.0.11/24",
    );
    lab.route(&srv, "default", "10.81.0.1");
    let script = lab.write("put_server.py", PUT_SERVER);
    lab.spawn(
        "put",
        &format!(
            "ip netns exec {srv} python3 {} 10.81.0.11",
            script.display()
        ),
    );
    lab.wait_listen(&srv, "tcp", "10.81.0.11:8080");
    wait_for(
        "first answer through the VIP",
        Duration::from_secs(20),
        || curl_ok(&sub, "http://10.33.0.1/"),
    );

    // The subscriber's TCP sends full-size DF segments (the server said MSS
    // 1460); the router's Fragmentation Needed must reach it through the GW.
    let file = random_file(&lab.dir, "up.bin", MB10);
    let out = sh(&format!(
        "ip netns exec {sub} curl -sS --fail --max-time 120 -H 'Expect:' -T {} http://10.33.0.1/up.bin",
        file.display()
    ));
    assert_eq!(out.trim(), sha256(&file), "the server got other bytes");
    let cached = sh(&format!("ip -n {sub} route get 10.33.0.1"));
    assert!(cached.contains("mtu 1280"), "subscriber's route: {cached}");
    let errors = event(&stats_json(&sock), "gw_icmp_errors");
    assert!(errors >= 1, "no ICMP error crossed the GW");

    // traceroute (TCP SYNs to the VIP's port): hop 1 is the GW (it sends
    // no Time Exceeded: `*`), hop 2 the router, whose Time Exceeded comes
    // back through the GW, then the VIP itself.
    let tr = sh(&format!(
        "ip netns exec {sub} traceroute -n -T -p 80 -q 1 -w 3 -m 5 10.33.0.1"
    ));
    let hop = |n: usize| -> String {
        tr.lines()
            .find(|l| l.split_whitespace().next() == Some(&n.to_string()))
            .unwrap_or_else(|| panic!("no hop {n}: {tr}"))
            .to_string()
    };
    assert!(hop(2).contains("10.80.0.254"), "the router's hop: {tr}");
    assert!(hop(3).contains("10.33.0.1"), "the VIP's hop: {tr}");
    assert!(
        event(&stats_json(&sock), "gw_icmp_errors") > errors,
        "the Time Exceeded did not cross the GW"
    );
    lab.stop_pgw("gw");
}
