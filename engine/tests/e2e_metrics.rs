//! The Prometheus endpoint end to end: a GW with `[metrics]` carries real
//! TCP (curl through a VIP) and refuses a subscriber without a session;
//! `curl` scrapes `/metrics` (200, the text format 0.0.4), and the scrape
//! shows that traffic, the refusal under its reason, the health check's
//! verdict, the static session and a good and a bad `pgw ctl reload`;
//! `promtool check metrics` passes on it; then a real `prometheus` server
//! scrapes the instance every second and its query API answers `up == 1`
//! and a non-empty `rate()` of a port counter while traffic flows.
//!
//! pgw runs in the root namespace (its taps are moved out), so the listener
//! on 127.0.0.1 and prometheus, also in the root namespace, reach each other
//! on loopback; every address the test picks is a free loopback port.
//!
//! A second test drives the management side with `radclient` and reads
//! RADIUS requests by result and sessions by state off the scrape.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `curl -i` of `url` from the root namespace: (status line, headers, body).
fn get(url: &str) -> (String, HashMap<String, String>, String) {
    let out = sh_output(&format!("curl -sS -i --max-time 10 '{url}'"));
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {text}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// The value of the sample `series` (name and labels exactly as written).
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of every sample of family `name` whose labels contain all of `having`.
fn sum(scrape: &str, name: &str, having: &[&str]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        .filter(|l| having.iter().all(|h| l.contains(h)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A Prometheus instant query: the `data.result` array.
fn query(prom: u16, q: &str) -> Vec<serde_json::Value> {
    let out = sh_output(&format!(
        "curl -sS -G --max-time 5 'http://127.0.0.1:{prom}/api/v1/query' --data-urlencode 'query={q}'"
    ));
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return vec![];
    };
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The value of a one-sample query result.
fn value(r: &[serde_json::Value]) -> Option<f64> {
    r.first()?["value"][1].as_str()?.parse().ok()
}

#[test]
fn metrics_endpoint_scraped_by_promtool_and_prometheus() {
    let Some(mut lab) = Lab::netns("pm", &["curl", "promtool", "prometheus"]) else {
        return;
    };
    let mport = free_port();
    let CheckedGw { sock, sub, srv } = lab.checked_gw(
        &format!("[metrics]\nlisten = \"127.0.0.1:{mport}\""),
        1048576,
    );
    let metrics_url = format!("http://127.0.0.1:{mport}/metrics");
    // Probes met no listener before the server namespace existed: wait
    // until w1 answered some and is up.
    wait_for("w1 up by its health check", Duration::from_secs(20), || {
        let (_, _, body) = get(&metrics_url);
        sample(
            &body,
            r#"pgw_health_up{group="wap",member="w1",family="ipv4"}"#,
        ) == Some(1.0)
            && sample(
                &body,
                r#"pgw_health_probe_passes_total{group="wap",member="w1",family="ipv4"}"#,
            )
            .is_some_and(|n| n >= 2.0)
    });
    lab.wait_neighbours(&sock, &["10.80.0.11"]);

    // Real traffic: downloads through the VIP by the subscriber with a
    // session; the address without one is refused (no_session).
    let got = lab.dir.join("got.bin");
    for _ in 0..3 {
        download(&sub, "http://10.33.0.1/blob.bin", &got, 30);
        assert_eq!(std::fs::metadata(&got).unwrap().len(), 1048576);
    }
    assert!(!sh_ok(&format!(
        "ip netns exec {sub} curl -s --max-time 1 --interface 10.50.0.3 http://10.33.0.1/who"
    )));
    // One reload that applies, one the profile refuses (then put back).
    assert!(pgw_at(&sock, "ctl", "reload").contains("\"ok\":true"));
    let path = lab.dir.join("gw.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, good.replace("[gw]", "[gw]\nno_such_key = 1")).unwrap();
    assert!(pgw_at(&sock, "ctl", "reload").contains("error"));
    std::fs::write(&path, &good).unwrap();
    let before = stats_json(&sock);

    // The scrape.
    let (status, headers, body) = get(&metrics_url);
    assert_eq!(status.trim(), "HTTP/1.1 200 OK", "{body}");
    let ctype = headers.get("content-type").cloned().unwrap_or_default();
    assert!(
        ctype.starts_with("text/plain; version=0.0.4"),
        "content type {ctype:?}"
    );
    let scrape_file = lab.write("scrape.txt", &body);
    let at_least = |series: &str, min: f64| {
        let v = sample(&body, series).unwrap_or_else(|| panic!("no {series} in\n{body}"));
        assert!(v >= min, "{series} = {v}, expected >= {min}\n{body}");
    };
    at_least(
        &format!(
            r#"pgw_info{{version="{}",role="gw",instance="{}",dpdk="{}"}}"#,
            env!("CARGO_PKG_VERSION"),
            lab.tag,
            before["dpdk"].as_str().unwrap()
        ),
        1.0,
    );
    // 3 MB down to the subscriber: > 2000 full-size frames out of the access port.
    at_least(r#"pgw_port_tx_packets_total{port="access"}"#, 2000.0);
    at_least(r#"pgw_port_tx_bytes_total{port="access"}"#, 3.0 * 1048576.0);
    // Both taps live in other namespaces now (DPDK's tap PMD would say
    // down); pgw asks the kernel there: up, and its drop counters read.
    for (port, iface) in [
        ("access", format!("{}a", lab.tag)),
        ("servers", format!("{}b", lab.tag)),
    ] {
        assert_eq!(
            sample(
                &body,
                &format!(r#"pgw_port_up{{port="{port}",driver="net_tap"}}"#)
            ),
            Some(1.0),
            "{port} link\n{body}"
        );
        assert!(
            sample(
                &body,
                &format!(
                    r#"pgw_port_kernel_rx_dropped_packets_total{{port="{port}",iface="{iface}"}}"#
                )
            )
            .is_some(),
            "{port}: no kernel counters of {iface}\n{body}"
        );
    }
    let tx_before = worker_sum(&before, "tx") as f64;
    let tx = sum(&body, "pgw_worker_tx_packets_total", &[]);
    assert!(
        tx >= tx_before,
        "workers' tx {tx} < {tx_before} read before"
    );
    assert!(
        sum(&body, "pgw_drops_total", &[r#"reason="no_session""#]) >= 1.0,
        "{body}"
    );
    at_least(r#"pgw_events_total{worker="0",event="gw_new_flows"}"#, 3.0);
    assert!(sample(&body, r#"pgw_gw_open_flows{worker="0"}"#).is_some());
    at_least(r#"pgw_worker_busy_cycles_total{worker="0"}"#, 1.0);
    at_least(r#"pgw_stage_packets_total{worker="0",stage="rx"}"#, 2000.0);
    let busy = sample(&body, r#"pgw_worker_busy_ratio{worker="0"}"#).unwrap();
    assert!((0.0..=1.0).contains(&busy) && busy > 0.0, "busy {busy}");
    at_least(r#"pgw_worker_busy_cycles_per_packet{worker="0"}"#, 1.0);
    at_least(r#"pgw_server_member_up{group="wap",member="w1"}"#, 1.0);
    at_least(
        r#"pgw_health_probe_passes_total{group="wap",member="w1",family="ipv4"}"#,
        2.0,
    );
    assert_eq!(
        sample(&body, r#"pgw_gw_sessions{source="static"}"#),
        Some(1.0)
    );
    at_least(r#"pgw_neighbours_learned_total"#, 1.0);
    assert_eq!(
        sample(&body, r#"pgw_config_reloads_total{result="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, r#"pgw_config_reloads_total{result="error"}"#),
        Some(1.0)
    );
    let (status, _, _) = get(&format!("http://127.0.0.1:{mport}/other"));
    assert_eq!(status.trim(), "HTTP/1.1 404 Not Found");

    // promtool's own parser and linter accept the scrape.
    let (ok, out) = sh_text(&format!(
        "promtool check metrics < {}",
        scrape_file.display()
    ));
    assert!(ok, "promtool check metrics failed:\n{out}");

    // A real Prometheus scrapes the instance every second, traffic going on.
    let prom = free_port();
    let data = lab.dir.join("prometheus-data");
    let cfg = lab.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: pgw\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    );
    lab.spawn(
        "traffic",
        &format!(
            "ip netns exec {sub} sh -c 'while true; do curl -s -o /dev/null --max-time 2 http://10.33.0.1/who; sleep 0.1; done'"
        ),
    );
    lab.spawn(
        "prometheus",
        &format!(
            "prometheus --config.file={} --storage.tsdb.path={} --web.listen-address=127.0.0.1:{prom}",
            cfg.display(),
            data.display()
        ),
    );
    wait_for(
        "prometheus to scrape pgw (up == 1)",
        Duration::from_secs(60),
        || value(&query(prom, r#"up{job="pgw"}"#)) == Some(1.0),
    );
    let rate = r#"sum(rate(pgw_port_rx_packets_total{job="pgw",port="access"}[5s]))"#;
    let mut last = vec![];
    wait_for(
        "a non-empty rate() of pgw_port_rx_packets_total",
        Duration::from_secs(60),
        || {
            last = query(prom, rate);
            value(&last).is_some_and(|v| v > 0.0)
        },
    );
    // The target's own `instance` label wins: pgw's is kept as exported_instance.
    let info = query(
        prom,
        &format!(
            r#"pgw_info{{job="pgw",exported_instance="{}",role="gw"}}"#,
            lab.tag
        ),
    );
    assert_eq!(value(&info), Some(1.0), "{info:?}");
    let drops = query(prom, r#"sum(pgw_drops_total{reason="no_session"})"#);
    assert!(value(&drops).is_some_and(|v| v >= 1.0), "{drops:?}");
    let scrapes = sample(
        &get(&metrics_url).2,
        r#"pgw_metrics_http_requests_total{code="200"}"#,
    )
    .unwrap();
    assert!(scrapes >= 3.0, "only {scrapes} scrapes counted");

    assert!(
        lab.interrupt("prometheus", Duration::from_secs(20))
            .is_some(),
        "prometheus did not stop"
    );
    let _ = lab.interrupt("traffic", Duration::from_secs(5));
    std::fs::remove_dir_all(&data).unwrap();

    // The servers' side of the link taken down in its namespace: the port
    // is down in the scrape and in `pgw stats`; up again, up again.
    let srv_tap = format!("{}b", lab.tag);
    let link = |up: bool| {
        sh(&format!(
            "ip -n {srv} link set {srv_tap} {}",
            if up { "up" } else { "down" }
        ));
        let want = if up { 1.0 } else { 0.0 };
        wait_for(
            &format!(
                "servers port {} in the scrape",
                if up { "up" } else { "down" }
            ),
            Duration::from_secs(10),
            || {
                sample(
                    &get(&metrics_url).2,
                    r#"pgw_port_up{port="servers",driver="net_tap"}"#,
                ) == Some(want)
            },
        );
        let ports = stats_json(&sock)["ports"].clone();
        assert_eq!(ports[1]["name"], "servers");
        assert_eq!(ports[1]["link_up"], up, "{ports}");
        assert_eq!(ports[0]["link_up"], true, "{ports}");
    };
    link(false);
    link(true);
    lab.stop_pgw("gw");
}

/// The management side's metrics with a real RADIUS client: `radclient`
/// (FreeRADIUS) logs a subscriber in and out of a GW that runs `[radius]`;
/// each scrape counts the requests by type and result and the sessions by
/// FIG. 11 state as they change, and passes `promtool check metrics`.
#[test]
fn radius_requests_and_sessions_by_state_in_the_scrape() {
    let Some(mut lab) = Lab::netns("pq", &["curl", "promtool", "radclient"]) else {
        return;
    };
    let mport = free_port();
    let auth = radius_port(0);
    let acct = auth + 1;
    let profile = radius_gw(&lab, auth).with(&format!("[metrics]\nlisten = \"127.0.0.1:{mport}\""));
    lab.run_pgw("gw", &profile);
    let url = format!("http://127.0.0.1:{mport}/metrics");
    let scrape = |lab: &Lab| -> String {
        let (status, _, body) = get(&url);
        assert_eq!(status.trim(), "HTTP/1.1 200 OK", "{body}");
        let f = lab.write("scrape.txt", &body);
        let (ok, out) = sh_text(&format!("promtool check metrics < {}", f.display()));
        assert!(ok, "promtool check metrics failed:\n{out}\n{body}");
        body
    };
    let req = |body: &str, ty: &str, result: &str| {
        sample(
            body,
            &format!(r#"pgw_radius_requests_total{{type="{ty}",result="{result}"}}"#),
        )
        .unwrap_or_else(|| panic!("no {ty}/{result} in\n{body}"))
    };
    let state = |body: &str, st: &str| {
        sample(body, &format!(r#"pgw_sessions{{state="{st}"}}"#))
            .unwrap_or_else(|| panic!("no state {st} in\n{body}"))
    };

    let body = scrape(&lab);
    assert_eq!(req(&body, "access", "accept"), 0.0);
    assert_eq!(state(&body, "act"), 0.0);

    let (_, out) = alice_auth(auth, "nope");
    assert!(out.contains("Access-Reject"), "{out}");
    let (ok, out) = alice_auth(auth, "wonderland");
    assert!(ok && out.contains("Access-Accept"), "{out}");
    let acct_send = |status: &str, extra: &str| alice_acct(acct, status, extra);
    acct_send("Start", "");
    let body = scrape(&lab);
    assert_eq!(req(&body, "access", "accept"), 1.0);
    assert_eq!(req(&body, "access", "bad_password"), 1.0);
    assert_eq!(req(&body, "accounting", "entered"), 1.0);
    assert_eq!(state(&body, "act"), 1.0);
    assert_eq!(state(&body, "dormant"), 0.0);
    assert_eq!(
        sample(&body, r#"pgw_gw_sessions{source="radius"}"#),
        Some(1.0)
    );

    // Stop (idle) → Dormant; Start → Act again.
    acct_send("Stop", ",Acct-Terminate-Cause=Idle-Timeout");
    let body = scrape(&lab);
    assert_eq!(req(&body, "accounting", "stopped"), 1.0);
    assert_eq!((state(&body, "act"), state(&body, "dormant")), (0.0, 1.0));
    acct_send("Start", "");
    let body = scrape(&lab);
    assert_eq!(req(&body, "accounting", "started"), 1.0);
    assert_eq!((state(&body, "act"), state(&body, "dormant")), (1.0, 0.0));
    assert_eq!(
        sample(&body, "pgw_radius_unknown_client_datagrams_total"),
        Some(0.0)
    );
    lab.stop_pgw("gw");
}
