//! The whole command line, one process per iteration (see BENCHMARKS.md, "Whole CLI"): the
//! release binary Cargo builds for the benchmarks, started, planning a spec from
//! `benches/specs/` with its output to /dev/null, and waited for. What a management
//! application that shells out per guest pays.

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_devaddr"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("devaddr starts");
    assert!(status.success(), "devaddr {args:?}: {status}");
}

fn bench_cli(c: &mut Criterion) {
    let mut g = c.benchmark_group("cli");
    g.sample_size(50);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("version", |b| b.iter(|| run(&["--version"])));
    g.bench_function("models", |b| b.iter(|| run(&["models"])));
    for spec in ["1", "10", "200-virtio", "200-numa4", "1000-pack"] {
        let file = format!("benches/specs/q35-{spec}.yaml");
        run(&["plan", &file]);
        g.bench_function(format!("plan/{spec}"), |b| b.iter(|| run(&["plan", &file])));
    }
    let file = "benches/specs/q35-200-virtio.yaml";
    g.bench_function("plan-libvirt/200-virtio", |b| {
        b.iter(|| run(&["plan", "--format", "libvirt", file]))
    });
    g.finish();
}

criterion_group!(benches, bench_cli);
criterion_main!(benches);
