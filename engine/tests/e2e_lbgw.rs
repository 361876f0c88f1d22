//! The single-box default (`role = "lb+gw"`): the LB stage and the GW stage
//! chained in one pipeline. Subscribers' frames enter the access port, the
//! LB table sends the range to this box ("local") and the GW stage NATs them
//! to the server group; a second range points at another gateway on the LAN,
//! which the LB sends out of the LAN port (seen there by tcpdump) instead.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn lb_and_gw_chained_in_one_box() {
    if !can_netns() {
        return;
    }
    let mut lab = Lab::new("pc");
    let t = lab.tag.clone();
    let sock = lab.dir.join("box.sock");
    let profile = format!(
        r#"
[instance]
name = "{t}"
role = "lb+gw"
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
device = "net_tap_{t}a,iface={t}a"
ipv4 = ["10.50.0.1/24"]
[[port]]
name = "servers"
device = "net_tap_{t}b,iface={t}b"
[lb]
access_port = "access"
lan_port = "servers"
access_next_hop_mac = "02:00:00:00:50:02"
[[lb.gateway]]
name = "me"
mac = "local"
[[lb.gateway]]
name = "other"
mac = "02:00:00:00:0a:09"
[[lb.range]]
first = "10.50.0.0"
last = "10.50.0.127"
gateways = ["me"]
[[lb.range]]
first = "10.50.0.128"
last = "10.50.0.255"
gateways = ["other"]
[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.100"]
require_session = false
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
"#,
        sock = sock.display()
    );
    lab.start_pgw(
        "box",
        &profile,
        &sock,
        &[&format!("{t}a"), &format!("{t}b")],
    );
    let sub = lab.ns("sub");
    let srv = lab.ns("srv");
    sh(&format!(
        "ip link set {t}a netns {sub} && ip -n {sub} link set {t}a address 02:00:00:00:50:02"
    ));
    sh(&format!("ip -n {sub} addr add 10.50.0.2/24 dev {t}a && ip -n {sub} addr add 10.50.0.200/24 dev {t}a && ip -n {sub} link set {t}a up"));
    sh(&format!(
        "ip -n {sub} route add 10.33.0.0/24 via 10.50.0.1 src 10.50.0.2"
    ));
    sh(&format!("ip link set {t}b netns {srv} && ip -n {srv} addr add 10.80.0.11/24 dev {t}b && ip -n {srv} link set {t}b up"));
    let d = lab.dir.join("www");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("who"), "w1").unwrap();
    lab.spawn(
        "http",
        &format!(
            "ip netns exec {srv} python3 -m http.server --bind 10.80.0.11 8080 --directory {}",
            d.display()
        ),
    );
    wait_for("an answer through the box", Duration::from_secs(15), || {
        sh_ok(&format!(
            "ip netns exec {sub} curl -s --fail --max-time 2 -o /dev/null http://10.33.0.1/who"
        ))
    });
    for _ in 0..5 {
        assert_eq!(
            sh(&format!(
                "ip netns exec {sub} curl -sS --fail --max-time 5 http://10.33.0.1/who"
            ))
            .trim(),
            "w1"
        );
    }
    let r = stats_json(&sock);
    assert!(
        event(&r, "lb_local") >= 5 * 3,
        "the LB did not hand the frames to the local GW: {}",
        event(&r, "lb_local")
    );
    assert!(event(&r, "gw_new_flows") >= 5);

    // The other range goes to the other gateway's MAC, out of the LAN port.
    lab.spawn(
        "dump",
        &format!(
            "ip netns exec {srv} tcpdump -l -nn -e -c 1 -i {t}b 'ether dst 02:00:00:00:0a:09'"
        ),
    );
    std::thread::sleep(Duration::from_millis(700));
    let _ = sh_ok(&format!("ip netns exec {sub} curl -s --max-time 1 --interface 10.50.0.200 -o /dev/null http://10.33.0.1/who"));
    wait_for(
        "tcpdump to see the frame for the other gateway",
        Duration::from_secs(5),
        || !lab.is_running("dump"),
    );
    assert!(
        lab.log("dump").contains("10.50.0.200"),
        "{}",
        lab.log("dump")
    );
    assert!(event(&stats_json(&sock), "lb_to_primary") > event(&r, "lb_to_primary"));
    assert_eq!(
        lab.interrupt("box", Duration::from_secs(10)),
        Some(0),
        "{}",
        lab.log("box")
    );
}
