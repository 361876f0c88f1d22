//! RADIUS codec: RFC 2865 (authentication), RFC 2866 (accounting), RFC 2869 /
//! RFC 3579 (Message-Authenticator), with the attribute numbers of RFC 3162 /
//! RFC 6911 kept for the later IPv6 work.
//!
//! Contract:
//! - [`Packet::parse`] validates a datagram once (header, Length field,
//!   every attribute's length); afterwards no accessor can fail or panic.
//!   Bytes past the Length field are padding and ignored (RFC 2865 §3).
//! - Replies are built with [`Builder`] into a small owned `Vec<u8>` (this
//!   is the control side: one allocation per reply is fine).
//! - Every authenticator check is constant time in the compared bytes.
//! - No I/O, no clock: the duplicate cache takes `now_ms` from the caller.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// Code + Identifier + Length + Authenticator.
pub const HEADER_LEN: usize = 20;
/// Largest RADIUS packet (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
pub const AUTHENTICATOR_LEN: usize = 16;
/// Largest attribute value (the length octet counts type and length too).
pub const MAX_ATTR_VALUE_LEN: usize = 253;
/// Largest PAP password (RFC 2865 §5.2).
pub const MAX_PAP_PASSWORD_LEN: usize = 128;

/// A Request or Response Authenticator.
pub type Authenticator = [u8; AUTHENTICATOR_LEN];

/// Byte ranges of the header.
mod field {
    use std::ops::Range;
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const AUTHENTICATOR: Range<usize> = 4..20;
}

/// Packet codes (RFC 2865 §3, RFC 2866 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    StatusServer,
    StatusClient,
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(v: u8) -> Self {
        match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(c: Code) -> u8 {
        match c {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::StatusClient => 13,
            Code::Unknown(v) => v,
        }
    }
}

/// Attribute type numbers.
pub mod attr {
    // RFC 2865
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const CHAP_PASSWORD: u8 = 3;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_PROTOCOL: u8 = 7;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const FRAMED_IP_NETMASK: u8 = 9;
    pub const FRAMED_ROUTING: u8 = 10;
    pub const FILTER_ID: u8 = 11;
    pub const FRAMED_MTU: u8 = 12;
    pub const FRAMED_COMPRESSION: u8 = 13;
    pub const LOGIN_IP_HOST: u8 = 14;
    pub const LOGIN_SERVICE: u8 = 15;
    pub const LOGIN_TCP_PORT: u8 = 16;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const CALLBACK_NUMBER: u8 = 19;
    pub const CALLBACK_ID: u8 = 20;
    pub const FRAMED_ROUTE: u8 = 22;
    pub const FRAMED_IPX_NETWORK: u8 = 23;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const IDLE_TIMEOUT: u8 = 28;
    pub const TERMINATION_ACTION: u8 = 29;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const PROXY_STATE: u8 = 33;
    pub const LOGIN_LAT_SERVICE: u8 = 34;
    pub const LOGIN_LAT_NODE: u8 = 35;
    pub const LOGIN_LAT_GROUP: u8 = 36;
    pub const FRAMED_APPLETALK_LINK: u8 = 37;
    pub const FRAMED_APPLETALK_NETWORK: u8 = 38;
    pub const FRAMED_APPLETALK_ZONE: u8 = 39;
    pub const CHAP_CHALLENGE: u8 = 60;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const PORT_LIMIT: u8 = 62;
    pub const LOGIN_LAT_PORT: u8 = 63;
    // RFC 2866
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_DELAY_TIME: u8 = 41;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_AUTHENTIC: u8 = 45;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const ACCT_MULTI_SESSION_ID: u8 = 50;
    pub const ACCT_LINK_COUNT: u8 = 51;
    // RFC 2869
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EVENT_TIMESTAMP: u8 = 55;
    pub const ARAP_PASSWORD: u8 = 70;
    pub const CONNECT_INFO: u8 = 77;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    pub const NAS_PORT_ID: u8 = 87;
    pub const FRAMED_POOL: u8 = 88;
    // RFC 3162 (IPv6)
    pub const NAS_IPV6_ADDRESS: u8 = 95;
    pub const FRAMED_INTERFACE_ID: u8 = 96;
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
    pub const LOGIN_IPV6_HOST: u8 = 98;
    pub const FRAMED_IPV6_ROUTE: u8 = 99;
    pub const FRAMED_IPV6_POOL: u8 = 100;
    // RFC 4818
    pub const DELEGATED_IPV6_PREFIX: u8 = 123;
    // RFC 6911 (IPv6)
    pub const FRAMED_IPV6_ADDRESS: u8 = 168;
    pub const DNS_SERVER_IPV6_ADDRESS: u8 = 169;
    pub const ROUTE_IPV6_INFORMATION: u8 = 170;
    pub const DELEGATED_IPV6_PREFIX_POOL: u8 = 171;
    pub const STATEFUL_IPV6_ADDRESS_POOL: u8 = 172;
}

/// Values of Acct-Status-Type (RFC 2866 §5.1).
pub mod acct_status {
    pub const START: u32 = 1;
    pub const STOP: u32 = 2;
    pub const INTERIM_UPDATE: u32 = 3;
    pub const ACCOUNTING_ON: u32 = 7;
    pub const ACCOUNTING_OFF: u32 = 8;
}

/// Values of Acct-Terminate-Cause (RFC 2866 §5.10).
pub mod terminate_cause {
    pub const USER_REQUEST: u32 = 1;
    pub const LOST_CARRIER: u32 = 2;
    pub const LOST_SERVICE: u32 = 3;
    pub const IDLE_TIMEOUT: u32 = 4;
    pub const SESSION_TIMEOUT: u32 = 5;
    pub const ADMIN_RESET: u32 = 6;
    pub const ADMIN_REBOOT: u32 = 7;
    pub const PORT_ERROR: u32 = 8;
    pub const NAS_ERROR: u32 = 9;
    pub const NAS_REQUEST: u32 = 10;
    pub const NAS_REBOOT: u32 = 11;
}

/// Values of Service-Type (RFC 2865 §5.6).
pub mod service_type {
    pub const LOGIN_USER: u32 = 1;
    pub const FRAMED_USER: u32 = 2;
}

