//! Helpers shared by the integration tests.

use std::process::Command;

/// Run the devaddr binary with `args`, `stdin` written to it (closed when `None`).
#[allow(dead_code)] // each test crate uses its own subset
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_devaddr"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run devaddr");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.map(<[u8]>::to_vec);
    // Written from a thread: a large input must not block on a full stdout pipe.
    let writer = std::thread::spawn(move || {
        if let Some(b) = input {
            let _ = pipe.write_all(&b);
        }
    });
    let o = child.wait_with_output().expect("wait for devaddr");
    let _ = writer.join();
    o
}

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

impl TmpFile {
    /// The path as text.
    #[allow(dead_code)]
    pub fn as_str(&self) -> &str {
        &self.path
    }
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

/// The same run as one that failed (exit `code` 1 or 2, text stderr `text`), again with
/// `--error-format json`: the same exit code, and stderr one line of JSON,
/// `{"errors": [...]}`, each error of the kind the exit code implies (2: input or usage;
/// 1: infeasible, check or internal), with a code, a message and a location that agree
/// with the text form (its file, path, line and element appear there). Returns the
/// parsed report. Every CLI test that sees exit 1 or 2 calls this through its run helper,
/// so every bad-input test also runs in the JSON format.
#[allow(dead_code)] // each test crate uses its own subset
pub fn json_twin(
    args: &[&str],
    stdin: Option<&[u8]>,
    code: Option<i32>,
    text: &str,
) -> serde_json::Value {
    let mut twin = args.to_vec();
    twin.extend(["--error-format", "json"]);
    let o = run(&twin, stdin);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let what = format!("devaddr {} --error-format json", args.join(" "));
    assert_eq!(
        o.status.code(),
        code,
        "{what}: exit code differs; stderr: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "{what}: expected one line of JSON on stderr: {err}"
    );
    let v: serde_json::Value = serde_json::from_str(&err)
        .unwrap_or_else(|e| panic!("{what}: stderr is not JSON ({e}): {err}"));
    let errors = v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no `errors` array: {err}"));
    assert!(!errors.is_empty(), "{what}: empty `errors`");
    let kinds: &[&str] = if code == Some(2) {
        &["input", "usage"]
    } else {
        &["infeasible", "check", "internal"]
    };
    for e in errors {
        let kind = e["kind"].as_str().unwrap_or_default();
        assert!(
            kinds.contains(&kind),
            "{what}: kind `{kind}` for exit {code:?}: {e}"
        );
        assert!(
            e["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{what}: no code: {e}"
        );
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: no message: {e}"
        );
        let loc = e["location"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: no location object: {e}"));
        if kind == "usage" {
            continue;
        }
        for key in ["file", "path", "element"] {
            if let Some(s) = loc.get(key).and_then(|v| v.as_str()) {
                assert!(
                    text.contains(s),
                    "{what}: {key} `{s}` not in the text form: {text}"
                );
            }
        }
        if let Some(line) = loc.get("line").and_then(|v| v.as_u64()) {
            assert!(
                text.contains(&format!("line {line}")),
                "{what}: line {line} not in the text form: {text}"
            );
        }
        if kind == "input" {
            let m = e["message"].as_str().unwrap_or_default();
            assert!(
                text.contains(m),
                "{what}: message `{m}` not in the text form: {text}"
            );
        }
        if kind == "infeasible" {
            for key in ["binding", "requirement", "fix"] {
                assert!(
                    e[key].is_string(),
                    "{what}: infeasible without `{key}`: {e}"
                );
            }
        }
        if kind == "check" {
            assert!(
                e["findings"].as_array().is_some_and(|f| !f.is_empty()),
                "{what}: check without findings: {e}"
            );
        }
    }
    v
}

/// Whether a failed run should be repeated with `--error-format json` (exit 1 or 2, and
/// not already asked for a format).
#[allow(dead_code)] // each test crate uses its own subset
pub fn wants_json_twin(args: &[&str], code: Option<i32>) -> bool {
    matches!(code, Some(1 | 2)) && !args.iter().any(|a| a.starts_with("--error-format"))
}

/// Say why a test that needs an external tool did not run; fail instead when `CI` is set
/// (CI must run everything).
#[allow(dead_code)] // each test crate uses its own subset
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!("CI must run this test, but: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// Whether `tool --version` (or `tool version`) runs.
#[allow(dead_code)]
pub fn have(tool: &str) -> bool {
    ["--version", "version"].iter().any(|arg| {
        Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The specs every binding must plan byte-identically to the CLI: examples/ and
/// tests/qemu-specs/, sorted.
#[allow(dead_code)]
pub fn spec_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["examples", "tests/qemu-specs"] {
        let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("read the spec folder")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

/// libdevaddr built and installed (library, header, devaddr.pc) by
/// `bindings/c/install.sh` into one folder under `target/`, once per test binary; its
/// prefix. A failed build fails the test.
#[allow(dead_code)]
pub fn libdevaddr() -> &'static std::path::Path {
    static PREFIX: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let prefix = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("libdevaddr");
        let o = Command::new("sh")
            .arg(root.join("bindings/c/install.sh"))
            .arg(&prefix)
            .arg("--debug")
            .output()
            .expect("run bindings/c/install.sh");
        assert!(
            o.status.success(),
            "bindings/c/install.sh: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        prefix
    })
}

/// What the CLI (or a binding standing in for it) wrote and how it ended.
#[allow(dead_code)]
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// Exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<std::process::Output> for Outcome {
    fn from(o: std::process::Output) -> Self {
        Outcome {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// `devaddr ARGS` run as a binding's twin is compared with it.
#[allow(dead_code)]
pub fn cli(args: &[&str]) -> Outcome {
    run(args, None).into()
}
