//! The claim of the spec between real TCP stacks: two LB instances (two
//! entry points) hold the same table, so a subscriber that moves from one to
//! the other in the middle of a TCP connection keeps reaching the same GW,
//! and the connection survives. Three `pgw` processes: LB1 and LB2 (role
//! `lb`), one GW (role `gw`); their LAN ports are bridged in a `lan`
//! namespace. The subscriber namespace has a link to each LB; mid-download
//! its route is switched from LB1 to LB2. The file arrives byte-identical,
//! and both LBs' counters show they carried the subscriber's packets.
//!
//! Then the LB table's substitute: GW "gw1" is marked down on both LBs
//! (`pgw set gateway gw1 down`); with no substitute up the LB drops and
//! counts `lb_all_down`; marked up again, traffic resumes.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GW_MAC: &str = "02:00:00:00:0a:01";

/// LB `n`'s LAN port MAC: what the GW sees on the packets it forwards.
fn lb_lan_mac(n: u8) -> String {
    format!("02:00:00:00:1b:0{n}")
}

fn lb_profile(tag: &str, n: u8, sock: &std::path::Path) -> Profile {
    lb_entry(tag, n, sock)
        .mac(&lb_lan_mac(n))
        .with(&lb_gateway("gw1", GW_MAC, None))
        .with(&lb_range("range", "10.50.0.0", "10.50.0.255", &["gw1"]))
}

/// The sockets and namespaces of [`mobility_lab`].
struct Mob {
    sub: String,
    srv: String,
    s1: std::path::PathBuf,
    s2: std::path::PathBuf,
    sg: std::path::PathBuf,
}

/// LB1, LB2 and a GW (service `wap` at 10.33.0.1, member w1 on
/// 10.80.0.11:8080 serving HTTP, a session of 10.50.0.2), the LBs' lan taps
/// and the GW's access tap bridged in a `lan` namespace, the subscriber
/// 10.50.0.2 (on its `lo`) linked to both LBs and routed through LB1; a
/// first answer through LB1 and the GW.
fn mobility_lab(lab: &mut Lab) -> Mob {
    mobility_lab_with(
        lab,
        &gw_session("10.50.0.2", 1001, &["wap"]),
        "",
        Engine::default(),
        |_| {},
    )
}

/// [`mobility_lab`] with the GW's session source `gw_sessions` (its static
/// session, or a `[control]` listener), `lb1_extra` sections for LB1, the
/// GW's `engine` (its workers), and `before_first` run once every instance
/// is up, before the first answer.
fn mobility_lab_with(
    lab: &mut Lab,
    gw_sessions: &str,
    lb1_extra: &str,
    engine: Engine,
    before_first: impl FnOnce(&Lab),
) -> Mob {
    let t = lab.tag.clone();
    let sub = lab.ns("sub");
    let lan = lab.ns("lan");
    let srv = lab.ns("srv");
    let s1 = lab.dir.join("lb1.sock");
    let s2 = lab.dir.join("lb2.sock");
    let sg = lab.dir.join("gw.sock");
    lab.run_pgw("lb1", &lb_profile(&t, 1, &s1).with(lb1_extra));
    lab.run_pgw("lb2", &lb_profile(&t, 2, &s2));
    let gw = Profile::new(&format!("{t}gw"), "gw", &sg)
        .tap("access", &format!("{t}ga"))
        .mac(GW_MAC)
        .tap("servers", &format!("{t}gs"))
        .engine(engine)
        .with(&gw_section(""))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]))
        .with(gw_sessions);
    lab.run_pgw("gw", &gw);

    // LAN: the LBs' lan taps and the GW's access tap on one bridge.
    lab.bridge(&lan, "br0", None);
    for (i, dev) in [format!("{t}l1"), format!("{t}l2"), format!("{t}ga")]
        .iter()
        .enumerate()
    {
        lab.enslave(dev, &lan, "br0", &format!("02:00:00:00:ff:0{i}"));
    }
    // Subscriber: its address on lo, a link to each LB.
    sh(&format!("ip -n {sub} addr add 10.50.0.2/32 dev lo"));
    lab.plug_subscriber(1, &sub);
    lab.plug_subscriber(2, &sub);
    lab.route_from(&sub, "10.33.0.0/24", "10.60.1.1", "10.50.0.2");
    // Server.
    lab.move_into(&format!("{t}gs"), &srv, &["10.80.0.11/24"]);
    // (stress-e2e saw a sendto refused with ENETUNREACH in either
    // namespace, a route gone; these logs say when and how, on a failure)
    for ns in [&sub, &srv] {
        lab.spawn(
            &format!("monitor-{ns}"),
            &format!("ip -ts -n {ns} monitor link address route"),
        );
    }
    lab.serve_http("http", &srv, "10.80.0.11");
    before_first(lab);
    wait_for(
        "a first answer through LB1 and the GW",
        Duration::from_secs(20),
        || curl_ok(&sub, "http://10.33.0.1/"),
    );
    Mob {
        sub,
        srv,
        s1,
        s2,
        sg,
    }
}