/// Why a datagram is not a well-formed RADIUS packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than a header.
    TooShort { received: usize },
    /// Length field below 20 or above 4096.
    BadLengthField { length: usize },
    /// Length field larger than the datagram (RFC 2865 §3: silently discard).
    Truncated { length: usize, received: usize },
    /// An attribute whose length octet is below 2 (or a lone type octet at the end).
    AttrTooShort { offset: usize },
    /// An attribute that runs past the packet's Length.
    AttrOverrun { offset: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::TooShort { received } => {
                write!(
                    f,
                    "radius: {received} bytes, shorter than the 20-byte header"
                )
            }
            ParseError::BadLengthField { length } => {
                write!(f, "radius: Length field {length} outside 20..=4096")
            }
            ParseError::Truncated { length, received } => {
                write!(
                    f,
                    "radius: Length field {length} but only {received} bytes received"
                )
            }
            ParseError::AttrTooShort { offset } => {
                write!(
                    f,
                    "radius: attribute at offset {offset} has a length below 2"
                )
            }
            ParseError::AttrOverrun { offset } => {
                write!(
                    f,
                    "radius: attribute at offset {offset} runs past the packet"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// A validated view of a RADIUS packet (exactly `Length` bytes).
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Validates `datagram` and returns a view of its first `Length` bytes.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, ParseError> {
        if datagram.len() < HEADER_LEN {
            return Err(ParseError::TooShort {
                received: datagram.len(),
            });
        }
        let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
            return Err(ParseError::BadLengthField { length });
        }
        if length > datagram.len() {
            return Err(ParseError::Truncated {
                length,
                received: datagram.len(),
            });
        }
        let bytes = &datagram[..length];
        let mut pos = HEADER_LEN;
        while pos < length {
            let Some(&alen) = bytes.get(pos + 1) else {
                return Err(ParseError::AttrTooShort { offset: pos });
            };
            let alen = usize::from(alen);
            if alen < 2 {
                return Err(ParseError::AttrTooShort { offset: pos });
            }
            if pos + alen > length {
                return Err(ParseError::AttrOverrun { offset: pos });
            }
            pos += alen;
        }
        Ok(Packet { bytes })
    }

    pub fn code(&self) -> Code {
        Code::from(self.bytes[field::CODE])
    }

    pub fn identifier(&self) -> u8 {
        self.bytes[field::IDENTIFIER]
    }

    /// The Length field (= `as_bytes().len()`).
    pub fn length(&self) -> usize {
        self.bytes.len()
    }

    pub fn authenticator(&self) -> Authenticator {
        let mut a = [0u8; AUTHENTICATOR_LEN];
        a.copy_from_slice(&self.bytes[field::AUTHENTICATOR]);
        a
    }

    /// The packet's bytes, padding past Length excluded.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            bytes: self.bytes,
            pos: HEADER_LEN,
        }
    }

    /// Value of the first attribute of type `typ`.
    pub fn attr(&self, typ: u8) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    pub fn attr_count(&self, typ: u8) -> usize {
        self.attributes().filter(|a| a.typ == typ).count()
    }

    /// First attribute of type `typ` as a 32-bit integer; `None` if absent or not 4 bytes.
    pub fn attr_u32(&self, typ: u8) -> Option<u32> {
        let v: [u8; 4] = self.attr(typ)?.try_into().ok()?;
        Some(u32::from_be_bytes(v))
    }

    pub fn attr_ipv4(&self, typ: u8) -> Option<Ipv4Addr> {
        self.attr_u32(typ).map(Ipv4Addr::from)
    }

    /// First attribute of type `typ` as UTF-8 text; `None` if absent or not UTF-8.
    pub fn attr_str(&self, typ: u8) -> Option<&'a str> {
        std::str::from_utf8(self.attr(typ)?).ok()
    }
}

/// One attribute of a validated packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub typ: u8,
    pub value: &'a [u8],
    /// Offset of the type octet from the start of the packet.
    pub offset: usize,
}

/// Iterator over the attributes of a validated packet.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;
    fn next(&mut self) -> Option<Attribute<'a>> {
        // The packet was validated; `get` keeps this panic-free regardless.
        let typ = *self.bytes.get(self.pos)?;
        let len = usize::from(*self.bytes.get(self.pos + 1)?);
        let value = self.bytes.get(self.pos + 2..self.pos + len.max(2))?;
        let offset = self.pos;
        self.pos += len.max(2);
        Some(Attribute { typ, value, offset })
    }
}

