//! The management plane's sans-I/O core: the user authentication device
//! (FIG. 4–8) and the session management device (FIG. 9–11, 30–31),
//! reachable from the NAS over RADIUS.
//!
//! The engine's management thread owns the UDP sockets, the clock and the
//! SQLite writer. It hands every datagram to [`Manager::handle_radius`],
//! sends back `Outcome::reply`, carries out `Outcome::notifications` (GW
//! session tables, session log), calls [`Manager::handle_timeout`] when
//! [`Manager::poll_timeout`] is due, reports a written session log with
//! [`Manager::session_log_written`] and GW health with
//! [`Manager::set_gw_up`].
//!
//! The RADIUS flow:
//! - Access-Request (PAP) → Message-Authenticator check → user (User-Name)
//!   → password → the Calling-Station-Id must equal the user's registered
//!   device id (FIG. 8; a user is bound to one device) → address (FIG. 5) →
//!   Access-Accept with Framed-IP-Address; any failed step → Access-Reject.
//!   Without a Message-Authenticator a wrong shared secret cannot be told
//!   from a wrong password (PAP hides the password with the secret), so it
//!   is a Reject; with one (or `require_message_authenticator`) it is a
//!   silent drop.
//! - Accounting-Request → Request Authenticator check → by
//!   Acct-Status-Type, keyed by Calling-Station-Id:
//!   Start: None → entry ①, Dormant → start ⑤, Act → the new NAS session is
//!   adopted, Close → no reply (the NAS retries after the log is written);
//!   Interim-Update: ⑥ (None: entered as for Start, recovering a lost table);
//!   Stop with Acct-Terminate-Cause Idle-Timeout → stop ② (FIG. 31), any
//!   other cause or none → close ③ (FIG. 30 logout, FIG. 31 session timer).
//!   A Start or Interim-Update of an Act or Dormant session naming another
//!   NAS (NAS-IP-Address, else NAS-Identifier) than the session's moves the
//!   session there: [`session::Notification::Moved`], which the engine turns
//!   into a re-pointing of the subscriber's connections on its GW (the
//!   subscriber changed entry point). Accounting-On/Off close every session
//!   of the NAS they name (RFC 2866 §5.1).
//! - Bad authenticator, malformed packet, unsupported code: no reply,
//!   counted. A retransmission (same client, code, identifier and request
//!   authenticator) gets the cached reply, counted.
//! - An address handed out in an Access-Accept is held for
//!   `assign_hold_ms` waiting for the Accounting Start; with no session by
//!   then it returns to the pool. A session's address is released at
//!   Close → None (④).

pub mod assign;
pub mod ctlproto;
pub mod radius;
pub mod session;
mod timer;
pub mod users;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::Hash;
use std::net::Ipv4Addr;

pub use assign::{
    AssignConfigError, AssignError, Assigner, Assignment, GwAddrRow, GwId, GwStatus, Ipv4Range,
};
pub use radius::{Code, DupCache, DupKey, MessageAuth, Packet, ParseError};
pub use session::{
    CloseCause, NasInfo, NewSession, Notification, Session, SessionConfig, SessionError,
    SessionLogRecord, SessionRef, SessionState, SessionTable, StatusChange, Usage,
};
pub use users::{
    ServiceId, ServiceOrder, ServiceOrderTable, ServiceSet, UserRecord, UserTable, UsersError,
};

use radius::{acct_status, attr, terminate_cause, AcceptAttrs};
use timer::Timers;

/// A NAS allowed to talk to the manager (the engine finds it by source address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RadiusClient {
    pub secret: Vec<u8>,
    /// Drop Access-Requests without a Message-Authenticator (BlastRADIUS
    /// hardening; FreeRADIUS's `require_message_authenticator`).
    pub require_message_authenticator: bool,
}

