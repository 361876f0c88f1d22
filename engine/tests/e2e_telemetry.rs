//! DPDK's own telemetry client against a running pgw: a GW on two net_tap
//! ports carries a few curl requests through a VIP, then `dpdk-telemetry.py
//! -f pgw-NAME` (commands on its stdin, one JSON answer a line) lists pgw's
//! commands beside DPDK's under `/`, answers `/ethdev/list` with the GW's
//! two ports and `/pgw/stats` with the counters `pgw stats --json` shows
//! (totals, drops by reason, per port and per worker, as flat telemetry
//! dicts), `/pgw/servers` with the service group and `/pgw/sessions` with
//! the error a GW without `[radius]` gives. Once pgw has stopped, the
//! socket is gone. Both memory modes pgw runs DPDK in are covered:
//! hugepages (`--in-memory`) and `--no-huge --no-shconf`. Then live
//! capture with `dpdk-dumpcap` (`eal.capture`).

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;

/// DPDK's runtime directory of the test's own instance (`/var/run/dpdk/pgw-TAG`),
/// which DPDK leaves behind: removed on drop, declared before the [`Lab`] so
/// that it goes after pgw stopped, pass or fail.
struct RuntimeDir(std::path::PathBuf);

impl RuntimeDir {
    fn of(lab: &Lab) -> RuntimeDir {
        RuntimeDir(format!("/var/run/dpdk/pgw-{}", lab.tag).into())
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `dpdk-telemetry.py -f PREFIX` fed `cmds` on stdin: one answer per command.
fn telemetry(prefix: &str, cmds: &[&str]) -> Vec<Value> {
    let input: String = cmds.iter().map(|c| format!("{c}\n")).collect();
    let out = sh_output(&format!(
        "printf '{input}' | timeout 20 dpdk-telemetry.py -f {prefix}"
    ));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let answers: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        answers.len(),
        cmds.len(),
        "dpdk-telemetry.py -f {prefix} answered {} of {cmds:?}:\n{text}\n{}",
        answers.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    answers
}

/// A GW between namespaces `sub` (10.50.0.2) and `srv` (server w1 on
/// 10.80.0.11:8080 behind VIP 10.33.0.1:80), `eal` more `[eal]` keys;
/// `None` where the test cannot run. Returns once a request went through.
fn gw_lab(prefix: &str, tools: &[&str], eal: &str) -> Option<(Lab, std::path::PathBuf, String)> {
    let mut lab = Lab::netns(prefix, tools)?;
    let profile = lab
        .profile("gw", "10.50.0.1/24")
        .engine(Engine {
            idle_sleep_us: 20,
            ..Engine::default()
        })
        .with(&gw_section("max_flows_per_worker = 1024"))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]))
        .with(&gw_session("10.50.0.2", 1001, &["wap"]));
    let text = profile
        .to_string()
        .replace("[eal]\n", &format!("[eal]\n{eal}"));
    let sock = profile.sock.clone();
    let taps: Vec<&str> = profile.taps.iter().map(String::as_str).collect();
    lab.start_pgw("pgw", &text, &sock, &taps);
    let (sub, srv) = lab.gw_sides(&["10.80.0.11/24"]);
    lab.serve_http("w1", &srv, "10.80.0.11");
    wait_for("server listening", Duration::from_secs(10), || {
        curl_ok(&srv, "http://10.80.0.11:8080/who")
    });
    wait_for("an answer through the VIP", Duration::from_secs(20), || {
        curl_ok(&sub, "http://10.33.0.1/who")
    });
    Some((lab, sock, sub))
}

fn gw_with_telemetry(prefix: &str, hugepages: &str) {
    let eal = format!("hugepages = \"{hugepages}\"\n");
    let runtime_dir;
    let Some((mut lab, sock, sub)) = gw_lab(prefix, &["curl", "dpdk-telemetry.py"], &eal) else {
        return;
    };
    runtime_dir = RuntimeDir::of(&lab);
    for _ in 0..5 {
        assert!(curl(&sub, "http://10.33.0.1/who").contains("w1"));
    }

    let fp = format!("pgw-{}", lab.tag);
    let ctl = stats_json(&sock);
    assert_eq!(
        ctl["hugepages"],
        Value::Bool(hugepages == "required"),
        "{ctl}"
    );
    let (rx, tx) = (worker_sum(&ctl, "rx"), worker_sum(&ctl, "tx"));
    let a = telemetry(
        &fp,
        &[
            "/",
            "/ethdev/list",
            "/pgw/stats",
            "/pgw/servers",
            "/pgw/sessions",
            "/pgw/runtime",
        ],
    );

    // `/` lists pgw's commands beside DPDK's.
    let list = a[0]["/"].as_array().expect("/ answers a list");
    for c in [
        "/pgw/stats",
        "/pgw/runtime",
        "/pgw/sessions",
        "/pgw/servers",
        "/pgw/accounting",
        "/pgw/neighbors",
        "/ethdev/list",
    ] {
        assert!(list.iter().any(|x| x == c), "{c} not in {}", a[0]);
    }
    assert_eq!(a[1]["/ethdev/list"], serde_json::json!([0, 1]), "{}", a[1]);

    // `/pgw/stats`: the control socket's counters (read just before; they
    // only grow), as telemetry dicts.
    let s = &a[2]["/pgw/stats"];
    let n = |v: &Value| {
        v.as_u64()
            .unwrap_or_else(|| panic!("not a number: {v} in {s}"))
    };
    assert!(
        n(&s["rx"]) >= rx && rx > 10,
        "telemetry rx {} vs pgw stats rx {rx}",
        s["rx"]
    );
    assert!(
        n(&s["tx"]) >= tx && tx > 10,
        "telemetry tx {} vs pgw stats tx {tx}",
        s["tx"]
    );
    assert_eq!(s["instance"], Value::String(lab.tag.clone()), "{s}");
    assert_eq!(s["role"], ctl["role"], "{s}");
    let reasons = s["drops_by_reason"]
        .as_object()
        .expect("drops_by_reason dict");
    assert!(
        reasons.len() > 5 && reasons.values().all(Value::is_u64),
        "{s}"
    );
    assert_eq!(
        reasons.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        n(&s["drops"]),
        "{s}"
    );
    for (i, name) in ["access", "servers"].into_iter().enumerate() {
        let p = &s[format!("ports/{i}")];
        assert_eq!(p["name"], name, "{s}");
        assert!(n(&p["ipackets"]) >= n(&ctl["ports"][i]["ipackets"]), "{s}");
        assert!(n(&p["ipackets"]) > 5 && n(&p["opackets"]) > 5, "{s}");
    }
    let w0 = &s["workers/0"];
    assert!(n(&w0["rx"]) >= rx && w0["drops/no_session"].is_u64(), "{s}");

    // Other commands: the service group; the error a GW without [radius] gives.
    let g = &a[3]["/pgw/servers"]["groups/0"];
    assert_eq!(g["group"], "wap", "{}", a[3]);
    assert_eq!(g["members/0/name"], "w1", "{}", a[3]);
    let e = a[4]["/pgw/sessions"]["error"].as_str().unwrap_or_default();
    assert!(e.contains("[radius]"), "{}", a[4]);
    assert!(a[5]["/pgw/runtime"]["workers/0"].is_object(), "{}", a[5]);

    let socket = runtime_dir.0.join("dpdk_telemetry.v2");
    assert!(socket.exists(), "no {}", socket.display());
    lab.stop_pgw("pgw");
    assert!(!socket.exists(), "telemetry socket left behind");
}