/// Why a packet could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// Attribute value above 253 bytes.
    ValueTooLong { typ: u8, len: usize },
    /// The packet would exceed 4096 bytes.
    PacketTooLong,
    /// PAP password above 128 bytes.
    PasswordTooLong { len: usize },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::ValueTooLong { typ, len } => {
                write!(
                    f,
                    "radius: attribute {typ} value of {len} bytes exceeds 253"
                )
            }
            BuildError::PacketTooLong => write!(f, "radius: packet would exceed 4096 bytes"),
            BuildError::PasswordTooLong { len } => {
                write!(f, "radius: password of {len} bytes exceeds 128")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Builds one packet. The authenticator and a Message-Authenticator (if
/// added with [`Builder::message_authenticator`]) are filled in by the
/// `finish_*` method that matches the packet's kind.
#[derive(Clone, Debug)]
pub struct Builder {
    buf: Vec<u8>,
    /// Offset of the Message-Authenticator value, if one was added.
    msg_auth: Option<usize>,
}

impl Builder {
    pub fn new(code: Code, identifier: u8) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[u8::from(code), identifier, 0, 0]);
        buf.extend_from_slice(&[0u8; AUTHENTICATOR_LEN]);
        Builder {
            buf,
            msg_auth: None,
        }
    }

    pub fn attr(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, BuildError> {
        if value.len() > MAX_ATTR_VALUE_LEN {
            return Err(BuildError::ValueTooLong {
                typ,
                len: value.len(),
            });
        }
        if self.buf.len() + 2 + value.len() > MAX_PACKET_LEN {
            return Err(BuildError::PacketTooLong);
        }
        self.buf.push(typ);
        self.buf.push((2 + value.len()) as u8);
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    pub fn attr_u32(&mut self, typ: u8, v: u32) -> Result<&mut Self, BuildError> {
        self.attr(typ, &v.to_be_bytes())
    }

    pub fn attr_ipv4(&mut self, typ: u8, a: Ipv4Addr) -> Result<&mut Self, BuildError> {
        self.attr(typ, &a.octets())
    }

    pub fn attr_str(&mut self, typ: u8, s: &str) -> Result<&mut Self, BuildError> {
        self.attr(typ, s.as_bytes())
    }

    /// Adds a Message-Authenticator (RFC 2869 §5.14), computed at finish.
    /// A second call does nothing.
    pub fn message_authenticator(&mut self) -> Result<&mut Self, BuildError> {
        if self.msg_auth.is_none() {
            let at = self.buf.len() + 2;
            self.attr(attr::MESSAGE_AUTHENTICATOR, &[0u8; 16])?;
            self.msg_auth = Some(at);
        }
        Ok(self)
    }

    /// Adds a User-Password hidden with `secret` and the Request
    /// Authenticator the request will carry (RFC 2865 §5.2).
    pub fn user_password(
        &mut self,
        password: &[u8],
        secret: &[u8],
        request_auth: &Authenticator,
    ) -> Result<&mut Self, BuildError> {
        let hidden = encrypt_user_password(password, secret, request_auth)?;
        self.attr(attr::USER_PASSWORD, &hidden)
    }

    fn set_length(&mut self) {
        let len = self.buf.len() as u16;
        self.buf[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    fn fill_msg_auth(&mut self, secret: &[u8]) {
        if let Some(at) = self.msg_auth {
            self.buf[at..at + 16].fill(0);
            let mac = hmac_md5(secret, &self.buf);
            self.buf[at..at + 16].copy_from_slice(&mac);
        }
    }

    /// A response (Access-Accept/Reject/Challenge, Accounting-Response):
    /// Response Authenticator = MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
    pub fn finish_response(mut self, request_auth: &Authenticator, secret: &[u8]) -> Vec<u8> {
        self.set_length();
        self.buf[field::AUTHENTICATOR].copy_from_slice(request_auth);
        self.fill_msg_auth(secret);
        let auth = md5_of(&[&self.buf, secret]);
        self.buf[field::AUTHENTICATOR].copy_from_slice(&auth);
        self.buf
    }

    /// An Access-Request (or Status-Server) with the caller's random
    /// Request Authenticator.
    pub fn finish_access_request(mut self, request_auth: &Authenticator, secret: &[u8]) -> Vec<u8> {
        self.set_length();
        self.buf[field::AUTHENTICATOR].copy_from_slice(request_auth);
        self.fill_msg_auth(secret);
        self.buf
    }

    /// An Accounting-Request: Request Authenticator =
    /// MD5(Code+ID+Length+16 zero octets+Attributes+Secret) (RFC 2866 §3).
    pub fn finish_accounting_request(mut self, secret: &[u8]) -> Vec<u8> {
        self.set_length();
        self.buf[field::AUTHENTICATOR].fill(0);
        self.fill_msg_auth(secret);
        let auth = md5_of(&[&self.buf, secret]);
        self.buf[field::AUTHENTICATOR].copy_from_slice(&auth);
        self.buf
    }
}

fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut mac = Hmac::<Md5>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The CHAP response a peer that knows `password` gives (RFC 1994 §4.1,
/// RFC 2865 §5.3): MD5 over the CHAP identifier, the password and the
/// challenge (CHAP-Challenge, else the Request Authenticator).
pub fn chap_response(ident: u8, password: &[u8], challenge: &[u8]) -> [u8; 16] {
    md5_of(&[&[ident], password, challenge])
}

/// Equality in time independent of where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// MD5 over `bytes` with the authenticator field replaced by `auth_in_field`, then `secret`.
fn md5_with_auth(bytes: &[u8], auth_in_field: &Authenticator, secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(&bytes[..field::AUTHENTICATOR.start]);
    h.update(auth_in_field);
    h.update(&bytes[field::AUTHENTICATOR.end..]);
    h.update(secret);
    h.finalize().into()
}

/// RFC 2866 §3: checks an Accounting-Request's Request Authenticator.
pub fn verify_accounting_request(pkt: &Packet<'_>, secret: &[u8]) -> bool {
    let expect = md5_with_auth(pkt.as_bytes(), &[0u8; 16], secret);
    ct_eq(&expect, &pkt.authenticator())
}

/// Checks a response's Response Authenticator against the request's
/// authenticator (the NAS's side of the exchange; used by tests and tools).
pub fn verify_response(resp: &Packet<'_>, request_auth: &Authenticator, secret: &[u8]) -> bool {
    let expect = md5_with_auth(resp.as_bytes(), request_auth, secret);
    ct_eq(&expect, &resp.authenticator())
}

/// Result of checking the Message-Authenticator attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageAuth {
    Absent,
    Valid,
    /// Wrong HMAC, wrong length, more than one, or a response checked
    /// without the request's authenticator.
    Invalid,
}

/// Checks the Message-Authenticator (RFC 2869 §5.14, RFC 3579 §3.2):
/// HMAC-MD5 keyed with the secret over the packet with the attribute's value
/// zeroed and, in the authenticator field: the packet's own authenticator for
/// Access-Request and Status-Server; the request's (`request_auth`) for
/// responses; 16 zero octets for Accounting-Request and other requests.
pub fn check_message_authenticator(
    pkt: &Packet<'_>,
    secret: &[u8],
    request_auth: Option<&Authenticator>,
) -> MessageAuth {
    let mut found = None;
    for a in pkt.attributes() {
        if a.typ == attr::MESSAGE_AUTHENTICATOR {
            if found.is_some() {
                return MessageAuth::Invalid;
            }
            found = Some(a);
        }
    }
    let Some(a) = found else {
        return MessageAuth::Absent;
    };
    if a.value.len() != 16 {
        return MessageAuth::Invalid;
    }
    let auth_in_field = match pkt.code() {
        Code::AccessRequest | Code::StatusServer => pkt.authenticator(),
        Code::AccessAccept
        | Code::AccessReject
        | Code::AccessChallenge
        | Code::AccountingResponse => match request_auth {
            Some(r) => *r,
            None => return MessageAuth::Invalid,
        },
        _ => [0u8; 16],
    };
    let bytes = pkt.as_bytes();
    let value_at = a.offset + 2;
    let mut mac = Hmac::<Md5>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&bytes[..field::AUTHENTICATOR.start]);
    mac.update(&auth_in_field);
    mac.update(&bytes[field::AUTHENTICATOR.end..value_at]);
    mac.update(&[0u8; 16]);
    mac.update(&bytes[value_at + 16..]);
    let expect: [u8; 16] = mac.finalize().into_bytes().into();
    if ct_eq(&expect, a.value) {
        MessageAuth::Valid
    } else {
        MessageAuth::Invalid
    }
}

/// A User-Password attribute whose length is not a multiple of 16 in 16..=128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PapLengthError {
    pub len: usize,
}

impl fmt::Display for PapLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "radius: User-Password of {} bytes (must be 16..=128, a multiple of 16)",
            self.len
        )
    }
}

impl std::error::Error for PapLengthError {}

