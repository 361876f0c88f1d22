//! The Manager end to end on bytes, with a fake NAS and a fake clock.

use std::net::{Ipv4Addr, SocketAddr};

use proptest::prelude::*;

use super::radius::{
    self, acct_status, attr, terminate_cause, Authenticator, Builder, Code, MessageAuth, Packet,
};
use super::*;

const SECRET: &[u8] = b"s3cr3t";
const DORMANT: u64 = 10_000;
const SESSION: u64 = 50_000;
const MONITOR: u64 = 30_000;
const HOLD: u64 = 5_000;
const DUP_TTL: u64 = 2_000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn nas_addr() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}

fn client() -> RadiusClient {
    RadiusClient {
        secret: SECRET.to_vec(),
        require_message_authenticator: false,
    }
}

/// FIG. 8 users E0658.. with devices F50200001..4; GW 1 and GW 2 with 4
/// addresses each (FIG. 7 style ranges).
fn manager() -> Manager<SocketAddr> {
    manager_with(|_| {})
}

/// The test manager and a NAS to talk to it.
fn manager_and_nas() -> (Manager<SocketAddr>, Nas) {
    (manager(), Nas::new())
}

fn manager_with(tweak: impl FnOnce(&mut ManagerConfig)) -> Manager<SocketAddr> {
    let users = (0..4)
        .map(|i| UserRecord {
            user_id: format!("E06{}8", 5 + i),
            password: format!("E06{}8aaaa", 5 + i),
            device_id: format!("F5020000{}", i + 1),
            phone: format!("907777111{}", i + 1),
        })
        .collect();
    let gws = vec![
        GwAddrRow {
            id: GwId(1),
            name: "Pgw1".into(),
            ranges: vec![Ipv4Range::new(ip("10.0.0.1"), ip("10.0.0.4"))],
            up: true,
        },
        GwAddrRow {
            id: GwId(2),
            name: "Pgw2".into(),
            ranges: vec![Ipv4Range::new(ip("10.32.0.1"), ip("10.32.0.4"))],
            up: true,
        },
    ];
    let cfg = ManagerConfig {
        session: SessionConfig {
            dormant_ms: Some(DORMANT),
            session_ms: SESSION,
            interim_monitor_ms: Some(MONITOR),
            lifetime_ms: None,
        },
        dup_cache_capacity: 64,
        dup_ttl_ms: DUP_TTL,
        assign_hold_ms: HOLD,
        session_timeout_s: Some(7200),
        idle_timeout_s: None,
        acct_interim_interval_s: Some(30),
    };
    let mut cfg = cfg;
    tweak(&mut cfg);
    Manager::new(
        cfg,
        UserTable::new(users).unwrap(),
        ServiceOrderTable::default(),
        Assigner::new(gws).unwrap(),
    )
}

/// A NAS that numbers its requests.
struct Nas {
    n: u8,
    secret: Vec<u8>,
}

impl Nas {
    fn new() -> Self {
        Nas {
            n: 0,
            secret: SECRET.to_vec(),
        }
    }

    fn next(&mut self) -> (u8, Authenticator) {
        self.n = self.n.wrapping_add(1);
        let mut a = [0xa5u8; 16];
        a[0] = self.n;
        (self.n, a)
    }

    fn access(
        &mut self,
        user: &str,
        password: &str,
        device: Option<&str>,
        with_ma: bool,
    ) -> (Vec<u8>, Authenticator) {
        let (id, ra) = self.next();
        let mut b = Builder::new(Code::AccessRequest, id);
        b.attr_str(attr::USER_NAME, user).unwrap();
        b.user_password(password.as_bytes(), &self.secret, &ra)
            .unwrap();
        if let Some(d) = device {
            b.attr_str(attr::CALLING_STATION_ID, d).unwrap();
        }
        b.attr_ipv4(attr::NAS_IP_ADDRESS, ip("192.0.2.1")).unwrap();
        if with_ma {
            b.message_authenticator().unwrap();
        }
        (b.finish_access_request(&ra, &self.secret), ra)
    }

    /// Accounting-Request; `extra` adds attributes (counters, cause, ...).
    /// Report `status` of device `device`, NAS session `acct_id`, with
    /// `extra` attributes to `m`, which must answer it at `now`.
    fn report(
        &mut self,
        m: &mut Manager<SocketAddr>,
        status: u32,
        device: &str,
        acct_id: &str,
        extra: &[(u8, u32)],
        now: u64,
    ) -> Outcome {
        acct_ok(m, &self.acct(status, Some(device), acct_id, extra), now)
    }

    fn acct(
        &mut self,
        status: u32,
        device: Option<&str>,
        acct_id: &str,
        extra: &[(u8, u32)],
    ) -> Vec<u8> {
        let (id, _) = self.next();
        let mut b = Builder::new(Code::AccountingRequest, id);
        b.attr_u32(attr::ACCT_STATUS_TYPE, status).unwrap();
        b.attr_str(attr::ACCT_SESSION_ID, acct_id).unwrap();
        if let Some(d) = device {
            b.attr_str(attr::CALLING_STATION_ID, d).unwrap();
        }
        b.attr_ipv4(attr::NAS_IP_ADDRESS, ip("192.0.2.1")).unwrap();
        for (t, v) in extra {
            b.attr_u32(*t, *v).unwrap();
        }
        b.finish_accounting_request(&self.secret)
    }
}

