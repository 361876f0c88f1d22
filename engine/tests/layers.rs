//! The shape of engine/src, checked on its text (what `cargo modules` would
//! show, without the tool):
//!
//! - planes import one way: `cli → mgmt → runtime → config` (a file may use
//!   its own plane and those after it in that order, never one before);
//! - no import cycle between files, within a plane or across (a module
//!   never uses its importer: children do not reach back into `mod.rs`);
//! - only `runtime/dpdk.rs` names `rte_sys`;
//! - every repository path ARCHITECTURE.md names exists.
//!
//! Each rule is first run on a made-up tree that breaks it, so a checker
//! that stopped seeing anything would fail here too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of a file under engine/src (`config/gw.rs` → `config::gw`).
fn module_of(rel: &str) -> String {
    let p = rel.trim_end_matches(".rs");
    let p = p.strip_suffix("/mod").unwrap_or(p);
    if p == "lib" {
        return String::new();
    }
    // The binary's root is the cli plane.
    let p = p.strip_suffix("/main").unwrap_or(p);
    p.replace('/', "::")
}

/// The source without comments and without its test module (tests may use
/// their parent: that is what they are for).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let l = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Paths this code names, as absolute segment lists: `crate::a::b`,
/// `pgw_engine::a`, `super::x`, `self::x`, `{a, b}` groups one level deep,
/// and `child::` for each `mod child;` it declares.
fn references(module: &str, code: &str) -> Vec<Vec<String>> {
    let here: Vec<String> = if module.is_empty() {
        vec![]
    } else {
        module.split("::").map(str::to_string).collect()
    };
    // A file's own module for `self::` and child paths: for `a/mod.rs` that
    // is `a`, for `a/b.rs` it is `a::b`; `super` is one up.
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect();
    let chars: Vec<char> = code.chars().collect();
    let mut refs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !is_ident(chars[i]) || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':')) {
            i += 1;
            continue;
        }
        // Read a path: ident(::ident)* possibly ending in ::{...}.
        let mut segs: Vec<String> = Vec::new();
        let mut j = i;
        let mut group: Vec<String> = Vec::new();
        loop {
            let s = j;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            if s == j {
                break;
            }
            segs.push(chars[s..j].iter().collect());
            if j + 1 < chars.len() && chars[j] == ':' && chars[j + 1] == ':' {
                j += 2;
                if j < chars.len() && chars[j] == '{' {
                    let end = chars[j..].iter().position(|&c| c == '}').map(|k| j + k);
                    if let Some(end) = end {
                        let inner: String = chars[j + 1..end].iter().collect();
                        group = inner
                            .split(',')
                            .map(|x| x.trim().split("::").next().unwrap_or("").trim().to_string())
                            .filter(|x| !x.is_empty())
                            .collect();
                        j = end + 1;
                    }
                    break;
                }
                continue;
            }
            break;
        }
        i = j.max(i + 1);
        if segs.len() < 2 && group.is_empty() {
            continue;
        }
        let base: Option<Vec<String>> = match segs[0].as_str() {
            "crate" | "pgw_engine" => Some(vec![]),
            "super" => Some(here[..here.len().saturating_sub(1)].to_vec()),
            "self" => Some(here.clone()),
            c if children.contains(c) => {
                Some(here.iter().cloned().chain([c.to_string()]).collect())
            }
            _ => None,
        };
        let Some(base) = base else { continue };
        let tail: Vec<String> =
            if matches!(segs[0].as_str(), "crate" | "pgw_engine" | "super" | "self") {
                segs[1..].to_vec()
            } else {
                vec![]
            };
        let mut path = base;
        path.extend(tail);
        if group.is_empty() {
            refs.push(path);
        } else {
            for g in group {
                let mut p = path.clone();
                if g != "self" {
                    p.push(g);
                }
                refs.push(p);
            }
        }
    }
    refs
}

/// File-level import graph: module → modules it uses.
fn graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.keys().map(|f| module_of(f)).collect();
    let mut g = BTreeMap::new();
    for (f, text) in files {
        let m = module_of(f);
        let mut to = BTreeSet::new();
        for r in references(&m, &code_of(text)) {
            // The longest prefix that is a module is the file it names.
            let target = (1..=r.len())
                .rev()
                .map(|n| r[..n].join("::"))
                .find(|p| modules.contains(p));
            if let Some(t) = target {
                if t != m && !t.is_empty() {
                    to.insert(t);
                }
            }
        }
        g.insert(m, to);
    }
    g
}

const PLANES: [&str; 4] = ["config", "runtime", "mgmt", "cli"];

fn plane_rank(module: &str) -> Option<usize> {
    let first = module.split("::").next()?;
    PLANES.iter().position(|p| *p == first)
}

