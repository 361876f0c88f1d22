//! The claim of the spec between real TCP stacks: two LB instances (two
//! entry points) hold the same table, so a subscriber that moves from one to
//! the other in the middle of a TCP connection keeps reaching the same GW,
//! and the connection survives. Three `pgw` processes: LB1 and LB2 (role
//! `lb`), one GW (role `gw`); their LAN ports are bridged in a `lan`
//! namespace. The subscriber namespace has a link to each LB; mid-download
//! its route is switched from LB1 to LB2. The file arrives byte-identical,
//! and both LBs' counters show they carried the subscriber's packets.
//!
//! Then the LB table's substitute: GW "gw1" is marked down on both LBs
//! (`pgw set gateway gw1 down`); with no substitute up the LB drops and
//! counts `lb_all_down`; marked up again, traffic resumes.

mod common;
use common::*;
use std::time::Duration;

const GW_MAC: &str = "02:00:00:00:0a:01";

fn lb_profile(tag: &str, n: u8, sock: &std::path::Path) -> String {
    format!(
        r#"
[instance]
name = "{tag}lb{n}"
role = "lb"
control_socket = "{sock}"
[eal]
memory_mb = 128
[cores]
workers = [{core}]
[engine]
mbufs = 4095
rx_desc = 512
tx_desc = 512
idle_sleep_us = 50
[[port]]
name = "access"
device = "net_tap_{tag}a{n},iface={tag}a{n}"
ipv4 = ["10.60.{n}.1/24"]
[[port]]
name = "lan"
device = "net_tap_{tag}l{n},iface={tag}l{n}"
[lb]
access_port = "access"
lan_port = "lan"
access_next_hop_mac = "02:00:00:00:5{n}:02"
[[lb.gateway]]
name = "gw1"
mac = "{GW_MAC}"
[[lb.range]]
first = "10.50.0.0"
last = "10.50.0.255"
gateways = ["gw1"]
"#,
        sock = sock.display(),
        core = n % 2
    )
}

