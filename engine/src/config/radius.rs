//! Building the RADIUS side's session manager from a profile's `[radius]`:
//! clients, users, service orders, gateways and their address ranges, into
//! `pgw_pipelines::mgmt::Manager`. Validation (`pgw check-config`) and the
//! management thread's start share it; the sockets are `mgmt::radius`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use pgw_pipelines::mgmt::assign::{Assigner, GwAddrRow, GwId, Ipv4Range};
use pgw_pipelines::mgmt::radius::{Clients, RateLimit};
use pgw_pipelines::mgmt::session::NasInfo;
use pgw_pipelines::mgmt::session::SessionConfig;
use pgw_pipelines::mgmt::users::{ServiceOrder, ServiceOrderTable, UserRecord, UserTable};
use pgw_pipelines::mgmt::{Manager, ManagerConfig, RadiusClient};

use super::profile::{parse_mac, ConfigError, Profile, RadiusCfg};

fn parse_range(p: &Profile, key: String, s: &str) -> Result<Ipv4Range, ConfigError> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| p.err(key.clone(), format!("{s:?}: write first-last")))?;
    let a: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| p.err(key.clone(), format!("{a:?} is not an IPv4 address")))?;
    let b: Ipv4Addr = b
        .trim()
        .parse()
        .map_err(|_| p.err(key.clone(), format!("{b:?} is not an IPv4 address")))?;
    if u32::from(a) > u32::from(b) {
        return Err(p.err(key, format!("{s:?}: first is after last")));
    }
    Ok(Ipv4Range::new(a, b))
}

/// One `[[radius.nas]]`: the NAS (by NAS-IP-Address and/or
/// NAS-Identifier) and its entry point, an LB's LAN MAC.
#[derive(Clone, Debug)]
struct NasEntry {
    ip: Option<Ipv4Addr>,
    identifier: Option<String>,
    mac: [u8; 6],
}

/// `[[radius.nas]]`: the entry point (an LB's MAC) of each NAS, found by
/// the NAS-IP-Address or NAS-Identifier a request names.
#[derive(Clone, Debug, Default)]
pub struct EntryPoints(Vec<NasEntry>);

impl EntryPoints {
    /// The entry point of the NAS `nas` names (by address first).
    pub fn of(&self, nas: &NasInfo) -> Option<[u8; 6]> {
        let by_ip = nas.ip.and_then(|a| self.0.iter().find(|e| e.ip == Some(a)));
        let by_id = || {
            let id = nas.identifier.as_deref()?;
            self.0.iter().find(|e| e.identifier.as_deref() == Some(id))
        };
        by_ip.or_else(by_id).map(|e| e.mac)
    }
}

