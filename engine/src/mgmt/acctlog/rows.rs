//! The rows of the accounting log: a connection's record and a session log
//! record as the database and the IPFIX exporter write them.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use pgw_pipelines::gw::acct::{AcctRecord, CloseReason};
use pgw_pipelines::mgmt::session::{
    CloseCause, SessionLogRecord, SessionState, Transition, TransitionCause,
};

/// One connection's accounting record as logged (FIG. 29): who (device id,
/// subscriber address), what (service, representative address, server name
/// attribute, proxy accounting), where it went (real server, NAT key), when
/// and how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcctRow {
    /// Mobile device id of the session ("" without a session).
    pub device_id: String,
    pub subscriber_ip: Ipv4Addr,
    /// Subscriber port (ICMP: the echo identifier).
    pub subscriber_port: u16,
    /// The IPv6 subscriber of a NAT64 connection (then `subscriber_ip` is 0.0.0.0).
    pub subscriber_ip6: Option<std::net::Ipv6Addr>,
    /// NAT64: the subscriber's IPv6 destination, `representative_ip` under
    /// the NAT64 prefix (RFC 6052; set by [`AcctRow::with_nat64_prefix`]).
    /// NAT66: the IPv6 VIP (then `representative_ip` is 0.0.0.0).
    pub representative_ip6: Option<std::net::Ipv6Addr>,
    /// NAT66: the member's IPv6 address (`real_server_ip` is its IPv4
    /// identity).
    pub real_server_ip6: Option<std::net::Ipv6Addr>,
    /// NAT66: the key's IPv6 address (`nat_ip` is its IPv4 twin in the pool).
    pub nat_ip6: Option<std::net::Ipv6Addr>,
    /// Service type name ("" if none).
    pub service: String,
    pub representative_ip: Ipv4Addr,
    pub representative_port: u16,
    /// The service is accounted by the gateway on behalf of the provider.
    pub proxy_accounting: bool,
    /// HTTP Host / TLS SNI attribute, or "".
    pub server_name: String,
    pub real_server_ip: Ipv4Addr,
    pub real_server_port: u16,
    pub nat_ip: Ipv4Addr,
    pub nat_port: u16,
    pub protocol: u8,
    pub start_unix_ms: i64,
    pub end_unix_ms: i64,
    pub packets_up: u64,
    /// IPv4 total length summed (see `pgw_pipelines::gw::acct`).
    pub bytes_up: u64,
    pub packets_down: u64,
    pub bytes_down: u64,
    pub close_reason: CloseReason,
}

/// The engine's clock (ms since its start) on the wall clock: engine time
/// `ms` was Unix µs `at_zero_us + ms * us_per_ms` (`Timebase::wall`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WallClock {
    pub us_per_ms: f64,
    pub at_zero_us: f64,
}

impl WallClock {
    /// Unix ms `offset_ms` ahead of the engine's clock, at the nominal rate.
    pub fn offset_ms(offset_ms: i64) -> WallClock {
        WallClock {
            us_per_ms: 1000.0,
            at_zero_us: offset_ms as f64 * 1000.0,
        }
    }

    /// Engine ms as Unix ms, rounded down like the engine's own.
    pub fn unix_ms(&self, engine_ms: u64) -> i64 {
        ((self.at_zero_us + engine_ms as f64 * self.us_per_ms) / 1000.0).floor() as i64
    }
}

impl AcctRow {
    /// Resolve a worker's record (S79); `wall` maps the engine's clock to
    /// Unix time (measured by the caller when it converts).
    pub fn from_record(
        r: &AcctRecord,
        device_id: String,
        service_name: String,
        wall: &WallClock,
        proxy_accounting: bool,
    ) -> AcctRow {
        let unix = |ms| wall.unix_ms(ms);
        AcctRow {
            device_id,
            subscriber_ip: Ipv4Addr::from(r.subscriber_ip),
            subscriber_port: r.subscriber_port,
            subscriber_ip6: r.subscriber_ip6.map(std::net::Ipv6Addr::from),
            representative_ip6: r.nat66.map(|n| n.vip.into()),
            real_server_ip6: r.nat66.map(|n| n.server.into()),
            nat_ip6: r.nat66.map(|n| n.key.into()),
            service: service_name,
            representative_ip: Ipv4Addr::from(r.rep_ip),
            representative_port: r.rep_port,
            proxy_accounting,
            server_name: r.attr.as_str().to_owned(),
            real_server_ip: Ipv4Addr::from(r.server_ip),
            real_server_port: r.server_port,
            nat_ip: Ipv4Addr::from(r.nat_ip),
            nat_port: r.nat_port,
            protocol: r.proto,
            start_unix_ms: unix(r.start_ms),
            end_unix_ms: unix(r.end_ms),
            packets_up: r.up_pkts,
            bytes_up: r.up_bytes,
            packets_down: r.down_pkts,
            bytes_down: r.down_bytes,
            close_reason: r.close,
        }
    }
}

