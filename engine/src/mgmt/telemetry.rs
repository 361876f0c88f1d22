//! pgw's commands in DPDK's telemetry (`dpdk-telemetry.py -f pgw-NAME`):
//! `/pgw/stats`, `/pgw/runtime`, `/pgw/sessions`, `/pgw/servers`,
//! `/pgw/accounting`, `/pgw/neighbors`, beside DPDK's own (`/ethdev/...`).
//!
//! DPDK answers them on its telemetry thread, which must not touch the
//! workers. The callback hands the request to the management thread
//! through a small bounded channel and waits (at most [`WAIT`]) for the
//! same JSON the control socket answers; it then turns that JSON into
//! telemetry data here, on the telemetry thread. Only read-only requests
//! are exposed. DPDK 22.11 nests containers one level deep and cuts strings
//! at 127 bytes, and takes only letters, digits, `_` and `/` in names, so
//! deeper JSON is flattened into keys joined by `/`:
//! `{"ports": [{"name": "p0", "ipackets": 5}]}` becomes
//! `{"ports/0": {"name": "p0", "ipackets": 5}}`, and `[name, count]` pairs
//! become dicts (`"drops": {"no_session": 3}`); other characters of a name
//! become `_`.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use serde_json::Value;

use crate::runtime::dpdk::{TelAnswer, TelItem, TelScalar};

/// How long the telemetry thread waits for the management thread.
const WAIT: Duration = Duration::from_secs(3);
/// Requests waiting for the management thread (clients beyond are told busy).
const QUEUE: usize = 8;

/// Telemetry command, the control request it forwards, its help.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "/pgw/stats",
        "stats",
        "pgw counters: rx, tx, drops by reason, ports, workers. No parameters",
    ),
    (
        "/pgw/runtime",
        "runtime",
        "pgw runtime accounting per worker and stage (cycles per packet). No parameters",
    ),
    (
        "/pgw/sessions",
        "sessions",
        "pgw RADIUS sessions and session log (management instance). No parameters",
    ),
    (
        "/pgw/servers",
        "servers",
        "pgw server groups, gateways and health. No parameters",
    ),
    (
        "/pgw/accounting",
        "accounting",
        "pgw recent accounting records. No parameters",
    ),
    (
        "/pgw/neighbors",
        "neighbors",
        "pgw learned next hops (ARP). No parameters",
    ),
];

/// A request from the telemetry thread: the control request, and where to
/// put its JSON answer.
pub struct Request {
    pub control: &'static str,
    pub reply: SyncSender<String>,
}

/// Register pgw's commands; the management thread answers what comes out
/// of the returned receiver (with `State::answer`).
pub fn register() -> Result<Receiver<Request>, String> {
    let (tx, rx) = sync_channel::<Request>(QUEUE);
    let cmds: Vec<(&str, &str)> = COMMANDS.iter().map(|(c, _, h)| (*c, *h)).collect();
    crate::runtime::dpdk::telemetry_register(&cmds, move |cmd, _params| {
        let Some(&(_, control, _)) = COMMANDS.iter().find(|(c, _, _)| *c == cmd) else {
            return error(&format!("unknown command {cmd}"));
        };
        let (reply, answer) = sync_channel(1);
        match tx.try_send(Request { control, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return error("busy: too many telemetry requests waiting")
            }
            Err(TrySendError::Disconnected(_)) => return error("pgw is stopping"),
        }
        match answer.recv_timeout(WAIT) {
            Ok(json) => match serde_json::from_str::<Value>(&json) {
                Ok(v) if control == "stats" => to_answer(&with_totals(v)),
                Ok(v) => to_answer(&v),
                Err(e) => error(&format!("bad answer from the management thread: {e}")),
            },
            Err(_) => error("the management thread did not answer in 3 s"),
        }
    })
    .map_err(|e| format!("telemetry: {e}"))?;
    Ok(rx)
}

/// Unregister the handler (the commands then answer an error).
pub fn stop() {
    crate::runtime::dpdk::telemetry_stop();
}

fn error(msg: &str) -> TelAnswer {
    vec![("error".into(), TelItem::Scalar(TelScalar::Str(msg.into())))]
}

