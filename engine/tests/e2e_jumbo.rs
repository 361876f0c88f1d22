//! Large frames through the GW (NAT44) between real Linux stacks on net_tap
//! (`engine.mtu`).
//!
//! - pgw sets its taps' MTU itself (`mtu = 1504`, the most DPDK 22.11's
//!   net_tap allows: it says 1522-byte frames at most); `ping -s 1476 -M do`
//!   and a `curl` download over NAT44 fill that MTU through the GW.
//! - `mtu = 9000` on net_tap: pgw refuses to start, naming the port, its
//!   driver and its limits (jumbo frames need a device that takes them).
//! - `mtu = 9000` on net_pcap over veths (a device without an MTU setting
//!   of its own that takes frames of any length): 9000-byte packets with DF
//!   cross the GW and a `curl` download over NAT44 fills 9014-byte frames.
//! - At the default `mtu = 1500`, a subscriber whose interface has MTU 9000
//!   sends 1942-byte frames (`ping -s 1900 -M do`): each one is dropped and
//!   counted `oversize`, none `bad_ether`; frames longer than the mbuf
//!   (`ping -s 8000`) are cut by the kernel's tap and counted by the PMD as
//!   `ierrors` before pgw sees them; a 1400-byte ping still passes.

mod common;
use common::*;

