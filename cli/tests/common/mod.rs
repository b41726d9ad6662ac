//! What the client's end-to-end tests share: the provider fixtures, a client paying as Eve, jobs,
//! and the answer the real model gives.

#![allow(dead_code)]

#[path = "../../../provider-node/tests/support/mod.rs"]
mod support;

pub use support::*;

use agora_client::{Client, ClientConfig, Job, Prompt, Timeouts};
use std::time::Duration;

pub async fn client(url: &str) -> Client {
    let mut config = ClientConfig::dev(url);
    config.model_files = vec![smollm2().clone()];
    config.timeouts = Timeouts { settlement: Duration::from_secs(300), ..Timeouts::default() };
    Client::connect(config).await.unwrap()
}

pub fn job(prompt: &str, max_tokens: u32, k: u32) -> Job {
    let mut job = Job::new("smollm2-135m-instruct".parse().unwrap(), Prompt::Text(prompt.into()));
    job.max_tokens = max_tokens;
    job.k = k;
    job.commit_blocks = 10;
    job
}

/// The greedy answer of the real model in this process.
pub async fn expected_greedy(prompt: &str, max: u32) -> Vec<u32> {
    let request = agora_engine::GenerateRequest {
        prompt: local_engine().tokenize(prompt, true),
        max_output_tokens: max,
        sampling: Default::default(),
        seed: 0,
        logprobs: false,
    };
    local_engine().submit(request).unwrap().finish().await.unwrap().tokens
}
