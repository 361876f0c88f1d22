//! Proxy accounting (FIG. 28–29, S70–S80): one fixed-size, `Copy` record per
//! connection, emitted exactly once when the connection closes (FIN both
//! ways, RST, or idle expiry), plus the attribute parsers (HTTP `Host:`, TLS
//! ClientHello SNI) run once on the first up payload of a TCP connection.
//!
//! What is counted: per direction, every packet of the connection the stage
//! forwarded (`Verdict::Tx`) from the first SYN / first datagram up to and
//! including the packet that closed it, and as bytes the length of each IP
//! packet *on the subscriber side*: the IPv4 total length, or for a NAT64
//! connection the IPv6 length (40 + payload length) of the packet the
//! subscriber sent or was sent (IP header + L4 header + payload; no
//! Ethernet header, VLAN tag, padding or FCS). Dropped packets, ICMP errors
//! about the connection and packets after the close (late ACKs during the
//! hold) are not counted.

use super::tables::{GroupIdx, ServiceId};

/// Longest attribute kept; longer values are truncated (`Attr::truncated`).
pub const ATTR_MAX: usize = 48;

/// Where an attribute came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum AttrKind {
    #[default]
    None = 0,
    /// HTTP/1.x request `Host:` header.
    HttpHost,
    /// TLS ClientHello server_name (host_name).
    TlsSni,
}

/// A fixed-size attribute (a host name), no heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub kind: AttrKind,
    pub len: u8,
    pub truncated: bool,
    pub buf: [u8; ATTR_MAX],
}

impl Default for Attr {
    fn default() -> Self {
        Attr {
            kind: AttrKind::None,
            len: 0,
            truncated: false,
            buf: [0; ATTR_MAX],
        }
    }
}

impl Attr {
    /// The value's bytes (visible ASCII only).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..(self.len as usize).min(ATTR_MAX)]
    }
    /// The value as text (always valid: only bytes 0x21..=0x7e are kept).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
    /// Keep the leading visible-ASCII run of `v` (at most `ATTR_MAX` bytes);
    /// `None` if that run is empty.
    fn from_value(kind: AttrKind, v: &[u8]) -> Option<Attr> {
        let n = v
            .iter()
            .position(|b| !(0x21..=0x7e).contains(b))
            .unwrap_or(v.len());
        if n == 0 {
            return None;
        }
        let mut a = Attr {
            kind,
            ..Attr::default()
        };
        let k = n.min(ATTR_MAX);
        a.buf[..k].copy_from_slice(&v[..k]);
        a.len = k as u8;
        a.truncated = n > ATTR_MAX;
        Some(a)
    }
}

impl std::fmt::Debug for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}({:?}{})",
            self.kind,
            self.as_str(),
            if self.truncated { "…" } else { "" }
        )
    }
}

/// Why a connection's record was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// FIN seen in both directions.
    Fin,
    /// RST seen (either direction).
    Rst,
    /// No packet for the state's idle timeout (UDP and ICMP always end so).
    IdleTimeout,
    /// Still open when the instance stopped (after its drain, or at once
    /// on SIGINT): the record covers the connection up to then.
    Shutdown,
}

/// One connection's accounting record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcctRecord {
    /// Device id of the session at connection start (0: no session).
    pub device_id: u64,
    /// IPv4 subscriber address; `0.0.0.0` for a NAT64 connection (see
    /// `subscriber_ip6`).
    pub subscriber_ip: [u8; 4],
    /// The IPv6 subscriber of a NAT64 connection (its destination was the
    /// RFC 6052 embedding of `rep_ip`) or of a NAT66 connection (`rep_ip`
    /// 0.0.0.0); `None` for IPv4 subscribers.
    pub subscriber_ip6: Option<[u8; 16]>,
    /// Subscriber port (ICMP: the echo identifier).
    pub subscriber_port: u16,
    /// The IPv6 addresses of a NAT66 connection (its IPv4 fields carry the
    /// pool's IPv4 twin and the member's IPv4 identity); `None` otherwise.
    pub nat66: Option<Nat66Addrs>,
    /// Original destination: the representative address (VIP) or, for a
    /// non-VIP destination, the destination itself.
    pub rep_ip: [u8; 4],
    pub rep_port: u16,
    /// NAT key: pool address and key port (ICMP: the identifier used).
    pub nat_ip: [u8; 4],
    pub nat_port: u16,
    /// The real server (equal to `rep_*` without balancing).
    pub server_ip: [u8; 4],
    pub server_port: u16,
    /// IP protocol (6, 17, 1).
    pub proto: u8,
    /// Service type of the group (or `external_service`), if any.
    pub service: Option<ServiceId>,
    /// Group index in the `Services` snapshot the connection started with.
    pub group: Option<GroupIdx>,
    /// First packet (ms, caller's monotonic clock).
    pub start_ms: u64,
    /// Last counted packet.
    pub end_ms: u64,
    pub up_pkts: u64,
    pub up_bytes: u64,
    pub down_pkts: u64,
    pub down_bytes: u64,
    pub attr: Attr,
    pub close: CloseReason,
}

