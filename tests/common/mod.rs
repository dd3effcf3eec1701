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

/// A scratch directory for this test process, `<prefix>-<pid>` under cargo's
/// `CARGO_TARGET_TMPDIR` (inside `target/`, not the system's /tmp). Directories an earlier
/// run left behind (their process is gone) are removed first, so runs do not accumulate.
#[allow(dead_code)] // each test crate uses its own subset
pub fn scratch(prefix: &str) -> std::path::PathBuf {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let me = std::process::id();
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| r.parse::<u32>().ok())
            else {
                continue;
            };
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            if pid != me && !alive {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{prefix}-{me}"));
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}
