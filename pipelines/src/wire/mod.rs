//! Zero-copy views of the wire formats the pipelines touch, in the manner of
//! smoltcp's `wire` module.
//!
//! Every protocol has a view `XxxPacket<T: AsRef<[u8]>> { buffer: T }`:
//! * `new_unchecked(buf)` wraps without looking; accessors may then panic on a
//!   short buffer.
//! * `new_checked(buf)` validates lengths (and the fields lengths depend on:
//!   version, IHL, total length, data offset, ...) **once**; after it returned
//!   `Ok`, no getter or setter of that view can panic.
//! * getters need `T: AsRef<[u8]>`, setters `T: AsMut<[u8]>`; the `view!`
//!   declaration names each plain field's type and byte offset once, a
//!   `mod field` the offsets of the others (bits, lengths).
//!
//! Addresses are plain byte arrays: `[u8; 6]` (MAC), `[u8; 4]` (IPv4),
//! `[u8; 16]` (IPv6), in network order. Use [`ipv4_to_u32`] / [`u32_to_ipv4`]
//! for range arithmetic and `std::net::Ipv4Addr::from([u8; 4])` for display.
//!
//! Checksums are never verified implicitly: views offer `verify_*` and
//! `fill_*`, and the [`checksum`] module the RFC 1624 incremental updates the
//! rewriting stages use (an update keeps a bad checksum bad, so an end host
//! still discards a corrupted packet).
//!
//! [`parse()`] walks a whole frame once and returns the facts the stages need
//! as plain numbers ([`Parsed`]); [`build`] makes complete frames for tests.
//!
//! Cost: views are a pointer and a length; `new_checked` is a handful of
//! compares; `parse` touches only the headers (a few tens of ns).