/// Checks the reply's authenticators as the NAS would and returns its code
/// and Framed-IP-Address.
fn check_reply(reply: &[u8], request: &[u8]) -> (Code, Option<Ipv4Addr>) {
    let req = Packet::parse(request).unwrap();
    let p = Packet::parse(reply).unwrap();
    assert_eq!(p.identifier(), req.identifier());
    assert!(
        radius::verify_response(&p, &req.authenticator(), SECRET),
        "response authenticator"
    );
    if p.code() != Code::AccountingResponse {
        assert_eq!(
            radius::check_message_authenticator(&p, SECRET, Some(&req.authenticator())),
            MessageAuth::Valid
        );
    }
    (p.code(), p.attr_ipv4(attr::FRAMED_IP_ADDRESS))
}

/// Access-Request for FIG. 8 user i (1..=4) with its own device; returns the address.
fn login(m: &mut Manager<SocketAddr>, nas: &mut Nas, i: u8, now: u64) -> Ipv4Addr {
    let (req, _) = nas.access(
        &format!("E06{}8", 4 + i),
        &format!("E06{}8aaaa", 4 + i),
        Some(&dev(i)),
        true,
    );
    let o = m.handle_radius(nas_addr(), &client(), &req, now);
    assert_eq!(o.disposition, Disposition::Accepted);
    let (code, addr) = check_reply(o.reply.as_deref().unwrap(), &req);
    assert_eq!(code, Code::AccessAccept);
    addr.unwrap()
}

fn dev(i: u8) -> String {
    format!("F5020000{i}")
}

fn acct_ok(m: &mut Manager<SocketAddr>, req: &[u8], now: u64) -> Outcome {
    let o = m.handle_radius(nas_addr(), &client(), req, now);
    let (code, _) = check_reply(o.reply.as_deref().expect("accounting reply"), req);
    assert_eq!(code, Code::AccountingResponse);
    o
}

/// `o` is a Reject for `why`.
#[track_caller]
fn assert_rejected(o: &Outcome, why: RejectReason) {
    assert_eq!(o.disposition, Disposition::Rejected(why));
}

/// `o` is an accounting request answered as `outcome`.
#[track_caller]
fn assert_accounted_as(o: &Outcome, outcome: AcctOutcome) {
    assert_eq!(o.disposition, Disposition::Accounted(outcome));
}

/// `o` is accounted with `outcome` and the status changes `want`.
#[track_caller]
fn assert_accounted(o: &Outcome, outcome: AcctOutcome, want: &[StatusChange]) {
    assert_accounted_as(o, outcome);
    assert_eq!(changes(&o.notifications), want);
}

fn changes(o: &[Notification]) -> Vec<StatusChange> {
    o.iter()
        .filter_map(|n| match n {
            Notification::StatusChange { change, .. } => Some(*change),
            _ => None,
        })
        .collect()
}

#[test]
fn access_accept_gets_address_from_least_loaded_gw() {
    let (mut m, mut nas) = manager_and_nas();
    // 0/0 → GW 1 (tie, lowest id); 1/0 → GW 2; 1/1 → GW 1.
    assert_eq!(login(&mut m, &mut nas, 1, 0), ip("10.0.0.1"));
    assert_eq!(login(&mut m, &mut nas, 2, 1), ip("10.32.0.1"));
    assert_eq!(login(&mut m, &mut nas, 3, 2), ip("10.0.0.2"));
    // GW 1 now holds 2, GW 2 holds 1: the least loaded is GW 2.
    assert_eq!(login(&mut m, &mut nas, 4, 3), ip("10.32.0.2"));
    assert_eq!(m.counters().access_accept, 4);
    // The Accept carries what the config says.
    let (req, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), true);
    let o = m.handle_radius(nas_addr(), &client(), &req, 4);
    let p = Packet::parse(o.reply.as_deref().unwrap()).unwrap();
    assert_eq!(p.attr_u32(attr::SESSION_TIMEOUT), Some(7200));
    assert_eq!(p.attr_u32(attr::ACCT_INTERIM_INTERVAL), Some(30));
    assert!(o.notifications.is_empty(), "access alone notifies no GW");
}

#[test]
fn access_existing_device_keeps_its_address() {
    let (mut m, mut nas) = manager_and_nas();
    let a = login(&mut m, &mut nas, 1, 0);
    nas.report(&mut m, acct_status::START, &dev(1), "S1", &[], 10);
    login(&mut m, &mut nas, 2, 20);
    assert_eq!(
        login(&mut m, &mut nas, 1, 30),
        a,
        "same address, no second one"
    );
    assert_eq!(m.assigner().assigned(), 2);
}

#[test]
fn gw_down_gets_no_new_addresses_until_recovered() {
    let (mut m, mut nas) = manager_and_nas();
    assert_eq!(m.set_gw_up(GwId(1), false), Ok(true));
    assert_eq!(login(&mut m, &mut nas, 1, 0), ip("10.32.0.1"));
    assert_eq!(login(&mut m, &mut nas, 2, 0), ip("10.32.0.2"));
    m.set_gw_up(GwId(1), true).unwrap();
    assert_eq!(login(&mut m, &mut nas, 3, 0), ip("10.0.0.1"));
    assert_eq!(
        m.set_gw_up(GwId(7), true),
        Err(AssignError::UnknownGw(GwId(7)))
    );
}