#[test]
fn subscriber_moves_between_lbs_mid_connection() {
    let Some(mut lab) = Lab::netns("pm", &[]) else {
        return;
    };
    let Mob {
        sub, s1, s2, sg, ..
    } = mobility_lab(&mut lab);
    let blob = random_file(&lab.site("http"), "blob.bin", 12582912);

    // A long download (rate-limited so it lasts ~6 s). The subscriber's
    // receive buffer is capped at RCVBUF_MAX: the server can never be more
    // than one window ahead of what curl has read, so whatever is left when
    // the subscriber moves must still cross the network afterwards, and its
    // ACKs must take the new entry point. (Uncapped, Linux grows the window
    // to 6 MiB and the rest of the file may already sit in the subscriber's
    // socket buffer when the route changes: then no ACK needs to follow.)
    const FILE: u64 = 12_582_912;
    const RCVBUF_MAX: u64 = 131_072;
    sh(&format!(
        "ip netns exec {sub} sysctl -q -w net.ipv4.tcp_rmem='4096 65536 {RCVBUF_MAX}'"
    ));
    let got = lab.dir.join("got.bin");
    lab.spawn(
        "curl",
        &format!("ip netns exec {sub} curl -sS --fail --max-time 60 --limit-rate 2M -o {} http://10.33.0.1/blob.bin", got.display()),
    );
    // Move once 2 MiB have arrived (not after a fixed sleep), at once:
    // nothing between the two reads but the route change, so that on a
    // loaded machine the download is still running when the route moves.
    // The change is made by an `ip -batch` started beforehand and waiting
    // on its input (stress-e2e saw a fork and exec of `ip` at that moment
    // take over 5 s: the whole file was read before the route moved).
    let mut mover = Command::new("ip")
        .args(["-n", &sub, "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("ip -batch");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    wait_for("2 MiB through LB1", Duration::from_secs(20), || {
        size(&got) >= 2 << 20
    });
    let read_before = size(&got);
    {
        let mut cmd = mover.stdin.take().expect("its input");
        writeln!(
            cmd,
            "route replace 10.33.0.0/24 via 10.60.2.1 src 10.50.0.2"
        )
        .unwrap();
    }
    assert!(mover.wait().unwrap().success(), "ip -batch failed");
    let read_after = size(&got);
    wait_for("download to finish", Duration::from_secs(60), || {
        !lab.is_running("curl")
    });
    assert!(
        lab.log("curl").trim().is_empty(),
        "curl: {}",
        lab.log("curl")
    );
    assert_eq!(sha256(&got), sha256(&blob), "the file changed on the way");

    let r1 = stats_json(&s1);
    let r2 = stats_json(&s2);
    let rg = stats_json(&sg);
    // After the move no packet of the subscriber goes through LB1: its
    // count now is its count before the move.
    let (up1, up2) = (event(&r1, "lb_to_primary"), event(&r2, "lb_to_primary"));
    // The server never has more than one window (<= RCVBUF_MAX) beyond the
    // subscriber's last ACK, so successive ACK numbers differ by at most
    // RCVBUF_MAX, whatever the ACK timing or coalescing. Before the move the
    // ACK number reached at least read_before - RCVBUF_MAX; at the move it
    // was at most read_after + RCVBUF_MAX (read, plus a full buffer), and the
    // server needs one of at least FILE - RCVBUF_MAX to send the last byte.
    let floor1 = read_before.saturating_sub(RCVBUF_MAX) / RCVBUF_MAX;
    let floor2 = FILE.saturating_sub(read_after + 2 * RCVBUF_MAX) / RCVBUF_MAX;
    eprintln!(
        "LB1 up {up1} (floor {floor1}), LB2 up {up2} (floor {floor2}), read at the move {read_before}..{read_after} B, GW lb moves {}",
        event(&rg, "gw_lb_moves")
    );
    assert!(
        floor2 >= 40,
        "the move came too late: {read_after} B of {FILE} already read"
    );
    assert!(
        up1 >= floor1,
        "LB1 carried only {up1} up packets before the move (at least {floor1} ACKs were needed)"
    );
    assert!(
        up2 >= floor2,
        "LB2 carried only {up2} up packets after the move (at least {floor2} ACKs were needed)"
    );
    assert!(
        event(&r2, "lb_down_path") > 100,
        "down packets did not follow to LB2"
    );
    assert!(
        event(&rg, "gw_lb_moves") >= 1,
        "the GW did not see the subscriber move"
    );
    // Every connection is either still open or was closed exactly once.
    let closed =
        event(&rg, "gw_closed_fin") + event(&rg, "gw_closed_rst") + event(&rg, "gw_expired");
    assert_eq!(
        event(&rg, "gw_new_flows"),
        closed + event(&rg, "gw_open_flows"),
        "{rg}"
    );

    // GW down on the LB (no substitute configured): dropped and counted.
    pgw_at(&s2, "set", "gateway gw1 down");
    assert!(!sh_ok(&format!(
        "ip netns exec {sub} curl -s --max-time 2 -o /dev/null http://10.33.0.1/"
    )));
    assert!(drops(&stats_json(&s2), "lb_all_down") > 0);
    pgw_at(&s2, "set", "gateway gw1 up");
    assert!(sh_ok(&format!(
        "ip netns exec {sub} curl -s --fail --max-time 5 -o /dev/null http://10.33.0.1/"
    )));
    for l in ["lb1", "lb2", "gw"] {
        lab.stop_pgw(l);
    }
}

