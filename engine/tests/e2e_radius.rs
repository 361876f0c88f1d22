//! The management plane with real peers: Debian's `radclient` (FreeRADIUS)
//! talks to a running `pgw` (GW role) on loopback; a subscriber namespace
//! talks to the GW through net_tap. Access-Request → Accept with an address
//! from the least-loaded gateway's range; wrong password → Reject; wrong
//! secret → no answer, counted; Accounting Start / Interim / Stop drive the
//! session states `pgw sessions` shows, and the data path follows them:
//! no session → dropped; Act → forwarded; Dormant → dropped; Close → logged,
//! then gone. `pgw sessions --history DEVICE` lists the FIG. 11
//! transitions with their wall-clock times and causes, and the session log
//! row in SQLite carries the same history.

mod common;
use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// (from, to, cause, at_unix_ms) of each entry of a history array.
fn transitions(h: &serde_json::Value) -> Vec<(String, String, String, i64)> {
    h.as_array()
        .unwrap_or_else(|| panic!("no history array: {h}"))
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
                t["cause"].as_str().unwrap().to_string(),
                t["at_unix_ms"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// One try: a request with a wrong secret must be counted exactly once.
fn radclient(port: u16, kind: &str, secret: &str, attrs: &str) -> (bool, String) {
    common::radclient(1, port, kind, secret, attrs)
}

/// radclient's answer (`ok`, `out`) is an Access-Accept giving `addr`.
#[track_caller]
fn assert_accepted(ok: bool, out: &str, addr: &str) {
    assert!(
        ok && out.contains("Access-Accept") && out.contains(addr),
        "{out}"
    );
}

/// An Access-Request with `attrs` to `port` under the clients' secret.
fn access_request(port: u16, attrs: &str) -> (bool, String) {
    radclient(port, "auth", "testing123", attrs)
}

/// The subscriber namespace (10.50.0.2, the VIPs routed through the GW at
/// 10.50.0.1) and server `www` on 10.80.0.11:8080 serving `hello`.
fn subscriber_and_www(lab: &mut Lab) -> String {
    let (sub, srv) = lab.gw_sides(&["10.80.0.11/24"]);
    let www = lab.serve_http("www", &srv, "10.80.0.11");
    std::fs::write(www.join("hello"), "hello").unwrap();
    sub
}

/// The FIG. 11 state of device `dev`'s session at `sock`, if it has one.
fn state_of(sock: &std::path::Path, dev: &str) -> Option<String> {
    pgw_json(sock, "sessions")["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["device_id"] == dev)
        .map(|s| s["state"].as_str().unwrap().to_string())
}

#[test]
fn radclient_drives_sessions_and_the_data_path() {
    let Some(mut lab) = Lab::netns("pr", &["radclient"]) else {
        return;
    };
    let auth = radius_port(0);
    let acct = auth + 1;
    let db = lab.dir.join("acct.sqlite");
    let profile = radius_gw(&lab, auth)
        .with(&radius_user("bob", "builder", "09033334444", &["wap"]))
        .with("[[radius.gateway]]\nname = \"gw2\"\nranges = [\"10.50.1.2-10.50.1.9\"]")
        .with(&format!(
            "[accounting]\nsqlite = \"{}\"\nbatch_ms = 50",
            db.display()
        ));
    let sock = lab.run_pgw("gw", &profile);
    let sub = subscriber_and_www(&mut lab);
    let curl = || curl_ok(&sub, "http://10.33.0.1/hello");
    let sessions = || pgw_json(&sock, "sessions");
    let state_of = |dev: &str| state_of(&sock, dev);

    // Wrong password → Reject.
    let (_, out) = access_request(
        auth,
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
    let (ok, out) = access_request(
        auth,
        "User-Name=alice,User-Password=wonderland,Calling-Station-Id=09011112222",
    );
    assert_accepted(ok, &out, "10.50.0.2");
    // Bob goes to gw2 now (gw1 has one address out).
    let (ok, out) = access_request(
        auth,
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
    let t0 = unix_ms();
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
    // The live session's history so far: entry, then the NAS's stop.
    let h = pgw_at(&sock, "sessions", "--history 09011112222 --json");
    let h: serde_json::Value = serde_json::from_str(&h).unwrap_or_else(|e| panic!("{e}: {h}"));
    assert_eq!(h["device_id"], "09011112222", "{h}");
    assert_eq!(h["sessions"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h["sessions"][0]["state"], "Dormant", "{h}");
    let live: Vec<(String, String, String)> = transitions(&h["sessions"][0]["history"])
        .into_iter()
        .map(|(f, t, c, _)| (f, t, c))
        .collect();
    let s3 = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        live,
        [s3("none", "act", "entry"), s3("act", "dormant", "nas_stop")],
        "{h}"
    );
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
    let t1 = unix_ms();
    assert!(!curl(), "traffic passed after logout");

    // The whole history of the closed session, in order, with causes and
    // wall-clock times inside the test's window (the engine's clock is
    // mapped to Unix time; allow its rounding and calibration a little).
    let h = pgw_at(&sock, "sessions", "--history 09011112222 --json");
    let h: serde_json::Value = serde_json::from_str(&h).unwrap_or_else(|e| panic!("{e}: {h}"));
    let sess = &h["sessions"][0];
    assert_eq!(h["sessions"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(sess["state"], "None", "{h}");
    assert_eq!(sess["close_cause"], "status_close:1", "{h}");
    let all = transitions(&sess["history"]);
    let steps: Vec<(String, String, String)> = all
        .iter()
        .map(|(f, t, c, _)| (f.clone(), t.clone(), c.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            s3("none", "act", "entry"),
            s3("act", "dormant", "nas_stop"),
            s3("dormant", "act", "nas_start"),
            s3("act", "close", "status_close:1"), // User-Request
        ],
        "{h}"
    );
    let times: Vec<i64> = all.iter().map(|x| x.3).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    const SLACK_MS: i64 = 250;
    assert!(
        times[0] >= t0 - SLACK_MS && times[3] <= t1 + SLACK_MS,
        "{times:?} outside [{t0}, {t1}]"
    );
    // The text form names the same transitions.
    let text = pgw_at(&sock, "sessions", "--history 09011112222");
    for want in [
        "none     -> act",
        "act      -> dormant  nas_stop",
        "status_close:1",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // An unknown device is an error answer, not an empty list.
    let e = sh_output(&format!(
        "{} sessions --socket {} --history 09099999999 --json",
        pgw_bin().display(),
        sock.display()
    ));
    let text = String::from_utf8_lossy(&e.stdout);
    assert!(!e.status.success() && text.contains("no session"), "{text}");

    // The session log row in SQLite carries the same history.
    let mut logged = Vec::new();
    wait_for(
        "the session log row in SQLite",
        Duration::from_secs(10),
        || {
            logged = pgw_engine::mgmt::acctlog::query_recent_sessions(&db, 10).unwrap_or_default();
            !logged.is_empty()
        },
    );
    let row = &logged[0];
    assert_eq!(row.device_id, "09011112222");
    let db_steps: Vec<(String, String, String, i64)> = row
        .state_history
        .iter()
        .map(|c| {
            (
                c.from.clone(),
                c.state.clone(),
                c.cause.clone(),
                c.at_unix_ms,
            )
        })
        .collect();
    assert_eq!(db_steps, all, "{row:?}");
    // Accounting with the wrong secret: no answer.
    let (ok, out) = radclient(acct, "acct", "bad", &acct_attrs("Start", ""));
    assert!(!ok && !out.contains("Accounting-Response"), "{out}");
    lab.stop_pgw("gw");
}

/// The RADIUS server's first line of defence, with the real `radclient`:
/// the server listens on the IPv6 wildcard (dual stack), its only client is
/// 127.0.0.1 (seen as `::ffff:127.0.0.1`, matched as 127.0.0.1). A request
/// from `::1`, a source that is no client, gets no answer and is counted
/// (`radius.unknown_client`) while the client's requests are answered; a
/// burst above the client's rate (`rate_per_s = 1`, `burst = 4`) is cut to
/// what the bucket holds, the rest dropped and counted
/// (`radius.rate_limited`), and the client is answered again once the
/// bucket refills.
#[test]
fn unknown_clients_and_requests_over_the_rate_get_no_answer_and_are_counted() {
    let Some(mut lab) = Lab::netns("rl", &["radclient"]) else {
        return;
    };
    let auth = radius_port(7000);
    let profile = lab
        .profile("gw", "10.50.0.1/24")
        .with(&gw_section(""))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]))
        .with(&format!(
            "[radius]\nlisten = \"[::]:{auth}\"\nacct_listen = \"[::]:{}\"\n\
             this_gateway = \"gw1\"\nduplicate_cache = 64\n\
             [[radius.client]]\naddress = \"127.0.0.1\"\nsecret = \"testing123\"\n\
             rate_per_s = 1\nburst = 4\n",
            auth + 1
        ))
        .with(&radius_user("alice", "wonderland", "09011112222", &["wap"]))
        .with("[[radius.gateway]]\nname = \"gw1\"\nranges = [\"10.50.0.2-10.50.0.9\"]\n");
    let sock = lab.run_pgw("gw", &profile);
    let radius = || pgw_json(&sock, "sessions")["radius"].clone();
    let alice = "User-Name=alice,User-Password=wonderland,Calling-Station-Id=09011112222";
    let ask = |server: &str, body: &str| {
        sh_text(&format!(
            "printf '%b' '{body}' | radclient -x -r 1 -t 2 -p 20 {server}:{auth} auth testing123"
        ))
        .1
    };

    let out = ask("127.0.0.1", alice);
    assert!(out.contains("Received Access-Accept"), "{out}");
    let r = radius();
    assert_eq!(r["unknown_client"], 0, "{r}");
    assert_eq!(r["duplicate_cache_capacity"], 64, "{r}");

    // From ::1: the same secret, the same request, but not a client.
    let out = ask("[::1]", alice);
    assert!(
        out.contains("Sent Access-Request"),
        "radclient did not send: {out}"
    );
    assert!(
        !out.contains("Received Access-"),
        "an unknown client was answered: {out}"
    );
    let r = radius();
    assert_eq!(r["unknown_client"], 1, "{r}");
    // The client is still served.
    let out = ask("127.0.0.1", alice);
    assert!(out.contains("Received Access-Accept"), "{out}");

    // 12 requests at once: the bucket holds 4 (it refilled during the
    // 2 s radclient waited above), plus one a second while they arrive.
    let before = radius();
    let flood = [alice; 12].join("\\n\\n");
    let t0 = std::time::Instant::now();
    let out = ask("127.0.0.1", &flood);
    let secs = t0.elapsed().as_secs();
    let answered = out.matches("Received Access-Accept").count() as u64;
    let r = radius();
    let limited = r["rate_limited"].as_u64().unwrap() - before["rate_limited"].as_u64().unwrap();
    assert!(answered >= 1, "nothing answered: {out}");
    assert!(
        answered <= 4 + secs + 1,
        "{answered} answered in {secs} s at 1/s with a burst of 4: {out}"
    );
    assert_eq!(
        answered + limited,
        12,
        "every request answered or counted: {r}\n{out}"
    );
    assert_eq!(r["clients"][0]["address"], "127.0.0.1", "{r}");
    assert_eq!(r["clients"][0]["rate_limited"], r["rate_limited"], "{r}");
    assert_eq!(r["unknown_client"], 1, "{r}");

    // The bucket refills: answered again.
    std::thread::sleep(Duration::from_millis(2500));
    let out = ask("127.0.0.1", alice);
    assert!(out.contains("Received Access-Accept"), "{out}");
    lab.stop_pgw("gw");
}

/// `radclient` with CHAP-Password (it sends the MD5 response to the
/// Request Authenticator): accepted with the right password (Session-Timeout
/// and Idle-Timeout in the Accept), rejected with a wrong one. Then Accounting-On from the NAS (it restarted): every
/// session that NAS carried is closed (session log written with cause
/// NAS-Reboot) and its subscriber's traffic no longer passes, while the
/// session of another NAS stays.
#[test]
fn chap_logins_and_accounting_on_from_radclient() {
    let Some(mut lab) = Lab::netns("pc", &["radclient", "curl"]) else {
        return;
    };
    let auth = 21000 + (std::process::id() % 20000) as u16;
    let acct = auth + 1;
    let profile = lab
        .profile("gw", "10.50.0.1/24")
        .with(&gw_section(""))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]))
        .with(&radius_head(
            auth,
            "this_gateway = \"gw1\"\nsession_timeout_s = 3600\ndormant_s = 90.5",
        ))
        .with(&radius_user("alice", "wonderland", "09011112222", &["wap"]))
        .with(&radius_user("bob", "builder", "09033334444", &["wap"]))
        .with("[[radius.gateway]]\nname = \"gw1\"\nranges = [\"10.50.0.2-10.50.0.9\"]");
    let sock = lab.run_pgw("gw", &profile);
    let sub = subscriber_and_www(&mut lab);
    let state_of = |dev: &str| state_of(&sock, dev);

    let (_, out) = access_request(
        auth,
        "User-Name=alice,CHAP-Password=wrong,Calling-Station-Id=09011112222",
    );
    assert!(out.contains("Access-Reject"), "{out}");
    let (ok, out) = access_request(
        auth,
        "User-Name=alice,CHAP-Password=wonderland,Calling-Station-Id=09011112222",
    );
    assert_accepted(ok, &out, "10.50.0.2");
    // The profile's session limit, and its dormant time (rounded up) as
    // the NAS's idle limit.
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    assert!(out.contains("Idle-Timeout = 91"), "{out}");
    let (ok, out) = access_request(
        auth,
        "User-Name=bob,CHAP-Password=builder,Calling-Station-Id=09033334444",
    );
    assert!(ok && out.contains("10.50.0.3"), "{out}");
    let start = |user: &str, dev: &str, addr: &str, nas: &str| {
        acct_answered(
            1,
            acct,
            &format!("User-Name={user},Acct-Status-Type=Start,Acct-Session-Id=s-{user},Calling-Station-Id={dev},Framed-IP-Address={addr},NAS-IP-Address={nas}"),
        );
    };
    start("alice", "09011112222", "10.50.0.2", "127.0.0.1");
    start("bob", "09033334444", "10.50.0.3", "127.0.0.2");
    assert_eq!(state_of("09011112222").as_deref(), Some("Act"));
    assert_eq!(state_of("09033334444").as_deref(), Some("Act"));
    wait_for("alice's traffic passes", Duration::from_secs(10), || {
        curl_ok(&sub, "http://10.33.0.1/hello")
    });

    // NAS 127.0.0.1 restarted.
    let (ok, out) = radclient(
        acct,
        "acct",
        "testing123",
        "Acct-Status-Type=Accounting-On,Acct-Session-Id=on-1,NAS-IP-Address=127.0.0.1",
    );
    assert!(ok && out.contains("Accounting-Response"), "{out}");
    let s = pgw_json(&sock, "sessions");
    assert_eq!(state_of("09011112222"), None, "{s}");
    assert_eq!(state_of("09033334444").as_deref(), Some("Act"), "{s}");
    assert_eq!(s["session_log_total"], 1, "{s}");
    assert_eq!(s["session_log"][0]["device_id"], "09011112222", "{s}");
    let h = pgw_at(&sock, "sessions", "--history 09011112222 --json");
    // (Acct-Terminate-Cause 11: NAS-Reboot.)
    let h: serde_json::Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["sessions"][0]["close_cause"], "status_close:11", "{h}");
    wait_for("alice's traffic refused", Duration::from_secs(10), || {
        !curl_ok(&sub, "http://10.33.0.1/hello")
    });
    // NAS 127.0.0.2 leaves service: Accounting-Off closes bob's session
    // (Acct-Terminate-Cause 10: NAS-Request).
    let (ok, out) = radclient(
        acct,
        "acct",
        "testing123",
        "Acct-Status-Type=Accounting-Off,Acct-Session-Id=off-1,NAS-IP-Address=127.0.0.2",
    );
    assert!(ok && out.contains("Accounting-Response"), "{out}");
    assert_eq!(state_of("09033334444"), None);
    let h = pgw_at(&sock, "sessions", "--history 09033334444 --json");
    let h: serde_json::Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["sessions"][0]["close_cause"], "status_close:10", "{h}");
    assert_eq!(pgw_json(&sock, "sessions")["session_log_total"], 2);
    lab.stop_pgw("gw");
}