/// Manager settings (times in milliseconds of the caller's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerConfig {
    pub session: SessionConfig,
    /// Replies kept for retransmissions.
    pub dup_cache_capacity: usize,
    pub dup_ttl_ms: u64,
    /// How long an accepted device without a session keeps its address.
    pub assign_hold_ms: u64,
    /// Sent in Access-Accept when set.
    pub session_timeout_s: Option<u32>,
    pub idle_timeout_s: Option<u32>,
    pub acct_interim_interval_s: Option<u32>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            session: SessionConfig::default(),
            dup_cache_capacity: 4096,
            dup_ttl_ms: 30_000,
            assign_hold_ms: 60_000,
            session_timeout_s: None,
            idle_timeout_s: None,
            acct_interim_interval_s: Some(30 * 60),
        }
    }
}

/// Why an Access-Request was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    UnknownUser,
    BadPassword,
    /// Calling-Station-Id absent or not the user's registered device.
    DeviceMismatch,
    /// Neither User-Password (PAP) nor CHAP-Password (EAP: not supported).
    NoPassword,
    /// No operating GW with a free address.
    NoAddress,
}

/// What an Accounting-Request did (all of these are acknowledged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcctOutcome {
    /// ① a new session.
    Entered,
    /// ⑤ Dormant → Act.
    Started,
    /// Start in Act: the NAS's new accounting session adopted.
    Restarted,
    /// ⑥ interim recorded.
    Interim,
    /// ② Act → Dormant.
    Stopped,
    /// ③ → Close.
    Closed,
    /// Accounting-On / Accounting-Off.
    NasOnOff,
    /// No Calling-Station-Id.
    NoDevice,
    /// Start/Interim for a device with no address known and none usable in the request.
    NoAddress,
    /// Stop for a device without a session.
    UnknownSession,
    /// Interim/Stop whose Acct-Session-Id is not the session's.
    SessionMismatch,
    /// The event does not apply in the session's state (e.g. a second stop).
    Ignored,
    /// An Acct-Status-Type this manager does not handle.
    UnknownStatusType,
}

/// What happened to one datagram; each variant has a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    Accepted,
    Rejected(RejectReason),
    Accounted(AcctOutcome),
    /// Start for a session waiting for its log write: no reply, the NAS retries.
    AcctDeferred,
    Duplicate,
    Malformed,
    /// Wrong Request Authenticator or Message-Authenticator: no reply.
    BadAuthenticator,
    MissingMessageAuthenticator,
    UnsupportedCode,
}

/// Cumulative counters of the manager.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MgmtCounters {
    pub malformed: u64,
    pub unsupported_code: u64,
    pub bad_authenticator: u64,
    pub missing_message_authenticator: u64,
    pub duplicate: u64,
    pub access_accept: u64,
    pub reject_unknown_user: u64,
    pub reject_bad_password: u64,
    pub reject_device_mismatch: u64,
    pub reject_no_password: u64,
    pub reject_no_address: u64,
    pub acct_entered: u64,
    pub acct_started: u64,
    pub acct_restarted: u64,
    pub acct_interim: u64,
    pub acct_stopped: u64,
    pub acct_closed: u64,
    pub acct_nas_on_off: u64,
    /// Sessions closed by an Accounting-On/Off of their NAS.
    pub nas_on_off_closed: u64,
    pub acct_no_device: u64,
    pub acct_no_address: u64,
    pub acct_unknown_session: u64,
    pub acct_session_mismatch: u64,
    pub acct_ignored: u64,
    pub acct_unknown_status_type: u64,
    pub acct_deferred: u64,
    /// Addresses returned to the pool because no Accounting Start came.
    pub hold_expired: u64,
    /// Start or Interim-Update requests that reported a session at another
    /// NAS than the one it was at ([`Notification::Moved`]).
    pub nas_moves: u64,
}

impl MgmtCounters {
    pub fn access_reject(&self) -> u64 {
        self.reject_unknown_user
            + self.reject_bad_password
            + self.reject_device_mismatch
            + self.reject_no_password
            + self.reject_no_address
    }