#[test]
fn subscriber_moves_between_lbs_mid_connection() {
    if !can_netns() {
        return;
    }
    let mut lab = Lab::new("pm");
    let t = lab.tag.clone();
    let sub = lab.ns("sub");
    let lan = lab.ns("lan");
    let srv = lab.ns("srv");
    let s1 = lab.dir.join("lb1.sock");
    let s2 = lab.dir.join("lb2.sock");
    let sg = lab.dir.join("gw.sock");
    let p1 = lb_profile(&t, 1, &s1);
    let p2 = lb_profile(&t, 2, &s2);
    lab.start_pgw("lb1", &p1, &s1, &[&format!("{t}a1"), &format!("{t}l1")]);
    lab.start_pgw("lb2", &p2, &s2, &[&format!("{t}a2"), &format!("{t}l2")]);
    let gw = format!(
        r#"
[instance]
name = "{t}gw"
role = "gw"
control_socket = "{sock}"
[eal]
memory_mb = 256
[cores]
workers = [0]
[engine]
mbufs = 8191
idle_sleep_us = 50
[[port]]
name = "access"
device = "net_tap_{t}ga,iface={t}ga"
mac = "{GW_MAC}"
[[port]]
name = "servers"
device = "net_tap_{t}gs,iface={t}gs"
[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.100"]
[[gw.service]]
name = "wap"
id = 1
[[gw.group]]
name = "wap"
service = "wap"
members = [{{ name = "w1", ip = "10.80.0.11", port = 8080 }}]
[[gw.vip]]
ip = "10.33.0.1"
port = 80
group = "wap"
[[gw.session]]
ip = "10.50.0.2"
device_id = 1001
services = ["wap"]
"#,
        sock = sg.display()
    );
    lab.start_pgw("gw", &gw, &sg, &[&format!("{t}ga"), &format!("{t}gs")]);

    // LAN: the LBs' lan taps and the GW's access tap on one bridge.
    sh(&format!(
        "ip -n {lan} link add br0 type bridge && ip -n {lan} link set br0 up"
    ));
    // A tap's kernel side starts with the DPDK port's own MAC; a bridge would
    // take frames to that MAC for itself, so give the kernel sides others.
    for (i, dev) in [format!("{t}l1"), format!("{t}l2"), format!("{t}ga")]
        .iter()
        .enumerate()
    {
        sh(&format!("ip link set {dev} netns {lan} && ip -n {lan} link set {dev} address 02:00:00:00:ff:0{i}"));
        sh(&format!(
            "ip -n {lan} link set {dev} master br0 && ip -n {lan} link set {dev} up"
        ));
    }
    // Subscriber: its address on lo, a link to each LB.
    sh(&format!("ip -n {sub} addr add 10.50.0.2/32 dev lo"));
    for n in [1, 2] {
        let dev = format!("{t}a{n}");
        sh(&format!("ip link set {dev} netns {sub} && ip -n {sub} link set {dev} address 02:00:00:00:5{n}:02"));
        sh(&format!(
            "ip -n {sub} addr add 10.60.{n}.2/24 dev {dev} && ip -n {sub} link set {dev} up"
        ));
    }
    sh(&format!(
        "ip -n {sub} route add 10.33.0.0/24 via 10.60.1.1 src 10.50.0.2"
    ));
    // Server.
    sh(&format!("ip link set {t}gs netns {srv} && ip -n {srv} addr add 10.80.0.11/24 dev {t}gs && ip -n {srv} link set {t}gs up"));
    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let blob = www.join("blob.bin");
    sh(&format!(
        "head -c 12582912 /dev/urandom > {}",
        blob.display()
    ));
    lab.spawn(
        "http",
        &format!(
            "ip netns exec {srv} python3 -m http.server --bind 10.80.0.11 8080 --directory {}",
            www.display()
        ),
    );
    wait_for(
        "a first answer through LB1 and the GW",
        Duration::from_secs(20),
        || {
            sh_ok(&format!(
                "ip netns exec {sub} curl -s --fail --max-time 2 -o /dev/null http://10.33.0.1/"
            ))
        },
    );

    // A long download (rate-limited so it lasts ~4 s). The subscriber's
    // receive buffer is capped at RCVBUF_MAX: the server can never be more
    // than one window ahead of what curl has read, so whatever is left when
    // the subscriber moves must still cross the network afterwards, and its
    // ACKs must take the new entry point. (Uncapped, Linux grows the window
    // to 6 MiB and the rest of the file may already sit in the subscriber's
    // socket buffer when the route changes: then no ACK needs to follow.)
    const FILE: u64 = 12_582_912;
    const RCVBUF_MAX: u64 = 131_072;
    sh(&format!(
        "ip netns exec {sub} sysctl -q -w net.ipv4.tcp_rmem='4096 65536 {RCVBUF_MAX}'"
    ));
    let got = lab.dir.join("got.bin");
    lab.spawn(
        "curl",
        &format!("ip netns exec {sub} curl -sS --fail --max-time 60 --limit-rate 3M -o {} http://10.33.0.1/blob.bin", got.display()),
    );
    // Move once 2 MiB have arrived (not after a fixed sleep).
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    wait_for("2 MiB through LB1", Duration::from_secs(20), || {
        size(&got) >= 2 << 20
    });
    let read_before = size(&got);
    let before1 = event(&stats_json(&s1), "lb_to_primary");
    sh(&format!(
        "ip -n {sub} route replace 10.33.0.0/24 via 10.60.2.1 src 10.50.0.2"
    ));
    let read_after = size(&got);
    wait_for("download to finish", Duration::from_secs(60), || {
        !lab.is_running("curl")
    });
    assert!(
        lab.log("curl").trim().is_empty(),
        "curl: {}",
        lab.log("curl")
    );
    assert_eq!(sha256(&got), sha256(&blob), "the file changed on the way");

    let r1 = stats_json(&s1);
    let r2 = stats_json(&s2);
    let rg = stats_json(&sg);
    let (up1, up2) = (event(&r1, "lb_to_primary"), event(&r2, "lb_to_primary"));
    // The server never has more than one window (<= RCVBUF_MAX) beyond the
    // subscriber's last ACK, so successive ACK numbers differ by at most
    // RCVBUF_MAX, whatever the ACK timing or coalescing. Before the move the
    // ACK number reached at least read_before - RCVBUF_MAX; at the move it
    // was at most read_after + RCVBUF_MAX (read, plus a full buffer), and the
    // server needs one of at least FILE - RCVBUF_MAX to send the last byte.
    let floor1 = read_before.saturating_sub(RCVBUF_MAX) / RCVBUF_MAX;
    let floor2 = FILE.saturating_sub(read_after + 2 * RCVBUF_MAX) / RCVBUF_MAX;
    eprintln!(
        "LB1 up {up1} (before the move {before1}, floor {floor1}), LB2 up {up2} (floor {floor2}), read at the move {read_before}..{read_after} B, GW lb moves {}",
        event(&rg, "gw_lb_moves")
    );
    assert!(
        floor2 >= 40,
        "the move came too late: {read_after} B of {FILE} already read"
    );
    assert!(
        before1 >= floor1,
        "LB1 carried only {before1} up packets before the move (at least {floor1} ACKs were needed)"
    );
    assert!(
        up2 >= floor2,
        "LB2 carried only {up2} up packets after the move (at least {floor2} ACKs were needed)"
    );
    assert!(
        event(&r2, "lb_down_path") > 100,
        "down packets did not follow to LB2"
    );
    assert!(
        event(&rg, "gw_lb_moves") >= 1,
        "the GW did not see the subscriber move"
    );
    // Every connection is either still open or was closed exactly once.
    let closed =
        event(&rg, "gw_closed_fin") + event(&rg, "gw_closed_rst") + event(&rg, "gw_expired");
    assert_eq!(
        event(&rg, "gw_new_flows"),
        closed + event(&rg, "gw_open_flows"),
        "{rg}"
    );

    // GW down on the LB (no substitute configured): dropped and counted.
    sh(&format!(
        "{} set --socket {} gateway gw1 down",
        pgw_bin().display(),
        s2.display()
    ));
    assert!(!sh_ok(&format!(
        "ip netns exec {sub} curl -s --max-time 2 -o /dev/null http://10.33.0.1/"
    )));
    assert!(drops(&stats_json(&s2), "lb_all_down") > 0);
    sh(&format!(
        "{} set --socket {} gateway gw1 up",
        pgw_bin().display(),
        s2.display()
    ));
    assert!(sh_ok(&format!(
        "ip netns exec {sub} curl -s --fail --max-time 5 -o /dev/null http://10.33.0.1/"
    )));
    for l in ["lb1", "lb2", "gw"] {
        assert_eq!(
            lab.interrupt(l, Duration::from_secs(10)),
            Some(0),
            "{l} did not stop cleanly:\n{}",
            lab.log(l)
        );
    }
}