/// A zero-copy view `$name<T: AsRef<[u8]>> { buffer: T }`, what every view
/// has the same (`new_unchecked`, `new_checked` through the view's own
/// `check_len`, `into_inner`) and its plain fields: for each
/// `getter / setter: Type = OFFSET;` a getter (for `T: AsRef<[u8]>`) and a
/// setter (for `T: AsMut<[u8]>` too) that read and write the big-endian
/// `Type` at byte `OFFSET` through [`Be`]. Attributes before a field go on
/// its getter. Fields that are bits of a byte or need more than a load or a
/// store have hand-written accessors and their offsets in the file's
/// `mod field`.
macro_rules! view {
    (
        $(#[$m:meta])*
        $name:ident {
            $($(#[$fm:meta])* $get:ident / $set:ident: $ty:ty = $at:expr;)*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wrap without checks: accessors may panic on a short buffer.
            #[inline]
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wrap `buffer` once `check_len` accepts it.
            #[inline]
            pub fn new_checked(buffer: T) -> Result<Self, WireError> {
                let p = Self::new_unchecked(buffer);
                p.check_len()?;
                Ok(p)
            }

            #[inline]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            $(
                $(#[$fm])*
                #[inline]
                pub fn $get(&self) -> $ty {
                    <$ty as super::Be>::read(self.buffer.as_ref(), $at)
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            $(
                #[doc = concat!("Set what [`", stringify!($get), "`](Self::", stringify!($get), ") reads.")]
                #[inline]
                pub fn $set(&mut self, v: $ty) {
                    super::Be::write(v, self.buffer.as_mut(), $at);
                }
            )*
        }
    };
}

/// The port and pseudo-header address rewrites of a TCP or UDP view (in
/// its `AsMut` impl), each an incremental checksum update by `$port`,
/// `$addr4` and `$addr16` from [`checksum`]; `$note` ends their docs.
macro_rules! port_rewrites {
    ($port:ident, $addr4:ident, $addr16:ident, $note:literal) => {
        #[doc = concat!("Replace the source port, updating the checksum incrementally", $note, ".")]
        #[inline]
        pub fn rewrite_src_port(&mut self, new: u16) {
            let c = checksum::$port(self.checksum(), self.src_port(), new);
            self.set_src_port(new);
            self.set_checksum(c);
        }
        #[doc = concat!("Replace the destination port, updating the checksum incrementally", $note, ".")]
        #[inline]
        pub fn rewrite_dst_port(&mut self, new: u16) {
            let c = checksum::$port(self.checksum(), self.dst_port(), new);
            self.set_dst_port(new);
            self.set_checksum(c);
        }
        #[doc = concat!("Update the checksum for an IPv4 pseudo-header address change", $note, "")]
        /// (call alongside `Ipv4Packet::rewrite_src_addr`/`rewrite_dst_addr`).
        #[inline]
        pub fn adjust_checksum_addr_v4(&mut self, old: [u8; 4], new: [u8; 4]) {
            let c = checksum::$addr4(self.checksum(), old, new);
            self.set_checksum(c);
        }
        #[doc = concat!("Update the checksum for an IPv6 pseudo-header address change", $note, ".")]
        #[inline]
        pub fn adjust_checksum_addr_v6(&mut self, old: &[u8; 16], new: &[u8; 16]) {
            let c = checksum::$addr16(self.checksum(), old, new);
            self.set_checksum(c);
        }
    };
}

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ether;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
mod parse;
pub mod tcp;
pub mod udp;

pub use arp::ArpPacket;
pub use ether::EthernetFrame;
pub use icmp::IcmpPacket;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use parse::{parse, parse_chained, parse_l3, parse_l3_chained, Parsed};
pub use tcp::{TcpOption, TcpOptions, TcpPacket};
pub use udp::UdpPacket;

use core::fmt;

/// Why a view refused a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the header (or than a length field says).
    Truncated,
    /// A field is inconsistent (version, header length smaller than the minimum,
    /// total length smaller than the header, ...).
    Malformed,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("truncated packet"),
            WireError::Malformed => f.write_str("malformed packet"),
        }
    }
}

impl std::error::Error for WireError {}

/// `Truncated` when a buffer of `len` bytes is shorter than `need`.
#[inline]
pub(crate) fn need_len(len: usize, need: usize) -> Result<(), WireError> {
    if len < need {
        return Err(WireError::Truncated);
    }
    Ok(())
}

/// A length field's value `v` against its floor `min` (`Malformed` below
/// it) and the buffer's `len` (`Truncated` beyond it).
#[inline]
pub(crate) fn length_in(v: usize, min: usize, len: usize) -> Result<(), WireError> {
    if v < min {
        return Err(WireError::Malformed);
    }
    need_len(len, v)
}

/// A MAC address in network order.
pub type MacAddr = [u8; 6];

/// IP protocol numbers (IPv4 `protocol`, IPv6 `next header`).
pub mod ip_proto {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NO_NEXT: u8 = 59;
    pub const IPV6_DEST_OPTS: u8 = 60;
}

/// IPv4 address bytes as a host-order number (for ranges and comparisons).
#[inline]
pub const fn ipv4_to_u32(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

/// Inverse of [`ipv4_to_u32`].
#[inline]
pub const fn u32_to_ipv4(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// The IPv4-mapped IPv6 address `::ffff:a.b.c.d` (how [`Parsed`] stores IPv4).
#[inline]
pub const fn ipv4_mapped(a: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
    ]
}

// Fixed-position big-endian accessors. Callers guarantee the range (views do
// so through `new_checked`).
#[inline]
pub(crate) fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
pub(crate) fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
pub(crate) fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline]
pub(crate) fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// A header field's type: read and written big-endian at a fixed byte offset
/// (the plain fields `view!` declares). Callers guarantee the bytes are there.
pub(crate) trait Be: Sized {
    fn read(b: &[u8], at: usize) -> Self;
    fn write(self, b: &mut [u8], at: usize);
}

impl Be for u8 {
    #[inline]
    fn read(b: &[u8], at: usize) -> u8 {
        b[at]
    }
    #[inline]
    fn write(self, b: &mut [u8], at: usize) {
        b[at] = self;
    }
}

/// The integers wider than a byte, through their `rdNN`/`wrNN`.
macro_rules! be_int {
    ($($t:ty: $rd:ident, $wr:ident;)*) => {$(
        impl Be for $t {
            #[inline]
            fn read(b: &[u8], at: usize) -> $t {
                $rd(b, at)
            }
            #[inline]
            fn write(self, b: &mut [u8], at: usize) {
                $wr(b, at, self);
            }
        }
    )*};
}

be_int! {
    u16: rd16, wr16;
    u32: rd32, wr32;
}

/// Addresses: `N` bytes from `at`, as they stand.
impl<const N: usize> Be for [u8; N] {
    #[inline]
    fn read(b: &[u8], at: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[at..at + N]);
        a
    }
    #[inline]
    fn write(self, b: &mut [u8], at: usize) {
        b[at..at + N].copy_from_slice(&self);
    }
}
