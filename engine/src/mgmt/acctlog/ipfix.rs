//! IPFIX (RFC 7011) export of accounting rows, sans-I/O: rows and the wall
//! clock in, whole UDP payloads out. The writer thread owns the socket.
//!
//! One **bidirectional record per connection** (RFC 5103 biflow): the up
//! direction (subscriber → representative address) in the ordinary counters,
//! the down direction in the *reverse* counters (enterprise 29305, the same
//! element ids). nfdump ≥ 1.7 maps those to its "out packets"/"out bytes", so
//! one line of `nfdump` shows a whole connection, as one row of the
//! `accounting` table does. Collectors that do not know RFC 5103 skip the two
//! reverse fields (they are enterprise-specific) and keep the up counts.
//!
//! Template 256 ([`TEMPLATE_ID`]), fields in this order:
//!
//! | # | element (id) | len | value |
//! |---|---|---|---|
//! | 1 | sourceIPv4Address (8) | 4 | subscriber address |
//! | 2 | destinationIPv4Address (12) | 4 | representative address (VIP) |
//! | 3 | sourceTransportPort (7) | 2 | subscriber port (0 unless TCP/UDP) |
//! | 4 | destinationTransportPort (11) | 2 | representative port (0 unless TCP/UDP) |
//! | 5 | protocolIdentifier (4) | 1 | IP protocol |
//! | 6 | postNATSourceIPv4Address (225) | 4 | NAT key address (pool) |
//! | 7 | postNATDestinationIPv4Address (226) | 4 | real server |
//! | 8 | postNAPTSourceTransportPort (227) | 2 | NAT key port (0 unless TCP/UDP) |
//! | 9 | postNAPTDestinationTransportPort (228) | 2 | real server port (0 unless TCP/UDP) |
//! | 10 | flowStartMilliseconds (152) | 8 | first packet, Unix ms |
//! | 11 | flowEndMilliseconds (153) | 8 | last packet, Unix ms |
//! | 12 | packetDeltaCount (2) | 8 | packets up |
//! | 13 | octetDeltaCount (1) | 8 | bytes up (IPv4 total length) |
//! | 14 | reverse packetDeltaCount (29305/2) | 8 | packets down |
//! | 15 | reverse octetDeltaCount (29305/1) | 8 | bytes down |
//! | 16 | flowEndReason (136) | 1 | 1 idle timeout, 3 end of flow (FIN, RST) |
//! | 17 | pgw proxyAccounting (PEN/4) | 1 | 1 proxy accounting, 0 not |
//! | 18 | pgw deviceId (PEN/1) | var | mobile device id (UTF-8) |
//! | 19 | pgw serviceName (PEN/2) | var | service type name |
//! | 20 | pgw serverName (PEN/3) | var | HTTP Host / TLS SNI, or empty |
//!
//! Template 257 ([`TEMPLATE_ID_V6`]) is the same with fields 1 and 2
//! replaced by sourceIPv6Address (27) and destinationIPv6Address (28), 16
//! bytes each: records of IPv6 subscribers (`AcctRow::subscriber_ip6`).
//! NAT64: the destination is the subscriber's RFC 6052 destination
//! (`AcctRow::representative_ip6`, the representative address under the
//! NAT64 prefix); post-NAT source and destination are the IPv4 NAT key and
//! server, as in template 256. (Collectors keep one address family per
//! flow: nfdump drops an IPv6 source paired with an IPv4 destination, so
//! the destination is given as IPv6.)
//!
//! Template 258 ([`TEMPLATE_ID_NAT66`]) is template 257 with fields 6 and 7
//! replaced by postNATSourceIPv6Address (281) and
//! postNATDestinationIPv6Address (282), 16 bytes each: records of NAT66
//! connections, whose destination is the IPv6 VIP, post-NAT source the
//! key's `pool6` address and post-NAT destination the member's IPv6
//! address (`AcctRow::representative_ip6`, `nat_ip6`, `real_server_ip6`).
//!
//! The templates go in one Template Set; a message holds one Data Set per
//! run of records of the same template.
//!
//! PEN is the private enterprise number of the pgw elements, by default
//! 32473, the number IANA reserves for documentation (RFC 5612): a
//! deployment that has its own PEN sets it in [`ExporterConfig::enterprise`].
//! nfdump 1.7 skips enterprise elements it does not know, variable-length
//! ones included (checked by `engine/tests/acctlog_ipfix_nfdump.rs`).
//! Strings longer than [`MAX_STRING`] bytes are cut (at a UTF-8 boundary),
//! so a record always fits one message.
//!
//! Sequence numbers count data records (RFC 7011 §3.1): a message carries the
//! number of records sent before it. Over UDP the template is repeated
//! (RFC 7011 §8.4): in the first message, then whenever
//! [`ExporterConfig::template_every_ms`] has passed or
//! [`ExporterConfig::template_every_msgs`] messages went out since the last
//! one; and when no records flow, [`Exporter::refresh`] sends the templates
//! alone every `template_every_ms` (profile key `accounting.ipfix_template_s`)
//! once they were first sent, so a collector that restarts learns them
//! again without waiting for data it would have to drop.

