//! Every bench binary starts and states its usage. Cargo builds a crate's binaries for its
//! integration tests, so this is also what puts them beside the test executables, where
//! docs/BENCHMARKS.md runs them from after `cargo test --workspace --no-run`. Clap checks a
//! command's definition when it parses, so a clash among a binary's flags fails here.

use std::process::Command;

fn usage_of(binary: &str) -> String {
    let out = Command::new(binary).arg("--help").output().unwrap();
    assert!(out.status.success(), "{binary} --help failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_bench_binary_prints_its_usage() {
    for (binary, flag) in [
        (env!("CARGO_BIN_EXE_agora-provider-bench"), "--tokens"),
        (env!("CARGO_BIN_EXE_agora-verifier-bench"), "--lengths"),
        (env!("CARGO_BIN_EXE_agora-verifier-calibrate"), "--prompts"),
        (env!("CARGO_BIN_EXE_agora-client-bench"), "--chain-url"),
        (env!("CARGO_BIN_EXE_agora-route-bench"), "--max-tokens"),
    ] {
        let usage = usage_of(binary);
        assert!(usage.contains("Usage:") && usage.contains(flag), "{binary}: {usage}");
    }
}
