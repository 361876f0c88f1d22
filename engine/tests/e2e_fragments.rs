//! Fragments through the GW end to end, between real Linux stacks: a
//! subscriber sends 4 KB UDP datagrams to a representative address; its
//! stack fragments each at the tap's MTU; the GW translates the fragments
//! one by one (the first by the connection, the others by the datagram's
//! context) and the server's stack reassembles them; the server answers
//! each with a 4 KB datagram of its own, fragmented by its stack, which
//! comes back the same way. Both sides get every datagram intact, both
//! stacks count the reassemblies (`ReasmOKs` of their namespace's
//! `/proc/net/snmp`, `Ip6ReasmOKs` of `/proc/net/snmp6`), and the GW's
//! fragment counters say how many fragments it translated.
//!
//! NAT44 (IPv4 both sides, MTU 1500: 1480 + 1480 + 1048 bytes of IP
//! payload), NAT64 (an IPv6-only subscriber to an IPv4 server: IPv6
//! fragments become IPv4 ones and back, RFC 7915) and NAT66.

mod common;
use common::*;

/// `Ip: ReasmOKs` (IPv4 datagrams reassembled) of namespace `ns`.
fn reasm_oks(ns: &str) -> u64 {
    let snmp = sh(&format!("ip netns exec {ns} cat /proc/net/snmp"));
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().unwrap(), ip.next().unwrap());
    let at = names
        .split_whitespace()
        .position(|n| n == "ReasmOKs")
        .unwrap_or_else(|| panic!("no ReasmOKs in {snmp}"));
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

/// `Ip6ReasmOKs` (IPv6 datagrams reassembled) of namespace `ns`.
fn reasm6_oks(ns: &str) -> u64 {
    let snmp6 = sh(&format!("ip netns exec {ns} cat /proc/net/snmp6"));
    snmp6
        .lines()
        .find_map(|l| l.strip_prefix("Ip6ReasmOKs"))
        .unwrap_or_else(|| panic!("no Ip6ReasmOKs in {snmp6}"))
        .trim()
        .parse()
        .unwrap()
}

/// From namespace `ns`, 20 datagrams of 4000 bytes from `bind` port 40001
/// to `to` port 5000, each answered reversed by `to`.
fn exchange(lab: &Lab, ns: &str, bind: &str, to: &str) {
    let family = if bind.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    let client = lab.write(
        "client.py",
        &format!(
            "import socket\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\n\
             s.bind(('{bind}',40001))\ns.settimeout(3)\n\
             for i in range(20):\n    d=bytes((i*31+k*7)%256 for k in range(4000))\n\
             \x20   s.sendto(d,('{to}',5000))\n    r,a=s.recvfrom(65535)\n\
             \x20   assert a[:2]==('{to}',5000), a\n\
             \x20   assert r==d[::-1], (i,len(r))\nprint('ok')\n"
        ),
    );
    let out = sh(&format!("ip netns exec {ns} python3 {}", client.display()));
    assert_eq!(out.trim(), "ok", "{out}");
}

/// 20 datagrams each way, 3 fragments each, crossed the GW at `sock`: the
/// first ones kept a context, the 2 × 40 others were translated by it,
/// every context ended, nothing was dropped for fragments.
fn assert_translated(sock: &std::path::Path) {
    assert_translated_n(sock, 40, 80);
}

/// [`assert_translated`] with `first` first fragments and `later` later
/// ones translated.
fn assert_translated_n(sock: &std::path::Path, first: u64, later: u64) {
    let r = stats_json(sock);
    assert_eq!(event(&r, "gw_frag_first"), first, "{r}");
    assert_eq!(event(&r, "gw_frag_translated"), later, "{r}");
    assert_eq!(event(&r, "gw_frag_contexts"), 0, "every context ended");
    for d in [
        "fragment",
        "frag_timeout",
        "frag_table_full",
        "frag_hold_full",
        "frag_too_many",
        "frag_hold_too_big",
        "released_no_mbuf",
        "xlat_fragment",
        "xlat_frag_too_big",
        "too_big",
    ] {
        assert_eq!(drops(&r, d), 0, "{d}: {r}");
    }
}

