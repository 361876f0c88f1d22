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
    let Some(mut lab) = Lab::netns("ph", &[]) else {
        return;
    };
    let w = |n: &str, ip: &str| member(n, ip, 8080);
    let profile = lab
        .profile("gw", "10.50.0.1/24")
        .with(&gw_section(
            "key_ports = [1024, 59999]\n\
             probe_ports = [60000, 60999]\n\
             require_session = false\n\
             health = { interval_s = 0.3, timeout_s = 0.25, rise = 2, fall = 2 }",
        ))
        .with(&wap(&[w("w1", "10.80.0.11"), w("w2", "10.80.0.12")]));
    let sock = lab.run_pgw("gw", &profile);
    let (sub, srv) = lab.gw_sides(&["10.80.0.11/24", "10.80.0.12/24"]);
    lab.serve_http("w1", &srv, "10.80.0.11");
    lab.serve_http("w2", &srv, "10.80.0.12");
    let servers = |sock: &std::path::Path| pgw_json(sock, "servers");
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
            let w = curl(&sub, "http://10.33.0.1/who");
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
    lab.serve_http("w2", &srv, "10.80.0.12");
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
    assert!(pgw_at(&sock, "servers", "").contains("w2"));
    lab.stop_pgw("gw");
}
