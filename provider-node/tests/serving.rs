//! Provider processes on a real dev chain, serving the real model over libp2p: a k = 3 request
//! end to end, crash recovery under SIGKILL, and bad input over the wire.

mod support;

use agora_chain_client::types;
use agora_devnet::demo::{self, UNIT};
use agora_primitives::wire::{token_hash, InferErrorKind, InferFrame, InferOpen, MAX_FRAME_BYTES, MAX_PROMPT_TOKENS};
use agora_primitives::SamplingParams;
use agora_engine::GenerateRequest;
use agora_net::frame;
use futures::AsyncWriteExt;
use support::*;

async fn expected_greedy(prompt: &[u32], max: u32) -> Vec<u32> {
    let request = GenerateRequest { prompt: prompt.to_vec(), max_output_tokens: max, sampling: SamplingParams::default(), seed: 0, logprobs: false };
    local_engine().submit(request).unwrap().finish().await.unwrap().tokens
}

fn error_kind(frames: &[InferFrame]) -> Option<InferErrorKind> {
    match frames.last() {
        Some(InferFrame::Error { kind, .. }) => Some(*kind),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_providers_serve_a_k3_request_end_to_end() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("serve-k3").await.unwrap();
    publish_smollm2(&chain).await;
    let root = tempfile::tempdir().unwrap();
    let providers: Vec<Provider> = [("bob", "//Bob", 2), ("charlie", "//Charlie", 3), ("dave", "//Dave", 4)]
        .into_iter()
        .map(|(name, uri, milli)| Provider::start(&chain_guard.ws_url(), root.path(), name, uri, milli * UNIT / 1000))
        .collect();
    let mut profiles = Vec::new();
    for provider in &providers {
        profiles.push(wait_online(&chain, provider).await.manifest.offers.0[0].runtime_profile);
    }
    assert!(profiles.iter().all(|p| p == &profiles[0]), "one build, one runtime profile");

    let prompt = local_engine().tokenize("The capital of France is", false);
    let expected = expected_greedy(&prompt, 8).await;
    let client_before = chain.free_balance(&demo::account(&demo::Actors::dev().client)).await.unwrap();
    let (id, assigned) = open_request(&chain, params(profiles[0], &prompt, 8, 3)).await;
    assert_eq!(assigned.len(), 3);

    let net = client_network().await;
    let streams = futures::future::join_all(assigned.iter().map(|p| infer(&net, &chain, p, id, &prompt))).await;
    let authorised = signed_request(chain.genesis_hash(), id, &prompt, &net).authorised_use(chain.genesis_hash());
    for (frames, provider) in streams.iter().zip(&assigned) {
        let (tokens, end) = tokens_and_end(frames);
        assert_eq!(tokens, expected, "every provider streams the tokens this process computes");
        let Some(InferFrame::Done { output_hash, token_count, stop, signature }) = end else { panic!("{frames:?}") };
        assert_eq!((output_hash, token_count, stop), (token_hash(&expected), 8, agora_primitives::wire::StopReason::MaxTokens));
        // The stream opens with the provider's acknowledgement and closes with its signed
        // outcome, both by its account over this `Use`.
        let Some(InferFrame::Accepted { signature: ack }) = frames.first() else { panic!("{frames:?}") };
        assert!(signed_by(provider, ack, &authorised.ack_payload()));
        let outcome = agora_primitives::Outcome { output_hash, token_count };
        assert!(signed_by(provider, &signature, &authorised.outcome_payload(&outcome)));
        assert!(!signed_by(provider, &signature, &authorised.outcome_payload(&agora_primitives::Outcome { token_count: 7, ..outcome })));
    }
    assert!(local_engine().detokenize(&expected).contains("Paris"));

    let all: Vec<&Provider> = providers.iter().collect();
    let receipt = wait_receipt(&chain, id, &all).await;
    let winning = receipt.winning.expect("a majority");
    assert_eq!((winning.output_hash, winning.token_count), (token_hash(&expected), 8));
    assert_eq!(receipt.paid.0.len(), 3);
    assert!(receipt.slashed.0.is_empty());
    for (who, amount) in &receipt.paid.0 {
        let provider = providers.iter().find(|p| &p.account() == who).unwrap();
        let record = chain.provider(who).await.unwrap().unwrap();
        // Paid its own price per 1k for 6 prompt + 8 output tokens, rounded up.
        let price = record.manifest.price_per_1k_output;
        assert_eq!(*amount, (price * (prompt.len() as u128 + 8)).div_ceil(1000), "{}", provider.name);
        assert_eq!(record.reputation.agreed, 1);
        assert_eq!(record.open_jobs, 0);
    }
    let paid: u128 = receipt.paid.0.iter().map(|(_, a)| a).sum();
    let client_after = chain.free_balance(&demo::account(&demo::Actors::dev().client)).await.unwrap();
    assert!(client_before - client_after >= paid, "the client paid at least the providers");

    let metrics = providers[0].metrics();
    assert!(metrics.contains("agora_provider_tokens_generated_total 8"), "{metrics}");
    assert!(metrics.contains("agora_provider_jobs{state=\"closed\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_at_any_point_finishes_its_jobs_after_a_restart() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("serve-crash").await.unwrap();
    publish_smollm2(&chain).await;
    let root = tempfile::tempdir().unwrap();
    let price = 2 * UNIT / 1000;
    let mut bob = Provider::start(&chain_guard.ws_url(), root.path(), "bob", "//Bob", price);
    let charlie = Provider::start(&chain_guard.ws_url(), root.path(), "charlie", "//Charlie", price);
    let profile = wait_online(&chain, &bob).await.manifest.offers.0[0].runtime_profile;
    wait_online(&chain, &charlie).await;
    let net = client_network().await;

    // 1. Killed after committing, before the reveal window opened (Charlie has not committed).
    let prompt = local_engine().tokenize("Name a large ocean:", false);
    let (first, _) = open_request(&chain, params(profile, &prompt, 6, 2)).await;
    let frames = infer(&net, &chain, &bob.account(), first, &prompt).await;
    assert!(matches!(frames.last(), Some(InferFrame::Done { .. })), "{frames:?}");
    wait_commitment(&chain, first, &bob).await;
    assert!(chain.reveal(first, &bob.account()).await.unwrap().is_none());
    bob.kill();

    // 2. Killed while generating, before committing: a long request, cut after a few tokens.
    let long_prompt = local_engine().tokenize("Once upon a time, in a lighthouse by the sea, there lived", false);
    let (second, _) = open_request(&chain, params(profile, &long_prompt, 200, 2)).await;
    // Bob is down; Charlie serves both requests meanwhile.
    for (id, p) in [(first, &prompt), (second, &long_prompt)] {
        let frames = infer(&net, &chain, &charlie.account(), id, p).await;
        assert!(matches!(frames.last(), Some(InferFrame::Done { .. })), "{frames:?}");
    }
    bob.restart(price);
    wait_online(&chain, &bob).await;
    let mut stream = open(&net, &chain, &bob.account()).await;
    frame::write(&mut stream, &InferOpen::from(signed_request(chain.genesis_hash(), second, &long_prompt, &net))).await.unwrap();
    let accepted = frame::read::<InferFrame, _>(&mut stream, MAX_FRAME_BYTES).await.unwrap();
    assert!(matches!(accepted, Some(InferFrame::Accepted { .. })), "{accepted:?}");
    for _ in 0..5 {
        let frame = frame::read::<InferFrame, _>(&mut stream, MAX_FRAME_BYTES).await.unwrap();
        assert!(matches!(frame, Some(InferFrame::Token { .. })), "{frame:?}");
    }
    bob.kill();
    assert!(chain.commitment(second, &bob.account()).await.unwrap().is_none(), "killed before committing");
    drop(stream);

    bob.restart(price);
    let receipts = [wait_receipt(&chain, first, &[&bob, &charlie]).await, wait_receipt(&chain, second, &[&bob, &charlie]).await];
    for receipt in &receipts {
        assert!(receipt.winning.is_some());
        assert_eq!(receipt.paid.0.len(), 2, "both revealed the same result: {receipt:?}");
        assert!(receipt.slashed.0.is_empty(), "{receipt:?}");
    }
    assert_eq!(commit_events(&chain, first, &bob.account()).await, 1);
    assert_eq!(commit_events(&chain, second, &bob.account()).await, 1);
    let record = chain.provider(&bob.account()).await.unwrap().unwrap();
    assert_eq!((record.reputation.agreed, record.reputation.no_shows, record.open_jobs), (2, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_over_the_wire_is_refused_and_the_node_keeps_serving() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("serve-bad").await.unwrap();
    publish_smollm2(&chain).await;
    let root = tempfile::tempdir().unwrap();
    let bob = Provider::start(&chain_guard.ws_url(), root.path(), "bob", "//Bob", 4 * UNIT / 1000);
    let profile = wait_online(&chain, &bob).await.manifest.offers.0[0].runtime_profile;
    // Charlie is registered without a node and is cheaper: a request priced under Bob goes to him.
    let charlie = demo::Actors::dev().providers[1].clone();
    let manifest = demo::manifest(4999, local_smollm2_release(), profile, UNIT / 1000);
    demo::register(&chain, &charlie, 1_000 * UNIT, manifest).await.unwrap();

    let prompt = local_engine().tokenize("Say hello.", false);
    let mut cheap = params(profile, &prompt, 4, 1);
    cheap.max_price_per_1k = 2 * UNIT / 1000;
    let (not_ours, assigned) = open_request(&chain, cheap).await;
    assert_eq!(assigned, vec![demo::account(&charlie)]);
    let (ours, assigned) = open_request(&chain, params(profile, &prompt, 4, 2)).await;
    assert!(assigned.contains(&bob.account()));

    let net = client_network().await;
    let refused = [
        (999_999, prompt.clone(), InferErrorKind::UnknownRequest),
        (not_ours, prompt.clone(), InferErrorKind::NotAssigned),
        (ours, local_engine().tokenize("Say goodbye.", false), InferErrorKind::PromptMismatch),
        (ours, vec![], InferErrorKind::PromptMismatch),
    ];
    for (request, prompt, kind) in refused {
        let frames = infer(&net, &chain, &bob.account(), request, &prompt).await;
        assert_eq!(error_kind(&frames), Some(kind), "request {request}: {frames:?}");
    }

    // An oversized prompt, a frame announcing more than the limit, and garbage: an error or a
    // dropped stream each, never a crash.
    let oversized = signed_request(chain.genesis_hash(), ours, &vec![1; MAX_PROMPT_TOKENS as usize * 2], &net);
    let mut stream = open(&net, &chain, &bob.account()).await;
    let _ = frame::write(&mut stream, &InferOpen::from(oversized)).await;
    let frames = read_all(&mut stream).await;
    assert!(frames.is_empty() || error_kind(&frames) == Some(InferErrorKind::Malformed), "{frames:?}");
    for bytes in [(MAX_FRAME_BYTES + 1).to_le_bytes().to_vec(), b"\x05\x00\x00\x00hello".to_vec(), vec![0xff; 64]] {
        let net = client_network().await;
        let mut stream = open(&net, &chain, &bob.account()).await;
        let _ = stream.write_all(&bytes).await;
        let _ = stream.flush().await;
        let frames = read_all(&mut stream).await;
        assert!(frames.is_empty() || error_kind(&frames) == Some(InferErrorKind::Malformed), "{frames:?}");
    }

    // Hole: whoever learned a request id and its prompt (a co-assigned provider) was served, and
    // could copy the answer or be served before the client. The client's own signed request,
    // forwarded from another peer, is refused; so is one signed for that peer by another key.
    let client_net = client_network().await;
    let intruder = client_network().await;
    let forwarded = signed_request(chain.genesis_hash(), ours, &prompt, &client_net);
    let forged = signed_request_by(&demo::Actors::dev().providers[2], chain.genesis_hash(), ours, &prompt, &intruder);
    // The client's key, for the peer that sends it, but for another chain's request `ours`.
    let elsewhere = signed_request_by(&demo::Actors::dev().client, [9; 32], ours, &prompt, &intruder);
    for request in [forwarded, forged, elsewhere] {
        let frames = send(&intruder, &chain, &bob.account(), &request).await;
        assert_eq!(error_kind(&frames), Some(InferErrorKind::Unauthorized), "{frames:?}");
    }

    // Still serving: the right prompt for the right request, from its client, streams the
    // expected tokens.
    let net = client_net;
    let frames = infer(&net, &chain, &bob.account(), ours, &prompt).await;
    let (tokens, end) = tokens_and_end(&frames);
    assert_eq!(tokens, expected_greedy(&prompt, 4).await);
    assert!(matches!(end, Some(InferFrame::Done { token_count: 4, .. })), "{frames:?}");
    let metrics = bob.metrics();
    for kind in ["unknown_request", "not_assigned", "prompt_mismatch", "malformed", "unauthorized"] {
        assert!(metrics.contains(&format!("agora_provider_protocol_errors_total{{kind=\"{kind}\"}}")), "{kind}: {metrics}");
    }
    assert_eq!(chain.request(ours).await.unwrap().unwrap().status, types::RequestStatus::Assigned);
}

/// Issue 13, hole 1: a client that never sends its prompt got every drawn provider slashed as a
/// no-show, and held their job slots until someone settled (nothing off-chain did). Now the
/// providers settle it themselves after the reveal window: nobody is slashed, each is paid the
/// reservation fee, and their slots are free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_prompt_slashes_nobody_and_the_providers_close_it_for_their_fee() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("serve-withheld").await.unwrap();
    publish_smollm2(&chain).await;
    let root = tempfile::tempdir().unwrap();
    let price = 2 * UNIT / 1000;
    let providers = [Provider::start(&chain_guard.ws_url(), root.path(), "bob", "//Bob", price), Provider::start(&chain_guard.ws_url(), root.path(), "charlie", "//Charlie", price)];
    let profile = wait_online(&chain, &providers[0]).await.manifest.offers.0[0].runtime_profile;
    wait_online(&chain, &providers[1]).await;

    let prompt = local_engine().tokenize("Never sent.", false);
    let mut terms = params(profile, &prompt, 8, 2);
    terms.commit_blocks = 2;
    let (id, assigned) = open_request(&chain, terms).await;
    assert_eq!(assigned.len(), 2);
    let request = chain.request(id).await.unwrap().unwrap();
    for provider in &assigned {
        assert_eq!(chain.provider(provider).await.unwrap().unwrap().open_jobs, 1);
    }
    let best = chain.best_block_number().await.unwrap();
    chain.new_blocks(request.reveal_deadline + 3 - best).await.unwrap();

    let all: Vec<&Provider> = providers.iter().collect();
    let receipt = wait_receipt(&chain, id, &all).await;
    assert!(receipt.winning.is_none() && receipt.paid.0.is_empty());
    assert!(receipt.slashed.0.is_empty(), "nobody can tell who failed: {receipt:?}");
    let fee = (price * (prompt.len() as u128 + 8)).div_ceil(1000) * 5 / 100;
    let mut reserved = receipt.reserved.0.clone();
    reserved.sort();
    let mut expected: Vec<_> = assigned.iter().map(|p| (p.clone(), fee)).collect();
    expected.sort();
    assert_eq!(reserved, expected);
    assert_eq!(chain.request(id).await.unwrap().unwrap().status, types::RequestStatus::Refunded);
    for provider in &assigned {
        let record = chain.provider(provider).await.unwrap().unwrap();
        assert_eq!((record.open_jobs, record.reputation.no_shows, record.reputation.score_ppm), (0, 0, 500_000));
    }
}

/// Issue 13, tickets off-chain: a drawn ticket is served with no chain call to its buyer's
/// signed `Use` alone (hole 3 for tickets: a `Use` forwarded from another peer, signed by
/// another account, or beyond what the ticket was bought for is refused by name), for one
/// prompt only: a second `Use` is refused, the same one replayed. Each outcome is signed over
/// the `Use`, and the bundle of two of the three settles the ticket; the third provider, left
/// out, claims the share held for it by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_serves_its_buyers_one_use_and_a_left_out_provider_claims_its_share() {
    let _serial = serial();
    let drawn = DrawnTicket::start("serve-tickets").await;
    let DrawnTicket { chain, ticket, providers, .. } = &drawn;
    let id = drawn.id;
    let eve = demo::Actors::dev().client;
    let prompt = local_engine().tokenize("Name a large ocean:", false);
    let (net, intruder) = (client_network().await, client_network().await);
    let first = &ticket.providers.0[0];

    let mut forwarded = ticket_request_by(&eve, chain.genesis_hash(), id, &prompt, 8, &net);
    let forged = ticket_request_by(&demo::Actors::dev().providers[2], chain.genesis_hash(), id, &prompt, 8, &intruder);
    let too_long = ticket_request_by(&eve, chain.genesis_hash(), id, &prompt, 9, &intruder);
    let mut mismatched = ticket_request_by(&eve, chain.genesis_hash(), id, &prompt, 8, &intruder);
    mismatched.prompt.push(1);
    // Signed by the buyer, for the peer that sends it, but for another chain's ticket `id`.
    let elsewhere = ticket_request_by(&eve, [9; 32], id, &prompt, 8, &intruder);
    for (request, kind) in [
        (forwarded.clone(), InferErrorKind::Unauthorized),
        (forged, InferErrorKind::Unauthorized),
        (elsewhere, InferErrorKind::Unauthorized),
        (too_long, InferErrorKind::ExceedsTicket),
        (mismatched, InferErrorKind::PromptMismatch),
    ] {
        let frames = send_ticket(&intruder, &chain, first, &request).await;
        assert_eq!(error_kind(&frames), Some(kind), "{frames:?}");
    }

    let request = ticket_request_by(&eve, chain.genesis_hash(), id, &prompt, 8, &net);
    let expected = expected_greedy(&prompt, 8).await;
    let authorised = agora_primitives::wire::Authorised::Ticket(request.authorised.clone());
    let mut outcomes = Vec::new();
    for (position, provider) in ticket.providers.0.iter().enumerate().take(2) {
        let frames = send_ticket(&net, &chain, provider, &request).await;
        let (tokens, end) = tokens_and_end(&frames);
        assert_eq!(tokens, expected, "{frames:?}");
        let Some(InferFrame::Accepted { signature }) = frames.first() else { panic!("{frames:?}") };
        assert!(signed_by(provider, signature, &authorised.ack_payload()));
        let Some(InferFrame::Done { output_hash, token_count, signature, .. }) = end else { panic!("{frames:?}") };
        let outcome = agora_primitives::Outcome { output_hash, token_count };
        assert!(signed_by(provider, &signature, &authorised.outcome_payload(&outcome)), "signed over the ticket's Use");
        outcomes.push(agora_chain_client::SignedOutcome {
            provider: position as u8,
            outcome: types::Outcome { output_hash, token_count },
            signature: agora_chain_client::Signature::Sr25519(signature),
        });
    }
    let replayed = send_ticket(&net, &chain, first, &request).await;
    assert_eq!(tokens_and_end(&replayed).0, expected, "the same Use again is replayed");
    forwarded.prompt = local_engine().tokenize("Name a small ocean:", false);
    let second = ticket_request_by(&eve, chain.genesis_hash(), id, &forwarded.prompt, 8, &net);
    let frames = send_ticket(&net, &chain, first, &second).await;
    assert_eq!(error_kind(&frames), Some(InferErrorKind::AlreadyServed), "one prompt per ticket: {frames:?}");

    // The third provider answers too, but the bundle carries only the first two signed
    // outcomes: its share is held open at settlement, and its chain worker claims it.
    let left_out = ticket.providers.0[2].clone();
    let frames = send_ticket(&net, &chain, &left_out, &request).await;
    assert_eq!(tokens_and_end(&frames).0, expected);
    let bundle = agora_chain_client::TicketBundle {
        authorised: agora_chain_client::TicketUse {
            chain: chain.genesis_hash(),
            ticket: id,
            prompt_hash: request.authorised.prompt_hash,
            prompt_tokens: request.authorised.prompt_tokens,
            max_output_tokens: 8,
            sampling: types::SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 },
            client_peer: agora_chain_client::bounded(request.authorised.client_peer.to_vec()),
        },
        buyer_signature: agora_chain_client::Signature::Sr25519(request.signature),
        outcomes: agora_chain_client::bounded(outcomes),
    };
    let receipt = chain.settle_tickets(vec![bundle], &eve).await.unwrap().receipts.remove(0);
    assert_eq!((receipt.paid.0.len(), receipt.held.0.len()), (2, 1), "{receipt:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while chain.ticket(id).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the left-out provider never claimed:\n{}", providers.iter().map(|p| p.log()).collect::<Vec<_>>().join("\n"));
        chain.new_blocks(1).await.unwrap();
    }
    let earned = chain.ledger_balance(&left_out).await.unwrap();
    assert_eq!(earned, receipt.paid.0[0].1, "paid as the others were, from its held share");
}

fn local_smollm2_release() -> [u8; 32] {
    agora_fixtures::models::smollm2_sha256()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_model_is_refused_and_an_overloaded_provider_goes_offline() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("serve-ops").await.unwrap();
    publish_smollm2(&chain).await;
    let root = tempfile::tempdir().unwrap();

    // A GGUF that is not the release it claims: the node refuses to start, naming both hashes.
    let tiny = root.path().join("tiny.gguf");
    agora_fixtures::tiny_gguf::write(&tiny, 1).unwrap();
    let tiny_hash = agora_engine::model_file::sha256_file(&tiny, agora_engine::Progress::Hidden).unwrap();
    let mut wrong = Provider::start_with(&chain_guard.ws_url(), root.path(), "wrong", "//Ferdie", UNIT / 1000, &tiny, &[]);
    let status = wrong.wait_exit(std::time::Duration::from_secs(60)).expect("the node exits");
    assert!(!status.success());
    let log = wrong.log();
    assert!(log.contains(&hex::encode(tiny_hash)) && log.contains(agora_fixtures::models::SMOLLM2_SHA256_HEX), "{log}");
    assert!(chain.provider(&wrong.account()).await.unwrap().is_none(), "nothing registered");

    // A provider over its load limit stops taking work: it goes offline on-chain.
    let busy = Provider::start_with(&chain_guard.ws_url(), root.path(), "busy", "//Dave", UNIT / 1000, smollm2(), &["--max-load-per-core", "0"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let record = chain.provider(&busy.account()).await.unwrap();
        if record.is_some_and(|r| r.status == types::ProviderStatus::Offline) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never went offline:\n{}", busy.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(busy.metrics().contains("agora_provider_accepting 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_found_in_the_dht_shuts_down_gracefully_and_leaves() {
    let _serial = serial();
    let (chain_guard, chain) = agora_e2e::start_chain("serve-leave").await.unwrap();
    publish_smollm2(&chain).await;
    let root = tempfile::tempdir().unwrap();
    let price = 2 * UNIT / 1000;
    let mut bob = Provider::start(&chain_guard.ws_url(), root.path(), "bob", "//Bob", price);
    let profile = wait_online(&chain, &bob).await.manifest.offers.0[0].runtime_profile;

    // A client that knows only Bob's address finds him in the DHT under the release.
    let (bob_peer, bob_addr) = locate(&chain, &bob.account()).await;
    let config = agora_net::NetConfig { bootstrap: vec![bob_addr], ..Default::default() };
    let net = agora_net::Network::start(libp2p::identity::Keypair::generate_ed25519(), config).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if net.find_providers(local_smollm2_release()).await.unwrap().contains(&bob_peer) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Bob is not in the DHT:\n{}", bob.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // SIGTERM in the middle of a generation: the stream still ends with every token, the node
    // goes offline on-chain, commits in its last pass and exits cleanly.
    let prompt = local_engine().tokenize("Once upon a time, in a lighthouse by the sea, there lived", false);
    let (id, _) = open_request(&chain, params(profile, &prompt, 48, 1)).await;
    let mut stream = open(&net, &chain, &bob.account()).await;
    frame::write(&mut stream, &InferOpen::from(signed_request(chain.genesis_hash(), id, &prompt, &net))).await.unwrap();
    let accepted = frame::read::<InferFrame, _>(&mut stream, MAX_FRAME_BYTES).await.unwrap();
    assert!(matches!(accepted, Some(InferFrame::Accepted { .. })), "{accepted:?}");
    let first = frame::read::<InferFrame, _>(&mut stream, MAX_FRAME_BYTES).await.unwrap();
    assert!(matches!(first, Some(InferFrame::Token { index: 0, .. })), "{first:?}");
    bob.send_term();
    let mut frames = vec![first.unwrap()];
    frames.extend(read_all(&mut stream).await);
    let (tokens, end) = tokens_and_end(&frames);
    assert_eq!(tokens, expected_greedy(&prompt, 48).await, "the job in flight finishes");
    assert!(matches!(end, Some(InferFrame::Done { token_count: 48, .. })), "{end:?}");
    let status = bob.wait_exit(std::time::Duration::from_secs(120)).expect("Bob exits after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", bob.log());
    let record = chain.provider(&bob.account()).await.unwrap().unwrap();
    assert_eq!(record.status, types::ProviderStatus::Offline);
    assert!(chain.commitment(id, &bob.account()).await.unwrap().is_some(), "committed in the last pass:\n{}", bob.log());

    // Back up, it reveals and settles what it committed.
    bob.restart(price);
    let receipt = wait_receipt(&chain, id, &[&bob]).await;
    assert_eq!(receipt.paid.0.len(), 1, "{receipt:?}");
    assert_eq!(receipt.winning.map(|w| w.output_hash), Some(token_hash(&tokens)));
    wait_online(&chain, &bob).await;
    assert!(bob.terminate(std::time::Duration::from_secs(120)).is_some_and(|s| s.success()));

    // Leaving: unbond, then withdraw is refused until the delay has passed, with the reason.
    let out = bob.account_command("unbond");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record = chain.provider(&bob.account()).await.unwrap().unwrap();
    assert!(matches!(record.status, types::ProviderStatus::Unbonding { .. }), "{:?}", record.status);
    let out = bob.account_command("withdraw");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("StillLocked"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(chain.provider(&bob.account()).await.unwrap().unwrap().stake, record.stake, "the stake stays held");
}

/// Issue 13: a ticket its buyer never settles falls back to commit–reveal. After the grace past
/// the ticket's expiry the providers' own nodes fall it back, commit and reveal the results
/// they journaled when they served it, settle, and are paid per token into their ledger
/// entries (not just a reservation fee); one that acknowledged the buyer's `Use` and then went
/// silent (killed after serving, never restarted) is slashed as a no-show on that
/// acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_nobody_settles_falls_back_pays_who_answered_and_slashes_who_went_silent() {
    let _serial = serial();
    let DrawnTicket { _chain_guard, chain, _root, mut providers, id, ticket, price } = DrawnTicket::start("serve-fallback").await;
    let eve = demo::Actors::dev().client;
    let prompt = local_engine().tokenize("The capital of France is", false);
    let net = client_network().await;
    let request = ticket_request_by(&eve, chain.genesis_hash(), id, &prompt, 8, &net);
    let expected = expected_greedy(&prompt, 8).await;
    let (mut acks, mut counted) = (Vec::new(), 0);
    for provider in &ticket.providers.0 {
        let frames = send_ticket(&net, &chain, provider, &request).await;
        let (tokens, end) = tokens_and_end(&frames);
        assert_eq!(tokens, expected, "{frames:?}");
        let Some(InferFrame::Accepted { signature }) = frames.first() else { panic!("{frames:?}") };
        let Some(InferFrame::Done { token_count, .. }) = end else { panic!("{frames:?}") };
        acks.push(*signature);
        counted = token_count;
    }
    let silent = ticket.providers.0[2].clone();
    providers.iter_mut().find(|p| p.account() == silent).unwrap().kill();
    let answering: Vec<_> = ticket.providers.0[..2].to_vec();
    let ledger_before = futures::future::join_all(answering.iter().map(|p| chain.ledger_balance(p))).await;

    // Nobody settles. Only the providers' nodes act from here on, once the grace has passed.
    let grace = chain.ticket_fallback_grace().await.unwrap();
    let open_to_all = ticket.expires_at + grace;
    let best = chain.best_block_number().await.unwrap();
    let started = std::time::Instant::now();
    chain.new_blocks(open_to_all - best).await.unwrap();
    eprintln!("{} blocks to the end of the grace in {:.1} s", open_to_all - best, started.elapsed().as_secs_f64());
    let living: Vec<&Provider> = providers.iter().filter(|p| p.account() != silent).collect();
    let fell_back = wait_fallback(&chain, id, open_to_all, &living).await;
    let assigned = chain.request(fell_back).await.unwrap().expect("the fallback's request");
    assert_eq!(assigned.providers.0, ticket.providers.0, "the ticket's providers, in its order");
    assert_eq!(assigned.client, demo::account(&eve));
    // The buyer holds the silent provider's acknowledgement of its ticket's `Use`.
    chain.prove_ack(fell_back, &silent, net.peer_id().to_bytes(), acks[2], &eve).await.unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let receipt = loop {
        if let Some(receipt) = chain.receipt(fell_back).await.unwrap() {
            break receipt;
        }
        let logs = || living.iter().map(|p| p.log()).collect::<Vec<_>>().join("\n");
        assert!(std::time::Instant::now() < deadline, "the fallback never settled:\n{}", logs());
        chain.new_blocks(1).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    eprintln!("fallen back and settled {:.1} s after the grace began", started.elapsed().as_secs_f64());
    let mut paid: Vec<_> = receipt.paid.0.iter().map(|(who, _)| who.clone()).collect();
    paid.sort();
    let mut expected_paid = answering.clone();
    expected_paid.sort();
    assert_eq!(paid, expected_paid, "{receipt:?}");
    let per_token = (price * (prompt.len() as u128 + u128::from(counted))).div_ceil(1000);
    for (who, amount) in &receipt.paid.0 {
        assert_eq!(*amount, per_token, "{who}: paid per token, not a reservation fee");
    }
    assert!(matches!(&receipt.slashed.0[..], [(who, _, types::JobOutcome::NoShow)] if *who == silent), "{receipt:?}");
    let ledger_after = futures::future::join_all(answering.iter().map(|p| chain.ledger_balance(p))).await;
    for ((before, after), who) in ledger_before.into_iter().zip(ledger_after).zip(&answering) {
        assert_eq!(after.unwrap(), before.unwrap() + per_token, "{who} is paid into its ledger entry");
    }
    assert!(chain.ticket(id).await.unwrap().map_or(true, |t| t.status != agora_chain_client::TicketStatus::Drawn), "the ticket is spent");
}

/// Bob, Charlie and Dave serving the dev release on a fresh dev chain named `name`, and one
/// ticket of Eve's (k = 3, outputs up to 8 tokens) drawn to them.
struct DrawnTicket {
    _chain_guard: agora_e2e::TestChain,
    chain: agora_chain_client::ChainClient,
    _root: tempfile::TempDir,
    providers: Vec<Provider>,
    id: u64,
    ticket: agora_chain_client::Ticket,
    price: u128,
}

impl DrawnTicket {
    async fn start(name: &str) -> Self {
        let (chain_guard, chain) = agora_e2e::start_chain(name).await.unwrap();
        publish_smollm2(&chain).await;
        let root = tempfile::tempdir().unwrap();
        let price = 2 * UNIT / 1000;
        let providers: Vec<Provider> = [("bob", "//Bob"), ("charlie", "//Charlie"), ("dave", "//Dave")]
            .into_iter()
            .map(|(name, uri)| Provider::start(&chain_guard.ws_url(), root.path(), name, uri, price))
            .collect();
        let profile = wait_online(&chain, &providers[0]).await.manifest.offers.0[0].runtime_profile;
        for p in &providers[1..] {
            wait_online(&chain, p).await;
        }
        let (id, ticket) = drawn_tickets(&chain, profile, 3, 8, 1).await.remove(0);
        Self { _chain_guard: chain_guard, chain, _root: root, providers, id, ticket, price }
    }
}

/// The request ticket `ticket` fell back to, read from the blocks from `from` on.
async fn wait_fallback(chain: &agora_chain_client::ChainClient, ticket: u64, from: u32, providers: &[&Provider]) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut next = from;
    loop {
        let best = chain.best_block_number().await.unwrap();
        while next <= best {
            if let Some(notice) = chain.block_news(next).await.unwrap().fell_back.into_iter().find(|f| f.ticket == ticket) {
                return notice.request;
            }
            next += 1;
        }
        let logs = || providers.iter().map(|p| p.log()).collect::<Vec<_>>().join("\n");
        assert!(std::time::Instant::now() < deadline, "no node fell ticket {ticket} back:\n{}", logs());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
