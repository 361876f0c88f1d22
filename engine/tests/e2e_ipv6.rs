//! IPv6 subscribers through the single-box LB+GW: the LB stage finds the
//! subscriber's IPv6 range (this box's GW), the GW balances an IPv6
//! representative address over IPv6 servers with NAT66 (pool6 source, the
//! same port keys), and both sides resolve pgw by neighbour discovery.
//! Real IPv6 stacks on both sides; both members answer; counters show the
//! LB's local hand-over and the NAT66 connections.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn ipv6_subscriber_reaches_an_ipv6_group_through_lb_and_nat66() {
    if !can_netns() {
        return;
    }
    let mut lab = Lab::new("p66");
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
ipv6 = ["2001:db8:60::1/64"]
[[port]]
name = "servers"
device = "net_tap_{t}b,iface={t}b"
[[neighbor]]
ip = "2001:db8:80::11"
mac = "02:00:00:00:80:01"
[[neighbor]]
ip = "2001:db8:80::12"
mac = "02:00:00:00:80:01"
[lb]
access_port = "access"
lan_port = "servers"
[[lb.gateway]]
name = "me"
mac = "local"
[[lb.range6]]
first = "2001:db8:60::"
last = "2001:db8:60::ffff"
gateways = ["me"]
[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.100"]
pool6 = ["2001:db8:80::100"]
[[gw.service]]
name = "wap"
id = 1
[[gw.group]]
name = "wap"
service = "wap"
members = [{{ name = "w1", ip = "10.80.0.11", ip6 = "2001:db8:80::11", port = 8080 }}, {{ name = "w2", ip = "10.80.0.12", ip6 = "2001:db8:80::12", port = 8080 }}]
[[gw.vip]]
ip = "2001:db8:33::1"
port = 80
group = "wap"
[[gw.session]]
ip = "10.50.0.2"
ipv6 = "2001:db8:60::/64"
device_id = 660
services = ["wap"]
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
        "ip link set {t}a netns {sub} && ip -n {sub} link set {t}a up"
    ));
    sh(&format!(
        "ip -n {sub} -6 addr add 2001:db8:60::2/64 dev {t}a nodad"
    ));
    sh(&format!(
        "ip -n {sub} -6 route add 2001:db8:33::/64 via 2001:db8:60::1"
    ));
    sh(&format!("ip link set {t}b netns {srv} && ip -n {srv} link set {t}b address 02:00:00:00:80:01 && ip -n {srv} link set {t}b up"));
    for (n, a) in [("w1", "2001:db8:80::11"), ("w2", "2001:db8:80::12")] {
        sh(&format!("ip -n {srv} -6 addr add {a}/64 dev {t}b nodad"));
        let d = lab.dir.join(n);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("who"), n).unwrap();
        lab.spawn(
            n,
            &format!(
                "ip netns exec {srv} python3 -m http.server --bind {a} 8080 --directory {}",
                d.display()
            ),
        );
    }
    wait_for("servers listening", Duration::from_secs(10), || {
        sh_ok(&format!(
            "ip netns exec {srv} ss -tlnH | grep -q '2001:db8:80::12\\]:8080'"
        ))
    });
    let curl = || {
        sh(&format!(
            "ip netns exec {sub} curl -6 -g -sS --fail --max-time 5 http://[2001:db8:33::1]/who"
        ))
    };
    wait_for("a first answer", Duration::from_secs(15), || {
        sh_ok(&format!("ip netns exec {sub} curl -6 -g -s --fail --max-time 2 -o /dev/null http://[2001:db8:33::1]/who"))
    });
    let mut seen = HashMap::new();
    for _ in 0..8 {
        *seen.entry(curl()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both IPv6 members should answer: {seen:?}");
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
    assert_eq!(
        lab.interrupt("box", Duration::from_secs(10)),
        Some(0),
        "{}",
        lab.log("box")
    );
}