use super::rows::AcctRow;
use pgw_pipelines::gw::acct::CloseReason;

/// IPFIX version number.
pub const VERSION: u16 = 10;
/// Message header length.
pub const HEADER_LEN: usize = 16;
/// Set id of a Template Set.
pub const TEMPLATE_SET_ID: u16 = 2;
/// The template of accounting records of IPv4 subscribers (data sets carry
/// this id).
pub const TEMPLATE_ID: u16 = 256;
/// The template of accounting records of IPv6 subscribers (NAT64, NAT66).
pub const TEMPLATE_ID_V6: u16 = 257;
/// The template of accounting records of NAT66 connections.
pub const TEMPLATE_ID_NAT66: u16 = 258;
/// RFC 5103 reverse information element PEN.
pub const REVERSE_PEN: u32 = 29305;
/// IANA's documentation PEN (RFC 5612), the default for pgw elements.
pub const EXAMPLE_PEN: u32 = 32473;
/// Longest string element, bytes.
pub const MAX_STRING: usize = 256;
/// Variable-length field marker in a template.
const VARLEN: u16 = 0xffff;

/// pgw enterprise element ids (under [`ExporterConfig::enterprise`]).
pub mod pgw_ie {
    pub const DEVICE_ID: u16 = 1;
    pub const SERVICE_NAME: u16 = 2;
    pub const SERVER_NAME: u16 = 3;
    pub const PROXY_ACCOUNTING: u16 = 4;
}

/// IANA element ids used.
pub mod iana {
    pub const OCTET_DELTA_COUNT: u16 = 1;
    pub const PACKET_DELTA_COUNT: u16 = 2;
    pub const PROTOCOL_IDENTIFIER: u16 = 4;
    pub const SOURCE_TRANSPORT_PORT: u16 = 7;
    pub const SOURCE_IPV4_ADDRESS: u16 = 8;
    pub const SOURCE_IPV6_ADDRESS: u16 = 27;
    pub const DESTINATION_IPV6_ADDRESS: u16 = 28;
    pub const DESTINATION_TRANSPORT_PORT: u16 = 11;
    pub const DESTINATION_IPV4_ADDRESS: u16 = 12;
    pub const FLOW_END_REASON: u16 = 136;
    pub const FLOW_START_MILLISECONDS: u16 = 152;
    pub const FLOW_END_MILLISECONDS: u16 = 153;
    pub const POST_NAT_SOURCE_IPV4_ADDRESS: u16 = 225;
    pub const POST_NAT_DESTINATION_IPV4_ADDRESS: u16 = 226;
    pub const POST_NAPT_SOURCE_TRANSPORT_PORT: u16 = 227;
    pub const POST_NAPT_DESTINATION_TRANSPORT_PORT: u16 = 228;
    pub const POST_NAT_SOURCE_IPV6_ADDRESS: u16 = 281;
    pub const POST_NAT_DESTINATION_IPV6_ADDRESS: u16 = 282;
}

/// flowEndReason values (RFC 5102 / IANA).
pub mod end_reason {
    pub const IDLE_TIMEOUT: u8 = 1;
    pub const END_OF_FLOW: u8 = 3;
    pub const FORCED_END: u8 = 4;
}

/// One template field: element id, length, enterprise number (0: IANA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub id: u16,
    pub len: u16,
    pub pen: u32,
}

/// The fields of [`TEMPLATE_ID`], in record order (the table above).
pub fn template_fields(enterprise: u32) -> [Field; 20] {
    use iana::*;
    let f = |id, len| Field { id, len, pen: 0 };
    let e = |id, len, pen| Field { id, len, pen };
    [
        f(SOURCE_IPV4_ADDRESS, 4),
        f(DESTINATION_IPV4_ADDRESS, 4),
        f(SOURCE_TRANSPORT_PORT, 2),
        f(DESTINATION_TRANSPORT_PORT, 2),
        f(PROTOCOL_IDENTIFIER, 1),
        f(POST_NAT_SOURCE_IPV4_ADDRESS, 4),
        f(POST_NAT_DESTINATION_IPV4_ADDRESS, 4),
        f(POST_NAPT_SOURCE_TRANSPORT_PORT, 2),
        f(POST_NAPT_DESTINATION_TRANSPORT_PORT, 2),
        f(FLOW_START_MILLISECONDS, 8),
        f(FLOW_END_MILLISECONDS, 8),
        f(PACKET_DELTA_COUNT, 8),
        f(OCTET_DELTA_COUNT, 8),
        e(PACKET_DELTA_COUNT, 8, REVERSE_PEN),
        e(OCTET_DELTA_COUNT, 8, REVERSE_PEN),
        f(FLOW_END_REASON, 1),
        e(pgw_ie::PROXY_ACCOUNTING, 1, enterprise),
        e(pgw_ie::DEVICE_ID, VARLEN, enterprise),
        e(pgw_ie::SERVICE_NAME, VARLEN, enterprise),
        e(pgw_ie::SERVER_NAME, VARLEN, enterprise),
    ]
}

