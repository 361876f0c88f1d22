//! The kernel side of a port whose PMD sits on a kernel interface (net_tap,
//! net_af_xdp, net_af_packet), read by rtnetlink: its link state and its
//! own drop counters, which see what the PMD does not (af_xdp: frames the
//! kernel could not put in the socket's ring; tap: its queue in front of a
//! sleeping poller).
//!
//! A tap is often moved into another network namespace once pgw created it
//! (`ip link set dev NAME netns NS`, as the tests and the demo do). DPDK's
//! tap PMD then asks for the link by name in pgw's namespace, finds nothing
//! and says *down*, and `/sys/class/net` no longer has it. The kernel gave
//! the target namespace an id in pgw's namespace when the interface moved
//! (the `IFLA_NEW_NETNSID` of the move's notice), so `RTM_GETLINK` with
//! `IFLA_TARGET_NETNSID` finds it there: every namespace id is tried, and
//! among interfaces of the same name the one that kept its index wins.
//!
//! Management side only (a few syscalls per report), never a worker.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::{
    netlink::SocketAddrNetlink, recv, sendto, socket, sockopt, AddressFamily, RecvFlags, SendFlags,
    SocketType,
};

/// What the kernel says of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLink {
    /// Administratively up and running (carrier): `IFF_UP && IFF_RUNNING`,
    /// the tap PMD's own rule.
    pub up: bool,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    /// `rx_missed_errors + rx_fifo_errors`.
    pub rx_missed: u64,
    /// The namespace id it was found in (`None`: pgw's own namespace).
    pub nsid: Option<i32>,
}

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const IFLA_IFNAME: u16 = 3;
const IFLA_STATS64: u16 = 23;
const IFLA_TARGET_NETNSID: u16 = 46;
const NETNSA_NSID: u16 = 1;
const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const AF_UNSPEC: u8 = 0;

/// A rtnetlink request: header, a fixed part, attributes.
struct Req {
    buf: Vec<u8>,
}

impl Req {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Req {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
        buf.extend_from_slice(fixed);
        Req { buf }
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Req {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self
    }

