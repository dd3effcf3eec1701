//! The Python binding (`bindings/python`) as Nova would use it: the wheel is built with
//! maturin (abi3, CPython >= 3.9), installed into a virtual environment under `target/`,
//! and `bindings/python/tests` run with pytest against the *installed* package, from a
//! folder outside the source tree:
//!
//! * every function, and every spec of examples/ and tests/qemu-specs/ planned
//!   byte-identically to the CLI (output, warnings, errors) — test_api.py;
//! * every exception type from bad input, with the report's fields as attributes;
//! * the live-libvirt flow of a flavor-like guest: plan → domain XML → defined and
//!   started → capacity → a NIC hot-added at the planned address and found there —
//!   test_nova.py.
//!
//! The environment gets maturin and pytest from PyPI the first time. Without python3
//! (with venv and pip) the test prints SKIPPED and passes, unless `CI=true`; inside,
//! pytest skips the live flow without a reachable libvirtd the same way.

mod common;
use common::skip;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ok(what: &str, o: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{what}:\n{text}");
    text
}

/// The virtual environment with maturin and pytest, created on first use.
fn venv() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
    let python = dir.join("bin/python");
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .output();
        match made {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let _ = std::fs::remove_dir_all(&dir);
                skip(&format!(
                    "python3 -m venv fails (install python3-venv): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                return None;
            }
            Err(e) => {
                skip(&format!("python3 is not installed ({e})"));
                return None;
            }
        }
    }
    let has = |module: &str| {
        Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("maturin") || !has("pytest") {
        ok(
            "pip install maturin pytest",
            Command::new(&python)
                .args(["-m", "pip", "install", "-q", "maturin>=1.5,<2", "pytest"])
                .output()
                .expect("run pip"),
        );
    }
    Some(dir)
}

#[test]
fn pytest_against_the_installed_wheel() {
    let Some(venv) = venv() else {
        return;
    };
    let python = venv.join("bin/python");
    let work = common::scratch("python");
    let wheels = work.join("wheels");
    ok(
        "maturin build",
        Command::new(&python)
            .args(["-m", "maturin", "build", "--quiet", "--manifest-path"])
            .arg(root().join("bindings/python/Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            .output()
            .expect("run maturin"),
    );
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("maturin built a wheel");
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.contains("-cp39-abi3-"),
        "not an abi3 wheel for CPython 3.9+: {name}"
    );
    ok(
        "pip install the wheel",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--force-reinstall",
                "--no-deps",
            ])
            .arg(&wheel)
            .output()
            .expect("run pip"),
    );
    // From the scratch folder, so that only the installed package can be imported.
    let out = ok(
        "pytest bindings/python/tests",
        Command::new(&python)
            .args(["-m", "pytest", "-v", "-p", "no:cacheprovider", "-rs"])
            .arg(root().join("bindings/python/tests"))
            .current_dir(&work)
            .env("DEVADDR_BIN", env!("CARGO_BIN_EXE_devaddr"))
            .env("DEVADDR_ROOT", root())
            .output()
            .expect("run pytest"),
    );
    eprintln!("{out}");
    assert!(
        out.contains("test_flavor_planned_started_hot_added"),
        "{out}"
    );
}