/// The fields of [`TEMPLATE_ID_V6`]: those of [`TEMPLATE_ID`] with
/// IPv6 source and destination addresses first.
pub fn template_fields_v6(enterprise: u32) -> [Field; 20] {
    let mut f = template_fields(enterprise);
    let v6 = |id| Field {
        id,
        len: 16,
        pen: 0,
    };
    f[0] = v6(iana::SOURCE_IPV6_ADDRESS);
    f[1] = v6(iana::DESTINATION_IPV6_ADDRESS);
    f
}

/// The fields of [`TEMPLATE_ID_NAT66`]: those of [`TEMPLATE_ID_V6`] with
/// IPv6 post-NAT source and destination addresses.
pub fn template_fields_nat66(enterprise: u32) -> [Field; 20] {
    let mut f = template_fields_v6(enterprise);
    let v6 = |id| Field {
        id,
        len: 16,
        pen: 0,
    };
    f[5] = v6(iana::POST_NAT_SOURCE_IPV6_ADDRESS);
    f[6] = v6(iana::POST_NAT_DESTINATION_IPV6_ADDRESS);
    f
}

/// Exporter settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExporterConfig {
    pub observation_domain: u32,
    /// PEN of the pgw elements (deviceId, serviceName, serverName,
    /// proxyAccounting).
    pub enterprise: u32,
    /// Largest message (UDP payload), bytes. 1400 stays under a 1500-byte
    /// MTU with IPv4/IPv6 and UDP headers.
    pub max_message: usize,
    /// Repeat the template when this much time passed since it was last sent.
    pub template_every_ms: u64,
    /// ... or when this many messages went out since (≥ 1).
    pub template_every_msgs: u32,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            observation_domain: 1,
            enterprise: EXAMPLE_PEN,
            max_message: 1400,
            template_every_ms: 30_000,
            template_every_msgs: 100,
        }
    }
}

/// The exporting process's state for one transport session: the sequence
/// number and when the template was last sent.
#[derive(Debug)]
pub struct Exporter {
    cfg: ExporterConfig,
    template_set: Vec<u8>,
    /// Data records sent so far (mod 2^32).
    sequence: u32,
    last_template_ms: Option<u64>,
    msgs_since_template: u32,
}

/// What [`Exporter::encode`] produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    pub messages: Vec<Vec<u8>>,
    /// Data records in them.
    pub records: u64,
    /// Messages that carry the template set.
    pub templates: u64,
}

impl Exporter {
    /// # Panics
    /// If `max_message` cannot hold a template and the largest record
    /// ([`min_message`], 1248 bytes; checked by `AcctLogger::start`).
    pub fn new(cfg: ExporterConfig) -> Exporter {
        let template_set = template_set(&[
            (TEMPLATE_ID, &template_fields(cfg.enterprise)),
            (TEMPLATE_ID_V6, &template_fields_v6(cfg.enterprise)),
            (TEMPLATE_ID_NAT66, &template_fields_nat66(cfg.enterprise)),
        ]);
        assert!(
            cfg.max_message >= HEADER_LEN + template_set.len() + 4 + MAX_RECORD_LEN,
            "ipfix max_message {} too small (minimum {})",
            cfg.max_message,
            min_message()
        );
        Exporter {
            cfg,
            template_set,
            sequence: 0,
            last_template_ms: None,
            msgs_since_template: 0,
        }
    }

    /// Data records sent so far (the next message's sequence number).
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Encode `rows` into as few messages as fit `max_message`, the template
    /// set first in a message when it is due. `now_unix_ms` is the wall
    /// clock (export time, template timer).
    pub fn encode(&mut self, rows: &[AcctRow], now_unix_ms: u64) -> Encoded {
        let mut out = Encoded::default();
        let mut rec = Vec::with_capacity(MAX_RECORD_LEN);
        let mut i = 0;
        while i < rows.len() {
            let with_template = self.template_due(now_unix_ms);
            let mut msg = Vec::with_capacity(self.cfg.max_message);
            msg.extend_from_slice(&[0; HEADER_LEN]);
            if with_template {
                msg.extend_from_slice(&self.template_set);
            }
            // The open data set: (its start, its template).
            let mut set: Option<(usize, u16)> = None;
            let mut n = 0u32;
            while i < rows.len() {
                rec.clear();
                encode_record(&rows[i], &mut rec);
                let tid = record_template(&rows[i]);
                let new_set = set.map(|(_, t)| t) != Some(tid);
                let need = rec.len() + if new_set { 4 } else { 0 };
                if msg.len() + need > self.cfg.max_message {
                    break;
                }
                if new_set {
                    if let Some((start, _)) = set {
                        close_set(&mut msg, start);
                    }
                    set = Some((msg.len(), tid));
                    msg.extend_from_slice(&tid.to_be_bytes());
                    msg.extend_from_slice(&[0, 0]);
                }
                msg.extend_from_slice(&rec);
                n += 1;
                i += 1;
            }
            if let Some((start, _)) = set {
                close_set(&mut msg, start);
            }
            let export_s = (now_unix_ms / 1000) as u32;
            write_header(
                &mut msg,
                export_s,
                self.sequence,
                self.cfg.observation_domain,
            );
            self.sequence = self.sequence.wrapping_add(n);
            if with_template {
                self.last_template_ms = Some(now_unix_ms);
                self.msgs_since_template = 0;
                out.templates += 1;
            }
            self.msgs_since_template += 1;
            out.records += u64::from(n);
            out.messages.push(msg);
        }
        out
    }

