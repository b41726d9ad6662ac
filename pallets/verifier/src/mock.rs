use crate as pallet_agora_verifier;
use agora_primitives::{CapabilityManifest, Offer, ReleaseId, RequestParams, SamplingParams};
use polkadot_sdk::{
    frame_support::{
        derive_impl, parameter_types,
        traits::{ConstU32, ConstU64, Hooks, Randomness},
    },
    frame_system, pallet_balances, sp_io,
    sp_core::H256,
    sp_runtime::{traits::Hash, BoundedVec, BuildStorage, Perbill},
};

type Block = frame_system::mocking::MockBlock<Test>;

polkadot_sdk::frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Models: pallet_agora_models,
        Providers: pallet_agora_providers,
        Escrow: pallet_agora_escrow,
        Verifier: pallet_agora_verifier,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
    type RuntimeHoldReason = RuntimeHoldReason;
}

impl pallet_agora_models::Config for Test {
    type MaxReleasesPerFamily = ConstU32<8>;
    type WeightInfo = ();
}

pub const TREASURY: u64 = 99;

parameter_types! {
    pub const Treasury: u64 = TREASURY;
    pub const MinStake: u64 = 100;
    pub static UnbondingDelay: u64 = 10;
}

impl pallet_agora_providers::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MinStake = MinStake;
    type UnbondingDelay = UnbondingDelay;
    // A dispute of 8 results before 8 verifiers needs 16 providers of one release.
    type MaxProvidersPerRelease = ConstU32<16>;
    type Treasury = Treasury;
    type WeightInfo = ();
}

parameter_types! {
    /// How many blocks before the current one the mock's seed was determinable: 0 by default
    /// (a fresh seed every block, so draws happen in the next block), 1 like the dev chain's
    /// parent-hash randomness, more for a source that lags.
    pub static RandomnessLag: u64 = 0;
}

/// Deterministic per block and subject, so draws are reproducible in tests.
pub struct TestRandomness;
impl Randomness<H256, u64> for TestRandomness {
    fn random(subject: &[u8]) -> (H256, u64) {
        let block = System::block_number();
        (<Test as frame_system::Config>::Hashing::hash(&[subject, &block.to_le_bytes()].concat()), block.saturating_sub(RandomnessLag::get()))
    }
}

impl pallet_agora_escrow::Config for Test {
    type Randomness = TestRandomness;
    type MinCommitBlocks = ConstU64<2>;
    type MaxCommitBlocks = ConstU64<50>;
    type RevealWindow = ConstU64<5>;
    type SettleWindow = ConstU64<10>;
    type MaxAssignmentsPerBlock = ConstU32<3>;
    type OnClose = Verifier;
    type PalletId = EscrowPalletId;
    type MaxTicketsPerPurchase = ConstU32<16>;
    type MaxPurchasesAwaitingDraw = ConstU32<4>;
    type TicketLifetime = ConstU64<20>;
    type RecordRetention = ConstU64<12>;
    type TicketReservationFee = TicketReservationFee;
    type TicketFallbackGrace = ConstU64<3>;
    type FallbackCommitBlocks = ConstU64<5>;
    type WeightInfo = ();
}

parameter_types! {
    pub const EscrowPalletId: polkadot_sdk::frame_support::PalletId = polkadot_sdk::frame_support::PalletId(*b"agora/es");
    pub const TicketReservationFee: polkadot_sdk::sp_runtime::Perbill = polkadot_sdk::sp_runtime::Perbill::from_percent(5);
}

parameter_types! {
    pub const WrongResultSlash: Perbill = Perbill::from_percent(10);
    pub const NoShowSlash: Perbill = Perbill::from_percent(2);
}

parameter_types! {
    pub const ChallengeBond: u64 = 500;
    pub const VerifierFee: u64 = 7;
    pub static AuditFloor: Perbill = Perbill::from_percent(5);
    pub const AuditCeiling: Perbill = Perbill::from_percent(100);
}

impl pallet_agora_verifier::Config for Test {
    type WrongResultSlash = WrongResultSlash;
    type NoShowSlash = NoShowSlash;
    type DisputeVerifiers = ConstU32<3>;
    type AuditVerifiers = ConstU32<1>;
    type VerdictWindow = ConstU64<4>;
    type ChallengeWindow = ConstU64<6>;
    type ChallengeBond = ChallengeBond;
    type VerifierFee = VerifierFee;
    type AuditFloor = AuditFloor;
    type AuditCeiling = AuditCeiling;
    type AuditSafetyPercent = ConstU32<200>;
    type MaxPendingDraws = ConstU32<8>;
    type ReservationShare = ReservationShare;
    type OffchainSignature = polkadot_sdk::sp_runtime::testing::TestSignature;
    type MaxBundlesPerSettle = ConstU32<8>;
    type MaxBlockReceipts = ConstU32<12>;
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = TestSigner;
    type WeightInfo = ();
}