    fn count(&mut self, d: Disposition) {
        let c = match d {
            Disposition::Accepted => &mut self.access_accept,
            Disposition::Rejected(r) => match r {
                RejectReason::UnknownUser => &mut self.reject_unknown_user,
                RejectReason::BadPassword => &mut self.reject_bad_password,
                RejectReason::DeviceMismatch => &mut self.reject_device_mismatch,
                RejectReason::NoPassword => &mut self.reject_no_password,
                RejectReason::NoAddress => &mut self.reject_no_address,
            },
            Disposition::Accounted(a) => match a {
                AcctOutcome::Entered => &mut self.acct_entered,
                AcctOutcome::Started => &mut self.acct_started,
                AcctOutcome::Restarted => &mut self.acct_restarted,
                AcctOutcome::Interim => &mut self.acct_interim,
                AcctOutcome::Stopped => &mut self.acct_stopped,
                AcctOutcome::Closed => &mut self.acct_closed,
                AcctOutcome::NasOnOff => &mut self.acct_nas_on_off,
                AcctOutcome::NoDevice => &mut self.acct_no_device,
                AcctOutcome::NoAddress => &mut self.acct_no_address,
                AcctOutcome::UnknownSession => &mut self.acct_unknown_session,
                AcctOutcome::SessionMismatch => &mut self.acct_session_mismatch,
                AcctOutcome::Ignored => &mut self.acct_ignored,
                AcctOutcome::UnknownStatusType => &mut self.acct_unknown_status_type,
            },
            Disposition::AcctDeferred => &mut self.acct_deferred,
            Disposition::Duplicate => &mut self.duplicate,
            Disposition::Malformed => &mut self.malformed,
            Disposition::BadAuthenticator => &mut self.bad_authenticator,
            Disposition::MissingMessageAuthenticator => &mut self.missing_message_authenticator,
            Disposition::UnsupportedCode => &mut self.unsupported_code,
        };
        *c += 1;
    }
}

/// The result of one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Send this back to the datagram's source.
    pub reply: Option<Vec<u8>>,
    pub notifications: Vec<Notification>,
    pub disposition: Disposition,
}

/// User authentication + session management over RADIUS. `K` identifies
/// the datagram's source for duplicate detection (e.g. `SocketAddr`).
#[derive(Debug)]
pub struct Manager<K> {
    cfg: ManagerConfig,
    users: UserTable,
    services: ServiceOrderTable,
    assigner: Assigner,
    sessions: SessionTable,
    dup: DupCache<K>,
    /// Devices accepted but not yet in a session → hold deadline.
    holds: Timers<String>,
    counters: MgmtCounters,
    /// IPv6 block per gateway (`set_ipv6_block`).
    ipv6: HashMap<GwId, ([u8; 16], u8)>,
}

impl<K: Eq + Hash + Clone> Manager<K> {
    pub fn new(
        cfg: ManagerConfig,
        users: UserTable,
        services: ServiceOrderTable,
        assigner: Assigner,
    ) -> Self {
        Manager {
            sessions: SessionTable::new(cfg.session),
            dup: DupCache::new(cfg.dup_cache_capacity, cfg.dup_ttl_ms),
            cfg,
            users,
            services,
            assigner,
            holds: Timers::new(),
            counters: MgmtCounters::default(),
            ipv6: HashMap::new(),
        }
    }

    /// Handles one RADIUS datagram from `from`, a NAS using `client`'s secret.
    pub fn handle_radius(
        &mut self,
        from: K,
        client: &RadiusClient,
        bytes: &[u8],
        now_ms: u64,
    ) -> Outcome {
        let mut notifications = Vec::new();
        let (reply, disposition) = self.dispatch(from, client, bytes, now_ms, &mut notifications);
        self.counters.count(disposition);
        Outcome {
            reply,
            notifications,
            disposition,
        }
    }

