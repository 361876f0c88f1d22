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
    let Some(mut lab) = Lab::netns("pc", &[]) else {
        return;
    };
    let t = lab.tag.clone();
    let profile = lab
        .profile("lb+gw", "10.50.0.1/24")
        .with(
            r#"[lb]
access_port = "access"
lan_port = "servers"
access_next_hop_mac = "02:00:00:00:50:02""#,
        )
        .with(&lb_gateway("me", "local", None))
        .with(&lb_gateway("other", "02:00:00:00:0a:09", None))
        .with(&lb_range("range", "10.50.0.0", "10.50.0.127", &["me"]))
        .with(&lb_range("range", "10.50.0.128", "10.50.0.255", &["other"]))
        .with(&gw_section("require_session = false"))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]));
    let sock = lab.run_pgw("box", &profile);
    let sub = lab.ns("sub");
    lab.move_into_with_mac(
        &format!("{t}a"),
        &sub,
        "02:00:00:00:50:02",
        &["10.50.0.2/24", "10.50.0.200/24"],
    );
    lab.route_from(&sub, "10.33.0.0/24", "10.50.0.1", "10.50.0.2");
    let srv = lab.servers(&["10.80.0.11/24"]);
    lab.serve_http("w1", &srv, "10.80.0.11");
    wait_for("an answer through the box", Duration::from_secs(15), || {
        curl_ok(&sub, "http://10.33.0.1/who")
    });
    for _ in 0..5 {
        assert_eq!(curl(&sub, "http://10.33.0.1/who").trim(), "w1");
    }
    let r = stats_json(&sock);
    assert!(
        event(&r, "lb_local") >= 5 * 3,
        "the LB did not hand the frames to the local GW: {}",
        event(&r, "lb_local")
    );
    assert!(event(&r, "gw_new_flows") >= 5);

    // The other range goes to the other gateway's MAC, out of the LAN port.
    lab.tcpdump(
        "dump",
        &srv,
        &format!("{t}b"),
        1,
        "ether dst 02:00:00:00:0a:09",
    );
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
    lab.stop_pgw("box");
}
