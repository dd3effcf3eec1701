//! Helpers shared by the integration tests.

use std::process::Command;

/// Run the devaddr binary with `args`; its stdout, or a panic with its stderr.
#[allow(dead_code)] // each test crate uses its own subset
pub fn devaddr_ok(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_devaddr"))
        .args(args)
        .output()
        .expect("run devaddr");
    assert!(
        o.status.success(),
        "devaddr {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("devaddr output is UTF-8")
}
