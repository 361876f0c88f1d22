//! Per-subscriber connection limits (`GwConfig::max_conns_per_subscriber`,
//! `GwConfig::new_conns_per_subscriber_per_s`): the connection start over a
//! limit is refused under its reason, with the configured reply; every way
//! a connection ends gives its slot back; the rate bucket refills with the
//! stage's clock; IPv6 subscribers count by /64.

use super::*;
use crate::gw::limit::SubKey;
use crate::gw::ExhaustionReply;

/// One worker (the limit is exact), `max` open connections per subscriber.
fn max_cfg(max: u32) -> GwConfig {
    GwConfig {
        workers: 1,
        max_conns_per_subscriber: max,
        ..cfg()
    }
}

fn syn(sub: [u8; 4], sp: u16) -> Vec<u8> {
    bare_syn((sub, sp), (EXT1, 80)).build()
}

#[test]
fn syn_over_the_limit_is_refused_and_counted() {
    let mut h = H::new(max_cfg(3));
    for sp in 1..=3 {
        assert_eq!(h.run(&syn(SUB1, sp), UP, 0).0, TX_UP);
    }
    let (v, _) = h.run(&syn(SUB1, 4), UP, 0);
    assert_eq!(v, Verdict::Drop(DropReason::SubscriberConnLimit));
    h.assert_drops(&[(DropReason::SubscriberConnLimit, 1)], 1);
    assert_eq!(h.w[0].counters.new_flows, 3);
    assert_eq!(h.w[0].keys_in_use(), 3, "the refused SYN took no entry");
    assert_eq!(h.w[0].subscriber_conns(SubKey::V4(SUB1)), 3);
    // a retransmission of an admitted SYN is its connection's, not a new one
    assert_eq!(h.run(&syn(SUB1, 2), UP, 10).0, TX_UP);
    // another subscriber is not affected
    for sp in 1..=3 {
        assert_eq!(h.run(&syn(SUB2, sp), UP, 0).0, TX_UP);
    }
    // UDP and ping starts count alike
    let dns = udp((LB1, ACC_MAC), (SUB2, 9), (EXT2, 53), b"q");
    assert_eq!(
        h.up(&dns, 0).0,
        Verdict::Drop(DropReason::SubscriberConnLimit)
    );
    h.assert_drops(&[(DropReason::SubscriberConnLimit, 2)], 2);
    assert_eq!(h.w[0].counters.rst_exhausted, 0);
}

#[test]
fn every_end_of_a_connection_frees_its_slot() {
    let mut h = H::new(max_cfg(2));
    let refused = Verdict::Drop(DropReason::SubscriberConnLimit);
    let sub = SubKey::V4(SUB1);
    // FIN both ways (the connection goes on hold: its slot is free)
    fin_closed(&mut h, 1, 0);
    assert_eq!(h.w[0].subscriber_conns(sub), 0);
    assert_eq!(h.run(&syn(SUB1, 2), UP, 0).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 3), UP, 0).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 4), UP, 0).0, refused);
    // RST from the subscriber
    let rst = tcp((LB1, ACC_MAC), (SUB1, 2), (EXT1, 80), RST, 2, 0, b"").build();
    h.run(&rst, UP, 10);
    assert_eq!(h.w[0].subscriber_conns(sub), 1);
    assert_eq!(h.run(&syn(SUB1, 4), UP, 10).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 5), UP, 10).0, refused);
    // a SYN reviving a binding on hold counts as a new connection
    assert_eq!(h.run(&rst, UP, 20).0, TX_UP); // (a late RST: translated)
    h.run(
        &tcp((LB1, ACC_MAC), (SUB1, 4), (EXT1, 80), RST, 2, 0, b"").build(),
        UP,
        20,
    );
    assert_eq!(h.w[0].subscriber_conns(sub), 1);
    assert_eq!(h.run(&syn(SUB1, 2), UP, 30).0, TX_UP);
    assert_eq!(h.w[0].counters.revived, 1);
    assert_eq!(h.w[0].subscriber_conns(sub), 2);
    assert_eq!(h.run(&syn(SUB1, 5), UP, 30).0, refused);
    // idle expiry (SYN timeout 1000 ms) by the timer
    assert_eq!(h.expire(0, 1_100), 2);
    assert_eq!(h.w[0].subscriber_conns(sub), 0);
    assert_eq!(h.run(&syn(SUB1, 6), UP, 1_100).0, TX_UP);
    // lazy idle expiry: a SYN on the tuple of an idle connection ends it
    // (its slot freed) and opens a new one
    assert_eq!(h.run(&syn(SUB1, 7), UP, 1_100).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 6), UP, 2_200).0, TX_UP);
    assert_eq!(h.w[0].counters.expired, 3);
    assert_eq!(h.w[0].subscriber_conns(sub), 2, "7 idle, 6 new");
    assert_eq!(h.run(&syn(SUB1, 8), UP, 2_200).0, refused);
    assert_eq!(h.expire(0, 2_200), 1, "7");
    assert_eq!(h.w[0].subscriber_conns(sub), 1);
    // the instance stops
    assert_eq!(h.w[0].close_all(2_300, &mut h.acct), 1);
    assert_eq!(h.w[0].subscriber_conns(sub), 0);
    h.assert_drops(&[(DropReason::SubscriberConnLimit, 4)], 4);
    assert_eq!(h.w[0].open_flows(), 0);
}

