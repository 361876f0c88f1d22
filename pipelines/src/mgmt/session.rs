//! The session manager's state machine (FIG. 9–11, FIG. 30–31).
//!
//! One record per mobile device id (RADIUS Calling-Station-Id), FIG. 10:
//! session id, device id, assigned address, state, plus the GW owning the
//! address, the NAS, the NAS's Acct-Session-Id, usage counters and times.
//!
//! ```text
//!           ① entry                ② stop / dormant timer
//!   None ───────────────▶ Act ───────────────────────────▶ Dormant
//!    ▲                   │ ▲ ⑥ interim (keeps Act)          │
//!    │                   │ └──────────── ⑤ start ◀──────────┤
//!    │ ④ log written     │ ③ close, ⑧ interim-monitor timer │ ③ close, ⑦ session timer
//!    └────────────── Close ◀────────────────────────────────┘
//! ```
//!
//! Sans-I/O: every event takes `now_ms`; timers are read with
//! [`SessionTable::poll_timeout`] and fired by [`SessionTable::handle_timeout`].
//! Each transition returns the FIG. 6 messages it causes as
//! [`Notification`]s; the engine turns them into GW table updates and
//! session-log writes, then reports the write back with
//! [`SessionTable::session_log_written`] (④).
//!
//! Timers, per state (from [`SessionConfig`]):
//! - Act: the dormant timer (no traffic for `dormant_ms`: the NAS's
//!   counters did not grow) and the interim-monitor timer (no Interim-Update
//!   for `interim_monitor_ms`). If both expire together, Close wins.
//! - Dormant: the session timer (`session_ms` after entering Dormant).
//! - Close: none; the record waits for the session log.
//!
//! History: every session keeps its last [`HISTORY_LEN`] transitions
//! ([`Transition`]: from, to, when, why) in a bounded ring, oldest dropped
//! first ([`Session::history_dropped`] counts them); the session log record
//! carries them. ④ removes the record, so a history ends at Close.
//!
//! Cost: O(log n) per event (a hash lookup and an ordered timer set).
//! Memory: about 300 bytes + the strings + up to [`HISTORY_LEN`] × 40 bytes
//! of history per session.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;

use super::assign::GwId;
use super::timer::Timers;

/// FIG. 11 states. `None` is the absence of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    None,
    Act,
    Dormant,
    Close,
}

/// The events of FIG. 11, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    Entry,
    Start,
    Stop,
    Interim,
    Close,
    SessionLogWritten,
}

/// The status changes of FIG. 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusChange {
    Start,
    Stop,
    Interim,
    Close,
}

/// Why a session closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCause {
    /// ③ status change (close): logout / accounting stop (FIG. 30), with the
    /// NAS's Acct-Terminate-Cause if it sent one.
    StatusClose { terminate_cause: Option<u32> },
    /// ⑦ the session timer expired in Dormant.
    SessionTimer,
    /// ⑧ no interim update within the interim-monitor time in Act.
    InterimMonitorTimer,
    /// The session reached its Session-Timeout (the lifetime sent in the
    /// Access-Accept, RFC 2865 §5.27) in Act or Dormant without the NAS
    /// closing it.
    SessionTimeout,
}

/// Transitions a session keeps (the oldest are dropped first).
pub const HISTORY_LEN: usize = 32;

/// Why a session changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransitionCause {
    /// ① session information entry (Accounting Start after Access-Accept).
    Entry,
    /// ② the NAS's accounting stop (Acct-Terminate-Cause Idle-Timeout).
    NasStop,
    /// ② our own dormant timer (no traffic for `dormant_ms`).
    DormantTimer,
    /// ⑤ the NAS's accounting start after a dormant period.
    NasStart,
    /// ⑤ an interim update whose counters grew, in Dormant reached by our
    /// own dormant timer.
    InterimTraffic,
    /// ③ ⑦ ⑧ Close, and why.
    Close(CloseCause),
}

/// One state transition of a session (FIG. 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition {
    pub from: SessionState,
    pub to: SessionState,
    /// When it took effect (ms, caller's clock; a timer's deadline for
    /// timer transitions).
    pub at_ms: u64,
    pub cause: TransitionCause,
}

/// Timer values. All in milliseconds of the caller's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Act → Dormant after this long without traffic. `None`: only the
    /// NAS's accounting stop (FIG. 31) makes a session dormant.
    pub dormant_ms: Option<u64>,
    /// Dormant → Close after this long in Dormant (⑦).
    pub session_ms: u64,
    /// Act → Close after this long without an interim update (⑧). `None`
    /// disables it (for NASes that send no Interim-Update).
    pub interim_monitor_ms: Option<u64>,
    /// Act or Dormant → Close this long after the entry (the Session-Timeout
    /// the Access-Accept gave the NAS). `None`: no lifetime.
    pub lifetime_ms: Option<u64>,
}

impl Default for SessionConfig {
    /// Interim-Update every 30 min (the patent's example) → monitor of two
    /// intervals plus a minute; two hours dormant before close; no dormant
    /// timer of our own (the NAS's decides).
    fn default() -> Self {
        SessionConfig {
            dormant_ms: None,
            session_ms: 2 * 3600 * 1000,
            interim_monitor_ms: Some(61 * 60 * 1000),
            lifetime_ms: None,
        }
    }
}

/// The NAS that carries the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NasInfo {
    pub ip: Option<Ipv4Addr>,
    pub identifier: Option<String>,
    pub port: Option<u32>,
}

impl NasInfo {
    /// Whether `self` (a request's NAS attributes) names another NAS than
    /// `old`: compared by NAS-IP-Address when both have one, else by
    /// NAS-Identifier when both have one; a request naming neither, or not
    /// the attribute the session was entered with, moves nothing.
    pub fn is_other_than(&self, old: &NasInfo) -> bool {
        match (self.ip, old.ip, &self.identifier, &old.identifier) {
            (Some(a), Some(b), _, _) => a != b,
            (_, _, Some(a), Some(b)) => a != b,
            _ => false,
        }
    }
}