#[test]
fn wrong_password_rejected() {
    let (mut m, mut nas) = manager_and_nas();
    for with_ma in [false, true] {
        let (req, _) = nas.access("E0658", "E0658aaab", Some("F50200001"), with_ma);
        let o = m.handle_radius(nas_addr(), &client(), &req, 0);
        assert_rejected(&o, RejectReason::BadPassword);
        assert_eq!(
            check_reply(o.reply.as_deref().unwrap(), &req),
            (Code::AccessReject, None)
        );
    }
    assert_eq!(m.counters().reject_bad_password, 2);
    assert_eq!(m.assigner().assigned(), 0, "no address for a rejected user");
}

#[test]
fn unknown_user_device_mismatch_and_no_password_rejected() {
    let (mut m, mut nas) = manager_and_nas();
    let cases = [
        ("E9999", "x", Some("F50200001"), RejectReason::UnknownUser),
        (
            "E0658",
            "E0658aaaa",
            Some("F50200002"),
            RejectReason::DeviceMismatch,
        ),
        ("E0658", "E0658aaaa", None, RejectReason::DeviceMismatch),
    ];
    for (u, p, d, why) in cases {
        let (req, _) = nas.access(u, p, d, true);
        let o = m.handle_radius(nas_addr(), &client(), &req, 0);
        assert_eq!(o.disposition, Disposition::Rejected(why), "{u} {d:?}");
        assert_eq!(
            check_reply(o.reply.as_deref().unwrap(), &req).0,
            Code::AccessReject
        );
    }
    // Neither PAP nor CHAP.
    let (id, ra) = nas.next();
    let mut b = Builder::new(Code::AccessRequest, id);
    b.attr_str(attr::USER_NAME, "E0658").unwrap();
    b.attr_str(attr::CALLING_STATION_ID, "F50200001").unwrap();
    let req = b.finish_access_request(&ra, SECRET);
    let o = m.handle_radius(nas_addr(), &client(), &req, 0);
    assert_rejected(&o, RejectReason::NoPassword);
    assert_eq!(m.counters().access_reject(), 4);
}

/// CHAP-Password (RFC 2865 §5.3): the response to CHAP-Challenge, or to
/// the Request Authenticator when there is none, checked against the
/// user's password; a wrong response is a bad password, a CHAP-Password
/// that is not 17 octets is malformed (no reply).
#[test]
fn chap_password_with_and_without_a_challenge() {
    let (mut m, mut nas) = manager_and_nas();
    let mut chap = |nas: &mut Nas, password: &str, challenge: Option<&[u8]>, len: usize| {
        let (id, ra) = nas.next();
        let mut b = Builder::new(Code::AccessRequest, id);
        b.attr_str(attr::USER_NAME, "E0658").unwrap();
        b.attr_str(attr::CALLING_STATION_ID, "F50200001").unwrap();
        let ident = 7u8;
        let mut v = vec![ident];
        v.extend(radius::chap_response(
            ident,
            password.as_bytes(),
            challenge.unwrap_or(&ra),
        ));
        v.truncate(len);
        b.attr(attr::CHAP_PASSWORD, &v).unwrap();
        if let Some(c) = challenge {
            b.attr(attr::CHAP_CHALLENGE, c).unwrap();
        }
        let req = b.finish_access_request(&ra, SECRET);
        (m.handle_radius(nas_addr(), &client(), &req, 0), req)
    };
    let (o, req) = chap(&mut nas, "E0658aaaa", None, 17);
    assert_eq!(o.disposition, Disposition::Accepted);
    assert_eq!(
        check_reply(o.reply.as_deref().unwrap(), &req),
        (Code::AccessAccept, Some(ip("10.0.0.1")))
    );
    let (o, _) = chap(&mut nas, "E0658aaaa", Some(b"a challenge of 24 octets"), 17);
    assert_eq!(o.disposition, Disposition::Accepted);
    let (o, _) = chap(&mut nas, "E0658aaab", None, 17);
    assert_rejected(&o, RejectReason::BadPassword);
    let (o, _) = chap(&mut nas, "E0658aaab", Some(b"0123456789abcdef"), 17);
    assert_rejected(&o, RejectReason::BadPassword);
    let (o, _) = chap(&mut nas, "E0658aaaa", None, 16);
    assert_eq!((o.disposition, o.reply), (Disposition::Malformed, None));
    assert_eq!(m.counters().access_accept, 2);
    assert_eq!(m.counters().reject_bad_password, 2);
}

