//! `DEVADDR_GEN_DIR=DIR DEVADDR_GEN_SEEDS=A..B cargo test --test gen_dump -- --ignored`
//! writes the generator's specs (tests/common/specgen.rs) to DIR, one file per seed, for
//! running the release CLI over them by hand.

#[path = "common/specgen.rs"]
mod specgen;

#[test]
#[ignore = "writes files; run by hand"]
fn dump_specs() {
    let dir = std::env::var("DEVADDR_GEN_DIR").expect("DEVADDR_GEN_DIR");
    let seeds = std::env::var("DEVADDR_GEN_SEEDS").unwrap_or_else(|_| "0..100".into());
    let (a, b) = seeds.split_once("..").expect("A..B");
    std::fs::create_dir_all(&dir).unwrap();
    for seed in a.parse::<u64>().unwrap()..b.parse::<u64>().unwrap() {
        let text = specgen::spec(seed, specgen::Sizes::default());
        std::fs::write(format!("{dir}/gen-{seed}.yaml"), text).unwrap();
    }
}