    fn bytes(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The messages of one netlink datagram: (type, payload after the header).
fn messages(data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    let mut at = 0;
    while at + 16 <= data.len() {
        let len = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        if len < 16 || at + len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes(data[at + 4..at + 6].try_into().unwrap());
        out.push((kind, &data[at + 16..at + len]));
        at += (len + 3) & !3;
    }
    out
}

/// The attributes after a fixed part of `skip` bytes: (type, value).
fn attrs(payload: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    let mut at = skip;
    while at + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[at], payload[at + 1]]) as usize;
        if len < 4 || at + len > payload.len() {
            break;
        }
        let kind = u16::from_ne_bytes([payload[at + 2], payload[at + 3]]) & 0x3fff;
        out.push((kind, &payload[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    out
}

fn open() -> Option<OwnedFd> {
    let fd = socket(AddressFamily::NETLINK, SocketType::RAW, None).ok()?;
    sockopt::set_socket_timeout(
        &fd,
        sockopt::Timeout::Recv,
        Some(Duration::from_millis(200)),
    )
    .ok()?;
    Some(fd)
}

/// Sends `req` and collects the answer's messages until the dump ends (or,
/// for a single request, the first message).
fn ask(fd: &OwnedFd, req: Vec<u8>, dump: bool) -> Option<Vec<(u16, Vec<u8>)>> {
    sendto(fd, &req, SendFlags::empty(), &SocketAddrNetlink::new(0, 0)).ok()?;
    let mut out = vec![];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let (n, _) = recv(fd, &mut buf[..], RecvFlags::empty()).ok()?;
        for (kind, payload) in messages(&buf[..n.min(buf.len())]) {
            match kind {
                NLMSG_DONE => return Some(out),
                NLMSG_ERROR => {
                    // An error code of 0 is an acknowledgement.
                    return dump.then_some(out);
                }
                _ => out.push((kind, payload.to_vec())),
            }
        }
        if !dump && !out.is_empty() {
            return Some(out);
        }
    }
}

/// The ids pgw's namespace has given other namespaces.
fn namespace_ids(fd: &OwnedFd) -> Vec<i32> {
    let req = Req::new(RTM_GETNSID, NLM_F_DUMP, &[AF_UNSPEC, 0, 0, 0]).bytes();
    ask(fd, req, true)
        .unwrap_or_default()
        .iter()
        .filter(|(k, _)| *k == RTM_NEWNSID)
        .filter_map(|(_, p)| {
            attrs(p, 4)
                .into_iter()
                .find(|(k, v)| *k == NETNSA_NSID && v.len() == 4)
                .map(|(_, v)| i32::from_ne_bytes(v.try_into().unwrap()))
        })
        .filter(|id| *id >= 0)
        .collect()
}

/// The link called `name` in the namespace `nsid` (`None`: this one), and
/// its index there.
fn get_link(fd: &OwnedFd, name: &str, nsid: Option<i32>) -> Option<(u32, KernelLink)> {
    let mut ifname = name.as_bytes().to_vec();
    ifname.push(0);
    let mut req = Req::new(RTM_GETLINK, 0, &[0u8; 16]).attr(IFLA_IFNAME, &ifname);
    if let Some(id) = nsid {
        req = req.attr(IFLA_TARGET_NETNSID, &id.to_ne_bytes());
    }
    let answer = ask(fd, req.bytes(), false)?;
    let (_, p) = answer
        .iter()
        .find(|(k, p)| *k == RTM_NEWLINK && p.len() >= 16)?;
    let index = u32::from_ne_bytes(p[4..8].try_into().unwrap());
    let flags = u32::from_ne_bytes(p[8..12].try_into().unwrap());
    let mut link = KernelLink {
        up: flags & IFF_UP != 0 && flags & IFF_RUNNING != 0,
        rx_dropped: 0,
        tx_dropped: 0,
        rx_missed: 0,
        nsid,
    };
    if let Some((_, s)) = attrs(p, 16).into_iter().find(|(k, _)| *k == IFLA_STATS64) {
        let field = |i: usize| {
            s.get(i * 8..i * 8 + 8)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
                .unwrap_or(0)
        };
        // struct rtnl_link_stats64: rx_dropped 6, tx_dropped 7,
        // rx_fifo_errors 14, rx_missed_errors 15.
        link.rx_dropped = field(6);
        link.tx_dropped = field(7);
        link.rx_missed = field(14) + field(15);
    }
    Some((index, link))
}

/// The interface `name` (index `index` when pgw started), in this namespace
/// or another one it was moved to. `None` if it is nowhere to be seen (or
/// netlink refused: not root).
pub fn kernel_link(name: &str, index: Option<u32>) -> Option<KernelLink> {
    let fd = open()?;
    if let Some((_, l)) = get_link(&fd, name, None) {
        return Some(l);
    }
    let found: Vec<(u32, KernelLink)> = namespace_ids(&fd)
        .into_iter()
        .filter_map(|id| get_link(&fd, name, Some(id)))
        .collect();
    found
        .iter()
        .find(|(i, _)| Some(*i) == index)
        .or_else(|| (found.len() == 1).then(|| &found[0]))
        .map(|(_, l)| *l)
}

/// The index of interface `name` in this namespace now.
pub fn index_of(name: &str) -> Option<u32> {
    let fd = open()?;
    get_link(&fd, name, None).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_attributes_round_trip() {
        let req = Req::new(RTM_GETLINK, 0, &[0u8; 16])
            .attr(IFLA_IFNAME, b"lo\0")
            .attr(IFLA_TARGET_NETNSID, &7i32.to_ne_bytes())
            .bytes();
        assert_eq!(req.len() % 4, 0);
        let m = messages(&req);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, RTM_GETLINK);
        let a = attrs(m[0].1, 16);
        assert_eq!(
            a,
            vec![
                (IFLA_IFNAME, &b"lo\0"[..]),
                (IFLA_TARGET_NETNSID, &7i32.to_ne_bytes()[..])
            ]
        );
        // Cut short: nothing read past the end.
        assert!(messages(&req[..req.len() - 1]).is_empty());
        assert_eq!(attrs(&m[0].1[..m[0].1.len() - 2], 16).len(), 1);
    }

    /// The loopback interface of the namespace the test runs in, through
    /// the kernel (needs only a netlink socket, no privilege).
    #[test]
    fn loopback_is_up_in_this_namespace() {
        let l = kernel_link("lo", None).expect("lo by rtnetlink");
        assert!(l.up, "{l:?}");
        assert_eq!(l.nsid, None);
        assert_eq!(index_of("lo"), Some(1));
        assert_eq!(kernel_link("pgw-no-such-if", None), None);
    }
}
