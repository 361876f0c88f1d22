//! The management plane's decoders: RADIUS (codec and the whole
//! `Manager`) and the control protocol between instances.
//!
//! Both take a sequence of records `[ctl: u8][len: u16 BE][bytes]` fed to
//! one long-lived state (a `Manager`, a `ctlproto::Receiver`), so state
//! machines see sequences, not only single datagrams. `ctl` bit 0 re-signs
//! the bytes with the shared secret before they are handed over (so the
//! mutated contents get past the authenticator checks and reach the logic
//! behind them); bits 1-3 advance the clock.

use std::net::Ipv4Addr;

use super::{record, records};
use crate::mgmt::assign::{Assigner, GwAddrRow, GwId, Ipv4Range};
use crate::mgmt::ctlproto::{self, Message, Receiver, SessionEntry};
use crate::mgmt::radius::{
    self, acct_status, attr, terminate_cause, AcceptAttrs, Builder, Code, MessageAuth, Packet,
};
use crate::mgmt::session::{Notification, SessionConfig};
use crate::mgmt::users::{ServiceOrderTable, UserRecord, UserTable};
use crate::mgmt::{Disposition, Manager, ManagerConfig, RadiusClient};

const SECRET: &[u8] = b"s3cr3t";
const USER: &str = "alice";
const PASSWORD: &[u8] = b"wonderland";
const DEVICE: &str = "09011112222";