/// Waits for one datagram from each of `STREAMS` peers (UDP
/// 10.80.0.11:8080: the VIP's member), then streams numbered datagrams to
/// each, a round every 4 ms, until the file `STOP` exists; then `TAIL`
/// rounds more (2 s), and prints "sent N" (the rounds sent in all). A
/// datagram the kernel refuses is printed, and the stream goes on.
const STREAMER: &str = r#"
import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.80.0.11", 8080))
peers = []
while len(peers) < STREAMS:
    _, peer = s.recvfrom(100)
    if peer not in peers:
        peers.append(peer)
i, stop_at = 0, None
while i < 100000:
    for peer in peers:
        try:
            s.sendto(i.to_bytes(4, "big") + b"x" * 100, peer)
        except OSError as e:
            print("sendto", i, peer, e, flush=True)
    i += 1
    time.sleep(0.004)
    if stop_at is None and os.path.exists(STOP):
        stop_at = i + TAIL
    if stop_at is not None and i >= stop_at:
        break
print("sent", i, flush=True)
"#;

/// Asks the VIP for `STREAMS` streams, from as many sockets (one datagram
/// up each, through the current route, again every second until the first
/// datagram comes), then only receives: "got N" every 100 datagrams of
/// the first; after 3 s of silence once the file `STOP` exists (the GW
/// was told of the move: before that a silence is the move itself, and
/// under stress-e2e telling the GW took over 3 s) it writes the numbers
/// each stream got to the file `SEEN` (JSON, one list per stream).
const RECEIVER: &str = r#"
import json, select, socket, time
socks = []
for k in range(STREAMS):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.50.0.2", 0))
    socks.append(s)