/// Accounting-On (the NAS restarted) and Accounting-Off (it leaves
/// service) close every session of that NAS, named by NAS-IP-Address or by
/// NAS-Identifier; other NASes' sessions stay.
#[test]
fn accounting_on_and_off_close_the_sessions_of_that_nas() {
    let (mut m, mut nas) = manager_and_nas();
    for i in 1..=3 {
        login(&mut m, &mut nas, i, 0);
    }
    // Sessions 1 and 2 from NAS 192.0.2.1 (the test NAS), 3 from 192.0.2.9
    // which also calls itself "nas-9".
    for i in 1..=2 {
        nas.report(
            &mut m,
            acct_status::START,
            &dev(i),
            &format!("S{i}"),
            &[],
            0,
        );
    }
    let other = |nas: &mut Nas, status: u32, device: Option<&str>, by_name: bool| {
        let (id, _) = nas.next();
        let mut b = Builder::new(Code::AccountingRequest, id);
        b.attr_u32(attr::ACCT_STATUS_TYPE, status).unwrap();
        b.attr_str(attr::ACCT_SESSION_ID, "S3").unwrap();
        if let Some(d) = device {
            b.attr_str(attr::CALLING_STATION_ID, d).unwrap();
        }
        if by_name {
            b.attr_str(attr::NAS_IDENTIFIER, "nas-9").unwrap();
        } else {
            b.attr_ipv4(attr::NAS_IP_ADDRESS, ip("192.0.2.9")).unwrap();
            b.attr_str(attr::NAS_IDENTIFIER, "nas-9").unwrap();
        }
        b.finish_accounting_request(SECRET)
    };
    acct_ok(
        &mut m,
        &other(&mut nas, acct_status::START, Some(&dev(3)), false),
        0,
    );
    for i in 1..=3 {
        assert_eq!(m.sessions().state(&dev(i)), SessionState::Act, "{i}");
    }
    let o = acct_ok(
        &mut m,
        &nas.acct(acct_status::ACCOUNTING_ON, None, "on", &[]),
        10,
    );
    assert_accounted_as(&o, AcctOutcome::NasOnOff);
    for i in 1..=2 {
        assert_eq!(m.sessions().state(&dev(i)), SessionState::Close, "{i}");
        assert_eq!(
            m.sessions().get(&dev(i)).unwrap().close_cause,
            Some(CloseCause::StatusClose {
                terminate_cause: Some(radius::terminate_cause::NAS_REBOOT)
            }),
            "{i}"
        );
    }
    assert_eq!(m.sessions().state(&dev(3)), SessionState::Act);
    assert_eq!(m.counters().nas_on_off_closed, 2);
    // Accounting-Off of "nas-9", by its identifier alone.
    acct_ok(
        &mut m,
        &other(&mut nas, acct_status::ACCOUNTING_OFF, None, true),
        20,
    );
    assert_eq!(m.sessions().state(&dev(3)), SessionState::Close);
    assert_eq!(m.counters().nas_on_off_closed, 3);
    assert_eq!(m.counters().acct_nas_on_off, 2);
}

/// An Accounting-Request of `device` (NAS session `acct_id`) from the NAS
/// `nas_ip` (no NAS-IP-Address attribute if `None`).
fn acct_from(
    nas: &mut Nas,
    status: u32,
    device: &str,
    acct_id: &str,
    nas_ip: Option<&str>,
) -> Vec<u8> {
    let (id, _) = nas.next();
    let mut b = Builder::new(Code::AccountingRequest, id);
    b.attr_u32(attr::ACCT_STATUS_TYPE, status).unwrap();
    b.attr_str(attr::ACCT_SESSION_ID, acct_id).unwrap();
    b.attr_str(attr::CALLING_STATION_ID, device).unwrap();
    if let Some(a) = nas_ip {
        b.attr_ipv4(attr::NAS_IP_ADDRESS, ip(a)).unwrap();
    }
    b.finish_accounting_request(SECRET)
}

/// The NASes of the `Moved` notifications in `o`.
fn moves(o: &Outcome) -> Vec<Option<Ipv4Addr>> {
    o.notifications
        .iter()
        .filter_map(|n| match n {
            Notification::Moved { nas, .. } => Some(nas.ip),
            _ => None,
        })
        .collect()
}

#[test]
fn a_report_from_another_nas_moves_the_session() {
    let (mut m, mut nas) = manager_and_nas();
    let d = dev(1);
    let addr = login(&mut m, &mut nas, 1, 0);
    let o = nas.report(&mut m, acct_status::START, &d, "S1", &[], 0);
    assert!(moves(&o).is_empty(), "entered, not moved: {o:?}");
    // Interim from the same NAS: no move.
    let same = acct_from(
        &mut nas,
        acct_status::INTERIM_UPDATE,
        &d,
        "S1",
        Some("192.0.2.1"),
    );
    assert!(moves(&acct_ok(&mut m, &same, 10)).is_empty());
    // Interim of the same NAS session through another NAS: moved, once.
    let there = acct_from(
        &mut nas,
        acct_status::INTERIM_UPDATE,
        &d,
        "S1",
        Some("192.0.2.9"),
    );
    let o = acct_ok(&mut m, &there, 20);
    assert_accounted_as(&o, AcctOutcome::Interim);
    assert_eq!(moves(&o), [Some(ip("192.0.2.9"))]);
    let Some(Notification::Moved { session, .. }) = o
        .notifications
        .iter()
        .find(|n| matches!(n, Notification::Moved { .. }))
    else {
        unreachable!()
    };
    assert_eq!(
        (session.addr, session.device_id.as_str()),
        (addr, d.as_str())
    );
    assert_eq!(m.sessions().get(&d).unwrap().nas.ip, Some(ip("192.0.2.9")));
    let again = acct_from(
        &mut nas,
        acct_status::INTERIM_UPDATE,
        &d,
        "S1",
        Some("192.0.2.9"),
    );
    assert!(
        moves(&acct_ok(&mut m, &again, 30)).is_empty(),
        "already there"
    );
    // A request naming no NAS, or an Interim of another NAS session
    // (refused as a mismatch), moves nothing.
    let anon = acct_from(&mut nas, acct_status::INTERIM_UPDATE, &d, "S1", None);
    assert!(moves(&acct_ok(&mut m, &anon, 40)).is_empty());
    let stale = acct_from(
        &mut nas,
        acct_status::INTERIM_UPDATE,
        &d,
        "S0",
        Some("192.0.2.1"),
    );
    let o = acct_ok(&mut m, &stale, 50);
    assert_accounted_as(&o, AcctOutcome::SessionMismatch);
    assert!(moves(&o).is_empty());
    // A new NAS session started back at the first NAS: moved back.
    let back = acct_from(&mut nas, acct_status::START, &d, "S2", Some("192.0.2.1"));
    let o = acct_ok(&mut m, &back, 60);
    assert_accounted_as(&o, AcctOutcome::Restarted);
    assert_eq!(moves(&o), [Some(ip("192.0.2.1"))]);
    // A Stop from elsewhere closes the session; it does not move it.
    let stop = acct_from(&mut nas, acct_status::STOP, &d, "S2", Some("192.0.2.9"));
    let o = acct_ok(&mut m, &stop, 70);
    assert_accounted_as(&o, AcctOutcome::Closed);
    assert!(moves(&o).is_empty());
    assert_eq!(m.counters().nas_moves, 2);
}

