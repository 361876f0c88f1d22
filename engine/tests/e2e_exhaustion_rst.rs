//! `gw.exhaustion_reply = "rst"` between real TCP stacks: a GW with two key
//! ports carries two curl connections to the same server (their keys stay
//! on hold after the close), and a third curl's SYN, refused for lack of a
//! key, gets a RST: curl's connect is refused at once (exit 7) instead of
//! retransmitting the SYN until its timeout; the GW counts it as `gw_rst_exhausted`,
//! not as a `nat_pool_exhausted` drop.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn syn_refused_for_exhaustion_gets_a_rst() {
    let Some(mut lab) = Lab::netns("px", &["python3", "curl"]) else {
        return;
    };
    let profile = lab.wap_gw(
        "key_ports = [30000, 30001]\nexhaustion_reply = \"rst\"",
        &[("10.50.0.2", 9015550101)],
    );
    let sock = lab.run_pgw("gw", &profile);
    let (sub, _) = lab.wap_sides(&sock);
    for _ in 0..2 {
        assert!(curl(&sub, "http://10.33.0.1/who").contains("http"));
    }
    let t = Instant::now();
    let out = sh_output(&format!(
        "ip netns exec {sub} curl -sS --max-time 10 http://10.33.0.1/who"
    ));
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    // 7: CURLE_COULDNT_CONNECT (the RST answering its SYN: ECONNREFUSED)
    assert_eq!(out.status.code(), Some(7), "curl: {err}");
    assert!(took < Duration::from_secs(3), "curl took {took:?}: {err}");
    let r = stats_json(&sock);
    assert_eq!(event(&r, "gw_rst_exhausted"), 1);
    assert_eq!(drops(&r, "nat_pool_exhausted"), 0);
    assert_eq!(event(&r, "gw_new_flows"), 2);
    lab.stop_pgw("gw");
}