/// Usage counters as the NAS reports them (RFC 2866 / 2869 gigawords folded in).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Usage {
    pub in_octets: u64,
    pub out_octets: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub session_time_s: u64,
}

/// Saturating sum.
impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            in_octets: self.in_octets.saturating_add(o.in_octets),
            out_octets: self.out_octets.saturating_add(o.out_octets),
            in_packets: self.in_packets.saturating_add(o.in_packets),
            out_packets: self.out_packets.saturating_add(o.out_packets),
            session_time_s: self.session_time_s.saturating_add(o.session_time_s),
        }
    }
}

impl Usage {
    /// Did any traffic counter grow since `before`?
    pub fn has_traffic_since(&self, before: &Usage) -> bool {
        self.in_octets > before.in_octets
            || self.out_octets > before.out_octets
            || self.in_packets > before.in_packets
            || self.out_packets > before.out_packets
    }
}

/// What a new session is entered with (FIG. 6 session information entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    pub device_id: String,
    pub addr: Ipv4Addr,
    pub gw: GwId,
    pub nas: NasInfo,
    pub acct_session_id: String,
}

/// One row of the session information table (FIG. 10 and more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// FIG. 10 session identifier, unique for the table's life.
    pub session_id: u64,
    pub device_id: String,
    pub addr: Ipv4Addr,
    pub gw: GwId,
    pub nas: NasInfo,
    /// The NAS's Acct-Session-Id of its current accounting session.
    pub acct_session_id: String,
    pub state: SessionState,
    pub started_ms: u64,
    pub state_since_ms: u64,
    /// Last accounting message.
    pub last_update_ms: u64,
    /// Last time the NAS's counters grew (or the session entered Act).
    pub last_traffic_ms: u64,
    /// Usage of the NAS accounting sessions already stopped (FIG. 31 cycles).
    pub usage_done: Usage,
    /// Usage reported so far in the current NAS accounting session.
    pub usage_current: Usage,
    /// The NAS's accounting session is running (entry/start seen, no stop
    /// since). Our own dormant timer leaves it running.
    pub nas_acct_open: bool,
    pub interim_count: u32,
    pub close_cause: Option<CloseCause>,
    /// The last [`HISTORY_LEN`] transitions, oldest first.
    history: VecDeque<Transition>,
    /// Transitions dropped from the front of `history`.
    pub history_dropped: u64,
    dormant_at: Option<u64>,
    interim_at: Option<u64>,
    session_at: Option<u64>,
    /// The Session-Timeout's deadline (from the entry).
    lifetime_at: Option<u64>,
}

impl Session {
    /// Total usage of the session.
    pub fn usage(&self) -> Usage {
        self.usage_done + self.usage_current
    }

    /// The last [`HISTORY_LEN`] transitions, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &Transition> + '_ {
        self.history.iter()
    }

    /// Record a transition to `to` (from the current state); the caller
    /// sets `state` after.
    fn record(&mut self, to: SessionState, at_ms: u64, cause: TransitionCause) {
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
            self.history_dropped += 1;
        }
        self.history.push_back(Transition {
            from: self.state,
            to,
            at_ms,
            cause,
        });
    }

    pub fn to_ref(&self) -> SessionRef {
        SessionRef {
            session_id: self.session_id,
            device_id: self.device_id.clone(),
            addr: self.addr,
            gw: self.gw,
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match self.state {
            SessionState::Act => min(min(self.dormant_at, self.interim_at), self.lifetime_at),
            SessionState::Dormant => min(self.session_at, self.lifetime_at),
            SessionState::None | SessionState::Close => None,
        }
    }
}

/// Who a notification is about: the GW owning `addr` is its receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionRef {
    pub session_id: u64,
    pub device_id: String,
    pub addr: Ipv4Addr,
    pub gw: GwId,
}

/// The session log record written at Close (④ follows its write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLogRecord {
    pub session: SessionRef,
    pub acct_session_id: String,
    pub nas: NasInfo,
    pub started_ms: u64,
    pub closed_ms: u64,
    pub cause: CloseCause,
    pub usage: Usage,
    /// The session's last [`HISTORY_LEN`] transitions, the Close included.
    pub history: Vec<Transition>,
}

/// FIG. 6 messages the engine carries out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// ① session information entry done; session start notification to the GW.
    SessionStart(SessionRef),
    /// Status change (start ⑤ / stop ② / interim ⑥ / close ③⑦⑧).
    StatusChange {
        session: SessionRef,
        change: StatusChange,
    },
    /// Session termination notification to the GW (with every Close).
    SessionTermination(SessionRef),
    /// Write this record to the session log, then call `session_log_written`.
    WriteSessionLog(SessionLogRecord),
    /// ④ the record is gone; its address may be released.
    SessionRemoved(SessionRef),
    /// The NAS reported the session's subscriber at another NAS than the
    /// one it entered through (or last moved to): the GW re-points the
    /// subscriber's connections to that NAS's entry point.
    Moved { session: SessionRef, nas: NasInfo },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// No record for the device.
    NoSession,
    /// Entry for a device that already has a record in this state.
    AlreadyExists(SessionState),
    /// The event does not apply in the record's state.
    InvalidTransition {
        state: SessionState,
        event: SessionEvent,
    },
    /// `session_log_written` for another session of the same device.
    StaleSessionId { current: u64 },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::NoSession => write!(f, "no session for this device"),
            SessionError::AlreadyExists(s) => {
                write!(f, "the device already has a session in state {s:?}")
            }
            SessionError::InvalidTransition { state, event } => {
                write!(f, "event {event:?} does not apply in state {state:?}")
            }
            SessionError::StaleSessionId { current } => {
                write!(f, "the device's current session is {current}")
            }
        }
    }
}

impl std::error::Error for SessionError {}

/// The session information table with its timers.
#[derive(Debug)]
pub struct SessionTable {
    cfg: SessionConfig,
    sessions: HashMap<String, Session>,
    timers: Timers<String>,
    next_id: u64,
}