/// The `bulk` service: member b1 on `b1`:9000, its VIP `vip`.
fn bulk(b1: &str, vip: &str) -> String {
    let m = if b1.contains(':') {
        format!(r#"{{ name = "b1", ip = "10.80.0.21", ip6 = "{b1}", port = 9000 }}"#)
    } else {
        member("b1", b1, 9000)
    };
    gw_service("bulk", 3, &[m], vip, None)
}

/// A GW with `gw_keys` whose access side is `net`::1/64, the subscriber
/// `net`::2 (its /64 a session allowed `bulk`) with `routed` through the
/// GW, and the bulk service over (`b1`: member address, VIP); started,
/// with the servers' side at `server_cidr`: (its socket, the subscriber's
/// namespace, the servers').
fn v6_subscriber_gw(
    lab: &mut Lab,
    net: &str,
    gw_keys: &str,
    (b1, vip): (&str, &str),
    routed: &str,
    server_cidr: &str,
) -> (std::path::PathBuf, String, String) {
    let session = gw_session6("10.50.0.2", &format!("{net}::/64"), 9015550106, &["bulk"]);
    let profile = lab
        .profile("gw", &format!("{net}::1/64"))
        .with(&gw_section(gw_keys))
        .with(&bulk(b1, vip))
        .with(&session);
    let sock = lab.run_pgw("gw", &profile);
    let sub = lab.subscriber(&[&format!("{net}::2/64")]);
    lab.route(&sub, routed, &format!("{net}::1"));
    let srv = lab.servers(&[server_cidr]);
    (sock, sub, srv)
}

#[test]
fn four_kb_udp_datagrams_cross_the_gw_fragmented_both_ways() {
    let Some(mut lab) = Lab::netns("pf", &["python3"]) else {
        return;
    };
    let profile = lab.one_service_gw("", ("bulk", 3), ("b1", 9000), "10.33.0.3");
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.gw_sides(&["10.80.0.21/24"]);
    lab.udp_echo(&srv, "10.80.0.21", 9000, true);
    lab.wait_neighbours(&sock, &["10.80.0.21"]);
    let (sub0, srv0) = (reasm_oks(&sub), reasm_oks(&srv));
    exchange(&lab, &sub, "10.50.0.2", "10.33.0.3");
    // Every datagram reassembled by the stack that received it: what
    // crossed the GW were fragments.
    assert_eq!(reasm_oks(&srv) - srv0, 20, "server side");
    assert_eq!(reasm_oks(&sub) - sub0, 20, "subscriber side");
    assert_translated(&sock);
    lab.stop_pgw("gw");
}

/// `ping -s 4000` through the GW (NAT44, `answer_ping = false`: the echo
/// to the VIP goes to its member): each request and each reply crosses in
/// three fragments, the first with the ICMP header (the identifier becomes
/// the key port and back), the others following its translation; both
/// stacks reassemble them and ping gets every reply.
#[test]
fn a_4000_byte_ping_crosses_the_gw_fragmented_both_ways() {
    let Some(mut lab) = Lab::netns("pfp", &["ping"]) else {
        return;
    };
    let profile = lab.one_service_gw(
        "answer_ping = false",
        ("bulk", 3),
        ("b1", 9000),
        "10.33.0.3",
    );
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.gw_sides(&["10.80.0.21/24"]);
    lab.wait_neighbours(&sock, &["10.80.0.21"]);
    let (sub0, srv0) = (reasm_oks(&sub), reasm_oks(&srv));
    let out = sh(&format!(
        "ip netns exec {sub} ping -n -c 5 -i 0.2 -W 5 -s 4000 -I 10.50.0.2 10.33.0.3"
    ));
    assert!(out.contains("5 received"), "{out}");
    assert!(out.contains("4008 bytes from 10.33.0.3"), "{out}");
    assert_eq!(reasm_oks(&srv) - srv0, 5, "server side");
    assert_eq!(reasm_oks(&sub) - sub0, 5, "subscriber side");
    assert_translated_n(&sock, 10, 20);
    lab.stop_pgw("gw");
}

/// NAT64: the IPv6-only subscriber's stack cuts each datagram at 1448
/// bytes of payload (MTU 1500: 40 + 8 + 1448 + 4 bytes of room), the GW
/// sends 1468-byte IPv4 fragments (Identification = the low 16 bits of the
/// IPv6 one). The server's link has MTU 1472, so its stack cuts at 1448
/// too and each IPv4 fragment, 28 bytes longer as IPv6 with a Fragment
/// header, fits the 1500 of the IPv6 side (`nat64.mtu6`); at MTU 1500
/// they would be 1528 bytes, over `mtu6` (such fragments are dropped as
/// `xlat_frag_too_big`: `pipelines/src/gw/tests/frag.rs`).
#[test]
fn four_kb_udp_datagrams_cross_nat64_fragmented_both_ways() {
    let Some(mut lab) = Lab::netns("pf64", &["python3"]) else {
        return;
    };
    let nat64 = "nat64 = { prefix = \"64:ff9b::/96\", mtu4 = 1500, mtu6 = 1500 }";
    let (b1, routed) = (("10.80.0.21", "10.33.0.3"), "64:ff9b::/96");
    let (sock, sub, srv) =
        v6_subscriber_gw(&mut lab, "2001:db8:50", nat64, b1, routed, "10.80.0.21/24");
    sh(&format!("ip -n {srv} link set dev {}b mtu 1472", lab.tag));
    lab.udp_echo(&srv, "10.80.0.21", 9000, true);
    lab.wait_neighbours(&sock, &["10.80.0.21"]);
    let (sub0, srv0) = (reasm6_oks(&sub), reasm_oks(&srv));
    exchange(&lab, &sub, "2001:db8:50::2", "64:ff9b::a21:3");
    assert_eq!(reasm_oks(&srv) - srv0, 20, "server side (IPv4)");
    assert_eq!(reasm6_oks(&sub) - sub0, 20, "subscriber side (IPv6)");
    assert_translated(&sock);
    assert_eq!(event(&stats_json(&sock), "gw_nat64_flows"), 1);
    lab.stop_pgw("gw");
}

/// NAT66: IPv6 on both sides, both stacks cut at 1448 bytes of payload;
/// the GW rewrites every fragment's addresses (the first one's ports and
/// checksum too) and keeps the Fragment header as it is.
#[test]
fn four_kb_udp_datagrams_cross_nat66_fragmented_both_ways() {
    let Some(mut lab) = Lab::netns("pf66", &["python3"]) else {
        return;
    };
    let pool6 = "pool6 = [\"2001:db8:80::100\"]";
    let (b1, routed) = (("2001:db8:80::21", "2001:db8:33::3"), "2001:db8:33::/64");
    let (sock, sub, srv) = v6_subscriber_gw(
        &mut lab,
        "2001:db8:60",
        pool6,
        b1,
        routed,
        "2001:db8:80::21/64",
    );
    lab.udp_echo(&srv, "2001:db8:80::21", 9000, true);
    wait_for(
        "b1 learnt by ND",
        std::time::Duration::from_secs(15),
        || {
            let n: serde_json::Value =
                serde_json::from_str(&pgw_at(&sock, "ctl", "neighbors")).unwrap();
            n["learned6"]
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e[0] == "2001:db8:80::21"))
        },
    );
    let (sub0, srv0) = (reasm6_oks(&sub), reasm6_oks(&srv));
    exchange(&lab, &sub, "2001:db8:60::2", "2001:db8:33::3");
    assert_eq!(reasm6_oks(&srv) - srv0, 20, "server side");
    assert_eq!(reasm6_oks(&sub) - sub0, 20, "subscriber side");
    assert_translated(&sock);
    assert_eq!(event(&stats_json(&sock), "gw_nat66_flows"), 1);
    lab.stop_pgw("gw");
}