#[test]
fn address_exhaustion_rejected() {
    let (mut m, mut nas) = manager_and_nas();
    m.set_gw_up(GwId(1), false).unwrap();
    m.set_gw_up(GwId(2), false).unwrap();
    let (req, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), true);
    let o = m.handle_radius(nas_addr(), &client(), &req, 0);
    assert_rejected(&o, RejectReason::NoAddress);
    assert_eq!(
        check_reply(o.reply.as_deref().unwrap(), &req).0,
        Code::AccessReject
    );
}

#[test]
fn wrong_secret_no_reply() {
    let (mut m, mut nas) = manager_and_nas();
    nas.secret = b"not-the-secret".to_vec();
    // Access-Request with a Message-Authenticator: the HMAC fails.
    let (req, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), true);
    let o = m.handle_radius(nas_addr(), &client(), &req, 0);
    assert_eq!(
        (o.reply, o.disposition),
        (None, Disposition::BadAuthenticator)
    );
    // Accounting-Request: the Request Authenticator fails.
    let req = nas.acct(acct_status::START, Some("F50200001"), "S1", &[]);
    let o = m.handle_radius(nas_addr(), &client(), &req, 0);
    assert_eq!(
        (o.reply, o.disposition),
        (None, Disposition::BadAuthenticator)
    );
    assert_eq!(m.counters().bad_authenticator, 2);
    assert_eq!(m.sessions().state("F50200001"), SessionState::None);
    // Without a Message-Authenticator the wrong secret garbles the PAP
    // password: indistinguishable from a wrong password, so a Reject.
    let (req, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), false);
    let o = m.handle_radius(nas_addr(), &client(), &req, 0);
    assert_rejected(&o, RejectReason::BadPassword);
}

#[test]
fn message_authenticator_required_by_client() {
    let (mut m, mut nas) = manager_and_nas();
    let strict = RadiusClient {
        require_message_authenticator: true,
        ..client()
    };
    let (req, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), false);
    let o = m.handle_radius(nas_addr(), &strict, &req, 0);
    assert_eq!(
        (o.reply, o.disposition),
        (None, Disposition::MissingMessageAuthenticator)
    );
    let (req, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), true);
    assert_eq!(
        m.handle_radius(nas_addr(), &strict, &req, 0).disposition,
        Disposition::Accepted
    );
}

#[test]
fn malformed_and_unsupported_no_reply() {
    let (mut m, mut nas) = manager_and_nas();
    let (good, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), true);
    let mut bad_attr = good.clone();
    bad_attr[21] = 1; // first attribute length 1
    let mut bad_pap = Builder::new(Code::AccessRequest, 1);
    bad_pap.attr_str(attr::USER_NAME, "E0658").unwrap();
    bad_pap.attr(attr::USER_PASSWORD, &[0u8; 15]).unwrap();
    let bad_pap = bad_pap.finish_access_request(&[1; 16], SECRET);
    let no_status = {
        let b = Builder::new(Code::AccountingRequest, 1);
        b.finish_accounting_request(SECRET)
    };
    for bytes in [
        &good[..19],
        &good[..good.len() - 1],
        &bad_attr,
        &bad_pap,
        &no_status,
    ] {
        let o = m.handle_radius(nas_addr(), &client(), bytes, 0);
        assert_eq!((o.reply, o.disposition), (None, Disposition::Malformed));
    }
    assert_eq!(m.counters().malformed, 5);
    let status_server = Builder::new(Code::StatusServer, 1).finish_access_request(&[2; 16], SECRET);
    let o = m.handle_radius(nas_addr(), &client(), &status_server, 0);
    assert_eq!(
        (o.reply, o.disposition),
        (None, Disposition::UnsupportedCode)
    );
}

