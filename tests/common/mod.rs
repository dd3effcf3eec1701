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

/// A scratch directory of one test, `<prefix>-<pid>-<n>` under cargo's
/// `CARGO_TARGET_TMPDIR` (inside `target/`, not the system's /tmp). It is removed when
/// the guard goes out of scope, unless the test is failing (then it stays for a look, and
/// the next run removes it: directories whose process is gone are removed first).
#[allow(dead_code)] // each test crate uses its own subset
pub fn scratch(prefix: &str) -> Scratch {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let me = std::process::id();
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| r.split('-').next())
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
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = base.join(format!("{prefix}-{me}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    Scratch(dir)
}

/// A scratch directory, removed on drop unless the thread is panicking (see [`scratch`]).
#[allow(dead_code)]
pub struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A file with `text` in a scratch folder of its own (`prefix`, see [`scratch`]); the
/// guard gives its path as text and removes the folder when dropped.
#[allow(dead_code)]
pub fn tmp_file(prefix: &str, name: &str, text: impl AsRef<[u8]>) -> TmpFile {
    let dir = scratch(prefix);
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write the scratch file");
    TmpFile {
        path: p.display().to_string(),
        _dir: dir,
    }
}

/// A file path (as text) that lives as long as its scratch folder.
#[allow(dead_code)]
pub struct TmpFile {
    path: String,
    _dir: Scratch,
}

impl std::ops::Deref for TmpFile {
    type Target = str;
    fn deref(&self) -> &str {
        &self.path
    }
}

impl AsRef<std::path::Path> for TmpFile {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.path)
    }
}

impl AsRef<std::ffi::OsStr> for TmpFile {
    fn as_ref(&self) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(&self.path)
    }
}
