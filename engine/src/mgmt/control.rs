//! The control socket: how `pgw stats` (and the other operator commands)
//! read a running instance.
//!
//! Protocol: a Unix stream socket; the client writes one request line
//! (`stats`), the server answers with one JSON document and closes. The
//! socket file is created mode 0600 (root only: it reveals subscriber data
//! once the gateway roles run).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runtime::stats::Report;

/// Bind the control socket, replacing a stale file (one nobody listens on).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{}: another pgw instance is listening there (instance names must differ)",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Answer every pending connection on `l` with `answer(request)`.
pub fn serve_pending(l: &UnixListener, mut answer: impl FnMut(&str) -> String) {
    while let Ok((mut s, _)) = l.accept() {
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
        let mut line = String::new();
        if BufReader::new(&mut s).read_line(&mut line).is_err() {
            continue;
        }
        let reply = answer(line.trim());
        let _ = s.write_all(reply.as_bytes());
    }
}

/// Send `request` to the instance listening on `path`; its answer.
pub fn request(path: &Path, request: &str) -> Result<String, String> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach a running pgw at {}: {e} (is it running? pass --socket or --profile)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("{request}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Fetch and decode a stats report.
pub fn fetch_stats(path: &Path) -> Result<Report, String> {
    let text = request(path, "stats")?;
    serde_json::from_str(&text).map_err(|e| format!("bad answer from {}: {e}", path.display()))
}

/// Default socket path of an instance name.
pub fn default_socket(instance: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/pgw-{instance}.sock"))
}