#[test]
fn duplicate_gets_cached_reply_and_is_not_processed_twice() {
    let (mut m, mut nas) = manager_and_nas();
    let (req, _) = nas.access("E0658", "E0658aaaa", Some("F50200001"), true);
    let first = m.handle_radius(nas_addr(), &client(), &req, 0);
    let again = m.handle_radius(nas_addr(), &client(), &req, DUP_TTL - 1);
    assert_eq!(again.disposition, Disposition::Duplicate);
    assert_eq!(again.reply, first.reply);
    // Another source port: not a duplicate.
    let other: SocketAddr = "192.0.2.1:40001".parse().unwrap();
    assert_eq!(
        m.handle_radius(other, &client(), &req, 1).disposition,
        Disposition::Accepted
    );

    let start = nas.acct(acct_status::START, Some("F50200001"), "S1", &[]);
    let o1 = acct_ok(&mut m, &start, 10);
    assert_eq!(o1.notifications.len(), 1);
    let o2 = m.handle_radius(nas_addr(), &client(), &start, 20);
    assert_eq!(o2.disposition, Disposition::Duplicate);
    assert_eq!(o2.reply, o1.reply);
    assert!(
        o2.notifications.is_empty(),
        "no second session start notification"
    );
    assert_eq!(m.counters().duplicate, 2);
    assert_eq!(m.counters().acct_entered, 1);
    // After the TTL it is processed again (a Start in Act: adopted, no notification).
    m.handle_timeout(10 + DUP_TTL);
    let o3 = acct_ok(&mut m, &start, 10 + DUP_TTL);
    assert_accounted_as(&o3, AcctOutcome::Restarted);
}

#[test]
fn accounting_start_interim_stop_drive_the_session_states() {
    let (mut m, mut nas) = manager_and_nas();
    let d = dev(2);
    m.set_gw_up(GwId(1), false).unwrap();
    let addr = login(&mut m, &mut nas, 2, 0);
    m.set_gw_up(GwId(1), true).unwrap();
    let who = |n: &Notification| match n {
        Notification::SessionStart(r)
        | Notification::SessionTermination(r)
        | Notification::SessionRemoved(r) => r.clone(),
        Notification::StatusChange { session, .. } | Notification::Moved { session, .. } => {
            session.clone()
        }
        Notification::WriteSessionLog(rec) => rec.session.clone(),
    };

    // Start: None → Act, session start notification to the GW owning the address.
    let o = nas.report(&mut m, acct_status::START, &d, "S1", &[], 100);
    assert_accounted_as(&o, AcctOutcome::Entered);
    assert_eq!(o.notifications.len(), 1);
    assert!(matches!(o.notifications[0], Notification::SessionStart(_)));
    let r = who(&o.notifications[0]);
    assert_eq!(
        (r.device_id.as_str(), r.addr, r.gw),
        (d.as_str(), addr, GwId(2))
    );
    assert_eq!(m.sessions().state(&d), SessionState::Act);

    // Interim: stays Act, status change (interim).
    let traffic = [
        (attr::ACCT_INPUT_OCTETS, 1000),
        (attr::ACCT_OUTPUT_PACKETS, 3),
    ];
    let o = nas.report(&mut m, acct_status::INTERIM_UPDATE, &d, "S1", &traffic, 200);
    assert_accounted(&o, AcctOutcome::Interim, &[StatusChange::Interim]);
    assert_eq!(m.sessions().state(&d), SessionState::Act);

    // Stop with Idle-Timeout (FIG. 31): Act → Dormant, status change (stop).
    let idle = [
        (attr::ACCT_TERMINATE_CAUSE, terminate_cause::IDLE_TIMEOUT),
        (attr::ACCT_INPUT_OCTETS, 1500),
    ];
    let o = nas.report(&mut m, acct_status::STOP, &d, "S1", &idle, 300);
    assert_accounted(&o, AcctOutcome::Stopped, &[StatusChange::Stop]);
    assert_eq!(m.sessions().state(&d), SessionState::Dormant);

    // Start again (new NAS accounting session): Dormant → Act, status change (start).
    let o = nas.report(&mut m, acct_status::START, &d, "S2", &[], 400);
    assert_accounted(&o, AcctOutcome::Started, &[StatusChange::Start]);
    assert_eq!(m.sessions().get(&d).unwrap().acct_session_id, "S2");

    // An interim of the old NAS session is not this session's.
    let o = nas.report(&mut m, acct_status::INTERIM_UPDATE, &d, "S1", &[], 450);
    assert_accounted_as(&o, AcctOutcome::SessionMismatch);
    assert!(o.notifications.is_empty());

    // Stop with User-Request (FIG. 30 logout): Act → Close, close + termination + log.
    let logout = [
        (attr::ACCT_TERMINATE_CAUSE, terminate_cause::USER_REQUEST),
        (attr::ACCT_INPUT_OCTETS, 20),
    ];
    let o = nas.report(&mut m, acct_status::STOP, &d, "S2", &logout, 500);
    assert_accounted(&o, AcctOutcome::Closed, &[StatusChange::Close]);
    assert!(matches!(
        o.notifications[1],
        Notification::SessionTermination(_)
    ));
    let Notification::WriteSessionLog(rec) = &o.notifications[2] else {
        panic!("no session log record: {:?}", o.notifications);
    };
    assert_eq!(rec.usage.in_octets, 1520, "both NAS sessions counted");
    assert_eq!(
        rec.usage.out_packets, 0,
        "the first session's stop carried no packet count"
    );
    assert_eq!(
        rec.cause,
        CloseCause::StatusClose {
            terminate_cause: Some(terminate_cause::USER_REQUEST)
        }
    );
    assert_eq!(m.sessions().state(&d), SessionState::Close);
    assert_eq!(
        m.assigner().lookup(&d).unwrap().addr,
        addr,
        "address held until the log is written"
    );

    // A late stop: acknowledged, ignored.
    let o = nas.report(&mut m, acct_status::STOP, &d, "S2", &[], 550);
    assert_accounted_as(&o, AcctOutcome::Ignored);

    // Session log written: Close → None, address back in the pool.
    let out = m.session_log_written(&d, rec.session.session_id).unwrap();
    assert!(matches!(out[0], Notification::SessionRemoved(_)));
    assert_eq!(m.sessions().state(&d), SessionState::None);
    assert_eq!(m.assigner().lookup(&d), None);
    assert_eq!(m.assigner().gw_status()[1].assigned, 0);
}

