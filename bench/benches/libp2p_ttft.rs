//! Time to first token through the whole provider path, against the plain llama-cpp-2 loop.
//!
//! A provider process serves the real model on a dev chain; a client on loopback opens
//! `/agora/infer/1` and times from sending its request to the first token frame. That path
//! includes the provider's on-chain checks (one runtime-API call), the synced journal write and
//! the libp2p round trip. The baseline is `agora-provider-bench --plain 1` on the same prompt.
//! Each prompt is sent a second after its request was drawn, once the provider has read the
//! block: chopsticks shares the two cores here, and its work for the provider's block pass would
//! otherwise land in the measured window.
//!
//! `cargo bench -p agora-bench --bench libp2p_ttft --profile dev`

#[path = "../../provider-node/tests/support/mod.rs"]
mod support;

use agora_devnet::demo::UNIT;
use agora_primitives::wire::{InferFrame, InferOpen, MAX_FRAME_BYTES};
use agora_net::frame;
use std::time::Instant;
use support::*;

const PROMPT: &str = "Write a detailed story about a lighthouse keeper who finds a message in a bottle.";
const RUNS: usize = 11;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let plain = std::process::Command::new(env!("CARGO_BIN_EXE_agora-provider-bench"))
        .args(["--plain", "1", "--tokens", "16", "--repeats", &RUNS.to_string(), "--prompt", PROMPT])
        .output()?;
    anyhow::ensure!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let (_, runs): (Vec<u32>, Vec<(f64, f64)>) = serde_json::from_slice(&plain.stdout)?;
    let plain_ttft = median(runs.iter().map(|r| r.1).collect());

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let through_libp2p = runtime.block_on(async {
        let (chain_guard, chain) = agora_e2e::start_chain("bench-ttft").await?;
        publish_smollm2(&chain).await;
        let root = tempfile::tempdir()?;
        // Two slots of one thread each: the request runs on one thread, like the baseline.
        let bob = Provider::start(&chain_guard.ws_url(), root.path(), "bob", "//Bob", 2 * UNIT / 1000);
        let profile = wait_online(&chain, &bob).await.manifest.offers.0[0].runtime_profile;
        let prompt = local_engine().tokenize(PROMPT, false);
        let net = client_network().await;
        let mut ttft = Vec::new();
        for run in 0..=RUNS {
            let (id, _) = open_request(&chain, params(profile, &prompt, 16, 1)).await;
            let mut stream = open(&net, &chain, &bob.account()).await;
            // Let the provider read the assignment's block first, as it has long done when the
            // chain is a remote node and not a chopsticks process on the same two cores.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let started = Instant::now();
            frame::write(&mut stream, &InferOpen::from(signed_request(id, &prompt, &net))).await?;
            let accepted = frame::read::<InferFrame, _>(&mut stream, MAX_FRAME_BYTES).await?;
            anyhow::ensure!(matches!(accepted, Some(InferFrame::Accepted { .. })), "{accepted:?}");
            let first = frame::read::<InferFrame, _>(&mut stream, MAX_FRAME_BYTES).await?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(matches!(first, Some(InferFrame::Token { .. })), "{first:?}");
            read_all(&mut stream).await;
            wait_receipt(&chain, id, &[&bob]).await;
            if run > 0 {
                ttft.push(elapsed); // the first run warms the connection and the caches
            }
        }
        let log = bob.log();
        let admitted = log.lines().filter(|l| l.contains("admitted")).count();
        let asked = log.lines().filter(|l| l.contains("admitted") && l.contains("asked_chain\u{1b}[0m\u{1b}[2m=\u{1b}[0mtrue")).count();
        println!("{admitted} prompts admitted, {asked} of them needed a chain query (the rest used the journaled assignment)");
        anyhow::Ok(median(ttft))
    })?;

    println!("| path | TTFT ms (median of {RUNS}) |");
    println!("|---|---|");
    println!("| plain llama-cpp-2 loop, 1 thread | {plain_ttft:.1} |");
    println!("| provider over libp2p on loopback, 1 thread per slot | {through_libp2p:.1} |");
    println!("| difference | {:+.1} |", through_libp2p - plain_ttft);
    Ok(())
}
