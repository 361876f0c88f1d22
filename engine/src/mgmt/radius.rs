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

use crate::mgmt::acctlog::{close_cause_text, history_rows, WallClock};
use pgw_pipelines::gw::tables::SubscriberAuth;
use pgw_pipelines::mgmt::assign::GwId;
use pgw_pipelines::mgmt::radius::Clients;
use pgw_pipelines::mgmt::session::{
    NasInfo, Notification, SessionLogRecord, SessionState, StatusChange,
};
use pgw_pipelines::mgmt::{Manager, RadiusClient};

use crate::config::radius::{build, entry_points, EntryPoints};
use crate::config::Profile;

/// A gateway's session table: IPv4 entries and IPv6 prefixes.
pub type Sessions4and6 = (
    Vec<([u8; 4], SubscriberAuth)>,
    Vec<([u8; 16], u8, SubscriberAuth)>,
);

/// A subscriber (IPv4 address, IPv6 /64) now behind the LB `mac`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryMove {
    pub addr: [u8; 4],
    pub prefix6: Option<[u8; 16]>,
    pub mac: [u8; 6],
}

/// The GW's view of one session.
#[derive(Clone, Copy)]
struct GwSession {
    device_id: u64,
    active: bool,
    allowed: u64,
    /// The session's IPv6 /64, when its gateway has an IPv6 block.
    prefix6: Option<[u8; 16]>,
    /// The entry point (LB MAC) of the session's NAS, when `[[radius.nas]]`
    /// maps it.
    entry: Option<[u8; 6]>,
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

/// Closed sessions the management thread keeps in memory for `pgw
/// sessions` and `pgw sessions --history` (the oldest goes first; the
/// accounting writer's SQLite log keeps them all). Each holds its last
/// [`pgw_pipelines::mgmt::session::HISTORY_LEN`] transitions.
pub const SESSION_LOG_KEPT: usize = 1024;

pub struct RadiusSide {
    auth: UdpSocket,
    acct: UdpSocket,
    /// The NAS clients by (canonical) source address, with their rate limits.
    clients: Clients<IpAddr, RadiusClient>,
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
    /// Replies the socket refused to send.
    pub send_errors: u64,
    pub session_log: VecDeque<SessionLogRecord>,
    pub session_log_total: u64,
    /// Session log records not yet handed to the accounting writer.
    pub pending_log: Vec<SessionLogRecord>,
    /// `[[radius.nas]]`: each NAS's entry point.
    entry_points: EntryPoints,
    /// Subscribers of this instance's own gateway that RADIUS reported at a
    /// NAS with another entry point (IPv4 address, IPv6 /64, LB MAC), for
    /// the GW's moves table; taken by the caller after `poll`.
    pub local_moves: Vec<EntryMove>,
    /// Moves to a NAS that `[[radius.nas]]` does not map (nothing re-pointed).
    pub moves_unmapped: u64,
    buf: Vec<u8>,
}

impl RadiusSide {
    pub fn start(p: &Profile) -> Result<Option<RadiusSide>, String> {
        let Some((r, mgr, this_gw, gw_names, clients)) = build(p).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let entry_points = entry_points(p, &r).map_err(|e| e.to_string())?;
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
            epoch: crate::mgmt::acctlog::unix_ms_now(),
            seq: 0,
            control_sent: 0,
            devices: HashMap::new(),
            send_errors: 0,
            session_log: VecDeque::with_capacity(SESSION_LOG_KEPT),
            session_log_total: 0,
            pending_log: Vec::new(),
            entry_points,
            local_moves: Vec::new(),
            moves_unmapped: 0,
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
                // Unknown sources and clients over their rate: dropped
                // before any parsing, counted in `self.clients`. A listener
                // on an IPv6 wildcard sees IPv4 clients as mapped addresses.
                let Ok(client) = self.clients.admit(&from.ip().to_canonical(), now_ms) else {
                    continue;
                };
                let out = self.mgr.handle_radius(from, client, &self.buf[..n], now_ms);
                if let Some(reply) = out.reply {
                    let s = if sock == 0 { &self.auth } else { &self.acct };
                    if s.send_to(&reply, from).is_err() {
                        self.send_errors += 1;
                    }
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
                    if self.session_log.len() == SESSION_LOG_KEPT {
                        self.session_log.pop_front();
                    }
                    self.pending_log.push(rec.clone());
                    self.session_log.push_back(rec);
                    if let Ok(more) = self.mgr.session_log_written(&dev, sid) {
                        notes.extend(more);
                    }
                }
                Notification::SessionRemoved(_) => {}
                Notification::Moved { session: r, nas } => {
                    self.moved(&r.device_id, r.addr, r.gw, &nas)
                }
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
            let sessions: Vec<pgw_pipelines::mgmt::ctlproto::SessionEntry> = self
                .gw_sessions
                .get(gw)
                .map(|t| {
                    t.iter()
                        .map(
                            |(a, (dev, s))| pgw_pipelines::mgmt::ctlproto::SessionEntry {
                                addr: Ipv4Addr::from(*a),
                                device: dev.clone(),
                                device_key: s.device_id,
                                active: s.active,
                                allowed: s.allowed,
                                prefix6: s.prefix6.map(std::net::Ipv6Addr::from),
                                entry_mac: s.entry.map(crate::runtime::stats::mac_string),
                            },
                        )
                        .collect()
                })
                .unwrap_or_default();
            let event = if *dirty {
                std::mem::take(event)
            } else {
                "resync".into()
            };
            // One table, in parts of at most CHUNK entries (each its own datagram).
            let chunks: Vec<&[pgw_pipelines::mgmt::ctlproto::SessionEntry]> = if sessions.is_empty()
            {
                vec![&[][..]]
            } else {
                sessions
                    .chunks(pgw_pipelines::mgmt::ctlproto::CHUNK)
                    .collect()
            };
            let table = self.seq + 1;
            let mut ok = true;
            for (i, part) in chunks.iter().enumerate() {
                self.seq += 1;
                let msg = pgw_pipelines::mgmt::ctlproto::Message {
                    v: 1,
                    epoch: self.epoch,
                    seq: self.seq,
                    ts: crate::mgmt::acctlog::unix_ms_now(),
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
                    .send_to(
                        &pgw_pipelines::mgmt::ctlproto::encode(&msg, &self.control_secret),
                        *addr,
                    )
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

    /// The session of `device` was reported at the NAS `nas`: its gateway's
    /// entry for it takes that NAS's entry point (sent to a remote gateway
    /// with its table, queued for this instance's own).
    fn moved(&mut self, device: &str, addr: Ipv4Addr, gw: GwId, nas: &NasInfo) {
        let Some(mac) = self.entry_points.of(nas) else {
            self.moves_unmapped += 1;
            return;
        };
        let Some((_, s)) = self
            .gw_sessions
            .get_mut(&gw)
            .and_then(|t| t.get_mut(&addr.octets()))
        else {
            return;
        };
        s.entry = Some(mac);
        let prefix6 = s.prefix6;
        if Some(gw) == self.this_gw {
            self.local_moves.push(EntryMove {
                addr: addr.octets(),
                prefix6,
                mac,
            });
        }
        self.mark(gw, format!("moved {device} {addr}"));
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
            entry: self
                .mgr
                .sessions()
                .get(device)
                .and_then(|s| self.entry_points.of(&s.nas)),
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

    /// The session manager's counters (requests by type and result).
    pub fn counters(&self) -> &pgw_pipelines::mgmt::MgmtCounters {
        self.mgr.counters()
    }

    /// Sessions by FIG. 11 state (every state, zeros included).
    pub fn sessions_by_state(&self) -> Vec<(&'static str, u64)> {
        let states = [
            (SessionState::None, "none"),
            (SessionState::Act, "act"),
            (SessionState::Dormant, "dormant"),
            (SessionState::Close, "close"),
        ];
        states
            .iter()
            .map(|(st, name)| {
                let n = self
                    .mgr
                    .sessions()
                    .iter()
                    .filter(|s| s.state == *st)
                    .count();
                (*name, n as u64)
            })
            .collect()
    }

    /// Datagrams from addresses that are no client of the profile.
    pub fn unknown_client(&self) -> u64 {
        self.clients.unknown_client
    }

    /// Datagrams of clients over their request rate.
    pub fn rate_limited(&self) -> u64 {
        self.clients.rate_limited
    }

    /// The RADIUS server's refusals and duplicate cache, and each client's
    /// counters (`pgw sessions --json`, key `radius`).
    pub fn radius_json(&self) -> serde_json::Value {
        let mut clients: Vec<(String, serde_json::Value)> = self
            .clients
            .iter()
            .map(|(a, c)| {
                (
                    a.to_string(),
                    serde_json::json!({
                        "address": a.to_string(),
                        "admitted": c.admitted,
                        "rate_limited": c.rate_limited,
                    }),
                )
            })
            .collect();
        clients.sort_by(|a, b| a.0.cmp(&b.0));
        let dup = self.mgr.dup_cache();
        let c = self.mgr.counters();
        serde_json::json!({
            "unknown_client": self.clients.unknown_client,
            "rate_limited": self.clients.rate_limited,
            "clients": clients.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "duplicate": c.duplicate,
            "duplicate_cache_entries": dup.len(),
            "duplicate_cache_capacity": dup.capacity(),
            "duplicate_cache_evicted": dup.evicted,
            "malformed": c.malformed,
            "bad_authenticator": c.bad_authenticator,
            "missing_message_authenticator": c.missing_message_authenticator,
            "unsupported_code": c.unsupported_code,
            "access_accept": c.access_accept,
            "access_reject": c.access_reject(),
        })
    }

    /// `pgw sessions --history DEVICE`: the device's current session (if
    /// any) and its sessions still in the in-memory session log, oldest
    /// first, each with its state transitions (wall-clock times, causes).
    pub fn session_history_json(&self, device_id: &str, wall: &WallClock) -> String {
        let mut rows: Vec<serde_json::Value> = self
            .session_log
            .iter()
            .filter(|r| r.session.device_id == device_id)
            .map(|r| {
                serde_json::json!({
                    "session_id": r.session.session_id,
                    "address": r.session.addr.to_string(),
                    "state": "None",
                    "started_unix_ms": wall.unix_ms(r.started_ms),
                    "closed_unix_ms": wall.unix_ms(r.closed_ms),
                    "close_cause": close_cause_text(&r.cause),
                    "history": history_rows(&r.history, wall),
                })
            })
            .collect();
        if let Some(s) = self.mgr.sessions().get(device_id) {
            rows.push(serde_json::json!({
                "session_id": s.session_id,
                "address": s.addr.to_string(),
                "state": format!("{:?}", s.state),
                "started_unix_ms": wall.unix_ms(s.started_ms),
                "history_dropped": s.history_dropped,
                "history": history_rows(s.history(), wall),
            }));
        }
        if rows.is_empty() {
            return serde_json::json!({
                "error": format!("no session and no logged session for device {device_id:?}")
            })
            .to_string();
        }
        serde_json::json!({ "device_id": device_id, "sessions": rows }).to_string()
    }

    /// `pgw sessions`: every session with its state and history, and the
    /// counters.
    pub fn sessions_json(&self, wall: &WallClock) -> String {
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
                    "nas": s.nas.ip.map(|a| a.to_string()).or_else(|| s.nas.identifier.clone()),
                    "entry_mac": self.entry_points.of(&s.nas).map(crate::runtime::stats::mac_string),
                    "acct_session_id": s.acct_session_id,
                    "started_ms": s.started_ms,
                    "state_since_ms": s.state_since_ms,
                    "history": history_rows(s.history(), wall),
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
                    "history": history_rows(&r.history, wall),
                })
            })
            .collect();
        serde_json::json!({
            "sessions": rows,
            "session_log_total": self.session_log_total,
            "session_log": log,
            "unknown_client": self.clients.unknown_client,
            "counters": format!("{:?}", self.mgr.counters()),
            "radius": self.radius_json(),
            "gw_table_entries": self.gw_sessions.values().map(|t| t.len()).sum::<usize>(),
            "control_sent": self.control_sent,
            "nas_moves": self.mgr.counters().nas_moves,
            "nas_moves_unmapped": self.moves_unmapped,
        })
        .to_string()
    }
}
