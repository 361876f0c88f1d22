//! The RADIUS server of the management thread (the NAS side of the spec's
//! user authentication device + session manager, FIG. 3–11).
//!
//! Sockets and clocks live here; every decision is `pgw_pipelines::mgmt`'s
//! sans-I/O `Manager`. Its notifications (FIG. 6) become the GW's session
//! table: session start → an active entry with the allowed-services bitmap
//! of the service order table; stop → dormant (inactive: new connections
//! dropped as `no_session`); start → active again; termination → removed.
//! Each change is published as a new `Sessions` snapshot at once.
//!
//! Scope: one instance manages the sessions of the gateway it runs
//! (`radius.this_gateway`); addresses assigned to other gateways are
//! accepted and tracked here, but carrying their notifications to other
//! instances (the multi-instance control protocol) is not implemented.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use pgw_pipelines::gw::tables::SubscriberAuth;
use pgw_pipelines::mgmt::assign::{Assigner, GwAddrRow, GwId, Ipv4Range};
use pgw_pipelines::mgmt::session::{
    Notification, SessionConfig, SessionLogRecord, SessionState, StatusChange,
};
use pgw_pipelines::mgmt::users::{ServiceOrder, ServiceOrderTable, UserRecord, UserTable};
use pgw_pipelines::mgmt::{Manager, ManagerConfig, RadiusClient};
use serde::Deserialize;

use crate::config::{ConfigError, Profile};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusCfg {
    /// Authentication port (Access-Request), e.g. "127.0.0.1:1812".
    pub listen: String,
    /// Accounting port (Accounting-Request), e.g. "127.0.0.1:1813".
    pub acct_listen: String,
    /// Name of the `[[radius.gateway]]` this instance is.
    #[serde(default)]
    pub this_gateway: Option<String>,
    /// Act → Dormant without traffic (seconds; absent: only on Stop).
    #[serde(default)]
    pub dormant_s: Option<f64>,
    /// Dormant → Close after this long (seconds).
    #[serde(default = "d_session_s")]
    pub session_s: f64,
    /// Act → Close without an Interim-Update for this long (absent: off).
    #[serde(default)]
    pub interim_monitor_s: Option<f64>,
    /// Interval the NAS is told to send Interim-Updates at.
    #[serde(default)]
    pub interim_interval_s: Option<u32>,
    /// Shared secret of the control protocol toward the gateway instances
    /// (`[[radius.gateway]] control`), see `ctlproto`.
    #[serde(default)]
    pub control_secret: Option<String>,
    /// Resend every remote gateway its session table this often (seconds).
    #[serde(default = "d_resync_s")]
    pub control_resync_s: f64,
    /// Service ids (bits of the allowed-services bitmap), when this instance
    /// has no `[gw]` section of its own; must match the gateways' ids.
    #[serde(rename = "service", default)]
    pub services: Vec<crate::config::ServiceCfg>,
    #[serde(rename = "client", default)]
    pub clients: Vec<ClientCfg>,
    #[serde(rename = "user", default)]
    pub users: Vec<UserCfg>,
    #[serde(rename = "gateway", default)]
    pub gateways: Vec<AssignGwCfg>,
}

