//! `gw.max_conns_per_subscriber` between real TCP stacks: subscriber
//! 10.50.0.2 holds 3 connections open to the service (python sockets, idle
//! after the handshake); its 4th connection's SYN is refused with a RST
//! (`exhaustion_reply = "rst"`: curl fails at once, exit 7) and counted as
//! `subscriber_conn_limit`; subscriber 10.50.0.3 is not affected; once the
//! 3 close (FIN both ways), 10.50.0.2 connects again. And
//! `gw.new_conns_per_subscriber_per_s`: a second connection within the
//! second is refused (`subscriber_rate_limit`), a later one served.

mod common;
use common::*;
use std::time::Duration;

/// Open 3 connections from 10.50.0.2 to the VIP, say "open", hold them
/// until the file argv[1] exists, close them, say "closed".
const HOLDER: &str = r#"
import os, socket, sys, time
ss = [socket.create_connection(("10.33.0.1", 80), timeout=5,
                               source_address=("10.50.0.2", 0)) for _ in range(3)]
print("open", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
for s in ss:
    s.close()
print("closed", flush=True)
time.sleep(60)
"#;

#[test]
fn fourth_connection_of_a_subscriber_is_refused() {
    let Some(mut lab) = Lab::netns("pl", &["python3", "curl"]) else {
        return;
    };
    let profile = lab.wap_gw(
        "max_conns_per_subscriber = 3\nexhaustion_reply = \"rst\"",
        &[("10.50.0.2", 9015550101), ("10.50.0.3", 9015550102)],
    );
    let sock = lab.run_pgw("gw", &profile);
    let sub = lab.subscriber(&["10.50.0.2/24", "10.50.0.3/24"]);
    lab.route(&sub, "10.33.0.0/24", "10.50.0.1");
    let srv = lab.servers(&["10.80.0.11/24"]);
    lab.serve_http("http", &srv, "10.80.0.11");
    lab.wait_neighbours(&sock, &["10.80.0.11"]);
    // curl from the subscriber's address `from` (a command line)
    let get = |from: &str| {
        format!(
            "ip netns exec {sub} curl -sS --max-time 10 --interface {from} http://10.33.0.1/who"
        )
    };

    let script = lab.write("holder.py", HOLDER);
    let release = lab.dir.join("release");
    lab.spawn(
        "holder",
        &format!(
            "ip netns exec {sub} python3 {} {}",
            script.display(),
            release.display()
        ),
    );
    wait_for("3 connections open", Duration::from_secs(10), || {
        lab.log("holder").contains("open")
    });
    assert_eq!(event(&stats_json(&sock), "gw_open_flows"), 3);

    // the 4th: a RST answers its SYN
    assert_refused_at_once(&get("10.50.0.2"));
    let r = stats_json(&sock);
    assert_eq!(drops(&r, "subscriber_conn_limit"), 1);
    assert_eq!(drops(&r, "subscriber_rate_limit"), 0);
    assert_eq!(event(&r, "gw_rst_exhausted"), 0);
    assert_eq!(event(&r, "gw_new_flows"), 3);

    // another subscriber is not affected
    assert_eq!(sh(&get("10.50.0.3")), "http");

    // the 3 close: 10.50.0.2 connects again
    std::fs::write(&release, "").unwrap();
    wait_for("the holder's close", Duration::from_secs(10), || {
        lab.log("holder").contains("closed")
    });
    wait_for("every connection closed", Duration::from_secs(10), || {
        event(&stats_json(&sock), "gw_open_flows") == 0
    });
    assert_eq!(sh(&get("10.50.0.2")), "http");
    let r = stats_json(&sock);
    assert_eq!(drops(&r, "subscriber_conn_limit"), 1);
    assert_eq!(event(&r, "gw_new_flows"), 5);
    assert_eq!(event(&r, "gw_sub_untracked"), 0);
    lab.stop_pgw("gw");
}

/// `gw.new_conns_per_subscriber_per_s = 1`: a connection passes, the next
/// within the second gets a RST (`subscriber_rate_limit`; a window of a
/// whole second so a slow machine does not refill the bucket in between),
/// and a second later the bucket holds one more.
#[test]
fn connection_rate_of_a_subscriber_is_limited() {
    let keys = "new_conns_per_subscriber_per_s = 1\nexhaustion_reply = \"rst\"";
    Lab::with_wap_gw("pr", keys, |_, sock, sub| {
        // two connections, one curl after the other
        let two = sh_output(&format!(
            "ip netns exec {sub} sh -c 'for i in 1 2; do curl -sS --max-time 5 -H \"Connection: close\" http://10.33.0.1/who; echo \" $?\"; done'"
        ));
        let out = String::from_utf8_lossy(&two.stdout);
        let codes: Vec<&str> = out
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(codes, ["0", "7"], "{out}");
        let r = stats_json(sock);
        assert_eq!(drops(&r, "subscriber_rate_limit"), 1);
        assert_eq!(drops(&r, "subscriber_conn_limit"), 0);
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(curl(sub, "http://10.33.0.1/who"), "http");
    });
}