#[test]
fn telemetry_with_hugepages() {
    gw_with_telemetry("tm", "required");
}

#[test]
fn telemetry_without_hugepages() {
    gw_with_telemetry("tn", "off");
}

/// Live capture: a GW with `eal.capture = true` serves `dpdk-dumpcap` (a
/// DPDK secondary process on the instance's file prefix); it captures a
/// few curl exchanges on the server port (a BPF filter, `-f`, that pgw
/// runs) and `tcpdump -r` decodes the HTTP
/// request (NATed to the pool address) and the answer. The secondary gets
/// no PCI device: `SYSFS_PCI_DEVICES` points its PCI scan at an empty
/// directory (dumpcap takes no EAL options to pass `--no-pci`). After pgw
/// stops, no hugepage file of its prefix is left.
#[test]
fn dumpcap_captures_a_curl_exchange() {
    let eal = "hugepages = \"required\"\ncapture = true\n";
    let _runtime_dir;
    let Some((mut lab, sock, sub)) = gw_lab("tc", &["curl", "dpdk-dumpcap", "tcpdump"], eal) else {
        return;
    };
    _runtime_dir = RuntimeDir::of(&lab);
    let fp = format!("pgw-{}", lab.tag);
    assert_eq!(stats_json(&sock)["hugepages"], Value::Bool(true));
    let no_pci = lab.dir.join("no-pci");
    std::fs::create_dir_all(&no_pci).unwrap();
    let dumpcap = format!(
        "env SYSFS_PCI_DEVICES={} dpdk-dumpcap --file-prefix={fp}",
        no_pci.display()
    );
    let list = sh(&format!("{dumpcap} -D 2>&1"));
    let (ta, tb) = (
        format!("net_tap_{}a", lab.tag),
        format!("net_tap_{}b", lab.tag),
    );
    assert!(
        list.contains(&ta) && list.contains(&tb),
        "dumpcap -D: {list}"
    );
    assert_eq!(
        list.matches("net_").count(),
        2,
        "dumpcap sees other devices: {list}"
    );

    let pcap = lab.dir.join("srv.pcapng");
    lab.spawn(
        "dumpcap",
        &format!(
            "{dumpcap} -i {tb} -f 'tcp port 8080' -w {} -c 20",
            pcap.display()
        ),
    );
    let start = std::time::Instant::now();
    // Its status line (stderr) starts once pgw installed the callbacks.
    while !lab.log("dumpcap").contains("Packets captured") {
        assert!(
            start.elapsed() < Duration::from_secs(15) && lab.is_running("dumpcap"),
            "dumpcap did not start capturing:\n{}",
            lab.log("dumpcap")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // About 10 frames an exchange on the server side.
    for _ in 0..8 {
        assert!(curl(&sub, "http://10.33.0.1/who").contains("w1"));
    }
    let code = lab.wait_exit("dumpcap", Duration::from_secs(15));
    assert_eq!(code, Some(0), "dumpcap:\n{}", lab.log("dumpcap"));
    let text = sh(&format!("tcpdump -nn -A -r {} 2>&1", pcap.display()));
    assert!(
        text.contains("10.80.0.100.") && text.contains("> 10.80.0.11.8080"),
        "no NATed request in the capture:\n{text}"
    );
    assert!(
        text.contains("GET /who HTTP/1.1"),
        "no HTTP request in the capture:\n{text}"
    );
    // The callbacks are gone with dumpcap; traffic still flows.
    assert!(curl(&sub, "http://10.33.0.1/who").contains("w1"));

    let files = || {
        sh(&format!(
            "ls /dev/hugepages 2>/dev/null | grep -c '^{fp}map_' || true"
        ))
    };
    assert_ne!(
        files().trim(),
        "0",
        "no hugepage files of {fp}: not a shared configuration?"
    );
    lab.stop_pgw("pgw");
    assert_eq!(files().trim(), "0", "hugepage files of {fp} left behind");
}
