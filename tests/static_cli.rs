//! The release CLI as it is shipped and measured: `cargo build-cli` (an alias in
//! .cargo/config.toml) links `target/release/devaddr` statically. This builds it, checks that
//! it asks for no dynamic loader, and that it writes what the CLI `cargo test` builds writes
//! for every example and QEMU spec.
//!
//! The release build takes minutes on a fresh checkout, so outside CI it runs only when
//! `DEVADDR_STATIC_CLI=1` is set (CI sets `CI=true` and always runs it).

mod common;

use common::{run, skip, spec_files};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether an ELF executable names a program interpreter (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&elf[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    assert_eq!(elf[5], 1, "not a little-endian ELF file");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]) == PT_INTERP
    })
}

fn release_binary(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/devaddr")
}

#[test]
fn the_shipped_cli_is_static_and_plans_as_the_test_build_does() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        eprintln!("SKIPPED: the statically linked CLI is built for Linux with glibc only");
        return;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| v == "true");
    if !ci && std::env::var_os("DEVADDR_STATIC_CLI").is_none_or(|v| v != "1") {
        skip("the shipped CLI's release build takes minutes: set DEVADDR_STATIC_CLI=1 to run it");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let o = Command::new(cargo)
        .args(["-q", "build-cli"])
        .current_dir(root)
        .output()
        .expect("run cargo build-cli");
    assert!(
        o.status.success(),
        "cargo build-cli failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bin = release_binary(root);
    let elf = std::fs::read(&bin).unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
    assert!(
        !has_interpreter(&elf),
        "{} is dynamically linked: cargo build-cli must link it statically",
        bin.display()
    );
    let mut compared = 0;
    for spec in spec_files() {
        let spec = spec.to_str().expect("UTF-8 path");
        for format in ["yaml", "libvirt"] {
            let args = ["plan", "--format", format, spec];
            let shipped = Command::new(&bin)
                .args(args)
                .output()
                .expect("run the shipped CLI");
            let tested = run(&args, None);
            assert_eq!(
                (shipped.status.code(), &shipped.stdout, &shipped.stderr),
                (tested.status.code(), &tested.stdout, &tested.stderr),
                "devaddr {}: the shipped CLI and the test build differ",
                args.join(" ")
            );
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} plans compared");
}

#[test]
fn a_dynamically_linked_binary_is_told_apart() {
    // The test build itself is linked dynamically (crt-static is only given to the
    // shipped CLI), so the check above can fail.
    let elf = std::fs::read(env!("CARGO_BIN_EXE_devaddr")).expect("read the test build");
    assert!(has_interpreter(&elf));
}