fn d_session_s() -> f64 {
    3600.0
}
fn d_resync_s() -> f64 {
    2.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCfg {
    /// Source address of the NAS.
    pub address: String,
    pub secret: String,
    #[serde(default)]
    pub require_message_authenticator: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCfg {
    pub user: String,
    pub password: String,
    /// Mobile device id (the NAS sends it as Calling-Station-Id).
    pub device_id: String,
    #[serde(default)]
    pub phone: String,
    /// Services this device may use (`[[gw.service]]` names).
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignGwCfg {
    pub name: String,
    /// Address ranges "first-last" handed to this gateway's subscribers.
    pub ranges: Vec<String>,
    #[serde(default = "d_true")]
    pub up: bool,
    /// IPv6 block of this gateway ("2001:db8:50::/48"): session i gets its
    /// i-th /64 as Framed-IPv6-Prefix (dual stack, NAT64 for IPv6 subscribers).
    #[serde(default)]
    pub ipv6_prefix: Option<String>,
    /// Control listener of that gateway's pgw instance ("address:port"),
    /// where its session table is sent (not needed for `this_gateway`).
    #[serde(default)]
    pub control: Option<String>,
}

fn d_true() -> bool {
    true
}

/// A gateway's session table: IPv4 entries and IPv6 prefixes.
pub type Sessions4and6 = (
    Vec<([u8; 4], SubscriberAuth)>,
    Vec<([u8; 16], u8, SubscriberAuth)>,
);

/// The GW's view of one session.
#[derive(Clone, Copy)]
struct GwSession {
    device_id: u64,
    active: bool,
    allowed: u64,
    /// The session's IPv6 /64, when its gateway has an IPv6 block.
    prefix6: Option<[u8; 16]>,
}

/// A device id as the u64 the data path carries (numeric ids as they are,
/// others hashed with FNV-1a); the management side resolves it back.
pub fn device_key(id: &str) -> u64 {
    if let Ok(v) = id.parse::<u64>() {
        return v;
    }
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

pub struct RadiusSide {
    auth: UdpSocket,
    acct: UdpSocket,
    clients: HashMap<IpAddr, RadiusClient>,
    mgr: Manager<SocketAddr>,
    this_gw: Option<GwId>,
    gw_names: Vec<String>,
    /// Session tables per gateway: address → (device id, entry).
    gw_sessions: HashMap<GwId, HashMap<[u8; 4], (String, GwSession)>>,
    /// Remote gateways: control address, and whether their table changed.
    remotes: HashMap<GwId, (std::net::SocketAddr, bool, String)>,
    control_secret: Vec<u8>,
    resync: std::time::Duration,
    last_sync: Option<std::time::Instant>,
    ctl_sock: Option<UdpSocket>,
    epoch: i64,
    seq: u64,
    pub control_sent: u64,
    /// device key → device id string (for accounting records).
    pub devices: HashMap<u64, String>,
    pub unknown_client: u64,
    pub session_log: VecDeque<SessionLogRecord>,
    pub session_log_total: u64,
    /// Session log records not yet handed to the accounting writer.
    pub pending_log: Vec<SessionLogRecord>,
    buf: Vec<u8>,
}

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
        HashMap<IpAddr, RadiusClient>,
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
            ranges.push(parse_range(
                p,
                format!("radius.gateway[{i}].ranges[{j}]"),
                s,
            )?);
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
    let mut clients = HashMap::new();
    for (i, c) in r.clients.iter().enumerate() {
        let a: IpAddr = c.address.parse().map_err(|_| {
            p.err(
                format!("radius.client[{i}].address"),
                format!("{:?} is not an IP address", c.address),
            )
        })?;
        if c.secret.is_empty() {
            return Err(p.err(format!("radius.client[{i}].secret"), "empty secret"));
        }
        clients.insert(
            a,
            RadiusClient {
                secret: c.secret.as_bytes().to_vec(),
                require_message_authenticator: c.require_message_authenticator,
            },
        );
    }
    let ms = |s: f64| (s * 1000.0) as u64;
    let cfg = ManagerConfig {
        session: SessionConfig {
            dormant_ms: r.dormant_s.map(ms),
            session_ms: ms(r.session_s),
            interim_monitor_ms: r.interim_monitor_s.map(ms),
        },
        acct_interim_interval_s: r.interim_interval_s,
        ..ManagerConfig::default()
    };
    let mut mgr = Manager::new(cfg, users, services, assigner);
    for (gw, base, len) in v6 {
        mgr.set_ipv6_block(gw, base, len);
    }
    Ok(Some((r, mgr, this, gw_names, clients)))
}

impl RadiusSide {
    pub fn start(p: &Profile) -> Result<Option<RadiusSide>, String> {
        let Some((r, mgr, this_gw, gw_names, clients)) = build(p).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let bind = |a: &str| -> Result<UdpSocket, String> {
            let s = UdpSocket::bind(a).map_err(|e| format!("radius: cannot listen on {a}: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(s)
        };
        let remotes: HashMap<GwId, (SocketAddr, bool, String)> = r
            .gateways
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(GwId(*i as u16)) != this_gw)
            .filter_map(|(i, g)| {
                g.control
                    .as_ref()
                    .and_then(|c| c.parse().ok())
                    .map(|a| (GwId(i as u16), (a, true, "startup".to_string())))
            })
            .collect();
        let ctl_sock = if remotes.is_empty() {
            None
        } else {
            let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("control socket: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            Some(s)
        };
        Ok(Some(RadiusSide {
            auth: bind(&r.listen)?,
            acct: bind(&r.acct_listen)?,
            clients,
            mgr,
            this_gw,
            gw_names,
            gw_sessions: HashMap::new(),
            remotes,
            control_secret: r.control_secret.clone().unwrap_or_default().into_bytes(),
            resync: std::time::Duration::from_secs_f64(r.control_resync_s.max(0.1)),
            last_sync: None,
            ctl_sock,
            epoch: crate::acctlog::unix_ms_now(),
            seq: 0,
            control_sent: 0,
            devices: HashMap::new(),
            unknown_client: 0,
            session_log: VecDeque::new(),
            session_log_total: 0,
            pending_log: Vec::new(),
            buf: vec![0u8; 4096],
        }))
    }

    /// Reload users and service orders from a new profile; the sessions
    /// whose allowed services changed are re-sent to their gateways.
    /// Returns the local sessions when this instance's own table changed.
    pub fn reload(&mut self, p: &Profile) -> Result<Option<Sessions4and6>, String> {
        let Some((_, mgr, _, _, _)) = build(p).map_err(|e| e.to_string())? else {
            return Err("the new profile has no [radius] section".into());
        };
        self.mgr
            .set_tables(mgr.users().clone(), mgr.services().clone());
        let mut local_changed = false;
        let gws: Vec<GwId> = self.gw_sessions.keys().copied().collect();
        for gw in gws {
            let entries: Vec<([u8; 4], String)> = self.gw_sessions[&gw]
                .iter()
                .map(|(a, (d, _))| (*a, d.clone()))
                .collect();
            for (a, dev) in entries {
                let allowed = self.mgr.services().services_of(&dev).0;
                let e = self.gw_sessions.get_mut(&gw).unwrap().get_mut(&a).unwrap();
                if e.1.allowed != allowed {
                    e.1.allowed = allowed;
                    local_changed |= Some(gw) == self.this_gw;
                    self.mark(gw, format!("reload {dev}"));
                }
            }
        }
        self.sync_remotes();
        Ok(local_changed.then(|| self.local_sessions()))
    }

    /// The user id of a device (for the session log).
    pub fn user_of(&self, device: &str) -> String {
        self.mgr
            .users()
            .by_device(device)
            .map(|u| u.user_id.clone())
            .unwrap_or_default()
    }

    /// A gateway's health changed: a down gateway gets no new sessions.
    pub fn set_gw_up(&mut self, name: &str, up: bool) {
        if let Some(i) = self.gw_names.iter().position(|n| n == name) {
            let _ = self.mgr.set_gw_up(GwId(i as u16), up);
        }
    }

    /// Serve pending datagrams and timers. Returns a new session table for
    /// the GW when anything changed for this instance's gateway.
    pub fn poll(&mut self, now_ms: u64) -> Option<Sessions4and6> {
        let mut notes = Vec::new();
        for sock in 0..2 {
            loop {
                let s = if sock == 0 { &self.auth } else { &self.acct };
                let (n, from) = match s.recv_from(&mut self.buf) {
                    Ok(x) => x,
                    Err(_) => break,
                };
                let Some(client) = self.clients.get(&from.ip()).cloned() else {
                    self.unknown_client += 1;
                    continue;
                };
                let out = self
                    .mgr
                    .handle_radius(from, &client, &self.buf[..n], now_ms);
                if let Some(reply) = out.reply {
                    let s = if sock == 0 { &self.auth } else { &self.acct };
                    let _ = s.send_to(&reply, from);
                }
                notes.extend(out.notifications);
            }
        }
        notes.extend(self.mgr.handle_timeout(now_ms));
        let mut changed = false;
        let mut i = 0;
        while i < notes.len() {
            let n = notes[i].clone();
            i += 1;
            match n {
                Notification::SessionStart(r) => {
                    changed |= self.install(&r.device_id, r.addr, r.gw, true, "session_start")
                }
                Notification::StatusChange { session: r, change } => match change {
                    StatusChange::Start | StatusChange::Interim => {
                        changed |=
                            self.install(&r.device_id, r.addr, r.gw, true, "status_change start")
                    }
                    StatusChange::Stop => {
                        changed |=
                            self.install(&r.device_id, r.addr, r.gw, false, "status_change stop")
                    }
                    StatusChange::Close => {
                        changed |= self.remove(&r.device_id, r.addr, r.gw, "status_change close")
                    }
                },
                Notification::SessionTermination(r) => {
                    changed |= self.remove(&r.device_id, r.addr, r.gw, "session_termination")
                }
                Notification::WriteSessionLog(rec) => {
                    // The session log is kept here (and by the accounting
                    // writer where one is configured); written → None.
                    let (dev, sid) = (rec.session.device_id.clone(), rec.session.session_id);
                    self.session_log_total += 1;
                    if self.session_log.len() == 1024 {
                        self.session_log.pop_front();
                    }
                    self.pending_log.push(rec.clone());
                    self.session_log.push_back(rec);
                    if let Ok(more) = self.mgr.session_log_written(&dev, sid) {
                        notes.extend(more);
                    }
                }
                Notification::SessionRemoved(_) => {}
            }
        }
        self.sync_remotes();
        changed.then(|| self.local_sessions())
    }

    /// This instance's own gateway's sessions (IPv4, and IPv6 /64s).
    pub fn local_sessions(&self) -> Sessions4and6 {
        let Some(gw) = self.this_gw else {
            return Default::default();
        };
        let Some(t) = self.gw_sessions.get(&gw) else {
            return Default::default();
        };
        let v4 = t
            .iter()
            .map(|(a, (_, s))| {
                (
                    *a,
                    SubscriberAuth {
                        device_id: s.device_id,
                        active: s.active,
                        allowed: s.allowed,
                    },
                )
            })
            .collect();
        let v6 = t
            .values()
            .filter_map(|(_, s)| {
                s.prefix6.map(|p| {
                    (
                        p,
                        64,
                        SubscriberAuth {
                            device_id: s.device_id,
                            active: s.active,
                            allowed: s.allowed,
                        },
                    )
                })
            })
            .collect();
        (v4, v6)
    }

    /// Send each remote gateway its table: at once when it changed, and
    /// every `resync` anyway.
    fn sync_remotes(&mut self) {
        let Some(sock) = &self.ctl_sock else { return };
        let due = self.last_sync.is_none_or(|t| t.elapsed() >= self.resync);
        if due {
            self.last_sync = Some(std::time::Instant::now());
        }
        for (gw, (addr, dirty, event)) in self.remotes.iter_mut() {
            if !(*dirty || due) {
                continue;
            }
            let sessions: Vec<crate::ctlproto::SessionEntry> = self
                .gw_sessions
                .get(gw)
                .map(|t| {
                    t.iter()
                        .map(|(a, (dev, s))| crate::ctlproto::SessionEntry {
                            addr: Ipv4Addr::from(*a),
                            device: dev.clone(),
                            device_key: s.device_id,
                            active: s.active,
                            allowed: s.allowed,
                            prefix6: s.prefix6.map(std::net::Ipv6Addr::from),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let event = if *dirty {
                std::mem::take(event)
            } else {
                "resync".into()
            };
            // One table, in parts of at most CHUNK entries (each its own datagram).
            let chunks: Vec<&[crate::ctlproto::SessionEntry]> = if sessions.is_empty() {
                vec![&[][..]]
            } else {
                sessions.chunks(crate::ctlproto::CHUNK).collect()
            };
            let table = self.seq + 1;
            let mut ok = true;
            for (i, part) in chunks.iter().enumerate() {
                self.seq += 1;
                let msg = crate::ctlproto::Message {
                    v: 1,
                    epoch: self.epoch,
                    seq: self.seq,
                    ts: crate::acctlog::unix_ms_now(),
                    gateway: self
                        .gw_names
                        .get(gw.0 as usize)
                        .cloned()
                        .unwrap_or_default(),
                    event: event.clone(),
                    table,
                    part: i as u32,
                    parts: chunks.len() as u32,
                    sessions: part.to_vec(),
                };
                ok &= sock
                    .send_to(&crate::ctlproto::encode(&msg, &self.control_secret), *addr)
                    .is_ok();
                self.control_sent += 1;
            }
            if ok {
                *dirty = false;
            }
        }
    }

    fn remove(&mut self, device: &str, addr: Ipv4Addr, gw: GwId, event: &str) -> bool {
        let removed = self
            .gw_sessions
            .get_mut(&gw)
            .and_then(|t| t.remove(&addr.octets()))
            .is_some();
        if removed {
            self.mark(gw, format!("{event} {device} {addr}"));
        }
        removed && Some(gw) == self.this_gw
    }

    fn mark(&mut self, gw: GwId, event: String) {
        if let Some((_, dirty, ev)) = self.remotes.get_mut(&gw) {
            *dirty = true;
            *ev = event;
        }
    }

    fn install(
        &mut self,
        device: &str,
        addr: Ipv4Addr,
        gw: GwId,
        active: bool,
        event: &str,
    ) -> bool {
        let key = device_key(device);
        self.devices.insert(key, device.to_string());
        let allowed = self.mgr.services().services_of(device).0;
        let new = GwSession {
            device_id: key,
            active,
            allowed,
            prefix6: self.mgr.ipv6_prefix_of(addr),
        };
        let old = self
            .gw_sessions
            .entry(gw)
            .or_default()
            .insert(addr.octets(), (device.to_string(), new));
        let changed = old
            .map(|(_, o)| o.active != active || o.allowed != allowed)
            .unwrap_or(true);
        if changed {
            self.mark(gw, format!("{event} {device} {addr}"));
        }
        changed && Some(gw) == self.this_gw
    }

    /// `pgw sessions`: every session with its state, and the counters.
    pub fn sessions_json(&self) -> String {
        let state = |s: SessionState| format!("{s:?}");
        let rows: Vec<serde_json::Value> = self
            .mgr
            .sessions()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "session_id": s.session_id,
                    "device_id": s.device_id,
                    "address": s.addr.to_string(),
                    "gateway": self.gw_names.get(s.gw.0 as usize).cloned().unwrap_or_default(),
                    "state": state(s.state),
                    "acct_session_id": s.acct_session_id,
                    "started_ms": s.started_ms,
                    "state_since_ms": s.state_since_ms,
                })
            })
            .collect();
        let log: Vec<serde_json::Value> = self
            .session_log
            .iter()
            .map(|r| {
                serde_json::json!({
                    "device_id": r.session.device_id,
                    "address": r.session.addr.to_string(),
                    "started_ms": r.started_ms,
                    "closed_ms": r.closed_ms,
                    "cause": format!("{:?}", r.cause),
                    "in_octets": r.usage.in_octets,
                    "out_octets": r.usage.out_octets,
                })
            })
            .collect();
        serde_json::json!({
            "sessions": rows,
            "session_log_total": self.session_log_total,
            "session_log": log,
            "unknown_client": self.unknown_client,
            "counters": format!("{:?}", self.mgr.counters()),
            "gw_table_entries": self.gw_sessions.values().map(|t| t.len()).sum::<usize>(),
            "control_sent": self.control_sent,
        })
        .to_string()
    }
}
