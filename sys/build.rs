//! Build script of `rte-sys`: finds the system DPDK with pkg-config, runs
//! bindgen over an allowlisted set of headers and compiles `shim.c`, which
//! gives the `static inline` fast-path functions a linkable symbol.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_VERSION: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = match pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "\nrte-sys: the system DPDK (>= {MIN_VERSION}) was not found by pkg-config.\n\
                 On Debian/Ubuntu install it with:\n\
                 \n    sudo apt-get install -y libdpdk-dev dpdk pkg-config clang libclang-dev\n\
                 \n(or run scripts/setup.sh). pkg-config said: {e}\n"
            );
            std::process::exit(1);
        }
    };

    // pkg-config's crate only reports -I paths; DPDK's cflags also carry
    // `-include rte_config.h` and `-march=...`, which both bindgen and cc need.
    let cflags = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("running pkg-config --cflags libdpdk");
    let cflags: Vec<String> = String::from_utf8_lossy(&cflags.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let mut build = cc::Build::new();
    build
        .file("shim.c")
        .opt_level(3)
        .flag("-DALLOW_EXPERIMENTAL_API");
    for p in &lib.include_paths {
        build.include(p);
    }
    let mut it = cflags.iter();
    while let Some(f) = it.next() {
        if f == "-include" {
            if let Some(h) = it.next() {
                build.flag("-include").flag(h);
            }
        } else if !f.starts_with("-I") {
            build.flag(f);
        }
    }
    build.warnings(false).compile("rte_shim");

    let mut bg = bindgen::Builder::default()
        .header("shim.h")
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .clang_args(cflags.iter())
        .allowlist_function("rte_.*|shim_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|RING_F_.*|SOCKET_ID_ANY|ETH_.*")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_.*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &lib.include_paths {
        bg = bg.clang_arg(format!("-I{}", p.display()));
    }
    let bindings = bg.generate().unwrap_or_else(|e| {
        eprintln!(
            "\nrte-sys: bindgen failed over the DPDK headers ({e}).\n\
             It needs libclang: sudo apt-get install -y clang libclang-dev\n"
        );
        std::process::exit(1);
    });
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");
}
