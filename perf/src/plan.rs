//! Who talks to whom: N subscribers × M connections toward representative
//! addresses (VIPs), TCP and UDP. A connection is a number `c` in
//! `0..subs × conns`; everything about it is arithmetic on `c`, so the
//! generator keeps one byte of state per connection and maps an answer back
//! to its connection without a lookup table.

use std::net::Ipv4Addr;

/// One connection's tuple as the subscriber sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    pub proto: u8,
    pub src: [u8; 4],
    pub sport: u16,
    pub dst: [u8; 4],
    pub dport: u16,
}

#[derive(Clone, Debug)]
pub struct Plan {
    /// Subscribers: `sub_base`, `sub_base + 1`, ...
    pub subs: u32,
    /// Connections per subscriber: source ports `sport_base ..`.
    pub conns_per_sub: u32,
    pub sub_base: u32,
    pub sport_base: u16,
    pub tcp_vips: Vec<([u8; 4], u16)>,
    pub udp_vips: Vec<([u8; 4], u16)>,
    /// Share of connections that are UDP, in percent.
    pub udp_pct: u32,
}

/// A cheap bijective mixer (splitmix64's finaliser) so that protocol and VIP
/// choices do not line up with subscriber order.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Parse `a.b.c.d:port[,a.b.c.d:port...]`.
pub fn parse_endpoints(s: &str) -> Result<Vec<([u8; 4], u16)>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|e| {
            let (a, p) = e
                .trim()
                .rsplit_once(':')
                .ok_or_else(|| format!("{e:?}: want address:port"))?;
            let a: Ipv4Addr = a.parse().map_err(|_| format!("{e:?}: bad address"))?;
            let p: u16 = p.parse().map_err(|_| format!("{e:?}: bad port"))?;
            Ok((a.octets(), p))
        })
        .collect()
}

impl Plan {
    pub fn validate(&self) -> Result<(), String> {
        if self.subs == 0 || self.conns_per_sub == 0 {
            return Err("--subs and --conns must be at least 1".into());
        }
        if self.sport_base as u32 + self.conns_per_sub > 65536 {
            return Err(format!(
                "--conns {}: source ports {}.. would pass 65535",
                self.conns_per_sub, self.sport_base
            ));
        }
        if (self.subs as u64) * (self.conns_per_sub as u64) > (1 << 30) {
            return Err("--subs x --conns: at most 2^30 connections".into());
        }
        if self.udp_pct > 100 {
            return Err("--udp-pct: 0..=100".into());
        }
        if self.udp_pct < 100 && self.tcp_vips.is_empty() {
            return Err("TCP connections need --tcp-vips".into());
        }
        if self.udp_pct > 0 && self.udp_vips.is_empty() {
            return Err("--udp-pct > 0 needs --udp-vips".into());
        }
        Ok(())
    }

    pub fn total(&self) -> u32 {
        self.subs * self.conns_per_sub
    }

    #[inline]
    pub fn is_udp(&self, c: u32) -> bool {
        self.udp_pct > 0 && (mix(c as u64) % 100) < self.udp_pct as u64
    }

    #[inline]
    pub fn conn(&self, c: u32) -> Conn {
        let s = c / self.conns_per_sub;
        let m = c % self.conns_per_sub;
        let h = mix(c as u64 ^ 0x5bd1_e995);
        let (proto, (dst, dport)) = if self.is_udp(c) {
            (17, self.udp_vips[(h >> 8) as usize % self.udp_vips.len()])
        } else {
            (6, self.tcp_vips[(h >> 8) as usize % self.tcp_vips.len()])
        };
        Conn {
            proto,
            src: (self.sub_base + s).to_be_bytes(),
            sport: self.sport_base + m as u16,
            dst,
            dport,
        }
    }

    /// The connection whose subscriber end is (`ip`, `port`).
    #[inline]
    pub fn index_of(&self, ip: [u8; 4], port: u16) -> Option<u32> {
        let s = u32::from_be_bytes(ip).wrapping_sub(self.sub_base);
        let m = port.wrapping_sub(self.sport_base) as u32;
        (s < self.subs && m < self.conns_per_sub && port >= self.sport_base)
            .then_some(s * self.conns_per_sub + m)
    }

    /// A step coprime with the number of connections, about 0.618 of it: the
    /// data pump visits connections in the order `i × step mod total`, so
    /// consecutive packets belong to far-apart connections (as with many
    /// real subscribers) rather than to neighbouring table entries.
    pub fn stride(&self) -> u32 {
        let n = self.total() as u64;
        if n <= 2 {
            return 1;
        }
        let mut s = (n * 618 / 1000).max(1);
        while gcd(s, n) != 1 {
            s += 1;
        }
        s as u32
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(udp_pct: u32) -> Plan {
        Plan {
            subs: 100,
            conns_per_sub: 300,
            sub_base: u32::from_be_bytes([10, 1, 0, 0]),
            sport_base: 10000,
            tcp_vips: vec![([10, 33, 0, 1], 80), ([10, 33, 0, 2], 443)],
            udp_vips: vec![([10, 33, 0, 3], 53)],
            udp_pct,
        }
    }

    #[test]
    fn every_connection_maps_back_and_the_mix_holds() {
        let p = plan(20);
        p.validate().unwrap();
        let mut udp = 0;
        for c in 0..p.total() {
            let k = p.conn(c);
            assert_eq!(p.index_of(k.src, k.sport), Some(c));
            udp += (k.proto == 17) as u32;
        }
        let share = udp as f64 / p.total() as f64;
        assert!((0.17..0.23).contains(&share), "{share}");
        assert_eq!(p.index_of([10, 1, 0, 100], 10000), None);
        assert_eq!(p.index_of([10, 1, 0, 0], 9999), None);
        assert_eq!(p.index_of([10, 1, 0, 0], 10300), None);
    }

    #[test]
    fn stride_visits_every_connection_once() {
        let p = plan(0);
        let n = p.total();
        let s = p.stride();
        let mut seen = vec![false; n as usize];
        let mut c = 0u32;
        for _ in 0..n {
            assert!(!seen[c as usize]);
            seen[c as usize] = true;
            c = ((c as u64 + s as u64) % n as u64) as u32;
        }
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoints("10.33.0.1:80, 10.33.0.2:443").unwrap(),
            vec![([10, 33, 0, 1], 80), ([10, 33, 0, 2], 443)]
        );
        assert!(parse_endpoints("10.33.0.1").is_err());
        assert!(parse_endpoints("").unwrap().is_empty());
    }
}