fn manager() -> Manager<u8> {
    let users = UserTable::new(vec![UserRecord {
        user_id: USER.into(),
        password: String::from_utf8_lossy(PASSWORD).into_owned(),
        device_id: DEVICE.into(),
        phone: "1".into(),
    }])
    .expect("fixture users");
    // GW `id` named gw<id + 1>, up, with the addresses 10.50.<id>.2..=<last>.
    let gw = |id: u8, last: u8| GwAddrRow {
        id: GwId(id.into()),
        name: format!("gw{}", id + 1),
        ranges: vec![Ipv4Range::new(
            Ipv4Addr::new(10, 50, id, 2),
            Ipv4Addr::new(10, 50, id, last),
        )],
        up: true,
    };
    let gws = vec![gw(0, 3), gw(1, 2)];
    let cfg = ManagerConfig {
        session: SessionConfig {
            dormant_ms: Some(3_000),
            session_ms: 10_000,
            interim_monitor_ms: Some(5_000),
            lifetime_ms: Some(20_000),
        },
        dup_cache_capacity: 8,
        dup_ttl_ms: 2_000,
        assign_hold_ms: 2_000,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(
        cfg,
        users,
        ServiceOrderTable::default(),
        Assigner::new(gws).expect("fixture gateways"),
    );
    m.set_ipv6_block(
        GwId(0),
        [
            0x20, 0x01, 0x0d, 0xb8, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        48,
    );
    m
}

/// `bytes` with a correct Request Authenticator (Accounting-Request) and
/// Message-Authenticator (if it has one) under [`SECRET`]; as they are if
/// they do not parse.
fn resign(bytes: &[u8]) -> Vec<u8> {
    let Ok(p) = Packet::parse(bytes) else {
        return bytes.to_vec();
    };
    let mut b = Builder::new(p.code(), p.identifier());
    for a in p.attributes() {
        let r = if a.typ == attr::MESSAGE_AUTHENTICATOR && a.value.len() == 16 {
            b.message_authenticator().map(|_| ())
        } else {
            b.attr(a.typ, a.value).map(|_| ())
        };
        if r.is_err() {
            return bytes.to_vec();
        }
    }
    match p.code() {
        Code::AccountingRequest => b.finish_accounting_request(SECRET),
        _ => b.finish_access_request(&p.authenticator(), SECRET),
    }
}

/// The codec on one datagram: every accessor, every check, every reply
/// builder; a reply we build must parse and verify.
fn codec(bytes: &[u8]) {
    let Ok(p) = Packet::parse(bytes) else {
        return;
    };
    assert!(p.length() <= bytes.len() && p.length() >= radius::HEADER_LEN);
    let total: usize = p.attributes().map(|a| a.value.len() + 2).sum();
    assert_eq!(total + radius::HEADER_LEN, p.length());
    for t in [
        attr::USER_NAME,
        attr::ACCT_STATUS_TYPE,
        attr::FRAMED_IP_ADDRESS,
    ] {
        let _ = (
            p.attr_str(t),
            p.attr_u32(t),
            p.attr_ipv4(t),
            p.attr_count(t),
        );
    }
    let _ = radius::verify_accounting_request(&p, SECRET);
    let ra = p.authenticator();
    let _ = radius::check_message_authenticator(&p, SECRET, None);
    let _ = radius::check_message_authenticator(&p, SECRET, Some(&ra));
    if let Some(pw) = p.attr(attr::USER_PASSWORD) {
        if let Ok(clear) = radius::decrypt_user_password(pw, SECRET, &ra) {
            assert!(clear.len() <= radius::MAX_PAP_PASSWORD_LEN);
        }
    }
    let attrs = AcceptAttrs {
        framed_ip: Some(Ipv4Addr::new(10, 50, 0, 2)),
        class: p.attr(attr::CLASS).map(<[u8]>::to_vec),
        framed_ipv6_prefix: Some(([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 64)),
        ..AcceptAttrs::default()
    };
    let replies = [
        radius::access_accept(&p, SECRET, &attrs),
        radius::access_reject(&p, SECRET),
        radius::accounting_response(&p, SECRET),
    ];
    for r in replies.into_iter().flatten() {
        let q = Packet::parse(&r).expect("a reply we built parses");
        assert!(radius::verify_response(&q, &ra, SECRET));
        assert_ne!(
            radius::check_message_authenticator(&q, SECRET, Some(&ra)),
            MessageAuth::Invalid
        );
    }
}

/// RADIUS: the codec on every datagram, then the `Manager` (users,
/// addresses, sessions, duplicate cache, timers) over the sequence, as the
/// engine drives it. `ctl` bit 4 picks one of two NAS source keys, bit 5
/// marks the NAS as requiring a Message-Authenticator. Invariants: a reply
/// exactly when the disposition says one is sent; a fresh reply parses and
/// carries a valid Response Authenticator; one counter per datagram.
pub fn radius(data: &[u8]) {
    let mut mgr = manager();
    let mut now = 0u64;
    let mut handled = 0u64;
    for (ctl, bytes) in records(data) {
        now += u64::from((ctl >> 1) & 7) * 900;
        let bytes = if ctl & 1 != 0 {
            resign(bytes)
        } else {
            bytes.to_vec()
        };
        codec(&bytes);
        let client = RadiusClient {
            secret: SECRET.to_vec(),
            require_message_authenticator: ctl & 0x20 != 0,
        };
        let out = mgr.handle_radius((ctl >> 4) & 1, &client, &bytes, now);
        handled += 1;
        let replies = matches!(
            out.disposition,
            Disposition::Accepted
                | Disposition::Rejected(_)
                | Disposition::Accounted(_)
                | Disposition::Duplicate
        );
        assert_eq!(out.reply.is_some(), replies, "{:?}", out.disposition);
        if let (Some(r), false) = (&out.reply, out.disposition == Disposition::Duplicate) {
            let req = Packet::parse(&bytes).expect("answered, so it parsed");
            let q = Packet::parse(r).expect("a reply we built parses");
            assert_eq!(q.identifier(), req.identifier());
            assert!(radius::verify_response(&q, &req.authenticator(), SECRET));
        }
        let mut notes = out.notifications;
        notes.extend(mgr.handle_timeout(now));
        drain(&mut mgr, notes);
        assert_eq!(total(mgr.counters()), handled);
    }
    // Every timer fires in the end without a panic.
    for _ in 0..8 {
        now += 10_000;
        let n = mgr.handle_timeout(now);
        drain(&mut mgr, n);
    }
}

/// What the engine does with notifications: the session log is "written"
/// at once (④).
fn drain(mgr: &mut Manager<u8>, mut notes: Vec<Notification>) {
    let mut i = 0;
    while i < notes.len() {
        if let Notification::WriteSessionLog(rec) = &notes[i] {
            let (dev, id) = (rec.session.device_id.clone(), rec.session.session_id);
            if let Ok(more) = mgr.session_log_written(&dev, id) {
                notes.extend(more);
            }
        }
        i += 1;
    }
}

/// One per datagram: every counter but `hold_expired` (a timer's).
fn total(c: &crate::mgmt::MgmtCounters) -> u64 {
    c.malformed
        + c.unsupported_code
        + c.bad_authenticator
        + c.missing_message_authenticator
        + c.duplicate
        + c.access_accept
        + c.access_reject()
        + c.acct_entered
        + c.acct_started
        + c.acct_restarted
        + c.acct_interim
        + c.acct_stopped
        + c.acct_closed
        + c.acct_nas_on_off
        + c.acct_no_device
        + c.acct_no_address
        + c.acct_unknown_session
        + c.acct_session_mismatch
        + c.acct_ignored
        + c.acct_unknown_status_type
        + c.acct_deferred
}

/// A user's life: Access-Request (with and without Message-Authenticator,
/// wrong password), Accounting Start / Interim / Stop (idle) / Start / Stop,
/// Accounting-On, Status-Server; each as a record signed at run time.
pub(super) fn radius_seeds() -> Vec<Vec<u8>> {
    let access = |id: u8, password: &[u8], ma: bool, extra: &[(u8, &[u8])]| {
        let ra = [id; 16];
        let mut b = Builder::new(Code::AccessRequest, id);
        b.attr_str(attr::USER_NAME, USER).unwrap();
        b.user_password(password, SECRET, &ra).unwrap();
        b.attr_str(attr::CALLING_STATION_ID, DEVICE).unwrap();
        b.attr_ipv4(attr::NAS_IP_ADDRESS, Ipv4Addr::new(192, 0, 2, 1))
            .unwrap();
        for (t, v) in extra {
            b.attr(*t, v).unwrap();
        }
        if ma {
            b.message_authenticator().unwrap();
        }
        b.finish_access_request(&ra, SECRET)
    };
    let acct = |id: u8, status: u32, extra: &[(u8, &[u8])]| {
        let mut b = Builder::new(Code::AccountingRequest, id);
        b.attr_u32(attr::ACCT_STATUS_TYPE, status).unwrap();
        b.attr_str(attr::ACCT_SESSION_ID, "s1").unwrap();
        b.attr_str(attr::CALLING_STATION_ID, DEVICE).unwrap();
        b.attr_ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 50, 0, 2))
            .unwrap();
        for (t, v) in extra {
            b.attr(*t, v).unwrap();
        }
        b.finish_accounting_request(SECRET)
    };
    let usage: &[(u8, &[u8])] = &[
        (attr::ACCT_INPUT_OCTETS, &[0, 0, 1, 0]),
        (attr::ACCT_OUTPUT_GIGAWORDS, &[0, 0, 0, 1]),
        (attr::ACCT_SESSION_TIME, &[0, 0, 0, 9]),
    ];
    let idle = terminate_cause::IDLE_TIMEOUT.to_be_bytes();
    let user = terminate_cause::USER_REQUEST.to_be_bytes();
    let mut life = Vec::new();
    for (ctl, p) in [
        (0, access(1, PASSWORD, false, &[(attr::PROXY_STATE, b"ps")])),
        (2, access(1, PASSWORD, false, &[(attr::PROXY_STATE, b"ps")])),
        (0x20, access(2, PASSWORD, true, &[])),
        (0, access(3, b"nope", true, &[])),
        (2, acct(4, acct_status::START, &[])),
        (2, acct(5, acct_status::INTERIM_UPDATE, usage)),
        (
            4,
            acct(6, acct_status::STOP, &[(attr::ACCT_TERMINATE_CAUSE, &idle)]),
        ),
        (0, acct(7, acct_status::START, &[])),
        (
            8,
            acct(8, acct_status::STOP, &[(attr::ACCT_TERMINATE_CAUSE, &user)]),
        ),
        (0, acct(9, acct_status::START, &[])),
        (0x10, acct(10, acct_status::ACCOUNTING_ON, &[])),
        (
            0,
            Builder::new(Code::StatusServer, 11).finish_access_request(&[0; 16], SECRET),
        ),
    ] {
        life.extend(record(ctl, &p));
    }
    let mut resigned = Vec::new();
    for (ctl, p) in [
        (1, acct(1, acct_status::INTERIM_UPDATE, usage)),
        (1, access(2, PASSWORD, true, &[(attr::EAP_MESSAGE, b"x")])),
        (7, acct(3, acct_status::STOP, &[])),
    ] {
        resigned.extend(record(ctl, &p));
    }
    vec![life, resigned]
}

/// The control protocol's receiving end over a sequence of datagrams:
/// `ctl` bit 0 signs the record's bytes as a body (so JSON decoding,
/// replay, age and gateway checks and table assembly are reached), else
/// they are the whole datagram. Invariants: every datagram is accepted or
/// refused exactly once; an accepted one is version 1 for our gateway;
/// an assembled table holds only entries of accepted parts.
pub fn ctlproto(data: &[u8]) {
    let mut r = Receiver::new(SECRET, "gw1");
    let mut now = 1_000i64;
    let mut calls = 0u64;
    let mut entries_in = 0usize;
    for (ctl, bytes) in records(data) {
        now += i64::from((ctl >> 1) & 7) * 10_000;
        let datagram = if ctl & 1 != 0 {
            ctlproto::sign(bytes, SECRET)
        } else {
            bytes.to_vec()
        };
        let res = r.accept(&datagram, now);
        calls += 1;
        if let Ok(m) = res {
            assert_eq!((m.v, m.gateway.as_str()), (1, "gw1"));
            entries_in += m.sessions.len();
            if let Some(t) = r.assemble(m) {
                assert!(t.len() <= entries_in);
                entries_in = 0;
            }
        }
        assert_eq!(r.accepted + r.rejected.values().sum::<u64>(), calls);
    }
}

/// Signed bodies (a table in one part, in two parts, an empty one, a
/// replay, another gateway's) and one whole datagram.
pub(super) fn ctlproto_seeds() -> Vec<Vec<u8>> {
    let entry = |i: u8| SessionEntry {
        addr: Ipv4Addr::new(10, 50, 0, i),
        device: format!("0901{i}"),
        device_key: 901 + u64::from(i),
        active: i.is_multiple_of(2),
        allowed: 2,
        prefix6: (i == 3).then(|| "2001:db8:50::".parse().unwrap()),
        entry_mac: (i == 1).then(|| "02:00:00:00:1b:01".into()),
    };
    let msg = |seq: u64, table: u64, part: u32, parts: u32, sessions: Vec<SessionEntry>| Message {
        v: 1,
        epoch: 7,
        seq,
        ts: 1_000,
        gateway: "gw1".into(),
        event: "session_start 09012 10.50.0.2".into(),
        table,
        part,
        parts,
        sessions,
    };
    let body = |m: &Message| serde_json::to_vec(m).unwrap();
    let mut parts = Vec::new();
    parts.extend(record(1, &body(&msg(1, 1, 0, 1, vec![entry(2), entry(3)]))));
    parts.extend(record(1, &body(&msg(2, 2, 1, 2, vec![entry(4)]))));
    parts.extend(record(1, &body(&msg(3, 2, 0, 2, vec![entry(5)]))));
    parts.extend(record(1, &body(&msg(3, 2, 0, 2, vec![entry(5)]))));
    parts.extend(record(1, &body(&msg(4, 4, 0, 1, vec![]))));
    parts.extend(record(
        1,
        &body(&Message {
            gateway: "gw2".into(),
            ..msg(5, 5, 0, 1, vec![entry(6)])
        }),
    ));
    vec![
        parts,
        record(
            0,
            &ctlproto::encode(&msg(1, 1, 0, 1, vec![entry(2)]), SECRET),
        ),
    ]
}
