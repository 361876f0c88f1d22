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

fn lb(t: &str, n: u8, sock: &std::path::Path, radius: &str) -> String {
    format!(
        r#"
[instance]
name = "{t}lb{n}"
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
device = "net_tap_{t}a{n},iface={t}a{n}"
ipv4 = ["10.60.{n}.1/24"]
[[port]]
name = "lan"
device = "net_tap_{t}l{n},iface={t}l{n}"
ipv4 = ["10.70.0.{n}/24"]
[lb]
access_port = "access"
lan_port = "lan"
access_next_hop_mac = "02:00:00:00:5{n}:02"
health = {{ interval_s = 0.3, timeout_s = 0.25, rise = 2, fall = 2 }}
[[lb.gateway]]
name = "gw1"
mac = "02:00:00:00:0a:01"
ip = "10.70.0.11"
[[lb.gateway]]
name = "gw2"
mac = "02:00:00:00:0a:02"
ip = "10.70.0.12"
[[lb.range]]
first = "10.50.0.0"
last = "10.50.0.255"
gateways = ["gw1", "gw2"]
[[lb.range]]
first = "10.51.0.0"
last = "10.51.0.255"
gateways = ["gw2", "gw1"]
{radius}
"#,
        sock = sock.display(),
        core = n % 2
    )
}

