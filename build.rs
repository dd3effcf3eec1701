//! Turns the hardware catalog's YAML files (`models/`, the source of truth) into JSON in
//! `OUT_DIR`, which the binary embeds: the same data, parsed at start-up by serde_json in a
//! fraction of serde_yaml's time. `catalog::tests` checks that both give the same catalog.

use std::path::Path;

/// The catalog files the library embeds, relative to `models/`.
const FILES: &[&str] = &[
    "machines/q35.yaml",
    "machines/pc-i440fx.yaml",
    "machines/virt.yaml",
    "controllers.yaml",
    "devices.yaml",
];

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    for file in FILES {
        let src = Path::new("models").join(file);
        println!("cargo:rerun-if-changed={}", src.display());
        let text = std::fs::read_to_string(&src)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
        let value: serde_yaml::Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", src.display()));
        let json = serde_json::to_string(&value)
            .unwrap_or_else(|e| panic!("{} has no JSON form: {e}", src.display()));
        let dst = Path::new(&out)
            .join("models")
            .join(file)
            .with_extension("json");
        std::fs::create_dir_all(dst.parent().expect("a file has a directory"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dst.display()));
        std::fs::write(&dst, json)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", dst.display()));
    }
}
