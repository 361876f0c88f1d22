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
    if !can_netns() {
        return;
    }
    let mut lab = Lab::new("pt");
    let tag = lab.tag.clone();
    let (ta, tb) = (format!("{tag}a"), format!("{tag}b"));
    let sock = lab.dir.join("ctl.sock");
    let profile = lab.write(
        "profile.toml",
        &format!(
            r#"
[instance]
name = "{tag}"
role = "wire"
control_socket = "{sock}"
[eal]
memory_mb = 256
[cores]
workers = [0]
[engine]
mbufs = 8191
idle_sleep_us = 20
[[port]]
name = "a"
device = "net_tap_{tag}a,iface={ta}"
[[port]]
name = "b"
device = "net_tap_{tag}b,iface={tb}"
[wire]
pairs = [["a", "b"]]
"#,
            sock = sock.display()
        ),
    );
    let nsa = lab.ns("cli");
    let nsb = lab.ns("srv");
    lab.spawn(
        "pgw",
        &format!(
            "{} run --profile {}",
            pgw_bin().display(),
            profile.display()
        ),
    );
    // Move the taps only once their DPDK ports are started and UP.
    wait_for("pgw control socket", Duration::from_secs(20), || {
        sock.exists()
    });
    wait_for("taps up", Duration::from_secs(10), || {
        sh_ok(&format!("ip link show {ta} | grep -q ',UP'"))
            && sh_ok(&format!("ip link show {tb} | grep -q ',UP'"))
    });
    sh(&format!("ip link set {ta} netns {nsa}"));
    sh(&format!("ip link set {tb} netns {nsb}"));
    sh(&format!(
        "ip -n {nsa} addr add 10.77.0.1/24 dev {ta} && ip -n {nsa} link set {ta} up"
    ));
    sh(&format!(
        "ip -n {nsb} addr add 10.77.0.2/24 dev {tb} && ip -n {nsb} link set {tb} up"
    ));

    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let file = www.join("blob.bin");
    sh(&format!(
        "head -c 8388608 /dev/urandom > {}",
        file.display()
    ));
    lab.spawn(
        "http",
        &format!(
            "ip netns exec {nsb} python3 -m http.server --bind 10.77.0.2 8080 --directory {}",
            www.display()
        ),
    );
    wait_for("http server", Duration::from_secs(10), || {
        sh_ok(&format!(
            "ip netns exec {nsa} curl -s -o /dev/null --max-time 2 http://10.77.0.2:8080/"
        ))
    });

    let got = lab.dir.join("got.bin");
    sh(&format!(
        "ip netns exec {nsa} curl -sS --fail --max-time 60 -o {} http://10.77.0.2:8080/blob.bin",
        got.display()
    ));
    assert_eq!(std::fs::metadata(&got).unwrap().len(), 8388608);
    assert_eq!(
        sha256(&got),
        sha256(&file),
        "download differs from the served file"
    );

    // The engine's own counters saw the transfer: > 8 MB / 1500 B frames one way.
    let stats = sh(&format!(
        "{} stats --socket {} --json",
        pgw_bin().display(),
        sock.display()
    ));
    let r: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let tx: u64 = r["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["tx"].as_u64().unwrap())
        .sum();
    assert!(tx > 5000, "pgw forwarded only {tx} frames");
    assert!(sh(&format!(
        "{} stats --socket {}",
        pgw_bin().display(),
        sock.display()
    ))
    .contains("workers"));

    // Runtime accounting: the worker's rx and tx stages saw the transfer,
    // the stages add up to the busy cycles; a clear starts a new window.
    let pgw = |args: &str| {
        sh(&format!(
            "{} {args} --socket {}",
            pgw_bin().display(),
            sock.display()
        ))
    };
    let rt: serde_json::Value = serde_json::from_str(&pgw("stats --runtime --json")).unwrap();
    let w0 = &rt["workers"][0];
    let stage = |w: &serde_json::Value, n: &str| {
        w["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .map(|s| s["packets"].as_u64().unwrap())
            .unwrap_or(0)
    };
    assert!(stage(w0, "rx") >= tx, "{rt}");
    assert!(stage(w0, "wire") >= tx && stage(w0, "tx") >= tx, "{rt}");
    let staged: u64 = w0["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cycles"].as_u64().unwrap())
        .sum();
    assert_eq!(staged, w0["busy_cycles"].as_u64().unwrap(), "{rt}");
    assert!(rt["total"]["capacity_mpps"].as_f64().unwrap() > 0.0, "{rt}");
    assert!(pgw("stats --runtime").contains("cycles/pkt"));
    sh(&format!(
        "{} ctl --socket {} runtime-clear",
        pgw_bin().display(),
        sock.display()
    ));
    let rt: serde_json::Value = serde_json::from_str(&pgw("stats --runtime --json")).unwrap();
    assert!(
        stage(&rt["workers"][0], "rx") < tx / 100,
        "runtime-clear did not start a new window: {rt}"
    );

    let code = lab.interrupt("pgw", Duration::from_secs(10));
    let log = lab.log("pgw");
    assert_eq!(code, Some(0), "pgw did not exit cleanly on SIGINT:\n{log}");
    assert!(log.contains("final counters"), "no final counters:\n{log}");
    assert!(!sock.exists(), "control socket left behind");
}