fn gw(t: &str, n: u8, sock: &std::path::Path, ctl_port: u16) -> String {
    format!(
        r#"
[instance]
name = "{t}gw{n}"
role = "gw"
control_socket = "{sock}"
[eal]
memory_mb = 256
[cores]
workers = [{core}]
[engine]
mbufs = 8191
idle_sleep_us = 50
[[port]]
name = "access"
device = "net_tap_{t}g{n}a,iface={t}g{n}a"
mac = "02:00:00:00:0a:0{n}"
ipv4 = ["10.70.0.1{n}/24"]
[[port]]
name = "servers"
device = "net_tap_{t}g{n}s,iface={t}g{n}s"
[control]
listen = "127.0.0.1:{ctl_port}"
secret = "{SECRET}"
gateway = "gw{n}"
[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.10{n}"]
external_service = "external"
server_next_hop_mac = "02:00:00:00:ee:99"
key_ports = [1024, 59999]
probe_ports = [60000, 60999]
[[gw.service]]
name = "wap"
id = 1
[[gw.service]]
name = "mail"
id = 2
[[gw.service]]
name = "chat"
id = 3
[[gw.service]]
name = "external"
id = 4
[[gw.group]]
name = "wap"
service = "wap"
members = [{{ name = "wap1", ip = "10.80.0.11", port = 8080 }}, {{ name = "wap2", ip = "10.80.0.12", port = 8080 }}]
[[gw.group]]
name = "mail"
service = "mail"
members = [{{ name = "mail1", ip = "10.80.0.21", port = 8080 }}, {{ name = "mail2", ip = "10.80.0.22", port = 8080 }}]
[[gw.group]]
name = "chat"
service = "chat"
members = [{{ name = "chat1", ip = "10.80.0.31", port = 8080 }}, {{ name = "chat2", ip = "10.80.0.32", port = 8080 }}]
[[gw.vip]]
ip = "10.33.0.1"
port = 80
group = "wap"
[[gw.vip]]
ip = "10.33.0.2"
port = 80
group = "mail"
[[gw.vip]]
ip = "10.33.0.3"
port = 80
group = "chat"
"#,
        sock = sock.display(),
        core = n % 2
    )
}

fn radclient(port: u16, kind: &str, attrs: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s\\n' '{attrs}' | radclient -x -r 2 -t 2 127.0.0.1:{port} {kind} testing123"
        ))
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
    if !can_netns() {
        return;
    }
    let mut lab = Lab::new("ps");
    let t = lab.tag.clone();
    let base = 22000 + (std::process::id() % 15000) as u16;
    let (auth, acct, c1, c2) = (base, base + 1, base + 2, base + 3);
    let s = |n: &str| lab.dir.join(format!("{n}.sock"));
    let (sl1, sl2, sg1, sg2) = (s("lb1"), s("lb2"), s("gw1"), s("gw2"));
    let radius = format!(
        r#"[radius]
listen = "127.0.0.1:{auth}"
acct_listen = "127.0.0.1:{acct}"
control_secret = "{SECRET}"
control_resync_s = 0.5
[[radius.service]]
name = "wap"
id = 1
[[radius.service]]
name = "mail"
id = 2
[[radius.service]]
name = "chat"
id = 3
[[radius.service]]
name = "external"
id = 4
[[radius.client]]
address = "127.0.0.1"
secret = "testing123"
[[radius.user]]
user = "alice"
password = "a-pass"
device_id = "0901"
services = ["wap", "mail", "external"]
[[radius.user]]
user = "bob"
password = "b-pass"
device_id = "0902"
services = ["wap"]
[[radius.user]]
user = "carol"
password = "c-pass"
device_id = "0903"
services = ["wap"]
[[radius.gateway]]
name = "gw1"
ranges = ["10.50.0.2-10.50.0.200"]
control = "127.0.0.1:{c1}"
[[radius.gateway]]
name = "gw2"
ranges = ["10.51.0.2-10.51.0.200"]
control = "127.0.0.1:{c2}"
"#
    );
    let p_lb1 = lb(&t, 1, &sl1, &radius);
    let p_lb2 = lb(&t, 2, &sl2, "");
    let p_gw1 = gw(&t, 1, &sg1, c1);
    let p_gw2 = gw(&t, 2, &sg2, c2);
    lab.start_pgw("lb1", &p_lb1, &sl1, &[&format!("{t}a1"), &format!("{t}l1")]);
    lab.start_pgw("lb2", &p_lb2, &sl2, &[&format!("{t}a2"), &format!("{t}l2")]);
    lab.start_pgw(
        "gw1",
        &p_gw1,
        &sg1,
        &[&format!("{t}g1a"), &format!("{t}g1s")],
    );
    lab.start_pgw(
        "gw2",
        &p_gw2,
        &sg2,
        &[&format!("{t}g2a"), &format!("{t}g2s")],
    );

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
        sh(&format!("ip -n {ns} link add {br} type bridge && ip -n {ns} link set {br} address 02:00:00:00:ee:9{} && ip -n {ns} link set {br} up", if br == "br1" { 9 } else { 8 }));
        for (i, d) in devs.iter().enumerate() {
            sh(&format!("ip link set {d} netns {ns} && ip -n {ns} link set {d} address 02:00:00:00:ee:{i:02x}"));
            sh(&format!(
                "ip -n {ns} link set {d} master {br} && ip -n {ns} link set {d} up"
            ));
        }
    }
    for n in [1, 2] {
        let d = format!("{t}a{n}");
        sh(&format!(
            "ip link set {d} netns {sub} && ip -n {sub} link set {d} address 02:00:00:00:5{n}:02"
        ));
        sh(&format!(
            "ip -n {sub} addr add 10.60.{n}.2/24 dev {d} && ip -n {sub} link set {d} up"
        ));
    }
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
        let d = lab.dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("who"), name).unwrap();
        lab.spawn(
            name,
            &format!(
                "ip netns exec {srv} python3 -m http.server --bind {a} 8080 --directory {}",
                d.display()
            ),
        );
    }
    wait_for(
        "both GWs healthy on both LBs",
        Duration::from_secs(20),
        || {
            [&sl1, &sl2].iter().all(|s| {
                let v: serde_json::Value = serde_json::from_str(&sh(&format!(
                    "{} servers --socket {} --json",
                    pgw_bin().display(),
                    s.display()
                )))
                .unwrap();
                v["health"]
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
    sh(&format!(
        "ip -n {sub} route add 10.33.0.0/24 via 10.60.1.1 src {alice}"
    ));
    let curl = |vip: &str| -> (bool, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ip netns exec {sub} curl -sS --fail --max-time 3 http://{vip}/who"
            ))
            .output()
            .unwrap();
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
    let out = radclient(acct, "acct", "User-Name=alice,Acct-Status-Type=Start,Acct-Session-Id=a1,Calling-Station-Id=0901,Framed-IP-Address=10.50.0.2");
    assert!(out.contains("Accounting-Response"), "{out}");
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
    sh(&format!(
        "ip -n {sub} route add 10.80.0.0/24 via 10.60.1.1 src {alice}"
    ));
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
    assert_eq!(lab.interrupt("gw1", Duration::from_secs(10)), Some(0));
    wait_for("the LBs to mark gw1 down", Duration::from_secs(5), || {
        let v: serde_json::Value = serde_json::from_str(&sh(&format!(
            "{} servers --socket {} --json",
            pgw_bin().display(),
            sl1.display()
        )))
        .unwrap();
        v["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gateway"] == "gw1" && g["up"] == false)
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
    lab.start_pgw(
        "gw1",
        &p_gw1,
        &sg1,
        &[&format!("{t}g1a"), &format!("{t}g1s")],
    );
    sh(&format!(
        "ip link set {t}g1a netns {lan} && ip -n {lan} link set {t}g1a address 02:00:00:00:ee:02"
    ));
    sh(&format!(
        "ip -n {lan} link set {t}g1a master br0 && ip -n {lan} link set {t}g1a up"
    ));
    sh(&format!(
        "ip link set {t}g1s netns {srv} && ip -n {srv} link set {t}g1s address 02:00:00:00:ee:10"
    ));
    sh(&format!(
        "ip -n {srv} link set {t}g1s master br1 && ip -n {srv} link set {t}g1s up"
    ));
    wait_for(
        "the LBs to mark gw1 up again",
        Duration::from_secs(10),
        || {
            let v: serde_json::Value = serde_json::from_str(&sh(&format!(
                "{} servers --socket {} --json",
                pgw_bin().display(),
                sl1.display()
            )))
            .unwrap();
            v["gateways"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["gateway"] == "gw1" && g["up"] == true)
        },
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
    let out = radclient(acct, "acct", "User-Name=alice,Acct-Status-Type=Stop,Acct-Session-Id=a1,Calling-Station-Id=0901,Framed-IP-Address=10.50.0.2,Acct-Terminate-Cause=User-Request");
    assert!(out.contains("Accounting-Response"), "{out}");
    wait_for(
        "gw1 to refuse alice after logout",
        Duration::from_secs(5),
        || !curl("10.33.0.1").0,
    );
    assert!(drops(&stats_json(&sg1), "no_session") > 0);
    for l in ["lb1", "lb2", "gw1", "gw2"] {
        assert_eq!(
            lab.interrupt(l, Duration::from_secs(10)),
            Some(0),
            "{l}:\n{}",
            lab.log(l)
        );
    }
}
