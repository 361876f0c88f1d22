//! The spec's fifth function end to end: an IPv6-only subscriber reaches an
//! IPv4 server group through pgw's NAT64 (RFC 6146 stateful, RFC 6052
//! well-known prefix, RFC 7915 translation). The subscriber gets its IPv6
//! prefix from RADIUS (Framed-IPv6-Prefix, RFC 3162) and its session from
//! Accounting Start; `curl -6` to `64:ff9b::10.33.0.1` downloads a file
//! from the IPv4 servers byte-identical; pgw answers neighbour discovery for
//! its own IPv6 address; the SQLite accounting row has the IPv6 subscriber,
//! the service and the connection's counts; the MSS toward the IPv6 side is
//! clamped.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn ipv6_only_subscriber_downloads_from_ipv4_servers() {
    if !can_netns() {
        return;
    }
    let mut lab = Lab::new("p6");
    let t = lab.tag.clone();
    let sock = lab.dir.join("gw.sock");
    let db = lab.dir.join("acct.db");
    let auth = 26000 + (std::process::id() % 15000) as u16;
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
ipv6 = ["2001:db8:50::1/64"]
[[port]]
name = "servers"
device = "net_tap_{t}b,iface={t}b"
[accounting]
sqlite = "{db}"
batch_ms = 50
[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.100"]
nat64 = {{ prefix = "64:ff9b::/96", mtu4 = 1500, mtu6 = 1500 }}
mss_clamp_down = 1440
[[gw.service]]
name = "wap"
id = 1
[[gw.group]]
name = "wap"
service = "wap"
members = [{{ name = "w1", ip = "10.80.0.11", port = 8080 }}, {{ name = "w2", ip = "10.80.0.12", port = 8080 }}]
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
user = "v6user"
password = "pw6"
device_id = "0906"
services = ["wap"]
[[radius.gateway]]
name = "gw1"
ranges = ["10.50.0.2-10.50.0.9"]
ipv6_prefix = "2001:db8:50::/48"
"#,
        sock = sock.display(),
        db = db.display(),
        acct = auth + 1
    );
    lab.start_pgw("gw", &profile, &sock, &[&format!("{t}a"), &format!("{t}b")]);
    let sub = lab.ns("sub");
    let srv = lab.ns("srv");
    sh(&format!(
        "ip link set {t}b netns {srv} && ip -n {srv} link set {t}b up"
    ));
    let blob = lab.dir.join("blob.bin");
    sh(&format!(
        "head -c 3145728 /dev/urandom > {}",
        blob.display()
    ));
    for (n, a) in [("w1", "10.80.0.11"), ("w2", "10.80.0.12")] {
        sh(&format!("ip -n {srv} addr add {a}/24 dev {t}b"));
        let d = lab.dir.join(n);
        std::fs::create_dir_all(&d).unwrap();
        sh(&format!("cp {} {}/blob.bin", blob.display(), d.display()));
        lab.spawn(
            n,
            &format!(
                "ip netns exec {srv} python3 -m http.server --bind {a} 8080 --directory {}",
                d.display()
            ),
        );
    }

    // RADIUS: the Accept carries the IPv6 /64 of the session.
    let rad = |kind: &str, port: u16, attrs: &str| {
        sh(&format!("printf '%s\\n' '{attrs}' | radclient -x -r 2 -t 2 127.0.0.1:{port} {kind} testing123 || true"))
    };
    let out = rad(
        "auth",
        auth,
        "User-Name=v6user,User-Password=pw6,Calling-Station-Id=0906",
    );
    assert!(
        out.contains("Access-Accept") && out.contains("Framed-IPv6-Prefix = 2001:db8:50::/64"),
        "{out}"
    );
    let out = rad("acct", auth + 1, "User-Name=v6user,Acct-Status-Type=Start,Acct-Session-Id=v6,Calling-Station-Id=0906,Framed-IP-Address=10.50.0.2");
    assert!(out.contains("Accounting-Response"), "{out}");

    // The IPv6-only subscriber: its address in that /64, nothing IPv4.
    sh(&format!(
        "ip link set {t}a netns {sub} && ip -n {sub} link set {t}a up"
    ));
    sh(&format!(
        "ip -n {sub} -6 addr add 2001:db8:50::2/64 dev {t}a nodad"
    ));
    sh(&format!(
        "ip -n {sub} -6 route add 64:ff9b::/96 via 2001:db8:50::1"
    ));
    wait_for(
        "pgw to resolve the servers",
        Duration::from_secs(10),
        || {
            let n = sh(&format!(
                "{} ctl --socket {} neighbors",
                pgw_bin().display(),
                sock.display()
            ));
            n.contains("10.80.0.11") && n.contains("10.80.0.12")
        },
    );
    lab.spawn("dump", &format!("ip netns exec {sub} tcpdump -l -nn -v -c 1 -i {t}a 'ip6 and tcp and src port 80 and ip6[53] & 2 != 0'"));
    std::thread::sleep(Duration::from_millis(700));
    let got = lab.dir.join("got.bin");
    sh(&format!("ip netns exec {sub} curl -6 -g -sS --fail --max-time 30 -o {} http://[64:ff9b::a21:1]/blob.bin", got.display()));
    assert_eq!(
        sha256(&got),
        sha256(&blob),
        "the file changed on the way through NAT64"
    );
    // NDP answered (the kernel resolved the gateway), MSS clamped toward IPv6.
    assert!(sh(&format!("ip -n {sub} -6 neigh show 2001:db8:50::1")).contains("lladdr"));
    wait_for("tcpdump", Duration::from_secs(5), || {
        !lab.is_running("dump")
    });
    assert!(lab.log("dump").contains("mss 1440"), "{}", lab.log("dump"));

    // Accounting: the row has the IPv6 subscriber, the service, the VIP.
    let mut rows = Vec::new();
    wait_for("the accounting row", Duration::from_secs(10), || {
        rows = pgw_engine::mgmt::acctlog::query_recent(&db, 10).unwrap_or_default();
        rows.iter().any(|r| r.bytes_down > 3_145_728)
    });
    let r = rows.iter().find(|r| r.bytes_down > 3_145_728).unwrap();
    assert_eq!(
        r.subscriber_ip6.map(|a| a.to_string()).as_deref(),
        Some("2001:db8:50::2"),
        "{r:?}"
    );
    assert_eq!(r.device_id, "0906");
    assert_eq!(r.service, "wap");
    assert_eq!(r.representative_ip.to_string(), "10.33.0.1");
    assert!(["10.80.0.11", "10.80.0.12"].contains(&r.real_server_ip.to_string().as_str()));
    assert!(r.packets_up > 10 && r.packets_down > 2000, "{r:?}");
    let st = stats_json(&sock);
    assert!(event(&st, "gw_nat64_flows") >= 1);
    assert_eq!(
        lab.interrupt("gw", Duration::from_secs(10)),
        Some(0),
        "{}",
        lab.log("gw")
    );
}
