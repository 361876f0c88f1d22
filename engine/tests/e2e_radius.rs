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

/// One try: a request with a wrong secret must be counted exactly once.
fn radclient(port: u16, kind: &str, secret: &str, attrs: &str) -> (bool, String) {
    common::radclient(1, port, kind, secret, attrs)
}

#[test]
fn radclient_drives_sessions_and_the_data_path() {
    let Some(mut lab) = Lab::netns("pr", &["radclient"]) else {
        return;
    };
    let auth = 21000 + (std::process::id() % 20000) as u16;
    let acct = auth + 1;
    let profile = lab
        .profile("gw", "10.50.0.1/24")
        .with(&gw_section(""))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]))
        .with(&radius_head(auth, "this_gateway = \"gw1\""))
        .with(&radius_user("alice", "wonderland", "09011112222", &["wap"]))
        .with(&radius_user("bob", "builder", "09033334444", &["wap"]))
        .with(
            r#"[[radius.gateway]]
name = "gw1"
ranges = ["10.50.0.2-10.50.0.9"]
[[radius.gateway]]
name = "gw2"
ranges = ["10.50.1.2-10.50.1.9"]"#,
        );
    let sock = lab.run_pgw("gw", &profile);
    let sub = lab.subscriber(&["10.50.0.2/24"]);
    lab.route(&sub, "10.33.0.0/24", "10.50.0.1");
    let srv = lab.servers(&["10.80.0.11/24"]);
    let www = lab.serve_http("www", &srv, "10.80.0.11");
    std::fs::write(www.join("hello"), "hello").unwrap();
    let curl = || curl_ok(&sub, "http://10.33.0.1/hello");
    let sessions = || pgw_json(&sock, "sessions");
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
    let acct_send = |status: &str, extra: &str| {
        radclient(acct, "acct", "testing123", &acct_attrs(status, extra))
    };
    let (ok, out) = acct_send("Start", "");
    assert!(ok && out.contains("Accounting-Response"), "{out}");
    assert_eq!(state_of("09011112222").as_deref(), Some("Act"));
    wait_for(
        "traffic to pass once the session is active",
        Duration::from_secs(10),
        curl,
    );

    let (ok, _) = acct_send(
        "Interim-Update",
        ",Acct-Input-Octets=100,Acct-Output-Octets=200",
    );
    assert!(ok);
    assert_eq!(state_of("09011112222").as_deref(), Some("Act"));

    // Stop with Idle-Timeout → Dormant: new connections are refused.
    let (ok, _) = acct_send("Stop", ",Acct-Terminate-Cause=Idle-Timeout");
    assert!(ok);
    assert_eq!(state_of("09011112222").as_deref(), Some("Dormant"));
    assert!(!curl(), "a dormant session's traffic passed");
    // Start → Act again.
    let (ok, _) = acct_send("Start", "");
    assert!(ok);
    assert_eq!(state_of("09011112222").as_deref(), Some("Act"));
    assert!(curl());

    // Logout: Stop (User-Request) → Close → session log written → None.
    let (ok, _) = acct_send("Stop", ",Acct-Terminate-Cause=User-Request");
    assert!(ok);
    let s = sessions();
    assert_eq!(state_of("09011112222"), None, "{s}");
    assert_eq!(s["session_log_total"], 1, "{s}");
    assert_eq!(s["session_log"][0]["device_id"], "09011112222");
    assert!(!curl(), "traffic passed after logout");
    // Accounting with the wrong secret: no answer.
    let (ok, out) = radclient(acct, "acct", "bad", &acct_attrs("Start", ""));
    assert!(!ok && !out.contains("Accounting-Response"), "{out}");
    lab.stop_pgw("gw");
}
