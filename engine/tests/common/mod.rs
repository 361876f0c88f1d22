//! Helpers for tests that run `pgw` between real Linux TCP stacks in network
//! namespaces. Everything they create (namespaces, veths, processes) is
//! owned by a guard and removed on drop, pass or fail. Addresses are used
//! only inside the namespaces the guard creates.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Run a command; panic with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    if !out.status.success() {
        panic!(
            "command failed: {cmd}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command; its success.
pub fn sh_ok(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Wait until `f` holds, or panic after `timeout` naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A test that cannot run here: under `CI=true` it fails with `why` (CI
/// installs every tool and runs as root, so a missing one is a fault, not a
/// reason to pass); elsewhere it says SKIP and is counted by
/// `scripts/test.sh` (the line goes to `target/tmp/pgw-skipped.log`).
pub fn cannot_run(why: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "cannot run: {why} (CI=true: a test may not skip; scripts/setup.sh installs the tools)"
        );
    }
    eprintln!("SKIP: {why}");
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pgw-skipped.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        use std::io::Write;
        let name = std::thread::current().name().unwrap_or("?").to_string();
        let _ = writeln!(f, "{name}: {why}");
    }
    false
}

/// Whether the test can create namespaces (root + iproute2); see
/// [`cannot_run`] for what happens when it cannot.
pub fn can_netns() -> bool {
    if is_root() && sh_ok("ip netns list") {
        return true;
    }
    cannot_run("needs root and iproute2 (network namespaces)")
}

/// Whether every command in `tools` is installed; see [`cannot_run`].
pub fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !sh_ok(&format!("command -v {t}")))
        .collect();
    missing.is_empty()
        || cannot_run(&format!(
            "{} not installed (scripts/setup.sh installs it)",
            missing.join(", ")
        ))
}

fn is_root() -> bool {
    sh("id -u").trim() == "0"
}

/// Network namespaces and processes owned by one test.
pub struct Lab {
    pub tag: String,
    pub netns: Vec<String>,
    pub links: Vec<String>,
    pub children: Vec<(String, Child)>,
    pub dir: PathBuf,
}

impl Lab {
    pub fn new(prefix: &str) -> Lab {
        let tag = format!("{prefix}{}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("pgw-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Lab {
            tag,
            netns: vec![],
            links: vec![],
            children: vec![],
            dir,
        }
    }

    pub fn ns(&mut self, name: &str) -> String {
        let full = format!("{}-{}", self.tag, name);
        let _ = sh_ok(&format!("ip netns del {full}"));
        sh(&format!("ip netns add {full}"));
        sh(&format!("ip -n {full} link set lo up"));
        self.netns.push(full.clone());
        full
    }

    /// Start a long-running process; it is killed (by PID) on drop.
    pub fn spawn(&mut self, label: &str, cmd: &str) -> u32 {
        let log = self.dir.join(format!("{label}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {cmd}"))
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.children.push((label.to_string(), child));
        pid
    }

    pub fn log(&self, label: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{label}.log"))).unwrap_or_default()
    }

    /// Send SIGINT to a child and wait for it; its exit code.
    pub fn interrupt(&mut self, label: &str, timeout: Duration) -> Option<i32> {
        let i = self.children.iter().position(|(l, _)| l == label)?;
        let (_, mut c) = self.children.remove(i);
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(c.id().to_string())
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            if start.elapsed() > timeout {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self, label: &str) -> bool {
        self.children
            .iter_mut()
            .find(|(l, _)| l == label)
            .map(|(_, c)| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut().rev() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(c.id().to_string())
                .status();
        }
        let start = Instant::now();
        for (_, c) in self.children.iter_mut().rev() {
            while matches!(c.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for (label, _) in &self.children {
                let log = self.log(label);
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("----- {label} (last lines) -----");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        for l in &self.links {
            let _ = sh_ok(&format!("ip link del {l}"));
        }
        for n in &self.netns {
            let _ = sh_ok(&format!("ip netns del {n}"));
        }
        if std::env::var_os("PGW_KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The `pgw` binary built for this test run.
pub fn pgw_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pgw"))
}

/// sha256 of a file.
pub fn sha256(path: &Path) -> String {
    sh(&format!("sha256sum {}", path.display()))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

impl Lab {
    /// Write `profile` as `<label>.toml`, start `pgw run` on it, and wait
    /// until its control socket answers and every tap named in `taps` is UP
    /// in the root namespace (taps must be moved only after that).
    pub fn start_pgw(&mut self, label: &str, profile: &str, sock: &Path, taps: &[&str]) {
        let p = self.write(&format!("{label}.toml"), profile);
        let out = Command::new(pgw_bin())
            .arg("check-config")
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.spawn(
            label,
            &format!("{} run --profile {}", pgw_bin().display(), p.display()),
        );
        let start = Instant::now();
        while !(sock.exists()
            && taps
                .iter()
                .all(|t| sh_ok(&format!("ip link show {t} | grep -q ',UP'"))))
        {
            if start.elapsed() > Duration::from_secs(30) || !self.is_running(label) {
                panic!("{label} did not start:\n{}", self.log(label));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A `pgw stats --json` report of the instance at `sock`.
pub fn stats_json(sock: &Path) -> serde_json::Value {
    let out = sh(&format!(
        "{} stats --socket {} --json",
        pgw_bin().display(),
        sock.display()
    ));
    serde_json::from_str(&out).unwrap()
}

/// An event counter summed over the workers of a stats report.
pub fn event(r: &serde_json::Value, name: &str) -> u64 {
    r["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["events"].as_array().unwrap().iter())
        .filter(|e| e[0] == name)
        .map(|e| e[1].as_u64().unwrap())
        .sum()
}

/// A drop counter summed over the workers of a stats report.
pub fn drops(r: &serde_json::Value, reason: &str) -> u64 {
    r["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["drops"].as_array().unwrap().iter())
        .filter(|e| e[0] == reason)
        .map(|e| e[1].as_u64().unwrap())
        .sum()
}

/// The output of `nfdump ARGS -r FILE` for every file a stopped `nfcapd -w
/// dir` wrote, oldest first. nfcapd closes a file at each turn of its `-t`
/// interval besides the one it writes on the way out, so a run that crosses
/// a turn has its records in either.
#[allow(dead_code)]
pub fn nfdump_each(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let f = p.file_name().unwrap().to_string_lossy().into_owned();
            f.starts_with("nfcapd.") && !f.contains("current")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no nfcapd file in {}", dir.display());
    files
        .iter()
        .map(|f| {
            let out = Command::new("nfdump")
                .args(args)
                .arg("-r")
                .arg(f)
                .env("TZ", "UTC")
                .output()
                .expect("nfdump");
            assert!(
                out.status.success(),
                "nfdump -r {}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

/// Every record (`nfdump -N -o json`) in the files of a stopped nfcapd, and
/// the text they came from for messages.
#[allow(dead_code)]
pub fn nfdump_records(dir: &Path) -> (Vec<serde_json::Value>, String) {
    let mut records = Vec::new();
    let mut text = String::new();
    for json in nfdump_each(dir, &["-N", "-o", "json"]) {
        text.push_str(&json);
        // A file without records prints `[ No matching flows ]`: not JSON.
        if json.contains("No matching flows") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        records.extend(v.as_array().cloned().unwrap_or_default());
    }
    (records, text)
}