seen = [set() for _ in socks]
asked = 0
while True:
    if not any(seen) and time.time() - asked > 1:
        for s in socks:
            try:
                s.sendto(b"go", ("10.33.0.1", 80))
            except OSError as e:
                print("sendto:", e, flush=True)
        asked = time.time()
    ready, _, _ = select.select(socks, [], [], 3)
    if not ready:
        if any(seen) and os.path.exists(STOP):
            break
        continue
    for s in ready:
        d, _ = s.recvfrom(2048)
        k = socks.index(s)
        seen[k].add(int.from_bytes(d[:4], "big"))
        if k == 0 and len(seen[0]) % 100 == 0:
            print("got", len(seen[0]), flush=True)
with open(SEEN + ".tmp", "w") as f:
    json.dump([sorted(x) for x in seen], f)
os.rename(SEEN + ".tmp", SEEN)
"#;

/// The stream's tail: the datagrams sent in the 2 s after the GW was told
/// of the move, which must all come down through the new entry point.
const TAIL: u64 = 500;

/// The streamer's and the receiver's scripts for `streams` streams,
/// written into the lab; the stop file and the receiver's result file.
struct StreamFiles {
    streamer: std::path::PathBuf,
    receiver: std::path::PathBuf,
    stop: std::path::PathBuf,
    seen: std::path::PathBuf,
}

fn stream_scripts(lab: &Lab, streams: usize) -> StreamFiles {
    let stop = lab.dir.join("stream.stop");
    let seen = lab.dir.join("stream.seen");
    let head = format!(
        "TAIL = {TAIL}\nSTREAMS = {streams}\nSTOP = {:?}\nSEEN = {:?}\n",
        stop.display().to_string(),
        seen.display().to_string()
    );
    StreamFiles {
        streamer: lab.write("streamer.py", &format!("{head}{STREAMER}")),
        receiver: lab.write("receiver.py", &format!("import os\n{head}{RECEIVER}")),
        stop,
        seen,
    }
}

/// (total, tail) of each stream: the numbers it got, and those of the last
/// [`TAIL`] of the `sent` rounds.
fn stream_counts(seen: &[Vec<u64>], sent: u64) -> Vec<(u64, u64)> {
    seen.iter()
        .map(|got| {
            let tail = got.iter().filter(|i| **i + TAIL >= sent).count();
            (got.len() as u64, tail as u64)
        })
        .collect()
}

/// A connection that only carries server → subscriber traffic follows its
/// subscriber to the new entry point: a downstream UDP stream, the
/// subscriber moves to LB2 and its link to LB1 goes down, one connection of
/// the subscriber through LB2 (curl) re-points the stream on the GW; the
/// datagrams lost are those of the moment between the link going down and
/// that connection (without the re-point, every datagram after the move
/// would go to LB1 and be lost).
#[test]
fn a_downstream_only_udp_stream_follows_the_subscriber() {
    let Some(mut lab) = Lab::netns("pu", &["python3", "curl"]) else {
        return;
    };
    let Mob {
        sub, srv, s2, sg, ..
    } = mobility_lab(&mut lab);
    let run = stream_across_move(&mut lab, &sub, &srv, &s2, &sg, 1, || {
        // An up packet through LB2 (curl panics unless it is answered).
        curl(&sub, "http://10.33.0.1/");
    });
    assert!(event(&run.gw, "gw_lb_repointed") >= 1, "{}", run.gw);
    for l in ["lb1", "lb2", "gw"] {
        lab.stop_pgw(l);
    }
}