#[test]
fn start_while_close_is_deferred_until_log_written() {
    let (mut m, mut nas) = manager_and_nas();
    let d = dev(1);
    let addr = login(&mut m, &mut nas, 1, 0);
    nas.report(&mut m, acct_status::START, &d, "S1", &[], 10);
    let o = nas.report(&mut m, acct_status::STOP, &d, "S1", &[], 20);
    let sid = match &o.notifications[2] {
        Notification::WriteSessionLog(rec) => rec.session.session_id,
        other => panic!("{other:?}"),
    };
    // The device logs in again before the log is written: same address.
    assert_eq!(login(&mut m, &mut nas, 1, 30), addr);
    let start = nas.acct(acct_status::START, Some(&d), "S2", &[]);
    let o = m.handle_radius(nas_addr(), &client(), &start, 40);
    assert_eq!((o.reply, o.disposition), (None, Disposition::AcctDeferred));
    m.session_log_written(&d, sid).unwrap();
    assert_eq!(
        m.assigner().lookup(&d).unwrap().addr,
        addr,
        "kept: accepted again meanwhile"
    );
    // The NAS retransmits: now entered.
    let o = acct_ok(&mut m, &start, 50);
    assert_accounted_as(&o, AcctOutcome::Entered);
    assert_eq!(m.sessions().get(&d).unwrap().addr, addr);
}

#[test]
fn address_hold_expires_without_accounting_start() {
    let (mut m, mut nas) = manager_and_nas();
    let d = dev(3);
    login(&mut m, &mut nas, 3, 1_000);
    assert_eq!(m.poll_timeout(), Some(1_000 + DUP_TTL));
    m.handle_timeout(1_000 + DUP_TTL);
    assert_eq!(m.poll_timeout(), Some(1_000 + HOLD));
    m.handle_timeout(1_000 + HOLD - 1);
    assert!(m.assigner().lookup(&d).is_some());
    m.handle_timeout(1_000 + HOLD);
    assert_eq!(m.assigner().lookup(&d), None);
    assert_eq!(m.counters().hold_expired, 1);
    // With a Start in time the hold is cancelled.
    login(&mut m, &mut nas, 3, 10_000);
    nas.report(&mut m, acct_status::START, &d, "S1", &[], 10_001);
    m.handle_timeout(10_000 + HOLD);
    assert!(m.assigner().lookup(&d).is_some());
    assert_eq!(m.counters().hold_expired, 1);
}