parameter_types! {
    pub const ReservationShare: Perbill = Perbill::from_percent(10);
}

/// The test signature names its signer and carries the message: valid for exactly that pair.
pub fn ack(provider: u64, request: u64, client_peer: &[u8]) -> polkadot_sdk::sp_runtime::testing::TestSignature {
    ack_on(Verifier::chain(), provider, request, client_peer)
}

/// [`ack`] of the request's `Use` as signed for the chain whose genesis hash is `chain`.
pub fn ack_on(chain: [u8; 32], provider: u64, request: u64, client_peer: &[u8]) -> polkadot_sdk::sp_runtime::testing::TestSignature {
    let r = pallet_agora_escrow::Requests::<Test>::get(request).expect("the request exists");
    let authorised = agora_primitives::wire::Use {
        chain,
        request,
        prompt_hash: r.params.prompt_hash,
        prompt_tokens: r.params.prompt_tokens,
        client_peer: client_peer.to_vec(),
    };
    polkadot_sdk::sp_runtime::testing::TestSignature(provider, authorised.ack_payload())
}

#[cfg(feature = "runtime-benchmarks")]
pub struct TestSigner;
#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<u64, polkadot_sdk::sp_runtime::testing::TestSignature> for TestSigner {
    fn signer(index: u32) -> u64 {
        1_000 + u64::from(index)
    }
    fn sign(signer: &u64, message: &[u8]) -> polkadot_sdk::sp_runtime::testing::TestSignature {
        polkadot_sdk::sp_runtime::testing::TestSignature(*signer, message.to_vec())
    }
}

pub const PUBLISHER: u64 = 1;
pub const CLIENT: u64 = 2;
pub const POOR_CLIENT: u64 = 3;
pub const PROVIDERS: [u64; 4] = [10, 11, 12, 13];
/// Accounts that become providers and opt in as verifiers in the tests that need them.
pub const VERIFIERS: [u64; 3] = [20, 21, 22];
pub const RELEASE: ReleaseId = [1; 32];
pub const PROFILE: [u8; 32] = [7; 32];
pub const PRICE: u64 = 10;

pub fn manifest(price: u64) -> CapabilityManifest<u64> {
    CapabilityManifest {
        peer_id: b"peer".to_vec().try_into().unwrap(),
        multiaddrs: BoundedVec::truncate_from(vec![b"/ip4/127.0.0.1/tcp/1".to_vec().try_into().unwrap()]),
        offers: BoundedVec::truncate_from(vec![Offer { release: RELEASE, runtime_profile: PROFILE, milli_tokens_per_sec: 1 }]),
        price_per_1k_input: price,
        price_per_1k_output: price,
        max_context: 4096,
        max_concurrent_jobs: 4,
        hardware_class: b"cpu".to_vec().try_into().unwrap(),
        settlement_key: [0; 32],
    }
}

/// 1,000 prompt tokens and up to 1,000 output tokens at `max_price` per 1k: max cost 2 × max_price.
pub fn params(k: u32, max_price: u64) -> RequestParams<u64, u64> {
    RequestParams {
        release: RELEASE,
        runtime_profile: PROFILE,
        prompt_hash: [5; 32],
        prompt_tokens: 1000,
        max_output_tokens: 1000,
        max_price_per_1k: max_price,
        redundancy: k,
        sampling: SamplingParams::default(),
        commit_blocks: 3,
    }
}

/// Moves to the next block, running the draws as the runtime would (providers, then audits and
/// verifiers).
pub fn next_block() {
    start_next_block();
    end_block();
}

/// The next block's number, its own digest (as a node starts each block's) and `on_initialize`
/// hooks: its transactions come after.
pub fn start_next_block() {
    let n = System::block_number() + 1;
    System::set_block_number(n);
    // `System::Digest` is private to frame-system: cleared by its key, as `initialize` resets it.
    sp_io::storage::clear(&polkadot_sdk::frame_support::storage::storage_prefix(b"System", b"Digest"));
    Escrow::on_initialize(n);
    Verifier::on_initialize(n);
}

/// The current block's `on_idle`, after its transactions, with all the weight it wants, then
/// its `on_finalize`.
pub fn end_block() {
    Escrow::on_idle(System::block_number(), polkadot_sdk::frame_support::weights::Weight::MAX);
    Verifier::on_finalize(System::block_number());
}

