//! Real TCP through a running `pgw` (wire role) on two net_tap ports: `curl`
//! in one network namespace downloads a file of several MB from an HTTP
//! server in the other, and the copy is byte-identical. Checks the engine's
//! counters too, its runtime accounting over the control socket (`pgw stats
//! --runtime`, `pgw ctl runtime-clear`), and that SIGINT stops it cleanly
//! with final counters.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn curl_downloads_through_pgw_on_net_tap() {
    let Some(mut lab) = Lab::netns("pt", &[]) else {
        return;
    };
    let tag = lab.tag.clone();
    let (ta, tb) = (format!("{tag}a"), format!("{tag}b"));
    let sock = lab.dir.join("ctl.sock");
    let profile = Profile::new(&tag, "wire", &sock)
        .engine(Engine {
            idle_sleep_us: 20,
            ..Engine::default()
        })
        .tap("a", &ta)
        .tap("b", &tb)
        .with("[wire]\npairs = [[\"a\", \"b\"]]");
    lab.run_pgw("pgw", &profile);
    let nsa = lab.ns("cli");
    let nsb = lab.ns("srv");
    lab.move_into(&ta, &nsa, &["10.77.0.1/24"]);
    lab.move_into(&tb, &nsb, &["10.77.0.2/24"]);

    let www = lab.serve_http("http", &nsb, "10.77.0.2");
    let file = random_file(&www, "blob.bin", 8388608);
    wait_for("http server", Duration::from_secs(10), || {
        curl_ok(&nsa, "http://10.77.0.2:8080/")
    });

    let got = download_intact(&lab, &nsa, "http://10.77.0.2:8080/blob.bin", &file, 60);
    assert_eq!(std::fs::metadata(&got).unwrap().len(), 8388608);

    // The engine's own counters saw the transfer: > 8 MB / 1500 B frames one way.
    let tx = worker_sum(&stats_json(&sock), "tx");
    assert!(tx > 5000, "pgw forwarded only {tx} frames");
    assert!(pgw_at(&sock, "stats", "").contains("workers"));

    // Runtime accounting: the worker's rx and tx stages saw the transfer,
    // the stages add up to the busy cycles; a clear starts a new window.
    let rt = || -> serde_json::Value {
        serde_json::from_str(&pgw_at(&sock, "stats", "--runtime --json")).unwrap()
    };
    let rt0 = rt();
    let w0 = &rt0["workers"][0];
    let stage = |w: &serde_json::Value, n: &str| {
        w["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .map(|s| s["packets"].as_u64().unwrap())
            .unwrap_or(0)
    };
    assert!(stage(w0, "rx") >= tx, "{rt0}");
    assert!(stage(w0, "wire") >= tx && stage(w0, "tx") >= tx, "{rt0}");
    let staged: u64 = w0["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cycles"].as_u64().unwrap())
        .sum();
    assert_eq!(staged, w0["busy_cycles"].as_u64().unwrap(), "{rt0}");
    assert!(
        rt0["total"]["capacity_mpps"].as_f64().unwrap() > 0.0,
        "{rt0}"
    );
    assert!(pgw_at(&sock, "stats", "--runtime").contains("cycles/pkt"));
    pgw_at(&sock, "ctl", "runtime-clear");
    let rt1 = rt();
    assert!(
        stage(&rt1["workers"][0], "rx") < tx / 100,
        "runtime-clear did not start a new window: {rt1}"
    );

    lab.stop_pgw("pgw");
    let log = lab.log("pgw");
    assert!(log.contains("final counters"), "no final counters:\n{log}");
    assert!(!sock.exists(), "control socket left behind");
}