#[test]
fn manager_timers_dormant_session_and_interim_monitor() {
    let (mut m, mut nas) = manager_and_nas();
    let (a, b) = (dev(1), dev(2));
    login(&mut m, &mut nas, 1, 0);
    login(&mut m, &mut nas, 2, 0);
    nas.report(&mut m, acct_status::START, &a, "A", &[], 0);
    nas.report(&mut m, acct_status::START, &b, "B", &[], 0);
    // b keeps sending interims with growing counters; a is silent.
    let mut out = Vec::new();
    for k in 1..=3u32 {
        let now = u64::from(k) * 9_000;
        let o = nas.report(
            &mut m,
            acct_status::INTERIM_UPDATE,
            &b,
            "B",
            &[(attr::ACCT_INPUT_OCTETS, k)],
            now,
        );
        assert_eq!(changes(&o.notifications), [StatusChange::Interim]);
        out.extend(m.handle_timeout(now));
    }
    // a went Dormant at 10 000 (our dormant timer), b stayed Act.
    assert_eq!(changes(&out), [StatusChange::Stop]);
    assert_eq!(m.sessions().state(&a), SessionState::Dormant);
    assert_eq!(m.sessions().state(&b), SessionState::Act);
    // b's last traffic was at 27 000: our dormant timer makes it Dormant at 37 000.
    let out = m.handle_timeout(27_000 + DORMANT - 1);
    assert!(out.is_empty());
    let out = m.handle_timeout(27_000 + DORMANT);
    assert_eq!(changes(&out), [StatusChange::Stop]);
    assert_eq!(m.sessions().get(&b).unwrap().state_since_ms, 37_000);
    // a: the session timer closes it at 10 000 + SESSION.
    assert!(m.handle_timeout(DORMANT + SESSION - 1).is_empty());
    let out = m.handle_timeout(DORMANT + SESSION);
    let closed: Vec<(String, CloseCause, u64)> = out
        .iter()
        .filter_map(|n| match n {
            Notification::WriteSessionLog(r) => {
                Some((r.session.device_id.clone(), r.cause, r.closed_ms))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        [(a.clone(), CloseCause::SessionTimer, DORMANT + SESSION)]
    );
    assert_eq!(m.sessions().state(&a), SessionState::Close);
    assert_eq!(m.sessions().state(&b), SessionState::Dormant);
    // b: traffic in an interim wakes it (⑤ then ⑥), FIG. 31 without a NAS stop.
    let o = nas.report(
        &mut m,
        acct_status::INTERIM_UPDATE,
        &b,
        "B",
        &[(attr::ACCT_INPUT_OCTETS, 9)],
        61_000,
    );
    assert_eq!(
        changes(&o.notifications),
        [StatusChange::Start, StatusChange::Interim]
    );
    assert_eq!(m.sessions().state(&b), SessionState::Act);
}

#[test]
fn manager_interim_monitor_closes_silent_session() {
    // Without a dormant timer of our own, a session whose NAS stops sending
    // Interim-Updates is closed by the interim monitor (⑧).
    let mut m = manager_with(|c| c.session.dormant_ms = None);
    let mut nas = Nas::new();
    let d = dev(1);
    login(&mut m, &mut nas, 1, 0);
    nas.report(&mut m, acct_status::START, &d, "A", &[], 0);
    nas.report(&mut m, acct_status::INTERIM_UPDATE, &d, "A", &[], 20_000);
    assert!(
        m.handle_timeout(MONITOR).is_empty(),
        "the interim restarted the monitor"
    );
    assert!(m.handle_timeout(20_000 + MONITOR - 1).is_empty());
    let out = m.handle_timeout(20_000 + MONITOR);
    assert_eq!(changes(&out), [StatusChange::Close]);
    assert!(out
        .iter()
        .any(|n| matches!(n, Notification::WriteSessionLog(r) if r.cause == CloseCause::InterimMonitorTimer)));
    assert_eq!(m.sessions().state(&d), SessionState::Close);
}

#[test]
fn accounting_recovery_and_edge_cases() {
    let (mut m, mut nas) = manager_and_nas();
    // Interim for a device the manager does not know (e.g. after a restart):
    // the NAS's Framed-IP-Address is claimed and the session entered.
    let req = {
        let (id, _) = nas.next();
        let mut b = Builder::new(Code::AccountingRequest, id);
        b.attr_u32(attr::ACCT_STATUS_TYPE, acct_status::INTERIM_UPDATE)
            .unwrap();
        b.attr_str(attr::ACCT_SESSION_ID, "R1").unwrap();
        b.attr_str(attr::CALLING_STATION_ID, "F50200004").unwrap();
        b.attr_ipv4(attr::FRAMED_IP_ADDRESS, ip("10.32.0.3"))
            .unwrap();
        b.attr_u32(attr::ACCT_INPUT_OCTETS, 77).unwrap();
        b.finish_accounting_request(SECRET)
    };
    let o = acct_ok(&mut m, &req, 0);
    assert_accounted_as(&o, AcctOutcome::Entered);
    let s = m.sessions().get("F50200004").unwrap();
    assert_eq!(
        (s.addr, s.gw, s.usage().in_octets),
        (ip("10.32.0.3"), GwId(2), 77)
    );
    // Start without a known or reported address: acknowledged, no session.
    let o = nas.report(&mut m, acct_status::START, "F50200003", "X", &[], 0);
    assert_accounted_as(&o, AcctOutcome::NoAddress);
    // Stop for a device without a session.
    let o = nas.report(&mut m, acct_status::STOP, "F50200003", "X", &[], 0);
    assert_accounted_as(&o, AcctOutcome::UnknownSession);
    // No Calling-Station-Id.
    let o = acct_ok(&mut m, &nas.acct(acct_status::START, None, "X", &[]), 0);
    assert_accounted_as(&o, AcctOutcome::NoDevice);
    // Accounting-On and an unknown status type.
    let o = acct_ok(
        &mut m,
        &nas.acct(acct_status::ACCOUNTING_ON, None, "X", &[]),
        0,
    );
    assert_accounted_as(&o, AcctOutcome::NasOnOff);
    let o = nas.report(&mut m, 99, "F50200003", "X", &[], 0);
    assert_accounted_as(&o, AcctOutcome::UnknownStatusType);
    let c = m.counters();
    assert_eq!(
        (
            c.acct_entered,
            c.acct_no_address,
            c.acct_unknown_session,
            c.acct_no_device,
            c.acct_nas_on_off
        ),
        (1, 1, 1, 1, 1)
    );
}

#[test]
fn usage_gigawords_folded() {
    let mut b = Builder::new(Code::AccountingRequest, 1);
    b.attr_u32(attr::ACCT_INPUT_OCTETS, 5).unwrap();
    b.attr_u32(attr::ACCT_INPUT_GIGAWORDS, 2).unwrap();
    b.attr_u32(attr::ACCT_OUTPUT_GIGAWORDS, 1).unwrap();
    let req = b.finish_accounting_request(SECRET);
    let u = usage_of(&Packet::parse(&req).unwrap()).unwrap();
    assert_eq!((u.in_octets, u.out_octets), ((2 << 32) + 5, 1 << 32));
    let req = Builder::new(Code::AccountingRequest, 1).finish_accounting_request(SECRET);
    assert_eq!(usage_of(&Packet::parse(&req).unwrap()), None);
}

proptest! {
    #[test]
    fn manager_never_panics_on_random_datagrams(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        code in prop_oneof![Just(1u8), Just(4u8), any::<u8>()],
    ) {
        let mut m = manager();
        let mut bytes = bytes;
        if bytes.len() >= 4 {
            bytes[0] = code;
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
        }
        let o = m.handle_radius(nas_addr(), &client(), &bytes, 0);
        // Random bytes cannot forge an authenticator: at most a Reject.
        prop_assert!(o.notifications.is_empty());
        prop_assert_ne!(o.disposition, Disposition::Accepted);
        m.handle_timeout(u64::MAX);
    }
}