/// RFC 2865 §5.2: recovers a PAP password. b1 = MD5(S + RA), c1 = p1 xor b1,
/// bi = MD5(S + c(i-1)). Trailing NUL padding is removed.
pub fn decrypt_user_password(
    hidden: &[u8],
    secret: &[u8],
    request_auth: &Authenticator,
) -> Result<Vec<u8>, PapLengthError> {
    if hidden.is_empty() || hidden.len() & 0xf != 0 || hidden.len() > MAX_PAP_PASSWORD_LEN {
        return Err(PapLengthError { len: hidden.len() });
    }
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = request_auth;
    for chunk in hidden.chunks_exact(16) {
        let b = md5_of(&[secret, prev]);
        out.extend(chunk.iter().zip(b.iter()).map(|(c, b)| c ^ b));
        prev = chunk;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// RFC 2865 §5.2: hides a PAP password (NUL-padded to a multiple of 16; an
/// empty password becomes one block of NULs).
pub fn encrypt_user_password(
    password: &[u8],
    secret: &[u8],
    request_auth: &Authenticator,
) -> Result<Vec<u8>, BuildError> {
    if password.len() > MAX_PAP_PASSWORD_LEN {
        return Err(BuildError::PasswordTooLong {
            len: password.len(),
        });
    }
    let padded_len = password.len().div_ceil(16).max(1) * 16;
    let mut out = password.to_vec();
    out.resize(padded_len, 0);
    let mut prev: Authenticator = *request_auth;
    for chunk in out.chunks_exact_mut(16) {
        let b = md5_of(&[secret, &prev]);
        for (c, b) in chunk.iter_mut().zip(b.iter()) {
            *c ^= b;
        }
        prev.copy_from_slice(chunk);
    }
    Ok(out)
}

/// What an Access-Accept carries besides the Message-Authenticator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptAttrs {
    /// Framed-IP-Address: the subscriber's address.
    pub framed_ip: Option<Ipv4Addr>,
    pub session_timeout_s: Option<u32>,
    pub idle_timeout_s: Option<u32>,
    /// Acct-Interim-Interval: how often the NAS sends Interim-Update.
    pub acct_interim_interval_s: Option<u32>,
    /// Class, echoed by the NAS in its accounting (RFC 2865 §5.25).
    pub class: Option<Vec<u8>>,
    /// Framed-IPv6-Prefix (RFC 3162 §2.3): the subscriber's IPv6 prefix.
    pub framed_ipv6_prefix: Option<([u8; 16], u8)>,
}

/// Proxy-State attributes must be copied into the response unmodified and
/// in order (RFC 2865 §5.33).
fn copy_proxy_state(b: &mut Builder, req: &Packet<'_>) -> Result<(), BuildError> {
    for a in req.attributes().filter(|a| a.typ == attr::PROXY_STATE) {
        b.attr(a.typ, a.value)?;
    }
    Ok(())
}

/// Access-Accept for `req`. A Message-Authenticator is always the first
/// attribute of Access-* responses (RFC 3579 requires it only with
/// EAP-Message; sending it always is the BlastRADIUS / CVE-2024-3596 advice).
pub fn access_accept(
    req: &Packet<'_>,
    secret: &[u8],
    attrs: &AcceptAttrs,
) -> Result<Vec<u8>, BuildError> {
    let mut b = Builder::new(Code::AccessAccept, req.identifier());
    b.message_authenticator()?;
    b.attr_u32(attr::SERVICE_TYPE, service_type::FRAMED_USER)?;
    if let Some(ip) = attrs.framed_ip {
        b.attr_ipv4(attr::FRAMED_IP_ADDRESS, ip)?;
    }
    if let Some(t) = attrs.session_timeout_s {
        b.attr_u32(attr::SESSION_TIMEOUT, t)?;
    }
    if let Some(t) = attrs.idle_timeout_s {
        b.attr_u32(attr::IDLE_TIMEOUT, t)?;
    }
    if let Some(t) = attrs.acct_interim_interval_s {
        b.attr_u32(attr::ACCT_INTERIM_INTERVAL, t)?;
    }
    if let Some(c) = &attrs.class {
        b.attr(attr::CLASS, c)?;
    }
    if let Some((prefix, len)) = attrs.framed_ipv6_prefix {
        // Reserved, Prefix-Length, then only the bytes the length covers.
        let n = (len as usize).div_ceil(8).min(16);
        let mut v = vec![0u8, len];
        v.extend_from_slice(&prefix[..n]);
        b.attr(attr::FRAMED_IPV6_PREFIX, &v)?;
    }
    copy_proxy_state(&mut b, req)?;
    Ok(b.finish_response(&req.authenticator(), secret))
}

/// Access-Reject for `req` (no Reply-Message: nothing told to a prober).
pub fn access_reject(req: &Packet<'_>, secret: &[u8]) -> Result<Vec<u8>, BuildError> {
    let mut b = Builder::new(Code::AccessReject, req.identifier());
    b.message_authenticator()?;
    copy_proxy_state(&mut b, req)?;
    Ok(b.finish_response(&req.authenticator(), secret))
}

/// Accounting-Response for `req` (RFC 2866 §4.2: no attributes but Proxy-State).
pub fn accounting_response(req: &Packet<'_>, secret: &[u8]) -> Result<Vec<u8>, BuildError> {
    let mut b = Builder::new(Code::AccountingResponse, req.identifier());
    copy_proxy_state(&mut b, req)?;
    Ok(b.finish_response(&req.authenticator(), secret))
}

/// Identity of a request for duplicate detection (RFC 5080 §2.2.2): the
/// client (source address and port, or any caller key), the code, the
/// Identifier and the Request Authenticator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DupKey<K> {
    pub client: K,
    pub code: u8,
    pub identifier: u8,
    pub authenticator: Authenticator,
}

impl<K> DupKey<K> {
    pub fn of(client: K, pkt: &Packet<'_>) -> Self {
        DupKey {
            client,
            code: u8::from(pkt.code()),
            identifier: pkt.identifier(),
            authenticator: pkt.authenticator(),
        }
    }
}

/// Replies already sent, so a retransmitted request gets the same bytes
/// again without being processed twice. A fixed-capacity structure: both
/// tables are allocated at construction (the map for twice `capacity`, so
/// that churn rehashes it in place) and never grow; when full, the oldest
/// entry is evicted (counted in `evicted`); an entry lives `ttl_ms` after
/// its insertion. Replies are at most
/// [`MAX_PACKET_LEN`] bytes, so memory stays under
/// `capacity * (3 * size_of DupKey<K> + 80 + MAX_PACKET_LEN)` bytes
/// whatever a client sends (a flood of distinct identifiers only evicts).
#[derive(Debug)]
pub struct DupCache<K> {
    capacity: usize,
    ttl_ms: u64,
    map: HashMap<DupKey<K>, (u64, Vec<u8>)>,
    /// Keys in insertion order with their insertion time; one per map entry.
    order: VecDeque<(u64, DupKey<K>)>,
    /// Entries pushed out by newer ones before their time.
    pub evicted: u64,
}

impl<K: Eq + Hash + Clone> DupCache<K> {
    pub fn new(capacity: usize, ttl_ms: u64) -> Self {
        DupCache {
            capacity,
            ttl_ms,
            // Twice the entries: a map at most half full rehashes in place
            // when deleted slots run out, instead of growing.
            map: HashMap::with_capacity(capacity.saturating_mul(2)),
            order: VecDeque::with_capacity(capacity),
            evicted: 0,
        }
    }

    /// The most entries it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots allocated in its tables: the map's (which varies a little as
    /// deleted slots are reclaimed, never growing past what `new` sized it
    /// for) and the order queue's.
    pub fn allocated(&self) -> (usize, usize) {
        (self.map.capacity(), self.order.capacity())
    }

    /// The cached reply, if the entry exists and has not expired at `now_ms`.
    pub fn get(&self, key: &DupKey<K>, now_ms: u64) -> Option<&[u8]> {
        let (at, reply) = self.map.get(key)?;
        if now_ms >= at.saturating_add(self.ttl_ms) {
            return None;
        }
        Some(reply)
    }

    /// Stores `reply`. An existing entry keeps its insertion time.
    pub fn insert(&mut self, key: DupKey<K>, reply: Vec<u8>, now_ms: u64) {
        if self.capacity == 0 {
            return;
        }
        self.handle_timeout(now_ms);
        if let Some(e) = self.map.get_mut(&key) {
            e.1 = reply;
            return;
        }
        if reply.len() > MAX_PACKET_LEN {
            return;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some((_, old)) => {
                    self.map.remove(&old);
                    self.evicted += 1;
                }
                None => break,
            }
        }
        self.order.push_back((now_ms, key.clone()));
        self.map.insert(key, (now_ms, reply));
    }

    /// Drops the entries expired at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        while let Some((at, _)) = self.order.front() {
            if now_ms < at.saturating_add(self.ttl_ms) {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.map.remove(&key);
            }
        }
    }

    /// When the oldest entry expires.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.order
            .front()
            .map(|(at, _)| at.saturating_add(self.ttl_ms))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A per-client request rate: `per_s` requests a second on average, up to
/// `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_s: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    /// 200 requests a second, bursts of 400: far above what one NAS sends
    /// in normal operation (a login is two or three requests), low enough
    /// that one client cannot monopolise the management thread.
    fn default() -> Self {
        RateLimit {
            per_s: 200,
            burst: 400,
        }
    }
}

/// A token bucket in integer milli-tokens, time from the caller (ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Milli-tokens available (at most `burst * 1000`).
    milli: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now_ms: u64) -> Self {
        TokenBucket {
            limit,
            milli: u64::from(limit.burst) * 1000,
            last_ms: now_ms,
        }
    }

    /// Takes one token if there is one at `now_ms`. A clock that goes back
    /// adds nothing.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let cap = u64::from(self.limit.burst) * 1000;
        let elapsed = now_ms.saturating_sub(self.last_ms);
        // per_s tokens a second = per_s milli-tokens a millisecond.
        self.milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(u64::from(self.limit.per_s)))
            .min(cap);
        self.last_ms = self.last_ms.max(now_ms);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// Why a datagram was refused before the RADIUS logic saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its source address is no configured client: dropped (RFC 2865 §3:
    /// silently discarded), no reply.
    UnknownClient,
    /// Its client is over its request rate: dropped, no reply (the NAS
    /// retransmits later).
    RateLimited,
}

