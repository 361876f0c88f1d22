//! Fixtures the IPv6 tests (NAT64, NAT66) share.

use super::*;

/// A MAC pair: (source, destination).
pub(super) type Macs = ([u8; 6], [u8; 6]);
/// An IPv6 endpoint: address and port (or echo identifier).
pub(super) type Ep6 = ([u8; 16], u16);

/// `spec` as the GW must send it over IPv6: MACs, hop limit − 1, ports
/// (an echo's type and identifier are `echo`'s to set), addresses.
pub(super) fn sent6(
    spec: &FrameSpec,
    macs: Macs,
    src: Ep6,
    dst: Ep6,
    echo: impl FnOnce(&mut u8, &mut u16),
) -> FrameSpec {
    let mut s = spec.clone();
    (s.src_mac, s.dst_mac) = macs;
    s.ttl -= 1;
    set_ports(&mut s.l4, src.1, dst.1, echo);
    as6(s, src.0, dst.0)
}