/// Edges that go against the plane order.
fn plane_violations(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut v = Vec::new();
    for (from, tos) in g {
        let Some(rf) = plane_rank(from) else { continue };
        for to in tos {
            if let Some(rt) = plane_rank(to) {
                if rt > rf {
                    v.push(format!("{from} uses {to}"));
                }
            }
        }
    }
    v
}

/// Some cycle of the graph, if any.
fn a_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let i = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[i..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn read_tree(dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if p.is_dir() {
            read_tree(&p, &r, out);
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.insert(r, std::fs::read_to_string(&p).unwrap());
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn engine_files() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    read_tree(&root().join("engine/src"), "", &mut files);
    files
}

fn made_up(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

#[test]
fn the_checker_sees_cycles_and_planes_out_of_order() {
    // A child reaching back into its mod.rs, and config using runtime.
    let t = made_up(&[
        ("lib.rs", "pub mod config;\npub mod runtime;\n"),
        ("config/mod.rs", "pub mod gw;\nuse gw::build;\n"),
        (
            "config/gw.rs",
            "use crate::config::Profile;\nuse crate::runtime::dpdk::X;\n",
        ),
        ("runtime/mod.rs", "pub mod dpdk;\n"),
        (
            "runtime/dpdk.rs",
            "// crate::config::gw in a comment is not a use\n",
        ),
    ]);
    let g = graph(&t);
    assert_eq!(
        a_cycle(&g),
        Some(vec!["config".into(), "config::gw".into(), "config".into()])
    );
    assert_eq!(plane_violations(&g), vec!["config::gw uses runtime::dpdk"]);
    assert!(g["runtime::dpdk"].is_empty(), "{g:?}");
    // Groups and super:: resolve to the files they name.
    let t = made_up(&[
        ("mgmt/mod.rs", "pub mod a;\npub mod b;\n"),
        ("mgmt/a.rs", "use super::{b, b::Y};\n"),
        ("mgmt/b.rs", "fn f() { self::g(); }\n"),
    ]);
    let g = graph(&t);
    assert_eq!(g["mgmt::a"], BTreeSet::from(["mgmt::b".to_string()]));
    assert!(a_cycle(&g).is_none());
}

#[test]
fn engine_planes_import_one_way_without_cycles() {
    let files = engine_files();
    for p in PLANES {
        assert!(
            files.keys().any(|f| f.starts_with(&format!("{p}/"))),
            "engine/src/{p}/ is missing"
        );
    }
    let g = graph(&files);
    let bad = plane_violations(&g);
    assert!(
        bad.is_empty(),
        "imports against cli → mgmt → runtime → config:\n  {}",
        bad.join("\n  ")
    );
    if let Some(c) = a_cycle(&g) {
        panic!("import cycle: {}", c.join(" → "));
    }
    // The runtime's wrapper and the management side are both there and the
    // management side does use the runtime through its link.
    assert!(g["mgmt"].contains("runtime::link"), "{:?}", g["mgmt"]);
}

#[test]
fn only_the_dpdk_wrapper_names_rte_sys() {
    let files = engine_files();
    let users: Vec<&String> = files
        .iter()
        .filter(|(_, t)| code_of(t).contains("rte_sys"))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(users, vec!["runtime/dpdk.rs"]);
}

/// Repository paths in backquotes: `a/b.rs`, `scripts/x.sh`, `engine/src/`.
fn named_paths(md: &str) -> Vec<String> {
    let mut v = Vec::new();
    for chunk in md.split('`').skip(1).step_by(2) {
        let c = chunk.trim();
        let path_like = !c.is_empty()
            && !c.contains(' ')
            && !c.contains("::")
            && !c.starts_with('/')
            && !c.contains('*')
            && c.contains('/')
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "/._-".contains(ch));
        let top = c.split('/').next().unwrap_or("");
        let known_top = [
            "engine",
            "pipelines",
            "sys",
            "perf",
            "scripts",
            "configs",
            "fuzz",
            "docs",
            ".ci",
        ];
        if path_like && known_top.contains(&top) {
            v.push(c.to_string());
        }
    }
    v
}

#[test]
fn architecture_md_names_only_paths_that_exist() {
    let md = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let paths = named_paths(&md);
    assert!(
        paths.len() >= 20,
        "ARCHITECTURE.md names few paths: {paths:?}"
    );
    let missing: Vec<&String> = paths.iter().filter(|p| !root().join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
    // The checker itself: a path that does not exist is seen.
    assert_eq!(
        named_paths("see `engine/src/nowhere.rs` and `x y`"),
        vec!["engine/src/nowhere.rs"]
    );
}