/// A stats report with the instance's totals added: `rx`, `tx`, `drops`
/// (summed over workers) and `drops_by_reason`.
pub fn with_totals(report: Value) -> Value {
    let Value::Object(map) = report else {
        return report;
    };
    let workers = map
        .get("workers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let sum = |key: &str| -> u64 { workers.iter().filter_map(|w| w.get(key)?.as_u64()).sum() };
    let mut reasons: Vec<(String, u64)> = Vec::new();
    for w in &workers {
        for pair in w
            .get("drops")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(n)) = (
                pair.get(0).and_then(Value::as_str),
                pair.get(1).and_then(Value::as_u64),
            ) else {
                continue;
            };
            match reasons.iter_mut().find(|(r, _)| r == name) {
                Some((_, total)) => *total += n,
                None => reasons.push((name.to_string(), n)),
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("rx".into(), sum("rx").into());
    out.insert("tx".into(), sum("tx").into());
    out.insert(
        "drops".into(),
        reasons.iter().map(|(_, n)| n).sum::<u64>().into(),
    );
    out.insert(
        "drops_by_reason".into(),
        Value::Object(reasons.into_iter().map(|(r, n)| (r, n.into())).collect()),
    );
    out.extend(map);
    Value::Object(out)
}

fn scalar(v: &Value) -> TelScalar {
    match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => TelScalar::U64(u),
            (None, Some(i)) if i32::try_from(i).is_ok() => TelScalar::Int(i as i32),
            _ => TelScalar::Str(n.to_string()),
        },
        Value::String(s) => TelScalar::Str(s.clone()),
        Value::Bool(b) => TelScalar::Str(b.to_string()),
        Value::Null => TelScalar::Str("null".into()),
        other => TelScalar::Str(other.to_string()),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// `[name, value]`
fn is_pair(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.len() == 2 && a[0].is_string() && is_scalar(&a[1]))
}

/// Every value under `v`, named by its path below `prefix` (joined by `/`).
fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, TelScalar)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}/{k}")
        }
    };
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| leaves(&join(k), x, out)),
        Value::Array(a) if a.iter().all(is_pair) => {
            for p in a {
                leaves(&join(p[0].as_str().unwrap_or_default()), &p[1], out);
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(&join(&i.to_string()), x, out)),
        x => out.push((prefix.to_string(), scalar(x))),
    }
}

/// A control answer as telemetry data (module doc: the flattening).
pub fn to_answer(v: &Value) -> TelAnswer {
    let Value::Object(map) = v else {
        return vec![("value".into(), TelItem::Scalar(scalar(v)))];
    };
    let mut out = TelAnswer::new();
    for (k, x) in map {
        match x {
            x if is_scalar(x) => out.push((k.clone(), TelItem::Scalar(scalar(x)))),
            Value::Array(a) if a.iter().all(is_scalar) => {
                out.push((k.clone(), TelItem::Array(a.iter().map(scalar).collect())))
            }
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
                for (i, e) in a.iter().enumerate() {
                    let mut l = Vec::new();
                    leaves("", e, &mut l);
                    out.push((format!("{k}/{i}"), TelItem::Dict(l)));
                }
            }
            x => {
                let mut l = Vec::new();
                leaves("", x, &mut l);
                out.push((k.clone(), TelItem::Dict(l)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stats_get_totals_and_flat_containers() {
        let report = json!({
            "instance": "gw1",
            "ports": [{"name": "p0", "ipackets": 5, "link_up": true}],
            "workers": [
                {"rx": 10, "tx": 8, "drops": [["no_session", 2], ["ttl", 0]], "port_rx": [6, 4]},
                {"rx": 1, "tx": 1, "drops": [["no_session", 1], ["ttl", 1]], "port_rx": [1, 0]},
            ],
        });
        let a = to_answer(&with_totals(report));
        let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("rx"), Some(TelItem::Scalar(TelScalar::U64(11))));
        assert_eq!(get("tx"), Some(TelItem::Scalar(TelScalar::U64(9))));
        assert_eq!(get("drops"), Some(TelItem::Scalar(TelScalar::U64(4))));
        assert_eq!(
            get("drops_by_reason"),
            Some(TelItem::Dict(vec![
                ("no_session".into(), TelScalar::U64(3)),
                ("ttl".into(), TelScalar::U64(1)),
            ]))
        );
        assert_eq!(
            get("instance"),
            Some(TelItem::Scalar(TelScalar::Str("gw1".into())))
        );
        assert_eq!(
            get("ports/0"),
            Some(TelItem::Dict(vec![
                ("ipackets".into(), TelScalar::U64(5)),
                ("link_up".into(), TelScalar::Str("true".into())),
                ("name".into(), TelScalar::Str("p0".into())),
            ]))
        );
        let Some(TelItem::Dict(w1)) = get("workers/1") else {
            panic!("workers/1 is not a dict: {a:?}");
        };
        assert!(w1.contains(&("drops/ttl".into(), TelScalar::U64(1))));
        assert!(w1.contains(&("port_rx/0".into(), TelScalar::U64(1))));
    }

    #[test]
    fn values_map_to_telemetry_types() {
        let a = to_answer(
            &json!({"n": -3, "big": -5_000_000_000i64, "f": 1.5, "none": null, "list": [1, 2], "empty": []}),
        );
        let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("n"), Some(TelItem::Scalar(TelScalar::Int(-3))));
        assert_eq!(
            get("big"),
            Some(TelItem::Scalar(TelScalar::Str("-5000000000".into())))
        );
        assert_eq!(
            get("f"),
            Some(TelItem::Scalar(TelScalar::Str("1.5".into())))
        );
        assert_eq!(
            get("none"),
            Some(TelItem::Scalar(TelScalar::Str("null".into())))
        );
        assert_eq!(
            get("list"),
            Some(TelItem::Array(vec![TelScalar::U64(1), TelScalar::U64(2)]))
        );
        assert_eq!(get("empty"), Some(TelItem::Array(vec![])));
        assert_eq!(
            to_answer(&json!("x")),
            vec![("value".into(), TelItem::Scalar(TelScalar::Str("x".into())))]
        );
    }
}