/// One configured NAS: its settings, its bucket, its counters.
#[derive(Clone, Debug)]
pub struct ClientState<C> {
    pub client: C,
    bucket: TokenBucket,
    /// Requests let through.
    pub admitted: u64,
    /// Requests dropped over the rate.
    pub rate_limited: u64,
}

/// The NAS clients of a RADIUS server by source address `A`, each with
/// its request rate limit: the first check on every datagram.
#[derive(Clone, Debug)]
pub struct Clients<A, C> {
    clients: HashMap<A, ClientState<C>>,
    /// Datagrams from an address that is no client.
    pub unknown_client: u64,
    /// Datagrams over their client's rate (all clients).
    pub rate_limited: u64,
}

impl<A: Eq + Hash, C> Default for Clients<A, C> {
    fn default() -> Self {
        Clients {
            clients: HashMap::new(),
            unknown_client: 0,
            rate_limited: 0,
        }
    }
}

impl<A: Eq + Hash, C> Clients<A, C> {
    /// Adds (or replaces) the client at `addr`; its bucket starts full.
    pub fn insert(&mut self, addr: A, client: C, limit: RateLimit, now_ms: u64) {
        self.clients.insert(
            addr,
            ClientState {
                client,
                bucket: TokenBucket::new(limit, now_ms),
                admitted: 0,
                rate_limited: 0,
            },
        );
    }

    /// The client a datagram from `from` at `now_ms` belongs to, if it is
    /// one and under its rate; every refusal is counted.
    pub fn admit(&mut self, from: &A, now_ms: u64) -> Result<&C, Refusal> {
        let Some(c) = self.clients.get_mut(from) else {
            self.unknown_client += 1;
            return Err(Refusal::UnknownClient);
        };
        if !c.bucket.take(now_ms) {
            c.rate_limited += 1;
            self.rate_limited += 1;
            return Err(Refusal::RateLimited);
        }
        c.admitted += 1;
        Ok(&c.client)
    }

    pub fn get(&self, addr: &A) -> Option<&ClientState<C>> {
        self.clients.get(addr)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&A, &ClientState<C>)> {
        self.clients.iter()
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // RFC 2865 §7.1 "User Telnet to Specified Host", byte for byte from the
    // RFC text; secret "xyzzy5461", password "arctangent".
    const RFC2865_7_1_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
        98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
        93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
        01 10 05 06 00 00 00 03";
    const RFC2865_7_1_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
        9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
        0e 06 c0 a8 01 03";
    const RFC_SECRET: &[u8] = b"xyzzy5461";

    // Captured from FreeRADIUS radclient 3.2.1 (freeradius-utils) sending to a
    // Python UDP listener on 127.0.0.1, secret "s3cr3t":
    // Access-Request, User-Name "E0658", User-Password "0123456789abcdefg"
    // (17 bytes), Calling-Station-Id "F50200001", NAS-IP-Address 192.0.2.1,
    // Message-Authenticator.
    pub(crate) const RADCLIENT_AUTH_MA: &str = "015b0060f95a8b277d4e79b740284fcbae35c9f501074530363538022273306a7947e8db7c055bd60c5b94d842cf013833fe59e960f2fe88dc174c98cb1f0b4635303230303030310406c00002015012c7582f52546c24584f6677737c6b43da";
    // Accounting-Request Start, Acct-Session-Id "10010001", Calling-Station-Id
    // "F50200001", Framed-IP-Address 10.32.0.1, NAS-IP-Address 192.0.2.1.
    pub(crate) const RADCLIENT_ACCT_START: &str = "04e4003b9461d1d077bcadd3f7bf1944cbbc648d2806000000012c0a31303031303030311f0b46353032303030303108060a2000010406c0000201";
    // Access-Request, User-Name "u", User-Password of 1 byte "x".
    const RADCLIENT_PAP_1: &str =
        "0189002955448d067ac5eb209745161d896fd8c70103750212123cdc3011fb6c355c0ad3d7167f0ac8";
    // Access-Request, User-Name "u", User-Password of 16 bytes "0123456789ABCDEF".
    const RADCLIENT_PAP_16: &str =
        "01f5002925067e46cad95c292211bde4067eddf20103750212522e6a680664fa13483e7c466088acab";
    // Access-Request, User-Name "u", User-Password of 128 bytes "ABC..Z" repeated.
    const RADCLIENT_PAP_128: &str = "01b10099d7661daa71116a227b7c964cc2134b3e0103750282924fe98529387eb5c4d63e643019425301e3a5d3a138aeed968d66076b10efa41f7860dcc7f8e1ceecfc2523eeb9bc4ad2a4d9ee7850d2cd877c9741432c5b497b5fe59ee786e7ca001747795a0075abc62f8426f9da390d6c837506358bcf6d0c6ef5c6d680545934379c27a8d523136718de0aabd242267fec1b1ed0d9bc0d";
    const RADCLIENT_SECRET: &[u8] = b"s3cr3t";

    fn pap_of(pkt_hex: &str, secret: &[u8]) -> Vec<u8> {
        let bytes = hex(pkt_hex);
        let p = Packet::parse(&bytes).unwrap();
        decrypt_user_password(
            p.attr(attr::USER_PASSWORD).unwrap(),
            secret,
            &p.authenticator(),
        )
        .unwrap()
    }

    fn alphabet(n: usize) -> Vec<u8> {
        (0..n).map(|i| b'A' + (i % 26) as u8).collect()
    }

    #[test]
    fn rfc2865_7_1_request_parses() {
        let bytes = hex(RFC2865_7_1_REQUEST);
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.code(), Code::AccessRequest);
        assert_eq!(p.identifier(), 0);
        assert_eq!(p.length(), 56);
        assert_eq!(
            p.authenticator(),
            hex("0f403f9473978057bd83d5cb98f4227a").as_slice()
        );
        let types: Vec<u8> = p.attributes().map(|a| a.typ).collect();
        assert_eq!(
            types,
            [
                attr::USER_NAME,
                attr::USER_PASSWORD,
                attr::NAS_IP_ADDRESS,
                attr::NAS_PORT
            ]
        );
        assert_eq!(p.attr_str(attr::USER_NAME), Some("nemo"));
        assert_eq!(
            p.attr_ipv4(attr::NAS_IP_ADDRESS),
            Some(Ipv4Addr::new(192, 168, 1, 16))
        );
        assert_eq!(p.attr_u32(attr::NAS_PORT), Some(3));
        assert_eq!(
            check_message_authenticator(&p, RFC_SECRET, None),
            MessageAuth::Absent
        );
    }

    #[test]
    fn rfc2865_7_1_password_decrypts_and_reencrypts() {
        assert_eq!(pap_of(RFC2865_7_1_REQUEST, RFC_SECRET), b"arctangent");
        assert_ne!(pap_of(RFC2865_7_1_REQUEST, b"xyzzy5462"), b"arctangent");
        let bytes = hex(RFC2865_7_1_REQUEST);
        let p = Packet::parse(&bytes).unwrap();
        let hidden = encrypt_user_password(b"arctangent", RFC_SECRET, &p.authenticator()).unwrap();
        assert_eq!(hidden, p.attr(attr::USER_PASSWORD).unwrap());
    }

