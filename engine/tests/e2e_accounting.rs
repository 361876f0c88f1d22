//! Accounting end to end: a subscriber exchanges a known number of UDP
//! datagrams with a server through a representative address; when the flow
//! ends (UDP idle timeout) the GW's record reaches the SQLite database with
//! the device id, service, representative address and exact counts, and a
//! real IPFIX collector (`nfcapd`, read back with `nfdump`) has the same
//! record.
//!
//! Header arithmetic: every datagram carries 100 bytes of payload; the GW
//! counts IP total length, so each packet is 100 + 8 (UDP) + 20 (IPv4) = 128
//! bytes: 10 datagrams up = 10 packets / 1280 bytes, 10 echoes down the same.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn udp_exchange_lands_in_sqlite_and_ipfix_with_exact_counts() {
    if !can_netns() || !have_tools(&["nfcapd", "nfdump"]) {
        return;
    }
    let mut lab = Lab::new("pa");
    let t = lab.tag.clone();
    let sock = lab.dir.join("gw.sock");
    let db = lab.dir.join("acct.db");
    let flows = lab.dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    lab.spawn(
        "nfcapd",
        &format!("nfcapd -p {port} -b 127.0.0.1 -t 60 -w {}", flows.display()),
    );
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
[accounting]
sqlite = "{db}"
ipfix_collector = "127.0.0.1:{port}"
batch_ms = 50
[gw]
access_port = "access"
server_port = "servers"
pool = ["10.80.0.100"]
timeouts = {{ udp_s = 1 }}
[[gw.service]]
name = "chat"
id = 3
[[gw.group]]
name = "chat"
service = "chat"
members = [{{ name = "c1", ip = "10.80.0.21", port = 9000 }}]
[[gw.vip]]
ip = "10.33.0.3"
group = "chat"
[[gw.session]]
ip = "10.50.0.2"
device_id = 9015550101
services = ["chat"]
"#,
        sock = sock.display(),
        db = db.display()
    );
    lab.start_pgw("gw", &profile, &sock, &[&format!("{t}a"), &format!("{t}b")]);
    let sub = lab.ns("sub");
    let srv = lab.ns("srv");
    sh(&format!("ip link set {t}a netns {sub} && ip -n {sub} addr add 10.50.0.2/24 dev {t}a && ip -n {sub} link set {t}a up"));
    sh(&format!("ip -n {sub} route add 10.33.0.0/24 via 10.50.0.1"));
    sh(&format!("ip link set {t}b netns {srv} && ip -n {srv} addr add 10.80.0.21/24 dev {t}b && ip -n {srv} link set {t}b up"));
    let echo = lab.write(
        "echo.py",
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.80.0.21',9000))\nwhile True:\n    d,a=s.recvfrom(2048)\n    s.sendto(d,a)\n",
    );
    lab.spawn(
        "echo",
        &format!("ip netns exec {srv} python3 {}", echo.display()),
    );
    wait_for("the echo server to listen", Duration::from_secs(10), || {
        sh_ok(&format!(
            "ip netns exec {srv} ss -ulnH | grep -q 10.80.0.21:9000"
        ))
    });
    let client = lab.write(
        "client.py",
        "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.50.0.2',40001))\ns.settimeout(3)\nfor i in range(10):\n    s.sendto(bytes([65+i])*100,('10.33.0.3',5000))\n    d,a=s.recvfrom(2048)\n    assert d==bytes([65+i])*100 and a==('10.33.0.3',5000), (d,a)\nprint('ok')\n",
    );
    // The first exchange may wait for pgw to resolve the server's MAC.
    wait_for(
        "pgw to resolve the server's MAC",
        Duration::from_secs(10),
        || {
            sh_ok(&format!(
                "{} ctl --socket {} neighbors | grep -q 10.80.0.21",
                pgw_bin().display(),
                sock.display()
            ))
        },
    );
    let out = sh(&format!("ip netns exec {sub} python3 {}", client.display()));
    assert_eq!(out.trim(), "ok");

    // Idle timeout (1 s) + sweep + commit.
    let mut rows = Vec::new();
    wait_for("the SQLite row", Duration::from_secs(10), || {
        rows = pgw_engine::mgmt::acctlog::query_recent(&db, 10).unwrap_or_default();
        rows.iter().any(|r| r.subscriber_port == 40001)
    });
    let r = rows.iter().find(|r| r.subscriber_port == 40001).unwrap();
    assert_eq!(r.device_id, "9015550101");
    assert_eq!(r.service, "chat");
    assert_eq!(r.representative_ip.to_string(), "10.33.0.3");
    assert_eq!(r.representative_port, 5000);
    assert_eq!(r.real_server_ip.to_string(), "10.80.0.21");
    assert_eq!(r.real_server_port, 9000);
    assert_eq!(r.protocol, 17);
    assert_eq!((r.packets_up, r.bytes_up), (10, 1280), "{r:?}");
    assert_eq!((r.packets_down, r.bytes_down), (10, 1280), "{r:?}");
    assert!(r.proxy_accounting);

    // IPFIX: stop the collector (it writes its file on the way out) and read
    // every file it wrote: with `-t 60` it also rotates at each minute, so a
    // run that crosses one leaves the record in either file.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        lab.interrupt("nfcapd", Duration::from_secs(10)).is_some(),
        "nfcapd did not stop"
    );
    let (records, dump) = nfdump_records(&flows);
    let rec = records
        .iter()
        .find(|x| x["src_port"] == 40001)
        .unwrap_or_else(|| panic!("no record of port 40001 in {flows:?}: {dump}"));
    assert_eq!(rec["src4_addr"], "10.50.0.2");
    assert_eq!(rec["dst4_addr"], "10.33.0.3");
    assert_eq!(rec["dst4_xlt_ip"], "10.80.0.21");
    assert_eq!(rec["in_packets"], 10);
    assert_eq!(rec["in_bytes"], 1280);
    assert_eq!(rec["out_packets"], 10);
    assert_eq!(rec["out_bytes"], 1280);
    assert_eq!(
        lab.interrupt("gw", Duration::from_secs(10)),
        Some(0),
        "{}",
        lab.log("gw")
    );
}
