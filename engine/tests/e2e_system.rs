//! The whole system of FIG. 2 between real hosts, each `pgw` a separate
//! process: two LBs (entry points; LB1 also runs the management side:
//! RADIUS, address assignment, session manager), two GWs, one server
//! network with service groups. The management instance sends each GW its
//! session table over the authenticated control protocol; the LBs check the
//! GWs' health by ARP; the GWs check their servers by TCP.
//!
//! Scenarios (issue 5): session setup and round robin; service switch in
//! one session; authorization RST; GW failure → substitute, new sessions
//! from the other GW's range, recovery; logout → the GW refuses the
//! subscriber. Mobility, server failure, exact accounting and dormancy have
//! their own tests (e2e_lb_mobility, e2e_health, e2e_accounting, e2e_radius).

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;

const SECRET: &str = "control-secret-1";

fn lb(t: &str, n: u8, sock: &std::path::Path, radius: &str) -> Profile {
    lb_entry(t, n, sock)
        .addr(&format!("10.70.0.{n}/24"))
        .with("health = { interval_s = 0.3, timeout_s = 0.25, rise = 2, fall = 2 }")
        .with(&lb_gateway("gw1", "02:00:00:00:0a:01", Some("10.70.0.11")))
        .with(&lb_gateway("gw2", "02:00:00:00:0a:02", Some("10.70.0.12")))
        .with(&lb_range(
            "range",
            "10.50.0.0",
            "10.50.0.255",
            &["gw1", "gw2"],
        ))
        .with(&lb_range(
            "range",
            "10.51.0.0",
            "10.51.0.255",
            &["gw2", "gw1"],
        ))
        .with(radius)
}

fn gw(t: &str, n: u8, sock: &std::path::Path, ctl_port: u16) -> Profile {
    let m = |name: &str, i: u8| member(name, &format!("10.80.0.{i}"), 8080);
    Profile::new(&format!("{t}gw{n}"), "gw", sock)
        .engine(Engine {
            workers: vec![u32::from(n % 2)],
            ..Engine::default()
        })
        .tap("access", &format!("{t}g{n}a"))
        .mac(&format!("02:00:00:00:0a:0{n}"))
        .addr(&format!("10.70.0.1{n}/24"))
        .tap("servers", &format!("{t}g{n}s"))
        .with(&format!(
            "[control]\nlisten = \"127.0.0.1:{ctl_port}\"\nsecret = \"{SECRET}\"\ngateway = \"gw{n}\""
        ))
        .with(&format!(
            r#"[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.10{n}"]
external_service = "external"
server_next_hop_mac = "02:00:00:00:ee:99"
key_ports = [1024, 59999]
probe_ports = [60000, 60999]"#
        ))
        .with(&wap(&[m("wap1", 11), m("wap2", 12)]))
        .with(&gw_service(
            "mail",
            2,
            &[m("mail1", 21), m("mail2", 22)],
            "10.33.0.2",
            Some(80),
        ))
        .with(&gw_service(
            "chat",
            3,
            &[m("chat1", 31), m("chat2", 32)],
            "10.33.0.3",
            Some(80),
        ))
        .with("[[gw.service]]\nname = \"external\"\nid = 4")
}

fn radclient(port: u16, kind: &str, attrs: &str) -> String {
    common::radclient(2, port, kind, "testing123", attrs).1
}

/// An Accounting-Request with `attrs` to `port`; it must be answered.
fn accounted(port: u16, attrs: &str) {
    let out = radclient(port, "acct", attrs);
    assert!(out.contains("Accounting-Response"), "{out}");
}

