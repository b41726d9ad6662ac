//! A request's whole life on a real dev chain: escrow, draw, commit–reveal, settlement.

use agora_chain_client::{agora, types, AccountId, ChainClient};
use agora_devnet::demo::{self, account, treasury, Actors, SMOLLM2_SHA256, UNIT};
use agora_e2e::start_chain;
use agora_primitives::receipts::{self, ReceiptRoot, SettlingBlock};
use std::collections::BTreeMap;

const STAKE: u128 = 1_000 * UNIT;
/// Provider i charges (2 + i) thousandths of a unit per 1k tokens.
fn price(i: usize) -> u128 {
    (2 + i as u128) * UNIT / 1000
}

async fn setup(chain: &ChainClient, actors: &Actors) {
    demo::publish(chain, &actors.publisher, demo::smollm2_release()).await.unwrap();
    for (i, p) in actors.providers.iter().enumerate() {
        let m = demo::manifest(4001 + i as u16, SMOLLM2_SHA256, demo::dev_runtime_profile(), price(i));
        demo::register(chain, p, STAKE, m).await.unwrap();
    }
}

async fn balances(chain: &ChainClient, who: &[AccountId]) -> BTreeMap<AccountId, u128> {
    let mut out = BTreeMap::new();
    for a in who {
        out.insert(a.clone(), chain.free_balance(a).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3_request_pays_the_majority_slashes_the_liar_and_refunds_the_client() {
    let (_chain, chain) = start_chain("k3").await.unwrap();
    let actors = Actors::dev();
    setup(&chain, &actors).await;

    let release = chain.release(SMOLLM2_SHA256).await.unwrap().expect("release published");
    assert_eq!(release.status, types::ReleaseStatus::Active);
    assert_eq!(release.publisher, account(&actors.publisher));
    assert_eq!(chain.release_history(demo::SMOLLM2_FAMILY).await.unwrap().len(), 1);
    let quotes = chain.quote(SMOLLM2_SHA256, demo::dev_runtime_profile(), 6, 16).await.unwrap();
    assert_eq!(quotes.len(), 3);
    assert!(quotes.windows(2).all(|w| w[0].max_cost <= w[1].max_cost), "quotes come cheapest first");

    let client = account(&actors.client);
    let providers: Vec<AccountId> = actors.providers.iter().map(account).collect();
    let mut everyone = providers.clone();
    everyone.extend([client.clone(), treasury()]);
    let before = balances(&chain, &everyone).await;

    // k = 3, 6 prompt tokens, up to 16 output tokens, at most 0.01 unit per 1k tokens.
    let max_price = UNIT / 100;
    let params = demo::request_params(SMOLLM2_SHA256, demo::dev_runtime_profile(), b"prompt", 6, 16, max_price, 3);
    let (id, created, request) = demo::open_request(&chain, &actors.client, params).await.unwrap();
    let escrow = 3 * (22 * max_price).div_ceil(1000);
    let event = created.find_first::<agora::escrow::events::RequestCreated>().unwrap().unwrap();
    assert_eq!(event.escrow, escrow);
    assert_eq!(request.status, types::RequestStatus::Assigned);
    // The draw waits for randomness nobody knew when the request's block was built: the dev
    // chain's seed in block n became known in block n - 1, so the draw is two blocks later.
    assert_eq!(request.commit_deadline - request.params.commit_blocks, request.created_at + 2, "drawn in the block after next");
    let mut drawn = request.providers.0.clone();
    drawn.sort();
    let mut expected = providers.clone();
    expected.sort();
    assert_eq!(drawn, expected, "with exactly k eligible providers, all are drawn");
    let mut fees: BTreeMap<AccountId, u128> = BTreeMap::new();
    *fees.entry(client.clone()).or_default() += demo::fee_paid(&created);

    let honest = demo::outcome(b" Paris.", 3);
    let lie = demo::outcome(b" Lyon.", 3);
    let order: Vec<usize> = request.providers.0.iter().map(|w| providers.iter().position(|p| p == w).unwrap()).collect();
    let liar = order[2];
    for (slot, &i) in order.iter().enumerate() {
        let claimed = if slot == 2 { &lie } else { &honest };
        let events = demo::commit(&chain, &actors.providers[i], id, claimed, [slot as u8; 32]).await.unwrap();
        *fees.entry(providers[i].clone()).or_default() += demo::fee_paid(&events);
    }
    for (slot, &i) in order.iter().enumerate() {
        let claimed = if slot == 2 { lie.clone() } else { honest.clone() };
        let events = demo::reveal(&chain, &actors.providers[i], id, claimed, [slot as u8; 32]).await.unwrap();
        *fees.entry(providers[i].clone()).or_default() += demo::fee_paid(&events);
    }
    let settled = demo::settle(&chain, &actors.client, id).await.unwrap();
    *fees.entry(client.clone()).or_default() += demo::fee_paid(&settled);

    // Each winner is paid its own price for 6 prompt and 3 output tokens, rounded up.
    let pay = |i: usize| (9 * price(i)).div_ceil(1000);
    let winners: Vec<usize> = order[..2].to_vec();
    let paid_total: u128 = winners.iter().map(|&i| pay(i)).sum();
    let receipt = chain.receipt(id).await.unwrap().expect("a receipt is stored");
    assert_eq!(receipt.winning, Some(honest.clone()));
    let mut paid = receipt.paid.0.clone();
    paid.sort();
    let mut expected_paid: Vec<(AccountId, u128)> = winners.iter().map(|&i| (providers[i].clone(), pay(i))).collect();
    expected_paid.sort();
    assert_eq!(paid, expected_paid);
    assert_eq!(receipt.slashed.0, vec![(providers[liar].clone(), STAKE / 10, types::JobOutcome::Wrong)]);
    assert_eq!(receipt.refunded, escrow - paid_total);
    assert_eq!(receipt.client, client);

    let after = balances(&chain, &everyone).await;
    let fee = |a: &AccountId| fees.get(a).copied().unwrap_or_default();
    for &i in &winners {
        let a = &providers[i];
        assert_eq!(after[a], before[a] - fee(a) + pay(i), "winner {i} is paid");
        let record = chain.provider(a).await.unwrap().unwrap();
        assert_eq!((record.stake, record.reputation.score_ppm, record.open_jobs), (STAKE, 525_000, 0));
    }
    let liar_account = &providers[liar];
    assert_eq!(after[liar_account], before[liar_account] - fee(liar_account), "the liar is not paid");
    let record = chain.provider(liar_account).await.unwrap().unwrap();
    assert_eq!((record.stake, record.reputation.score_ppm, record.reputation.wrong), (STAKE - STAKE / 10, 375_000, 1));
    assert_eq!(after[&treasury()], before[&treasury()] + STAKE / 10, "the slash goes to the treasury");
    assert_eq!(after[&client], before[&client] - fee(&client) - paid_total, "the client pays only the winners");
    let request = chain.request(id).await.unwrap().unwrap();
    assert_eq!((request.status, request.escrow), (types::RequestStatus::Settled, 0));

    // Hole 5: closed requests and their receipts were kept forever; they go after the retention.
    let retention = chain.record_retention().await.unwrap();
    chain.new_blocks(retention - 1).await.unwrap();
    assert!(chain.receipt(id).await.unwrap().is_some(), "kept through the challenge window");
    chain.new_blocks(1).await.unwrap();
    assert!(chain.request(id).await.unwrap().is_none(), "the request's record is pruned");
    assert!(chain.receipt(id).await.unwrap().is_none(), "the receipt goes with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_by_name_and_holds_nothing() {
    let (_chain, chain) = start_chain("bad-input").await.unwrap();
    let actors = Actors::dev();
    setup(&chain, &actors).await;
    let profile = demo::dev_runtime_profile();
    let params = |release, prompt_tokens, max_price, k| {
        demo::request_params(release, profile, b"p", prompt_tokens, 16, max_price, k)
    };
    let create = |p| async { chain.submit(&agora::tx().escrow().create_request(p), &actors.client).await };

    let rejected = |r: Result<_, agora_chain_client::Error>| r.err().and_then(|e| e.rejection_name().map(str::to_owned));
    assert_eq!(rejected(create(params(SMOLLM2_SHA256, 0, UNIT, 1)).await).as_deref(), Some("Escrow::ZeroTokens"));
    assert_eq!(rejected(create(params(SMOLLM2_SHA256, 6, UNIT, 4)).await).as_deref(), Some("Escrow::NotEnoughProviders"));
    assert_eq!(rejected(create(params(SMOLLM2_SHA256, 6, UNIT / 1000, 1)).await).as_deref(), Some("Escrow::NotEnoughProviders"));
    assert_eq!(rejected(create(params([9; 32], 6, UNIT, 1)).await).as_deref(), Some("Models::UnknownRelease"));
    assert_eq!(rejected(create(params(SMOLLM2_SHA256, 6, u128::MAX, 8)).await).as_deref(), Some("Escrow::PriceOverflow"));
    assert_eq!(
        rejected(demo::settle(&chain, &actors.client, 42).await).as_deref(),
        Some("Verifier::UnknownRequest")
    );
    assert!(chain.request(0).await.unwrap().is_none(), "no rejected call opened a request");

    // A reveal that does not match its commitment, and a commit after settlement.
    let (id, _, request) = demo::open_request(&chain, &actors.client, params(SMOLLM2_SHA256, 6, UNIT, 1)).await.unwrap();
    let provider = actors.providers.iter().find(|k| account(k) == request.providers.0[0]).unwrap();
    let claimed = demo::outcome(b"out", 2);
    demo::commit(&chain, provider, id, &claimed, [1; 32]).await.unwrap();
    assert_eq!(
        rejected(demo::commit(&chain, provider, id, &claimed, [1; 32]).await).as_deref(),
        Some("Verifier::AlreadyCommitted")
    );
    assert_eq!(
        rejected(demo::reveal(&chain, provider, id, claimed.clone(), [2; 32]).await).as_deref(),
        Some("Verifier::CommitmentMismatch")
    );
    let too_long = demo::outcome(b"out", 17);
    assert_eq!(
        rejected(demo::reveal(&chain, provider, id, too_long, [1; 32]).await).as_deref(),
        Some("Verifier::TooManyTokens")
    );
    demo::reveal(&chain, provider, id, claimed.clone(), [1; 32]).await.unwrap();
    demo::settle(&chain, &actors.client, id).await.unwrap();
    assert_eq!(
        rejected(demo::commit(&chain, provider, id, &claimed, [1; 32]).await).as_deref(),
        Some("Verifier::NotActive")
    );
    // Releases: only the publisher may revoke; once revoked, no new request names it.
    let revoke = agora::tx().models().revoke(SMOLLM2_SHA256);
    assert_eq!(rejected(chain.submit(&revoke, &actors.client).await).as_deref(), Some("Models::NotPublisher"));
    chain.submit(&revoke, &actors.publisher).await.unwrap();
    assert_eq!(rejected(create(params(SMOLLM2_SHA256, 6, UNIT, 1)).await).as_deref(), Some("Models::ReleaseRevoked"));
}

/// One account's transactions go out together, each with the next nonce, instead of one per
/// block; a nonce another client of the same account took is read again, not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_pipelines_its_transactions_and_survives_a_nonce_taken_elsewhere() {
    let (test_chain, chain) = start_chain("nonces").await.unwrap();
    let alice = agora_chain_client::subxt_signer::sr25519::dev::alice();
    let remark = |i: u8| agora::tx().system().remark_with_event(vec![i; 8]);

    let calls: Vec<_> = (0..6).map(remark).collect();
    let results = futures::future::join_all(calls.iter().map(|call| chain.submit(call, &alice))).await;
    for (i, result) in results.iter().enumerate() {
        let events = result.as_ref().unwrap_or_else(|e| panic!("remark {i} of one account at once: {e}"));
        assert!(events.find_first::<agora::system::events::Remarked>().is_some());
    }

    let elsewhere = ChainClient::connect(&test_chain.ws_url()).await.unwrap();
    elsewhere.submit(&remark(6), &alice).await.unwrap();
    chain.submit(&remark(7), &alice).await.expect("the nonce the other client took is read again");

    let at = chain.api().at_current_block().await.unwrap();
    let nonce = at.transactions().account_nonce(&account(&alice)).await.unwrap();
    assert_eq!(nonce, 8, "every remark was included once");
}

/// k = 3 tickets of the dev release for prompts and outputs of up to 64 tokens.
fn ticket_spec() -> agora_chain_client::TicketSpec {
    agora_chain_client::TicketSpec {
        release: SMOLLM2_SHA256,
        runtime_profile: demo::dev_runtime_profile(),
        redundancy: 3,
        max_prompt_tokens: 64,
        max_output_tokens: 64,
        max_price_per_1k: UNIT / 100,
    }
}

/// The purchase's tickets once a block has drawn them (at most ten blocks on).
async fn drawn_tickets(chain: &ChainClient, purchase: &agora_chain_client::Purchase) -> Vec<agora_chain_client::Ticket> {
    let mut tickets = Vec::new();
    for _ in 0..10 {
        tickets = futures::future::join_all(purchase.ids().map(|id| chain.ticket(id))).await.into_iter().map(|t| t.unwrap().unwrap()).collect();
        if tickets.iter().all(|t| t.status == agora_chain_client::TicketStatus::Drawn) {
            break;
        }
        chain.new_blocks(1).await.unwrap();
    }
    tickets
}

/// Issue 13, deposits and tickets on the real runtime: a deposit moves money into the ledger,
/// a purchase takes `count × k × max cost` from it, a later block draws each ticket's k
/// providers (no job slots taken), and what is left comes back out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_buys_tickets_drawn_in_a_later_block_and_the_rest_withdraws() {
    let (_chain, chain) = start_chain("tickets").await.unwrap();
    let actors = Actors::dev();
    setup(&chain, &actors).await;
    let client = account(&actors.client);
    let free_before = chain.free_balance(&client).await.unwrap();

    chain.deposit(10 * UNIT, &actors.client).await.unwrap();
    assert_eq!(chain.ledger_balance(&client).await.unwrap(), 10 * UNIT);
    let spec = ticket_spec();
    let purchase = chain.buy_tickets(spec, 4, &actors.client).await.unwrap();
    // 3 × (64 + 64 tokens at 0.01 unit per 1k) a ticket.
    assert_eq!((purchase.first, purchase.count, purchase.escrow_each), (0, 4, 3 * (128 * UNIT / 100).div_ceil(1000)));
    assert_eq!(chain.ledger_balance(&client).await.unwrap(), 10 * UNIT - 4 * purchase.escrow_each);
    let err = chain.buy_tickets(agora_chain_client::TicketSpec { redundancy: 4, ..chain.ticket(0).await.unwrap().unwrap().spec }, 1, &actors.client).await.unwrap_err();
    assert!(err.is_rejected(agora_chain_client::Rejection::Escrow(agora_chain_client::EscrowError::NotEnoughProviders)), "{err}");

    let mut providers: Vec<AccountId> = actors.providers.iter().map(account).collect();
    providers.sort();
    let drawn = drawn_tickets(&chain, &purchase).await;
    for ticket in &drawn {
        assert_eq!(ticket.status, agora_chain_client::TicketStatus::Drawn, "drawn within ten blocks");
        let mut these = ticket.providers.0.clone();
        these.sort();
        assert_eq!(these, providers, "with exactly k eligible providers, all are drawn");
        assert!(ticket.expires_at > ticket.bought_at);
    }
    for p in &providers {
        assert_eq!(chain.provider(p).await.unwrap().unwrap().open_jobs, 0, "tickets take no job slots");
    }

    let left = chain.ledger_balance(&client).await.unwrap();
    chain.withdraw(left, &actors.client).await.unwrap();
    assert_eq!(chain.ledger_balance(&client).await.unwrap(), 0);
    let spent = free_before - chain.free_balance(&client).await.unwrap();
    assert!(spent >= 4 * purchase.escrow_each, "the tickets' escrow stays in the pallet");
    assert!(spent < 4 * purchase.escrow_each + UNIT, "only the escrow and fees left the account: {spent}");
}

/// A bundle for ticket `id` (drawn to `ticket.providers`): `buyer`'s `Use` of a three-token
/// prompt, and each `(position, result)` signed by the provider drawn at that position.
fn signed_bundle(
    genesis: [u8; 32],
    id: u64,
    ticket: &agora_chain_client::Ticket,
    buyer: &agora_chain_client::Keypair,
    keys: &BTreeMap<AccountId, agora_chain_client::Keypair>,
    results: &[(u8, agora_primitives::Outcome)],
) -> agora_chain_client::TicketBundle {
    use agora_chain_client::{Signature, SignedOutcome};
    let authorised = agora_primitives::TicketUse {
        chain: genesis,
        ticket: id,
        prompt_hash: agora_primitives::wire::token_hash(&[1, 2, 3]),
        prompt_tokens: 3,
        max_output_tokens: 16,
        sampling: Default::default(),
        client_peer: agora_primitives::PeerIdBytes::truncate_from(b"client-peer".to_vec()),
    };
    let outcomes = results
        .iter()
        .map(|(i, o)| SignedOutcome {
            provider: *i,
            outcome: types::Outcome { output_hash: o.output_hash, token_count: o.token_count },
            signature: Signature::Sr25519(keys[&ticket.providers.0[*i as usize]].sign(&authorised.outcome_payload(o)).0),
        })
        .collect::<Vec<_>>();
    agora_chain_client::TicketBundle {
        authorised: agora_chain_client::TicketUse {
            chain: genesis,
            ticket: id,
            prompt_hash: authorised.prompt_hash,
            prompt_tokens: authorised.prompt_tokens,
            max_output_tokens: authorised.max_output_tokens,
            sampling: types::SamplingParams { temperature_milli: 0, top_k: 0, top_p_milli: 0 },
            client_peer: agora_chain_client::bounded(authorised.client_peer.to_vec()),
        },
        buyer_signature: Signature::Sr25519(buyer.sign(&authorised.signing_payload()).0),
        outcomes: agora_chain_client::bounded(outcomes),
    }
}

/// Issue 13, settling tickets on the real runtime (sr25519 through `MultiSignature`): one call
/// settles several tickets from the buyer's signed `Use` and the providers' signed outcomes,
/// with no commit or reveal. The majority's signers are credited in the ledger, a signed
/// dissent is slashed, a provider the bundle leaves out keeps its share held and claims it with
/// its own signed outcome, the buyer gets the rest; a forged outcome refuses the whole call by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_settles_tickets_from_signed_outcomes_paying_through_the_ledger() {
    let (_chain, chain) = start_chain("settle-tickets").await.unwrap();
    let actors = Actors::dev();
    setup(&chain, &actors).await;
    let keys: BTreeMap<AccountId, agora_chain_client::Keypair> = actors.providers.iter().map(|k| (account(k), k.clone())).collect();
    let client = account(&actors.client);
    chain.deposit(10 * UNIT, &actors.client).await.unwrap();
    let spec = ticket_spec();
    let purchase = chain.buy_tickets(spec, 3, &actors.client).await.unwrap();
    let tickets = drawn_tickets(&chain, &purchase).await;
    let good = agora_primitives::Outcome { output_hash: [0xaa; 32], token_count: 12 };
    let bad = agora_primitives::Outcome { output_hash: [0xbb; 32], token_count: 12 };
    let ids: Vec<u64> = purchase.ids().collect();
    let liar = tickets[0].providers.0[2].clone();
    let left_out = tickets[1].providers.0[2].clone();
    let liar_stake = chain.provider(&liar).await.unwrap().unwrap().stake;
    let ledger_before = chain.ledger_balance(&client).await.unwrap();

    let mut forged = signed_bundle(chain.genesis_hash(), ids[2], &tickets[2], &actors.client, &keys, &[(0, good), (1, good)]);
    forged.outcomes.0[1].signature = forged.outcomes.0[0].signature.clone();
    let err = chain.settle_tickets(vec![forged], &actors.publisher).await.unwrap_err();
    assert!(err.is_rejected(agora_chain_client::Rejection::Verifier(agora_chain_client::VerifierError::BadOutcomeSignature)), "{err}");
    // Signed, buyer and providers alike, for another chain with the same keys and ticket ids.
    let elsewhere = signed_bundle([9; 32], ids[2], &tickets[2], &actors.client, &keys, &[(0, good), (1, good)]);
    let err = chain.settle_tickets(vec![elsewhere], &actors.publisher).await.unwrap_err();
    assert!(err.is_rejected(agora_chain_client::Rejection::Verifier(agora_chain_client::VerifierError::WrongChain)), "{err}");

    let bundles = vec![
        signed_bundle(chain.genesis_hash(), ids[0], &tickets[0], &actors.client, &keys, &[(0, good), (1, good), (2, bad)]),
        signed_bundle(chain.genesis_hash(), ids[1], &tickets[1], &actors.client, &keys, &[(0, good), (1, good)]),
        signed_bundle(chain.genesis_hash(), ids[2], &tickets[2], &actors.client, &keys, &[(0, good), (1, good), (2, good)]),
    ];
    // The buyer and the three providers, each offering one release.
    let witness = chain.settle_witness(&bundles).await.unwrap();
    assert_eq!(witness, agora_chain_client::SettleWitness { accounts: 4, relisted: 0 });
    let low = agora_chain_client::SettleWitness { accounts: 3, ..witness };
    let err = chain.settle_tickets_with(bundles.clone(), low, &actors.publisher).await.unwrap_err();
    assert!(err.is_rejected(agora_chain_client::Rejection::Verifier(agora_chain_client::VerifierError::AccountsWitnessTooLow)), "{err}");
    let settled = chain.settle_tickets(bundles, &actors.publisher).await.unwrap();
    let receipts = settled.receipts.clone();
    // The settling block's header commits to every receipt it deposited, as the client
    // encodes them: what a receipt file is checked against offline.
    let block = chain.settled_tickets_at(settled.block).await.unwrap();
    assert_eq!(block.receipts, receipts);
    let header = SettlingBlock::from_header(&block.header).expect("a header of the chain's format");
    assert_eq!(header.hash, settled.block, "the header's bytes hash to the block hash");
    assert_eq!(header.number, receipts[0].settled_at);
    let leaves: Vec<_> = receipts.iter().map(|r| receipts::leaf(&codec::Encode::encode(r))).collect();
    let deposited = ReceiptRoot::from_encoded_digest(&block.runtime_digest);
    assert_eq!(deposited, Some(ReceiptRoot::of(&leaves)), "the runtime's digest of the block holds the root of its receipts");
    // chopsticks serves headers of its own, without the runtime's digest; a sealing node
    // serves the root in the header.
    assert!(header.receipt_root.is_none() || header.receipt_root == deposited, "{:?}", header.receipt_root);

    assert_eq!(receipts.iter().map(|r| r.ticket).collect::<Vec<_>>(), ids);
    assert_eq!((receipts[0].paid.0.len(), receipts[0].slashed.0.len(), receipts[0].held.0.len()), (2, 1, 0));
    assert_eq!(receipts[0].slashed.0[0].0, liar);
    assert!(receipts[0].slashed.0[0].1 > 0);
    assert_eq!(chain.provider(&liar).await.unwrap().unwrap().stake, liar_stake - receipts[0].slashed.0[0].1, "the signed dissent cost real stake");
    assert_eq!(receipts[1].held.0.iter().map(|(who, _)| who.clone()).collect::<Vec<_>>(), vec![left_out.clone()]);
    assert_eq!(receipts[2].paid.0.len(), 3);
    let mut owed: BTreeMap<AccountId, u128> = BTreeMap::new();
    for receipt in &receipts {
        for (who, amount) in &receipt.paid.0 {
            assert!(*amount > 0);
            *owed.entry(who.clone()).or_default() += amount;
        }
    }
    for (who, amount) in &owed {
        assert_eq!(chain.ledger_balance(who).await.unwrap(), *amount, "each provider's ledger entry holds what the receipts credit it");
    }
    let refunded: u128 = receipts.iter().map(|r| r.refunded).sum();
    let held = receipts[1].held.0[0].1;
    assert_eq!(chain.ledger_balance(&client).await.unwrap(), ledger_before + refunded);
    assert_eq!(refunded + held + owed.values().sum::<u128>(), 3 * purchase.escrow_each, "the receipts account for the whole escrow");
    for id in [ids[0], ids[2]] {
        assert!(chain.ticket(id).await.unwrap().is_none(), "a settled ticket leaves no storage behind");
    }
    assert_eq!(chain.ticket(ids[1]).await.unwrap().unwrap().escrow, held, "the left-out provider's share stays held");

    // The left-out provider brings its own signed outcome: it is paid, the buyer gets the rest.
    let position = tickets[1].providers.0.iter().position(|p| *p == left_out).unwrap() as u8;
    let use_hash = receipts[1].use_hash;
    let signature = agora_chain_client::Signature::Sr25519(
        keys[&left_out].sign(&agora_primitives::tickets::outcome_payload(ids[1], &use_hash, &good)).0,
    );
    let outcome = types::Outcome { output_hash: good.output_hash, token_count: good.token_count };
    let earned_before = chain.ledger_balance(&left_out).await.unwrap();
    chain.claim_ticket_outcome(ids[1], agora_chain_client::SignedOutcome { provider: position, outcome, signature }, &keys[&left_out]).await.unwrap();
    let earned = chain.ledger_balance(&left_out).await.unwrap() - earned_before;
    assert!(earned > 0 && earned <= held, "paid its price from its held share: {earned} of {held}");
    assert_eq!(chain.ledger_balance(&client).await.unwrap(), ledger_before + refunded + held - earned);
    assert!(chain.ticket(ids[1]).await.unwrap().is_none());

    let earner = owed.keys().next().unwrap();
    let balance = chain.ledger_balance(earner).await.unwrap();
    chain.withdraw(balance, &keys[earner]).await.unwrap();
    assert_eq!(chain.ledger_balance(earner).await.unwrap(), 0, "earnings leave the ledger by withdrawal");
}


/// Issue 13, the fallback on the real runtime: a ticket whose outcomes have no majority (or
/// whose buyer never settles) becomes a request of the same providers in commit–reveal. Nobody
/// but the buyer may fall it back before the grace after its expiry; the buyer may at once. The
/// providers commit and reveal, the majority is paid through the ledger (the escrow never left
/// the pallet's account, so a buyer that emptied its own balance cannot stop it), the signer of
/// another result is slashed, and the buyer's entry gets the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_nobody_settled_falls_back_to_commit_reveal_and_pays_through_the_ledger() {
    use agora_chain_client::{EscrowError, Rejection};
    let (_chain, chain) = start_chain("fall-back").await.unwrap();
    let actors = Actors::dev();
    setup(&chain, &actors).await;
    let keys: BTreeMap<AccountId, agora_chain_client::Keypair> = actors.providers.iter().map(|k| (account(k), k.clone())).collect();
    let client = account(&actors.client);
    chain.deposit(10 * UNIT, &actors.client).await.unwrap();
    let purchase = chain.buy_tickets(ticket_spec(), 1, &actors.client).await.unwrap();
    let ticket = drawn_tickets(&chain, &purchase).await.remove(0);
    let id = purchase.first;
    let signed = signed_bundle(chain.genesis_hash(), id, &ticket, &actors.client, &keys, &[]);
    let (authorised, buyer_signature) = (signed.authorised, signed.buyer_signature);
    let provider = &keys[&ticket.providers.0[0]];
    let err = chain.fall_back_ticket(authorised.clone(), buyer_signature.clone(), provider).await.unwrap_err();
    assert!(err.is_rejected(Rejection::Escrow(EscrowError::FallbackTooEarly)), "{err}");

    let ledger_before = chain.ledger_balance(&client).await.unwrap();
    let request = chain.fall_back_ticket(authorised, buyer_signature, &actors.client).await.unwrap();
    assert!(chain.ticket(id).await.unwrap().is_none(), "the ticket is now a request");
    let r = chain.request(request).await.unwrap().expect("the request exists");
    assert_eq!(r.providers.0, ticket.providers.0);
    assert_eq!(r.status, types::RequestStatus::Assigned);
    assert_eq!(r.params.prompt_tokens, 3);
    let refund = chain.ledger_balance(&client).await.unwrap() - ledger_before;
    assert_eq!(refund + r.escrow, purchase.escrow_each, "the request keeps the Use's most; the rest is the buyer's again");

    let good = agora_primitives::Outcome { output_hash: [0xaa; 32], token_count: 12 };
    let bad = agora_primitives::Outcome { output_hash: [0xbb; 32], token_count: 12 };
    let salt = [3u8; 32];
    let results = [good, good, bad];
    for (who, result) in r.providers.0.iter().zip(results) {
        let hash = agora_verifier::commitment::commitment(request, &who.0, &result, &salt);
        chain.submit(&agora::tx().verifier().commit(request, hash), &keys[who]).await.unwrap();
    }
    for (who, result) in r.providers.0.iter().zip(results) {
        let outcome = types::Outcome { output_hash: result.output_hash, token_count: result.token_count };
        chain.submit(&agora::tx().verifier().reveal(request, outcome, salt), &keys[who]).await.unwrap();
    }
    let earned_before = chain.ledger_balance(&r.providers.0[0]).await.unwrap();
    let liar_stake = chain.provider(&r.providers.0[2]).await.unwrap().unwrap().stake;
    chain.submit(&agora::tx().verifier().settle(request), &actors.publisher).await.unwrap();
    let receipt = chain.receipt(request).await.unwrap().expect("the settlement's receipt");
    assert_eq!(receipt.paid.0.iter().map(|(who, _)| who.clone()).collect::<Vec<_>>(), r.providers.0[..2].to_vec());
    let paid = receipt.paid.0[0].1;
    assert!(paid > 0);
    assert_eq!(chain.ledger_balance(&r.providers.0[0]).await.unwrap() - earned_before, paid, "paid into its ledger entry");
    let paid_total: u128 = receipt.paid.0.iter().map(|(_, amount)| amount).sum();
    assert!(chain.provider(&r.providers.0[2]).await.unwrap().unwrap().stake < liar_stake, "the other result's signer is slashed");
    let back = chain.ledger_balance(&client).await.unwrap() - ledger_before - refund;
    assert_eq!(back, receipt.refunded, "the request's refund goes to the buyer's entry");
    assert_eq!(back + paid_total, r.escrow, "the receipt accounts for the request's escrow");
}
