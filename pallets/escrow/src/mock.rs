use crate as pallet_agora_escrow;
use agora_primitives::{CapabilityManifest, Offer, ReleaseId, RequestParams, SamplingParams};
use polkadot_sdk::{
    frame_support::{
        derive_impl, parameter_types,
        traits::{ConstU32, ConstU64, Hooks, Randomness},
    },
    frame_system, pallet_balances, sp_io,
    sp_core::H256,
    sp_runtime::{traits::Hash, BoundedVec, BuildStorage},
};

type Block = frame_system::mocking::MockBlock<Test>;

polkadot_sdk::frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Models: pallet_agora_models,
        Providers: pallet_agora_providers,
        Escrow: pallet_agora_escrow,
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
}

impl pallet_agora_providers::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MinStake = MinStake;
    type UnbondingDelay = ConstU64<10>;
    type MaxProvidersPerRelease = ConstU32<8>;
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
    type OnClose = ();
    type PalletId = EscrowPalletId;
    type MaxTicketsPerPurchase = ConstU32<16>;
    type MaxPurchasesAwaitingDraw = ConstU32<4>;
    type TicketLifetime = ConstU64<20>;
    type RecordRetention = ConstU64<30>;
    type TicketReservationFee = TicketReservationFee;
    type TicketFallbackGrace = ConstU64<3>;
    type FallbackCommitBlocks = ConstU64<5>;
    type WeightInfo = ();
}

parameter_types! {
    pub const EscrowPalletId: polkadot_sdk::frame_support::PalletId = polkadot_sdk::frame_support::PalletId(*b"agora/es");
    pub const TicketReservationFee: polkadot_sdk::sp_runtime::Perbill = polkadot_sdk::sp_runtime::Perbill::from_percent(5);
}

pub const PUBLISHER: u64 = 1;
pub const CLIENT: u64 = 2;
pub const POOR_CLIENT: u64 = 3;
pub const PROVIDERS: [u64; 4] = [10, 11, 12, 13];
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

/// Moves to the next block, running the draw as the runtime would.
pub fn next_block() {
    let n = System::block_number() + 1;
    System::set_block_number(n);
    Escrow::on_initialize(n);
    Escrow::on_idle(n, polkadot_sdk::frame_support::weights::Weight::MAX);
}

/// Moves to block `n`, running every block's hooks on the way.
pub fn run_to(n: u64) {
    while System::block_number() < n {
        next_block();
    }
}

/// A manifest as large as its bounds allow: what the draw must not read for every provider.
pub fn full_manifest(price: u64) -> CapabilityManifest<u64> {
    let address: Vec<u8> = b"/ip4/127.0.0.1/tcp/1/".iter().copied().cycle().take(128).collect();
    CapabilityManifest {
        peer_id: vec![b'p'; 64].try_into().unwrap(),
        multiaddrs: BoundedVec::truncate_from(vec![address.try_into().unwrap(); 8]),
        hardware_class: vec![b'h'; 32].try_into().unwrap(),
        ..manifest(price)
    }
}

/// The mock's genesis, a published release and four registered providers, before any test.
pub fn test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    let mut balances = vec![(PUBLISHER, 1_000), (CLIENT, 100_000), (POOR_CLIENT, 50)];
    balances.extend(PROVIDERS.iter().map(|p| (*p, 10_000)));
    pallet_balances::GenesisConfig::<Test> { balances, ..Default::default() }
        .assimilate_storage(&mut storage)
        .unwrap();
    pallet_agora_escrow::GenesisConfig::<Test>::default().assimilate_storage(&mut storage).unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        System::set_block_number(1);
        let info = agora_primitives::ReleaseInfo {
            family: b"smollm2".to_vec().try_into().unwrap(),
            version: b"1".to_vec().try_into().unwrap(),
            sha256: RELEASE,
            size_bytes: 1,
            architecture: b"llama".to_vec().try_into().unwrap(),
            quantization: b"Q4_1".to_vec().try_into().unwrap(),
            license: b"Apache-2.0".to_vec().try_into().unwrap(),
            parent: None,
            metadata_hash: [0; 32],
        };
        Models::publish(RuntimeOrigin::signed(PUBLISHER), info).unwrap();
        for p in PROVIDERS {
            Providers::register(RuntimeOrigin::signed(p), 1_000, manifest(PRICE)).unwrap();
        }
    });
    ext
}

pub fn new_test_ext(test: impl FnOnce()) {
    test_ext().execute_with(|| {
        test();
        Models::do_try_state().expect("model invariants hold");
        Providers::do_try_state().expect("provider invariants hold");
        Escrow::do_try_state().expect("escrow invariants hold");
    });
}

#[cfg(feature = "runtime-benchmarks")]
pub fn bench_ext() -> sp_io::TestExternalities {
    let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