fn framed_ip(out: &str) -> String {
    out.lines()
        .find(|l| l.contains("Framed-IP-Address"))
        .and_then(|l| l.split('=').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no Framed-IP-Address in: {out}"))
}

#[test]
fn fig2_sessions_services_authorization_and_gateway_failover() {
    let Some(mut lab) = Lab::netns("ps", &[]) else {
        return;
    };
    let t = lab.tag.clone();
    let base = 22000 + (std::process::id() % 15000) as u16;
    let (auth, acct, c1, c2) = (base, base + 1, base + 2, base + 3);
    let s = |n: &str| lab.dir.join(format!("{n}.sock"));
    let (sl1, sl2, sg1, sg2) = (s("lb1"), s("lb2"), s("gw1"), s("gw2"));
    let radius = radius_head(
        auth,
        &format!("control_secret = \"{SECRET}\"\ncontrol_resync_s = 0.5"),
    ) + &format!(
        r#"[[radius.gateway]]
name = "gw1"
ranges = ["10.50.0.2-10.50.0.200"]
control = "127.0.0.1:{c1}"
[[radius.gateway]]
name = "gw2"
ranges = ["10.51.0.2-10.51.0.200"]
control = "127.0.0.1:{c2}"
"#
    ) + &radius_user("alice", "a-pass", "0901", &["wap", "mail", "external"])
        + &radius_user("bob", "b-pass", "0902", &["wap"])
        + &radius_user("carol", "c-pass", "0903", &["wap"]);
    let radius = ["wap", "mail", "chat", "external"]
        .iter()
        .zip(1..)
        .fold(radius, |r, (name, id)| {
            r + &format!("[[radius.service]]\nname = \"{name}\"\nid = {id}\n")
        });
    let p_gw1 = gw(&t, 1, &sg1, c1);
    lab.run_pgw("lb1", &lb(&t, 1, &sl1, &radius));
    lab.run_pgw("lb2", &lb(&t, 2, &sl2, ""));
    lab.run_pgw("gw1", &p_gw1);
    lab.run_pgw("gw2", &gw(&t, 2, &sg2, c2));

    let sub = lab.ns("sub");
    let lan = lab.ns("lan");
    let srv = lab.ns("srv");
    // LAN and server network: bridges; taps' kernel sides get MACs of their
    // own (a bridge keeps frames to a port's own MAC for itself).
    for (ns, br, devs) in [
        (
            &lan,
            "br0",
            vec![
                format!("{t}l1"),
                format!("{t}l2"),
                format!("{t}g1a"),
                format!("{t}g2a"),
            ],
        ),
        (&srv, "br1", vec![format!("{t}g1s"), format!("{t}g2s")]),
    ] {
        let mac = if br == "br1" { "99" } else { "98" };
        lab.bridge(ns, br, Some(&format!("02:00:00:00:ee:{mac}")));
        for (i, d) in devs.iter().enumerate() {
            lab.enslave(d, ns, br, &format!("02:00:00:00:ee:{i:02x}"));
        }
    }
    lab.plug_subscriber(1, &sub);
    lab.plug_subscriber(2, &sub);
    let servers = [
        ("wap1", "10.80.0.11"),
        ("wap2", "10.80.0.12"),
        ("mail1", "10.80.0.21"),
        ("mail2", "10.80.0.22"),
        ("chat1", "10.80.0.31"),
        ("chat2", "10.80.0.32"),
        ("ext1", "10.80.0.41"),
        ("ext2", "10.80.0.42"),
    ];
    for (name, a) in servers {
        sh(&format!("ip -n {srv} addr add {a}/24 dev br1"));
        lab.serve_http(name, &srv, a);
    }
    // Whether LB1 has gw1 marked `up`.
    let gw1_up = |up: bool| {
        pgw_json(&sl1, "servers")["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gateway"] == "gw1" && g["up"] == up)
    };
    wait_for(
        "both GWs healthy on both LBs",
        Duration::from_secs(20),
        || {
            [&sl1, &sl2].iter().all(|s| {
                pgw_json(s, "servers")["health"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|h| h["up"] == true && h["passes"].as_u64().unwrap() >= 1)
            })
        },
    );

    // 1. Session setup: RADIUS → address from the least-loaded GW (gw1).
    let out = radclient(
        auth,
        "auth",
        "User-Name=alice,User-Password=a-pass,Calling-Station-Id=0901",
    );
    assert!(out.contains("Access-Accept"), "{out}");
    let alice = framed_ip(&out);
    assert_eq!(alice, "10.50.0.2");
    sh(&format!("ip -n {sub} addr add {alice}/32 dev lo"));
    lab.route_from(&sub, "10.33.0.0/24", "10.60.1.1", &alice);
    let curl = |vip: &str| -> (bool, String) {
        let out = sh_output(&format!(
            "ip netns exec {sub} curl -sS --fail --max-time 3 http://{vip}/who"
        ));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                out.status.code().unwrap_or(-1)
            ),
        )
    };
    assert!(
        !curl("10.33.0.1").0,
        "traffic passed before Accounting Start"
    );
    accounted(acct, "User-Name=alice,Acct-Status-Type=Start,Acct-Session-Id=a1,Calling-Station-Id=0901,Framed-IP-Address=10.50.0.2");
    wait_for(
        "gw1 to receive alice's session and pass her traffic",
        Duration::from_secs(10),
        || curl("10.33.0.1").0,
    );
    let mut seen = HashMap::new();
    for _ in 0..12 {
        let (ok, who) = curl("10.33.0.1");
        assert!(ok, "{who}");
        *seen.entry(who[..4].to_string()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both wap servers should answer: {seen:?}");
    assert!(seen.keys().all(|k| k.starts_with("wap")));
    assert!(
        event(&stats_json(&sg1), "gw_new_flows") >= 12,
        "alice's connections did not go through gw1"
    );

    // 3. Service switch in the same session: the mail VIP reaches the mail group.
    let (ok, who) = curl("10.33.0.2");
    assert!(ok && who.starts_with("mail"), "{who}");

    // The "external" service: destinations that are not representative
    // addresses are translated without balancing (S41): each server answers
    // for itself.
    lab.route_from(&sub, "10.80.0.0/24", "10.60.1.1", &alice);
    for ext in ["ext1", "ext2"] {
        let addr = if ext == "ext1" {
            "10.80.0.41:8080"
        } else {
            "10.80.0.42:8080"
        };
        let (ok, who) = curl(addr);
        assert!(ok && who.starts_with(ext), "{ext}: {who}");
    }

    // 4. Authorization: chat is not alice's: a reset at once, not a timeout.
    let (ok, code) = curl("10.33.0.3");
    assert!(
        !ok && code.ends_with('7'),
        "expected curl exit 7 (reset), got {code}"
    );
    assert!(event(&stats_json(&sg1), "gw_rst_unauthorized") >= 1);
    for c in ["chat1", "chat2"] {
        assert!(
            !lab.log(c).contains("10.80.0.10"),
            "{c} saw a request through a GW"
        );
    }

    // 6. GW failure: gw1 dies; the LBs send its range to the substitute.
    let before = event(&stats_json(&sl1), "lb_to_substitute");
    lab.stop_pgw("gw1");
    wait_for("the LBs to mark gw1 down", Duration::from_secs(5), || {
        gw1_up(false)
    });
    let _ = curl("10.33.0.1");
    assert!(
        event(&stats_json(&sl1), "lb_to_substitute") > before,
        "alice's packets were not sent to the substitute gw2"
    );
    // New sessions get addresses from gw2's range while gw1 is down.
    let out = radclient(
        auth,
        "auth",
        "User-Name=bob,User-Password=b-pass,Calling-Station-Id=0902",
    );
    assert_eq!(framed_ip(&out), "10.51.0.2", "{out}");
    // gw1 comes back: marked up, its range goes to it again, new sessions too.
    lab.run_pgw("gw1", &p_gw1);
    lab.enslave(&format!("{t}g1a"), &lan, "br0", "02:00:00:00:ee:02");
    lab.enslave(&format!("{t}g1s"), &srv, "br1", "02:00:00:00:ee:10");
    wait_for(
        "the LBs to mark gw1 up again",
        Duration::from_secs(10),
        || gw1_up(true),
    );
    // The restarted gw1 gets alice's session again by the periodic resync.
    wait_for("alice served by gw1 again", Duration::from_secs(15), || {
        curl("10.33.0.1").0
    });
    assert!(event(&stats_json(&sg1), "gw_new_flows") >= 1);
    let out = radclient(
        auth,
        "auth",
        "User-Name=carol,User-Password=c-pass,Calling-Station-Id=0903",
    );
    assert!(
        framed_ip(&out).starts_with("10.50.0."),
        "gw1 should be used again: {out}"
    );

    // 8. Logout: Stop → Close → the GW drops the subscriber at once.
    accounted(acct, "User-Name=alice,Acct-Status-Type=Stop,Acct-Session-Id=a1,Calling-Station-Id=0901,Framed-IP-Address=10.50.0.2,Acct-Terminate-Cause=User-Request");
    wait_for(
        "gw1 to refuse alice after logout",
        Duration::from_secs(5),
        || !curl("10.33.0.1").0,
    );
    assert!(drops(&stats_json(&sg1), "no_session") > 0);
    for l in ["lb1", "lb2", "gw1", "gw2"] {
        lab.stop_pgw(l);
    }
}
