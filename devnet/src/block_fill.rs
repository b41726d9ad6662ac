//! A block's worth of ticket settlements on the runtime itself: the proof a `settle_tickets`
//! of many bundles really takes, beside the proof its benchmarked weight charges.
//!
//! Runs the native runtime over the `development` genesis: three providers of one release,
//! one buyer's tickets bought and drawn as blocks do it, bundles signed with the dev sr25519
//! keys, and the call executed under a proof recorder.

use agora_primitives::{
    CapabilityManifest, Offer, Outcome, ReleaseInfo, SignedOutcome, TicketBundle, TicketSpec, TicketUse,
};
use agora_runtime::{Runtime, RuntimeCall, RuntimeOrigin, Signature, UNIT};
use codec::Encode;
use polkadot_sdk::frame_support::{
    dispatch::GetDispatchInfo,
    traits::{Get, Hooks},
    weights::Weight,
};
use polkadot_sdk::sp_core::{sr25519, Pair};
use polkadot_sdk::sp_runtime::{traits::Dispatchable, AccountId32, BoundedVec, BuildStorage};

type Escrow = pallet_agora_escrow::Pallet<Runtime>;

/// What one `settle_tickets` of `bundles` took and was charged.
#[derive(Debug)]
pub struct BlockFill {
    pub bundles: u32,
    /// The storage proof of executing the call, as a collator would send it.
    pub real_proof: u64,
    /// The call's pre-dispatch weight, from the benchmarks.
    pub benchmarked: Weight,
    /// The call's length in a block.
    pub call_bytes: usize,
}

const RELEASE: [u8; 32] = [0x42; 32];
const PROFILE: [u8; 32] = [0x07; 32];

fn key(name: &str) -> sr25519::Pair {
    sr25519::Pair::from_string(&format!("//{name}"), None).expect("a dev seed")
}

fn account(pair: &sr25519::Pair) -> AccountId32 {
    pair.public().into()
}

fn signed(pair: &sr25519::Pair) -> RuntimeOrigin {
    RuntimeOrigin::signed(account(pair))
}

fn bounded<T, S: polkadot_sdk::frame_support::traits::Get<u32>>(items: Vec<T>) -> BoundedVec<T, S> {
    BoundedVec::truncate_from(items)
}

fn dispatch(call: impl Into<RuntimeCall>, origin: RuntimeOrigin) {
    call.into().dispatch(origin).map_err(|e| e.error).expect("the setup call succeeds");
}

/// Moves to block `n` as far as the ticket path cares: the randomness source, then the draws.
fn block(n: u32) {
    let parent = polkadot_sdk::frame_system::Pallet::<Runtime>::block_hash(n - 1);
    polkadot_sdk::frame_system::Pallet::<Runtime>::initialize(&n, &parent, &Default::default());
    <agora_runtime::RandomnessCollectiveFlip as Hooks<u32>>::on_initialize(n);
    <Escrow as Hooks<u32>>::on_initialize(n);
}

fn manifest(port: u16) -> CapabilityManifest<u128> {
    CapabilityManifest {
        peer_id: bounded(format!("peer-{port}").into_bytes()),
        multiaddrs: bounded(vec![bounded(format!("/ip4/127.0.0.1/tcp/{port}").into_bytes())]),
        offers: bounded(vec![Offer { release: RELEASE, runtime_profile: PROFILE, milli_tokens_per_sec: 30_000 }]),
        price_per_1k_input: UNIT / 1000,
        price_per_1k_output: UNIT / 500,
        max_context: 2048,
        max_concurrent_jobs: 4,
        hardware_class: bounded(b"cpu".to_vec()),
        settlement_key: [0; 32],
    }
}

