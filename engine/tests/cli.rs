//! The `pgw` command line on profiles: errors name file and key; every
//! profile of the repository keeps DPDK off the PCI bus unless it names a
//! PCI device, and then allows exactly those devices.

use std::path::{Path, PathBuf};
use std::process::Command;

fn pgw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgw"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn broken(name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let good = std::fs::read_to_string(repo().join("configs/ring-wire.toml")).unwrap();
    let p = std::env::temp_dir().join(format!("pgw-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&p, edit(good)).unwrap();
    p
}

#[test]
fn check_config_names_the_key_of_each_error() {
    // (case, text replaced in the good profile, its replacement, key named)
    let cases = [
        ("unknown-key", "[engine]", "[engine]\nbrust = 32", "brust"),
        (
            "bad-address",
            "device = \"net_ring1\"",
            "device = \"net_ring1\"\nipv4 = [\"10.1.2/24\"]",
            "port[1].ipv4[0]",
        ),
        (
            "missing-port",
            "[\"a\", \"b\"]",
            "[\"a\", \"uplink\"]",
            "wire.pairs[0][1]",
        ),
        (
            "bad-mac",
            "device = \"net_ring0\"",
            "device = \"net_ring0\"\nmac = \"02:00:zz:00:00:01\"",
            "port[0].mac",
        ),
        (
            "pci-escape",
            "memory_mb = 256",
            "memory_mb = 256\nextra_args = [\"--allow=0000:00:03.0\"]",
            "eal.extra_args[0]",
        ),
        (
            "no-workers",
            "workers = [0, 1]",
            "workers = []",
            "cores.workers",
        ),
        ("bad-toml", "[engine]", "[engine", "TOML"),
    ];
    for (name, from, to, key) in cases {
        let p = broken(name, |s| s.replace(from, to));
        let (code, out, err) = pgw(&["check-config", p.to_str().unwrap()]);
        assert_ne!(code, 0, "{name}: accepted\n{out}");
        assert!(
            err.contains(p.to_str().unwrap()),
            "{name}: file not named: {err}"
        );
        assert!(
            err.to_lowercase().contains(&key.to_lowercase())
                || (key == "TOML" && err.contains("line")),
            "{name}: key {key} not named: {err}"
        );
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn every_repository_profile_is_valid_and_stays_off_pci() {
    let mut n = 0;
    let mut files = Vec::new();
    for e in std::fs::read_dir(repo().join("configs")).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            files.push(p);
        }
    }
    for p in files {
        if p.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        n += 1;
        let mut text = std::fs::read_to_string(&p).unwrap();
        let (code, _, err) = pgw(&["check-config", p.to_str().unwrap()]);
        // A profile written for a bigger machine (bare-metal.toml's
        // isolated CPUs 2 and 3) is refused here naming the CPU; the rest is
        // checked on a copy with this machine's first CPU.
        let copy = std::env::temp_dir().join(format!(
            "pgw-cli-{}-{}",
            std::process::id(),
            p.file_name().unwrap().to_str().unwrap()
        ));
        let p = if code != 0 && err.contains(": cores.workers[") {
            assert!(
                err.contains("does not exist on this machine (online CPUs: "),
                "{}: {err}",
                p.display()
            );
            let start = text.find("\nworkers = [").expect("a workers line") + 1;
            let end = start + text[start..].find('\n').unwrap();
            text.replace_range(start..end, "workers = [0]");
            std::fs::write(&copy, &text).unwrap();
            let (code, _, err) = pgw(&["check-config", copy.to_str().unwrap()]);
            assert_eq!(code, 0, "{} with workers = [0]: {err}", p.display());
            copy.clone()
        } else {
            assert_eq!(code, 0, "{}: {err}", p.display());
            p
        };
        for no_huge in [false, true] {
            let mut args = vec!["eal-args", p.to_str().unwrap()];
            if no_huge {
                args.push("--no-huge");
            }
            let (code, out, err) = pgw(&args);
            assert_eq!(code, 0, "{err}");
            let words: Vec<&str> = out.split_whitespace().collect();
            let allowed: Vec<&str> = words
                .windows(2)
                .filter(|w| w[0] == "-a")
                .map(|w| w[1])
                .collect();
            if allowed.is_empty() {
                assert!(
                    words.contains(&"--no-pci"),
                    "{}: no --no-pci and no allow-list: {out}",
                    p.display()
                );
            } else {
                assert!(!words.contains(&"--no-pci"));
                for a in allowed {
                    assert!(
                        text.contains(&format!("device = \"{a}\"")),
                        "{}: -a {a} is not a port of the profile",
                        p.display()
                    );
                }
            }
            assert!(!words.iter().any(|w| *w == "-b" || w.starts_with("--block")));
        }
        let _ = std::fs::remove_file(&copy);
    }
    assert!(n >= 4, "expected the profiles of the repository, found {n}");
}

#[test]
fn every_dpdk_command_in_scripts_keeps_off_pci() {
    // Any script line that starts a DPDK application must pass --no-pci or
    // an explicit allow-list.
    let mut checked = 0;
    for dir in ["scripts", "perf", ".ci"] {
        let Ok(rd) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            // Shell scripts start processes; prose and other code do not.
            let shell = p.extension().and_then(|x| x.to_str()) == Some("sh")
                || p.file_name().and_then(|x| x.to_str()) == Some("run");
            if !p.is_file() || !shell {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            for (i, line) in text.lines().enumerate() {
                let l = line.trim_start();
                if l.starts_with('#')
                    || l.starts_with("say ")
                    || l.starts_with("echo ")
                    || l.contains("command -v")
                {
                    continue;
                }
                // A line that starts testpmd (by name or through a variable):
                // the program followed by an option.
                let starts = ["dpdk-testpmd", "dpdk-test", "\"$TESTPMD\"", "$TESTPMD"]
                    .iter()
                    .any(|prog| {
                        l.match_indices(prog)
                            .any(|(i, _)| l[i + prog.len()..].trim_start().starts_with('-'))
                    });
                if starts {
                    checked += 1;
                    assert!(
                        l.contains("--no-pci") || l.contains(" -a "),
                        "{}:{}: DPDK command without --no-pci: {l}",
                        p.display(),
                        i + 1
                    );
                }
            }
        }
    }
    eprintln!("checked {checked} DPDK command lines");
}

#[test]
fn stats_without_a_running_instance_says_how_to_fix() {
    let (code, _, err) = pgw(&["stats", "--socket", "/tmp/pgw-nobody-here.sock"]);
    assert_ne!(code, 0);
    assert!(err.contains("is it running"), "{err}");
    // `pgw top` too, at once and with nothing drawn; and it needs an instance.
    let (code, out, err) = pgw(&["top", "--socket", "/tmp/pgw-nobody-here.sock", "-n", "1"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("is it running") && out.is_empty(),
        "{out}{err}"
    );
    let (code, _, err) = pgw(&["top", "-n", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--socket PATH or --profile FILE"), "{err}");
}

/// A worker CPU the machine does not have is refused by `pgw run` before
/// DPDK starts, naming the file and the key (check-config cannot know the
/// machine a profile will run on).
#[test]
fn run_refuses_a_worker_cpu_the_machine_lacks() {
    let p = broken("cpu127", |s| {
        s.replace("workers = [0, 1]", "workers = [127]")
    });
    let (code, out, err) = pgw(&["run", "--profile", p.to_str().unwrap()]);
    assert_ne!(code, 0, "ran:\n{out}\n{err}");
    assert!(
        err.contains(p.to_str().unwrap())
            && err.contains("cores.workers[0]")
            && err.contains("CPU 127"),
        "{err}"
    );
    assert!(!err.contains("EAL"), "failed inside DPDK instead: {err}");
    let _ = std::fs::remove_file(p);
}

#[test]
fn version_names_pgw_and_the_dpdk_it_links() {
    let (code, out, err) = pgw(&["version"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().next() == Some(format!("pgw {}", env!("CARGO_PKG_VERSION")).as_str()),
        "{out}"
    );
    // The DPDK the binary links is the system's (pkg-config's libdpdk).
    let sys = Command::new("pkg-config")
        .args(["--modversion", "libdpdk"])
        .output()
        .expect("pkg-config");
    let sys = String::from_utf8_lossy(&sys.stdout).trim().to_string();
    assert!(!sys.is_empty());
    assert!(
        out.lines().any(|l| l == format!("dpdk DPDK {sys}")),
        "{out} (system DPDK {sys})"
    );
}