/// Echo replies `ping -c N` from `ns` to `ip` got (the "received" count).
fn pings(ns: &str, args: &str, ip: &str) -> u32 {
    let out = sh_output(&format!(
        "ip netns exec {ns} ping -n {args} -i 0.3 -W 2 {ip}"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(" packets transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("ping said: {text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// The MTU `ip link` shows for `iface` (in namespace `ns`, or the root one).
fn mtu_of(ns: Option<&str>, iface: &str) -> u32 {
    let n = ns.map(|n| format!("-n {n} ")).unwrap_or_default();
    let out = sh(&format!("ip {n}-o link show {iface}"));
    out.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no mtu in: {out}"))
}

/// A port's counter `key` from a stats report.
fn port_counter(r: &serde_json::Value, port: &str, key: &str) -> u64 {
    r["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .unwrap_or_else(|| panic!("no port {port}: {r}"))[key]
        .as_u64()
        .unwrap()
}

/// A GW of [`Lab::wap_gw`] (subscriber 10.50.0.2, wap1 10.80.0.11:8080)
/// with `engine_keys` in its `[engine]`.
fn jumbo_gw(lab: &Lab, engine_keys: &str) -> Profile {
    lab.wap_gw("", &[("10.50.0.2", 9015550101)]).engine(Engine {
        idle_sleep_us: 20,
        extra: engine_keys.into(),
        ..Engine::default()
    })
}

/// net_tap of DPDK 22.11 says 1522-byte frames at most: `mtu = 1504` is
/// its largest. pgw sets it on both taps; 1504-byte IP packets with DF
/// cross the GW (ping answered, a 4 MB `curl` download over NAT44 at MSS
/// 1464 byte-identical), none counted `oversize`.
#[test]
fn the_mtu_is_set_on_the_ports_and_frames_up_to_it_pass() {
    let Some(mut lab) = Lab::netns("jb", &["python3", "curl", "ping"]) else {
        return;
    };
    let profile = jumbo_gw(&lab, "mtu = 1504");
    let (ta, tb) = (profile.taps[0].clone(), profile.taps[1].clone());
    let sock = lab.run_pgw("gw", &profile);
    // pgw set its ports' MTU: the kernel side of each tap says so.
    assert_eq!(mtu_of(None, &ta), 1504);
    assert_eq!(mtu_of(None, &tb), 1504);
    let (sub, srv) = lab.wap_sides(&sock);
    assert_eq!(mtu_of(Some(&sub), &ta), 1504);
    assert_eq!(mtu_of(Some(&srv), &tb), 1504);

    // 1518-byte frames, DF: answered whole by the GW (gw.answer_ping).
    assert_eq!(pings(&sub, "-c 3 -s 1476 -M do", "10.33.0.1"), 3);

    // TCP at MSS 1464 both ways: the server's segments fill the MTU.
    let file = random_file(&lab.site("http"), "blob.bin", 4194304);
    download_intact(&lab, &sub, "http://10.33.0.1/blob.bin", &file, 60);

    let r = stats_json(&sock);
    assert!(port_counter(&r, "access", "obytes") > 4194304, "{r}");
    for reason in ["oversize", "bad_ether", "bad_ipv4", "too_big"] {
        assert_eq!(drops(&r, reason), 0, "{reason}: {r}");
    }
    lab.stop_pgw("gw");
}

/// Jumbo frames where the device takes them: net_pcap on a veth (its
/// `iface` mode: libpcap's AF_PACKET socket on the root end, the other end
/// in the subscriber's or the servers' namespace, both MTU 9000, their
/// checksum and segmentation offloads off so that the GW sees what a wire
/// carries). `mtu = 9000`: 9000-byte IP packets with DF cross the GW both
/// ways (ping answered whole), a 4 MB `curl` download over NAT44 at MSS
/// 8960 arrives intact in frames of up to 9014 bytes, nothing counted
/// `oversize`.
#[test]
fn jumbo_frames_cross_the_gw_on_a_device_that_takes_them() {
    let Some(mut lab) = Lab::netns("jp", &["python3", "curl", "ping", "ethtool"]) else {
        return;
    };
    let tag = lab.tag.clone();
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    for x in [&a, &b] {
        let peer = x.to_uppercase();
        sh(&format!(
            "ip link add {x} type veth peer name {peer} && ip link set {x} mtu 9000 && \
             ethtool -K {x} tx off tso off gso off gro off >/dev/null && ip link set {x} up"
        ));
        lab.links.push(x.clone());
    }
    let profile = Profile::new(&tag, "gw", &lab.dir.join("pgw.sock"))
        .port("access", &format!("net_pcap_{a},iface={a}"))
        .addr("10.50.0.1/24")
        .port("servers", &format!("net_pcap_{b},iface={b}"))
        .with(&gw_section(""))
        .with(&wap(&[member("wap1", "10.80.0.11", 8080)]))
        .with(&gw_session("10.50.0.2", 9015550101, &["wap"]))
        .engine(Engine {
            idle_sleep_us: 20,
            extra: "mtu = 9000".into(),
            ..Engine::default()
        });
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = (lab.ns("sub"), lab.ns("srv"));
    for (x, ns, cidr) in [(&a, &sub, "10.50.0.2/24"), (&b, &srv, "10.80.0.11/24")] {
        let peer = x.to_uppercase();
        sh(&format!(
            "ip link set {peer} mtu 9000 && ethtool -K {peer} tx off tso off gso off gro off >/dev/null"
        ));
        lab.move_into(&peer, ns, &[cidr]);
    }
    lab.route(&sub, "10.33.0.0/24", "10.50.0.1");
    lab.serve_http("http", &srv, "10.80.0.11");
    lab.wait_neighbours(&sock, &["10.80.0.11"]);

    // 9000-byte IP packets, DF: answered whole by the GW.
    assert_eq!(pings(&sub, "-c 3 -s 8972 -M do", "10.33.0.1"), 3);
    // TCP at MSS 8960 both ways: the server's segments fill the MTU.
    let file = random_file(&lab.site("http"), "blob.bin", 4194304);
    download_intact(&lab, &sub, "http://10.33.0.1/blob.bin", &file, 60);

    let r = stats_json(&sock);
    let (pk, by) = (
        port_counter(&r, "access", "opackets"),
        port_counter(&r, "access", "obytes"),
    );
    eprintln!(
        "access port: {pk} frames, {by} bytes out ({} per frame)",
        by / pk
    );
    assert!(by > 4194304, "{r}");
    // ~470 segments of 8960 bytes carry the file; the ACKs and the ping
    // are few: bytes per frame far above a 1500-byte MTU's
    assert!(by / pk > 6000, "{by} bytes in {pk} frames: {r}");
    for reason in ["oversize", "bad_ether", "bad_ipv4", "too_big"] {
        assert_eq!(drops(&r, reason), 0, "{reason}: {r}");
    }
    lab.stop_pgw("gw");
}

/// Sends 20 datagrams of 1 400 random bytes to 10.33.0.1:80 and prints
/// how many came back equal ("echoed N").
const UDP_ASK: &str = r#"
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
ok = 0
for i in range(20):
    d = os.urandom(1400)
    s.sendto(d, ("10.33.0.1", 80))
    try:
        if s.recvfrom(65535)[0] == d:
            ok += 1
    except socket.timeout:
        pass
print("echoed", ok)
"#;

/// Frames over several mbufs: `mbuf_size = 1024` at `mtu = 1500` (net_tap
/// receives a longer frame as a chain of mbufs, RX scatter, and sends
/// chains, TX multi-segment). The GW rewrites a chain's headers in its
/// first mbuf: a 4 MB `curl` download over NAT44 at MSS 1460 arrives
/// intact, 20 UDP datagrams of 1 400 bytes go up and come back equal, in
/// frames longer than one mbuf (the workers' `rx_chained` counts them),
/// nothing dropped. An echo request of 1 400 bytes (ICMP reads its
/// payload) is refused as `oversize`, each one; a short one is answered.
#[test]
fn frames_longer_than_an_mbuf_cross_the_gw_chained() {
    let Some(mut lab) = Lab::netns("jc", &["python3", "curl", "ping"]) else {
        return;
    };
    let profile = jumbo_gw(&lab, "mbuf_size = 1024");
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.wap_sides(&sock);
    let file = random_file(&lab.site("http"), "blob.bin", 4194304);
    download_intact(&lab, &sub, "http://10.33.0.1/blob.bin", &file, 60);
    lab.udp_echo(&srv, "10.80.0.11", 8080, false);
    let ask = lab.write("ask.py", UDP_ASK);
    let out = sh(&format!("ip netns exec {sub} python3 {}", ask.display()));
    assert_eq!(out.trim(), "echoed 20", "{out}");

    let r = stats_json(&sock);
    let chained: u64 = r["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rx_chained"].as_u64().unwrap())
        .sum();
    eprintln!("{chained} frames came in chained");
    // ~2 900 segments of the download and 40 datagrams, each over 1 024
    // bytes of frame
    assert!(chained >= 2800 + 40, "{chained} chained frames: {r}");
    for reason in ["oversize", "bad_ether", "bad_ipv4", "bad_l4", "too_big"] {
        assert_eq!(drops(&r, reason), 0, "{reason}: {r}");
    }
    // ICMP is not rewritten in place: a chained echo request is refused.
    assert_eq!(pings(&sub, "-c 3 -s 1400", "10.33.0.1"), 0);
    assert_eq!(drops(&stats_json(&sock), "oversize"), 3);
    assert_eq!(pings(&sub, "-c 3 -s 500", "10.33.0.1"), 3);
    lab.stop_pgw("gw");
}

/// `mtu = 9000` on net_tap: the PMD refuses it and pgw says so at start,
/// naming the file, the key, the port, its driver and its limits.
#[test]
fn a_port_that_refuses_the_mtu_is_named() {
    let Some(mut lab) = Lab::netns("jr", &[]) else {
        return;
    };
    let profile = jumbo_gw(&lab, "mtu = 9000");
    let p = lab.write("gw.toml", &profile.to_string());
    lab.spawn(
        "gw",
        &format!("{} run --profile {}", pgw_bin().display(), p.display()),
    );
    let code = lab.wait_exit("gw", std::time::Duration::from_secs(30));
    let log = lab.log("gw");
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}:\n{log}");
    let want = format!(
        "{}: engine.mtu: port[0] (access, driver net_tap) refused MTU 9000",
        p.display()
    );
    assert!(log.contains(&want), "no {want:?} in:\n{log}");
    assert!(log.contains("frames up to 1522 bytes"), "{log}");
}

#[test]
fn frames_over_the_mtu_are_counted_oversize() {
    let Some(mut lab) = Lab::netns("jo", &["python3", "curl", "ping"]) else {
        return;
    };
    let profile = jumbo_gw(&lab, "");
    let ta = profile.taps[0].clone();
    let sock = lab.run_pgw("gw", &profile);
    assert_eq!(mtu_of(None, &ta), 1500);
    let (sub, _) = lab.wap_sides(&sock);
    // The subscriber's side allows jumbo frames; the GW does not.
    sh(&format!("ip -n {sub} link set {ta} mtu 9000"));
    assert_eq!(pings(&sub, "-c 3 -s 1400 -M do", "10.33.0.1"), 3);
    let r0 = stats_json(&sock);
    assert_eq!(drops(&r0, "oversize"), 0, "{r0}");

    // 1942-byte frames: within the mbuf, over the MTU.
    assert_eq!(pings(&sub, "-c 3 -s 1900 -M do", "10.33.0.1"), 0);
    let r1 = stats_json(&sock);
    assert_eq!(drops(&r1, "oversize"), 3, "{r1}");
    assert_eq!(drops(&r1, "bad_ether"), 0, "{r1}");
    assert_eq!(drops(&r1, "bad_ipv4"), 0, "{r1}");

    // 8042-byte frames: longer than the mbuf; the tap cuts them and the PMD
    // counts them as errors, pgw never sees them.
    let e0 = port_counter(&r1, "access", "ierrors");
    assert_eq!(pings(&sub, "-c 3 -s 8000 -M do", "10.33.0.1"), 0);
    let r2 = stats_json(&sock);
    assert!(port_counter(&r2, "access", "ierrors") >= e0 + 3, "{r2}");
    assert_eq!(drops(&r2, "oversize"), 3, "{r2}");
    assert_eq!(drops(&r2, "bad_ether"), 0, "{r2}");

    // The GW still answers frames within its MTU.
    assert_eq!(pings(&sub, "-c 3 -s 1400 -M do", "10.33.0.1"), 3);
    lab.stop_pgw("gw");
}