/// Moves to block `n`, running every block's draw on the way.
pub fn run_to(n: u64) {
    while System::block_number() < n {
        next_block();
    }
}

/// Every pallet's invariants, plus conservation: no value is created or destroyed (the mock
/// has no fees; slashes only move stake to the treasury).
pub fn check_invariants() {
    Models::do_try_state().expect("model invariants hold");
    Providers::do_try_state().expect("provider invariants hold");
    Escrow::do_try_state().expect("escrow invariants hold");
    Verifier::do_try_state().expect("verifier invariants hold");
    let accounts = [PUBLISHER, CLIENT, POOR_CLIENT, TREASURY, 10, 11, 12, 13, 20, 21, 22, pallet_agora_escrow::Pallet::<Test>::account_id()];
    let total: u64 = accounts.iter().map(|a| <Balances as polkadot_sdk::frame_support::traits::fungible::Inspect<u64>>::total_balance(a)).sum();
    assert_eq!(total, INITIAL_TOTAL, "value was created or lost");
    assert_eq!(Balances::total_issuance(), INITIAL_TOTAL, "issuance changed");
}

/// The genesis balances, and the escrow pallet account's existential deposit (1 in the mock).
pub const INITIAL_TOTAL: u64 = 1_000 + 100_000 + 50 + 4 * 10_000 + 3 * 10_000 + 1_000 + 1;

/// Registers `count` verifier accounts as providers of the release and opts them in. Called
/// after a request's draw, so that the draw never picks them.
pub fn opt_in_verifiers(count: usize) {
    for v in &VERIFIERS[..count] {
        Providers::register(RuntimeOrigin::signed(*v), 1_000, manifest(PRICE)).unwrap();
        Verifier::opt_in_verifier(RuntimeOrigin::signed(*v)).unwrap();
    }
}

/// Publishes `extra` more releases and has every provider of [`PROVIDERS`] offer them beside
/// [`RELEASE`]: each write of its record then rewrites `extra + 1` listings.
pub fn offer_more_releases(extra: u8) {
    let mut offers = manifest(PRICE).offers.into_inner();
    for i in 0..extra {
        let mut info = release_info();
        info.sha256 = [100 + i; 32];
        info.version = format!("extra-{i}").into_bytes().try_into().unwrap();
        Models::publish(RuntimeOrigin::signed(PUBLISHER), info).unwrap();
        offers.push(Offer { release: [100 + i; 32], runtime_profile: PROFILE, milli_tokens_per_sec: 1 });
    }
    for p in PROVIDERS {
        let mut m = manifest(PRICE);
        m.offers = BoundedVec::truncate_from(offers.clone());
        Providers::update_manifest(RuntimeOrigin::signed(p), m).unwrap();
    }
}

fn release_info() -> agora_primitives::ReleaseInfo {
    agora_primitives::ReleaseInfo {
        family: b"smollm2".to_vec().try_into().unwrap(),
        version: b"1".to_vec().try_into().unwrap(),
        sha256: RELEASE,
        size_bytes: 1,
        architecture: b"llama".to_vec().try_into().unwrap(),
        quantization: b"Q4_1".to_vec().try_into().unwrap(),
        license: b"Apache-2.0".to_vec().try_into().unwrap(),
        parent: None,
        metadata_hash: [0; 32],
    }
}

pub fn new_test_ext(test: impl FnOnce()) {
    let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    let mut balances = vec![(PUBLISHER, 1_000), (CLIENT, 100_000), (POOR_CLIENT, 50)];
    balances.extend(PROVIDERS.iter().chain(&VERIFIERS).map(|p| (*p, 10_000)));
    // The treasury pays verifier fees; it starts with enough to exist.
    balances.push((TREASURY, 1_000));
    pallet_balances::GenesisConfig::<Test> { balances, ..Default::default() }
        .assimilate_storage(&mut storage)
        .unwrap();
    pallet_agora_escrow::GenesisConfig::<Test>::default().assimilate_storage(&mut storage).unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        System::set_block_number(1);
        Models::publish(RuntimeOrigin::signed(PUBLISHER), release_info()).unwrap();
        for p in PROVIDERS {
            Providers::register(RuntimeOrigin::signed(p), 1_000, manifest(PRICE)).unwrap();
        }
        test();
        check_invariants();
    });
}

#[cfg(feature = "runtime-benchmarks")]
pub fn bench_ext() -> sp_io::TestExternalities {
    let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
