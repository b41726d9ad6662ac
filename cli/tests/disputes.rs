//! Disputes on a real dev chain, with real provider processes and a real verifier re-scoring
//! with the real model: a 1–1–1 split vote settled by the verifier's verdict, as a request and
//! on tickets (`agora run --tickets` and the gateway) fallen back to commit–reveal; a false
//! challenge that loses its bond; bad verification pushes refused by name, and a verifier
//! killed and restarted that still casts its verdict by the deadline; an audited k = 1 cheat
//! slashed with the client refunded.

mod common;

use agora_chain_client::{agora, bounded, types, Rejection, VerifierError};
use agora_client::{ClientError, DisputeCause, Job};
use agora_devnet::demo::UNIT;
use agora_primitives::wire::{token_hash, VerifyErrorKind, VerifyReply, VerifyRequest};
use common::*;
use std::time::Duration;

fn priced(prompt: &str, max_tokens: u32, k: u32, max_price_per_1k: u128) -> Job {
    Job { max_price_per_1k: Some(max_price_per_1k), ..job(prompt, max_tokens, k) }
}

/// One chat completion through the gateway at argv[1] with the official `openai` client,
/// printed as JSON: its text and the ticket and output hash its headers name.
const OPENAI_CHAT: &str = r#"
import json, sys, openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="not-needed", max_retries=0, timeout=600)
question = [{"role": "user", "content": "What is the capital of France?"}]
raw = client.chat.completions.with_raw_response.create(model=sys.argv[2], messages=question, max_tokens=8)
text = raw.parse().choices[0].message.content
print(json.dumps({"text": text, "ticket": raw.headers.get("x-agora-ticket-id"), "output_hash": raw.headers.get("x-agora-output-hash")}))
"#;

