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

use pgw_pipelines::gw::tables::{Session, Sessions};
use pgw_pipelines::mgmt::assign::{Assigner, GwConfig as AssignGw, GwId, Ipv4Range};
use pgw_pipelines::mgmt::session::{Notification, SessionConfig, SessionLogRecord, SessionState, StatusChange};
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
}

fn d_true() -> bool {
    true
}

/// The GW's view of one session.
#[derive(Clone, Copy)]
struct GwSession {
    device_id: u64,
    active: bool,
    allowed: u64,
}

/// A device id as the u64 the data path carries (numeric ids as they are,
/// others hashed with FNV-1a); the management side resolves it back.
pub fn device_key(id: &str) -> u64 {
    if let Ok(v) = id.parse::<u64>() {
        return v;
    }
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

pub struct RadiusSide {
    auth: UdpSocket,
    acct: UdpSocket,
    clients: HashMap<IpAddr, RadiusClient>,
    mgr: Manager<SocketAddr>,
    this_gw: GwId,
    gw_names: Vec<String>,
    gw_sessions: HashMap<[u8; 4], GwSession>,
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
    let (a, b) = s.split_once('-').ok_or_else(|| p.err(key.clone(), format!("{s:?}: write first-last")))?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| p.err(key.clone(), format!("{a:?} is not an IPv4 address")))?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| p.err(key.clone(), format!("{b:?} is not an IPv4 address")))?;
    if u32::from(a) > u32::from(b) {
        return Err(p.err(key, format!("{s:?}: first is after last")));
    }
    Ok(Ipv4Range::new(a, b))
}

/// Build the manager from the profile (validation and start share this).
pub fn build(p: &Profile) -> Result<Option<(RadiusCfg, Manager<SocketAddr>, GwId, Vec<String>, HashMap<IpAddr, RadiusClient>)>, ConfigError> {
    let Some(r) = p.radius.clone() else { return Ok(None) };
    r.listen.parse::<SocketAddr>().map_err(|_| p.err("radius.listen", format!("{:?} is not address:port", r.listen)))?;
    r.acct_listen
        .parse::<SocketAddr>()
        .map_err(|_| p.err("radius.acct_listen", format!("{:?} is not address:port", r.acct_listen)))?;
    // Service ids: the GW's, so the bitmaps agree bit for bit.
    let gw_services: Vec<(u8, String)> = p
        .gw
        .as_ref()
        .map(|g| g.services.iter().map(|s| (s.id, s.name.clone())).collect())
        .unwrap_or_default();
    let max = gw_services.iter().map(|(i, _)| *i as usize + 1).max().unwrap_or(0);
    let mut names: Vec<String> = (0..max).map(|i| format!("#unused{i}")).collect();
    for (i, n) in &gw_services {
        names[*i as usize] = n.clone();
    }
    let mut users = Vec::new();
    let mut orders = Vec::new();
    for (i, u) in r.users.iter().enumerate() {
        for (j, s) in u.services.iter().enumerate() {
            if !gw_services.iter().any(|(_, n)| n == s) {
                return Err(p.err(format!("radius.user[{i}].services[{j}]"), format!("no [[gw.service]] named {s:?}")));
            }
        }
        users.push(UserRecord { user_id: u.user.clone(), password: u.password.clone(), device_id: u.device_id.clone(), phone: u.phone.clone() });
        orders.push(ServiceOrder { device_id: u.device_id.clone(), allowed: u.services.clone() });
    }
    let users = UserTable::new(users).map_err(|e| p.err("radius.user", e.to_string()))?;
    let services = ServiceOrderTable::new(names, orders).map_err(|e| p.err("radius.user", e.to_string()))?;
    let mut gws = Vec::new();
    for (i, g) in r.gateways.iter().enumerate() {
        let mut ranges = Vec::new();
        for (j, s) in g.ranges.iter().enumerate() {
            ranges.push(parse_range(p, format!("radius.gateway[{i}].ranges[{j}]"), s)?);
        }
        gws.push(AssignGw { id: GwId(i as u16), name: g.name.clone(), ranges, up: g.up });
    }
    if gws.is_empty() {
        return Err(p.err("radius.gateway", "at least one [[radius.gateway]] with address ranges"));
    }
    let gw_names: Vec<String> = r.gateways.iter().map(|g| g.name.clone()).collect();
    let this = match &r.this_gateway {
        Some(n) => GwId(
            gw_names.iter().position(|g| g == n).ok_or_else(|| p.err("radius.this_gateway", format!("no [[radius.gateway]] named {n:?}")))? as u16,
        ),
        None => GwId(0),
    };
    let assigner = Assigner::new(gws).map_err(|e| p.err("radius.gateway", e.to_string()))?;
    let mut clients = HashMap::new();
    for (i, c) in r.clients.iter().enumerate() {
        let a: IpAddr = c.address.parse().map_err(|_| p.err(format!("radius.client[{i}].address"), format!("{:?} is not an IP address", c.address)))?;
        if c.secret.is_empty() {
            return Err(p.err(format!("radius.client[{i}].secret"), "empty secret"));
        }
        clients.insert(a, RadiusClient { secret: c.secret.as_bytes().to_vec(), require_message_authenticator: c.require_message_authenticator });
    }
    let ms = |s: f64| (s * 1000.0) as u64;
    let cfg = ManagerConfig {
        session: SessionConfig { dormant_ms: r.dormant_s.map(ms), session_ms: ms(r.session_s), interim_monitor_ms: r.interim_monitor_s.map(ms) },
        acct_interim_interval_s: r.interim_interval_s,
        ..ManagerConfig::default()
    };
    Ok(Some((r, Manager::new(cfg, users, services, assigner), this, gw_names, clients)))
}

