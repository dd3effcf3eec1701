//! The Go package (`bindings/go`, cgo over libdevaddr, standard library only) as
//! KubeVirt would use it: `go vet` and `go test` against the installed libdevaddr
//! (found with pkg-config), with no module download (`GOPROXY=off`):
//!
//! * a VMI-like guest with interfaces and GPU passthrough devices on two NUMA nodes:
//!   every device below its node's expander, addresses in KubeVirt's `0000:BB:SS.F`;
//! * capacity for hotplug, exactly that many hot-added, the next one the typed
//!   infeasible error; bad input the typed input error;
//! * every spec of examples/ and tests/qemu-specs/ planned byte-identically to the CLI
//!   (output, warnings, errors); 8 goroutines planning alike.
//!
//! Without Go (Debian's golang-go) the test prints SKIPPED and passes, unless `CI=true`.

mod common;
use common::{have, libdevaddr, skip};
use std::path::Path;
use std::process::Command;

#[test]
fn go_test_against_the_installed_library() {
    if !have("go") || !have("pkg-config") {
        skip("go (golang-go) or pkg-config is not installed");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let prefix = libdevaddr();
    let go = |args: &[&str]| {
        let o = Command::new("go")
            .args(args)
            .current_dir(root.join("bindings/go"))
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .env("LD_LIBRARY_PATH", prefix.join("lib"))
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-count=1")
            .env("DEVADDR_BIN", env!("CARGO_BIN_EXE_devaddr"))
            .env("DEVADDR_ROOT", root)
            .output()
            .expect("run go");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "go {}:\n{text}", args.join(" "));
        text
    };
    go(&["vet", "./..."]);
    let listed = Command::new("gofmt")
        .arg("-l")
        .arg(root.join("bindings/go"))
        .output()
        .expect("run gofmt");
    assert!(
        listed.status.success() && listed.stdout.is_empty(),
        "gofmt would change: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let out = go(&["test", "-v", "./..."]);
    eprintln!("{out}");
    assert!(!out.contains("--- SKIP"), "{out}");
    assert!(
        out.contains("--- PASS: TestEverySpecPlansByteIdenticallyToTheCLI"),
        "{out}"
    );
}