    /// The template refresh timer (RFC 7011 §8.4): a message holding only
    /// the template set when `template_every_ms` passed since the templates
    /// were last sent (by [`Exporter::encode`] or here); `None` before
    /// they were first sent or when not due. Its sequence number is the
    /// next record's (no data records in it).
    pub fn refresh(&mut self, now_unix_ms: u64) -> Option<Vec<u8>> {
        let t = self.last_template_ms?;
        if now_unix_ms.saturating_sub(t) < self.cfg.template_every_ms {
            return None;
        }
        let mut msg = Vec::with_capacity(HEADER_LEN + self.template_set.len());
        msg.extend_from_slice(&[0; HEADER_LEN]);
        msg.extend_from_slice(&self.template_set);
        write_header(
            &mut msg,
            (now_unix_ms / 1000) as u32,
            self.sequence,
            self.cfg.observation_domain,
        );
        self.last_template_ms = Some(now_unix_ms);
        self.msgs_since_template = 1;
        Some(msg)
    }

    /// When [`Exporter::refresh`] is next due (Unix ms), once the templates
    /// were sent.
    pub fn refresh_at(&self) -> Option<u64> {
        self.last_template_ms
            .map(|t| t.saturating_add(self.cfg.template_every_ms))
    }

    fn template_due(&self, now_ms: u64) -> bool {
        match self.last_template_ms {
            None => true,
            Some(t) => {
                now_ms.saturating_sub(t) >= self.cfg.template_every_ms
                    || self.msgs_since_template >= self.cfg.template_every_msgs.max(1)
            }
        }
    }
}