    fn dispatch(
        &mut self,
        from: K,
        client: &RadiusClient,
        bytes: &[u8],
        now_ms: u64,
        out: &mut Vec<Notification>,
    ) -> (Option<Vec<u8>>, Disposition) {
        let Ok(pkt) = Packet::parse(bytes) else {
            return (None, Disposition::Malformed);
        };
        if !matches!(pkt.code(), Code::AccessRequest | Code::AccountingRequest) {
            return (None, Disposition::UnsupportedCode);
        }
        let key = DupKey::of(from, &pkt);
        if let Some(r) = self.dup.get(&key, now_ms) {
            return (Some(r.to_vec()), Disposition::Duplicate);
        }
        let (reply, d) = if pkt.code() == Code::AccessRequest {
            self.access_request(&pkt, client, now_ms)
        } else {
            self.accounting_request(&pkt, client, now_ms, out)
        };
        if let Some(r) = &reply {
            self.dup.insert(key, r.clone(), now_ms);
        }
        (reply, d)
    }

    fn access_request(
        &mut self,
        pkt: &Packet<'_>,
        client: &RadiusClient,
        now_ms: u64,
    ) -> (Option<Vec<u8>>, Disposition) {
        let secret = client.secret.as_slice();
        match radius::check_message_authenticator(pkt, secret, None) {
            MessageAuth::Invalid => return (None, Disposition::BadAuthenticator),
            MessageAuth::Absent
                if client.require_message_authenticator
                    || pkt.attr(attr::EAP_MESSAGE).is_some() =>
            {
                return (None, Disposition::MissingMessageAuthenticator)
            }
            MessageAuth::Absent | MessageAuth::Valid => {}
        }
        let reject = |reason| match radius::access_reject(pkt, secret) {
            Ok(r) => (Some(r), Disposition::Rejected(reason)),
            Err(_) => (None, Disposition::Malformed),
        };
        // PAP (User-Password) or CHAP (CHAP-Password: identifier and
        // response; the challenge is CHAP-Challenge or the authenticator).
        enum Credential {
            Pap(Vec<u8>),
            Chap(u8, [u8; 16]),
        }
        let cred = if let Some(hidden) = pkt.attr(attr::USER_PASSWORD) {
            match radius::decrypt_user_password(hidden, secret, &pkt.authenticator()) {
                Ok(p) => Credential::Pap(p),
                Err(_) => return (None, Disposition::Malformed),
            }
        } else if let Some(chap) = pkt.attr(attr::CHAP_PASSWORD) {
            // (RFC 2865 §5.3: one octet of identifier, 16 of response.)
            let [ident, response @ ..] = chap else {
                return (None, Disposition::Malformed);
            };
            let Ok(response) = <[u8; 16]>::try_from(response) else {
                return (None, Disposition::Malformed);
            };
            Credential::Chap(*ident, response)
        } else {
            return reject(RejectReason::NoPassword);
        };
        let Some(user) = pkt
            .attr_str(attr::USER_NAME)
            .and_then(|u| self.users.get(u))
        else {
            return reject(RejectReason::UnknownUser);
        };
        let auth = pkt.authenticator();
        let ok = match &cred {
            Credential::Pap(password) => user.password_matches(password),
            Credential::Chap(ident, response) => {
                let challenge = pkt.attr(attr::CHAP_CHALLENGE).unwrap_or(&auth);
                user.chap_matches(*ident, response, challenge)
            }
        };
        if !ok {
            return reject(RejectReason::BadPassword);
        }
        let device = user.device_id.clone();
        if pkt.attr(attr::CALLING_STATION_ID) != Some(device.as_bytes()) {
            return reject(RejectReason::DeviceMismatch);
        }
        let Ok(a) = self.assigner.assign(&device) else {
            return reject(RejectReason::NoAddress);
        };
        if matches!(
            self.sessions.state(&device),
            SessionState::None | SessionState::Close
        ) {
            self.holds.set(
                &device,
                Some(now_ms.saturating_add(self.cfg.assign_hold_ms)),
            );
        }
        let attrs = AcceptAttrs {
            framed_ip: Some(a.addr),
            session_timeout_s: self.cfg.session_timeout_s,
            idle_timeout_s: self.cfg.idle_timeout_s,
            acct_interim_interval_s: self.cfg.acct_interim_interval_s,
            class: None,
            framed_ipv6_prefix: self.ipv6_prefix_of(a.addr).map(|p| (p, 64)),
        };
        match radius::access_accept(pkt, secret, &attrs) {
            Ok(r) => (Some(r), Disposition::Accepted),
            Err(_) => (None, Disposition::Malformed),
        }
    }

