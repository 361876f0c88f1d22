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

/// Run a command; its exit status and output, whatever they are.
pub fn sh_output(cmd: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(cmd).output().expect("sh")
}

/// Run a command; its success and what it printed (stdout, then stderr).
pub fn sh_text(cmd: &str) -> (bool, String) {
    let out = sh_output(cmd);
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.into_owned())
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
pub fn wait_for(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    wait_for_or(what, timeout, f, String::new);
}

/// [`wait_for`], with `why()` (what was seen instead) in the panic.
pub fn wait_for_or(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> bool,
    why: impl FnOnce() -> String,
) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", why());
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
    let name = std::thread::current().name().unwrap_or("?").to_string();
    append_tmp_log("pgw-skipped.log", &format!("{name}: {why}"));
    false
}

/// Append the line `text` to `file` in the target's tmp directory (logs
/// that outlive the test's own output, e.g. for `scripts/stress-e2e.sh`).
fn append_tmp_log(file: &str, text: &str) {
    use std::io::Write;
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{text}");
    }
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

    /// A lab for a test that needs network namespaces and every command in
    /// `tools`: `None` (the test returns) where it cannot run, see
    /// [`can_netns`] and [`have_tools`].
    pub fn netns(prefix: &str, tools: &[&str]) -> Option<Lab> {
        (can_netns() && have_tools(tools)).then(|| Lab::new(prefix))
    }

    /// A network namespace `{tag}-{name}` with `lo` up, deleted on drop.
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
        self.signal(label, "INT");
        self.wait_exit(label, timeout)
    }

    /// Send signal `sig` (`TERM`, `HUP`, ...) to a child.
    pub fn signal(&self, label: &str, sig: &str) {
        let (_, c) = self
            .children
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no process {label}"));
        assert!(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(c.id().to_string())
            .status()
            .unwrap()
            .success());
    }

    /// Wait up to `timeout` for a child to exit (killed after that): its
    /// exit code, `None` if it had to be killed or no child has that label.
    pub fn wait_exit(&mut self, label: &str, timeout: Duration) -> Option<i32> {
        let i = self.children.iter().position(|(l, _)| l == label)?;
        let (_, mut c) = self.children.remove(i);
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            if start.elapsed() > timeout {
                // (stress-e2e saw pgw log its last line and not exit for
                // over 30 s: where each of its threads waits, for the log)
                eprintln!(
                    "{label} (pid {}) still running after {timeout:?}; its threads:\n{}",
                    c.id(),
                    threads_of(c.id())
                );
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

/// How long the kernel may take to end a pgw that has finished its own
/// shutdown or waits in the kernel, see [`Lab::stop_pgw_within`].
pub const TEARDOWN_GRACE: Duration = Duration::from_secs(90);

/// Append `text` to `pgw-slow-exits.log` in the target's tmp directory.
pub fn note_slow_exit(text: &str) {
    eprintln!("{text}");
    append_tmp_log("pgw-slow-exits.log", text);
}

fn read_proc(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The state letter (`R`, `S`, `D`, …) and kernel wait channel of task
/// directory `d` (`/proc/PID` or `/proc/PID/task/TID`).
fn task_state(d: &Path) -> (String, String) {
    let stat = read_proc(&d.join("stat"));
    // (the state follows the parenthesised name)
    let state = stat.rsplit_once(") ").map(|(_, r)| &r[..1]).unwrap_or("?");
    (
        state.to_string(),
        read_proc(&d.join("wchan")).trim().to_string(),
    )
}

/// Each thread of process `pid`: its name, state, kernel wait channel and
/// kernel stack (`/proc/PID/task/TID/…`; the stack needs root).
pub fn threads_of(pid: u32) -> String {
    let mut out = String::new();
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    for t in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
        let d = t.path();
        let (state, wchan) = task_state(&d);
        out += &format!(
            "  {} {} state {state} wchan {wchan}\n{}",
            t.file_name().to_string_lossy(),
            read_proc(&d.join("comm")).trim(),
            read_proc(&d.join("stack"))
        );
    }
    out
}

/// The kernel wait channel of process `pid`'s main thread if it is in an
/// uninterruptible wait in the kernel (state `D`), as when closing a tap
/// unregisters its device: `netdev_run_todo` waits in `rcu_barrier`.
pub fn in_kernel_wait(pid: u32) -> Option<String> {
    let (state, wchan) = task_state(&Path::new("/proc").join(pid.to_string()));
    (state == "D").then_some(wchan)
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
        self.start_pgw_env(label, profile, sock, taps, "")
    }

    /// [`Lab::start_pgw`] with environment variables `env` (`K=V K2=V2`).
    pub fn start_pgw_env(
        &mut self,
        label: &str,
        profile: &str,
        sock: &Path,
        taps: &[&str],
        env: &str,
    ) {
        let p = self.write(&format!("{label}.toml"), profile);
        let out = Command::new(pgw_bin())
            .arg("check-config")
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.spawn(
            label,
            &format!(
                "env {env} {} run --profile {}",
                pgw_bin().display(),
                p.display()
            ),
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

    /// [`Lab::start_pgw`] on a [`Profile`] (written as `<label>.toml`): its
    /// control socket.
    pub fn run_pgw(&mut self, label: &str, profile: &Profile) -> PathBuf {
        let taps: Vec<&str> = profile.taps.iter().map(String::as_str).collect();
        self.start_pgw(label, &profile.to_string(), &profile.sock, &taps);
        profile.sock.clone()
    }

    /// The [`Profile`] of a gateway box named by the lab's tag in `role`,
    /// its control socket `pgw.sock` in the lab's directory: port `access`
    /// on tap `{tag}a` with the address `access_cidr` (IPv4 or IPv6), port
    /// `servers` on tap `{tag}b`; see [`Lab::subscriber`], [`Lab::servers`].
    pub fn profile(&self, role: &str, access_cidr: &str) -> Profile {
        Profile::new(&self.tag, role, &self.dir.join("pgw.sock"))
            .tap("access", &format!("{}a", self.tag))
            .addr(access_cidr)
            .tap("servers", &format!("{}b", self.tag))
    }

    /// Namespace `sub` with the access tap of [`Lab::profile`] moved in,
    /// its addresses `cidrs`.
    pub fn subscriber(&mut self, cidrs: &[&str]) -> String {
        let ns = self.ns("sub");
        self.move_into(&format!("{}a", self.tag), &ns, cidrs);
        ns
    }

    /// Namespace `srv` with the server tap of [`Lab::profile`] moved in,
    /// its addresses `cidrs`.
    pub fn servers(&mut self, cidrs: &[&str]) -> String {
        let ns = self.ns("srv");
        self.move_into(&format!("{}b", self.tag), &ns, cidrs);
        ns
    }

    /// Both sides of a GW of [`Lab::profile`] at 10.50.0.1/24: the
    /// subscriber 10.50.0.2 with the VIPs 10.33.0.0/24 routed through the
    /// GW, and the servers with the addresses `servers`; (sub, srv).
    pub fn gw_sides(&mut self, servers: &[&str]) -> (String, String) {
        let sub = self.subscriber(&["10.50.0.2/24"]);
        self.route(&sub, "10.33.0.0/24", "10.50.0.1");
        (sub, self.servers(servers))
    }

    /// A GW of [`Lab::profile`] at 10.50.0.1/24 with `gw_keys` in its
    /// `[gw]`, the service `wap` (member wap1 on 10.80.0.11:8080) and a
    /// session allowed `wap` for each (address, device id) of `subs`.
    pub fn wap_gw(&self, gw_keys: &str, subs: &[(&str, u64)]) -> Profile {
        subs.iter().fold(
            self.profile("gw", "10.50.0.1/24")
                .with(&gw_section(gw_keys))
                .with(&wap(&[member("wap1", "10.80.0.11", 8080)])),
            |p, (ip, dev)| p.with(&gw_session(ip, *dev, &["wap"])),
        )
    }

    /// A GW of [`Lab::profile`] at 10.50.0.1/24 with `gw_keys` in its
    /// `[gw]`, one service `name` (id `id`) at `vip` on every port over
    /// the member `member` (a name and a port) on 10.80.0.21, and the
    /// session 10.50.0.2 (device 9015550101) allowed it.
    pub fn one_service_gw(
        &self,
        gw_keys: &str,
        (name, id): (&str, u32),
        member: (&str, u16),
        vip: &str,
    ) -> Profile {
        self.profile("gw", "10.50.0.1/24")
            .with(&gw_section(gw_keys))
            .with(&gw_service(
                name,
                id,
                &[self::member(member.0, "10.80.0.21", member.1)],
                vip,
                None,
            ))
            .with(&gw_session("10.50.0.2", 9015550101, &[name]))
    }

    /// A UDP server (process `echo`) in `ns` on `ip`:`port` (IPv4 or
    /// IPv6) that answers each datagram with its bytes, reversed when
    /// `reverse`; listening when this returns.
    pub fn udp_echo(&mut self, ns: &str, ip: &str, port: u16, reverse: bool) {
        let answer = if reverse { "d[::-1]" } else { "d" };
        let (family, listen) = if ip.contains(':') {
            ("AF_INET6", format!("[{ip}]:{port}"))
        } else {
            ("AF_INET", format!("{ip}:{port}"))
        };
        let script = self.write(
            "udp_echo.py",
            &format!(
                "import socket\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\n\
                 s.bind(('{ip}',{port}))\nwhile True:\n    d,a=s.recvfrom(65535)\n    s.sendto({answer},a)\n"
            ),
        );
        self.spawn(
            "echo",
            &format!("ip netns exec {ns} python3 {}", script.display()),
        );
        self.wait_listen(ns, "udp", &listen);
    }

    /// [`Lab::gw_sides`] of a [`Lab::wap_gw`] running at `sock`: wap1
    /// serving HTTP (process `http`), its MAC resolved by the GW; (sub, srv).
    pub fn wap_sides(&mut self, sock: &Path) -> (String, String) {
        let (sub, srv) = self.gw_sides(&["10.80.0.11/24"]);
        self.serve_http("http", &srv, "10.80.0.11");
        self.wait_neighbours(sock, &["10.80.0.11"]);
        (sub, srv)
    }

    /// Run `test` in a lab (tag `prefix`) where a [`Lab::wap_gw`] with
    /// `gw_keys` and the one session 10.50.0.2 runs as `gw` between
    /// [`Lab::wap_sides`]: on the lab, the GW's control socket and the
    /// subscriber's namespace; `gw` stopped (cleanly) after it. Nothing
    /// where the lab cannot run (no netns, no `python3` or `curl`).
    pub fn with_wap_gw(prefix: &str, gw_keys: &str, test: impl FnOnce(&mut Lab, &Path, &str)) {
        let subs = [("10.50.0.2", 9015550101)];
        Lab::with_wap_gw_of(prefix, &[], gw_keys, &subs, |lab, sock, sub, _| {
            test(lab, sock, sub)
        });
    }

    /// [`Lab::with_wap_gw`] with the sessions `subs` (address, device id),
    /// needing `tools` besides `python3` and `curl`; `test` also gets the
    /// servers' namespace.
    pub fn with_wap_gw_of(
        prefix: &str,
        tools: &[&str],
        gw_keys: &str,
        subs: &[(&str, u64)],
        test: impl FnOnce(&mut Lab, &Path, &str, &str),
    ) {
        let tools = [&["python3", "curl"], tools].concat();
        let Some(mut lab) = Lab::netns(prefix, &tools) else {
            return;
        };
        let profile = lab.wap_gw(gw_keys, subs);
        let sock = lab.run_pgw("gw", &profile);
        let (sub, srv) = lab.wap_sides(&sock);
        test(&mut lab, &sock, &sub, &srv);
        lab.stop_pgw("gw");
    }

    /// Stop the `pgw` labelled `label` with SIGINT; assert it exits with 0
    /// within 30 s (the claim is a clean exit), see
    /// [`Lab::stop_pgw_within`].
    pub fn stop_pgw(&mut self, label: &str) {
        self.stop_pgw_within(label, Duration::from_secs(30));
    }

    /// [`Lab::stop_pgw`] with a deadline of `timeout` for pgw's own
    /// shutdown. An instance still there at the deadline has
    /// [`TEARDOWN_GRACE`] more when the rest is the kernel's: it logged its
    /// last line (`exiting`: `main` returns; under stress-ng an instance
    /// was seen 30 s after that line), or its main thread waits in the
    /// kernel (state `D`; under stress-ng an instance closing its tap port
    /// waited over 30 s in `rcu_barrier` while the kernel's worker pool
    /// of that CPU was stalled 38 s). Such a late exit passes and is
    /// written, with each thread's state and kernel stack, to
    /// `pgw-slow-exits.log` in the target's tmp directory
    /// (`scripts/stress-e2e.sh` shows it). One running or sleeping in user
    /// space at the deadline (pgw's own hang) is killed and fails.
    pub fn stop_pgw_within(&mut self, label: &str, timeout: Duration) {
        self.signal(label, "INT");
        self.wait_pgw(label, timeout);
    }

    /// Wait for the `pgw` labelled `label` (signalled, or stopping on its
    /// own) to exit with 0: within `timeout`, or [`TEARDOWN_GRACE`] later
    /// if it logged `exiting` or waits in the kernel by then (see
    /// [`Lab::stop_pgw_within`]).
    pub fn wait_pgw(&mut self, label: &str, timeout: Duration) {
        let Some(i) = self.children.iter().position(|(l, _)| l == label) else {
            panic!("no process {label}");
        };
        let start = Instant::now();
        let mut noted = false;
        let code = loop {
            if let Ok(Some(s)) = self.children[i].1.try_wait() {
                break s.code();
            }
            let waited = start.elapsed();
            if waited > timeout && !noted {
                // Past the deadline, the grace is for the kernel only:
                // pgw's own shutdown is done, or pgw waits in the kernel.
                let pid = self.children[i].1.id();
                let why = if self
                    .log(label)
                    .lines()
                    .any(|l| l.trim_end().ends_with(" exiting"))
                {
                    Some("logged 'exiting'".to_string())
                } else {
                    in_kernel_wait(pid).map(|w| {
                        format!("waits in the kernel (state D, wchan {w}) before 'exiting'")
                    })
                };
                let Some(why) = why else {
                    eprintln!(
                        "{label} (pid {pid}) still running after {waited:?}; its threads:\n{}",
                        threads_of(pid)
                    );
                    let _ = self.children[i].1.kill();
                    let _ = self.children[i].1.wait();
                    break None;
                };
                note_slow_exit(&format!(
                    "{} {} {label} (pid {pid}): {why}, still running {waited:?} after the wait began; its threads:\n{}",
                    sh("date -u +%FT%T.%3NZ").trim(),
                    self.tag,
                    threads_of(pid)
                ));
                noted = true;
            }
            if waited > timeout + TEARDOWN_GRACE {
                eprintln!(
                    "{label} (pid {}) still running after {waited:?}; its threads:\n{}",
                    self.children[i].1.id(),
                    threads_of(self.children[i].1.id())
                );
                let _ = self.children[i].1.kill();
                let _ = self.children[i].1.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.children.remove(i);
        if noted {
            note_slow_exit(&format!(
                "{} {label}: ended {:?} after the wait began, exit code {code:?}",
                self.tag,
                start.elapsed()
            ));
        }
        assert_eq!(
            code,
            Some(0),
            "{label} did not stop cleanly:\n{}",
            self.log(label)
        );
    }

    /// Move `iface` (a tap pgw has brought up) into namespace `ns`, add each
    /// of `cidrs` to it (IPv6 ones without duplicate address detection) and
    /// bring it up.
    pub fn move_into(&self, iface: &str, ns: &str, cidrs: &[&str]) {
        sh(&format!("ip link set {iface} netns {ns}"));
        self.up(iface, ns, cidrs);
    }

    /// [`Lab::move_into`], the kernel side's MAC set to `mac` first.
    pub fn move_into_with_mac(&self, iface: &str, ns: &str, mac: &str, cidrs: &[&str]) {
        sh(&format!(
            "ip link set {iface} netns {ns} && ip -n {ns} link set {iface} address {mac}"
        ));
        self.up(iface, ns, cidrs);
    }

    fn up(&self, iface: &str, ns: &str, cidrs: &[&str]) {
        for c in cidrs {
            let nodad = if c.contains(':') { " nodad" } else { "" };
            sh(&format!("ip -n {ns} addr add {c} dev {iface}{nodad}"));
        }
        sh(&format!("ip -n {ns} link set {iface} up"));
    }

    /// Create bridge `br` in `ns` (its own MAC `mac` if given) and bring it up.
    pub fn bridge(&self, ns: &str, br: &str, mac: Option<&str>) {
        sh(&format!("ip -n {ns} link add {br} type bridge"));
        if let Some(mac) = mac {
            sh(&format!("ip -n {ns} link set {br} address {mac}"));
        }
        sh(&format!("ip -n {ns} link set {br} up"));
    }

    /// Move `iface` into `ns` and make it a port of bridge `br` there. A
    /// tap's kernel side starts with the DPDK port's own MAC, which a bridge
    /// would keep frames to for itself: it gets `mac` instead.
    pub fn enslave(&self, iface: &str, ns: &str, br: &str, mac: &str) {
        sh(&format!(
            "ip link set {iface} netns {ns} && ip -n {ns} link set {iface} address {mac}"
        ));
        sh(&format!(
            "ip -n {ns} link set {iface} master {br} && ip -n {ns} link set {iface} up"
        ));
    }

    /// In `ns`, route `dst` via `via`.
    pub fn route(&self, ns: &str, dst: &str, via: &str) {
        sh(&format!("ip -n {ns} route add {dst} via {via}"));
    }

    /// In `ns`, route `dst` via `via` with source address `src`.
    pub fn route_from(&self, ns: &str, dst: &str, via: &str, src: &str) {
        sh(&format!("ip -n {ns} route add {dst} via {via} src {src}"));
    }

    /// Wait (10 s at most) until the `pgw` at `sock` has resolved the MAC of
    /// each of `ips` (`pgw ctl neighbors`).
    pub fn wait_neighbours(&self, sock: &Path, ips: &[&str]) {
        wait_for(
            &format!("pgw to resolve {ips:?}"),
            Duration::from_secs(10),
            || {
                let n = pgw_at(sock, "ctl", "neighbors");
                ips.iter().all(|ip| n.contains(ip))
            },
        );
    }

    /// Wait (30 s at most: under stress-e2e a Python server once took
    /// over 10 s to start) until something in `ns` listens on `addr`
    /// (`ss` notation, IPv6 in brackets) over `proto` (`"tcp"` or `"udp"`).
    pub fn wait_listen(&self, ns: &str, proto: &str, addr: &str) {
        let flag = match proto {
            "tcp" => "t",
            "udp" => "u",
            _ => panic!("proto {proto}"),
        };
        wait_for(
            &format!("{proto} {addr} listening in {ns}"),
            Duration::from_secs(30),
            || {
                sh_ok(&format!(
                    "ip netns exec {ns} ss -{flag}lnH | grep -qF '{addr}'"
                ))
            },
        );
    }

    /// A directory `name` under the lab's, with a file `who` that holds `name`.
    pub fn site(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("who"), name).unwrap();
        d
    }

    /// A GW whose one member w1 (10.80.0.11:8080, python's HTTP server
    /// with a file `blob.bin` of `blob_bytes` random bytes) it health-checks
    /// ([`checked_gw_section`]), service `wap` at 10.33.0.1:80, a static
    /// session of subscriber 10.50.0.2 (device 1001); `extra` ends the
    /// profile. The subscriber's namespace also has 10.50.0.3 (no session)
    /// and a route to 10.33.0.0/24 through the GW.
    pub fn checked_gw(&mut self, extra: &str, blob_bytes: usize) -> CheckedGw {
        let profile = self
            .profile("gw", "10.50.0.1/24")
            .with(&checked_gw_section(""))
            .with(&wap(&[member("w1", "10.80.0.11", 8080)]))
            .with(&gw_session("10.50.0.2", 1001, &["wap"]))
            .with(extra);
        let sock = self.run_pgw("gw", &profile);
        let sub = self.subscriber(&["10.50.0.2/24", "10.50.0.3/24"]);
        self.route(&sub, "10.33.0.0/24", "10.50.0.1");
        let srv = self.servers(&["10.80.0.11/24"]);
        let www = self.serve_http("w1", &srv, "10.80.0.11");
        random_file(&www, "blob.bin", blob_bytes as u64);
        CheckedGw { sock, sub, srv }
    }

    /// An IPFIX collector: `nfcapd` on a free UDP port of 127.0.0.1 writing
    /// to the lab's `flows` folder (read them with [`nfdump_records`]);
    /// (that folder, the port).
    pub fn nfcapd(&mut self) -> (PathBuf, u16) {
        let flows = self.dir.join("flows");
        std::fs::create_dir_all(&flows).unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        self.spawn(
            "nfcapd",
            &format!("nfcapd -p {port} -b 127.0.0.1 -t 60 -w {}", flows.display()),
        );
        (flows, port)
    }

    /// Stop [`Lab::nfcapd`] (it writes its file on the way out) and read
    /// every file it wrote in `flows` ([`nfdump_records`]).
    pub fn nfcapd_records(&mut self, flows: &Path) -> (Vec<serde_json::Value>, String) {
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            self.interrupt("nfcapd", Duration::from_secs(10)).is_some(),
            "nfcapd did not stop"
        );
        nfdump_records(flows)
    }

    /// Serve [`Lab::site`] `name` over HTTP on `addr` port 8080 in `ns`
    /// (python's http.server, labelled `name`) and wait until it listens;
    /// the directory served.
    pub fn serve_http(&mut self, name: &str, ns: &str, addr: &str) -> PathBuf {
        let d = self.site(name);
        self.spawn(
            name,
            &format!(
                "ip netns exec {ns} python3 -m http.server --bind {addr} 8080 --directory {}",
                d.display()
            ),
        );
        let listen = if addr.contains(':') {
            format!("[{addr}]:8080")
        } else {
            format!("{addr}:8080")
        };
        self.wait_listen(ns, "tcp", &listen);
        d
    }

    /// Start `tcpdump -c count -i iface filter` in `ns` (labelled `label`)
    /// and wait until it captures.
    pub fn tcpdump(&mut self, label: &str, ns: &str, iface: &str, count: u32, filter: &str) {
        self.spawn(
            label,
            &format!("ip netns exec {ns} tcpdump -l -nn -e -v -c {count} -i {iface} '{filter}'"),
        );
        wait_for(
            &format!("{label} to listen"),
            Duration::from_secs(30),
            || self.log(label).contains("listening on"),
        );
    }
}

/// `pgw CMD --socket SOCK REST`: its output (panics if it fails).
pub fn pgw_at(sock: &Path, cmd: &str, rest: &str) -> String {
    sh(&format!(
        "{} {cmd} --socket {} {rest}",
        pgw_bin().display(),
        sock.display()
    ))
}

/// `pgw CMD --socket SOCK --json`, parsed.
pub fn pgw_json(sock: &Path, cmd: &str) -> serde_json::Value {
    let out = pgw_at(sock, cmd, "--json");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("pgw {cmd}: {e}: {out}"))
}

/// A `pgw stats --json` report of the instance at `sock`.
pub fn stats_json(sock: &Path) -> serde_json::Value {
    pgw_json(sock, "stats")
}

/// A counter of every worker (`rx`, `tx`, `handoff_out`, ...) summed over
/// the workers of a stats report.
/// Event `name` of each worker of a stats report, in worker order.
pub fn worker_events(r: &serde_json::Value, name: &str) -> Vec<u64> {
    r["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w["events"]
                .as_array()
                .and_then(|e| e.iter().find(|x| x[0] == name))
                .and_then(|x| x[1].as_u64())
                .unwrap_or_else(|| panic!("no event {name} in {w}"))
        })
        .collect()
}

pub fn worker_sum(r: &serde_json::Value, key: &str) -> u64 {
    r["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[key].as_u64().unwrap())
        .sum()
}

/// Whether `curl` in `ns` gets `url` (2 s at most, any 2xx).
pub fn curl_ok(ns: &str, url: &str) -> bool {
    sh_ok(&format!(
        "ip netns exec {ns} curl -g -s --fail --max-time 2 -o /dev/null '{url}'"
    ))
}

/// The body of `url` fetched by `curl` in `ns` (panics unless 2xx). It may
/// take up to 15 s: on a loaded machine a first exchange (a SYN
/// retransmitted, a Python server scheduled late) can take several seconds,
/// and a test's claim is the answer, not its latency.
pub fn curl(ns: &str, url: &str) -> String {
    sh(&format!(
        "ip netns exec {ns} curl -g -sS --fail --max-time 15 '{url}'"
    ))
}

/// Run `curl` (a command line, e.g. `ip netns exec NS curl ...`) and assert
/// that a RST refused its connection at once: exit 7
/// (CURLE_COULDNT_CONNECT: ECONNREFUSED) within 3 s, where a dropped SYN
/// would be retransmitted until curl's timeout.
pub fn assert_refused_at_once(curl: &str) {
    let t = Instant::now();
    let out = sh_output(curl);
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "curl: {err}");
    assert!(took < Duration::from_secs(3), "curl took {took:?}: {err}");
}

/// A file `name` of `len` random bytes in `dir`: its path.
pub fn random_file(dir: &Path, name: &str, len: u64) -> PathBuf {
    let f = dir.join(name);
    sh(&format!("head -c {len} /dev/urandom > {}", f.display()));
    f
}

/// Download `url` with `curl` in `ns` to the lab's `got.bin` (`max_s`
/// seconds at most) and check that it holds the bytes of `served`: its path.
pub fn download_intact(lab: &Lab, ns: &str, url: &str, served: &Path, max_s: u32) -> PathBuf {
    let got = lab.dir.join("got.bin");
    download(ns, url, &got, max_s);
    assert_eq!(
        sha256(&got),
        sha256(served),
        "{url}: the download differs from the served file"
    );
    got
}

/// Download `url` with `curl` in `ns` to `dest` (`max_s` seconds at most;
/// panics unless 2xx).
pub fn download(ns: &str, url: &str, dest: &Path, max_s: u32) {
    sh(&format!(
        "ip netns exec {ns} curl -g -sS --fail --max-time {max_s} -o {} '{url}'",
        dest.display()
    ));
}

/// `radclient` (FreeRADIUS) sending one request of `kind` (`auth`, `acct`)
/// with `attrs` to 127.0.0.1:`port` under `secret`, trying `tries` times:
/// whether it got an answer, and what it printed (stdout and stderr).
pub fn radclient(tries: u32, port: u16, kind: &str, secret: &str, attrs: &str) -> (bool, String) {
    sh_text(&format!(
        "printf '%s\\n' '{attrs}' | radclient -x -r {tries} -t 2 127.0.0.1:{port} {kind} {secret}"
    ))
}

/// The `[eal]`, `[cores]` and `[engine]` keys of a [`Profile`]; the
/// defaults (256 MB, worker core 0, 8191 mbufs, DPDK's descriptor counts,
/// 50 µs idle sleep) suit a test instance on net_tap.
pub struct Engine {
    pub memory_mb: u32,
    pub workers: Vec<u32>,
    pub mbufs: u32,
    /// `rx_desc` and `tx_desc`, if not DPDK's.
    pub desc: Option<u32>,
    pub idle_sleep_us: u32,
    /// More `[engine]` keys, one a line.
    pub extra: String,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine {
            memory_mb: 256,
            workers: vec![0],
            mbufs: 8191,
            desc: None,
            idle_sleep_us: 50,
            extra: String::new(),
        }
    }
}