impl RadiusSide {
    pub fn start(p: &Profile) -> Result<Option<RadiusSide>, String> {
        let Some((r, mgr, this_gw, gw_names, clients)) = build(p).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let bind = |a: &str| -> Result<UdpSocket, String> {
            let s = UdpSocket::bind(a).map_err(|e| format!("radius: cannot listen on {a}: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(s)
        };
        Ok(Some(RadiusSide {
            auth: bind(&r.listen)?,
            acct: bind(&r.acct_listen)?,
            clients,
            mgr,
            this_gw,
            gw_names,
            gw_sessions: HashMap::new(),
            devices: HashMap::new(),
            unknown_client: 0,
            session_log: VecDeque::new(),
            session_log_total: 0,
            pending_log: Vec::new(),
            buf: vec![0u8; 4096],
        }))
    }

    /// A gateway's health changed: a down gateway gets no new sessions.
    pub fn set_gw_up(&mut self, name: &str, up: bool) {
        if let Some(i) = self.gw_names.iter().position(|n| n == name) {
            let _ = self.mgr.set_gw_up(GwId(i as u16), up);
        }
    }

    /// Keep these sessions (the profile's static ones) in every table published.
    pub fn seed(&mut self, entries: &[([u8; 4], Session)]) {
        for (a, s) in entries {
            self.gw_sessions.insert(*a, GwSession { device_id: s.device_id, active: s.active, allowed: s.allowed });
        }
    }

    /// Serve pending datagrams and timers. Returns a new session table for
    /// the GW when anything changed for this instance's gateway.
    pub fn poll(&mut self, now_ms: u64) -> Option<Sessions> {
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
                let out = self.mgr.handle_radius(from, &client, &self.buf[..n], now_ms);
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
                Notification::SessionStart(r) => changed |= self.install(&r.device_id, r.addr, r.gw, true),
                Notification::StatusChange { session: r, change } => match change {
                    StatusChange::Start | StatusChange::Interim => changed |= self.install(&r.device_id, r.addr, r.gw, true),
                    StatusChange::Stop => changed |= self.install(&r.device_id, r.addr, r.gw, false),
                    StatusChange::Close => changed |= self.gw_sessions.remove(&r.addr.octets()).is_some(),
                },
                Notification::SessionTermination(r) => changed |= self.gw_sessions.remove(&r.addr.octets()).is_some(),
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
        changed.then(|| {
            Sessions::new(
                self.gw_sessions
                    .iter()
                    .map(|(a, s)| (*a, Session { device_id: s.device_id, active: s.active, allowed: s.allowed })),
            )
        })
    }

    fn install(&mut self, device: &str, addr: Ipv4Addr, gw: GwId, active: bool) -> bool {
        if gw != self.this_gw {
            return false;
        }
        let key = device_key(device);
        self.devices.insert(key, device.to_string());
        let allowed = self.mgr.services().services_of(device).0;
        let new = GwSession { device_id: key, active, allowed };
        let old = self.gw_sessions.insert(addr.octets(), new);
        old.map(|o| o.active != active || o.allowed != allowed).unwrap_or(true)
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
            "gw_table_entries": self.gw_sessions.len(),
        })
        .to_string()
    }
}