impl AcctRow {
    /// Fill `representative_ip6` of a NAT64 row (an IPv6 subscriber and an
    /// IPv4 representative; NAT66 rows have 0.0.0.0 there and stay `None`).
    pub fn with_nat64_prefix(
        mut self,
        prefix: Option<&pgw_pipelines::xlat::rfc6052::Prefix>,
    ) -> AcctRow {
        if let (Some(p), Some(_)) = (prefix, self.subscriber_ip6) {
            if !self.representative_ip.is_unspecified() {
                let a = p.embed(self.representative_ip.octets());
                self.representative_ip6 = Some(std::net::Ipv6Addr::from(a));
            }
        }
        self
    }
}

/// One entry of a session's state history (a FIG. 11 transition).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStateChange {
    /// The state entered: "act", "dormant", "close" (FIG. 11).
    pub state: String,
    pub at_unix_ms: i64,
    /// The state left: "none", "act", "dormant" ("" in rows written before
    /// transitions carried it).
    #[serde(default)]
    pub from: String,
    /// Why ([`transition_cause_text`]; "" in older rows).
    #[serde(default)]
    pub cause: String,
}

impl SessionStateChange {
    /// A transition of the session table, its time on the wall clock.
    pub fn from_transition(t: &Transition, wall: &WallClock) -> SessionStateChange {
        SessionStateChange {
            state: state_text(t.to).into(),
            at_unix_ms: wall.unix_ms(t.at_ms),
            from: state_text(t.from).into(),
            cause: transition_cause_text(&t.cause),
        }
    }
}

/// A session's history as logged and shown (`pgw sessions --history`).
pub fn history_rows<'a>(
    h: impl IntoIterator<Item = &'a Transition>,
    wall: &WallClock,
) -> Vec<SessionStateChange> {
    h.into_iter()
        .map(|t| SessionStateChange::from_transition(t, wall))
        .collect()
}

/// "none", "act", "dormant", "close".
pub fn state_text(s: SessionState) -> &'static str {
    match s {
        SessionState::None => "none",
        SessionState::Act => "act",
        SessionState::Dormant => "dormant",
        SessionState::Close => "close",
    }
}

/// Why a session changed state: "entry", "nas_stop", "dormant_timer",
/// "nas_start", "interim_traffic", or a close cause ([`close_cause_text`]).
pub fn transition_cause_text(c: &TransitionCause) -> String {
    match c {
        TransitionCause::Entry => "entry".into(),
        TransitionCause::NasStop => "nas_stop".into(),
        TransitionCause::DormantTimer => "dormant_timer".into(),
        TransitionCause::NasStart => "nas_start".into(),
        TransitionCause::InterimTraffic => "interim_traffic".into(),
        TransitionCause::Close(c) => close_cause_text(c),
    }
}

/// One closed session (the session log, FIG. 11 ④), filled by the session
/// manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLogRow {
    pub session_id: u64,
    pub device_id: String,
    /// User name (RADIUS User-Name), "" if unknown.
    pub user: String,
    /// The address assigned to the device.
    pub address: Ipv4Addr,
    /// The GW that carried the session.
    pub gw: u16,
    pub nas_ip: Option<Ipv4Addr>,
    pub acct_session_id: String,
    pub start_unix_ms: i64,
    pub end_unix_ms: i64,
    /// States entered, in order (stored as JSON).
    pub state_history: Vec<SessionStateChange>,
    /// Why it closed: "status_close", "status_close:<Acct-Terminate-Cause>",
    /// "session_timer", "interim_monitor_timer" (see [`close_cause_text`]).
    pub close_cause: String,
    /// NAS-reported usage.
    pub in_octets: u64,
    pub out_octets: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub session_time_s: u64,
}

impl SessionLogRow {
    /// From the session table's record (`Notification::WriteSessionLog`).
    /// `user` and `state_history` are what the manager kept beside it.
    pub fn from_record(
        r: &SessionLogRecord,
        user: String,
        state_history: Vec<SessionStateChange>,
        wall: &WallClock,
    ) -> SessionLogRow {
        let unix = |ms| wall.unix_ms(ms);
        SessionLogRow {
            session_id: r.session.session_id,
            device_id: r.session.device_id.clone(),
            user,
            address: r.session.addr,
            gw: r.session.gw.0,
            nas_ip: r.nas.ip,
            acct_session_id: r.acct_session_id.clone(),
            start_unix_ms: unix(r.started_ms),
            end_unix_ms: unix(r.closed_ms),
            state_history,
            close_cause: close_cause_text(&r.cause),
            in_octets: r.usage.in_octets,
            out_octets: r.usage.out_octets,
            in_packets: r.usage.in_packets,
            out_packets: r.usage.out_packets,
            session_time_s: r.usage.session_time_s,
        }
    }
}

/// The `close_cause` column's text for a [`CloseCause`].
pub fn close_cause_text(c: &CloseCause) -> String {
    match c {
        CloseCause::StatusClose {
            terminate_cause: None,
        } => "status_close".into(),
        CloseCause::StatusClose {
            terminate_cause: Some(t),
        } => format!("status_close:{t}"),
        CloseCause::SessionTimer => "session_timer".into(),
        CloseCause::InterimMonitorTimer => "interim_monitor_timer".into(),
        CloseCause::SessionTimeout => "session_timeout".into(),
    }
}