/// A test profile: `[instance]`, the [`Engine`] sections and net_tap
/// `[[port]]`s, then the role's own sections as TOML text.
pub struct Profile {
    name: String,
    role: String,
    pub sock: PathBuf,
    engine: Engine,
    ports: String,
    /// The taps' interface names, in port order.
    pub taps: Vec<String>,
    body: String,
}

impl Profile {
    /// Instance `name` in `role` with its control socket at `sock`.
    pub fn new(name: &str, role: &str, sock: &Path) -> Profile {
        Profile {
            name: name.into(),
            role: role.into(),
            sock: sock.into(),
            engine: Engine::default(),
            ports: String::new(),
            taps: vec![],
            body: String::new(),
        }
    }

    /// Other engine settings than the defaults.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// A port `name` on a net_tap whose interface is `iface`; [`Profile::addr`]
    /// and [`Profile::mac`] add to the last one.
    pub fn tap(mut self, name: &str, iface: &str) -> Self {
        self.ports +=
            &format!("[[port]]\nname = \"{name}\"\ndevice = \"net_tap_{iface},iface={iface}\"\n");
        self.taps.push(iface.into());
        self
    }

    /// A port `name` on the DPDK virtual device `device` (its devargs
    /// whole), not a tap.
    pub fn port(mut self, name: &str, device: &str) -> Self {
        self.ports += &format!("[[port]]\nname = \"{name}\"\ndevice = \"{device}\"\n");
        self
    }

