//! Wire forwarding: the simplest pipeline (DPDK l2fwd's job).
//!
//! Each port is paired with a peer port; every frame that arrives on one
//! leaves unchanged on the other. Frames shorter than an Ethernet header are
//! dropped as `bad_ether`; frames on an unpaired port as `no_route`.
//! Cost: a table index and a length check per frame.

use crate::verdict::{DropReason, Pkt, PortIdx, Verdict, WorkerCounters};

/// Minimum Ethernet header length (dst, src, ethertype).
pub const ETHER_HDR_LEN: usize = 14;

#[derive(Clone, Debug)]
pub struct WireFwd {
    /// `peer[p]` is where frames arriving on port `p` go.
    peer: Vec<Option<PortIdx>>,
}

impl WireFwd {
    /// `pairs` lists unordered port pairs; each direction is forwarded.
    pub fn new(nports: usize, pairs: &[(PortIdx, PortIdx)]) -> Self {
        let mut peer = vec![None; nports];
        for &(a, b) in pairs {
            if (a as usize) < nports && (b as usize) < nports {
                peer[a as usize] = Some(b);
                peer[b as usize] = Some(a);
            }
        }
        WireFwd { peer }
    }

    /// Process one frame.
    #[inline]
    pub fn process(&self, pkt: &Pkt<'_>, c: &mut WorkerCounters) -> Verdict {
        let v = if pkt.len() < ETHER_HDR_LEN {
            Verdict::Drop(DropReason::BadEther)
        } else {
            match self.peer.get(pkt.port as usize).copied().flatten() {
                Some(port) => Verdict::Tx { port },
                None => Verdict::Drop(DropReason::NoRoute),
            }
        };
        if let Verdict::Drop(r) = v {
            c.drop(r);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_to_peer_and_counts_drops() {
        let f = WireFwd::new(3, &[(0, 1)]);
        let mut c = WorkerCounters::default();
        let mut buf = vec![0xa5u8; 64];
        assert_eq!(
            f.process(&Pkt::new(&mut buf, 60, 0), &mut c),
            Verdict::Tx { port: 1 }
        );
        assert_eq!(
            f.process(&Pkt::new(&mut buf, 60, 1), &mut c),
            Verdict::Tx { port: 0 }
        );
        assert_eq!(
            f.process(&Pkt::new(&mut buf, 60, 2), &mut c),
            Verdict::Drop(DropReason::NoRoute)
        );
        assert_eq!(
            f.process(&Pkt::new(&mut buf, 13, 0), &mut c),
            Verdict::Drop(DropReason::BadEther)
        );
        assert_eq!(c.drops[DropReason::NoRoute as usize], 1);
        assert_eq!(c.drops[DropReason::BadEther as usize], 1);
        assert_eq!(c.total_drops(), 2);
    }
}
