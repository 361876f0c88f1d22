//! `gw.exhaustion_reply = "rst"` between real TCP stacks: a GW with two key
//! ports carries two curl connections to the same server (their keys stay
//! on hold after the close), and a third curl's SYN, refused for lack of a
//! key, gets a RST: curl's connect is refused at once (exit 7) instead of
//! retransmitting the SYN until its timeout; the GW counts it as `gw_rst_exhausted`
//! (cause: `gw_rst_nat_pool_exhausted`), not as a `nat_pool_exhausted`
//! drop, and warns of it in its log (rate-limited, here every second).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn syn_refused_for_exhaustion_gets_a_rst() {
    let keys = "key_ports = [30000, 30001]\nexhaustion_reply = \"rst\"\n[log]\nrepeat_every_s = 1";
    Lab::with_wap_gw("px", keys, |lab, sock, sub| {
        for _ in 0..2 {
            assert!(curl(sub, "http://10.33.0.1/who").contains("http"));
        }
        assert_refused_at_once(&format!(
            "ip netns exec {sub} curl -sS --max-time 10 http://10.33.0.1/who"
        ));
        let r = stats_json(sock);
        assert_eq!(event(&r, "gw_rst_exhausted"), 1);
        assert_eq!(event(&r, "gw_rst_nat_pool_exhausted"), 1);
        assert_eq!(event(&r, "gw_rst_flow_table_full"), 0);
        assert_eq!(drops(&r, "nat_pool_exhausted"), 0);
        assert_eq!(event(&r, "gw_new_flows"), 2);
        wait_for("the exhaustion warning", Duration::from_secs(5), || {
            lab.log("gw")
                .lines()
                .any(|l| l.contains("WARN") && l.contains("gw_rst_nat_pool_exhausted: 1 more"))
        });
    });
}
