//! `pgw top` end to end: a GW carries real TCP (curl downloads through a
//! VIP, rate-limited so they last) and refuses a subscriber address without
//! a session, both going on while `pgw top` watches it.
//!
//! Batch mode (stdout a pipe): `pgw top -n 3 --interval 0.5` prints three
//! frames, each with the worker, a non-zero packet rate on the access port,
//! the refusals under `no_session`, the connections and the health of the
//! server; no sessions section (the GW has no `[radius]`).
//!
//! On a terminal: `script` (util-linux) gives `pgw top` a pseudo-terminal;
//! the frames come with the alternate screen and a clear before each, `q`
//! typed on the terminal ends it, and so does Ctrl-C (exit 0, not killed
//! by the signal), each time with the screen and cursor put back.
//!
//! With `[radius]`: `radclient` logs a subscriber in and out idle; `pgw top`
//! shows its session Act, then Dormant.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// The frames of `pgw top` output (each starts with its header line).
fn frames(out: &str) -> Vec<String> {
    let mut v: Vec<String> = vec![];
    for l in out.lines() {
        if l.contains("pgw top — instance") || v.is_empty() {
            v.push(String::new());
        }
        let last = v.last_mut().unwrap();
        last.push_str(l);
        last.push('\n');
    }
    v.retain(|f| f.contains("pgw top — instance"));
    v
}

/// The whitespace-separated columns of the first line of `frame` whose
/// first column is `first`.
fn row(frame: &str, first: &str) -> Option<Vec<String>> {
    frame
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|c| c.first().map(String::as_str) == Some(first))
}

/// A number as `pgw top` writes it (`12`, `3.4k`, `1.2M`).
fn num(s: &str) -> f64 {
    let (n, m) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1e3),
        Some('M') => (&s[..s.len() - 1], 1e6),
        Some('G') => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    n.parse::<f64>()
        .unwrap_or_else(|_| panic!("not a number: {s:?}"))
        * m
}

/// A shell command that waits (up to 15 s) until `script` has written
/// `n` frames of `pgw top` into `file`, and half a second more: keys are
/// typed once `pgw top` draws, whatever the machine's load.
fn after_frames(file: &std::path::Path, n: usize) -> String {
    format!(
        "for i in $(seq 150); do c=$(grep -c 'pgw top — instance' {f} 2>/dev/null); [ \"${{c:-0}}\" -ge {n} ] && break; sleep 0.1; done; sleep 0.5",
        f = file.display()
    )
}

