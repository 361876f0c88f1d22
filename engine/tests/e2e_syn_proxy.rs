//! The GW's SYN proxy (`gw.syn_proxy`) between real TCP stacks.
//!
//! * `on`: Linux's curl connects through the cookie handshake (the GW
//!   answers the SYN, the ACK opens the server side) and downloads 4 MiB
//!   intact; the GW tells the subscriber Window Scale 5 while the server
//!   scales by 7, so every down window is converted, and every segment's
//!   sequence numbers are translated both ways.
//! * `auto`: eight hping3 flood the VIP with SYNs from eight spoofed
//!   subscriber addresses (10.50.0.10-17: sessions, on no host) while curl
//!   from 10.50.0.2 keeps being served; past the half-open threshold the SYNs
//!   get cookies, so the flood leaves the table nearly empty (without the
//!   proxy its 90 000 SYNs fill the 4 096 entries and curl is refused as
//!   `flow_table_full`).
//! * A server whose stack drops every SYN: curl's connection is
//!   established with the GW at once, its request waits, and at the SYN
//!   timeout (3 s here) its next retransmission is answered by a RST, so
//!   curl fails with "connection reset" within seconds instead of waiting
//!   out its own timeout.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn curl_downloads_through_the_cookie_handshake() {
    let keys = "syn_proxy = \"on\"\nsyn_proxy_wscale = 5";
    Lab::with_wap_gw("sp", keys, |lab, sock, sub| {
        let www = lab.site("http");
        let blob = random_file(&www, "blob.bin", 4194304);
        assert_eq!(curl(sub, "http://10.33.0.1/who"), "http");
        download_intact(lab, sub, "http://10.33.0.1/blob.bin", &blob, 30);
        let r = stats_json(sock);
        assert_eq!(event(&r, "gw_syncookies_sent"), 2, "{r}");
        assert_eq!(event(&r, "gw_syncookies_valid"), 2, "{r}");
        assert_eq!(event(&r, "gw_new_flows"), 2);
        assert_eq!(drops(&r, "syncookie_invalid"), 0);
    });
}

#[test]
fn a_syn_flood_leaves_the_table_free_and_curl_served() {
    // wap at a second VIP address too: the threshold counts per address
    let keys = "syn_proxy = \"auto\"\nsyn_proxy_half_open = 50\nmax_flows_per_worker = 4096\n\
                [[gw.vip]]\nip = \"10.33.0.2\"\nport = 80\ngroup = \"wap\"";
    let spoofed: Vec<String> = (10..18).map(|i| format!("10.50.0.{i}")).collect();
    let mut subs = vec![("10.50.0.2", 9015550101)];
    subs.extend(
        spoofed
            .iter()
            .zip(9015550110u64..)
            .map(|(a, d)| (a.as_str(), d)),
    );
    Lab::with_wap_gw_of("sf", &["hping3"], keys, &subs, |lab, sock, sub, _| {
        assert_eq!(curl(sub, "http://10.33.0.1/who"), "http");
        assert_eq!(
            event(&stats_json(sock), "gw_syncookies_sent"),
            0,
            "below the threshold"
        );

        // 90 000 SYNs, 11 250 from each spoofed address (hping3 counts
        // the source port up), all at once: 25 000 SYNs/s for 3.6 s at
        // hping3's nominal rate (3 750 each, over in 1.2 s, left time for
        // only 2 curls on a loaded machine).
        let floods: Vec<String> = (0..spoofed.len()).map(|k| format!("flood{k}")).collect();
        for (f, a) in floods.iter().zip(&spoofed) {
            lab.spawn(
                f,
                &format!(
                    "ip netns exec {sub} hping3 -q -S -p 80 -i u320 -c 11250 -a {a} 10.33.0.1"
                ),
            );
        }
        wait_for("the flood's first cookies", Duration::from_secs(10), || {
            event(&stats_json(sock), "gw_syncookies_sent") > 0
        });
        // the flood is to 10.33.0.1 alone: a SYN to 10.33.0.2 opens its
        // connection at once, no cookie checked
        let valid = event(&stats_json(sock), "gw_syncookies_valid");
        assert_eq!(curl(sub, "http://10.33.0.2/who"), "http");
        assert_eq!(
            event(&stats_json(sock), "gw_syncookies_valid"),
            valid,
            "the other VIP address was proxied"
        );
        let mut served = 0;
        let mut most_entries = 0;
        let t = Instant::now();
        while floods.iter().any(|f| lab.is_running(f)) && t.elapsed() < Duration::from_secs(60) {
            assert_eq!(
                curl(sub, "http://10.33.0.1/who"),
                "http",
                "served during the flood"
            );
            served += 1;
            most_entries = most_entries.max(event(&stats_json(sock), "gw_entries_in_use"));
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(served >= 3, "only {served} requests while the flood ran");
        let r = stats_json(sock);
        let sent = event(&r, "gw_syncookies_sent");
        assert!(sent >= 75_000, "{sent} cookies for 90 000 SYNs: {r}");
        assert!(
            most_entries < 1_000,
            "{most_entries} entries in use during the flood: {r}"
        );
        assert_eq!(drops(&r, "flow_table_full"), 0);
        assert!(
            event(&r, "gw_syncookies_valid") >= 1,
            "curl went through the proxy: {r}"
        );
    });
}

#[test]
fn a_silent_server_ends_in_a_rst_to_the_subscriber() {
    let keys = "syn_proxy = \"on\"\ntimeouts = { syn_s = 3 }";
    let subs = [("10.50.0.2", 9015550101)];
    Lab::with_wap_gw_of("ss", &["nft"], keys, &subs, |_, sock, sub, srv| {
        assert_eq!(curl(sub, "http://10.33.0.1/who"), "http");
        // the server's stack drops every SYN from now on
        sh(&format!(
            "ip netns exec {srv} nft 'add table inet silent; \
             add chain inet silent in {{ type filter hook input priority 0; }}; \
             add rule inet silent in tcp flags & (syn | ack) == syn drop'"
        ));
        let t = Instant::now();
        let out = sh_output(&format!(
            "ip netns exec {sub} curl -sS --max-time 30 -o /dev/null http://10.33.0.1/who"
        ));
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        // 56: CURLE_RECV_ERROR ("Connection reset by peer")
        assert_eq!(out.status.code(), Some(56), "curl: {err}");
        assert!(
            took < Duration::from_secs(15),
            "the RST came {took:?} after the request"
        );
        let r = stats_json(sock);
        assert_eq!(event(&r, "gw_synproxy_server_silent"), 1, "{r}");
        assert!(event(&r, "gw_synproxy_resyn") >= 1, "{r}");
    });
}
