//! From a profile's `[gw]` section to the GW stage's config and the first
//! table snapshot. Errors name the profile key.

use std::net::Ipv4Addr;

use pgw_pipelines::gw::config::{ExhaustionReply, GwConfig, GwTimeouts, SynProxy};
use pgw_pipelines::gw::tables::{
    Group, Member, Member6, Neighbours, Policy, ServiceId, Services, Sessions, SubscriberAuth, Vip,
    Vip6,
};
use pgw_pipelines::lb::{AccessNeighbours, Gw, LbConfig, LbRange, LbRange6, LbSnapshot, LbTable};
use pgw_pipelines::PortIdx;

use crate::config::{parse_cidr, parse_mac, ConfigError, Profile, SessionCfg};

/// Everything the GW role needs, built from the profile.
pub struct GwBuild {
    /// MACs are zero here; the engine fills them from the started ports.
    pub cfg: GwConfig,
    pub services: Services,
    pub sessions: Sessions,
    /// The static sessions (`[[gw.session]]`) the RADIUS side keeps beside its own.
    pub static_sessions: Vec<([u8; 4], SubscriberAuth)>,
    /// Their IPv6 prefixes (NAT64 subscribers).
    pub static_sessions6: Vec<([u8; 16], u8, SubscriberAuth)>,
    /// IPv6 addresses answered by neighbour discovery, per port.
    pub ndp_ips: Vec<(PortIdx, [u8; 16])>,
    /// Static neighbours (`[[neighbor]]`).
    pub neighbours: Vec<([u8; 4], [u8; 6])>,
    pub neighbours6: Vec<([u8; 16], [u8; 6])>,
    /// Addresses the gateway answers ARP for, per port (port addresses,
    /// VIPs on the access port, pool addresses on the server port).
    pub arp_ips: Vec<(PortIdx, [u8; 4])>,
    /// Addresses of every group member: the management thread resolves them
    /// (ARP, and neighbour discovery for their IPv6 addresses).
    pub members: Vec<[u8; 4]>,
    pub members6: Vec<[u8; 16]>,
    /// Service names by id (for reports).
    pub service_names: Vec<(u8, String)>,
    /// How often learnt members are asked for again (`gw.neighbour_refresh_s`).
    pub neighbour_refresh: std::time::Duration,
}

fn ip(p: &Profile, key: String, s: &str) -> Result<[u8; 4], ConfigError> {
    s.parse::<Ipv4Addr>()
        .map(|a| a.octets())
        .map_err(|_| p.err(key, format!("{s:?} is not an IPv4 address")))
}

/// The index of the port named `name` (the value of `key`).
fn port(p: &Profile, key: &str, name: &str) -> Result<PortIdx, ConfigError> {
    p.port_index(name)
        .map(|i| i as PortIdx)
        .ok_or_else(|| p.err(key, "no such port"))
}

/// 64 random bits from the OS (getrandom(2) via /dev/urandom), mixed with
/// the time and the PID should that fail.
pub fn random_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    pgw_pipelines::gw::hash::fmix64(t ^ ((std::process::id() as u64) << 32))
}

