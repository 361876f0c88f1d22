//! In-band health checks between real TCP stacks: pgw (GW role) probes its
//! server-group members with TCP SYNs through its own DPDK port. A member
//! that stops listening answers RST, is marked down within interval × fall,
//! and new connections avoid it; when it listens again it is marked up
//! within interval × rise and is used again. `pgw servers` shows the state.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[test]
fn a_server_that_stops_listening_is_avoided_then_used_again() {
    if !can_netns() {
        return;
    }
    let mut lab = Lab::new("ph");
    let t = lab.tag.clone();
    let sock = lab.dir.join("gw.sock");
    let profile = format!(
        r#"
[instance]
name = "{t}"
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
device = "net_tap_{t}a,iface={t}a"
ipv4 = ["10.50.0.1/24"]
[[port]]
name = "servers"
device = "net_tap_{t}b,iface={t}b"
[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.100"]
key_ports = [1024, 59999]
probe_ports = [60000, 60999]
require_session = false
health = {{ interval_s = 0.3, timeout_s = 0.25, rise = 2, fall = 2 }}
[[gw.service]]
name = "wap"
id = 1
[[gw.group]]
name = "wap"
service = "wap"
members = [{{ name = "w1", ip = "10.80.0.11", port = 8080 }}, {{ name = "w2", ip = "10.80.0.12", port = 8080 }}]
[[gw.vip]]
ip = "10.33.0.1"
port = 80
group = "wap"
"#,
        sock = sock.display()
    );
    lab.start_pgw("gw", &profile, &sock, &[&format!("{t}a"), &format!("{t}b")]);
    let sub = lab.ns("sub");
    let srv = lab.ns("srv");
    sh(&format!("ip link set {t}a netns {sub} && ip -n {sub} addr add 10.50.0.2/24 dev {t}a && ip -n {sub} link set {t}a up"));
    sh(&format!("ip -n {sub} route add 10.33.0.0/24 via 10.50.0.1"));
    sh(&format!(
        "ip link set {t}b netns {srv} && ip -n {srv} link set {t}b up"
    ));
    for (n, a) in [("w1", "10.80.0.11"), ("w2", "10.80.0.12")] {
        sh(&format!("ip -n {srv} addr add {a}/24 dev {t}b"));
        let d = lab.dir.join(n);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("who"), n).unwrap();
    }
    let serve = |lab: &mut Lab, n: &str, a: &str| {
        let d = lab.dir.join(n);
        lab.spawn(
            n,
            &format!(
                "ip netns exec {srv} python3 -m http.server --bind {a} 8080 --directory {}",
                d.display()
            ),
        );
    };
    serve(&mut lab, "w1", "10.80.0.11");
    serve(&mut lab, "w2", "10.80.0.12");
    let servers = |sock: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&sh(&format!(
            "{} servers --socket {} --json",
            pgw_bin().display(),
            sock.display()
        )))
        .unwrap()
    };
    let member_up = |v: &serde_json::Value, name: &str| -> bool {
        v["groups"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()["up"]
            .as_bool()
            .unwrap()
    };
    let who = |n: usize| -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for _ in 0..n {
            let w = sh(&format!(
                "ip netns exec {sub} curl -sS --fail --max-time 5 http://10.33.0.1/who"
            ));
            *seen.entry(w).or_insert(0) += 1;
        }
        seen
    };
    // A member whose first probes met no listener yet (RST) was marked down
    // and is up again only after `rise` passes: wait for both to be up.
    wait_for(
        "both members answered a probe and are up",
        Duration::from_secs(15),
        || {
            let v = servers(&sock);
            member_up(&v, "w1")
                && member_up(&v, "w2")
                && v["health"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|h| h["passes"].as_u64().unwrap() >= 1)
        },
    );
    let seen = who(10);
    assert_eq!(seen.len(), 2, "{seen:?}");

    // w2 stops listening: its kernel answers the probes with RST.
    lab.interrupt("w2", Duration::from_secs(5));
    let t0 = Instant::now();
    wait_for("w2 marked down", Duration::from_secs(5), || {
        !member_up(&servers(&sock), "w2")
    });
    let took = t0.elapsed();
    // interval × fall = 0.6 s, plus one interval of phase.
    assert!(
        took < Duration::from_millis(1500),
        "w2 marked down after {took:?}"
    );
    let seen = who(12);
    assert_eq!(
        seen.get("w1"),
        Some(&12),
        "new connections must avoid w2: {seen:?}"
    );

    // w2 listens again: up after `rise` passes, used again.
    serve(&mut lab, "w2", "10.80.0.12");
    wait_for("w2 marked up", Duration::from_secs(10), || {
        member_up(&servers(&sock), "w2")
    });
    let seen = who(10);
    assert!(
        seen.get("w2").copied().unwrap_or(0) >= 3,
        "w2 not used again: {seen:?}"
    );
    let v = servers(&sock);
    let h2 = v["health"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "w2")
        .unwrap()
        .clone();
    assert!(h2["changes"].as_u64().unwrap() >= 2, "{h2}");
    assert!(sh(&format!(
        "{} servers --socket {}",
        pgw_bin().display(),
        sock.display()
    ))
    .contains("w2"));
    assert_eq!(
        lab.interrupt("gw", Duration::from_secs(10)),
        Some(0),
        "{}",
        lab.log("gw")
    );
}