    #[test]
    fn rfc2865_7_1_request_built_byte_for_byte() {
        let ra: Authenticator = hex("0f403f9473978057bd83d5cb98f4227a").try_into().unwrap();
        let mut b = Builder::new(Code::AccessRequest, 0);
        b.attr_str(attr::USER_NAME, "nemo").unwrap();
        b.user_password(b"arctangent", RFC_SECRET, &ra).unwrap();
        b.attr_ipv4(attr::NAS_IP_ADDRESS, Ipv4Addr::new(192, 168, 1, 16))
            .unwrap();
        b.attr_u32(attr::NAS_PORT, 3).unwrap();
        assert_eq!(
            b.finish_access_request(&ra, RFC_SECRET),
            hex(RFC2865_7_1_REQUEST)
        );
    }

    #[test]
    fn rfc2865_7_1_accept_built_byte_for_byte() {
        let req = hex(RFC2865_7_1_REQUEST);
        let req = Packet::parse(&req).unwrap();
        let mut b = Builder::new(Code::AccessAccept, req.identifier());
        b.attr_u32(attr::SERVICE_TYPE, service_type::LOGIN_USER)
            .unwrap();
        b.attr_u32(attr::LOGIN_SERVICE, 0).unwrap(); // Telnet
        b.attr_ipv4(attr::LOGIN_IP_HOST, Ipv4Addr::new(192, 168, 1, 3))
            .unwrap();
        let out = b.finish_response(&req.authenticator(), RFC_SECRET);
        assert_eq!(out, hex(RFC2865_7_1_ACCEPT));
        let resp = Packet::parse(&out).unwrap();
        assert!(verify_response(&resp, &req.authenticator(), RFC_SECRET));
        assert!(!verify_response(&resp, &req.authenticator(), b"xyzzy546"));
    }

    #[test]
    fn radclient_message_authenticator_verifies() {
        let bytes = hex(RADCLIENT_AUTH_MA);
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(
            check_message_authenticator(&p, RADCLIENT_SECRET, None),
            MessageAuth::Valid
        );
        assert_eq!(
            check_message_authenticator(&p, b"s3cr3T", None),
            MessageAuth::Invalid
        );
        // Any changed attribute byte breaks it.
        let mut t = bytes.clone();
        let at = p
            .attributes()
            .find(|a| a.typ == attr::CALLING_STATION_ID)
            .unwrap()
            .offset
            + 2;
        t[at] ^= 1;
        let q = Packet::parse(&t).unwrap();
        assert_eq!(
            check_message_authenticator(&q, RADCLIENT_SECRET, None),
            MessageAuth::Invalid
        );
        // A changed Request Authenticator too.
        let mut t = bytes.clone();
        t[4] ^= 0x80;
        let q = Packet::parse(&t).unwrap();
        assert_eq!(
            check_message_authenticator(&q, RADCLIENT_SECRET, None),
            MessageAuth::Invalid
        );
    }

    #[test]
    fn message_authenticator_we_build_on_requests_matches_radclient() {
        let bytes = hex(RADCLIENT_AUTH_MA);
        let p = Packet::parse(&bytes).unwrap();
        let ra = p.authenticator();
        let mut b = Builder::new(Code::AccessRequest, p.identifier());
        b.attr_str(attr::USER_NAME, "E0658").unwrap();
        b.user_password(b"0123456789abcdefg", RADCLIENT_SECRET, &ra)
            .unwrap();
        b.attr_str(attr::CALLING_STATION_ID, "F50200001").unwrap();
        b.attr_ipv4(attr::NAS_IP_ADDRESS, Ipv4Addr::new(192, 0, 2, 1))
            .unwrap();
        b.message_authenticator().unwrap();
        assert_eq!(b.finish_access_request(&ra, RADCLIENT_SECRET), bytes);
    }

    #[test]
    fn message_authenticator_on_responses() {
        let req = hex(RADCLIENT_AUTH_MA);
        let req = Packet::parse(&req).unwrap();
        let ra = req.authenticator();
        let attrs = AcceptAttrs {
            framed_ip: Some(Ipv4Addr::new(10, 32, 0, 5)),
            ..Default::default()
        };
        for out in [
            access_accept(&req, RADCLIENT_SECRET, &attrs).unwrap(),
            access_reject(&req, RADCLIENT_SECRET).unwrap(),
        ] {
            let resp = Packet::parse(&out).unwrap();
            assert_eq!(
                resp.attributes().next().unwrap().typ,
                attr::MESSAGE_AUTHENTICATOR
            );
            assert!(verify_response(&resp, &ra, RADCLIENT_SECRET));
            assert_eq!(
                check_message_authenticator(&resp, RADCLIENT_SECRET, Some(&ra)),
                MessageAuth::Valid
            );
            let mut other = ra;
            other[0] ^= 1;
            assert_eq!(
                check_message_authenticator(&resp, RADCLIENT_SECRET, Some(&other)),
                MessageAuth::Invalid
            );
            assert_eq!(
                check_message_authenticator(&resp, RADCLIENT_SECRET, None),
                MessageAuth::Invalid
            );
        }
    }

    #[test]
    fn message_authenticator_duplicated_or_short_is_invalid() {
        let ra = [7u8; 16];
        let mut b = Builder::new(Code::AccessRequest, 1);
        b.attr(attr::MESSAGE_AUTHENTICATOR, &[0u8; 15]).unwrap();
        let out = b.finish_access_request(&ra, b"k");
        assert_eq!(
            check_message_authenticator(&Packet::parse(&out).unwrap(), b"k", None),
            MessageAuth::Invalid
        );
        let mut b = Builder::new(Code::AccessRequest, 1);
        b.message_authenticator().unwrap();
        b.attr(attr::MESSAGE_AUTHENTICATOR, &[0u8; 16]).unwrap();
        let out = b.finish_access_request(&ra, b"k");
        assert_eq!(
            check_message_authenticator(&Packet::parse(&out).unwrap(), b"k", None),
            MessageAuth::Invalid
        );
    }