    /// The last port's address `cidr`, IPv4 or IPv6.
    pub fn addr(mut self, cidr: &str) -> Self {
        let family = if cidr.contains(':') { "ipv6" } else { "ipv4" };
        self.ports += &format!("{family} = [\"{cidr}\"]\n");
        self
    }

    /// The last port's MAC address.
    pub fn mac(mut self, mac: &str) -> Self {
        self.ports += &format!("mac = \"{mac}\"\n");
        self
    }

    /// Append `toml` (the role's sections) after the ports.
    pub fn with(mut self, toml: &str) -> Self {
        self.body += toml;
        if !self.body.ends_with('\n') {
            self.body.push('\n');
        }
        self
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.engine;
        let workers: Vec<String> = e.workers.iter().map(u32::to_string).collect();
        let desc = e
            .desc
            .map(|n| format!("rx_desc = {n}\ntx_desc = {n}\n"))
            .unwrap_or_default();
        write!(
            f,
            "[instance]\nname = \"{}\"\nrole = \"{}\"\ncontrol_socket = \"{}\"\n\
             [eal]\nmemory_mb = {}\n[cores]\nworkers = [{}]\n\
             [engine]\nmbufs = {}\n{desc}idle_sleep_us = {}\n{}{}{}",
            self.name,
            self.role,
            self.sock.display(),
            e.memory_mb,
            workers.join(", "),
            e.mbufs,
            e.idle_sleep_us,
            if e.extra.is_empty() || e.extra.ends_with('\n') {
                e.extra.clone()
            } else {
                format!("{}\n", e.extra)
            },
            self.ports,
            self.body
        )
    }
}