/// Buys and draws `bundles` k = 3 tickets of one buyer, then settles them all in one call
/// under a proof recorder.
pub fn settle_block_fill(bundles: u32) -> BlockFill {
    let preset = agora_runtime::genesis::get_preset(&agora_runtime::genesis::DEVELOPMENT.into()).expect("a development preset");
    let config: agora_runtime::RuntimeGenesisConfig = serde_json::from_slice(&preset).expect("the preset parses");
    let mut ext = polkadot_sdk::sp_io::TestExternalities::new(config.build_storage().expect("genesis builds"));
    let (publisher, buyer) = (key("Alice"), key("Eve"));
    let providers = [key("Bob"), key("Charlie"), key("Dave")];
    let per_purchase = <Runtime as pallet_agora_escrow::Config>::MaxTicketsPerPurchase::get();
    let call = ext.execute_with(|| {
        block(1);
        let info = ReleaseInfo {
            family: bounded(b"block-fill".to_vec()),
            version: bounded(b"1".to_vec()),
            sha256: RELEASE,
            size_bytes: 1,
            architecture: bounded(b"llama".to_vec()),
            quantization: bounded(b"Q4_1".to_vec()),
            license: bounded(b"Apache-2.0".to_vec()),
            parent: None,
            metadata_hash: [0; 32],
        };
        dispatch(pallet_agora_models::Call::<Runtime>::publish { info }, signed(&publisher));
        for (i, p) in providers.iter().enumerate() {
            dispatch(pallet_agora_providers::Call::<Runtime>::register { stake: 1_000 * UNIT, manifest: manifest(4001 + i as u16) }, signed(p));
        }
        let spec = TicketSpec {
            release: RELEASE,
            runtime_profile: PROFILE,
            redundancy: 3,
            max_prompt_tokens: 256,
            max_output_tokens: 256,
            max_price_per_1k: UNIT / 100,
        };
        let each = Escrow::ticket_escrow(&spec).expect("the spec's cost fits");
        dispatch(pallet_agora_escrow::Call::<Runtime>::deposit { amount: each * u128::from(bundles) }, signed(&buyer));
        let mut left = bundles;
        while left > 0 {
            let count = left.min(per_purchase);
            dispatch(pallet_agora_escrow::Call::<Runtime>::buy_tickets { spec: spec.clone(), count }, signed(&buyer));
            left -= count;
        }
        block(2);
        block(3);
        let keys: Vec<(AccountId32, &sr25519::Pair)> = providers.iter().map(|p| (account(p), p)).collect();
        let answer = Outcome { output_hash: [0xaa; 32], token_count: 200 };
        let signed_bundles: Vec<TicketBundle<Signature>> = (0..u64::from(bundles))
            .map(|id| {
                let ticket = pallet_agora_escrow::Tickets::<Runtime>::get(id).expect("the ticket was drawn");
                let authorised = TicketUse {
                    chain: pallet_agora_verifier::Pallet::<Runtime>::chain(),
                    ticket: id,
                    prompt_hash: [id as u8; 32],
                    prompt_tokens: 100,
                    max_output_tokens: 256,
                    sampling: Default::default(),
                    client_peer: bounded(vec![0x24; 38]),
                };
                let outcomes = ticket
                    .providers
                    .iter()
                    .enumerate()
                    .map(|(i, who)| {
                        let pair = keys.iter().find(|(a, _)| a == who).expect("a dev provider").1;
                        SignedOutcome { provider: i as u8, outcome: answer, signature: pair.sign(&authorised.outcome_payload(&answer)).into() }
                    })
                    .collect();
                TicketBundle { buyer_signature: buyer.sign(&authorised.signing_payload()).into(), authorised, outcomes: bounded(outcomes) }
            })
            .collect();
        // The three providers and the buyer.
        RuntimeCall::Verifier(pallet_agora_verifier::Call::settle_tickets { bundles: bounded(signed_bundles), accounts: 4, relisted: 0 })
    });
    ext.commit_all().expect("the setup commits");
    let benchmarked = call.get_dispatch_info().call_weight;
    let call_bytes = call.encoded_size();
    let origin = signed(&publisher);
    let (result, proof) = ext.execute_and_prove(|| call.dispatch(origin));
    result.map_err(|e| e.error).expect("the bundles settle");
    let settled = ext.execute_with(|| pallet_agora_escrow::Tickets::<Runtime>::iter().count());
    assert_eq!(settled, 0, "every ticket was settled");
    BlockFill { bundles, real_proof: proof.encoded_size() as u64, benchmarked, call_bytes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polkadot_sdk::frame_support::dispatch::DispatchClass;

    /// Issue 13: a block settles 1,000 bundles of k = 3. Prints the real proof beside the
    /// benchmarked one (`cargo test --workspace --locked --lib block_fill -- --nocapture`).
    #[test]
    fn a_block_settles_a_thousand_k3_bundles_within_its_benchmarked_proof() {
        let fill = settle_block_fill(1_000);
        let block = <Runtime as polkadot_sdk::frame_system::Config>::BlockWeights::get();
        let normal = block.get(DispatchClass::Normal).max_total.unwrap_or(block.max_block);
        let length = <Runtime as polkadot_sdk::frame_system::Config>::BlockLength::get();
        eprintln!(
            "settle_tickets of {} bundles (k = 3): real proof {} B, benchmarked {} B ({:.1} ms ref time); call {} B",
            fill.bundles,
            fill.real_proof,
            fill.benchmarked.proof_size(),
            fill.benchmarked.ref_time() as f64 / 1e9,
            fill.call_bytes,
        );
        assert!(fill.real_proof <= fill.benchmarked.proof_size(), "the benchmark undercharges the proof: {fill:?}");
        assert!(fill.benchmarked.all_lte(normal), "a thousand bundles do not fit a block's weight: {fill:?}");
        assert!((fill.call_bytes as u32) < *length.max.get(DispatchClass::Normal), "the call is longer than a block: {fill:?}");
    }
}
