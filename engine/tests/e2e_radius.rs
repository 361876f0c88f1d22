//! The management plane with real peers: Debian's `radclient` (FreeRADIUS)
//! talks to a running `pgw` (GW role) on loopback; a subscriber namespace
//! talks to the GW through net_tap. Access-Request → Accept with an address
//! from the least-loaded gateway's range; wrong password → Reject; wrong
//! secret → no answer, counted; Accounting Start / Interim / Stop drive the
//! session states `pgw sessions` shows, and the data path follows them:
//! no session → dropped; Act → forwarded; Dormant → dropped; Close → logged,
//! then gone.

mod common;
use common::*;
use std::time::Duration;

fn radclient(port: u16, kind: &str, secret: &str, attrs: &str) -> (bool, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s\\n' '{attrs}' | radclient -x -r 1 -t 2 127.0.0.1:{port} {kind} {secret}"
        ))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn radclient_drives_sessions_and_the_data_path() {
    if !can_netns() || !have_tools(&["radclient"]) {
        return;
    }
    let mut lab = Lab::new("pr");
    let t = lab.tag.clone();
    let sock = lab.dir.join("gw.sock");
    let auth = 21000 + (std::process::id() % 20000) as u16;
    let acct = auth + 1;
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
[radius]
listen = "127.0.0.1:{auth}"
acct_listen = "127.0.0.1:{acct}"
this_gateway = "gw1"
[[radius.client]]
address = "127.0.0.1"
secret = "testing123"
[[radius.user]]
user = "alice"
password = "wonderland"
device_id = "09011112222"
services = ["wap"]
[[radius.user]]
user = "bob"
password = "builder"
device_id = "09033334444"
services = ["wap"]
[[radius.gateway]]
name = "gw1"
ranges = ["10.50.0.2-10.50.0.9"]
[[radius.gateway]]
name = "gw2"
ranges = ["10.50.1.2-10.50.1.9"]
"#,
        sock = sock.display()
    );
    lab.start_pgw("gw", &profile, &sock, &[&format!("{t}a"), &format!("{t}b")]);
    let sub = lab.ns("sub");
    let srv = lab.ns("srv");
    sh(&format!("ip link set {t}a netns {sub} && ip -n {sub} addr add 10.50.0.2/24 dev {t}a && ip -n {sub} link set {t}a up"));
    sh(&format!("ip -n {sub} route add 10.33.0.0/24 via 10.50.0.1"));
    sh(&format!("ip link set {t}b netns {srv} && ip -n {srv} addr add 10.80.0.11/24 dev {t}b && ip -n {srv} link set {t}b up"));
    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello"), "hello").unwrap();
    lab.spawn(
        "http",
        &format!(
            "ip netns exec {srv} python3 -m http.server --bind 10.80.0.11 8080 --directory {}",
            www.display()
        ),
    );
    let curl = || {
        sh_ok(&format!(
            "ip netns exec {sub} curl -s --fail --max-time 2 -o /dev/null http://10.33.0.1/hello"
        ))
    };
    let sessions = || -> serde_json::Value {
        serde_json::from_str(&sh(&format!(
            "{} sessions --socket {} --json",
            pgw_bin().display(),
            sock.display()
        )))
        .unwrap()
    };
    let state_of = |dev: &str| -> Option<String> {
        sessions()["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["device_id"] == dev)
            .map(|s| s["state"].as_str().unwrap().to_string())
    };

    // Wrong password → Reject.
    let (_, out) = radclient(
        auth,
        "auth",
        "testing123",
        "User-Name=alice,User-Password=nope,Calling-Station-Id=09011112222",
    );
    assert!(out.contains("Access-Reject"), "{out}");
    // Wrong secret → no answer at all (radclient gives up), counted. (With a
    // Message-Authenticator the secret is checkable; without one a wrong
    // secret only garbles the PAP password and is answered with a Reject,
    // as FreeRADIUS does.)
    let (ok, out) = radclient(auth, "auth", "wrongsecret", "User-Name=alice,User-Password=wonderland,Calling-Station-Id=09011112222,Message-Authenticator=0x00");
    assert!(!ok && !out.contains("Received Access-"), "{out}");
    assert!(
        sessions()["counters"]
            .as_str()
            .unwrap()
            .contains("bad_authenticator: 1"),
        "{}",
        sessions()
    );
    // Accept: the first address of the least-loaded gateway (both empty: gw1).
    let (ok, out) = radclient(
        auth,
        "auth",
        "testing123",
        "User-Name=alice,User-Password=wonderland,Calling-Station-Id=09011112222",
    );
    assert!(
        ok && out.contains("Access-Accept") && out.contains("10.50.0.2"),
        "{out}"
    );
    // Bob goes to gw2 now (gw1 has one address out).
    let (ok, out) = radclient(
        auth,
        "auth",
        "testing123",
        "User-Name=bob,User-Password=builder,Calling-Station-Id=09033334444",
    );
    assert!(
        ok && out.contains("10.50.1.2"),
        "least-loaded gateway not chosen: {out}"
    );

    // No session yet: the GW drops the subscriber's traffic.
    assert!(!curl(), "traffic passed before Accounting Start");
    assert!(drops(&stats_json(&sock), "no_session") > 0);

    let acct_attrs = |status: &str, extra: &str| {
        format!("User-Name=alice,Acct-Status-Type={status},Acct-Session-Id=s1,Calling-Station-Id=09011112222,Framed-IP-Address=10.50.0.2,NAS-IP-Address=127.0.0.1{extra}")
    };
    let (ok, out) = radclient(acct, "acct", "testing123", &acct_attrs("Start", ""));
    assert!(ok && out.contains("Accounting-Response"), "{out}");
    assert_eq!(state_of("09011112222").as_deref(), Some("Act"));
    wait_for(
        "traffic to pass once the session is active",
        Duration::from_secs(10),
        curl,
    );

    let (ok, _) = radclient(
        acct,
        "acct",
        "testing123",
        &acct_attrs(
            "Interim-Update",
            ",Acct-Input-Octets=100,Acct-Output-Octets=200",
        ),
    );
    assert!(ok);
    assert_eq!(state_of("09011112222").as_deref(), Some("Act"));

    // Stop with Idle-Timeout → Dormant: new connections are refused.
    let (ok, _) = radclient(
        acct,
        "acct",
        "testing123",
        &acct_attrs("Stop", ",Acct-Terminate-Cause=Idle-Timeout"),
    );
    assert!(ok);
    assert_eq!(state_of("09011112222").as_deref(), Some("Dormant"));
    assert!(!curl(), "a dormant session's traffic passed");
    // Start → Act again.
    let (ok, _) = radclient(acct, "acct", "testing123", &acct_attrs("Start", ""));
    assert!(ok);
    assert_eq!(state_of("09011112222").as_deref(), Some("Act"));
    assert!(curl());

    // Logout: Stop (User-Request) → Close → session log written → None.
    let (ok, _) = radclient(
        acct,
        "acct",
        "testing123",
        &acct_attrs("Stop", ",Acct-Terminate-Cause=User-Request"),
    );
    assert!(ok);
    let s = sessions();
    assert_eq!(state_of("09011112222"), None, "{s}");
    assert_eq!(s["session_log_total"], 1, "{s}");
    assert_eq!(s["session_log"][0]["device_id"], "09011112222");
    assert!(!curl(), "traffic passed after logout");
    // Accounting with the wrong secret: no answer.
    let (ok, out) = radclient(acct, "acct", "bad", &acct_attrs("Start", ""));
    assert!(!ok && !out.contains("Accounting-Response"), "{out}");
    assert_eq!(
        lab.interrupt("gw", Duration::from_secs(10)),
        Some(0),
        "{}",
        lab.log("gw")
    );
}