/// The `[gw]` section of a GW on ports `access` and `servers` with pool
/// 10.80.0.100, then `extra` (more `[gw]` keys, one a line).
pub fn gw_section(extra: &str) -> String {
    format!(
        "[gw]\naccess_port = \"access\"\nserver_port = \"servers\"\npool = [\"10.80.0.100\"]\n{extra}\n"
    )
}

/// Service `name` (id `id`), its group of the same name over `members`,
/// and its representative address `vip` (on `port`, or on every port).
pub fn gw_service(name: &str, id: u32, members: &[String], vip: &str, port: Option<u16>) -> String {
    let port = port.map(|p| format!("port = {p}\n")).unwrap_or_default();
    format!(
        "[[gw.service]]\nname = \"{name}\"\nid = {id}\n\
         [[gw.group]]\nname = \"{name}\"\nservice = \"{name}\"\nmembers = [{}]\n\
         [[gw.vip]]\nip = \"{vip}\"\n{port}group = \"{name}\"\n",
        members.join(", ")
    )
}

/// The `wap` service (id 1) of most tests, over `members`, at 10.33.0.1:80.
pub fn wap(members: &[String]) -> String {
    gw_service("wap", 1, members, "10.33.0.1", Some(80))
}

/// A server-group member, as a TOML inline table.
pub fn member(name: &str, ip: &str, port: u16) -> String {
    format!("{{ name = \"{name}\", ip = \"{ip}\", port = {port} }}")
}