type Out = Vec<Notification>;

impl SessionTable {
    pub fn new(cfg: SessionConfig) -> Self {
        Self::with_first_session_id(cfg, 1)
    }

    /// Session ids count up from `first` (e.g. past the last one logged).
    pub fn with_first_session_id(cfg: SessionConfig, first: u64) -> Self {
        SessionTable {
            cfg,
            sessions: HashMap::new(),
            timers: Timers::new(),
            next_id: first,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    pub fn state(&self, device_id: &str) -> SessionState {
        self.sessions
            .get(device_id)
            .map_or(SessionState::None, |s| s.state)
    }

    pub fn get(&self, device_id: &str) -> Option<&Session> {
        self.sessions.get(device_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The NAS of an accounting request for `device_id`: when its session
    /// (Act or Dormant) is at another NAS ([`NasInfo::is_other_than`]), the
    /// session takes the new NAS and the move is returned.
    pub fn moved_to(&mut self, device_id: &str, nas: NasInfo) -> Option<Notification> {
        let s = self.sessions.get_mut(device_id)?;
        if !matches!(s.state, SessionState::Act | SessionState::Dormant)
            || !nas.is_other_than(&s.nas)
        {
            return None;
        }
        s.nas = nas.clone();
        Some(Notification::Moved {
            session: s.to_ref(),
            nas,
        })
    }

    /// ① None → Act.
    pub fn entry(&mut self, new: NewSession, now_ms: u64) -> Result<Out, SessionError> {
        if let Some(s) = self.sessions.get(&new.device_id) {
            return Err(SessionError::AlreadyExists(s.state));
        }
        let id = self.next_id;
        self.next_id += 1;
        let s = Session {
            session_id: id,
            device_id: new.device_id.clone(),
            addr: new.addr,
            gw: new.gw,
            nas: new.nas,
            acct_session_id: new.acct_session_id,
            state: SessionState::Act,
            started_ms: now_ms,
            state_since_ms: now_ms,
            last_update_ms: now_ms,
            last_traffic_ms: now_ms,
            usage_done: Usage::default(),
            usage_current: Usage::default(),
            nas_acct_open: true,
            interim_count: 0,
            close_cause: None,
            history: VecDeque::with_capacity(4),
            history_dropped: 0,
            dormant_at: self.cfg.dormant_ms.map(|d| now_ms.saturating_add(d)),
            interim_at: self
                .cfg
                .interim_monitor_ms
                .map(|d| now_ms.saturating_add(d)),
            session_at: None,
            lifetime_at: self.cfg.lifetime_ms.map(|d| now_ms.saturating_add(d)),
        };
        let mut s = s;
        s.state = SessionState::None;
        s.record(SessionState::Act, now_ms, TransitionCause::Entry);
        s.state = SessionState::Act;
        let out = vec![Notification::SessionStart(s.to_ref())];
        self.sessions.insert(new.device_id.clone(), s);
        self.reschedule(&new.device_id);
        Ok(out)
    }

    /// ⑤ Dormant → Act (the NAS's accounting start after a dormant period).
    /// A new Acct-Session-Id replaces the old one.
    pub fn start(
        &mut self,
        device_id: &str,
        acct_session_id: Option<&str>,
        now_ms: u64,
    ) -> Result<Out, SessionError> {
        self.nas_start(device_id, SessionState::Dormant, acct_session_id, now_ms)?;
        Ok(vec![self.status(device_id, StatusChange::Start)])
    }

    /// An accounting start in Act (the NAS lost its session and began a new
    /// one for the same device): the new Acct-Session-Id is adopted and the
    /// Act timers restart. No state change, no notification.
    pub fn restart(
        &mut self,
        device_id: &str,
        acct_session_id: Option<&str>,
        now_ms: u64,
    ) -> Result<Out, SessionError> {
        self.nas_start(device_id, SessionState::Act, acct_session_id, now_ms)?;
        Ok(Vec::new())
    }

    /// A NAS accounting start for a session in `state`: its Acct-Session-Id
    /// adopted, the Act timers (re)started.
    fn nas_start(
        &mut self,
        device_id: &str,
        state: SessionState,
        acct_session_id: Option<&str>,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        let s = self.expect(device_id, state, SessionEvent::Start)?;
        Self::new_nas_session(s, acct_session_id);
        self.enter_act(device_id, now_ms, TransitionCause::NasStart);
        Ok(())
    }

    fn new_nas_session(s: &mut Session, acct_session_id: Option<&str>) {
        if let Some(a) = acct_session_id {
            a.clone_into(&mut s.acct_session_id);
        }
        s.usage_done = s.usage_done + s.usage_current;
        s.usage_current = Usage::default();
        s.nas_acct_open = true;
    }

    /// ② Act → Dormant on the NAS's accounting stop (status change (stop)).
    /// `usage` is the final count of the NAS's accounting session.
    ///
    /// In Dormant reached by our own dormant timer the NAS's session was
    /// still open: its stop only records the final counts (no transition,
    /// no notification). A second stop is an invalid transition.
    pub fn stop(
        &mut self,
        device_id: &str,
        usage: Option<Usage>,
        now_ms: u64,
    ) -> Result<Out, SessionError> {
        let s = self
            .sessions
            .get_mut(device_id)
            .ok_or(SessionError::NoSession)?;
        let act = match s.state {
            SessionState::Act => true,
            SessionState::Dormant if s.nas_acct_open => false,
            state => {
                return Err(SessionError::InvalidTransition {
                    state,
                    event: SessionEvent::Stop,
                })
            }
        };
        s.last_update_ms = now_ms;
        if let Some(u) = usage {
            s.usage_current = u;
        }
        s.usage_done = s.usage_done + s.usage_current;
        s.usage_current = Usage::default();
        s.nas_acct_open = false;
        let mut out = Vec::new();
        if act {
            self.enter_dormant(device_id, now_ms, TransitionCause::NasStop, &mut out);
        }
        Ok(out)
    }

    /// ⑥ Act → Act: an interim update restarts the interim-monitor timer;
    /// grown counters also restart the dormant timer.
    ///
    /// In Dormant reached by our own dormant timer (the NAS's session still
    /// open), an interim whose counters grew is traffic: ⑤ Dormant → Act
    /// (status change start) then ⑥. Without growth the counts are recorded
    /// and the session stays Dormant, with no notification.
    pub fn interim(
        &mut self,
        device_id: &str,
        usage: Option<Usage>,
        now_ms: u64,
    ) -> Result<Out, SessionError> {
        let cfg = self.cfg;
        let s = self
            .sessions
            .get_mut(device_id)
            .ok_or(SessionError::NoSession)?;
        match s.state {
            SessionState::Act => {}
            SessionState::Dormant if s.nas_acct_open => {
                s.last_update_ms = now_ms;
                let Some(u) = usage else {
                    return Ok(Vec::new());
                };
                let traffic = u.has_traffic_since(&s.usage_current);
                s.usage_current = u;
                if !traffic {
                    return Ok(Vec::new());
                }
                self.enter_act(device_id, now_ms, TransitionCause::InterimTraffic);
                let mut out = vec![self.status(device_id, StatusChange::Start)];
                out.extend(self.interim(device_id, None, now_ms)?);
                return Ok(out);
            }
            state => {
                return Err(SessionError::InvalidTransition {
                    state,
                    event: SessionEvent::Interim,
                })
            }
        }
        s.last_update_ms = now_ms;
        s.interim_count = s.interim_count.saturating_add(1);
        if let Some(u) = usage {
            if u.has_traffic_since(&s.usage_current) {
                s.last_traffic_ms = now_ms;
                s.dormant_at = cfg.dormant_ms.map(|d| now_ms.saturating_add(d));
            }
            s.usage_current = u;
        }
        s.interim_at = cfg.interim_monitor_ms.map(|d| now_ms.saturating_add(d));
        self.reschedule(device_id);
        Ok(vec![self.status(device_id, StatusChange::Interim)])
    }

    /// ③ Act or Dormant → Close (status change (close): logout, FIG. 30).
    /// `usage` (final counters of the NAS session) is taken while the NAS's
    /// accounting session is open; after its stop it was already counted.
    pub fn close(
        &mut self,
        device_id: &str,
        usage: Option<Usage>,
        terminate_cause: Option<u32>,
        now_ms: u64,
    ) -> Result<Out, SessionError> {
        let s = self
            .sessions
            .get_mut(device_id)
            .ok_or(SessionError::NoSession)?;
        match s.state {
            SessionState::Act | SessionState::Dormant => {
                if let (true, Some(u)) = (s.nas_acct_open, usage) {
                    s.usage_current = u;
                }
            }
            state => {
                return Err(SessionError::InvalidTransition {
                    state,
                    event: SessionEvent::Close,
                })
            }
        }
        s.last_update_ms = now_ms;
        let mut out = Vec::new();
        self.enter_close(
            device_id,
            CloseCause::StatusClose { terminate_cause },
            now_ms,
            &mut out,
        );
        Ok(out)
    }

    /// ④ Close → None once the session log record of `session_id` is written.
    pub fn session_log_written(
        &mut self,
        device_id: &str,
        session_id: u64,
    ) -> Result<Out, SessionError> {
        let s = self
            .sessions
            .get(device_id)
            .ok_or(SessionError::NoSession)?;
        if s.session_id != session_id {
            return Err(SessionError::StaleSessionId {
                current: s.session_id,
            });
        }
        if s.state != SessionState::Close {
            return Err(SessionError::InvalidTransition {
                state: s.state,
                event: SessionEvent::SessionLogWritten,
            });
        }
        let s = self
            .sessions
            .remove(device_id)
            .ok_or(SessionError::NoSession)?;
        self.timers.set(&s.device_id, None);
        Ok(vec![Notification::SessionRemoved(s.to_ref())])
    }

    /// The earliest timer deadline, if any.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Fires every timer due at `now_ms`: ② dormant timer, ⑦ session timer,
    /// ⑧ interim-monitor timer, and the Session-Timeout (Act or Dormant →
    /// Close). A transition takes effect at its timer's
    /// deadline, not at `now_ms`, so a late call does not stretch the
    /// timers that follow (and fires them too if they are due).
    pub fn handle_timeout(&mut self, now_ms: u64) -> Out {
        let mut out = Vec::new();
        while let Some((at, dev)) = self.timers.pop_expired(now_ms) {
            let Some(s) = self.sessions.get(&dev) else {
                continue;
            };
            let due = |t: Option<u64>| t.is_some_and(|t| t <= at);
            match s.state {
                SessionState::Act | SessionState::Dormant if due(s.lifetime_at) => {
                    self.enter_close(&dev, CloseCause::SessionTimeout, at, &mut out)
                }
                SessionState::Act if due(s.interim_at) => {
                    self.enter_close(&dev, CloseCause::InterimMonitorTimer, at, &mut out)
                }
                SessionState::Act if due(s.dormant_at) => {
                    self.enter_dormant(&dev, at, TransitionCause::DormantTimer, &mut out)
                }
                SessionState::Dormant if due(s.session_at) => {
                    self.enter_close(&dev, CloseCause::SessionTimer, at, &mut out)
                }
                _ => self.reschedule(&dev),
            }
        }
        out
    }

    fn expect(
        &mut self,
        device_id: &str,
        want: SessionState,
        event: SessionEvent,
    ) -> Result<&mut Session, SessionError> {
        let s = self
            .sessions
            .get_mut(device_id)
            .ok_or(SessionError::NoSession)?;
        if s.state != want {
            return Err(SessionError::InvalidTransition {
                state: s.state,
                event,
            });
        }
        Ok(s)
    }

    fn status(&self, device_id: &str, change: StatusChange) -> Notification {
        let session = self.sessions[device_id].to_ref();
        Notification::StatusChange { session, change }
    }

    fn reschedule(&mut self, device_id: &str) {
        let d = self
            .sessions
            .get(device_id)
            .and_then(Session::next_deadline);
        self.timers.set(&device_id.to_owned(), d);
    }

    fn enter_act(&mut self, device_id: &str, now_ms: u64, cause: TransitionCause) {
        let cfg = self.cfg;
        if let Some(s) = self.sessions.get_mut(device_id) {
            if s.state != SessionState::Act {
                s.record(SessionState::Act, now_ms, cause);
            }
            s.state = SessionState::Act;
            s.state_since_ms = now_ms;
            s.last_update_ms = now_ms;
            s.last_traffic_ms = now_ms;
            s.dormant_at = cfg.dormant_ms.map(|d| now_ms.saturating_add(d));
            s.interim_at = cfg.interim_monitor_ms.map(|d| now_ms.saturating_add(d));
            s.session_at = None;
        }
        self.reschedule(device_id);
    }

    fn enter_dormant(
        &mut self,
        device_id: &str,
        now_ms: u64,
        cause: TransitionCause,
        out: &mut Out,
    ) {
        let cfg = self.cfg;
        if let Some(s) = self.sessions.get_mut(device_id) {
            s.record(SessionState::Dormant, now_ms, cause);
            s.state = SessionState::Dormant;
            s.state_since_ms = now_ms;
            s.dormant_at = None;
            s.interim_at = None;
            s.session_at = Some(now_ms.saturating_add(cfg.session_ms));
        }
        self.reschedule(device_id);
        out.push(self.status(device_id, StatusChange::Stop));
    }

    fn enter_close(&mut self, device_id: &str, cause: CloseCause, now_ms: u64, out: &mut Out) {
        let Some(s) = self.sessions.get_mut(device_id) else {
            return;
        };
        s.record(SessionState::Close, now_ms, TransitionCause::Close(cause));
        s.state = SessionState::Close;
        s.state_since_ms = now_ms;
        s.close_cause = Some(cause);
        s.dormant_at = None;
        s.interim_at = None;
        s.session_at = None;
        s.lifetime_at = None;
        let r = s.to_ref();
        let record = SessionLogRecord {
            session: r.clone(),
            acct_session_id: s.acct_session_id.clone(),
            nas: s.nas.clone(),
            started_ms: s.started_ms,
            closed_ms: now_ms,
            cause,
            usage: s.usage(),
            history: s.history.iter().copied().collect(),
        };
        self.reschedule(device_id);
        out.push(Notification::StatusChange {
            session: r.clone(),
            change: StatusChange::Close,
        });
        out.push(Notification::SessionTermination(r));
        out.push(Notification::WriteSessionLog(record));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DORMANT: u64 = 1_000;
    const SESSION: u64 = 5_000;
    const MONITOR: u64 = 3_000;

    fn cfg() -> SessionConfig {
        SessionConfig {
            dormant_ms: Some(DORMANT),
            session_ms: SESSION,
            interim_monitor_ms: Some(MONITOR),
            lifetime_ms: None,
        }
    }

    fn new_session(dev: &str) -> NewSession {
        NewSession {
            device_id: dev.into(),
            addr: Ipv4Addr::new(10, 32, 0, 1),
            gw: GwId(2),
            nas: NasInfo {
                ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
                identifier: None,
                port: Some(3),
            },
            acct_session_id: "A1".into(),
        }
    }

    const DEV: &str = "F50200001";

    fn r(id: u64) -> SessionRef {
        SessionRef {
            session_id: id,
            device_id: DEV.into(),
            addr: Ipv4Addr::new(10, 32, 0, 1),
            gw: GwId(2),
        }
    }

    fn change(n: &Notification) -> Option<StatusChange> {
        match n {
            Notification::StatusChange { change, .. } => Some(*change),
            _ => None,
        }
    }

    /// Table with one session entered at t=0.
    fn act(cfg: SessionConfig) -> SessionTable {
        let mut t = SessionTable::new(cfg);
        t.entry(new_session(DEV), 0).unwrap();
        t
    }

    fn dormant_at(ms: u64) -> SessionTable {
        let mut t = act(cfg());
        t.stop(DEV, None, ms).unwrap();
        assert_eq!(t.state(DEV), SessionState::Dormant);
        t
    }

    fn hist(t: &SessionTable) -> Vec<(SessionState, SessionState, u64, TransitionCause)> {
        t.get(DEV)
            .unwrap()
            .history()
            .map(|x| (x.from, x.to, x.at_ms, x.cause))
            .collect()
    }

    #[test]
    fn history_records_each_transition_with_time_and_cause() {
        use SessionState::{Act, Close, Dormant};
        use TransitionCause as C;
        const NONE: SessionState = SessionState::None;
        let mut t = act(cfg());
        assert_eq!(hist(&t), [(NONE, Act, 0, C::Entry)]);
        // Interim and restart in Act: no transition, nothing recorded.
        t.interim(DEV, None, 100).unwrap();
        t.restart(DEV, Some("A2"), 150).unwrap();
        assert_eq!(hist(&t).len(), 1);
        t.stop(DEV, None, 200).unwrap();
        t.start(DEV, Some("A3"), 300).unwrap();
        // Our own dormant timer fires at its deadline (300 + DORMANT), not
        // at the late call.
        t.handle_timeout(300 + DORMANT + 50);
        // Counters grew while the NAS session stayed open: back to Act.
        let u = Usage {
            in_octets: 5,
            ..Usage::default()
        };
        t.interim(DEV, Some(u), 1_500).unwrap();
        let out = t.close(DEV, None, Some(1), 1_600).unwrap();
        let want = vec![
            (NONE, Act, 0, C::Entry),
            (Act, Dormant, 200, C::NasStop),
            (Dormant, Act, 300, C::NasStart),
            (Act, Dormant, 300 + DORMANT, C::DormantTimer),
            (Dormant, Act, 1_500, C::InterimTraffic),
            (
                Act,
                Close,
                1_600,
                C::Close(CloseCause::StatusClose {
                    terminate_cause: Some(1),
                }),
            ),
        ];
        assert_eq!(hist(&t), want);
        assert_eq!(t.get(DEV).unwrap().history_dropped, 0);
        // The session log record carries the same history.
        let rec = out
            .iter()
            .find_map(|n| match n {
                Notification::WriteSessionLog(r) => Some(r),
                _ => None,
            })
            .unwrap();
        let got: Vec<_> = rec
            .history
            .iter()
            .map(|x| (x.from, x.to, x.at_ms, x.cause))
            .collect();
        assert_eq!(got, want);
    }

    /// The Session-Timeout (RFC 2865 §5.27) the Access-Accept gave: Act or
    /// Dormant → Close at entry + the lifetime, traffic or not, before the
    /// other timers when it comes first.
    #[test]
    fn the_session_timeout_closes_an_act_or_a_dormant_session() {
        let mut t = act(SessionConfig {
            dormant_ms: None,
            interim_monitor_ms: None,
            lifetime_ms: Some(4_000),
            ..cfg()
        });
        let busy = Usage {
            in_octets: 100,
            ..Usage::default()
        };
        t.interim(DEV, Some(busy), 3_500).unwrap();
        assert_eq!(t.poll_timeout(), Some(4_000));
        assert!(t.handle_timeout(3_999).is_empty());
        assert_closed(&t.handle_timeout(4_000), CloseCause::SessionTimeout, 4_000);
        assert_eq!(t.state(DEV), SessionState::Close);
        // Dormant at DORMANT; the lifetime ends it before the session timer.
        let mut t = act(SessionConfig {
            interim_monitor_ms: None,
            lifetime_ms: Some(DORMANT + 500),
            ..cfg()
        });
        let out = t.handle_timeout(DORMANT);
        assert_eq!(change(&out[0]), Some(StatusChange::Stop));
        assert_eq!(t.state(DEV), SessionState::Dormant);
        assert_closed(
            &t.handle_timeout(DORMANT + SESSION),
            CloseCause::SessionTimeout,
            DORMANT + 500,
        );
    }

    #[test]
    fn history_is_bounded_and_drops_the_oldest() {
        let mut t = act(SessionConfig {
            dormant_ms: None,
            interim_monitor_ms: None,
            ..cfg()
        });
        // 1 entry + 2 per stop/start cycle.
        let cycles = HISTORY_LEN as u64;
        for k in 0..cycles {
            t.stop(DEV, None, 10 * k + 1).unwrap();
            t.start(DEV, None, 10 * k + 2).unwrap();
        }
        let s = t.get(DEV).unwrap();
        let total = 1 + 2 * cycles;
        assert_eq!(s.history().len(), HISTORY_LEN);
        assert_eq!(s.history_dropped, total - HISTORY_LEN as u64);
        let h: Vec<&Transition> = s.history().collect();
        // Oldest kept first, newest last, in time order.
        assert!(h.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        let last = h[HISTORY_LEN - 1];
        assert_eq!(
            (last.from, last.to, last.at_ms, last.cause),
            (
                SessionState::Dormant,
                SessionState::Act,
                10 * (cycles - 1) + 2,
                TransitionCause::NasStart
            )
        );
        assert_eq!(h[0].at_ms, 10 * (cycles - HISTORY_LEN as u64 / 2) + 1);
        // The log record gets at most HISTORY_LEN, the Close last.
        let out = t.close(DEV, None, None, 10_000).unwrap();
        let Some(Notification::WriteSessionLog(rec)) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(rec.history.len(), HISTORY_LEN);
        assert_eq!(rec.history[HISTORY_LEN - 1].to, SessionState::Close);
        assert_eq!(rec.history[HISTORY_LEN - 1].at_ms, 10_000);
    }

    fn assert_closed(out: &[Notification], cause: CloseCause, at: u64) {
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(change(&out[0]), Some(StatusChange::Close));
        assert_eq!(out[1], Notification::SessionTermination(r(1)));
        match &out[2] {
            Notification::WriteSessionLog(rec) => {
                assert_eq!(rec.cause, cause);
                assert_eq!(rec.closed_ms, at);
                assert_eq!(rec.session, r(1));
            }
            other => panic!("expected a session log record, got {other:?}"),
        }
    }

    // ① None → Act on entry.
    #[test]
    fn t1_none_to_act_on_entry() {
        let mut t = SessionTable::new(cfg());
        assert_eq!(t.state(DEV), SessionState::None);
        assert_eq!(t.poll_timeout(), None);
        let out = t.entry(new_session(DEV), 100).unwrap();
        assert_eq!(out, [Notification::SessionStart(r(1))]);
        assert_eq!(t.state(DEV), SessionState::Act);
        assert_eq!(t.poll_timeout(), Some(100 + DORMANT));
        let s = t.get(DEV).unwrap();
        assert_eq!((s.started_ms, s.acct_session_id.as_str()), (100, "A1"));
        assert_eq!(
            t.entry(new_session(DEV), 200),
            Err(SessionError::AlreadyExists(SessionState::Act))
        );
    }

    // ② Act → Dormant on the NAS's stop.
    #[test]
    fn t2_act_to_dormant_on_stop() {
        let mut t = act(cfg());
        let usage = Usage {
            in_octets: 10,
            ..Default::default()
        };
        let out = t.stop(DEV, Some(usage), 500).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(change(&out[0]), Some(StatusChange::Stop));
        assert_eq!(t.state(DEV), SessionState::Dormant);
        assert_eq!(
            t.poll_timeout(),
            Some(500 + SESSION),
            "session timer runs in Dormant"
        );
        assert_eq!(t.get(DEV).unwrap().usage().in_octets, 10);
        assert_eq!(
            t.stop(DEV, None, 600),
            Err(SessionError::InvalidTransition {
                state: SessionState::Dormant,
                event: SessionEvent::Stop
            })
        );
    }

    // ② Act → Dormant on the dormant timer.
    #[test]
    fn t2_act_to_dormant_on_dormant_timer() {
        let mut t = act(cfg());
        assert!(t.handle_timeout(DORMANT - 1).is_empty());
        assert_eq!(t.state(DEV), SessionState::Act);
        let out = t.handle_timeout(DORMANT);
        assert_eq!(out.len(), 1);
        assert_eq!(change(&out[0]), Some(StatusChange::Stop));
        assert_eq!(t.state(DEV), SessionState::Dormant);
        assert_eq!(t.poll_timeout(), Some(DORMANT + SESSION));
    }

    #[test]
    fn dormant_timer_restarted_by_traffic_only() {
        let mut t = act(cfg());
        let u1 = Usage {
            in_packets: 1,
            ..Default::default()
        };
        t.interim(DEV, Some(u1), 800).unwrap(); // traffic: dormant at 1800
        t.interim(DEV, Some(u1), 1500).unwrap(); // same counters: still 1800
        assert!(t.handle_timeout(1799).is_empty());
        assert_eq!(change(&t.handle_timeout(1800)[0]), Some(StatusChange::Stop));
    }

    // ③ Act → Close on status change (close).
    #[test]
    fn t3_act_to_close_on_close() {
        let mut t = act(cfg());
        let usage = Usage {
            out_octets: 99,
            ..Default::default()
        };
        let out = t.close(DEV, Some(usage), Some(1), 200).unwrap();
        assert_closed(
            &out,
            CloseCause::StatusClose {
                terminate_cause: Some(1),
            },
            200,
        );
        match &out[2] {
            Notification::WriteSessionLog(rec) => assert_eq!(rec.usage.out_octets, 99),
            _ => unreachable!(),
        }
        assert_eq!(t.state(DEV), SessionState::Close);
        assert_eq!(t.poll_timeout(), None, "Close waits for the log, no timer");
        assert!(t.handle_timeout(1_000_000).is_empty());
    }

    // ③ Dormant → Close on status change (close).
    #[test]
    fn t3_dormant_to_close_on_close() {
        let mut t = dormant_at(100);
        let out = t.close(DEV, None, None, 300).unwrap();
        assert_closed(
            &out,
            CloseCause::StatusClose {
                terminate_cause: None,
            },
            300,
        );
        assert_eq!(t.state(DEV), SessionState::Close);
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(
            t.close(DEV, None, None, 400),
            Err(SessionError::InvalidTransition {
                state: SessionState::Close,
                event: SessionEvent::Close
            })
        );
    }

    // ④ Close → None when the session log is written.
    #[test]
    fn t4_close_to_none_on_session_log_written() {
        let mut t = act(cfg());
        assert_eq!(
            t.session_log_written(DEV, 1),
            Err(SessionError::InvalidTransition {
                state: SessionState::Act,
                event: SessionEvent::SessionLogWritten
            })
        );
        t.close(DEV, None, None, 10).unwrap();
        assert_eq!(
            t.session_log_written(DEV, 7),
            Err(SessionError::StaleSessionId { current: 1 })
        );
        assert_eq!(t.state(DEV), SessionState::Close);
        let out = t.session_log_written(DEV, 1).unwrap();
        assert_eq!(out, [Notification::SessionRemoved(r(1))]);
        assert_eq!(t.state(DEV), SessionState::None);
        assert!(t.is_empty());
        assert_eq!(t.session_log_written(DEV, 1), Err(SessionError::NoSession));
        // A new session of the same device gets a new id.
        let out = t.entry(new_session(DEV), 20).unwrap();
        assert_eq!(out, [Notification::SessionStart(r(2))]);
    }

    // ⑤ Dormant → Act on status change (start).
    #[test]
    fn t5_dormant_to_act_on_start() {
        let mut t = dormant_at(100);
        let out = t.start(DEV, Some("A2"), 300).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(change(&out[0]), Some(StatusChange::Start));
        assert_eq!(t.state(DEV), SessionState::Act);
        assert_eq!(t.get(DEV).unwrap().acct_session_id, "A2");
        // Session timer cancelled, Act timers restarted from t=300.
        assert_eq!(t.poll_timeout(), Some(300 + DORMANT));
        assert_eq!(
            t.start(DEV, None, 400),
            Err(SessionError::InvalidTransition {
                state: SessionState::Act,
                event: SessionEvent::Start
            })
        );
        assert_eq!(t.start("other", None, 400), Err(SessionError::NoSession));
    }

    // ⑥ Act → Act on interim: the interim-monitor timer restarts.
    #[test]
    fn t6_interim_keeps_act() {
        let mut t = act(SessionConfig {
            dormant_ms: None,
            ..cfg()
        });
        assert_eq!(t.poll_timeout(), Some(MONITOR));
        let out = t.interim(DEV, None, 2_500).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(change(&out[0]), Some(StatusChange::Interim));
        assert_eq!(t.poll_timeout(), Some(2_500 + MONITOR));
        assert!(
            t.handle_timeout(MONITOR).is_empty(),
            "would have closed without the interim"
        );
        assert!(t.handle_timeout(2_500 + MONITOR - 1).is_empty());
        assert_eq!(t.state(DEV), SessionState::Act);
        assert_eq!(t.get(DEV).unwrap().interim_count, 1);
        assert_eq!(t.handle_timeout(2_500 + MONITOR).len(), 3);
        assert_eq!(t.state(DEV), SessionState::Close);
    }

    // ⑦ Dormant → Close on the session timer.
    #[test]
    fn t7_dormant_to_close_on_session_timer() {
        let mut t = dormant_at(100);
        assert!(t.handle_timeout(100 + SESSION - 1).is_empty());
        assert_eq!(t.state(DEV), SessionState::Dormant);
        let out = t.handle_timeout(100 + SESSION);
        assert_closed(&out, CloseCause::SessionTimer, 100 + SESSION);
        assert_eq!(t.state(DEV), SessionState::Close);
    }

    // ⑧ Act → Close on the interim-monitor timer.
    #[test]
    fn t8_act_to_close_on_interim_monitor_timer() {
        let mut t = act(SessionConfig {
            dormant_ms: None,
            ..cfg()
        });
        assert!(t.handle_timeout(MONITOR - 1).is_empty());
        assert_eq!(t.state(DEV), SessionState::Act);
        let out = t.handle_timeout(MONITOR);
        assert_closed(&out, CloseCause::InterimMonitorTimer, MONITOR);
        assert_eq!(t.state(DEV), SessionState::Close);
    }

    #[test]
    fn interim_monitor_wins_over_dormant_when_both_due() {
        let mut t = act(SessionConfig {
            dormant_ms: Some(MONITOR),
            ..cfg()
        });
        let out = t.handle_timeout(MONITOR);
        assert_closed(&out, CloseCause::InterimMonitorTimer, MONITOR);
    }

    #[test]
    fn late_poll_counts_from_deadlines_and_fires_the_chain() {
        // Polled late: Dormant from the dormant deadline, not from the poll.
        let mut t = act(cfg());
        let out = t.handle_timeout(DORMANT + 10);
        assert_eq!(out.len(), 1);
        assert_eq!(t.get(DEV).unwrap().state_since_ms, DORMANT);
        assert_eq!(t.poll_timeout(), Some(DORMANT + SESSION));
        // Polled very late: ② and ⑦ in one call.
        let mut t = act(cfg());
        let out = t.handle_timeout(DORMANT + SESSION + 5);
        assert_eq!(out.len(), 4);
        assert_eq!(change(&out[0]), Some(StatusChange::Stop));
        assert_closed(&out[1..], CloseCause::SessionTimer, DORMANT + SESSION);
    }

    #[test]
    fn usage_accumulates_over_dormant_cycles() {
        let mut t = act(cfg());
        let u = |o: u64| Usage {
            in_octets: o,
            session_time_s: o,
            ..Default::default()
        };
        t.interim(DEV, Some(u(5)), 10).unwrap();
        t.stop(DEV, Some(u(7)), 20).unwrap();
        t.start(DEV, Some("A2"), 30).unwrap();
        t.interim(DEV, Some(u(3)), 40).unwrap();
        let out = t.close(DEV, Some(u(4)), Some(1), 50).unwrap();
        match &out[2] {
            Notification::WriteSessionLog(rec) => {
                assert_eq!(rec.usage.in_octets, 11);
                assert_eq!(rec.acct_session_id, "A2");
                assert_eq!(rec.started_ms, 0);
            }
            _ => panic!(),
        }
    }

    #[test]
    fn timer_dormant_then_interim_with_traffic_is_start() {
        let mut t = act(cfg());
        let u = |p: u64| Usage {
            in_packets: p,
            ..Default::default()
        };
        t.interim(DEV, Some(u(4)), 500).unwrap();
        t.handle_timeout(1_500); // our dormant timer: NAS session still open
        assert_eq!(t.state(DEV), SessionState::Dormant);
        assert!(t.get(DEV).unwrap().nas_acct_open);
        // Same counters: no traffic, stays Dormant, no notification.
        assert!(t.interim(DEV, Some(u(4)), 1_600).unwrap().is_empty());
        assert_eq!(t.state(DEV), SessionState::Dormant);
        // Grown counters: ⑤ then ⑥.
        let out = t.interim(DEV, Some(u(5)), 1_700).unwrap();
        let changes: Vec<_> = out.iter().filter_map(change).collect();
        assert_eq!(changes, [StatusChange::Start, StatusChange::Interim]);
        assert_eq!(t.state(DEV), SessionState::Act);
        assert_eq!(t.get(DEV).unwrap().usage().in_packets, 5);
    }

    #[test]
    fn nas_stop_after_timer_dormant_records_usage_only() {
        let mut t = act(cfg());
        t.handle_timeout(DORMANT);
        let u = Usage {
            out_octets: 42,
            ..Default::default()
        };
        assert!(t.stop(DEV, Some(u), 1_200).unwrap().is_empty());
        assert_eq!(t.state(DEV), SessionState::Dormant);
        assert!(!t.get(DEV).unwrap().nas_acct_open);
        assert_eq!(t.get(DEV).unwrap().usage().out_octets, 42);
        assert!(t.stop(DEV, Some(u), 1_300).is_err(), "second stop");
        // The NAS session is closed: interims no longer wake the session.
        assert!(t.interim(DEV, Some(u), 1_400).is_err());
    }

    #[test]
    fn restart_in_act_adopts_new_acct_session() {
        let mut t = act(cfg());
        t.interim(
            DEV,
            Some(Usage {
                in_octets: 8,
                ..Default::default()
            }),
            100,
        )
        .unwrap();
        assert!(t.restart(DEV, Some("B7"), 900).unwrap().is_empty());
        let s = t.get(DEV).unwrap();
        assert_eq!(
            (s.state, s.acct_session_id.as_str()),
            (SessionState::Act, "B7")
        );
        assert_eq!((s.usage_done.in_octets, s.usage_current.in_octets), (8, 0));
        assert_eq!(t.poll_timeout(), Some(900 + DORMANT));
    }

    #[test]
    fn timers_of_many_sessions_fire_in_order() {
        let mut t = SessionTable::new(SessionConfig {
            dormant_ms: None,
            ..cfg()
        });
        for (i, at) in [(1, 30u64), (2, 10), (3, 20)] {
            let mut n = new_session(&format!("d{i}"));
            n.addr = Ipv4Addr::new(10, 0, 0, i);
            t.entry(n, at).unwrap();
        }
        assert_eq!(t.poll_timeout(), Some(10 + MONITOR));
        let out = t.handle_timeout(20 + MONITOR);
        let closed: Vec<&str> = out
            .iter()
            .filter_map(|n| match n {
                Notification::SessionTermination(r) => Some(r.device_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(closed, ["d2", "d3"]);
        assert_eq!(t.poll_timeout(), Some(30 + MONITOR));
        assert_eq!(t.state("d1"), SessionState::Act);
    }
}