    fn accounting_request(
        &mut self,
        pkt: &Packet<'_>,
        client: &RadiusClient,
        now_ms: u64,
        out: &mut Vec<Notification>,
    ) -> (Option<Vec<u8>>, Disposition) {
        let secret = client.secret.as_slice();
        if !radius::verify_accounting_request(pkt, secret)
            || radius::check_message_authenticator(pkt, secret, None) == MessageAuth::Invalid
        {
            return (None, Disposition::BadAuthenticator);
        }
        let Some(status) = pkt.attr_u32(attr::ACCT_STATUS_TYPE) else {
            return (None, Disposition::Malformed);
        };
        let outcome = match status {
            acct_status::ACCOUNTING_ON | acct_status::ACCOUNTING_OFF => {
                // The NAS (re)started or leaves service: every session it
                // carried ends (RFC 2866 §5.1), found by NAS-IP-Address or
                // NAS-Identifier, whichever the request names.
                let cause = if status == acct_status::ACCOUNTING_ON {
                    radius::terminate_cause::NAS_REBOOT
                } else {
                    radius::terminate_cause::NAS_REQUEST
                };
                let ip = pkt.attr_ipv4(attr::NAS_IP_ADDRESS);
                let ident = pkt.attr_str(attr::NAS_IDENTIFIER);
                let of_nas: Vec<String> = self
                    .sessions
                    .iter()
                    .filter(|s| matches!(s.state, SessionState::Act | SessionState::Dormant))
                    .filter(|s| {
                        (ip.is_some() && s.nas.ip == ip)
                            || (ident.is_some() && s.nas.identifier.as_deref() == ident)
                    })
                    .map(|s| s.device_id.clone())
                    .collect();
                for dev in of_nas {
                    if let Ok(n) = self.sessions.close(&dev, None, Some(cause), now_ms) {
                        out.extend(n);
                        self.counters.nas_on_off_closed += 1;
                    }
                }
                AcctOutcome::NasOnOff
            }
            acct_status::START | acct_status::INTERIM_UPDATE | acct_status::STOP => {
                match pkt.attr_str(attr::CALLING_STATION_ID) {
                    None => AcctOutcome::NoDevice,
                    Some(dev) => match self.acct_event(pkt, dev, status, now_ms, out) {
                        Some(o) => o,
                        None => return (None, Disposition::AcctDeferred),
                    },
                }
            }
            _ => AcctOutcome::UnknownStatusType,
        };
        match radius::accounting_response(pkt, secret) {
            Ok(r) => (Some(r), Disposition::Accounted(outcome)),
            Err(_) => (None, Disposition::Malformed),
        }
    }

