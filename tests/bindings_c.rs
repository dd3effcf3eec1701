//! The C ABI (`bindings/c`, `include/devaddr.h`) as C programs use it: compiled with gcc
//! against the installed header and library (`bindings/c/install.sh`, `devaddr.pc`).
//!
//! * libvirt's view: a domain XML with unaddressed devices, addressed through
//!   `devaddr_plan_domain`, comes back byte-identical to `devaddr plan` (under valgrind);
//! * 8 threads planning at once get identical plans, the CLI's (under valgrind);
//! * every function once, errors as data (under valgrind), and linked statically through
//!   `pkg-config --static`;
//! * for every spec in examples/ and tests/qemu-specs/ and every domain in
//!   tests/libvirt/wide-cases/, stdout, stderr and exit code are the CLI's;
//! * the checked-in header is what cbindgen generates.
//!
//! valgrind must report 0 errors and 0 bytes definitely lost. Without gcc, valgrind or
//! cbindgen the tests print SKIPPED and pass, unless `CI=true`.

mod common;
use common::{cli, have, libdevaddr, skip, spec_files, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// gcc (and valgrind when `valgrind`) are there; else skipped.
fn tools(valgrind: bool) -> bool {
    for tool in ["gcc", "pkg-config"]
        .into_iter()
        .chain(valgrind.then_some("valgrind"))
    {
        if !have(tool) {
            skip(&format!("{tool} is not installed"));
            return false;
        }
    }
    true
}

/// bindings/c/tests/NAME.c compiled against the installed libdevaddr (shared, or
/// `static` through `pkg-config --static`), in `dir`.
fn compile(name: &str, dir: &Path, static_link: bool) -> PathBuf {
    let prefix = libdevaddr();
    let mut pc = Command::new("pkg-config");
    pc.env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .args(["--cflags", "--libs", "devaddr"]);
    if static_link {
        pc.arg("--static");
    }
    let flags = pc.output().expect("run pkg-config");
    assert!(flags.status.success(), "pkg-config devaddr: {flags:?}");
    let flags = String::from_utf8(flags.stdout).unwrap();
    let exe = dir.join(name);
    let mut gcc = Command::new("gcc");
    gcc.args([
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
    ])
    .arg("-o")
    .arg(&exe)
    .arg(root().join(format!("bindings/c/tests/{name}.c")));
    if static_link {
        gcc.arg("-static-libgcc")
            .arg(prefix.join("lib/libdevaddr.a"));
    }
    gcc.args(flags.split_whitespace()).arg("-lpthread");
    let o = gcc.output().expect("run gcc");
    assert!(
        o.status.success(),
        "gcc {name}.c: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    exe
}

/// Run a compiled program with libdevaddr.so on the library path, under valgrind when
/// asked (which must then report no error and nothing definitely lost).
fn run_c(exe: &Path, args: &[&str], valgrind: bool) -> Outcome {
    let lib = libdevaddr().join("lib");
    let mut cmd = if valgrind {
        let mut c = Command::new("valgrind");
        c.args([
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(exe);
        c
    } else {
        Command::new(exe)
    };
    let o = cmd
        .args(args)
        .env("LD_LIBRARY_PATH", lib)
        .current_dir(root())
        .output()
        .expect("run the C program");
    let out = Outcome::from(o);
    if valgrind {
        assert_ne!(
            out.code,
            Some(99),
            "valgrind found errors or leaks: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("definitely lost"),
            "valgrind: {}",
            out.stderr
        );
    }
    out
}

#[test]
fn c_addresses_a_libvirt_domain_as_the_cli_does_under_valgrind() {
    if !tools(true) {
        return;
    }
    let dir = common::scratch("c-domain");
    let exe = compile("cli", &dir, false);
    let guest = "bindings/c/tests/guest.xml";
    let c = run_c(&exe, &["plan-domain", guest], true);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert_eq!(c, cli(&["plan", guest]));
    // Every device of the guest came back with an address (the input has none).
    for d in ["disk", "interface", "rng", "memballoon", "input"] {
        let parts: Vec<&str> = c.stdout.split(&format!("<{d} ")).skip(1).collect();
        assert!(!parts.is_empty(), "no <{d}>");
        for (i, part) in parts.into_iter().enumerate() {
            let element = part.split(&format!("</{d}>")).next().unwrap_or_default();
            assert!(
                element.contains("<address type="),
                "<{d}> #{i} has no address: {element}"
            );
        }
    }
    // The same with --new-domain.
    let c = run_c(&exe, &["plan-domain", guest, "new"], true);
    assert_eq!(c, cli(&["plan", guest, "--new-domain"]));
}

#[test]
fn c_plans_from_8_threads_alike_under_valgrind() {
    if !tools(true) {
        return;
    }
    let dir = common::scratch("c-threads");
    let exe = compile("threads", &dir, false);
    let spec = "examples/numa.yaml";
    let c = run_c(&exe, &[spec], true);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let want = cli(&["plan", spec, "--format", "json"]);
    assert_eq!(c.stdout, want.stdout);
}

#[test]
fn c_api_errors_are_data_under_valgrind() {
    if !tools(true) {
        return;
    }
    let dir = common::scratch("c-api");
    let version = cli(&["--version"]).stdout;
    let version = version.trim().trim_start_matches("devaddr ");
    let exe = compile("api", &dir, false);
    let c = run_c(&exe, &[version], true);
    assert_eq!(
        (c.code, c.stdout.as_str()),
        (Some(0), "ok\n"),
        "{}",
        c.stderr
    );
    // Linked statically (libdevaddr.a and pkg-config's Libs.private), no valgrind.
    let static_dir = dir.join("static");
    std::fs::create_dir_all(&static_dir).unwrap();
    let exe = compile("api", &static_dir, true);
    let c = run_c(&exe, &[version], false);
    assert_eq!(
        (c.code, c.stdout.as_str()),
        (Some(0), "ok\n"),
        "{}",
        c.stderr
    );
}

#[test]
fn c_output_is_the_clis_for_every_spec_and_domain() {
    if !tools(false) {
        return;
    }
    let dir = common::scratch("c-identical");
    let exe = compile("cli", &dir, false);
    let mut n = 0;
    for spec in spec_files() {
        let path = spec.strip_prefix(root()).unwrap().to_str().unwrap();
        for format in ["yaml", "json"] {
            let c = run_c(&exe, &["plan", path, format], false);
            assert_eq!(
                c,
                cli(&["plan", path, "--format", format]),
                "{path} {format}"
            );
            n += 1;
        }
        let c = run_c(&exe, &["capacity", path], false);
        assert_eq!(
            c,
            cli(&["capacity", path, "--format", "json"]),
            "capacity {path}"
        );
    }
    let mut domains: Vec<PathBuf> = std::fs::read_dir(root().join("tests/libvirt/wide-cases"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    domains.sort();
    for d in domains {
        let path = d.strip_prefix(root()).unwrap().to_str().unwrap();
        let c = run_c(&exe, &["plan-domain", path], false);
        assert_eq!(c, cli(&["plan", path]), "{path}");
        let c = run_c(&exe, &["check", path], false);
        assert_eq!(c, cli(&["check", path]), "check {path}");
        n += 1;
    }
    assert!(n > 60, "only {n} inputs");
}

/// `devaddr_capacity` with a `bar64` answers as `devaddr capacity --bar64` does, byte for
/// byte, on the firmware specs (spec and plan); a size that is no power of two is bad
/// input naming `bar64`.
#[test]
fn c_capacity_with_bar64_is_the_clis() {
    if !tools(false) {
        return;
    }
    let dir = common::scratch("c-bar64");
    let exe = compile("cli", &dir, false);
    let mut specs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/firmware-specs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    specs.sort();
    let mut n = 0;
    for spec in specs {
        let path = spec.strip_prefix(root()).unwrap().to_str().unwrap();
        let plan = dir.join("plan.yaml");
        std::fs::write(&plan, cli(&["plan", path]).stdout).unwrap();
        for input in [path, plan.to_str().unwrap()] {
            for size in ["16G", "128G"] {
                let c = run_c(&exe, &["capacity", input, size], false);
                assert_eq!(
                    c,
                    cli(&["capacity", input, "--format", "json", "--bar64", size]),
                    "capacity {input} --bar64 {size}"
                );
                n += 1;
            }
        }
    }
    assert!(n >= 16, "only {n} calls");
    let c = run_c(
        &exe,
        &[
            "capacity",
            "tests/firmware-specs/q35-uefi-hotplug-bar64.yaml",
            "100G",
        ],
        false,
    );
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(
        c.stderr.contains("bar64") && c.stderr.contains("not a power of two"),
        "{}",
        c.stderr
    );
}

#[test]
fn header_is_what_cbindgen_generates() {
    if !have("cbindgen") {
        skip("cbindgen is not installed (cargo install cbindgen)");
        return;
    }
    let dir = common::scratch("c-header");
    let fresh = dir.join("devaddr.h");
    let o = Command::new("cbindgen")
        .current_dir(root())
        .args([
            "--config",
            "bindings/c/cbindgen.toml",
            "--crate",
            "devaddr-c",
            "--output",
        ])
        .arg(&fresh)
        .output()
        .expect("run cbindgen");
    assert!(
        o.status.success(),
        "cbindgen: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let fresh = std::fs::read_to_string(fresh).unwrap();
    let checked_in = std::fs::read_to_string(root().join("include/devaddr.h")).unwrap();
    assert!(
        fresh == checked_in,
        "include/devaddr.h differs from what cbindgen generates from bindings/c/src; \
         regenerate it: cbindgen --config bindings/c/cbindgen.toml --crate devaddr-c \
         --output include/devaddr.h"
    );
}
