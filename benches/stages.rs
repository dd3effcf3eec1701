//! The pipeline's stages apart (see BENCHMARKS.md, "Stages"): `parse` (`Spec::parse`),
//! `normalize`, `solve` (formulate, the integer programs, decode), `assemble`, `verify`
//! (the independent verifier every plan passes) and `emit` (the plan as YAML, as JSON and,
//! for the virtio guest, as libvirt domain XML), each on the output of the stage before,
//! computed once outside the timed loop.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use devaddr::{formats, stages, Options, Spec};
use std::time::Duration;

const SPECS: &[(&str, &str)] = &[
    ("200-numa4", include_str!("specs/q35-200-numa4.yaml")),
    ("200-virtio", include_str!("specs/q35-200-virtio.yaml")),
    ("1000-pack", include_str!("specs/q35-1000-pack.yaml")),
];

fn bench_stages(c: &mut Criterion) {
    let opts = Options::default();
    let mut g = c.benchmark_group("stage");
    g.sample_size(30);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    for &(id, text) in SPECS {
        let spec = Spec::parse(text, id).unwrap_or_else(|e| panic!("{id}: {e}"));
        let problem = stages::normalize(&spec, opts).unwrap();
        let placement = stages::solve(&problem, opts).unwrap();
        let plan = stages::assemble(&problem, &placement, opts).unwrap();
        let findings = stages::verify(&plan, &spec, opts);
        assert!(findings.is_empty(), "{id}: {findings:?}");
        g.bench_function(format!("parse/{id}"), |b| {
            b.iter(|| Spec::parse(black_box(text), id).unwrap())
        });
        g.bench_function(format!("normalize/{id}"), |b| {
            b.iter(|| stages::normalize(black_box(&spec), opts).unwrap())
        });
        g.bench_function(format!("solve/{id}"), |b| {
            b.iter(|| stages::solve(black_box(&problem), opts).unwrap())
        });
        g.bench_function(format!("assemble/{id}"), |b| {
            b.iter(|| stages::assemble(black_box(&problem), &placement, opts).unwrap())
        });
        g.bench_function(format!("verify/{id}"), |b| {
            b.iter(|| stages::verify(black_box(&plan), &spec, opts))
        });
        for (name, format) in [
            ("yaml", formats::Format::Yaml),
            ("json", formats::Format::Json),
        ] {
            g.bench_function(format!("emit-{name}/{id}"), |b| {
                b.iter(|| formats::render(black_box(&plan), format, opts.catalog))
            });
        }
        if id == "200-virtio" {
            g.bench_function(format!("emit-libvirt/{id}"), |b| {
                b.iter(|| devaddr::libvirt::plan_to_domain(black_box(&plan), opts.catalog).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_stages);
criterion_main!(benches);