/// Read and check `[[radius.nas]]`.
pub fn entry_points(p: &Profile, r: &RadiusCfg) -> Result<EntryPoints, ConfigError> {
    let mut out: Vec<NasEntry> = Vec::new();
    for (i, n) in r.nases.iter().enumerate() {
        let key = |k: &str| format!("radius.nas[{i}].{k}");
        if n.address.is_none() && n.identifier.is_none() {
            return Err(p.err(
                format!("radius.nas[{i}]"),
                "name the NAS by `address` (its NAS-IP-Address) or `identifier` (its NAS-Identifier)",
            ));
        }
        let a = match &n.address {
            Some(a) => Some(
                a.parse::<Ipv4Addr>()
                    .map_err(|_| p.err(key("address"), format!("{a:?} is not an IPv4 address")))?,
            ),
            None => None,
        };
        if let Some(id) = &n.identifier {
            if id.is_empty() {
                return Err(p.err(key("identifier"), "empty identifier"));
            }
        }
        let mac = parse_mac(&n.entry_mac).map_err(|e| p.err(key("entry_mac"), e))?;
        if mac[0] & 1 == 1 || mac == [0; 6] {
            return Err(p.err(
                key("entry_mac"),
                format!("{}: a gateway cannot send to a multicast or zero MAC; give the LB's LAN port MAC", n.entry_mac),
            ));
        }
        for (j, e) in out.iter().enumerate() {
            if a.is_some() && e.ip == a {
                return Err(p.err(
                    key("address"),
                    format!(
                        "{} is already radius.nas[{j}]",
                        n.address.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if n.identifier.is_some() && e.identifier == n.identifier {
                return Err(p.err(
                    key("identifier"),
                    format!(
                        "{:?} is already radius.nas[{j}]",
                        n.identifier.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        out.push(NasEntry {
            ip: a,
            identifier: n.identifier.clone(),
            mac,
        });
    }
    Ok(EntryPoints(out))
}

/// Highest `radius.client[i].rate_per_s` and `burst`.
const MAX_RATE: u32 = 1_000_000;
/// Most `radius.duplicate_cache` entries (replies are up to 4 KiB each).
const MAX_DUP_CACHE: usize = 1 << 20;

/// Build the manager from the profile (validation and start share this).
#[allow(clippy::type_complexity)]
pub fn build(
    p: &Profile,
) -> Result<
    Option<(
        RadiusCfg,
        Manager<SocketAddr>,
        Option<GwId>,
        Vec<String>,
        Clients<IpAddr, RadiusClient>,
    )>,
    ConfigError,
> {
    let Some(r) = p.radius.clone() else {
        return Ok(None);
    };
    r.listen.parse::<SocketAddr>().map_err(|_| {
        p.err(
            "radius.listen",
            format!("{:?} is not address:port", r.listen),
        )
    })?;
    r.acct_listen.parse::<SocketAddr>().map_err(|_| {
        p.err(
            "radius.acct_listen",
            format!("{:?} is not address:port", r.acct_listen),
        )
    })?;
    // Service ids: the GW's, so the bitmaps agree bit for bit.
    let gw_services: Vec<(u8, String)> = if !r.services.is_empty() {
        r.services.iter().map(|s| (s.id, s.name.clone())).collect()
    } else {
        p.gw.as_ref()
            .map(|g| g.services.iter().map(|s| (s.id, s.name.clone())).collect())
            .unwrap_or_default()
    };
    for (i, sv) in r.services.iter().enumerate() {
        if sv.id > 63 {
            return Err(p.err(format!("radius.service[{i}].id"), format!("{} > 63", sv.id)));
        }
    }
    let max = gw_services
        .iter()
        .map(|(i, _)| *i as usize + 1)
        .max()
        .unwrap_or(0);
    let mut names: Vec<String> = (0..max).map(|i| format!("#unused{i}")).collect();
    for (i, n) in &gw_services {
        names[*i as usize] = n.clone();
    }
    let mut users = Vec::new();
    let mut orders = Vec::new();
    for (i, u) in r.users.iter().enumerate() {
        for (j, s) in u.services.iter().enumerate() {
            if !gw_services.iter().any(|(_, n)| n == s) {
                return Err(p.err(
                    format!("radius.user[{i}].services[{j}]"),
                    format!("no service named {s:?} ([[radius.service]] or [[gw.service]])"),
                ));
            }
        }
        users.push(UserRecord {
            user_id: u.user.clone(),
            password: u.password.clone(),
            device_id: u.device_id.clone(),
            phone: u.phone.clone(),
        });
        orders.push(ServiceOrder {
            device_id: u.device_id.clone(),
            allowed: u.services.clone(),
        });
    }
    let users = UserTable::new(users).map_err(|e| p.err("radius.user", e.to_string()))?;
    let services =
        ServiceOrderTable::new(names, orders).map_err(|e| p.err("radius.user", e.to_string()))?;
    let mut gws = Vec::new();
    for (i, g) in r.gateways.iter().enumerate() {
        let mut ranges = Vec::new();
        for (j, s) in g.ranges.iter().enumerate() {
            let key = format!("radius.gateway[{i}].ranges[{j}]");
            let range = parse_range(p, key.clone(), s)?;
            // A subscriber address equal to this profile's NAT pool: the
            // servers' answers to it would be taken for NAT traffic.
            let pool = p.gw.as_ref().map(|g| g.pool.as_slice()).unwrap_or(&[]);
            for (k, a) in pool.iter().enumerate() {
                let Ok(a) = a.parse::<Ipv4Addr>() else {
                    continue; // the GW's build names the key
                };
                if (u32::from(range.first)..=u32::from(range.last)).contains(&u32::from(a)) {
                    return Err(p.err(
                        key,
                        format!(
                            "{s} contains the pool address gw.pool[{k}] ({a}): subscribers would be given the NAT source address; leave the pool out of every subscriber range"
                        ),
                    ));
                }
            }
            ranges.push(range);
        }
        gws.push(GwAddrRow {
            id: GwId(i as u16),
            name: g.name.clone(),
            ranges,
            up: g.up,
        });
    }
    if gws.is_empty() {
        return Err(p.err(
            "radius.gateway",
            "at least one [[radius.gateway]] with address ranges",
        ));
    }
    let gw_names: Vec<String> = r.gateways.iter().map(|g| g.name.clone()).collect();
    let this = match &r.this_gateway {
        Some(n) => Some(GwId(gw_names.iter().position(|g| g == n).ok_or_else(|| {
            p.err(
                "radius.this_gateway",
                format!("no [[radius.gateway]] named {n:?}"),
            )
        })? as u16)),
        None => None,
    };
    for (i, g) in r.gateways.iter().enumerate() {
        if let Some(c) = &g.control {
            c.parse::<SocketAddr>().map_err(|_| {
                p.err(
                    format!("radius.gateway[{i}].control"),
                    format!("{c:?} is not address:port"),
                )
            })?;
            if r.control_secret.as_deref().unwrap_or("").is_empty() {
                return Err(p.err(
                    "radius.control_secret",
                    "a secret is needed to send sessions to gateway instances",
                ));
            }
        }
    }
    // Two gateways' ranges sharing an address, named by key and gateway.
    let mut seen: Vec<(String, &str, &Ipv4Range)> = Vec::new();
    for (i, g) in gws.iter().enumerate() {
        for (j, range) in g.ranges.iter().enumerate() {
            let key = format!("radius.gateway[{i}].ranges[{j}]");
            if let Some((k, name, r)) = seen
                .iter()
                .find(|(_, _, r)| range.first <= r.last && r.first <= range.last)
            {
                return Err(p.err(
                    key,
                    format!(
                        "{}-{} of gateway {:?} overlaps {k} ({}-{} of gateway {name:?}); every address must belong to one gateway: take them apart",
                        range.first, range.last, g.name, r.first, r.last
                    ),
                ));
            }
            seen.push((key, g.name.as_str(), range));
        }
    }
    let assigner = Assigner::new(gws).map_err(|e| p.err("radius.gateway", e.to_string()))?;
    let mut v6 = Vec::new();
    for (i, g) in r.gateways.iter().enumerate() {
        if let Some(s) = &g.ipv6_prefix {
            let key = format!("radius.gateway[{i}].ipv6_prefix");
            let (a, l) = s
                .split_once('/')
                .ok_or_else(|| p.err(key.clone(), format!("{s:?}: write address/length")))?;
            let a: std::net::Ipv6Addr = a
                .parse()
                .map_err(|_| p.err(key.clone(), format!("{a:?} is not an IPv6 address")))?;
            let l: u8 = l
                .parse()
                .map_err(|_| p.err(key.clone(), format!("{l:?} is not a prefix length")))?;
            if l > 64 {
                return Err(p.err(key, "the block must be /64 or shorter (sessions get /64s)"));
            }
            v6.push((GwId(i as u16), a.octets(), l));
        }
    }
    let mut clients = Clients::default();
    let mut seen: Vec<IpAddr> = Vec::new();
    for (i, c) in r.clients.iter().enumerate() {
        let a: IpAddr = c.address.parse().map_err(|_| {
            p.err(
                format!("radius.client[{i}].address"),
                format!("{:?} is not an IP address", c.address),
            )
        })?;
        // An IPv4-mapped IPv6 address is the IPv4 client (datagrams are
        // matched on their canonical source address).
        let a = a.to_canonical();
        if let Some(j) = seen.iter().position(|s| *s == a) {
            return Err(p.err(
                format!("radius.client[{i}].address"),
                format!("{a} is already radius.client[{j}]"),
            ));
        }
        seen.push(a);
        if c.secret.is_empty() {
            return Err(p.err(format!("radius.client[{i}].secret"), "empty secret"));
        }
        let per_s = c.rate_per_s.unwrap_or(RateLimit::default().per_s);
        if !(1..=MAX_RATE).contains(&per_s) {
            return Err(p.err(
                format!("radius.client[{i}].rate_per_s"),
                format!("{per_s}: must be 1..={MAX_RATE} requests a second"),
            ));
        }
        let burst = c.burst.unwrap_or(per_s.saturating_mul(2));
        if !(1..=MAX_RATE).contains(&burst) {
            return Err(p.err(
                format!("radius.client[{i}].burst"),
                format!("{burst}: must be 1..={MAX_RATE} requests"),
            ));
        }
        clients.insert(
            a,
            RadiusClient {
                secret: c.secret.as_bytes().to_vec(),
                require_message_authenticator: c.require_message_authenticator,
            },
            RateLimit { per_s, burst },
            0,
        );
    }
    let dup_cache_capacity = r
        .duplicate_cache
        .unwrap_or(ManagerConfig::default().dup_cache_capacity);
    if !(1..=MAX_DUP_CACHE).contains(&dup_cache_capacity) {
        return Err(p.err(
            "radius.duplicate_cache",
            format!("{dup_cache_capacity}: must be 1..={MAX_DUP_CACHE} entries"),
        ));
    }
    for (key, v) in [
        ("radius.session_timeout_s", r.session_timeout_s),
        ("radius.idle_timeout_s", r.idle_timeout_s),
    ] {
        if v == Some(0) {
            return Err(p.err(
                key,
                "0: must be at least 1 second (leave it out to send none)",
            ));
        }
    }
    let ms = |s: f64| (s * 1000.0) as u64;
    let cfg = ManagerConfig {
        session: SessionConfig {
            // The NAS's Idle-Timeout is our dormant timer when no
            // dormant_s of our own is set; its Session-Timeout, the
            // session's lifetime.
            dormant_ms: r
                .dormant_s
                .map(ms)
                .or(r.idle_timeout_s.map(|s| u64::from(s) * 1000)),
            session_ms: ms(r.session_s),
            interim_monitor_ms: r.interim_monitor_s.map(ms),
            lifetime_ms: r.session_timeout_s.map(|s| u64::from(s) * 1000),
        },
        acct_interim_interval_s: r.interim_interval_s,
        session_timeout_s: r.session_timeout_s,
        idle_timeout_s: r
            .idle_timeout_s
            .or(r.dormant_s.map(|d| (d.ceil() as u32).max(1))),
        dup_cache_capacity,
        ..ManagerConfig::default()
    };
    entry_points(p, &r)?;
    let mut mgr = Manager::new(cfg, users, services, assigner);
    for (gw, base, len) in v6 {
        mgr.set_ipv6_block(gw, base, len);
    }
    Ok(Some((r, mgr, this, gw_names, clients)))
}