/// Set a set's length field: the set runs from `start` to the end of `msg`.
fn close_set(msg: &mut [u8], start: usize) {
    let len = (msg.len() - start) as u16;
    msg[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// The template a row's record uses.
pub fn record_template(r: &AcctRow) -> u16 {
    if nat66(r).is_some() {
        TEMPLATE_ID_NAT66
    } else if r.subscriber_ip6.is_some() {
        TEMPLATE_ID_V6
    } else {
        TEMPLATE_ID
    }
}

/// A NAT66 row's post-NAT addresses (key, member), if it has them.
fn nat66(r: &AcctRow) -> Option<(std::net::Ipv6Addr, std::net::Ipv6Addr)> {
    r.subscriber_ip6?;
    Some((r.nat_ip6?, r.real_server_ip6?))
}

/// Largest encoded data record (template 258): fixed part + three strings
/// of [`MAX_STRING`] bytes with 3-byte length prefixes.
pub const MAX_RECORD_LEN: usize = FIXED_RECORD_LEN_NAT66 + 3 * (3 + MAX_STRING);
/// Bytes of the fixed-length fields of a record of [`TEMPLATE_ID`].
pub const FIXED_RECORD_LEN: usize = 4 + 4 + 2 + 2 + 1 + 4 + 4 + 2 + 2 + 8 * 6 + 1 + 1;
/// ... of [`TEMPLATE_ID_V6`] (16-byte addresses).
pub const FIXED_RECORD_LEN_V6: usize = FIXED_RECORD_LEN + 24;
/// ... of [`TEMPLATE_ID_NAT66`] (16-byte post-NAT addresses too).
pub const FIXED_RECORD_LEN_NAT66: usize = FIXED_RECORD_LEN_V6 + 24;

/// Smallest `max_message` [`Exporter::new`] accepts.
pub fn min_message() -> usize {
    HEADER_LEN
        + template_set(&[
            (TEMPLATE_ID, &template_fields(EXAMPLE_PEN)),
            (TEMPLATE_ID_V6, &template_fields_v6(EXAMPLE_PEN)),
            (TEMPLATE_ID_NAT66, &template_fields_nat66(EXAMPLE_PEN)),
        ])
        .len()
        + 4
        + MAX_RECORD_LEN
}

/// A Template Set holding one template record per `(id, fields)`.
pub fn template_set(templates: &[(u16, &[Field])]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&TEMPLATE_SET_ID.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    for (id, fields) in templates {
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for f in *fields {
            if f.pen == 0 {
                v.extend_from_slice(&f.id.to_be_bytes());
                v.extend_from_slice(&f.len.to_be_bytes());
            } else {
                v.extend_from_slice(&(f.id | 0x8000).to_be_bytes());
                v.extend_from_slice(&f.len.to_be_bytes());
                v.extend_from_slice(&f.pen.to_be_bytes());
            }
        }
    }
    close_set(&mut v, 0);
    v
}

fn write_header(msg: &mut [u8], export_s: u32, sequence: u32, domain: u32) {
    let len = msg.len() as u16;
    msg[0..2].copy_from_slice(&VERSION.to_be_bytes());
    msg[2..4].copy_from_slice(&len.to_be_bytes());
    msg[4..8].copy_from_slice(&export_s.to_be_bytes());
    msg[8..12].copy_from_slice(&sequence.to_be_bytes());
    msg[12..16].copy_from_slice(&domain.to_be_bytes());
}

/// Ports are exported for TCP and UDP only (for ICMP the record's "ports"
/// are echo identifiers, which collectors would read as type/code).
fn has_ports(proto: u8) -> bool {
    proto == 6 || proto == 17
}

/// One data record of [`record_template`]`(r)` ([`TEMPLATE_ID`], or
/// [`TEMPLATE_ID_V6`] for an IPv6 subscriber), appended to `out`.
pub fn encode_record(r: &AcctRow, out: &mut Vec<u8>) {
    let ports = has_ports(r.protocol);
    let port = |p: u16| if ports { p } else { 0 };
    let ms = |t: i64| u64::try_from(t).unwrap_or(0);
    match r.subscriber_ip6 {
        Some(a) => {
            out.extend_from_slice(&a.octets());
            let dst = r
                .representative_ip6
                .unwrap_or(std::net::Ipv6Addr::UNSPECIFIED);
            out.extend_from_slice(&dst.octets());
        }
        None => {
            out.extend_from_slice(&r.subscriber_ip.octets());
            out.extend_from_slice(&r.representative_ip.octets());
        }
    }
    out.extend_from_slice(&port(r.subscriber_port).to_be_bytes());
    out.extend_from_slice(&port(r.representative_port).to_be_bytes());
    out.push(r.protocol);
    match nat66(r) {
        Some((key, server)) => {
            out.extend_from_slice(&key.octets());
            out.extend_from_slice(&server.octets());
        }
        None => {
            out.extend_from_slice(&r.nat_ip.octets());
            out.extend_from_slice(&r.real_server_ip.octets());
        }
    }
    out.extend_from_slice(&port(r.nat_port).to_be_bytes());
    out.extend_from_slice(&port(r.real_server_port).to_be_bytes());
    out.extend_from_slice(&ms(r.start_unix_ms).to_be_bytes());
    out.extend_from_slice(&ms(r.end_unix_ms).to_be_bytes());
    out.extend_from_slice(&r.packets_up.to_be_bytes());
    out.extend_from_slice(&r.bytes_up.to_be_bytes());
    out.extend_from_slice(&r.packets_down.to_be_bytes());
    out.extend_from_slice(&r.bytes_down.to_be_bytes());
    out.push(match r.close_reason {
        CloseReason::IdleTimeout => end_reason::IDLE_TIMEOUT,
        CloseReason::Fin | CloseReason::Rst => end_reason::END_OF_FLOW,
        CloseReason::Shutdown => end_reason::FORCED_END,
    });
    out.push(u8::from(r.proxy_accounting));
    put_string(out, &r.device_id);
    put_string(out, &r.service);
    put_string(out, &r.server_name);
}

/// A variable-length field (RFC 7011 §7): 1-byte length below 255, else
/// 255 and a 2-byte length. Cut to [`MAX_STRING`] bytes.
fn put_string(out: &mut Vec<u8>, s: &str) {
    let b = truncate_utf8(s, MAX_STRING).as_bytes();
    if b.len() < 255 {
        out.push(b.len() as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut n = max;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn row() -> AcctRow {
        AcctRow {
            device_id: "dev-7".into(),
            subscriber_ip: Ipv4Addr::new(127, 1, 2, 3),
            subscriber_port: 0x9c41,
            subscriber_ip6: None,
            representative_ip6: None,
            real_server_ip6: None,
            nat_ip6: None,
            service: "web".into(),
            representative_ip: Ipv4Addr::new(127, 0, 0, 80),
            representative_port: 80,
            proxy_accounting: true,
            server_name: "a.example".into(),
            real_server_ip: Ipv4Addr::new(127, 0, 0, 99),
            real_server_port: 0x1f90,
            nat_ip: Ipv4Addr::new(127, 0, 0, 9),
            nat_port: 0x0401,
            protocol: 6,
            start_unix_ms: 0x0102_0304_0506,
            end_unix_ms: 0x0102_0304_0a0b,
            packets_up: 0x11,
            bytes_up: 0x2233,
            packets_down: 0x44,
            bytes_down: 0x5566_7788,
            close_reason: CloseReason::Fin,
        }
    }

    /// The whole first message, computed by hand from RFC 7011 / 5103.
    #[test]
    fn message_with_template_and_one_record_byte_by_byte() {
        let mut x = Exporter::new(ExporterConfig {
            observation_domain: 0x0a0b0c0d,
            ..ExporterConfig::default()
        });
        let out = x.encode(&[row()], 1_700_000_000_123);
        assert_eq!(out.messages.len(), 1);
        assert_eq!((out.records, out.templates), (1, 1));
        #[rustfmt::skip]
        let fields_after_addresses: Vec<u8> = vec![
            0x00, 0x07, 0x00, 0x02,             // sourceTransportPort
            0x00, 0x0b, 0x00, 0x02,             // destinationTransportPort
            0x00, 0x04, 0x00, 0x01,             // protocolIdentifier
            0x00, 0xe1, 0x00, 0x04,             // postNATSourceIPv4Address
            0x00, 0xe2, 0x00, 0x04,             // postNATDestinationIPv4Address
            0x00, 0xe3, 0x00, 0x02,             // postNAPTSourceTransportPort
            0x00, 0xe4, 0x00, 0x02,             // postNAPTDestinationTransportPort
            0x00, 0x98, 0x00, 0x08,             // flowStartMilliseconds
            0x00, 0x99, 0x00, 0x08,             // flowEndMilliseconds
            0x00, 0x02, 0x00, 0x08,             // packetDeltaCount
            0x00, 0x01, 0x00, 0x08,             // octetDeltaCount
            0x80, 0x02, 0x00, 0x08, 0x00, 0x00, 0x72, 0x79, // reverse packetDeltaCount
            0x80, 0x01, 0x00, 0x08, 0x00, 0x00, 0x72, 0x79, // reverse octetDeltaCount
            0x00, 0x88, 0x00, 0x01,             // flowEndReason
            0x80, 0x04, 0x00, 0x01, 0x00, 0x00, 0x7e, 0xd9, // pgw proxyAccounting
            0x80, 0x01, 0xff, 0xff, 0x00, 0x00, 0x7e, 0xd9, // pgw deviceId
            0x80, 0x02, 0xff, 0xff, 0x00, 0x00, 0x7e, 0xd9, // pgw serviceName
            0x80, 0x03, 0xff, 0xff, 0x00, 0x00, 0x7e, 0xd9, // pgw serverName
        ];
        let mut template: Vec<u8> = vec![
            0x00, 0x02, 0x01, 0x48, // template set, length 328
            0x01, 0x00, 0x00, 0x14, // template 256, 20 fields
            0x00, 0x08, 0x00, 0x04, // sourceIPv4Address
            0x00, 0x0c, 0x00, 0x04, // destinationIPv4Address
        ];
        template.extend_from_slice(&fields_after_addresses);
        template.extend_from_slice(&[
            0x01, 0x01, 0x00, 0x14, // template 257, 20 fields
            0x00, 0x1b, 0x00, 0x10, // sourceIPv6Address, 16 bytes
            0x00, 0x1c, 0x00, 0x10, // destinationIPv6Address, 16 bytes
        ]);
        template.extend_from_slice(&fields_after_addresses);
        template.extend_from_slice(&[
            0x01, 0x02, 0x00, 0x14, // template 258, 20 fields
            0x00, 0x1b, 0x00, 0x10, // sourceIPv6Address, 16 bytes
            0x00, 0x1c, 0x00, 0x10, // destinationIPv6Address, 16 bytes
        ]);
        let mut nat66_after = fields_after_addresses.clone();
        // postNATSourceIPv6Address, postNATDestinationIPv6Address, 16 bytes
        nat66_after[12..20].copy_from_slice(&[0x01, 0x19, 0x00, 0x10, 0x01, 0x1a, 0x00, 0x10]);
        template.extend_from_slice(&nat66_after);
        assert_eq!(template.len(), 328);
        #[rustfmt::skip]
        let data: Vec<u8> = vec![
            0x01, 0x00, 0x00, 0x63,             // data set 256, length 99
            127, 1, 2, 3,                       // subscriber
            127, 0, 0, 80,                      // representative
            0x9c, 0x41, 0x00, 0x50,             // ports
            0x06,                               // TCP
            127, 0, 0, 9,                       // NAT key address
            127, 0, 0, 99,                      // real server
            0x04, 0x01, 0x1f, 0x90,             // NAT key port, server port
            0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, // start
            0, 0, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, // end
            0, 0, 0, 0, 0, 0, 0, 0x11,          // packets up
            0, 0, 0, 0, 0, 0, 0x22, 0x33,       // bytes up
            0, 0, 0, 0, 0, 0, 0, 0x44,          // packets down
            0, 0, 0, 0, 0x55, 0x66, 0x77, 0x88, // bytes down
            0x03,                               // end of flow detected
            0x01,                               // proxy accounting
            5, b'd', b'e', b'v', b'-', b'7',
            3, b'w', b'e', b'b',
            9, b'a', b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e',
        ];
        let total = 16 + template.len() + data.len();
        assert_eq!(total, 443);
        #[rustfmt::skip]
        let mut want: Vec<u8> = vec![
            0x00, 0x0a, 0x01, 0xbb,             // version 10, length 443
            0x65, 0x53, 0xf1, 0x00,             // export time 1700000000 s
            0x00, 0x00, 0x00, 0x00,             // sequence: no record before
            0x0a, 0x0b, 0x0c, 0x0d,             // observation domain
        ];
        want.extend_from_slice(&template);
        want.extend_from_slice(&data);
        assert_eq!(out.messages[0], want);
        assert_eq!(x.sequence(), 1);

        // Second message: no template (not due), sequence 1.
        let out = x.encode(&[row()], 1_700_000_001_000);
        assert_eq!(out.templates, 0);
        let m = &out.messages[0];
        assert_eq!(&m[0..4], &[0x00, 0x0a, 0x00, 16 + 99]);
        assert_eq!(&m[8..12], &[0, 0, 0, 1]);
        assert_eq!(&m[16..], &data[..]);
    }

    /// NAT64 records (IPv6 subscriber) in template 257, byte by byte, and
    /// one data set per run of records of the same template.
    #[test]
    fn ipv6_subscriber_records_use_template_257_in_their_own_sets() {
        let sub6: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
        let mut r6 = row();
        r6.subscriber_ip = Ipv4Addr::UNSPECIFIED;
        r6.subscriber_ip6 = Some(sub6);
        r6.representative_ip6 = Some("64:ff9b::7f00:50".parse().unwrap());
        r6.device_id = "d6".into();
        r6.service = String::new();
        r6.server_name = String::new();
        let mut v = Vec::new();
        encode_record(&r6, &mut v);
        #[rustfmt::skip]
        let want6: Vec<u8> = vec![
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, // subscriber
            0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 80, // its destination
            0x9c, 0x41, 0x00, 0x50,             // ports
            0x06,                               // TCP
            127, 0, 0, 9,                       // postNATSourceIPv4Address
            127, 0, 0, 99,                      // postNATDestinationIPv4Address
            0x04, 0x01, 0x1f, 0x90,             // post-NAPT ports
            0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
            0, 0, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b,
            0, 0, 0, 0, 0, 0, 0, 0x11,
            0, 0, 0, 0, 0, 0, 0x22, 0x33,
            0, 0, 0, 0, 0, 0, 0, 0x44,
            0, 0, 0, 0, 0x55, 0x66, 0x77, 0x88,
            0x03, 0x01,
            2, b'd', b'6', 0, 0,
        ];
        assert_eq!(v, want6);
        assert_eq!(v.len(), FIXED_RECORD_LEN_V6 + 5);
        assert_eq!(record_template(&r6), TEMPLATE_ID_V6);

        let mut x = Exporter::new(ExporterConfig::default());
        let out = x.encode(&[row(), r6.clone(), r6.clone(), row()], 1_000);
        assert_eq!((out.messages.len(), out.records), (1, 4));
        let m = &out.messages[0];
        assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len());
        // Walk the sets: template set, then 256 (1 record), 257 (2), 256 (1).
        let mut sets = vec![];
        let mut off = HEADER_LEN;
        while off < m.len() {
            let id = u16::from_be_bytes([m[off], m[off + 1]]);
            let len = u16::from_be_bytes([m[off + 2], m[off + 3]]) as usize;
            sets.push((id, len));
            off += len;
        }
        assert_eq!(off, m.len());
        assert_eq!(
            sets,
            [
                (TEMPLATE_SET_ID, 328),
                (TEMPLATE_ID, 4 + 95),
                (TEMPLATE_ID_V6, 4 + 2 * want6.len()),
                (TEMPLATE_ID, 4 + 95),
            ]
        );
        let d6 = HEADER_LEN + 328 + 99 + 4;
        assert_eq!(&m[d6..d6 + want6.len()], &want6[..]);
        assert_eq!(x.sequence(), 4);
    }

    #[test]
    fn nat66_records_use_template_258_with_ipv6_post_nat_addresses() {
        let mut r = row();
        r.subscriber_ip = Ipv4Addr::UNSPECIFIED;
        r.representative_ip = Ipv4Addr::UNSPECIFIED;
        r.subscriber_ip6 = Some("2001:db8::7".parse().unwrap());
        r.representative_ip6 = Some("2001:db8:33::1".parse().unwrap());
        r.nat_ip6 = Some("2001:db8:80::9".parse().unwrap());
        r.real_server_ip6 = Some("2001:db8:80::63".parse().unwrap());
        r.device_id = "d6".into();
        r.service = String::new();
        r.server_name = String::new();
        assert_eq!(record_template(&r), TEMPLATE_ID_NAT66);
        let mut v = Vec::new();
        encode_record(&r, &mut v);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, // subscriber
            0x20, 0x01, 0x0d, 0xb8, 0, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // the VIP
            0x9c, 0x41, 0x00, 0x50,             // ports
            0x06,                               // TCP
            0x20, 0x01, 0x0d, 0xb8, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, // postNATSourceIPv6Address
            0x20, 0x01, 0x0d, 0xb8, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x63, // postNATDestinationIPv6Address
            0x04, 0x01, 0x1f, 0x90,             // post-NAPT ports
            0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
            0, 0, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b,
            0, 0, 0, 0, 0, 0, 0, 0x11,
            0, 0, 0, 0, 0, 0, 0x22, 0x33,
            0, 0, 0, 0, 0, 0, 0, 0x44,
            0, 0, 0, 0, 0x55, 0x66, 0x77, 0x88,
            0x03, 0x01,
            2, b'd', b'6', 0, 0,
        ];
        assert_eq!(v, want);
        assert_eq!(v.len(), FIXED_RECORD_LEN_NAT66 + 5);
        // without its IPv6 key and member (a row of an older database): 257
        r.nat_ip6 = None;
        assert_eq!(record_template(&r), TEMPLATE_ID_V6);
    }

    #[test]
    fn template_is_repeated_by_time_and_by_message_count() {
        let mut x = Exporter::new(ExporterConfig {
            template_every_ms: 1000,
            template_every_msgs: 3,
            ..ExporterConfig::default()
        });
        let has_t = |m: &Vec<u8>| m[16..18] == [0, 2];
        let t0 = 1_000_000;
        let mut seen = vec![];
        for k in 0..7u64 {
            let out = x.encode(&[row()], t0 + k); // well inside 1 s
            seen.push(has_t(&out.messages[0]));
        }
        assert_eq!(seen, [true, false, false, true, false, false, true]);
        let out = x.encode(&[row()], t0 + 6 + 1000); // time passed
        assert!(has_t(&out.messages[0]));
        assert_eq!(x.sequence(), 8);
    }

    #[test]
    fn refresh_timer_sends_the_template_set_alone() {
        let mut x = Exporter::new(ExporterConfig {
            template_every_ms: 5_000,
            ..ExporterConfig::default()
        });
        // Nothing sent yet: no refresh (the first data message carries it).
        assert_eq!(x.refresh(1_000_000), None);
        assert_eq!(x.refresh_at(), None);
        let out = x.encode(&[row(), row()], 1_000_000);
        assert_eq!(out.templates, 1);
        assert_eq!(x.refresh_at(), Some(1_005_000));
        assert_eq!(x.refresh(1_004_999), None);
        let m = x.refresh(1_005_000).unwrap();
        assert_eq!(m.len(), HEADER_LEN + 328);
        assert_eq!(&m[0..4], &[0x00, 0x0a, 0x01, 0x58]); // length 344
        assert_eq!(&m[4..8], &1_005u32.to_be_bytes()); // export time, s
        assert_eq!(&m[8..12], &[0, 0, 0, 2]); // two records before it
        assert_eq!(&m[16..20], &[0x00, 0x02, 0x01, 0x48]); // the template set
        assert_eq!(&m[20..24], &[0x01, 0x00, 0x00, 0x14], "template 256 first");
        assert_eq!(x.refresh_at(), Some(1_010_000));
        assert_eq!(x.refresh(1_006_000), None);
        // A data message right after a refresh needs no template.
        let out = x.encode(&[row()], 1_006_000);
        assert_eq!(out.templates, 0);
        assert_eq!(x.sequence(), 3);
    }

    #[test]
    fn rows_split_over_messages_and_sequence_counts_records() {
        let mut x = Exporter::new(ExporterConfig {
            max_message: min_message(),
            ..ExporterConfig::default()
        });
        let rows = vec![row(); 40];
        let out = x.encode(&rows, 5_000);
        assert_eq!(out.records, 40);
        assert!(out.messages.len() > 1);
        let mut seq = 0u32;
        let mut n = 0usize;
        for m in &out.messages {
            assert!(m.len() <= min_message());
            assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len());
            assert_eq!(u32::from_be_bytes([m[8], m[9], m[10], m[11]]), seq);
            // walk the sets
            let mut off = HEADER_LEN;
            let mut recs = 0;
            while off < m.len() {
                let id = u16::from_be_bytes([m[off], m[off + 1]]);
                let len = u16::from_be_bytes([m[off + 2], m[off + 3]]) as usize;
                if id == TEMPLATE_ID {
                    recs = (len - 4) / 95;
                    assert_eq!((len - 4) % 95, 0);
                }
                off += len;
            }
            assert_eq!(off, m.len());
            seq += recs as u32;
            n += recs;
        }
        assert_eq!(n, 40);
        assert_eq!(x.sequence(), 40);
    }

    #[test]
    fn long_strings_use_the_three_byte_length_and_are_cut_on_a_char_boundary() {
        let mut r = row();
        r.device_id = "é".repeat(200); // 400 bytes
        r.service = "s".repeat(255);
        r.server_name = String::new();
        let mut v = Vec::new();
        encode_record(&r, &mut v);
        let s = &v[FIXED_RECORD_LEN..];
        assert_eq!(&s[..3], &[255, 0x01, 0x00]); // 256 bytes = 128 × "é"
        assert_eq!(std::str::from_utf8(&s[3..259]).unwrap(), "é".repeat(128));
        assert_eq!(&s[259..262], &[255, 0x00, 0xff]); // 255 needs the long form
        assert_eq!(s[262 + 255], 0); // empty server name
        assert_eq!(v.len(), FIXED_RECORD_LEN + 259 + 258 + 1);
        assert_eq!(truncate_utf8("aé", 2), "a");
    }

    #[test]
    fn icmp_records_carry_no_ports_and_idle_end_reason() {
        let mut r = row();
        r.protocol = 1;
        r.close_reason = CloseReason::IdleTimeout;
        let mut v = Vec::new();
        encode_record(&r, &mut v);
        assert_eq!(&v[8..12], &[0, 0, 0, 0]);
        assert_eq!(&v[21..25], &[0, 0, 0, 0]);
        assert_eq!(v[FIXED_RECORD_LEN - 2], end_reason::IDLE_TIMEOUT);
    }
}