pub fn build(p: &Profile) -> Result<GwBuild, ConfigError> {
    let g =
        p.gw.as_ref()
            .ok_or_else(|| p.err("gw", "missing [gw] section"))?;
    let access = port(p, "gw.access_port", &g.access_port)?;
    let server = port(p, "gw.server_port", &g.server_port)?;
    let mut pool = Vec::new();
    for (i, a) in g.pool.iter().enumerate() {
        let addr = ip(p, format!("gw.pool[{i}]"), a)?;
        if let Some(j) = pool.iter().position(|o| *o == addr) {
            return Err(p.err(
                format!("gw.pool[{i}]"),
                format!("{a} is listed twice (also gw.pool[{j}]); remove the duplicate"),
            ));
        }
        pool.push(addr);
    }
    // A pool address is the source of translated connections: if it is
    // also a subscriber address (an LB range of this profile), the answers
    // to one would be taken for the other's.
    if let Some(l) = &p.lb {
        for (r, lr) in l.ranges.iter().enumerate() {
            let (Ok(first), Ok(last)) = (lr.first.parse::<Ipv4Addr>(), lr.last.parse::<Ipv4Addr>())
            else {
                continue; // build_lb names the key
            };
            for (i, a) in pool.iter().enumerate() {
                let v = u32::from_be_bytes(*a);
                if (u32::from(first)..=u32::from(last)).contains(&v) {
                    return Err(p.err(
                        format!("gw.pool[{i}]"),
                        format!(
                            "{} is inside the subscriber range lb.range[{r}] ({}-{}): the NAT source cannot be a subscriber address; take a pool address outside every subscriber range",
                            Ipv4Addr::from(*a),
                            lr.first,
                            lr.last
                        ),
                    ));
                }
            }
        }
    }
    let mut timeouts = GwTimeouts::default();
    if let Some(t) = &g.timeouts {
        let ms = |v: Option<f64>, d: u64| v.map(|s| (s * 1000.0) as u64).unwrap_or(d);
        timeouts = GwTimeouts {
            syn_ms: ms(t.syn_s, timeouts.syn_ms),
            established_ms: ms(t.established_s, timeouts.established_ms),
            closing_ms: ms(t.closing_s, timeouts.closing_ms),
            udp_ms: ms(t.udp_s, timeouts.udp_ms),
            icmp_ms: ms(t.icmp_s, timeouts.icmp_ms),
            close_hold_ms: ms(t.close_hold_s, timeouts.close_hold_ms),
            // (never longer than the close hold unless both are given)
            short_hold_ms: match t.short_hold_s {
                Some(s) => (s * 1000.0) as u64,
                None => timeouts
                    .short_hold_ms
                    .min(ms(t.close_hold_s, timeouts.close_hold_ms)),
            },
        };
    }
    let cfg = GwConfig {
        access_port: access,
        server_port: server,
        pool: pool.clone(),
        key_port_first: g.key_ports[0],
        key_port_last: g.key_ports[1],
        reserved_ports: g.probe_ports.map(|[a, b]| (a, b)),
        workers: p.cores.workers.len() as u16,
        timeouts,
        max_flows_per_worker: g.max_flows_per_worker,
        preserve_port: g.preserve_port,
        attr_slots: g.attr_slots,
        require_session: g.require_session,
        // A new seed at every start (the flow hash must not be predictable
        // from the outside, nor the same across restarts).
        hash_seed: random_seed(),
        pool6: {
            let mut v = Vec::new();
            for (i, a) in g.pool6.iter().enumerate() {
                v.push(
                    parse_v6_prefix(a)
                        .map_err(|e| p.err(format!("gw.pool6[{i}]"), e))?
                        .0,
                );
            }
            v
        },
        server_next_hop_mac: match &g.server_next_hop_mac {
            Some(m) => Some(parse_mac(m).map_err(|e| p.err("gw.server_next_hop_mac", e))?),
            None => None,
        },
        nat64: match &g.nat64 {
            Some(n) => {
                let (a, l) = parse_v6_prefix(&n.prefix).map_err(|m| p.err("gw.nat64.prefix", m))?;
                let prefix = pgw_pipelines::xlat::rfc6052::Prefix::new(a, l)
                    .map_err(|m| p.err("gw.nat64.prefix", m))?;
                Some(pgw_pipelines::gw::Nat64Cfg {
                    prefix,
                    xlat: pgw_pipelines::xlat::XlatConfig {
                        mtu4: n.mtu4,
                        mtu6: n.mtu6,
                    },
                })
            }
            None => None,
        },
        mss_clamp_up: g.mss_clamp_up,
        mss_clamp_down: g.mss_clamp_down,
        window_cap_down: g.window_cap_down,
        answer_ping: g.answer_ping,
        exhaustion_reply: match g.exhaustion_reply.as_str() {
            "drop" => ExhaustionReply::Drop,
            "rst" => ExhaustionReply::Rst,
            other => {
                return Err(p.err(
                    "gw.exhaustion_reply",
                    format!("{other:?}: use \"drop\" (the default) or \"rst\""),
                ))
            }
        },
        syn_proxy: match g.syn_proxy.as_str() {
            "off" => SynProxy::Off,
            "on" => SynProxy::On,
            "auto" if g.syn_proxy_half_open == 0 => {
                return Err(p.err(
                    "gw.syn_proxy_half_open",
                    "0: use syn_proxy = \"on\" to proxy every SYN, or a threshold such as 1000",
                ))
            }
            "auto" => SynProxy::Auto {
                half_open: g.syn_proxy_half_open,
            },
            other => {
                return Err(p.err(
                    "gw.syn_proxy",
                    format!("{other:?}: use \"off\" (the default), \"on\" or \"auto\""),
                ))
            }
        },
        frag_contexts: g.frag_contexts,
        frag_hold_slots: g.frag_hold_slots,
        frag_max_held: g.frag_max_held,
        frag_timeout_ms: g.frag_timeout_ms,
        syn_proxy_mss: g.syn_proxy_mss,
        syn_proxy_wscale: g.syn_proxy_wscale,
        cookie_secret: [random_seed(), random_seed()],
        max_conns_per_subscriber: g.max_conns_per_subscriber,
        new_conns_per_subscriber_per_s: match g.new_conns_per_subscriber_per_s {
            None => 0,
            Some(r) if (1..=GwConfig::MAX_SUB_RATE).contains(&r) => r,
            Some(r) => {
                return Err(p.err(
                    "gw.new_conns_per_subscriber_per_s",
                    format!(
                        "{r}: must be in 1..={}; leave it out for no limit",
                        GwConfig::MAX_SUB_RATE
                    ),
                ))
            }
        },
        ..GwConfig::default()
    };
    cfg.validate().map_err(|m| p.err("gw", m))?;

    let mut service_names = Vec::new();
    for (i, s) in g.services.iter().enumerate() {
        if s.id > ServiceId::MAX {
            return Err(p.err(
                format!("gw.service[{i}].id"),
                format!("{} > {}", s.id, ServiceId::MAX),
            ));
        }
        if service_names
            .iter()
            .any(|(id, n): &(u8, String)| *id == s.id || *n == s.name)
        {
            return Err(p.err(
                format!("gw.service[{i}]"),
                format!("service {:?} / id {} defined twice", s.name, s.id),
            ));
        }
        service_names.push((s.id, s.name.clone()));
    }
    let service = |key: String, name: &str| -> Result<ServiceId, ConfigError> {
        service_names
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| ServiceId(*id))
            .ok_or_else(|| p.err(key, format!("no [[gw.service]] named {name:?}")))
    };
    let mut groups = Vec::new();
    let mut members6 = Vec::new();
    let mut members_ips = Vec::new();
    let mut members6_ips: Vec<[u8; 16]> = Vec::new();
    for (i, gc) in g.groups.iter().enumerate() {
        let policy = match gc.policy.as_str() {
            "round-robin" => Policy::RoundRobin,
            "weighted-round-robin" => Policy::WeightedRoundRobin,
            "least-connections" => Policy::LeastConnections,
            "priority" => Policy::Priority,
            other => {
                return Err(p.err(
                    format!("gw.group[{i}].policy"),
                    format!("{other:?}: use round-robin, weighted-round-robin, least-connections or priority"),
                ))
            }
        };
        if gc.members.is_empty() {
            return Err(p.err(
                format!("gw.group[{i}].members"),
                format!(
                    "group {:?} has no member: connections to its representative addresses could only be dropped; add members = [{{ name = ..., ip = ... }}]",
                    gc.name
                ),
            ));
        }
        let mut members = Vec::new();
        for (j, m) in gc.members.iter().enumerate() {
            let a = ip(p, format!("gw.group[{i}].members[{j}].ip"), &m.ip)?;
            if let Some(k) = pool.iter().position(|x| *x == a) {
                return Err(p.err(
                    format!("gw.group[{i}].members[{j}].ip"),
                    format!(
                        "{} is also the pool address gw.pool[{k}]: the GW answers ARP for its pool on the server port, so member {:?} could not be reached; use the server's own address",
                        m.ip, m.name
                    ),
                ));
            }
            if m.weight == 0 {
                return Err(p.err(
                    format!("gw.group[{i}].members[{j}].weight"),
                    format!(
                        "0: member {:?} would never be chosen; use a weight of 1 or more (to take a member out, set up = false)",
                        m.name
                    ),
                ));
            }
            if let Some(v6) = &m.ip6 {
                let (a6, _) = parse_v6_prefix(v6)
                    .map_err(|e| p.err(format!("gw.group[{i}].members[{j}].ip6"), e))?;
                members6.push(Member6 {
                    group: gc.name.clone(),
                    member: m.name.clone(),
                    ip6: a6,
                });
                members6_ips.push(a6);
            }
            members_ips.push(a);
            members.push(Member {
                name: m.name.clone(),
                ip: a,
                port: m.port,
                weight: m.weight,
                priority: m.priority,
                up: m.up,
            });
        }
        groups.push(Group {
            name: gc.name.clone(),
            service: service(format!("gw.group[{i}].service"), &gc.service)?,
            policy,
            members,
        });
    }
    let mut vips = Vec::new();
    let mut arp_ips = Vec::new();
    let mut ndp_vips = Vec::new();
    let mut vips6 = Vec::new();
    for (i, v) in g.vips.iter().enumerate() {
        if !g.groups.iter().any(|gc| gc.name == v.group) {
            return Err(p.err(
                format!("gw.vip[{i}].group"),
                format!(
                    "no [[gw.group]] named {:?} (groups: {})",
                    v.group,
                    g.groups
                        .iter()
                        .map(|gc| format!("{:?}", gc.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let Some(j) = g.vips[..i]
            .iter()
            .position(|o| o.ip == v.ip && o.port == v.port)
        {
            let port = match v.port {
                Some(n) => format!("port {n}"),
                None => "any port".to_string(),
            };
            return Err(p.err(
                format!("gw.vip[{i}]"),
                format!(
                    "{} {port} is already gw.vip[{j}]; a VIP and port lead to one group: remove one",
                    v.ip
                ),
            ));
        }
        if v.ip.contains(':') {
            let (a6, _) =
                parse_v6_prefix(&v.ip).map_err(|e| p.err(format!("gw.vip[{i}].ip"), e))?;
            vips6.push(Vip6 {
                ip: a6,
                port: v.port,
                group: v.group.clone(),
            });
            ndp_vips.push((access, a6));
            continue;
        }
        let a = ip(p, format!("gw.vip[{i}].ip"), &v.ip)?;
        vips.push(Vip {
            ip: a,
            port: v.port,
            group: v.group.clone(),
        });
        arp_ips.push((access, a));
    }
    let external = match &g.external_service {
        Some(n) => Some(service("gw.external_service".into(), n)?),
        None => None,
    };
    let services = Services::new(groups, vips, external)
        .and_then(|s| {
            if vips6.is_empty() && members6.is_empty() {
                Ok(s)
            } else {
                s.with_v6(vips6, members6)
            }
        })
        .map_err(|m| p.err("gw", m))?;
    // gw.session[i]: its device and the services it may use.
    let auth = |i: usize, s: &SessionCfg| -> Result<SubscriberAuth, ConfigError> {
        let mut allowed = 0u64;
        for (j, n) in s.services.iter().enumerate() {
            allowed |= service(format!("gw.session[{i}].services[{j}]"), n)?.bit();
        }
        Ok(SubscriberAuth {
            device_id: s.device_id,
            active: true,
            allowed,
        })
    };
    let mut sessions = Vec::new();
    let mut sessions6 = Vec::new();
    for (i, s) in g.sessions.iter().enumerate() {
        if let Some(v6) = &s.ipv6 {
            let (a, l) =
                parse_v6_prefix(v6).map_err(|m| p.err(format!("gw.session[{i}].ipv6"), m))?;
            if let Some(k) = cfg.pool6.iter().position(|x| v6_in(x, &a, l)) {
                return Err(p.err(
                    format!("gw.session[{i}].ipv6"),
                    format!(
                        "{v6} contains the pool address gw.pool6[{k}] ({}): a subscriber prefix and the NAT66 source cannot overlap; use another prefix or pool6 address",
                        std::net::Ipv6Addr::from(cfg.pool6[k])
                    ),
                ));
            }
            sessions6.push((a, l, auth(i, s)?));
        }
        let a = ip(p, format!("gw.session[{i}].ip"), &s.ip)?;
        if pool.contains(&a) {
            return Err(p.err(
                format!("gw.session[{i}].ip"),
                format!(
                    "{} is also a pool address (gw.pool): a subscriber and the NAT source cannot share an address; use another address for one of them",
                    s.ip
                ),
            ));
        }
        sessions.push((a, auth(i, s)?));
    }
    for a in &pool {
        arp_ips.push((server, *a));
    }
    for (i, pc) in p.ports.iter().enumerate() {
        for c in &pc.ipv4 {
            let (a, _) = parse_cidr(c).map_err(|m| p.err(format!("port[{i}].ipv4"), m))?;
            arp_ips.push((i as PortIdx, a.octets()));
        }
    }
    let mut ndp_ips = Vec::new();
    for (i, pc) in p.ports.iter().enumerate() {
        for (j, c) in pc.ipv6.iter().enumerate() {
            let (a, _) =
                parse_v6_prefix(c).map_err(|m| p.err(format!("port[{i}].ipv6[{j}]"), m))?;
            ndp_ips.push((i as PortIdx, a));
        }
    }
    ndp_ips.extend(ndp_vips);
    for a in &cfg.pool6 {
        ndp_ips.push((server, *a));
    }
    let mut neighbours = Vec::new();
    let mut neighbours6 = Vec::new();
    for (i, n) in p.neighbors.iter().enumerate() {
        let mac = parse_mac(&n.mac).map_err(|m| p.err(format!("neighbor[{i}].mac"), m))?;
        if n.ip.contains(':') {
            let (a6, _) =
                parse_v6_prefix(&n.ip).map_err(|e| p.err(format!("neighbor[{i}].ip"), e))?;
            neighbours6.push((a6, mac));
        } else {
            neighbours.push((ip(p, format!("neighbor[{i}].ip"), &n.ip)?, mac));
        }
    }
    if !(0.1..=3600.0).contains(&g.neighbour_refresh_s) {
        return Err(p.err(
            "gw.neighbour_refresh_s",
            format!("{}: must be 0.1..=3600 seconds", g.neighbour_refresh_s),
        ));
    }
    let neighbour_refresh = std::time::Duration::from_secs_f64(g.neighbour_refresh_s);
    Ok(GwBuild {
        cfg,
        services,
        sessions: Sessions::new(sessions.clone()).with_v6(sessions6.clone()),
        static_sessions: sessions,
        static_sessions6: sessions6,
        ndp_ips,
        neighbours,
        neighbours6,
        arp_ips,
        members: members_ips,
        members6: members6_ips,
        service_names,
        neighbour_refresh,
    })
}

/// The first neighbour table: the static entries.
pub fn neighbours(b: &GwBuild) -> Neighbours {
    Neighbours::new(b.neighbours.iter().copied()).with_v6(b.neighbours6.iter().copied())
}

/// The LB role's configuration and first snapshot.
pub struct LbBuild {
    /// MACs are zero here; the engine fills them from the started ports.
    pub cfg: LbConfig,
    pub snapshot: LbSnapshot,
    /// Gateway names by id (the index in `[[lb.gateway]]`).
    pub gateway_names: Vec<String>,
    /// Addresses the LB answers ARP for, per port.
    pub arp_ips: Vec<(PortIdx, [u8; 4])>,
    /// Addresses the LB answers neighbour discovery for, per port.
    pub ndp_ips: Vec<(PortIdx, [u8; 16])>,
}

/// Build the LB table; `local_mac` replaces gateways whose MAC is "local"
/// (this box's LAN MAC with `lb+gw`).
pub fn build_lb(p: &Profile, local_mac: [u8; 6]) -> Result<LbBuild, ConfigError> {
    let l =
        p.lb.as_ref()
            .ok_or_else(|| p.err("lb", "missing [lb] section"))?;
    let access = port(p, "lb.access_port", &l.access_port)?;
    let lan = port(p, "lb.lan_port", &l.lan_port)?;
    if access == lan {
        return Err(p.err("lb.lan_port", "must differ from lb.access_port"));
    }
    let mut gws = Vec::new();
    for (i, g) in l.gateways.iter().enumerate() {
        if l.gateways[..i].iter().any(|o| o.name == g.name) {
            return Err(p.err(
                format!("lb.gateway[{i}].name"),
                format!("{:?} defined twice", g.name),
            ));
        }
        let mac = if g.mac == "local" {
            if p.instance.role != crate::config::Role::LbGw {
                return Err(p.err(
                    format!("lb.gateway[{i}].mac"),
                    "\"local\" needs role = \"lb+gw\"",
                ));
            }
            local_mac
        } else {
            parse_mac(&g.mac).map_err(|m| p.err(format!("lb.gateway[{i}].mac"), m))?
        };
        gws.push(Gw {
            id: i as u16,
            mac,
            up: g.up,
        });
    }
    // A range's gateway names → (primary, substitutes in order).
    let chosen = |key: String, names: &[String]| {
        let mut v = Vec::new();
        for (j, n) in names.iter().enumerate() {
            let g = l
                .gateways
                .iter()
                .position(|g| &g.name == n)
                .ok_or_else(|| {
                    p.err(
                        format!("{key}.gateways[{j}]"),
                        format!("no [[lb.gateway]] named {n:?}"),
                    )
                })?;
            v.push(gws[g]);
        }
        if v.is_empty() {
            return Err(p.err(format!("{key}.gateways"), "at least a primary gateway"));
        }
        let primary = v.remove(0);
        Ok((primary, v))
    };
    let mut ranges = Vec::new();
    for (i, r) in l.ranges.iter().enumerate() {
        let first = ip(p, format!("lb.range[{i}].first"), &r.first)?;
        let last = ip(p, format!("lb.range[{i}].last"), &r.last)?;
        let (primary, substitutes) = chosen(format!("lb.range[{i}]"), &r.gateways)?;
        ranges.push(LbRange {
            first,
            last,
            primary,
            substitutes,
        });
    }
    let mut ranges6 = Vec::new();
    for (i, r) in l.ranges6.iter().enumerate() {
        let v6 = |k: &str, s: &str| {
            parse_v6_prefix(s)
                .map(|x| x.0)
                .map_err(|e| p.err(format!("lb.range6[{i}].{k}"), e))
        };
        let (first, last) = (v6("first", &r.first)?, v6("last", &r.last)?);
        let (primary, substitutes) = chosen(format!("lb.range6[{i}]"), &r.gateways)?;
        ranges6.push(LbRange6 {
            first,
            last,
            primary,
            substitutes,
        });
    }
    let table = LbTable::new(ranges)
        .and_then(|t| t.with_v6(ranges6))
        .map_err(|e| p.err("lb.range", e.to_string()))?;
    let next_hop = match &l.access_next_hop_mac {
        Some(m) => Some(parse_mac(m).map_err(|e| p.err("lb.access_next_hop_mac", e))?),
        None => None,
    };
    let mut neigh = Vec::new();
    let mut neigh6 = Vec::new();
    for (i, n) in p.neighbors.iter().enumerate() {
        let mac = parse_mac(&n.mac).map_err(|m| p.err(format!("neighbor[{i}].mac"), m))?;
        if n.ip.contains(':') {
            neigh6.push((
                parse_v6_prefix(&n.ip)
                    .map_err(|e| p.err(format!("neighbor[{i}].ip"), e))?
                    .0,
                mac,
            ));
        } else {
            neigh.push((ip(p, format!("neighbor[{i}].ip"), &n.ip)?, mac));
        }
    }
    let mut arp_ips = Vec::new();
    let mut ndp_ips = Vec::new();
    for (i, pc) in p.ports.iter().enumerate() {
        for c in &pc.ipv4 {
            let (a, _) = parse_cidr(c).map_err(|m| p.err(format!("port[{i}].ipv4"), m))?;
            arp_ips.push((i as PortIdx, a.octets()));
        }
        for (j, c) in pc.ipv6.iter().enumerate() {
            ndp_ips.push((
                i as PortIdx,
                parse_v6_prefix(c)
                    .map_err(|e| p.err(format!("port[{i}].ipv6[{j}]"), e))?
                    .0,
            ));
        }
    }
    Ok(LbBuild {
        cfg: LbConfig {
            access_port: access,
            lan_port: lan,
            access_mac: [0; 6],
            lan_mac: [0; 6],
            access_next_hop_mac: next_hop,
        },
        snapshot: LbSnapshot {
            table,
            access_neighbours: AccessNeighbours::new(neigh).with_v6(neigh6),
        },
        gateway_names: l.gateways.iter().map(|g| g.name.clone()).collect(),
        arp_ips,
        ndp_ips,
    })
}

/// Parse "2001:db8::1/64" (a bare address is /128).
/// Whether `x` is inside `prefix`/`len`.
fn v6_in(x: &[u8; 16], prefix: &[u8; 16], len: u8) -> bool {
    let m = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len.min(128) as u32)
    };
    u128::from_be_bytes(*x) & m == u128::from_be_bytes(*prefix) & m
}

pub fn parse_v6_prefix(s: &str) -> Result<([u8; 16], u8), String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            l.parse::<u8>()
                .map_err(|_| format!("{s:?}: bad prefix length"))?,
        ),
        None => (s, 128),
    };
    let a: std::net::Ipv6Addr = a
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv6 address"))?;
    if l > 128 {
        return Err(format!("{s:?}: prefix length over 128"));
    }
    Ok((a.octets(), l))
}