fn refusal(reply: Result<VerifyReply, agora_net::StreamError>) -> VerifyErrorKind {
    match reply {
        Ok(VerifyReply::Error { kind, .. }) => kind,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifiers_settle_a_split_vote_refuse_a_false_challenge_and_catch_an_audited_cheat() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("client-disputes").await.unwrap();
    publish_smollm2(&chain).await;
    let _ticker = agora_devnet::demo::spawn_block_ticker(chain.clone(), Duration::from_secs(2));
    let root = tempfile::tempdir().unwrap();
    let url = chain_guard.ws_url();
    let stake = (100 * UNIT).to_string();
    // Bob is honest and cheap; Charlie and Dave lie, each its own way, so three providers give
    // three different answers. Charlie's price is high and its stake the minimum, so that a
    // request it serves alone is worth its slash, which makes its spot check certain. Ferdie
    // verifies and asks more than any client here pays, so it is never drawn to serve.
    let mut providers = vec![
        Provider::start_with(&url, root.path(), "bob", "//Bob", 2 * UNIT / 1000, smollm2(), &[]),
        Provider::start_with(&url, root.path(), "charlie", "//Charlie", 1_000 * UNIT, smollm2(), &["--test-lie", "7", "--stake", &stake]),
        Provider::start_with(&url, root.path(), "dave", "//Dave", 4 * UNIT / 1000, smollm2(), &["--test-lie", "13"]),
        Provider::start_with(&url, root.path(), "ferdie", "//Ferdie", 5_000 * UNIT, smollm2(), &["--verifier", "true"]),
    ];
    for p in &providers {
        wait_online(&chain, p).await;
    }
    let [bob, charlie, dave, ferdie] = [0, 1, 2, 3].map(|i| providers[i].account());
    assert!(chain.is_verifier(&ferdie).await.unwrap(), "--verifier opts in on-chain");
    assert!(!chain.is_verifier(&bob).await.unwrap());
    let client = std::sync::Arc::new(client(&url).await);
    let eve = client.account();
    let treasury = agora_devnet::demo::treasury();

    // A 1–1–1 split: no majority, so Ferdie re-scores the three answers. Bob's is accepted
    // and paid; the two lies are rejected and slashed; Ferdie earns its fee.
    let prompt = "The capital of France is";
    let expected = expected_greedy(prompt, 8).await;
    let ferdie_before = chain.free_balance(&ferdie).await.unwrap();
    let mut disputed = None;
    let result = client
        .run(&priced(prompt, 8, 3, 1_000 * UNIT), |event| {
            if let agora_client::RunEvent::Disputed { cause, .. } = event {
                disputed = Some(cause);
            }
        })
        .await
        .unwrap();
    assert_eq!(disputed, Some(DisputeCause::SplitVote));
    assert_eq!(result.providers.iter().filter_map(|p| p.answered()).collect::<std::collections::HashSet<_>>().len(), 3, "three answers");
    let dispute = result.dispute.clone().expect("went to verifiers");
    assert_eq!(dispute.cause, DisputeCause::SplitVote);
    let honest = token_hash(&expected);
    assert_eq!(dispute.accepted(&honest), Some(true), "{dispute:?}");
    assert_eq!(dispute.resolution.decided.0.iter().filter(|d| !d.accepted).count(), 2, "{dispute:?}");
    assert!(dispute.resolution.silent.0.is_empty());
    assert_eq!(dispute.resolution.verifiers_paid.0.iter().map(|(v, fee)| (v.clone(), *fee > 0)).collect::<Vec<_>>(), vec![(ferdie.clone(), true)]);
    assert_eq!((result.tokens.clone(), result.verified, result.status.clone()), (expected.clone(), true, types::RequestStatus::Settled));
    let receipt = result.receipt.clone().expect("a receipt");
    assert_eq!(receipt.paid.0.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), vec![bob.clone()]);
    let mut slashed: Vec<_> = receipt.slashed.0.iter().map(|(p, _, why)| (p.to_string(), why == &types::JobOutcome::Wrong)).collect();
    slashed.sort();
    let mut liars = vec![(charlie.to_string(), true), (dave.to_string(), true)];
    liars.sort();
    assert_eq!(slashed, liars, "both liars slashed for a wrong result");
    assert!(chain.free_balance(&ferdie).await.unwrap() > ferdie_before, "the fee reached the verifier");
    let metrics = providers[3].metrics();
    let counted = |kind: &str, n: u32| metrics.contains(&format!("agora_provider_verdicts_total{{kind=\"{kind}\"}} {n}"));
    assert!(counted("accepted", 1) && counted("rejected", 2), "{metrics}");

    let runs = root.path().join("runs");
    let agora = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agora"));
        command.args(args).args(["--chain-url", &url, "--json"]).arg("--gguf").arg(smollm2()).arg("--runs-dir").arg(&runs);
        let args = args.join(" ");
        async move {
            let output = command.output().await.unwrap();
            assert!(output.status.success(), "agora {args} failed:\n{}", String::from_utf8_lossy(&output.stderr));
            serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
        }
    };

    // The same split on a ticket (`agora run --tickets`): no strict majority of signed
    // outcomes, so the buyer falls the ticket back to commit–reveal at once. The providers'
    // nodes commit and reveal the results they journaled when they served it, the tally's split
    // goes to Ferdie (who re-scores with the ticket's sampling seed), and the answer comes back
    // verified by its verdict, Bob paid, the two liars slashed.
    // A split's slash takes Charlie's stake under the minimum, out of the draw, until its node
    // tops it up.
    let topped_up = || async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while chain.provider(&charlie).await.unwrap().unwrap().stake < 100 * UNIT {
            assert!(std::time::Instant::now() < deadline, "Charlie never topped its stake up:\n{}", providers[1].log());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    topped_up().await;
    let max_price = (1_000 * UNIT).to_string();
    let ran = agora(&["run", "--model", "smollm2-135m-instruct", "-k", "3", "--max-price", &max_price, "--max-tokens", "8", "--tickets", prompt]).await;
    assert_eq!((ran["verified"].clone(), ran["agreeing"].clone()), (true.into(), 1.into()), "{ran}");
    let bobs = ran["providers"].as_array().unwrap().iter().find(|p| p["provider"] == bob.to_string()).expect("Bob answered");
    assert_eq!(ran["output_hash"], bobs["output_hash"], "the answer is Bob's: {ran}");
    let fell_back = &ran["dispute"];
    assert_eq!(fell_back["cause"], DisputeCause::SplitVote.name(), "{ran}");
    let accepted: Vec<_> = fell_back["decided"].as_array().unwrap().iter().filter(|d| d["accepted"] == true).map(|d| d["output_hash"].clone()).collect();
    assert_eq!((accepted.len(), fell_back["decided"].as_array().unwrap().len()), (1, 3), "{ran}");
    assert_eq!(accepted[0], bobs["output_hash"], "{ran}");
    let request = fell_back["request"].as_u64().unwrap();
    let (ticket, _) = chain.ticket_origin(request).await.unwrap().expect("a ticket's fallback");
    assert_eq!(ticket, ran["ticket"].as_u64().unwrap());
    let receipt = chain.receipt(request).await.unwrap().expect("settled by the verdict");
    assert_eq!(receipt.paid.0.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), vec![bob.clone()]);
    let mut slashed: Vec<_> = receipt.slashed.0.iter().map(|(p, _, why)| (p.to_string(), why == &types::JobOutcome::Wrong)).collect();
    slashed.sort();
    assert_eq!(slashed, liars, "both liars slashed through the fallback");

    // And through the gateway, which serves from a ticket pool: the call waits for the verdict
    // and answers with the result the verifiers accepted, Bob's.
    topped_up().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let tickets = Some(agora_client::PoolConfig { batch: 1, max_prompt_tokens: 64, refill: false });
    let config = agora_client::gateway::GatewayConfig { max_tokens_limit: 8, max_price_per_1k: Some(1_000 * UNIT), tickets, ..Default::default() };
    let _gateway = tokio::spawn(agora_client::gateway::serve(listener, client.clone(), config));
    let output = tokio::process::Command::new("python3").arg("-c").arg(OPENAI_CHAT).arg(&base).arg("smollm2-135m-instruct").output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let called: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ticket: u64 = called["ticket"].as_str().unwrap().parse().unwrap();
    let mut fell_back = None;
    for id in request + 1..request + 3 {
        if chain.ticket_origin(id).await.unwrap().is_some_and(|(origin, _)| origin == ticket) {
            fell_back = Some(id);
        }
    }
    let receipt = chain.receipt(fell_back.expect("the call's ticket fell back")).await.unwrap().expect("settled by the verdict");
    assert_eq!(receipt.paid.0.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), vec![bob.clone()]);
    assert_eq!(called["output_hash"].as_str(), Some(hex::encode(receipt.winning.unwrap().output_hash)).as_deref(), "{called}");
    assert!(!called["text"].as_str().unwrap().is_empty(), "{called}");

    // Dave leaves; Bob alone serves cheap k = 1 requests (audited 5 % of the time: then again).
    providers[2].terminate(Duration::from_secs(60));
    let settle_one = || async {
        loop {
            let result = client.run(&priced(prompt, 8, 1, 2 * UNIT / 1000), |_| {}).await.unwrap();
            assert_eq!(result.tokens, expected);
            match &result.dispute {
                None => return result.request,
                Some(audit) => assert_eq!((audit.cause, audit.accepted(&honest)), (DisputeCause::Audit, Some(true))),
            }
        }
    };
    let settled = settle_one().await;
    let prompt_ids = local_engine().tokenize(prompt, true);
    let bond = 10 * UNIT;

    // A challenge must name the settled result: checked before the bond is held.
    let before = chain.free_balance(&eve).await.unwrap();
    let wrong = [expected.clone(), vec![1]].concat();
    assert!(matches!(client.challenge(settled, &prompt_ids, &wrong).await, Err(ClientError::NotChallengeable { .. })));
    assert!(matches!(client.challenge(settled, &[1, 2], &expected).await, Err(ClientError::NotChallengeable { .. })));
    assert_eq!(chain.free_balance(&eve).await.unwrap(), before, "nothing was held");

    // A false challenge: Ferdie re-scores the answer and accepts it, so the bond goes to the
    // treasury and Bob keeps his stake.
    let (bob_stake, treasury_before) = (chain.provider(&bob).await.unwrap().unwrap().stake, chain.free_balance(&treasury).await.unwrap());
    let report = client.challenge(settled, &prompt_ids, &expected).await.unwrap();
    assert_eq!(report.cause, DisputeCause::Challenge);
    assert!(!report.upheld());
    assert_eq!(report.accepted(&honest), Some(true));
    assert!(matches!(report.deliveries[..], [(ref v, Ok(VerifyReply::Judged { ref verdicts }))] if *v == ferdie && verdicts[0].accepted), "{:?}", report.deliveries);
    let spent = before - chain.free_balance(&eve).await.unwrap();
    assert!(spent >= bond && spent < bond + UNIT / 10, "the bond was lost (spent {spent})");
    assert!(chain.free_balance(&treasury).await.unwrap() >= treasury_before + bond - UNIT / 100, "the bond went to the treasury, less the fee");
    assert_eq!(chain.provider(&bob).await.unwrap().unwrap().stake, bob_stake);
    assert!(matches!(client.challenge(settled, &prompt_ids, &expected).await, Err(ClientError::Chain(_))), "one challenge per request");

    // The same from the command line: `agora run -k 1` keeps the answer and `agora challenge`
    // (of the last run kept) brings it to Ferdie, who accepts it.
    let price = (2 * UNIT / 1000).to_string();
    let ran = loop {
        let ran = agora(&["run", "--model", "smollm2-135m-instruct", "-k", "1", "--max-price", &price, "--max-tokens", "8", "Name a large ocean."]).await;
        assert_eq!(ran["verified"], true, "{ran}");
        if ran["dispute"].is_null() {
            break ran;
        }
    };
    let challenged = agora(&["challenge"]).await;
    assert_eq!((challenged["request"].clone(), challenged["cause"].clone()), (ran["request"].clone(), "challenge".into()), "{challenged}");
    assert_eq!(challenged["decided"][0]["output_hash"], ran["output_hash"], "{challenged}");
    assert_eq!(challenged["decided"][0]["accepted"], true, "{challenged}");

    // Another challenge, opened by hand: Ferdie refuses bad pushes by name, and Bob was not drawn.
    let settled = settle_one().await;
    let before = chain.free_balance(&eve).await.unwrap();
    chain.submit(&agora::tx().verifier().challenge(settled), &keypair("//Eve")).await.unwrap();
    // Its verifiers are drawn a block or two later, from randomness Eve could not know.
    let started = std::time::Instant::now();
    while chain.dispute(settled).await.unwrap().expect("the challenge opened a dispute").verifiers.0.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "the challenge's verifiers were never drawn");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let verifier_net = client_network().await;
    let at = |who| {
        let chain = chain.clone();
        async move {
            let record = chain.provider(&who).await.unwrap().unwrap();
            let (peer, addrs) = agora_chain_client::manifest_endpoint(&record);
            agora_net::Location::from_manifest(peer, addrs).unwrap()
        }
    };
    let (to_ferdie, to_bob) = (at(ferdie.clone()).await, at(bob.clone()).await);
    let push = |prompt: &[u32], outputs: &[&[u32]]| VerifyRequest { request: settled, prompt: prompt.to_vec(), outputs: outputs.iter().map(|o| o.to_vec()).collect() };
    let wait = Duration::from_secs(10);
    let bad_prompt = [prompt_ids.clone(), vec![42]].concat();
    assert_eq!(refusal(agora_net::verify::push(&verifier_net, &to_bob, &push(&prompt_ids, &[&expected]), wait).await), VerifyErrorKind::NotSelected);
    assert_eq!(refusal(agora_net::verify::push(&verifier_net, &to_ferdie, &push(&bad_prompt, &[&expected]), wait).await), VerifyErrorKind::PromptMismatch);
    assert_eq!(refusal(agora_net::verify::push(&verifier_net, &to_ferdie, &push(&prompt_ids, &[&wrong]), wait).await), VerifyErrorKind::UnknownOutput);
    let no_dispute = VerifyRequest { request: 9_999, ..push(&prompt_ids, &[&expected]) };
    assert_eq!(refusal(agora_net::verify::push(&verifier_net, &to_ferdie, &no_dispute, wait).await), VerifyErrorKind::NoDispute);
    // Nor can Bob vote on-chain.
    let honest_outcome = types::Outcome { output_hash: honest, token_count: expected.len() as u32 };
    let vote = agora::tx().verifier().submit_verdict(settled, bounded(vec![types::OutcomeVerdict { outcome: honest_outcome, accepted: false }]));
    let refused = chain.submit(&vote, &keypair("//Bob")).await.expect_err("not drawn");
    assert!(refused.is_rejected(Rejection::Verifier(VerifierError::NotSelectedVerifier)), "{refused}");
    // The prompt alone is kept, waiting for the output.
    let waiting = agora_net::verify::push(&verifier_net, &to_ferdie, &push(&prompt_ids, &[]), wait).await;
    assert!(matches!(waiting, Ok(VerifyReply::Waiting { missing: 1 })), "{waiting:?}");

    // Ferdie is killed and comes back; the challenger never shows the output. Its journal still
    // holds the dispute, so at the deadline it votes, and a challenge without the challenged
    // output is not upheld: the bond is lost, Ferdie is paid, nobody is silent.
    providers[3].kill();
    providers[3].restart(5_000 * UNIT);
    wait_online(&chain, &providers[3]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let resolution = loop {
        if let Some(resolution) = chain.resolution(settled).await.unwrap() {
            break resolution;
        }
        assert!(std::time::Instant::now() < deadline, "no resolution:\n{}", providers[3].log());
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(resolution.decided.0.iter().map(|d| d.accepted).collect::<Vec<_>>(), vec![true]);
    assert!(resolution.silent.0.is_empty(), "{resolution:?}");
    assert_eq!(resolution.verifiers_paid.0.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(), vec![ferdie.clone()]);
    let spent = before - chain.free_balance(&eve).await.unwrap();
    assert!(spent >= bond && spent < bond + UNIT / 10, "the bond was lost (spent {spent})");

    // Bob leaves too: Charlie, the liar, is the only provider a k = 1 request at its price can
    // draw. The request is worth its slash, so it is audited for certain; Ferdie rejects the
    // answer, Charlie is slashed and Eve gets her escrow back.
    providers[0].terminate(Duration::from_secs(60));
    let before = chain.free_balance(&eve).await.unwrap();
    let charlie_before = chain.provider(&charlie).await.unwrap().unwrap();
    let result = client.run(&priced(prompt, 8, 1, 1_000 * UNIT), |_| {}).await.unwrap();
    assert_eq!(result.providers.iter().map(|p| p.provider.clone()).collect::<Vec<_>>(), vec![charlie.clone()]);
    let audit = result.dispute.clone().expect("audited");
    assert_eq!(audit.cause, DisputeCause::Audit);
    assert_eq!(audit.resolution.decided.0.iter().map(|d| d.accepted).collect::<Vec<_>>(), vec![false], "{audit:?}");
    assert_eq!((result.status.clone(), result.verified), (types::RequestStatus::Refunded, false));
    let receipt = result.receipt.expect("a receipt of the refund");
    assert!(receipt.paid.0.is_empty());
    assert_eq!(receipt.slashed.0.iter().map(|(p, _, why)| (p.clone(), why.clone())).collect::<Vec<_>>(), vec![(charlie.clone(), types::JobOutcome::Wrong)]);
    let spent = before - chain.free_balance(&eve).await.unwrap();
    assert!(spent < UNIT / 10, "only fees: the escrow came back (spent {spent})");
    let charlie_after = chain.provider(&charlie).await.unwrap().unwrap();
    assert_eq!(charlie_after.reputation.wrong, charlie_before.reputation.wrong + 1);
    drop(providers);
}
