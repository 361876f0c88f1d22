//! Logging of `pgw run` from the profile's `[log]` (or `RUST_LOG`): the
//! `tracing` ecosystem, events with levels and `key=value` fields, to
//! stderr (journald under systemd, which stamps the time itself: then
//! pgw's lines carry none). Never on the per-packet path: workers count,
//! the management thread logs changes and, for repeated events, one line
//! per interval with how many there were.

use tracing_subscriber::EnvFilter;

use crate::config::LogCfg;

/// The filter of a `[log] level` (a level or `RUST_LOG` directives).
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    if level.trim().is_empty() {
        return Err(
            "empty: a level (error, warn, info, debug, trace) or RUST_LOG directives".into(),
        );
    }
    EnvFilter::builder().parse(level).map_err(|e| {
        format!("{e} (a level: error, warn, info, debug, trace; or RUST_LOG directives)")
    })
}

/// Install the process's logger: `RUST_LOG` if set, else `cfg.level`.
/// A second call (tests) keeps the first logger.
pub fn init(cfg: &LogCfg) {
    let f = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => filter(&env).unwrap_or_else(|e| {
            eprintln!("pgw: RUST_LOG {env:?}: {e}; using [log] level");
            filter(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"))
        }),
        _ => filter(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let b = tracing_subscriber::fmt()
        .with_env_filter(f)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match (cfg.format.as_str(), journald) {
        ("json", _) => b.json().try_init(),
        (_, true) => b.without_time().try_init(),
        _ => b.try_init(),
    };
}