    /// Start / Interim / Stop on the device's session. `None`: defer (no reply).
    fn acct_event(
        &mut self,
        pkt: &Packet<'_>,
        dev: &str,
        status: u32,
        now_ms: u64,
        out: &mut Vec<Notification>,
    ) -> Option<AcctOutcome> {
        let acct_id = pkt.attr_str(attr::ACCT_SESSION_ID);
        let usage = usage_of(pkt);
        let state = self.sessions.state(dev);
        if state == SessionState::Close {
            // Start: wait for the log write (④) and let the NAS retry.
            return if status == acct_status::START {
                None
            } else {
                Some(AcctOutcome::Ignored)
            };
        }
        if state == SessionState::None {
            if status == acct_status::STOP {
                return Some(AcctOutcome::UnknownSession);
            }
            let Some(o) = self.enter(pkt, dev, acct_id, now_ms, out) else {
                return Some(AcctOutcome::NoAddress);
            };
            if status == acct_status::INTERIM_UPDATE {
                // Recovery: the counters of the running NAS session.
                if let Ok(n) = self.sessions.interim(dev, usage, now_ms) {
                    out.extend(n);
                }
            }
            return Some(o);
        }
        if status == acct_status::START {
            self.follow_nas(pkt, dev, out);
            let r = if state == SessionState::Dormant {
                self.sessions
                    .start(dev, acct_id, now_ms)
                    .map(|n| (n, AcctOutcome::Started))
            } else {
                self.sessions
                    .restart(dev, acct_id, now_ms)
                    .map(|n| (n, AcctOutcome::Restarted))
            };
            self.holds.set(&dev.to_owned(), None);
            return Some(match r {
                Ok((n, o)) => {
                    out.extend(n);
                    o
                }
                Err(_) => AcctOutcome::Ignored,
            });
        }
        let current = self.sessions.get(dev).map(|s| s.acct_session_id.as_str());
        if let (Some(a), Some(c)) = (acct_id, current) {
            if a != c {
                return Some(AcctOutcome::SessionMismatch);
            }
        }
        let r = if status == acct_status::INTERIM_UPDATE {
            self.follow_nas(pkt, dev, out);
            self.sessions
                .interim(dev, usage, now_ms)
                .map(|n| (n, AcctOutcome::Interim))
        } else {
            let cause = pkt.attr_u32(attr::ACCT_TERMINATE_CAUSE);
            if cause == Some(terminate_cause::IDLE_TIMEOUT) {
                // FIG. 31: the NAS's dormant timer → status change (stop).
                self.sessions
                    .stop(dev, usage, now_ms)
                    .map(|n| (n, AcctOutcome::Stopped))
            } else {
                // FIG. 30 logout, FIG. 31 session timer → status change (close).
                self.sessions
                    .close(dev, usage, cause, now_ms)
                    .map(|n| (n, AcctOutcome::Closed))
            }
        };
        Some(match r {
            Ok((n, o)) => {
                out.extend(n);
                o
            }
            Err(_) => AcctOutcome::Ignored,
        })
    }

    /// A Start or Interim-Update of `dev`'s session from another NAS than
    /// the session's: the session moves there ([`Notification::Moved`]).
    fn follow_nas(&mut self, pkt: &Packet<'_>, dev: &str, out: &mut Vec<Notification>) {
        if let Some(m) = self.sessions.moved_to(dev, nas_of(pkt)) {
            self.counters.nas_moves += 1;
            out.push(m);
        }
    }

    /// ① with the device's assigned address, or the Framed-IP-Address the
    /// NAS reports if the manager does not know one (claimed if free).
    fn enter(
        &mut self,
        pkt: &Packet<'_>,
        dev: &str,
        acct_id: Option<&str>,
        now_ms: u64,
        out: &mut Vec<Notification>,
    ) -> Option<AcctOutcome> {
        let a = match self.assigner.lookup(dev) {
            Some(a) => a,
            None => {
                let ip = pkt.attr_ipv4(attr::FRAMED_IP_ADDRESS)?;
                self.assigner.claim(dev, ip).ok()?
            }
        };
        let new = NewSession {
            device_id: dev.to_owned(),
            addr: a.addr,
            gw: a.gw,
            nas: nas_of(pkt),
            acct_session_id: acct_id.unwrap_or_default().to_owned(),
        };
        let n = self.sessions.entry(new, now_ms).ok()?;
        out.extend(n);
        self.holds.set(&dev.to_owned(), None);
        Some(AcctOutcome::Entered)
    }

    /// ④: the session log record of `session_id` is written; the record
    /// goes and its address returns to the pool (unless the device was
    /// accepted again meanwhile and waits for its Accounting Start).
    pub fn session_log_written(
        &mut self,
        device_id: &str,
        session_id: u64,
    ) -> Result<Vec<Notification>, SessionError> {
        let out = self.sessions.session_log_written(device_id, session_id)?;
        if self.holds.get(&device_id.to_owned()).is_none() {
            self.assigner.release(device_id);
        }
        Ok(out)
    }