/// A NAT66 connection's IPv6 addresses beside its subscriber's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nat66Addrs {
    /// The IPv6 VIP the subscriber addressed.
    pub vip: [u8; 16],
    /// The NAT key's IPv6 address (the `pool6` address).
    pub key: [u8; 16],
    /// The member's IPv6 address.
    pub server: [u8; 16],
}

/// Where records go (the engine: a bounded SPSC queue to the accounting
/// writer). `push` returning `false` means the queue was full; the stage
/// counts it (`GwCounters::acct_queue_full`) and the record is lost.
pub trait AcctSink {
    fn push(&mut self, r: &AcctRecord) -> bool;
}

/// Unbounded, for tests and tools (allocates).
impl AcctSink for Vec<AcctRecord> {
    fn push(&mut self, r: &AcctRecord) -> bool {
        Vec::push(self, *r);
        true
    }
}

/// Find an attribute in the first up payload: an HTTP/1.x request's `Host:`
/// header, else a TLS ClientHello's SNI. Never panics; any input that is not
/// a well-formed prefix gives `None`.
pub fn find_attr(payload: &[u8]) -> Option<Attr> {
    match payload.first()? {
        0x16 => tls_sni(payload).and_then(|v| Attr::from_value(AttrKind::TlsSni, v)),
        b'A'..=b'Z' => http_host(payload).and_then(|v| Attr::from_value(AttrKind::HttpHost, v)),
        _ => None,
    }
}

/// The `Host:` header value of an HTTP/1.x request (headers up to the first
/// empty line, or the end of this payload).
pub fn http_host(p: &[u8]) -> Option<&[u8]> {
    // Request line: METHOD SP ... ; method 3..=10 upper-case letters.
    let m = p.iter().take(11).position(|&b| b == b' ')?;
    if !(3..=10).contains(&m) || !p[..m].iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let mut lines = p.split(|&b| b == b'\n');
    let first = lines.next()?;
    if !first.windows(5).any(|w| w == b"HTTP/") {
        return None;
    }
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"host:") {
            let v = &line[5..];
            let start = v.iter().position(|&b| b != b' ' && b != b'\t')?;
            return Some(&v[start..]);
        }
    }
    None
}

/// A bounds-checked reader.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize)
    }
    /// Up to `n` bytes (what is there, for a record cut by the segment).
    fn take_upto(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        self.take(n).unwrap_or(&[])
    }
}