#[test]
fn top_shows_rates_drops_and_health_of_a_gw_carrying_traffic() {
    let Some(mut lab) = Lab::netns("tp", &["curl", "script", "timeout"]) else {
        return;
    };
    let CheckedGw { sock, sub, .. } = lab.checked_gw("", 8388608);
    wait_for("w1 up by its health check", Duration::from_secs(20), || {
        pgw_json(&sock, "servers")["groups"][0]["members"][0]["up"] == true
    });
    lab.wait_neighbours(&sock, &["10.80.0.11"]);

    // Traffic that lasts: downloads at 2 MB/s from the subscriber with a
    // session, and attempts from the address without one (no_session).
    lab.spawn(
        "downloads",
        &format!(
            "ip netns exec {sub} sh -c 'while true; do curl -s -o /dev/null --max-time 20 --limit-rate 2M --interface 10.50.0.2 http://10.33.0.1/blob.bin; done'"
        ),
    );
    lab.spawn(
        "refused",
        &format!(
            "ip netns exec {sub} sh -c 'while true; do curl -s -o /dev/null --max-time 0.3 --interface 10.50.0.3 http://10.33.0.1/who; done'"
        ),
    );
    wait_for(
        "downloads and refusals under way",
        Duration::from_secs(20),
        || {
            let r = stats_json(&sock);
            event(&r, "gw_new_flows") >= 1 && drops(&r, "no_session") >= 1
        },
    );

    // Batch mode: three frames, half a second apart.
    let t0 = Instant::now();
    let out = sh(&format!(
        "{} top --socket {} -n 3 --interval 0.5",
        pgw_bin().display(),
        sock.display()
    ));
    let took = t0.elapsed();
    assert!(!out.contains('\x1b'), "escapes in batch mode:\n{out}");
    eprintln!("pgw top -n 3 --interval 0.5:\n{out}");
    let fs = frames(&out);
    assert_eq!(fs.len(), 3, "{out}");
    // 3 intervals of 0.5 s (and the first look before them).
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    // Frames are separated by a blank line.
    assert_eq!(out.matches("\n\npgw top — instance").count(), 2, "{out}");
    let (mut drop_rates, mut access_tx) = (vec![], vec![]);
    for f in &fs {
        assert!(
            f.starts_with(&format!("pgw top — instance {} (gw)", lab.tag)),
            "{f}"
        );
        // The worker: #, lcore, busy %, Mpps, rx pps, ...; it took packets in.
        let w = row(f, "0").unwrap_or_else(|| panic!("no worker row in\n{f}"));
        assert_eq!(w.len(), 9, "{f}");
        let busy: f64 = w[2]
            .parse()
            .unwrap_or_else(|_| panic!("busy % {:?}\n{f}", w[2]));
        assert!((0.0..=100.0).contains(&busy), "{f}");
        assert!(num(&w[4]) > 0.0, "worker rx rate 0 while traffic runs\n{f}");
        // The access port: up-going packets (the refused SYNs alone are a
        // few a second; the downloads' ACKs).
        let a = row(f, "access").unwrap_or_else(|| panic!("no access row in\n{f}"));
        assert!(num(&a[2]) > 0.0, "access rx pps 0 while traffic runs\n{f}");
        assert!(num(&a[3]) > 0.0, "access rx bps 0\n{f}");
        access_tx.push(num(&a[4]));
        assert!(row(f, "servers").is_some(), "{f}");
        // The refusals, by reason: rate and total.
        let d = row(f, "no_session").unwrap_or_else(|| panic!("no no_session row in\n{f}"));
        assert!(d[2].parse::<u64>().unwrap() >= 1, "{f}");
        drop_rates.push(num(&d[1]));
        let c = f
            .lines()
            .find(|l| l.starts_with("connections"))
            .unwrap_or_else(|| panic!("no connections line in\n{f}"));
        assert!(c.contains("new "), "{c}");
        assert!(
            f.contains("health  members 1 up, 0 down"),
            "health of w1 not shown\n{f}"
        );
        assert!(!f.contains("\nsessions"), "a GW without [radius]\n{f}");
    }
    // The downloads going down to the subscriber (between two of them a
    // frame may see none).
    assert!(
        access_tx.iter().any(|r| *r > 0.0),
        "access tx rate 0 in every frame while downloads go on\n{out}"
    );
    // Attempts every ~0.3 s: refusals counted within the 1.5 s watched.
    assert!(
        drop_rates.iter().any(|r| *r > 0.0),
        "no_session rate 0 in every frame while refusals go on\n{out}"
    );

    // On a pseudo-terminal: alternate screen, a clear before each frame,
    // `q` quits (no -n), the terminal put back.
    // `pgw top` on a pseudo-terminal (`script`, its output in `file`),
    // `key` typed once it drew `frames` frames: what the terminal showed.
    let on_tty = |file: &str, frames: usize, key: &str, what: &str| -> String {
        let tty_out = lab.dir.join(file);
        let status = sh_output(&format!(
            "({}; printf {key}) | timeout 20 script -qfec 'exec {} top --socket {} --interval 0.5' {} > /dev/null",
            after_frames(&tty_out, frames),
            pgw_bin().display(),
            sock.display(),
            tty_out.display()
        ));
        assert!(
            status.status.success(),
            "pgw top on a terminal{what}: {:?} {}\n{:?}",
            status.status,
            String::from_utf8_lossy(&status.stderr),
            String::from_utf8_lossy(&std::fs::read(&tty_out).unwrap_or_default())
        );
        let tty = String::from_utf8_lossy(&std::fs::read(&tty_out).unwrap()).into_owned();
        // The terminal put back after the last frame (script writes its
        // own trailer line after the session).
        let restored = tty
            .rfind("\x1b[?25h\x1b[?1049l")
            .unwrap_or_else(|| panic!("terminal not restored:\n{tty:?}"));
        assert!(
            restored > tty.rfind("pgw top — instance").unwrap(),
            "{tty:?}"
        );
        tty
    };
    let t0 = Instant::now();
    let tty = on_tty("tty.out", 2, "q", "");
    assert!(t0.elapsed() < Duration::from_secs(19), "{:?}", t0.elapsed());
    assert!(tty.contains("\x1b[?1049h"), "no alternate screen:\n{tty:?}");
    let clears = tty.matches("\x1b[H\x1b[2Jpgw top — instance").count();
    assert!(clears >= 2, "{clears} cleared frames in\n{tty:?}");
    assert!(tty.contains("access"), "{tty:?}");

    // Ctrl-C on the terminal: pgw top ends by itself with 0 (not killed by
    // SIGINT) and puts the terminal back.
    let tty = on_tty("tty-intr.out", 1, "'\\003'", ", Ctrl-C");
    assert!(tty.contains("\x1b[H\x1b[2Jpgw top — instance"), "{tty:?}");

    lab.stop_pgw("gw");
}

/// With `[radius]`: `radclient` logs a subscriber in, then out idle, and
/// `pgw top` shows the session by its FIG. 11 state each time.
#[test]
fn top_shows_sessions_by_state_of_a_gw_with_radius() {
    let Some(mut lab) = Lab::netns("tq", &["radclient"]) else {
        return;
    };
    let auth = radius_port(0);
    let acct = auth + 1;
    let profile = radius_gw(&lab, auth);
    let sock = lab.run_pgw("gw", &profile);
    let top = || {
        let out = sh(&format!(
            "{} top --socket {} -n 1 --interval 0.2",
            pgw_bin().display(),
            sock.display()
        ));
        let fs = frames(&out);
        assert_eq!(fs.len(), 1, "{out}");
        fs[0].clone()
    };
    let sessions = |f: &str| -> String {
        f.lines()
            .find(|l| l.starts_with("sessions"))
            .unwrap_or_else(|| panic!("no sessions line in\n{f}"))
            .to_string()
    };
    assert!(
        sessions(&top()).starts_with("sessions  0 total: Act 0  Dormant 0  Close 0"),
        "{}",
        top()
    );

    let (ok, out) = alice_auth(auth, "wonderland");
    assert!(ok && out.contains("Access-Accept"), "{out}");
    let acct_send = |status: &str, extra: &str| alice_acct(acct, status, extra);
    acct_send("Start", "");
    let f = top();
    assert!(
        sessions(&f).starts_with("sessions  1 total: Act 1  Dormant 0  Close 0"),
        "{f}"
    );
    acct_send("Stop", ",Acct-Terminate-Cause=Idle-Timeout");
    let f = top();
    assert!(
        sessions(&f).starts_with("sessions  1 total: Act 0  Dormant 1  Close 0"),
        "{f}"
    );
    lab.stop_pgw("gw");
}