    /// Earliest deadline of the session timers, address holds and the
    /// duplicate cache.
    pub fn poll_timeout(&self) -> Option<u64> {
        [
            self.sessions.poll_timeout(),
            self.holds.next(),
            self.dup.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires what is due at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Vec<Notification> {
        let out = self.sessions.handle_timeout(now_ms);
        while let Some((_, dev)) = self.holds.pop_expired(now_ms) {
            if self.sessions.state(&dev) == SessionState::None
                && self.assigner.release(&dev).is_some()
            {
                self.counters.hold_expired += 1;
            }
        }
        self.dup.handle_timeout(now_ms);
        out
    }

    /// Server monitor result for a GW (FIG. 5 S12): a down GW gets no new
    /// addresses until it is up again. Returns whether the state changed.
    pub fn set_gw_up(&mut self, gw: GwId, up: bool) -> Result<bool, AssignError> {
        self.assigner.set_gw_up(gw, up)
    }

    pub fn counters(&self) -> &MgmtCounters {
        &self.counters
    }

    /// The replies kept for retransmissions (size, evictions).
    pub fn dup_cache(&self) -> &DupCache<K> {
        &self.dup
    }

    /// Give gateway `gw`'s subscribers IPv6 too: session `i` of the gateway
    /// (its IPv4 address's position in the gateway's ranges) gets the `i`-th
    /// /64 of `base/len`, sent as Framed-IPv6-Prefix (RFC 3162, RFC 6911).
    pub fn set_ipv6_block(&mut self, gw: GwId, base: [u8; 16], len: u8) {
        self.ipv6.insert(gw, (base, len));
    }

    /// The /64 that goes with an assigned IPv4 address, if its gateway has
    /// an IPv6 block.
    pub fn ipv6_prefix_of(&self, addr: Ipv4Addr) -> Option<[u8; 16]> {
        let gw = self.assigner.gw_of(addr)?;
        let (base, len) = *self.ipv6.get(&gw)?;
        assign::ipv6_prefix_for(base, len, self.assigner.index_of(addr)?)
    }

    /// Replace the user table and the service order table (an operator's
    /// reload). Sessions keep their addresses; a device's allowed services
    /// are read from the new table from now on.
    pub fn set_tables(&mut self, users: UserTable, services: ServiceOrderTable) {
        self.users = users;
        self.services = services;
    }

    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    pub fn assigner(&self) -> &Assigner {
        &self.assigner
    }

    pub fn users(&self) -> &UserTable {
        &self.users
    }

    pub fn services(&self) -> &ServiceOrderTable {
        &self.services
    }
}

/// The NAS a request names (NAS-IP-Address, NAS-Identifier, NAS-Port).
fn nas_of(pkt: &Packet<'_>) -> NasInfo {
    NasInfo {
        ip: pkt.attr_ipv4(attr::NAS_IP_ADDRESS),
        identifier: pkt.attr_str(attr::NAS_IDENTIFIER).map(str::to_owned),
        port: pkt.attr_u32(attr::NAS_PORT),
    }
}

/// Counters of an Accounting-Request (RFC 2866 §5.3–5.8, gigawords RFC 2869 §5.1–5.2).
fn usage_of(pkt: &Packet<'_>) -> Option<Usage> {
    let get = |t| pkt.attr_u32(t).map(u64::from);
    let words = |lo, hi| match (get(lo), get(hi)) {
        (None, None) => None,
        (lo, hi) => Some(hi.unwrap_or(0) << 32 | lo.unwrap_or(0)),
    };
    let in_octets = words(attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS);
    let out_octets = words(attr::ACCT_OUTPUT_OCTETS, attr::ACCT_OUTPUT_GIGAWORDS);
    let in_packets = get(attr::ACCT_INPUT_PACKETS);
    let out_packets = get(attr::ACCT_OUTPUT_PACKETS);
    let time = get(attr::ACCT_SESSION_TIME);
    if [in_octets, out_octets, in_packets, out_packets, time]
        .iter()
        .all(Option::is_none)
    {
        return None;
    }
    Some(Usage {
        in_octets: in_octets.unwrap_or(0),
        out_octets: out_octets.unwrap_or(0),
        in_packets: in_packets.unwrap_or(0),
        out_packets: out_packets.unwrap_or(0),
        session_time_s: time.unwrap_or(0),
    })
}