/// The Session-Timeout and Idle-Timeout the Access-Accept gives the NAS are
/// the session's own FIG. 11 timers too (`radius.session_timeout_s = 3`,
/// `idle_timeout_s = 1`, no `dormant_s`): with no Interim-Update, the
/// session goes Dormant 1 s after its entry (dormant timer) and is closed
/// 3 s after it (`session_timeout`), each at its deadline, though the NAS
/// (radclient) never sends a Stop.
#[test]
fn session_and_idle_timeouts_are_the_sessions_own_timers() {
    let Some(mut lab) = Lab::netns("pt", &["radclient"]) else {
        return;
    };
    let auth = radius_port(3);
    let profile = radius_gw_with(
        &lab,
        auth,
        "session_timeout_s = 3\nidle_timeout_s = 1\ninterim_monitor_s = 60",
    );
    let sock = lab.run_pgw("gw", &profile);
    let (ok, out) = alice_auth(auth, "wonderland");
    assert_accepted(ok, &out, "10.50.0.2");
    assert!(out.contains("Session-Timeout = 3"), "{out}");
    assert!(out.contains("Idle-Timeout = 1"), "{out}");
    alice_acct(auth + 1, "Start", "");
    wait_for(
        "the session closed by its lifetime",
        Duration::from_secs(20),
        || state_of(&sock, "09011112222").is_none(),
    );
    let h = pgw_at(&sock, "sessions", "--history 09011112222 --json");
    let h: serde_json::Value = serde_json::from_str(&h).unwrap_or_else(|e| panic!("{e}: {h}"));
    assert_eq!(h["sessions"][0]["close_cause"], "session_timeout", "{h}");
    let t = transitions(&h["sessions"][0]["history"]);
    let steps: Vec<(&str, &str, &str)> = t
        .iter()
        .map(|(f, s, c, _)| (f.as_str(), s.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("none", "act", "entry"),
            ("act", "dormant", "dormant_timer"),
            ("dormant", "close", "session_timeout")
        ],
        "{h}"
    );
    // Each at its deadline from the entry (the engine's clock, mapped to
    // Unix milliseconds: allow its rounding).
    let since = |k: usize| t[k].3 - t[0].3;
    assert!(
        (999..=1001).contains(&since(1)),
        "dormant after {} ms: {h}",
        since(1)
    );
    assert!(
        (2999..=3001).contains(&since(2)),
        "closed after {} ms: {h}",
        since(2)
    );
    lab.stop_pgw("gw");
}