/// What [`Lab::checked_gw`] set up: pgw's control socket, the
/// subscriber's and the server's namespaces.
pub struct CheckedGw {
    pub sock: PathBuf,
    pub sub: String,
    pub srv: String,
}

/// Health checks quick enough for a test: every 0.3 s, up after two
/// passes, down after two failures (a `[gw]` or `[lb]` key).
pub const QUICK_HEALTH: &str =
    "health = { interval_s = 0.3, timeout_s = 0.25, rise = 2, fall = 2 }";

/// The `[gw]` section of a GW that health-checks its members
/// ([`QUICK_HEALTH`], probes from ports 60000-60999, keys on 1024-59999),
/// then `extra` (more `[gw]` keys).
pub fn checked_gw_section(extra: &str) -> String {
    gw_section(&format!(
        "key_ports = [1024, 59999]\nprobe_ports = [60000, 60999]\n{QUICK_HEALTH}\n{extra}"
    ))
}

/// A static `[[gw.session]]`: subscriber `ip`, its device id and services.
pub fn gw_session(ip: &str, device_id: u64, services: &[&str]) -> String {
    format!(
        "[[gw.session]]\nip = \"{ip}\"\ndevice_id = {device_id}\nservices = {}\n",
        toml_list(services)
    )
}

/// A static `[[gw.session]]` of a subscriber with the IPv4 address `ip`
/// and the IPv6 prefix `prefix6` (NAT64, NAT66), its device id and
/// services.
pub fn gw_session6(ip: &str, prefix6: &str, device_id: u64, services: &[&str]) -> String {
    format!(
        "[[gw.session]]\nip = \"{ip}\"\nipv6 = \"{prefix6}\"\ndevice_id = {device_id}\nservices = {}\n",
        toml_list(services)
    )
}

