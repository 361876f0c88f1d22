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
    let Some(mut lab) = Lab::netns("p66", &[]) else {
        return;
    };
    let t = lab.tag.clone();
    let w = |n: &str, i: &str| {
        format!(r#"{{ name = "{n}", ip = "10.80.0.{i}", ip6 = "2001:db8:80::{i}", port = 8080 }}"#)
    };
    let profile = lab
        .profile("lb+gw", "2001:db8:60::1/64")
        .with(
            r#"[[neighbor]]
ip = "2001:db8:80::11"
mac = "02:00:00:00:80:01"
[[neighbor]]
ip = "2001:db8:80::12"
mac = "02:00:00:00:80:01"
[lb]
access_port = "access"
lan_port = "servers""#,
        )
        .with(&lb_gateway("me", "local", None))
        .with(&lb_range(
            "range6",
            "2001:db8:60::",
            "2001:db8:60::ffff",
            &["me"],
        ))
        .with(&gw_section(r#"pool6 = ["2001:db8:80::100"]"#))
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
        );
    let sock = lab.run_pgw("box", &profile);
    let srv = lab.ns("srv");
    let sub = lab.subscriber(&["2001:db8:60::2/64"]);
    lab.route(&sub, "2001:db8:33::/64", "2001:db8:60::1");
    lab.move_into_with_mac(
        &format!("{t}b"),
        &srv,
        "02:00:00:00:80:01",
        &["2001:db8:80::11/64", "2001:db8:80::12/64"],
    );
    lab.serve_http("w1", &srv, "2001:db8:80::11");
    lab.serve_http("w2", &srv, "2001:db8:80::12");
    wait_for("a first answer", Duration::from_secs(15), || {
        curl_ok(&sub, "http://[2001:db8:33::1]/who")
    });
    let mut seen = HashMap::new();
    for _ in 0..8 {
        *seen
            .entry(curl(&sub, "http://[2001:db8:33::1]/who"))
            .or_insert(0) += 1;
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
    lab.stop_pgw("box");
}
