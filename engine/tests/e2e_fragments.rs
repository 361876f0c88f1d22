//! IPv4 fragments through the GW end to end: a subscriber sends 4 KB UDP
//! datagrams to a representative address; its Linux stack fragments each
//! at the tap's MTU (1500: 1480 + 1480 + 1048 bytes of IP payload); the
//! GW translates the fragments one by one (the first by the connection,
//! the others by the datagram's context) and the server's stack
//! reassembles them; the server answers each with a 4 KB datagram of its
//! own, fragmented by its stack, which comes back the same way. Both
//! sides get every datagram intact, both stacks count the reassemblies
//! (`ReasmOKs` of their namespace's `/proc/net/snmp`), and the GW's
//! fragment counters say how many fragments it translated.

mod common;
use common::*;

/// `Ip: ReasmOKs` (datagrams reassembled) of namespace `ns`.
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

#[test]
fn four_kb_udp_datagrams_cross_the_gw_fragmented_both_ways() {
    let Some(mut lab) = Lab::netns("pf", &["python3"]) else {
        return;
    };
    let profile = lab.one_service_gw("", ("bulk", 3), ("b1", 9000), "10.33.0.3");
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.gw_sides(&["10.80.0.21/24"]);
    // The server answers each datagram with its bytes reversed.
    lab.udp_echo(&srv, "10.80.0.21", 9000, true);
    lab.wait_neighbours(&sock, &["10.80.0.21"]);
    let client = lab.write(
        "client.py",
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.bind(('10.50.0.2',40001))\ns.settimeout(3)\n\
         for i in range(20):\n    d=bytes((i*31+k*7)%256 for k in range(4000))\n\
         \x20   s.sendto(d,('10.33.0.3',5000))\n    r,a=s.recvfrom(65535)\n\
         \x20   assert a==('10.33.0.3',5000), a\n\
         \x20   assert r==d[::-1], (i,len(r))\nprint('ok')\n",
    );
    let (sub0, srv0) = (reasm_oks(&sub), reasm_oks(&srv));
    let out = sh(&format!("ip netns exec {sub} python3 {}", client.display()));
    assert_eq!(out.trim(), "ok", "{out}");
    // Every datagram reassembled by the stack that received it: what
    // crossed the GW were fragments.
    assert_eq!(reasm_oks(&srv) - srv0, 20, "server side");
    assert_eq!(reasm_oks(&sub) - sub0, 20, "subscriber side");
    let r = stats_json(&sock);
    // 20 datagrams each way, 3 fragments each: the first ones keep a
    // context, the 2 × 40 others are translated by it.
    assert_eq!(event(&r, "gw_frag_first"), 40, "{r}");
    assert_eq!(event(&r, "gw_frag_translated"), 80, "{r}");
    assert_eq!(event(&r, "gw_frag_contexts"), 0, "every context ended");
    for d in [
        "fragment",
        "frag_timeout",
        "frag_table_full",
        "frag_hold_full",
        "frag_too_many",
        "released_no_mbuf",
    ] {
        assert_eq!(drops(&r, d), 0, "{d}: {r}");
    }
    lab.stop_pgw("gw");
}
