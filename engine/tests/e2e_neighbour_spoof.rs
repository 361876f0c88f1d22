//! Neighbour poisoning from the access side: a subscriber sends ARP replies
//! (a gratuitous one and an unsolicited unicast one) claiming that a server
//! member's address is at the subscriber's own MAC. pgw (GW role) learns
//! server-side neighbours only from frames that arrive on the server port
//! for addresses it resolves there, so the member's entry keeps the real
//! server's MAC, new connections to the representative address are still
//! answered by the real server, and the refusals are counted
//! (`pgw ctl neighbors`: `neighbours_refused`).
//!
//! From the server side, a learnt member's MAC changes only by a reply to
//! the GW's own request: a gratuitous ARP claiming another MAC is not
//! applied (`neighbours_unverified`) but makes the GW ask at once, and the
//! owner's reply decides: a forged claim leaves the real MAC; a real MAC
//! change, announced, is learnt from the owner's answer.

mod common;
use common::*;
use std::time::Duration;

/// A GW (no sessions needed) with service `wap` over w1 (10.80.0.11:8080,
/// serving HTTP), its MAC learnt: (control socket, subscriber's and
/// servers' namespaces, w1's real MAC as learnt).
fn w1_behind_a_gw(lab: &mut Lab) -> (std::path::PathBuf, String, String, String) {
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
    assert_eq!(learned_mac(&sock), real_mac);
    (sock, sub, srv, real_mac)
}

/// `pgw ctl neighbors`.
fn neighbours(sock: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&pgw_at(sock, "ctl", "neighbors")).unwrap()
}

/// The MAC the GW learnt for 10.80.0.11 ("" if none).
fn learned_mac(sock: &std::path::Path) -> String {
    neighbours(sock)["learned"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[0] == "10.80.0.11")
        .map(|e| e[1].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn arp_replies_from_the_access_side_cannot_repoint_a_server() {
    let Some(mut lab) = Lab::netns("pn", &["python3"]) else {
        return;
    };
    let t = lab.tag.clone();
    let (sock, sub, _, real_mac) = w1_behind_a_gw(&mut lab);
    let neighbours = || neighbours(&sock);
    let learned_mac = || learned_mac(&sock);
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

/// A frame from the server side: a gratuitous ARP "10.80.0.11 is at
/// `claimed`", sent from interface `ifc` with `claimed` as its source MAC.
fn garp_script(lab: &Lab, ifc: &str) -> std::path::PathBuf {
    lab.write(
        "garp.py",
        &format!(
            r#"import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("{ifc}", 0))
mac = bytes.fromhex(sys.argv[1].replace(":", ""))
ip = socket.inet_aton("10.80.0.11")
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac, ip, b"\xff" * 6, ip)
for _ in range(3):
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp + bytes(18))
print("sent")
"#
        ),
    )
}

#[test]
fn a_gratuitous_arp_from_the_server_side_is_checked_with_the_owner() {
    let Some(mut lab) = Lab::netns("pg", &["python3"]) else {
        return;
    };
    let t = lab.tag.clone();
    let (sock, sub, srv, real_mac) = w1_behind_a_gw(&mut lab);
    let neighbours = || neighbours(&sock);
    let learned_mac = || learned_mac(&sock);
    let garp = garp_script(&lab, &format!("{t}b"));
    let unverified = || neighbours()["neighbours_unverified"].as_u64().unwrap_or(0);

    // A forged claim from the server side (another MAC, nobody behind it):
    // not applied; the GW asks and the real owner answers.
    let sent = sh(&format!(
        "ip netns exec {srv} python3 {} 02:de:ad:be:ef:01",
        garp.display()
    ));
    assert_eq!(sent.trim(), "sent");
    wait_for(
        "the claim counted as unverified",
        Duration::from_secs(5),
        || unverified() >= 1,
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        learned_mac(),
        real_mac,
        "a forged gratuitous ARP re-pointed w1"
    );
    assert_eq!(curl(&sub, "http://10.33.0.1/who"), "w1");

    // A real change: the server's interface takes a new MAC and announces
    // it; the GW asks, the owner answers from the new MAC: learnt.
    let new_mac = "02:00:00:00:80:77";
    let before = unverified();
    sh(&format!("ip -n {srv} link set {t}b address {new_mac}"));
    sh(&format!(
        "ip netns exec {srv} python3 {} {new_mac}",
        garp.display()
    ));
    wait_for(
        "the announced MAC learnt from the owner's answer",
        Duration::from_secs(5),
        || learned_mac() == new_mac,
    );
    assert!(
        unverified() > before,
        "the announcement itself was not taken as is"
    );
    assert_eq!(curl(&sub, "http://10.33.0.1/who"), "w1");
    lab.stop_pgw("gw");
}
