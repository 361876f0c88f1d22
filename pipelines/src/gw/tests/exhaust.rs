//! The reply to a connection start refused for exhaustion
//! (`GwConfig::exhaustion_reply`): dropped and counted under its reason
//! (the default), or a TCP SYN answered by a RST built in place and counted
//! as `rst_exhausted`; other protocols are dropped either way.

use super::*;
use crate::gw::ExhaustionReply;

fn rst_cfg() -> GwConfig {
    GwConfig {
        exhaustion_reply: ExhaustionReply::Rst,
        ..small_cfg()
    }
}

/// The 4 keys of `small_cfg` taken for EXT1:80 by subscriber ports 1..=4.
fn take_all_keys(h: &mut H) {
    for sp in 1..=4 {
        let (v, _) = h.up(&bare_syn((SUB1, sp), (EXT1, 80)), 0);
        assert_eq!(v, TX_UP);
    }
}

/// The RST answering SUB1:5's bare SYN (seq 1) to EXT1:80, byte for byte:
/// from EXT1:80 back to the LB's MAC, seq 0, ack 2, RST|ACK, window 0,
/// TTL 64, DF, id 0; checksums by the independent RFC 1071 sum; zero-padded
/// to the Ethernet minimum.
pub(super) fn literal_rst() -> Vec<u8> {
    #[rustfmt::skip]
    let mut f: Vec<u8> = vec![
        0x02, 0x1b, 0, 0, 0, 0x01, 0x02, 0xac, 0, 0, 0, 0x01, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
        198, 51, 100, 8, 10, 0, 0, 1,
        0x00, 0x50, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 2,
        0x50, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0, 0, 0, 0, 0, 0,
    ];
    let ip = rfc1071(&[&f[14..34]]);
    f[24..26].copy_from_slice(&ip.to_be_bytes());
    let pseudo = [198, 51, 100, 8, 10, 0, 0, 1, 0, 6, 0, 20];
    let tcp = rfc1071(&[&pseudo, &f[34..54]]);
    f[50..52].copy_from_slice(&tcp.to_be_bytes());
    f
}

#[test]
fn exhausted_syn_is_dropped_by_default() {
    let mut h = H::new(small_cfg());
    assert_eq!(small_cfg().exhaustion_reply, ExhaustionReply::Drop);
    take_all_keys(&mut h);
    let (v, _) = h.up(&bare_syn((SUB1, 5), (EXT1, 80)), 0);
    assert_eq!(v, Verdict::Drop(DropReason::NatPoolExhausted));
    assert_eq!(h.w[0].counters.rst_exhausted, 0);
    h.assert_drops(&[(DropReason::NatPoolExhausted, 1)], 1);
}

#[test]
fn exhausted_syn_is_answered_with_exact_rst() {
    let mut h = H::new(rst_cfg());
    take_all_keys(&mut h);
    let (v, out) = h.up(&bare_syn((SUB1, 5), (EXT1, 80)), 0);
    assert_eq!(v, Verdict::Tx { port: UP });
    assert_eq!(out, literal_rst());
    assert!(checksums_ok(&out));
    assert_eq!(h.w[0].counters.rst_exhausted, 1);
    assert_eq!(h.w[0].counters.rst_pool_exhausted, 1);
    assert_eq!(h.w[0].counters.rst_table_full, 0);
    assert_eq!(h.w[0].counters.new_flows, 4);
    assert_eq!(h.w[0].keys_in_use(), 4, "the refused SYN took no entry");
    assert_eq!(h.c.total_drops(), 0);
    // UDP has no RST: dropped and counted as before (keys are per
    // destination and protocol: 4 for UDP to EXT2:53, then none).
    let dns = |sp| udp((LB1, ACC_MAC), (SUB1, sp), (EXT2, 53), b"q");
    for sp in 1..=4 {
        assert_eq!(h.up(&dns(sp), 0).0, TX_UP);
    }
    let (v, _) = h.up(&dns(5), 0);
    assert_eq!(v, Verdict::Drop(DropReason::NatPoolExhausted));
    assert_eq!(h.w[0].counters.rst_exhausted, 1);
    h.assert_drops(&[(DropReason::NatPoolExhausted, 1)], 1);
}

#[test]
fn full_flow_table_answers_syn_with_rst_and_drops_udp() {
    let mut h = H::new(GwConfig {
        max_flows_per_worker: 1,
        ..rst_cfg()
    });
    let (v, _) = h.up(&bare_syn((SUB1, 1), (EXT2, 80)), 0);
    assert_eq!(v, TX_UP);
    let (v, out) = h.up(&bare_syn((SUB1, 5), (EXT1, 80)), 0);
    assert_eq!(v, Verdict::Tx { port: UP });
    assert_eq!(out, literal_rst());
    assert_eq!(h.w[0].counters.rst_exhausted, 1);
    assert_eq!(h.w[0].counters.rst_table_full, 1);
    assert_eq!(h.w[0].counters.rst_pool_exhausted, 0);
    assert_eq!(h.c.total_drops(), 0);
    let (v, _) = h.up(&udp((LB1, ACC_MAC), (SUB1, 6), (EXT1, 53), b"q"), 0);
    assert_eq!(v, Verdict::Drop(DropReason::FlowTableFull));
    h.assert_drops(&[(DropReason::FlowTableFull, 1)], 1);
}