/// Many connections of one subscriber on a GW of two workers: 16
/// downstream-only UDP streams at once (their keys spread over both
/// workers), the subscriber moves to LB2 and its link to LB1 goes down,
/// one connection of it through LB2 (curl, on whichever worker owns its
/// key) re-points every one of the 16 on both workers: each stream's tail
/// comes down through LB2.
#[test]
fn many_flows_of_one_subscriber_follow_it_on_a_gw_of_two_workers() {
    let Some(mut lab) = Lab::netns("pw", &["python3", "curl"]) else {
        return;
    };
    let two = Engine {
        workers: vec![0, 1],
        mbufs: 16383,
        ..Engine::default()
    };
    let Mob {
        sub, srv, s2, sg, ..
    } = mobility_lab_with(
        &mut lab,
        &gw_session("10.50.0.2", 1001, &["wap"]),
        "",
        two,
        |_| {},
    );
    let run = stream_across_move(&mut lab, &sub, &srv, &s2, &sg, 16, || {
        curl(&sub, "http://10.33.0.1/");
    });
    let per_worker = worker_events(&run.gw, "gw_new_flows");
    assert!(
        per_worker.len() == 2 && per_worker.iter().all(|n| *n > 1),
        "connections per worker {per_worker:?}: the streams did not spread over both"
    );
    assert!(event(&run.gw, "gw_lb_repointed") >= 16, "{}", run.gw);
    for l in ["lb1", "lb2", "gw"] {
        lab.stop_pgw(l);
    }
}

/// What the GW did across a move of [`stream_across_move`]: its stats.
struct StreamRun {
    gw: serde_json::Value,
}

/// `streams` downstream-only streams across a move: the streamer in `srv`,
/// the receiver in `sub` asking through LB1; after 200 datagrams of the
/// first the subscriber is routed through LB2 and its link to LB1 goes
/// down, then `tell` (what tells the GW). Asserts that each stream's tail
/// came down through LB2 (LB2's control socket `s2`); returns the GW's
/// (`sg`) stats.
fn stream_across_move(
    lab: &mut Lab,
    sub: &str,
    srv: &str,
    s2: &std::path::Path,
    sg: &std::path::Path,
    streams: usize,
    tell: impl FnOnce(),
) -> StreamRun {
    let f = stream_scripts(lab, streams);
    lab.spawn(
        "streamer",
        &format!("ip netns exec {srv} python3 {}", f.streamer.display()),
    );
    lab.wait_listen(srv, "udp", "10.80.0.11:8080");
    lab.spawn(
        "receiver",
        &format!("ip netns exec {sub} python3 {}", f.receiver.display()),
    );
    let start = Instant::now();
    while !lab.log("receiver").contains("got 200") {
        // (stress-e2e once saw the receiver's first datagram refused with
        // ENETUNREACH: what the subscriber's side looked like then)
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no 200 datagrams through LB1 in 10 s; in {sub}:\n{}",
            String::from_utf8_lossy(
                &sh_output(&format!(
                    "ip -n {sub} -br link; ip -n {sub} -br addr; ip -n {sub} route; ip -n {sub} neigh"
                ))
                .stdout
            )
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let down2 = event(&stats_json(s2), "lb_down_path");
    sh(&format!(
        "ip -n {sub} route replace 10.33.0.0/24 via 10.60.2.1 src 10.50.0.2"
    ));
    sh(&format!("ip -n {sub} link set {}a1 down", lab.tag));
    tell();
    // The GW was told: the stream's last 2 s (its tail) from now on.
    std::fs::write(&f.stop, "").unwrap();
    // (2 s of tail and 3 s of silence; on a loaded machine the streamer's
    // 4-ms sleeps stretch: stress-e2e saw a stream take 2.5 times as long)
    wait_for("the end of the stream", Duration::from_secs(60), || {
        !lab.is_running("streamer") && !lab.is_running("receiver")
    });
    let sent: u64 = lab
        .log("streamer")
        .lines()
        .find_map(|l| l.strip_prefix("sent "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("streamer: {}", lab.log("streamer")));
    let seen: Vec<Vec<u64>> =
        serde_json::from_str(&std::fs::read_to_string(&f.seen).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; receiver: {}",
                f.seen.display(),
                lab.log("receiver")
            )
        }))
        .unwrap();
    let log = lab.log("receiver");
    let counts = stream_counts(&seen, sent);
    let gw = stats_json(sg);
    let via2 = event(&stats_json(s2), "lb_down_path") - down2;
    eprintln!(
        "received (total, of the last {TAIL}) of {sent} per stream: {counts:?}; {via2} down through LB2; GW lb_repointed {}, lb_moves {}",
        event(&gw, "gw_lb_repointed"),
        event(&gw, "gw_lb_moves")
    );
    let n = streams as u64;
    assert!(
        counts.iter().all(|(_, tail)| *tail >= TAIL * 9 / 10) && via2 >= n * TAIL * 9 / 10,
        "the streams did not follow to LB2: (total, tail) per stream {counts:?}, {via2} came down through LB2: {log}"
    );
    StreamRun { gw }
}