    /// CHAP (RFC 1994 §4.1, RFC 2865 §5.3): the response is MD5 over the
    /// identifier, the secret and the challenge. Known answer computed
    /// apart: `hashlib.md5(bytes([0x2a]) + b"wonderland" + bytes(range(16)))`.
    #[test]
    fn chap_response_known_answer() {
        let challenge: Vec<u8> = (0..16).collect();
        let r = chap_response(0x2a, b"wonderland", &challenge);
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "0bf175e539dde27bf75374f19ad0223f");
    }

    #[test]
    fn radclient_accounting_request_authenticator() {
        let bytes = hex(RADCLIENT_ACCT_START);
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.code(), Code::AccountingRequest);
        assert_eq!(p.attr_u32(attr::ACCT_STATUS_TYPE), Some(acct_status::START));
        assert_eq!(p.attr_str(attr::ACCT_SESSION_ID), Some("10010001"));
        assert!(verify_accounting_request(&p, RADCLIENT_SECRET));
        assert!(!verify_accounting_request(&p, b"s3cr3"));
        let mut t = bytes.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(!verify_accounting_request(
            &Packet::parse(&t).unwrap(),
            RADCLIENT_SECRET
        ));
        // Rebuilt by us: same bytes.
        let mut b = Builder::new(Code::AccountingRequest, p.identifier());
        for a in p.attributes() {
            b.attr(a.typ, a.value).unwrap();
        }
        assert_eq!(b.finish_accounting_request(RADCLIENT_SECRET), bytes);
    }

    #[test]
    fn accounting_request_with_message_authenticator_roundtrip() {
        let mut b = Builder::new(Code::AccountingRequest, 3);
        b.attr_u32(attr::ACCT_STATUS_TYPE, acct_status::STOP)
            .unwrap();
        b.message_authenticator().unwrap();
        let out = b.finish_accounting_request(b"sec");
        let p = Packet::parse(&out).unwrap();
        assert!(verify_accounting_request(&p, b"sec"));
        assert_eq!(
            check_message_authenticator(&p, b"sec", None),
            MessageAuth::Valid
        );
        assert_eq!(
            check_message_authenticator(&p, b"sed", None),
            MessageAuth::Invalid
        );
    }

    #[test]
    fn accounting_response_authenticator_and_proxy_state() {
        let mut b = Builder::new(Code::AccountingRequest, 9);
        b.attr_u32(attr::ACCT_STATUS_TYPE, acct_status::START)
            .unwrap();
        b.attr(attr::PROXY_STATE, b"one").unwrap();
        b.attr(attr::PROXY_STATE, b"two").unwrap();
        let req = b.finish_accounting_request(b"sec");
        let req = Packet::parse(&req).unwrap();
        let out = accounting_response(&req, b"sec").unwrap();
        let resp = Packet::parse(&out).unwrap();
        assert_eq!(resp.code(), Code::AccountingResponse);
        assert_eq!(resp.identifier(), 9);
        assert!(verify_response(&resp, &req.authenticator(), b"sec"));
        let ps: Vec<&[u8]> = resp.attributes().map(|a| a.value).collect();
        assert_eq!(ps, [b"one".as_slice(), b"two".as_slice()]);
    }

    #[test]
    fn pap_1_byte_radclient() {
        assert_eq!(pap_of(RADCLIENT_PAP_1, RADCLIENT_SECRET), b"x");
    }

    #[test]
    fn pap_16_bytes_radclient() {
        assert_eq!(
            pap_of(RADCLIENT_PAP_16, RADCLIENT_SECRET),
            b"0123456789ABCDEF"
        );
    }

    #[test]
    fn pap_17_bytes_radclient() {
        let bytes = hex(RADCLIENT_AUTH_MA);
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.attr(attr::USER_PASSWORD).unwrap().len(), 32);
        assert_eq!(
            pap_of(RADCLIENT_AUTH_MA, RADCLIENT_SECRET),
            b"0123456789abcdefg"
        );
    }

    #[test]
    fn pap_128_bytes_radclient() {
        let bytes = hex(RADCLIENT_PAP_128);
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.attr(attr::USER_PASSWORD).unwrap().len(), 128);
        assert_eq!(pap_of(RADCLIENT_PAP_128, RADCLIENT_SECRET), alphabet(128));
    }

    #[test]
    fn pap_roundtrip_lengths_and_block_chaining() {
        let ra = [0x5au8; 16];
        for n in [1usize, 15, 16, 17, 31, 32, 33, 127, 128] {
            let pw = alphabet(n);
            let hidden = encrypt_user_password(&pw, b"sec", &ra).unwrap();
            assert_eq!(hidden.len(), n.div_ceil(16) * 16, "n={n}");
            assert_eq!(
                decrypt_user_password(&hidden, b"sec", &ra).unwrap(),
                pw,
                "n={n}"
            );
            // Block i>1 depends on the previous ciphertext block, not on RA alone:
            // the same second plaintext block under a different first block hides differently.
            if n > 16 {
                let mut pw2 = pw.clone();
                pw2[0] ^= 1;
                let hidden2 = encrypt_user_password(&pw2, b"sec", &ra).unwrap();
                assert_ne!(hidden[16..32], hidden2[16..32], "n={n}");
            }
        }
        assert!(encrypt_user_password(&alphabet(129), b"sec", &ra).is_err());
        assert_eq!(encrypt_user_password(b"", b"sec", &ra).unwrap().len(), 16);
    }

    #[test]
    fn pap_bad_lengths() {
        let ra = [0u8; 16];
        for n in [0usize, 1, 15, 17, 144] {
            assert_eq!(
                decrypt_user_password(&vec![1u8; n], b"s", &ra),
                Err(PapLengthError { len: n })
            );
        }
    }

    #[test]
    fn parse_errors() {
        let good = hex(RFC2865_7_1_REQUEST);
        assert_eq!(
            Packet::parse(&good[..19]).unwrap_err(),
            ParseError::TooShort { received: 19 }
        );
        assert_eq!(
            Packet::parse(&good[..55]).unwrap_err(),
            ParseError::Truncated {
                length: 56,
                received: 55
            }
        );
        let mut t = good.clone();
        t[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Packet::parse(&t).unwrap_err(),
            ParseError::BadLengthField { length: 19 }
        );
        let mut t = vec![0u8; 5000];
        t[2..4].copy_from_slice(&4097u16.to_be_bytes());
        assert_eq!(
            Packet::parse(&t).unwrap_err(),
            ParseError::BadLengthField { length: 4097 }
        );
        // Attribute length 1 / 0.
        for bad in [0u8, 1] {
            let mut t = good.clone();
            t[21] = bad;
            assert_eq!(
                Packet::parse(&t).unwrap_err(),
                ParseError::AttrTooShort { offset: 20 }
            );
        }
        // Last attribute runs past Length.
        let mut t = good.clone();
        t[51] = 7;
        assert_eq!(
            Packet::parse(&t).unwrap_err(),
            ParseError::AttrOverrun { offset: 50 }
        );
        // Lone type octet at the end.
        let mut t = good.clone();
        t.push(1);
        t[2..4].copy_from_slice(&57u16.to_be_bytes());
        assert_eq!(
            Packet::parse(&t).unwrap_err(),
            ParseError::AttrTooShort { offset: 56 }
        );
    }

    #[test]
    fn padding_past_length_is_ignored() {
        let mut t = hex(RFC2865_7_1_REQUEST);
        t.extend_from_slice(&[0xff; 10]);
        let p = Packet::parse(&t).unwrap();
        assert_eq!(p.length(), 56);
        assert_eq!(p.attributes().count(), 4);
        assert_eq!(pap_of(RFC2865_7_1_REQUEST, RFC_SECRET), b"arctangent");
    }

    #[test]
    fn builder_limits() {
        let mut b = Builder::new(Code::AccessAccept, 0);
        assert_eq!(
            b.attr(1, &[0; 254]).unwrap_err(),
            BuildError::ValueTooLong { typ: 1, len: 254 }
        );
        b.attr(1, &[0; 253]).unwrap();
        let mut b = Builder::new(Code::AccessAccept, 0);
        // 20 + 16 * 255 = 4100 > 4096: the 16th full attribute does not fit.
        for _ in 0..15 {
            b.attr(1, &[0; 253]).unwrap();
        }
        assert_eq!(b.attr(1, &[0; 253]).unwrap_err(), BuildError::PacketTooLong);
        let out = b.finish_response(&[0; 16], b"s");
        assert_eq!(Packet::parse(&out).unwrap().length(), 20 + 15 * 255);
    }

    #[test]
    fn dup_cache_hits_expires_and_evicts() {
        let key = |id: u8| DupKey {
            client: "10.0.0.1:1812",
            code: 1,
            identifier: id,
            authenticator: [id; 16],
        };
        let mut c = DupCache::new(2, 1000);
        assert_eq!(c.poll_timeout(), None);
        c.insert(key(1), vec![1], 0);
        assert_eq!(c.get(&key(1), 999), Some([1u8].as_slice()));
        assert_eq!(c.get(&key(1), 1000), None, "expired at ttl");
        assert_eq!(c.get(&key(2), 0), None);
        // Same identifier, other authenticator: a new request.
        let mut k = key(1);
        k.authenticator[0] ^= 1;
        assert_eq!(c.get(&k, 10), None);
        // Other client, same id+auth: a new request.
        let mut k = key(1);
        k.client = "10.0.0.2:1812";
        assert_eq!(c.get(&k, 10), None);
        c.insert(key(2), vec![2], 10);
        c.insert(key(3), vec![3], 20);
        assert_eq!(c.len(), 2, "bounded");
        assert_eq!(c.get(&key(1), 20), None, "oldest evicted");
        assert_eq!(c.get(&key(3), 20), Some([3u8].as_slice()));
        assert_eq!(c.poll_timeout(), Some(1010));
        c.handle_timeout(1010);
        assert_eq!(c.len(), 1);
        c.handle_timeout(1020);
        assert!(c.is_empty());
        let mut z = DupCache::new(0, 1000);
        z.insert(key(1), vec![1], 0);
        assert!(z.is_empty());
    }

    #[test]
    fn dup_cache_flooded_with_distinct_identifiers_stays_bounded() {
        let mut c = DupCache::new(256, 30_000);
        let allocated = c.allocated();
        assert!(allocated.0 >= 256 && allocated.1 >= 256);
        // 100 000 distinct requests (identifier and authenticator differ)
        // from one client within the TTL: nothing expires, so only the
        // capacity bounds it.
        for i in 0..100_000u32 {
            let mut authenticator = [0u8; 16];
            authenticator[..4].copy_from_slice(&i.to_be_bytes());
            let key = DupKey {
                client: 1u8,
                code: 1,
                identifier: i as u8,
                authenticator,
            };
            c.insert(key, vec![0u8; 64], u64::from(i % 1000));
            assert!(c.len() <= 256);
        }
        assert_eq!(c.len(), 256);
        assert_eq!(c.evicted, 100_000 - 256);
        // The map's reported capacity moves a little as deleted slots are
        // reclaimed, but a growth would double it (a map sized for only
        // `capacity` entries did grow here once).
        let now = c.allocated();
        assert!(
            now.0 < 2 * allocated.0 && now.1 == allocated.1,
            "the tables grew: {allocated:?} -> {now:?}"
        );
        // The newest are the ones kept.
        let mut authenticator = [0u8; 16];
        authenticator[..4].copy_from_slice(&99_999u32.to_be_bytes());
        let newest = DupKey {
            client: 1u8,
            code: 1,
            identifier: 99_999u32 as u8,
            authenticator,
        };
        assert!(c.get(&newest, 999).is_some());
        // A reply longer than a RADIUS packet is not kept.
        c.insert(
            DupKey {
                client: 2u8,
                ..newest.clone()
            },
            vec![0u8; MAX_PACKET_LEN + 1],
            999,
        );
        assert_eq!(c.len(), 256);
    }

    #[test]
    fn token_bucket_rate_burst_and_clock() {
        let mut b = TokenBucket::new(
            RateLimit {
                per_s: 10,
                burst: 3,
            },
            1_000,
        );
        // The burst at once, then nothing.
        assert!((0..3).all(|_| b.take(1_000)));
        assert!(!b.take(1_000));
        // One token per 100 ms.
        assert!(!b.take(1_099));
        assert!(b.take(1_100));
        assert!(!b.take(1_150));
        // A long pause refills to the burst, not beyond.
        let granted = (0..10).filter(|_| b.take(60_000)).count();
        assert_eq!(granted, 3);
        // A clock that goes back gives nothing and does not stall the refill.
        assert!(!b.take(50_000));
        assert!(b.take(60_100));
        // Over a long run: rate * time + burst, no more.
        let mut b = TokenBucket::new(
            RateLimit {
                per_s: 50,
                burst: 5,
            },
            0,
        );
        let n = (0..10_000u64).filter(|t| b.take(t * 2)).count();
        assert_eq!(n, 5 + (19_998 * 50 / 1000));
        // Extreme values neither overflow nor panic.
        let mut b = TokenBucket::new(
            RateLimit {
                per_s: u32::MAX,
                burst: u32::MAX,
            },
            0,
        );
        assert!(b.take(u64::MAX));
        let mut z = TokenBucket::new(RateLimit { per_s: 0, burst: 0 }, 0);
        assert!(!z.take(u64::MAX));
    }

    #[test]
    fn clients_unknown_dropped_and_over_rate_dropped_and_counted() {
        let mut c: Clients<&str, &str> = Clients::default();
        c.insert("10.0.0.1", "nas1", RateLimit { per_s: 1, burst: 2 }, 0);
        c.insert("10.0.0.2", "nas2", RateLimit::default(), 0);
        assert_eq!(c.admit(&"10.9.9.9", 0), Err(Refusal::UnknownClient));
        assert_eq!(c.admit(&"10.0.0.1", 0), Ok(&"nas1"));
        assert_eq!(c.admit(&"10.0.0.1", 0), Ok(&"nas1"));
        assert_eq!(c.admit(&"10.0.0.1", 10), Err(Refusal::RateLimited));
        assert_eq!(c.admit(&"10.0.0.1", 20), Err(Refusal::RateLimited));
        // The other client is not affected by the first one's flood.
        assert_eq!(c.admit(&"10.0.0.2", 20), Ok(&"nas2"));
        assert_eq!(c.admit(&"10.0.0.1", 1_010), Ok(&"nas1"));
        assert_eq!((c.unknown_client, c.rate_limited), (1, 2));
        let s = c.get(&"10.0.0.1").unwrap();
        assert_eq!((s.admitted, s.rate_limited), (3, 2));
        assert_eq!(c.get(&"10.0.0.2").unwrap().rate_limited, 0);
        assert_eq!(c.len(), 2);
    }

    proptest! {
        #[test]
        fn parse_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(p) = Packet::parse(&bytes) {
                let mut total = HEADER_LEN;
                for a in p.attributes() {
                    total += a.value.len() + 2;
                }
                prop_assert_eq!(total, p.length());
                let _ = verify_accounting_request(&p, b"s");
                let _ = check_message_authenticator(&p, b"s", Some(&[0; 16]));
                if let Some(pw) = p.attr(attr::USER_PASSWORD) {
                    let _ = decrypt_user_password(pw, b"s", &p.authenticator());
                }
                let _ = access_accept(&p, b"s", &AcceptAttrs::default());
            }
        }

        #[test]
        fn parse_headers_with_plausible_length_never_panics(
            code in any::<u8>(), id in any::<u8>(), len in 0u16..5000,
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut bytes = vec![code, id];
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&[0u8; 16]);
            bytes.extend_from_slice(&body);
            if let Ok(p) = Packet::parse(&bytes) {
                prop_assert!(usize::from(len) == p.length() && p.length() <= bytes.len());
            }
        }

        #[test]
        fn build_then_parse_roundtrip(
            attrs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..20)
        ) {
            let mut b = Builder::new(Code::AccountingRequest, 1);
            for (t, v) in &attrs {
                b.attr(*t, v).unwrap();
            }
            let out = b.finish_accounting_request(b"k");
            let p = Packet::parse(&out).unwrap();
            prop_assert!(verify_accounting_request(&p, b"k"));
            let got: Vec<(u8, Vec<u8>)> = p.attributes().map(|a| (a.typ, a.value.to_vec())).collect();
            prop_assert_eq!(got, attrs);
        }
    }
}
