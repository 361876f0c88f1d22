//! Neighbour poisoning from the access side: a subscriber sends ARP replies
//! (a gratuitous one and an unsolicited unicast one) claiming that a server
//! member's address is at the subscriber's own MAC. pgw (GW role) learns
//! server-side neighbours only from frames that arrive on the server port
//! for addresses it resolves there, so the member's entry keeps the real
//! server's MAC, new connections to the representative address are still
//! answered by the real server, and the refusals are counted
//! (`pgw ctl neighbors`: `neighbours_refused`).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn arp_replies_from_the_access_side_cannot_repoint_a_server() {
    let Some(mut lab) = Lab::netns("pn", &["python3"]) else {
        return;
    };
    let profile = lab
        .profile("gw", "10.50.0.1/24")
        .with(&gw_section("require_session = false"))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]));
    let sock = lab.run_pgw("gw", &profile);
    let t = lab.tag.clone();
    let (sub, srv) = lab.gw_sides(&["10.80.0.11/24"]);
    lab.serve_http("w1", &srv, "10.80.0.11");
    lab.wait_neighbours(&sock, &["10.80.0.11"]);
    let real_mac = sh(&format!("ip -n {srv} -br link show {t}b"))
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let neighbours = || -> serde_json::Value {
        serde_json::from_str(&pgw_at(&sock, "ctl", "neighbors")).unwrap()
    };
    let learned_mac = || -> String {
        let v = neighbours();
        v["learned"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e[0] == "10.80.0.11")
            .map(|e| e[1].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(learned_mac(), real_mac);
    assert_eq!(curl(&sub, "http://10.33.0.1/who"), "w1");

    // The spoof: "10.80.0.11 is at <the subscriber's MAC>", broadcast
    // (gratuitous) and unicast to pgw's access MAC, five times each.
    let spoof = lab.write(
        "spoof.py",
        &format!(
            r#"import socket, struct, sys
ifc = "{t}a"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifc, 0))
me = s.getsockname()[4]
gw = bytes.fromhex(sys.argv[1].replace(":", ""))
ip = socket.inet_aton("10.80.0.11")
for dst in (b"\xff" * 6, gw):
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, me, ip, dst, ip)
    for _ in range(5):
        s.send(dst + me + b"\x08\x06" + arp + bytes(18))
print("sent")
"#
        ),
    );
    send_from(&sub, &spoof, &first_port_mac(&sock));
    wait_for(
        "pgw to count the refused replies",
        Duration::from_secs(5),
        || neighbours()["neighbours_refused"].as_u64().unwrap_or(0) >= 10,
    );
    assert_eq!(learned_mac(), real_mac, "a spoofed reply re-pointed w1");
    for _ in 0..5 {
        assert_eq!(curl(&sub, "http://10.33.0.1/who"), "w1");
    }
    lab.stop_pgw("gw");
}