/// The management side re-points a subscriber RADIUS reports at another
/// NAS: LB1 runs the RADIUS server and session manager and sends the GW its
/// table over the control protocol; `[[radius.nas]]` maps NAS 10.255.0.1 to
/// LB1's LAN MAC and 10.255.0.2 to LB2's. A downstream-only UDP stream (one
/// datagram up, then only server → subscriber) runs through LB1; the
/// subscriber's route moves to LB2 and its link to LB1 goes down, and no
/// packet of it goes up again: only `radclient`'s Interim-Update from NAS
/// 10.255.0.2 tells the GW. The rest of the stream arrives through LB2, the
/// GW re-pointed the connection, and saw no move in the data path.
#[test]
fn a_radius_report_from_the_new_nas_moves_a_downstream_only_stream() {
    let Some(mut lab) = Lab::netns("pn", &["python3", "curl", "radclient"]) else {
        return;
    };
    let auth = radius_port(7);
    let ctl = auth + 2;
    let secret = "mobility-control";
    let lb1_radius = format!(
        "{}{}[[radius.service]]\nname = \"wap\"\nid = 1\n\
         [[radius.gateway]]\nname = \"gw1\"\nranges = [\"10.50.0.2-10.50.0.9\"]\n\
         control = \"127.0.0.1:{ctl}\"\n\
         [[radius.nas]]\naddress = \"10.255.0.1\"\nentry_mac = \"{}\"\n\
         [[radius.nas]]\naddress = \"10.255.0.2\"\nentry_mac = \"{}\"\n",
        radius_head(
            auth,
            &format!("control_secret = \"{secret}\"\ncontrol_resync_s = 1")
        ),
        radius_user("alice", "wonderland", "09011112222", &["wap"]),
        lb_lan_mac(1),
        lb_lan_mac(2),
    );
    let gw_control = format!(
        "[control]\nlisten = \"127.0.0.1:{ctl}\"\nsecret = \"{secret}\"\ngateway = \"gw1\"\n"
    );
    let acct = |status: &str, nas: &str| {
        let (ok, out) = radclient(
            3,
            auth + 1,
            "acct",
            "testing123",
            &format!(
                "User-Name=alice,Acct-Status-Type={status},Acct-Session-Id=m1,\
                 Calling-Station-Id=09011112222,Framed-IP-Address=10.50.0.2,NAS-IP-Address={nas}"
            ),
        );
        assert!(ok, "radclient {status} from NAS {nas}: {out}");
    };
    let Mob {
        sub,
        srv,
        s1,
        s2,
        sg,
    } = mobility_lab_with(
        &mut lab,
        &gw_control,
        &lb1_radius,
        Engine::default(),
        |_| acct("Start", "10.255.0.1"),
    );
    let moves_before = event(&stats_json(&sg), "gw_lb_moves");
    // No packet up after the move: only the new NAS's report.
    let run = stream_across_move(&mut lab, &sub, &srv, &s2, &sg, 1, || {
        acct("Interim-Update", "10.255.0.2")
    });
    let sessions = pgw_json(&s1, "sessions");
    assert_eq!(sessions["nas_moves"], 1, "{sessions}");
    assert_eq!(sessions["sessions"][0]["nas"], "10.255.0.2", "{sessions}");
    assert_eq!(
        sessions["sessions"][0]["entry_mac"],
        lb_lan_mac(2),
        "{sessions}"
    );
    assert!(event(&run.gw, "gw_lb_repointed") >= 1, "{}", run.gw);
    assert_eq!(
        event(&run.gw, "gw_lb_moves"),
        moves_before,
        "a packet of the subscriber went up after the move: the data path, not RADIUS, re-pointed it"
    );
    for l in ["lb1", "lb2", "gw"] {
        lab.stop_pgw(l);
    }
}
