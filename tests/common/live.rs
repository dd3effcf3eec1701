//! The live libvirt at qemu:///system, for tests that define domains in it: reachable or
//! a printed skip (a failure under `CI`), `virsh` calls, and domains undefined again
//! when their guard drops (also when the test fails).

#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub const URI: &str = "qemu:///system";

pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

pub fn virsh(args: &[&str]) -> std::process::Output {
    Command::new("virsh")
        .args(["-q", "-c", URI])
        .args(args)
        .output()
        .expect("virsh runs")
}

pub fn libvirt_up() -> Result<(), String> {
    let o = Command::new("virsh")
        .args(["-c", URI, "uri"])
        .output()
        .map_err(|e| format!("virsh is not installed ({e})"))?;
    if o.status.success() {
        return Ok(());
    }
    Err(format!(
        "libvirtd is not reachable: {}",
        String::from_utf8_lossy(&o.stderr).trim()
    ))
}

/// libvirt reachable (brought up under CI as the oracle documents), else a skip.
pub fn live() -> bool {
    if std::env::var_os("CI").is_some() && libvirt_up().is_err() {
        let setup =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/libvirt-oracle/setup.sh");
        let _ = Command::new("bash").arg(setup).status();
    }
    match libvirt_up() {
        Ok(()) => true,
        Err(why) => {
            skip(&format!(
                "{why} (run ../shared/tools/libvirt-oracle/setup.sh as root)"
            ));
            false
        }
    }
}

/// A domain this test defined; undefined when dropped (also when the test fails).
pub struct Defined(pub String);

impl Drop for Defined {
    fn drop(&mut self) {
        let _ = virsh(&["undefine", "--nvram", &self.0]);
    }
}

/// `virsh define` the document `xml` (written to `dir`): the guard, or libvirt's error.
pub fn define(dir: &Path, xml: &str, name: &str) -> Result<Defined, String> {
    let f: PathBuf = dir.join(format!("{name}.xml"));
    std::fs::write(&f, xml).unwrap();
    let o = virsh(&["define", f.to_str().unwrap()]);
    let _ = std::fs::remove_file(&f);
    if o.status.success() {
        Ok(Defined(name.to_string()))
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

pub fn dumpxml(name: &str) -> String {
    let o = virsh(&["dumpxml", "--inactive", name]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}
