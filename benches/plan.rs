//! Planning benchmarks (see BENCHMARKS.md).
//!
//! `plan/*` time `devaddr::plan` on an already parsed spec (the whole pipeline: normalize,
//! integer program, solve, decode, verify); `parse+plan/*` includes parsing the YAML.
//! The specs live in `benches/specs/`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

const Q35_10: &str = include_str!("specs/q35-10.yaml");
const Q35_50: &str = include_str!("specs/q35-50.yaml");
const Q35_200_NUMA4: &str = include_str!("specs/q35-200-numa4.yaml");
const Q35_1000_PACK: &str = include_str!("specs/q35-1000-pack.yaml");

fn parse(text: &str, name: &str) -> devaddr::Spec {
    devaddr::Spec::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Parse `text` and check once, outside any timed loop, that it plans.
fn plannable(text: &str, name: &str) -> devaddr::Spec {
    let spec = parse(text, name);
    if let Err(e) = devaddr::plan(&spec) {
        panic!("{name} does not plan: {e}");
    }
    spec
}

fn bench_plan_small(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    for (id, text, name) in [("10", Q35_10, "q35-10.yaml"), ("50", Q35_50, "q35-50.yaml")] {
        let spec = plannable(text, name);
        g.bench_with_input(BenchmarkId::from_parameter(id), &spec, |b, spec| {
            b.iter(|| devaddr::plan(black_box(spec)).unwrap())
        });
    }
    g.finish();
}

fn bench_plan_large(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan");
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    for (id, text, name) in [
        ("200-numa4", Q35_200_NUMA4, "q35-200-numa4.yaml"),
        ("1000-pack", Q35_1000_PACK, "q35-1000-pack.yaml"),
    ] {
        let spec = plannable(text, name);
        g.bench_with_input(BenchmarkId::from_parameter(id), &spec, |b, spec| {
            b.iter(|| devaddr::plan(black_box(spec)).unwrap())
        });
    }
    g.finish();
}

fn bench_parse_plan(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse+plan");
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    plannable(Q35_200_NUMA4, "q35-200-numa4.yaml");
    g.bench_function("200-numa4", |b| {
        b.iter(|| {
            let spec = parse(black_box(Q35_200_NUMA4), "q35-200-numa4.yaml");
            devaddr::plan(&spec).unwrap()
        })
    });
    g.finish();
}

/// The lifecycle questions on the 200-device, 4-node guest (numa preset): a replan that removes every
/// tenth device and adds ten, a live hotplug of four NICs, and a capacity question for one
/// kind on every node (live and next boot: ten integer programs).
fn bench_lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("lifecycle");
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    // The numa preset leaves every expander room to grow at next boot.
    let mut spec = plannable(Q35_200_NUMA4, "q35-200-numa4.yaml");
    spec.policy.preset = Some(devaddr::spec::Preset::Numa);
    let plan = devaddr::plan(&spec).unwrap();
    let mut edited = spec.clone();
    edited.devices = spec
        .devices
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .map(|(_, d)| d.clone())
        .collect();
    for i in 0..10 {
        edited.devices.push(devaddr::DeviceEntry {
            id: format!("new{i}"),
            kind: "virtio-net".into(),
            numa_node: Some(i % 4),
            ..Default::default()
        });
    }
    devaddr::replan(&edited, &plan).unwrap();
    g.bench_function("replan-200-numa4", |b| {
        b.iter(|| devaddr::replan(black_box(&edited), &plan).unwrap())
    });
    let add: Vec<devaddr::DeviceEntry> = (0..4)
        .map(|i| devaddr::DeviceEntry {
            id: format!("hp{i}"),
            kind: "virtio-net".into(),
            numa_node: Some(i),
            ..Default::default()
        })
        .collect();
    if devaddr::hotplug(&plan, &add).is_ok() {
        g.bench_function("hotplug-4-into-200-numa4", |b| {
            b.iter(|| devaddr::hotplug(black_box(&plan), &add).unwrap())
        });
    }
    let q = devaddr::CapacityQuery::new(vec!["virtio-net".into()], None);
    let as_spec = plan.to_spec();
    g.bench_function("capacity-virtio-net-200-numa4", |b| {
        b.iter(|| devaddr::capacity(black_box(&as_spec), &q).unwrap())
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_plan_small,
    bench_plan_large,
    bench_parse_plan,
    bench_lifecycle
);
criterion_main!(benches);
