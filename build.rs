//! Finds DPDK (>= 22.11) with pkg-config, generates the FFI bindings with bindgen (narrow allowlists) and compiles
//! the C shim for what bindgen cannot see (thread-locals, macros, static inline burst/alloc calls), and records
//! what `greway --version` reports: the DPDK version built against and the git commit.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/dpdk/shim.c");
    println!("cargo:rerun-if-changed=src/dpdk/shim.h");
    println!("cargo:rerun-if-changed=src/dpdk/capture.c");
    println!("cargo:rerun-if-changed=src/dpdk/cksum_probe.c");
    println!("cargo:rerun-if-changed=build.rs");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(true)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            println!(
                "cargo:warning=DPDK >= 22.11 not found ({e}); run scripts/install-deps.sh to install it"
            );
            eprintln!("error: DPDK >= 22.11 not found: run scripts/install-deps.sh");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rustc-env=GREWAY_DPDK_VERSION={}", dpdk.version);
    git_commit();

    // pkg-config drops `-include rte_config.h`; the wrapper header includes it first instead.
    let mut clang_args: Vec<String> = vec!["-march=corei7".into()];
    for p in &dpdk.include_paths {
        clang_args.push(format!("-I{}", p.display()));
    }

    let bindings = bindgen::Builder::default()
        .header("src/dpdk/shim.h")
        .clang_args(&clang_args)
        .allowlist_function(
            "shim_.*|rte_version|rte_eal_.*|rte_eth_.*|rte_pktmbuf_pool_create|rte_pktmbuf_free_bulk|rte_mempool_free|\
             rte_mempool_avail_count|rte_mempool_in_use_count|rte_lcore_count|rte_socket_id|rte_strerror|\
             rte_thread_register|rte_thread_unregister|rte_get_tsc_hz|rte_get_main_lcore|\
             rte_lcore_is_enabled|rte_lcore_to_cpu_id|rte_tel_.*|rte_telemetry_.*|\
             rte_pdump_init|rte_pdump_uninit|rte_dev_probe|rte_mempool_lookup|rte_exit",
        )
        .allowlist_type("rte_mbuf|rte_mempool|rte_eth_.*|rte_ether_addr|rte_tel_data")
        .allowlist_var("RTE_ETH_.*|RTE_MBUF_.*|RTE_PTYPE_.*|RTE_MAX_ETHPORTS|RTE_MAX_LCORE|RTE_PKTMBUF_HEADROOM|RTE_TEL_.*")
        .opaque_type("rte_l2tpv2_combined_msg_hdr|rte_arp_ipv4|rte_arp_hdr")
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(&out)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("cannot write bindings.rs");

    let mut cc = cc::Build::new();
    cc.file("src/dpdk/shim.c")
        .file("src/dpdk/capture.c")
        .flag("-march=corei7")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(3);
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    for (k, v) in &dpdk.defines {
        cc.define(k, v.as_deref());
    }
    cc.compile("greway_shim");

    // The -O2 rte_raw_cksum baseline (see the file), in its own unit so the flags apply to it alone.
    let mut probe = cc::Build::new();
    probe
        .file("src/dpdk/cksum_probe.c")
        .flag("-march=corei7")
        .opt_level(2);
    for p in &dpdk.include_paths {
        probe.include(p);
    }
    for (k, v) in &dpdk.defines {
        probe.define(k, v.as_deref());
    }
    probe.compile("greway_cksum_probe");
}

/// `GREWAY_GIT_COMMIT` for `greway --version`: the variable of that name if set (a packager building outside a
/// checkout), else the abbreviated commit of the checkout this file is in, else "unknown" (a source tarball: no
/// git, or no repository of its own). Re-run when HEAD moves.
fn git_commit() {
    println!("cargo:rerun-if-env-changed=GREWAY_GIT_COMMIT");
    let commit = env::var("GREWAY_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let git = |args: &[&str]| -> Option<String> {
                let out = Command::new("git").args(args).output().ok()?;
                let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
                (out.status.success() && !s.is_empty()).then_some(s)
            };
            // Only this project's own checkout: a source tarball unpacked inside another repository is not one.
            let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
            let here = PathBuf::from(env::var("CARGO_MANIFEST_DIR").ok()?);
            if top.canonicalize().ok()? != here.canonicalize().ok()? {
                return None;
            }
            let c = git(&["rev-parse", "--short=12", "HEAD"])?;
            // HEAD, and the branch it names, move with every commit (in a worktree the branch lives in the
            // common directory).
            for dir in [
                git(&["rev-parse", "--git-dir"]),
                git(&["rev-parse", "--git-common-dir"]),
            ]
            .into_iter()
            .flatten()
            {
                let dir = Path::new(&dir);
                for f in ["HEAD", "packed-refs"] {
                    if dir.join(f).exists() {
                        println!("cargo:rerun-if-changed={}", dir.join(f).display());
                    }
                }
            }
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
                    let p = Path::new(&common).join(r);
                    if p.exists() {
                        println!("cargo:rerun-if-changed={}", p.display());
                    }
                }
            }
            Some(c)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GREWAY_GIT_COMMIT={commit}");
}