#[test]
fn rate_bucket_refills_with_time() {
    let mut h = H::new(GwConfig {
        workers: 1,
        new_conns_per_subscriber_per_s: 2,
        ..cfg()
    });
    let refused = Verdict::Drop(DropReason::SubscriberRateLimit);
    // a burst of 2, then one per 500 ms
    assert_eq!(h.run(&syn(SUB1, 1), UP, 0).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 2), UP, 0).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 3), UP, 0).0, refused);
    assert_eq!(h.run(&syn(SUB2, 1), UP, 0).0, TX_UP, "per subscriber");
    // closing connections gives no token back
    let rst = tcp((LB1, ACC_MAC), (SUB1, 1), (EXT1, 80), RST, 2, 0, b"").build();
    h.run(&rst, UP, 100);
    assert_eq!(h.run(&syn(SUB1, 3), UP, 499).0, refused);
    assert_eq!(h.run(&syn(SUB1, 3), UP, 500).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 4), UP, 500).0, refused);
    // long idle: the bucket holds no more than the burst
    assert_eq!(h.run(&syn(SUB1, 4), UP, 60_000).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 5), UP, 60_000).0, TX_UP);
    assert_eq!(h.run(&syn(SUB1, 6), UP, 60_000).0, refused);
    h.assert_drops(&[(DropReason::SubscriberRateLimit, 4)], 4);
}

#[test]
fn ipv6_subscribers_count_by_their_64() {
    let mut h = H::new(GwConfig {
        workers: 1,
        nat64: Some(Nat64Cfg::default()),
        max_conns_per_subscriber: 2,
        ..cfg()
    });
    let a = v6("2001:db8:0:1::1");
    let b = v6("2001:db8:0:1:8a2e:370:7334:9"); // same /64
    let other = v6("2001:db8:0:2::2");
    let dst = crate::xlat::Prefix::WELL_KNOWN.embed(EXT1);
    let syn6 = |src, sp| tcp6((LB1, ACC_MAC), (src, sp), (dst, 80), SYN, 1, 0, b"").build();
    assert_eq!(h.run(&syn6(a, 1), UP, 0).0, TX_UP);
    assert_eq!(h.run(&syn6(b, 2), UP, 0).0, TX_UP);
    assert_eq!(
        h.run(&syn6(b, 3), UP, 0).0,
        Verdict::Drop(DropReason::SubscriberConnLimit)
    );
    assert_eq!(h.w[0].subscriber_conns(SubKey::v6(&a)), 2);
    assert_eq!(h.run(&syn6(other, 1), UP, 0).0, TX_UP);
    // an IPv4 subscriber is another subscriber
    assert_eq!(h.run(&syn(SUB1, 1), UP, 0).0, TX_UP);
    // a RST from the other address of the /64 frees a slot of both
    let rst6 = tcp6((LB1, ACC_MAC), (b, 2), (dst, 80), RST, 2, 0, b"").build();
    h.run(&rst6, UP, 10);
    assert_eq!(h.w[0].subscriber_conns(SubKey::v6(&a)), 1);
    assert_eq!(h.run(&syn6(a, 3), UP, 10).0, TX_UP);
    h.assert_drops(&[(DropReason::SubscriberConnLimit, 1)], 1);
}

#[test]
fn refused_syn_gets_the_rst_when_configured() {
    let mut h = H::new(GwConfig {
        exhaustion_reply: ExhaustionReply::Rst,
        max_conns_per_subscriber: 1,
        ..small_cfg()
    });
    assert_eq!(h.run(&syn(SUB1, 1), UP, 0).0, TX_UP);
    let (v, out) = h.run(&syn(SUB1, 5), UP, 0);
    assert_eq!(v, Verdict::Tx { port: UP });
    assert_eq!(out, super::exhaust::literal_rst());
    assert!(checksums_ok(&out));
    // counted under the reason (not as exhaustion), no entry taken
    h.assert_drops(&[(DropReason::SubscriberConnLimit, 1)], 1);
    assert_eq!(h.w[0].counters.rst_exhausted, 0);
    assert_eq!(h.w[0].keys_in_use(), 1);
    // UDP has no RST: dropped
    let dns = udp((LB1, ACC_MAC), (SUB1, 9), (EXT2, 53), b"q");
    assert_eq!(
        h.up(&dns, 0).0,
        Verdict::Drop(DropReason::SubscriberConnLimit)
    );
    h.assert_drops(&[(DropReason::SubscriberConnLimit, 2)], 2);
}

#[test]
fn each_worker_enforces_its_share() {
    // 3 over 2 workers: 2 each
    let mut h = H::new(GwConfig {
        max_conns_per_subscriber: 3,
        ..cfg()
    });
    for w in 0..2 {
        assert_eq!(h.run_on(w, &syn(SUB1, 1), UP, 0).0, TX_UP);
        assert_eq!(h.run_on(w, &syn(SUB1, 2), UP, 0).0, TX_UP);
        assert_eq!(
            h.run_on(w, &syn(SUB1, 3), UP, 0).0,
            Verdict::Drop(DropReason::SubscriberConnLimit)
        );
    }
}

#[test]
fn no_limit_no_table() {
    let h = H::new(GwConfig {
        workers: 1,
        ..cfg()
    });
    let with = H::new(max_cfg(1));
    let cap = cfg().max_flows_per_worker as usize;
    assert_eq!(
        with.w[0].table_bytes() - h.w[0].table_bytes(),
        cap.next_power_of_two() * 32,
        "32 bytes per slot, next_pow2(max_flows_per_worker) slots"
    );
}