/// The host_name of a TLS ClientHello's server_name extension, if the first
/// record of this payload holds it.
pub fn tls_sni(p: &[u8]) -> Option<&[u8]> {
    let mut c = Cur(p);
    if c.u8()? != 0x16 || c.u8()? != 0x03 {
        return None;
    }
    c.u8()?; // minor version
    let rec_len = c.u16()? as usize;
    let mut rec = Cur(c.take_upto(rec_len));
    if rec.u8()? != 0x01 {
        return None; // not a ClientHello
    }
    let hs_len = rec.u24()?;
    let mut h = Cur(rec.take_upto(hs_len));
    h.take(2 + 32)?; // client_version, random
    let sid = h.u8()? as usize;
    h.take(sid)?;
    let cs = h.u16()? as usize;
    h.take(cs)?;
    let comp = h.u8()? as usize;
    h.take(comp)?;
    let ext_len = h.u16()? as usize;
    let mut e = Cur(h.take_upto(ext_len));
    loop {
        let ty = e.u16()?;
        let len = e.u16()? as usize;
        let body = e.take(len)?;
        if ty != 0 {
            continue;
        }
        let mut s = Cur(body);
        let list_len = s.u16()? as usize;
        let mut l = Cur(s.take(list_len)?);
        loop {
            let name_type = l.u8()?;
            let n = l.u16()? as usize;
            let name = l.take(n)?;
            if name_type == 0 {
                return Some(name);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal TLS 1.2/1.3 ClientHello carrying `sni` (and one extension
    /// before it).
    pub(crate) fn client_hello(sni: &[u8]) -> Vec<u8> {
        let mut ext = Vec::new();
        // supported_versions-ish dummy extension first
        ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        let mut sn = Vec::new();
        sn.push(0u8);
        sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        sn.extend_from_slice(sni);
        let mut list = (sn.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&sn);
        ext.extend_from_slice(&[0x00, 0x00]);
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&list);
        let mut hello = vec![0x03, 0x03];
        hello.extend_from_slice(&[0x5a; 32]);
        hello.push(32);
        hello.extend_from_slice(&[0x11; 32]);
        hello.extend_from_slice(&[0x00, 0x04, 0x13, 0x01, 0x13, 0x02]);
        hello.extend_from_slice(&[0x01, 0x00]);
        hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        hello.extend_from_slice(&ext);
        let mut hs = vec![0x01];
        hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&hello);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn http_host_found_case_insensitively() {
        let p = b"GET /a HTTP/1.1\r\nUser-Agent: x\r\nhOsT: \t www.example.com:8080 \r\n\r\n";
        let a = find_attr(p).unwrap();
        assert_eq!(a.kind, AttrKind::HttpHost);
        assert_eq!(a.as_str(), "www.example.com:8080");
        assert!(!a.truncated);
        // header after the blank line is body, not a header
        assert_eq!(find_attr(b"POST / HTTP/1.1\r\n\r\nHost: evil\r\n"), None);
        // not a request line
        assert_eq!(find_attr(b"HELLO world\r\nHost: x\r\n"), None);
        assert_eq!(find_attr(b"get / HTTP/1.1\r\nHost: x\r\n"), None);
        // bare LF line ends are accepted
        assert_eq!(
            find_attr(b"GET / HTTP/1.0\nHost: a.b\n\n")
                .unwrap()
                .as_str(),
            "a.b"
        );
    }

    #[test]
    fn long_values_are_truncated() {
        let long = "h".repeat(ATTR_MAX + 10);
        let p = format!("GET / HTTP/1.1\r\nHost: {long}\r\n\r\n");
        let a = find_attr(p.as_bytes()).unwrap();
        assert_eq!(a.len as usize, ATTR_MAX);
        assert!(a.truncated);
    }

    #[test]
    fn tls_sni_found_and_truncation_is_safe() {
        let ch = client_hello(b"mail.example.org");
        let a = find_attr(&ch).unwrap();
        assert_eq!(a.kind, AttrKind::TlsSni);
        assert_eq!(a.as_str(), "mail.example.org");
        for cut in 0..ch.len() {
            // Any prefix: either None or the right name, never a panic.
            if let Some(a) = find_attr(&ch[..cut]) {
                assert_eq!(a.as_str(), "mail.example.org");
            }
        }
        let mut not_hello = ch.clone();
        not_hello[5] = 0x02;
        assert_eq!(find_attr(&not_hello), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(p in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = find_attr(&p);
            let _ = tls_sni(&p);
            let _ = http_host(&p);
        }

        #[test]
        fn tls_mutations_never_panic(i in 0usize..120, b in any::<u8>()) {
            let mut ch = client_hello(b"x.example");
            let i = i % ch.len();
            ch[i] = b;
            if let Some(a) = find_attr(&ch) {
                prop_assert!(a.as_bytes().iter().all(|c| (0x21..=0x7e).contains(c)));
            }
        }
    }
}