/// An event counter summed over the workers of a stats report.
pub fn event(r: &serde_json::Value, name: &str) -> u64 {
    named_counter(r, "events", name)
}

/// A drop counter summed over the workers of a stats report.
pub fn drops(r: &serde_json::Value, reason: &str) -> u64 {
    named_counter(r, "drops", reason)
}

/// Counter `name` of every worker's `[name, count]` list `list`, summed.
fn named_counter(r: &serde_json::Value, list: &str, name: &str) -> u64 {
    r["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w[list].as_array().unwrap().iter())
        .filter(|e| e[0] == name)
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

/// The `[radius]` section of a RADIUS server on 127.0.0.1, authentication on
/// `auth` and accounting on `auth + 1`, then `extra` (more `[radius]` keys),
/// and its one client, 127.0.0.1 with the secret `testing123`.
pub fn radius_head(auth: u16, extra: &str) -> String {
    format!(
        "[radius]\nlisten = \"127.0.0.1:{auth}\"\nacct_listen = \"127.0.0.1:{}\"\n{extra}\n\
         [[radius.client]]\naddress = \"127.0.0.1\"\nsecret = \"testing123\"\n",
        auth + 1
    )
}

/// The RADIUS authentication port of this test process (accounting: the
/// next), `salt` apart from another test's of the same binary.
pub fn radius_port(salt: u32) -> u16 {
    21000 + ((std::process::id() + salt) % 20000) as u16
}

/// A GW whose sessions RADIUS makes: service `wap` over member w1
/// (10.80.0.11:8080), `[radius]` on `auth` (accounting `auth + 1`) with
/// user alice (password wonderland, device 09011112222, service wap),
/// this gateway gw1 handing out 10.50.0.2-10.50.0.9.
pub fn radius_gw(lab: &Lab, auth: u16) -> Profile {
    radius_gw_with(lab, auth, "")
}

/// [`radius_gw`] with more `[radius]` keys (`extra`).
pub fn radius_gw_with(lab: &Lab, auth: u16, extra: &str) -> Profile {
    lab.profile("gw", "10.50.0.1/24")
        .with(&gw_section(""))
        .with(&wap(&[member("w1", "10.80.0.11", 8080)]))
        .with(&radius_head(
            auth,
            &format!("this_gateway = \"gw1\"\n{extra}"),
        ))
        .with(&radius_user("alice", "wonderland", "09011112222", &["wap"]))
        .with("[[radius.gateway]]\nname = \"gw1\"\nranges = [\"10.50.0.2-10.50.0.9\"]")
}

/// alice's Access-Request with `password` to [`radius_gw`]'s server on
/// `auth`: (answered, `radclient`'s output).
pub fn alice_auth(auth: u16, password: &str) -> (bool, String) {
    radclient(
        3,
        auth,
        "auth",
        "testing123",
        &format!("User-Name=alice,User-Password={password},Calling-Station-Id=09011112222"),
    )
}

/// alice's Accounting-Request `status` (session s1, address 10.50.0.2),
/// `extra` attributes after, to [`radius_gw`]'s server on `acct`; it must
/// be answered.
pub fn alice_acct(acct: u16, status: &str, extra: &str) {
    acct_answered(
        3,
        acct,
        &format!("User-Name=alice,Acct-Status-Type={status},Acct-Session-Id=s1,Calling-Station-Id=09011112222,Framed-IP-Address=10.50.0.2,NAS-IP-Address=127.0.0.1{extra}"),
    );
}

/// LB `n` (1 or 2) of a test with two entry points: instance `{tag}lb{n}`
/// on worker core `n % 2`, its access tap `{tag}a{n}` at 10.60.`n`.1/24
/// whose subscriber side has the MAC 02:00:00:00:5`n`:02, its LAN tap
/// `{tag}l{n}` last (for [`Profile::addr`]), and the `[lb]` keys naming
/// them; the gateways and ranges are the caller's.
pub fn lb_entry(tag: &str, n: u8, sock: &Path) -> Profile {
    Profile::new(&format!("{tag}lb{n}"), "lb", sock)
        .engine(Engine {
            memory_mb: 128,
            workers: vec![u32::from(n % 2)],
            mbufs: 4095,
            desc: Some(512),
            ..Engine::default()
        })
        .tap("access", &format!("{tag}a{n}"))
        .addr(&format!("10.60.{n}.1/24"))
        .tap("lan", &format!("{tag}l{n}"))
        .with(&format!(
            "[lb]\naccess_port = \"access\"\nlan_port = \"lan\"\n\
             access_next_hop_mac = \"02:00:00:00:5{n}:02\""
        ))
}

impl Lab {
    /// The subscriber side of [`lb_entry`] `n`: its tap moved into `ns` with
    /// the MAC the LB sends to and the address 10.60.`n`.2/24.
    pub fn plug_subscriber(&self, n: u8, ns: &str) {
        self.move_into_with_mac(
            &format!("{}a{n}", self.tag),
            ns,
            &format!("02:00:00:00:5{n}:02"),
            &[&format!("10.60.{n}.2/24")],
        );
    }
}

/// A `[[radius.user]]`: `user` with `password`, its device id and services.
pub fn radius_user(user: &str, password: &str, device_id: &str, services: &[&str]) -> String {
    format!(
        "[[radius.user]]\nuser = \"{user}\"\npassword = \"{password}\"\n\
         device_id = \"{device_id}\"\nservices = {}\n",
        toml_list(services)
    )
}

/// An `[[lb.gateway]]` `name` at `mac` (`"local"`: this box's GW stage),
/// with the address `ip` its health is checked on if given.
pub fn lb_gateway(name: &str, mac: &str, ip: Option<&str>) -> String {
    let ip = ip.map(|ip| format!("ip = \"{ip}\"\n")).unwrap_or_default();
    format!("[[lb.gateway]]\nname = \"{name}\"\nmac = \"{mac}\"\n{ip}")
}

/// An LB range (`table`: `range` or `range6`) from `first` to `last`, sent to
/// `gateways` in order of preference.
pub fn lb_range(table: &str, first: &str, last: &str, gateways: &[&str]) -> String {
    format!(
        "[[lb.{table}]]\nfirst = \"{first}\"\nlast = \"{last}\"\ngateways = {}\n",
        toml_list(gateways)
    )
}

/// `["a", "b"]`.
fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The MAC of pgw's first port (`pgw stats`).
pub fn first_port_mac(sock: &Path) -> String {
    pgw_json(sock, "stats")["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Run the python `script` in the namespace `ns` with pgw's MAC `gw_mac` as
/// its argument; it must print "sent".
pub fn send_from(ns: &str, script: &Path, gw_mac: &str) {
    let out = sh(&format!(
        "ip netns exec {ns} python3 {} {gw_mac}",
        script.display()
    ));
    assert_eq!(out.trim(), "sent");
}

/// An Accounting-Request with `attrs` to 127.0.0.1:`acct` under the secret
/// "testing123", `tries` times at most; it must be answered.
pub fn acct_answered(tries: u32, acct: u16, attrs: &str) {
    let (ok, out) = radclient(tries, acct, "acct", "testing123", attrs);
    assert!(ok && out.contains("Accounting-Response"), "{out}");
}
