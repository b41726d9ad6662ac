//! The marketplace as a client sees it, over a real dev chain with real provider processes
//! serving the real model: a k = 3 request paid and verified, a lying provider outvoted and
//! slashed, a provider killed mid-stream, and bad input refused before any money moves.

mod common;

use agora_chain_client::types;
use agora_client::{ClientError, Job, RunEvent};
use agora_devnet::demo::UNIT;
use common::*;
use std::time::Duration;

fn start_three(url: &str, root: &std::path::Path, liar: Option<&str>) -> Vec<Provider> {
    [("bob", "//Bob", 2), ("charlie", "//Charlie", 3), ("dave", "//Dave", 4)]
        .into_iter()
        .map(|(name, uri, milli)| {
            let extra: &[&str] = if liar == Some(name) { &["--test-lie", "7"] } else { &[] };
            Provider::start_with(url, root, name, uri, milli * UNIT / 1000, smollm2(), extra)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k3_request_is_answered_paid_and_verified_bad_input_costs_nothing_and_the_gateway_serves_openai() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("client-k3").await.unwrap();
    publish_smollm2(&chain).await;
    let _ticker = agora_devnet::demo::spawn_block_ticker(chain.clone(), Duration::from_secs(2));
    let root = tempfile::tempdir().unwrap();
    let providers = start_three(&chain_guard.ws_url(), root.path(), None);
    for p in &providers {
        wait_online(&chain, p).await;
    }
    let client = client(&chain_guard.ws_url()).await;
    let eve = client.account();

    // Bad input: each refused with its own error before anything is paid.
    let before = chain.free_balance(&eve).await.unwrap();
    let refusals: Vec<(Job, fn(&ClientError) -> bool)> = vec![
        (Job { model: "no-such-model".parse().unwrap(), ..job("Hi", 4, 1) }, |e| matches!(e, ClientError::UnknownModel(_))),
        (job("Hi", 4, 4), |e| matches!(e, ClientError::NotEnoughProviders { k: 4, eligible: 3 })),
        (Job { max_price_per_1k: Some(1), ..job("Hi", 4, 1) }, |e| matches!(e, ClientError::PriceTooLow { .. })),
        (job("   ", 4, 1), |e| matches!(e, ClientError::EmptyPrompt)),
        (job(&"lighthouse ".repeat(2100), 4, 1), |e| matches!(e, ClientError::PromptTooLong { .. })),
        (job("Hi", 0, 1), |e| matches!(e, ClientError::ZeroMaxTokens)),
    ];
    for (job, expected) in refusals {
        let error = client.run(&job, |_| {}).await.expect_err("refused");
        assert!(expected(&error), "{error}");
    }
    assert_eq!(chain.free_balance(&eve).await.unwrap(), before, "no money moved");

    // The real thing: three providers, one answer, one receipt, each paid its own price.
    let prompt = "The capital of France is";
    let expected = expected_greedy(prompt, 8).await;
    let mut streamed = Vec::new();
    let mut escrowed = 0;
    let result = client
        .run(&job(prompt, 8, 3), |event| match event {
            RunEvent::Token { token, .. } => streamed.push(token),
            RunEvent::Escrowed { escrow, .. } => escrowed = escrow,
            _ => {},
        })
        .await
        .unwrap();
    assert_eq!(result.tokens, expected);
    assert_eq!(streamed, expected, "tokens were streamed as they came");
    assert!(result.text.contains("Paris"), "{}", result.text);
    let failures: Vec<_> = result.providers.iter().map(|p| (p.provider.to_string(), p.failure.clone())).collect();
    assert_eq!((result.agreeing, result.verified, result.stream_corrected), (3, true, false), "{failures:?}");
    assert_eq!(result.status, types::RequestStatus::Settled);
    let receipt = result.receipt.clone().expect("a receipt");
    assert_eq!(receipt.request, result.request);
    assert_eq!(receipt.paid.0.len(), 3);
    assert!(receipt.slashed.0.is_empty());
    let prompt_tokens = local_engine().tokenize(prompt, true).len() as u128;
    let mut paid = 0;
    for (who, amount) in &receipt.paid.0 {
        let price = chain.provider(who).await.unwrap().unwrap().manifest.price_per_1k_output;
        assert_eq!(*amount, (price * (prompt_tokens + 8)).div_ceil(1000));
        paid += amount;
    }
    assert_eq!(receipt.refunded, escrowed - paid, "the rest of the escrow went back");
    let spent = before - chain.free_balance(&eve).await.unwrap();
    assert!(spent >= paid && spent < paid + UNIT / 10, "paid {paid} plus a fee, spent {spent}");
    assert_eq!(client.receipt(result.request).await.unwrap(), receipt, "the auditor's view is the same receipt");
    assert!(matches!(client.receipt(9_999).await, Err(ClientError::UnknownRequest(9_999))));

    // Two requests at once from one account (as concurrent gateway calls make): the client
    // sends its transactions one at a time, so their nonces do not collide; both settle.
    let (ocean, story) = (job("Name a large ocean:", 4, 1), job("Once upon a time, in a lighthouse by the sea, there lived", 4, 1));
    let (a, b) = futures::join!(client.run(&ocean, |_| {}), client.run(&story, |_| {}));
    assert!(a.unwrap().verified && b.unwrap().verified);

    // Local-first routing: a confident local answer costs nothing; an unsure one goes out.
    let local = agora_client::LocalModel::load(smollm2(), 1, -1.0).unwrap();
    let before = chain.free_balance(&eve).await.unwrap();
    // " Paris." is near certain; what a 135M model says after it is not (mean −1.1 over 8 tokens).
    let easy = job("The capital of France is", 2, 3);
    match client.run_local_first(&easy, &local, |_| {}).await.unwrap() {
        agora_client::Routed::Local(answer) => {
            assert_eq!(answer.tokens, expected[..2], "the local model gives the marketplace's answer");
            assert!(answer.mean_logprob >= -1.0, "{answer:?}");
        },
        other => panic!("expected a local answer: {other:?}"),
    }
    assert_eq!(chain.free_balance(&eve).await.unwrap(), before, "a local answer is free");
    let mut local = local;
    local.threshold = 0.0;
    match client.run_local_first(&easy, &local, |_| {}).await.unwrap() {
        agora_client::Routed::Marketplace { local, result } => {
            assert!(local.mean_logprob < 0.0);
            assert_eq!((result.tokens, result.verified), (expected[..2].to_vec(), true));
        },
        other => panic!("expected the marketplace: {other:?}"),
    }

    // Publishing: the project's tiny GGUF becomes a release; the history shows it.
    let tiny = root.path().join("tiny.gguf");
    agora_fixtures::tiny_gguf::write(&tiny, 3).unwrap();
    let meta = agora_client::ReleaseMeta { family: "tiny-test".into(), version: "1".into(), license: "MIT".into(), ..Default::default() };
    let release = client.publish(&tiny, meta.clone()).await.unwrap();
    assert_eq!(release.info.size_bytes, std::fs::metadata(&tiny).unwrap().len());
    assert_eq!(release.info.architecture.0, b"llama".to_vec());
    assert_eq!(client.history("tiny-test").await.unwrap(), vec![release.clone()]);
    assert!(matches!(client.publish(&tiny, meta).await, Err(ClientError::AlreadyPublished(_))));

    // The OpenAI-compatible gateway, driven by the official `openai` Python client.
    let client = std::sync::Arc::new(client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let address = listener.local_addr().unwrap();
    let key = "sk-agora-test";
    let config = agora_client::gateway::GatewayConfig { commit_blocks: 10, api_key: Some(key.into()), ..Default::default() };
    let _gateway = tokio::spawn(agora_client::gateway::serve(listener, client.clone(), config));
    // Issue 15, items 6 and 10: whoever reached the gateway spent its wallet (no key, any Host,
    // so a page rebinding its domain to 127.0.0.1 could), `n` was ignored and top_p clamped.
    // Each is refused now, in OpenAI's error object, before anything is paid.
    let before = chain.free_balance(&eve).await.unwrap();
    let chat = |extra: &str| format!(r#"{{"model": "smollm2-135m-instruct", "messages": [{{"role": "user", "content": "Hi"}}], "max_tokens": 2{extra}}}"#);
    let bearer = format!("Bearer {key}");
    for (host, authorization, body, status, param) in [
        ("127.0.0.1", None, chat(""), 401, None),
        ("127.0.0.1", Some("Bearer sk-wrong"), chat(""), 401, None),
        ("rebound.example", Some(bearer.as_str()), chat(""), 403, None),
        ("127.0.0.1", Some(bearer.as_str()), chat(r#", "n": 2"#), 400, Some("n")),
        ("localhost", Some(bearer.as_str()), chat(r#", "top_p": 7"#), 400, Some("top_p")),
        ("127.0.0.1", Some(bearer.as_str()), chat(r#", "seed": 7"#), 400, Some("seed")),
    ] {
        let (code, reply) = http_post(address, host, authorization, "/v1/chat/completions", &body).await;
        assert_eq!(code, status, "{host} {authorization:?} {body}: {reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["error"]["param"].as_str(), param, "{reply}");
        assert!(reply["error"]["message"].is_string(), "{reply}");
    }
    assert_eq!(chain.free_balance(&eve).await.unwrap(), before, "no refused call paid anything");
    let script = agora_fixtures::workspace_root().join("cli/tests/openai_client.py");
    let output = tokio::process::Command::new("python3").arg(script).arg(&base).arg("smollm2-135m-instruct").env("AGORA_GATEWAY_API_KEY", key).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the openai client failed (pip install openai==3.54.0?):\n{stderr}");
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["models"], serde_json::json!(["smollm2-135m-instruct"]));
    for answer in ["chat", "stream", "completion"] {
        assert!(seen[answer].as_str().unwrap().contains("Paris"), "{answer}: {seen}");
    }
    assert_eq!(seen["chat"], seen["stream"], "streamed and whole answers are the same tokens");
    assert!(seen["stream_chunks"].as_u64().unwrap() > 3, "{seen}");
    assert!(seen["unknown_model"].as_str().unwrap().contains("no model release matches"), "{seen}");
    // The headers name real, settled requests whose receipts hold the answer's hash.
    let request: u64 = seen["chat_request"].as_str().unwrap().parse().unwrap();
    let receipt = client.receipt(request).await.unwrap();
    assert_eq!(Some(hex::encode(receipt.winning.unwrap().output_hash)), seen["chat_output_hash"].as_str().map(str::to_string));
    let streamed: u64 = seen["stream_request"].as_str().unwrap().parse().unwrap();
    assert_eq!(client.receipt(streamed).await.unwrap().paid.0.len(), 3);

    // Issue 13, hole 6: four concurrent calls used to get one answer and three HTTP 503s (each
    // provider offered one job, and a busy provider is not drawn). Eight at once now all get
    // the answer, each as its own request: providers offer every job their engine takes at
    // once, and a call waits for capacity instead of failing.
    let script = agora_fixtures::workspace_root().join("cli/tests/openai_concurrent.py");
    let output = tokio::process::Command::new("python3").arg(script).arg(&base).arg("smollm2-135m-instruct").arg("8").env("AGORA_GATEWAY_API_KEY", key).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let batch: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let calls = batch["calls"].as_array().unwrap();
    let mut requests = std::collections::HashSet::new();
    for call in calls {
        assert!(call["error"].is_null() && call["text"].as_str().unwrap().contains("Paris"), "{batch}");
        requests.insert(call["request"].as_str().unwrap().to_string());
    }
    assert_eq!((calls.len(), requests.len()), (8, 8), "{batch}");
    let pieces: u64 = calls.iter().map(|c| c["pieces"].as_u64().unwrap()).sum();
    let wall = batch["wall_s"].as_f64().unwrap();
    let firsts: Vec<String> = calls.iter().map(|c| format!("{:.2}", c["first_piece_s"].as_f64().unwrap())).collect();
    eprintln!("8 concurrent openai calls: {pieces} pieces in {wall:.1} s ({:.1}/s in all); first piece after {} s", pieces as f64 / wall, firsts.join(", "));

    // The dApp quickstart (`examples/quickstart`, which depends on the client library alone)
    // runs its request to a verified receipt.
    let quickstart = workspace_binary("agora-quickstart");
    let output = tokio::process::Command::new(&quickstart).arg(chain_guard.ws_url()).env("AGORA_GGUF", smollm2()).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the quickstart failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Paris") && stdout.contains("3 of 3 providers agreed; verified: true"), "{stdout}");
    assert!(stdout.contains("receipt of request") && stdout.contains(&hex::encode(agora_devnet::demo::SMOLLM2_SHA256)), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_is_outvoted_and_slashed_and_a_dead_provider_is_a_no_show() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("client-faults").await.unwrap();
    publish_smollm2(&chain).await;
    let _ticker = agora_devnet::demo::spawn_block_ticker(chain.clone(), Duration::from_secs(2));
    let root = tempfile::tempdir().unwrap();
    let url = chain_guard.ws_url();
    let mut providers = start_three(&url, root.path(), Some("dave"));
    for p in &providers {
        wait_online(&chain, p).await;
    }
    let client = client(&url).await;
    let dave = providers[2].account();
    let reputation_before = chain.provider(&dave).await.unwrap().unwrap().reputation;

    // Dave lies: the client still returns the majority's answer, and Dave is slashed.
    let prompt = "The capital of France is";
    let result = client.run(&job(prompt, 8, 3), |_| {}).await.unwrap();
    assert_eq!(result.tokens, expected_greedy(prompt, 8).await);
    assert_eq!((result.agreeing, result.verified), (2, true));
    let receipt = result.receipt.expect("settled");
    assert_eq!(receipt.paid.0.len(), 2);
    assert_eq!(receipt.slashed.0.len(), 1);
    assert_eq!(receipt.slashed.0[0].0, dave);
    assert_eq!(receipt.slashed.0[0].2, types::JobOutcome::Wrong);
    let reputation = chain.provider(&dave).await.unwrap().unwrap().reputation;
    assert!(reputation.score_ppm < reputation_before.score_ppm, "{reputation:?}");
    assert_eq!(reputation.wrong, 1);

    // Dave comes back honest; Bob is killed once he has signed for the prompt. The others
    // answer. (Killing him at the streamed answer's third token raced his acknowledgement.)
    providers[2].kill();
    providers[2] = Provider::start_with(&url, root.path(), "dave", "//Dave", 4 * UNIT / 1000, smollm2(), &[]);
    wait_online(&chain, &providers[2]).await;
    let bob = providers[0].account();
    let bob_pid = providers[0].pid().unwrap();
    let long = "Once upon a time, in a lighthouse by the sea, there lived";
    let mut killed = false;
    let result = client
        .run(&job(long, 48, 3), |event| {
            if matches!(&event, RunEvent::Acknowledged { provider } if *provider == bob) && !killed {
                killed = std::process::Command::new("kill").args(["-9", &bob_pid.to_string()]).status().unwrap().success();
            }
        })
        .await
        .unwrap();
    assert!(killed);
    assert_eq!(result.tokens, expected_greedy(long, 48).await);
    assert_eq!((result.agreeing, result.verified), (2, true));
    let bob_report = result.providers.iter().find(|p| p.provider == bob).unwrap();
    assert!(bob_report.failure.is_some(), "{bob_report:?}");
    // Bob signed for the prompt before he died: the client proved it, so he is a no-show.
    assert!(bob_report.acknowledgement.is_some(), "{bob_report:?}");
    let receipt = result.receipt.expect("settled");
    assert!(receipt.reserved.0.is_empty(), "{receipt:?}");
    assert_eq!(receipt.paid.0.len(), 2);
    assert_eq!(receipt.slashed.0.iter().map(|s| (s.0.clone(), s.2.clone())).collect::<Vec<_>>(), vec![(bob.clone(), types::JobOutcome::NoShow)]);
    assert_eq!(chain.provider(&bob).await.unwrap().unwrap().reputation.no_shows, 1);

    // Bob comes back flooding: past the tokens asked for, his stream is refused, so he cannot
    // fill the client's memory; he committed honestly, so he is paid all the same.
    providers[0] = Provider::start_with(&url, root.path(), "bob", "//Bob", 2 * UNIT / 1000, smollm2(), &["--test-overrun", "9"]);
    wait_online(&chain, &providers[0]).await;
    let result = client.run(&job(prompt, 8, 3), |_| {}).await.unwrap();
    assert_eq!(result.tokens, expected_greedy(prompt, 8).await);
    assert_eq!((result.agreeing, result.verified), (2, true));
    let bob_report = result.providers.iter().find(|p| p.provider == bob).unwrap();
    assert!(bob_report.failure.as_deref().is_some_and(|f| f.contains("more than the 8 tokens asked for")), "{bob_report:?}");
    assert_eq!(bob_report.tokens, result.tokens, "nothing past the limit is kept");
    assert_eq!(result.receipt.expect("settled").paid.0.len(), 3);

    // Bob comes back dripping a frame every 5 s: the call does not wait for him. Once two
    // signed one result he gets as long again as that took, then he is dropped; the caller was
    // streamed the others' tokens, and his honest commitment is paid.
    providers[0].kill();
    providers[0] = Provider::start_with(&url, root.path(), "bob", "//Bob", 2 * UNIT / 1000, smollm2(), &["--test-drip-ms", "5000"]);
    wait_online(&chain, &providers[0]).await;
    let mut streamed = Vec::new();
    let result = client
        .run(&job(long, 24, 3), |event| {
            if let RunEvent::Token { token, .. } = event {
                streamed.push(token);
            }
        })
        .await
        .unwrap();
    assert_eq!(result.tokens, expected_greedy(long, 24).await);
    assert_eq!((result.agreeing, result.verified), (2, true));
    assert_eq!(streamed, result.tokens);
    let bob_report = result.providers.iter().find(|p| p.provider == bob).unwrap();
    assert!(bob_report.failure.as_deref().is_some_and(|f| f.starts_with("dropped: still streaming")), "{bob_report:?}");
    assert!(bob_report.tokens.len() < result.tokens.len(), "{bob_report:?}");
    assert_eq!(result.receipt.expect("settled").paid.0.len(), 3);
}

/// The header a node that seals the runtime's header would serve for block `number`: the
/// runtime's own digest of it, read from the chain. chopsticks serves headers of its own, which
/// carry none of it, so a receipt file made on the dev chain cannot be tied to a block hash.
async fn sealed_header(chain: &agora_chain_client::ChainClient, block: [u8; 32], number: u32) -> Vec<u8> {
    let runtime_digest = chain.settled_tickets_at(block).await.unwrap().runtime_digest;
    let mut header = codec::Encode::encode(&([7u8; 32], codec::Compact(number), [8u8; 32], [9u8; 32]));
    header.extend_from_slice(&runtime_digest);
    header
}

/// A receipt file as the dev chain serves it: every signature holds, and only the root is
/// missing from chopsticks' header (unless it one day seals the runtime's digest).
fn assert_served_header_is_sealed_or_rootless(file: &agora_client::ReceiptFile, block: u32) {
    match file.verify() {
        Ok(verified) => assert_eq!(verified.block.number, block),
        Err(e) => assert_eq!(e, agora_client::ReceiptCheckError::NoReceiptRoot { block }),
    }
}

/// Issue 13, tickets from the client's side: a pool buys tickets ahead, and each prompt goes
/// straight to its ticket's three providers. The answer is verified when two of them signed
/// it, before anything reaches the chain; the liar's signed dissent is slashed when the
/// bundles settle, several prompts' bundles in a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_tickets_answer_verified_from_signed_outcomes_and_settle_in_batches() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("client-tickets").await.unwrap();
    publish_smollm2(&chain).await;
    let _ticker = agora_devnet::demo::spawn_block_ticker(chain.clone(), Duration::from_secs(2));
    let root = tempfile::tempdir().unwrap();
    let providers = start_three(&chain_guard.ws_url(), root.path(), Some("dave"));
    for p in &providers {
        wait_online(&chain, p).await;
    }
    let dave = providers[2].account();
    let client = std::sync::Arc::new(client(&chain_guard.ws_url()).await);
    let config = agora_client::PoolConfig { batch: 4, max_prompt_tokens: 32, refill: true };
    let err = client.ticket_pool(&job("Hi", 8, 1), config.clone()).await.err().expect("k = 1 has no majority to verify");
    assert!(matches!(err, ClientError::TicketsNeedMajority(1)), "{err}");
    let pool = client.ticket_pool(&job("Hi", 8, 3), config).await.unwrap();
    let greedy = types::SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 };
    let too_long = pool.run(&agora_client::Prompt::Text("lighthouse ".repeat(40)), 8, &greedy, |_| {}).await.unwrap_err();
    assert!(matches!(too_long, ClientError::ExceedsTicket { .. }), "{too_long}");

    let prompts = ["The capital of France is", "Name a large ocean:", "Two plus two is"];
    let asked: Vec<_> = prompts.iter().map(|p| agora_client::Prompt::Text(p.to_string())).collect();
    let answers = futures::future::join_all(asked.iter().map(|p| pool.run(p, 8, &greedy, |_| {}))).await;
    let mut tickets = Vec::new();
    for (prompt, answer) in prompts.iter().zip(answers) {
        let answer = answer.unwrap();
        assert_eq!(answer.tokens, expected_greedy(prompt, 8).await, "{prompt}");
        assert_eq!((answer.agreeing, answer.verified), (2, true), "{prompt}: {:?}", answer.providers);
        let verified = answer.timings.verified.expect("verified before the call returned");
        assert!(answer.timings.first_token <= verified && verified <= answer.timings.answered);
        tickets.push(answer.ticket);
    }
    tickets.sort();
    tickets.dedup();
    assert_eq!(tickets.len(), 3, "one ticket per prompt");
    let (mut slashed, mut blocks) = (0, Vec::new());
    for ticket in tickets {
        let settled = pool.receipt(ticket).await.unwrap();
        let receipt = &settled.receipt;
        // Its receipt file proves offline what the chain did: the buyer's Use, two of three
        // signatures on the result and the liar's on another, the receipt under its block's root.
        let mut file = client.receipt_file(&settled).await.unwrap();
        assert_served_header_is_sealed_or_rootless(&file, receipt.settled_at);
        file.header = sealed_header(&chain, settled.block, receipt.settled_at).await;
        let verified = file.verify().unwrap();
        assert_eq!((verified.block.number, verified.k, verified.agreeing), (receipt.settled_at, 3, 2));
        blocks.push(receipt.settled_at);
        assert_eq!(receipt.paid.0.len(), 2, "{receipt:?}");
        assert_eq!(receipt.slashed.0.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), vec![dave.clone()], "the liar signed its dissent");
        slashed += receipt.slashed.0[0].1;
        assert!(chain.ticket(ticket).await.unwrap().is_none(), "settled whole");
    }
    assert!(slashed > 0);
    blocks.sort();
    blocks.dedup();
    // The answers came within a block of each other: whatever arrived while a settlement was
    // in flight went into the next one.
    assert!(blocks.len() <= 2, "three bundles, at most two settlements: {blocks:?}");
    let reputation = chain.provider(&dave).await.unwrap().unwrap().reputation;
    assert_eq!(reputation.wrong, 3);

    // From the command line: `agora run --tickets` saves a receipt `agora receipt verify` checks
    // with no chain (an unreachable URL); an altered one fails, naming what does not hold. Its
    // ticket is sized to the prompt, here longer than a pool's default 512 tokens.
    let url = chain_guard.ws_url();
    let agora = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agora"));
        command.args(args).arg("--json").arg("--gguf").arg(smollm2());
        command.output()
    };
    let long_prompt = format!("{}Two plus two is", "The lighthouse keeper counts the waves. ".repeat(80));
    assert!(local_engine().tokenize(&long_prompt, false).len() > 512);
    let saved = root.path().join("ticket.receipt");
    let saved_arg = saved.to_str().unwrap();
    let ran = agora(&["run", "--chain-url", &url, "--model", "smollm2-135m-instruct", "-k", "3", "--max-tokens", "8", "--tickets", "--save-receipt", saved_arg, "--raw", &long_prompt]).await.unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let ran: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!((ran["verified"].clone(), ran["agreeing"].clone(), ran["receipt_file"].clone()), (true.into(), 2.into(), saved_arg.into()), "{ran}");
    let offline = ["--chain-url", "ws://127.0.0.1:9"];
    let verify = || agora(&[&["receipt", "verify", saved_arg][..], &offline[..]].concat());
    let served = verify().await.unwrap();
    assert!(served.status.success() || String::from_utf8_lossy(&served.stderr).contains("carries no receipt root"), "{}", String::from_utf8_lossy(&served.stderr));
    let mut file = agora_client::ReceiptFile::from_bytes(&std::fs::read(&saved).unwrap()).unwrap();
    let block = u32::try_from(ran["receipt"]["settled_at"].as_u64().unwrap()).unwrap();
    let hash = chain.api().at_block(u64::from(block)).await.unwrap().block_hash().0;
    file.header = sealed_header(&chain, hash, block).await;
    std::fs::write(&saved, file.to_bytes()).unwrap();
    let checked = verify().await.unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let checked: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(checked["verified"], true, "{checked}");
    assert_eq!((checked["receipt"]["ticket"].clone(), checked["block"].clone()), (ran["ticket"].clone(), ran["receipt"]["settled_at"].clone()), "{checked}");
    assert_eq!(checked["receipt"]["slashed"][0]["provider"], dave.to_string(), "{checked}");
    let mut altered = agora_client::ReceiptFile::from_bytes(&std::fs::read(&saved).unwrap()).unwrap();
    altered.receipt.refunded += 1;
    std::fs::write(&saved, altered.to_bytes()).unwrap();
    let refused = verify().await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not in block"), "{}", String::from_utf8_lossy(&refused.stderr));
    // Down to one ticket of four, the pool bought the next four in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pool.held() < 5 {
        assert!(std::time::Instant::now() < deadline, "the pool never refilled: {} held", pool.held());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The gateway through a pool: eight concurrent calls of the official `openai` client, each
    // served from a ticket of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let tickets = Some(agora_client::PoolConfig { batch: 8, max_prompt_tokens: 48, refill: true });
    let config = agora_client::gateway::GatewayConfig { max_tokens_limit: 16, tickets, ..Default::default() };
    let _gateway = tokio::spawn(agora_client::gateway::serve(listener, client.clone(), config));
    let script = agora_fixtures::workspace_root().join("cli/tests/openai_concurrent.py");
    let output = tokio::process::Command::new("python3").arg(script).arg(&base).arg("smollm2-135m-instruct").arg("8").output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let batch: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let calls = batch["calls"].as_array().unwrap();
    let mut used = std::collections::HashSet::new();
    for call in calls {
        // Dave lies from the second token on: what streams depends on who answers first, so
        // only that every call was answered from a ticket of its own is checked here.
        assert!(call["error"].is_null() && call["pieces"].as_u64().unwrap() > 0, "{batch}");
        assert!(call["request"].as_str().unwrap().starts_with("ticket-"), "{batch}");
        used.insert(call["request"].as_str().unwrap().to_string());
    }
    assert_eq!((calls.len(), used.len()), (8, 8), "{batch}");
    let pieces: u64 = calls.iter().map(|c| c["pieces"].as_u64().unwrap()).sum();
    let wall = batch["wall_s"].as_f64().unwrap();
    let firsts: Vec<String> = calls.iter().map(|c| format!("{:.2}", c["first_piece_s"].as_f64().unwrap())).collect();
    eprintln!("8 concurrent openai calls on pooled tickets: {pieces} pieces in {wall:.1} s ({:.1}/s in all); first piece after {} s", pieces as f64 / wall, firsts.join(", "));
}

/// One HTTP/1.1 POST of a JSON `body` to `address` naming `host`, as a browser or a client
/// would send it: the status code and the body of the reply.
async fn http_post(address: std::net::SocketAddr, host: &str, authorization: Option<&str>, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let authorization = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{}\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        address.port(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let code = reply.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (code, body)
}
