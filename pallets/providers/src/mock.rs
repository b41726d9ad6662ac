use crate as pallet_agora_providers;
use agora_primitives::{CapabilityManifest, Offer, ReleaseId};
use polkadot_sdk::{
    frame_support::{derive_impl, parameter_types, traits::{ConstU32, ConstU64}},
    frame_system, pallet_balances, sp_io,
    sp_runtime::{BoundedVec, BuildStorage},
};

type Block = frame_system::mocking::MockBlock<Test>;

polkadot_sdk::frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Models: pallet_agora_models,
        Providers: pallet_agora_providers,
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
pub const MIN_STAKE: u64 = 100;

parameter_types! {
    pub const Treasury: u64 = TREASURY;
    pub const MinStake: u64 = MIN_STAKE;
}

impl pallet_agora_providers::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MinStake = MinStake;
    type UnbondingDelay = ConstU64<10>;
    type MaxProvidersPerRelease = ConstU32<3>;
    type Treasury = Treasury;
    type WeightInfo = ();
}

pub const PUBLISHER: u64 = 1;
pub const ALICE: u64 = 10;
pub const BOB: u64 = 11;
pub const CHARLIE: u64 = 12;
pub const DAVE: u64 = 13;
pub const POOR: u64 = 14;
pub const RELEASE: ReleaseId = [1; 32];
pub const OTHER_RELEASE: ReleaseId = [2; 32];
pub const PROFILE: [u8; 32] = [7; 32];

pub fn manifest(releases: &[ReleaseId], price_in: u64, price_out: u64) -> CapabilityManifest<u64> {
    CapabilityManifest {
        peer_id: b"12D3KooW-peer".to_vec().try_into().unwrap(),
        multiaddrs: BoundedVec::truncate_from(vec![b"/ip4/127.0.0.1/tcp/4001".to_vec().try_into().unwrap()]),
        offers: BoundedVec::truncate_from(
            releases
                .iter()
                .map(|r| Offer { release: *r, runtime_profile: PROFILE, milli_tokens_per_sec: 60_000 })
                .collect(),
        ),
        price_per_1k_input: price_in,
        price_per_1k_output: price_out,
        max_context: 2048,
        max_concurrent_jobs: 2,
        hardware_class: b"cpu-avx2".to_vec().try_into().unwrap(),
        settlement_key: [3; 32],
    }
}

fn publish(hash: ReleaseId, version: &str) {
    let info = agora_primitives::ReleaseInfo {
        family: b"smollm2".to_vec().try_into().unwrap(),
        version: version.as_bytes().to_vec().try_into().unwrap(),
        sha256: hash,
        size_bytes: 1,
        architecture: b"llama".to_vec().try_into().unwrap(),
        quantization: b"Q4_1".to_vec().try_into().unwrap(),
        license: b"Apache-2.0".to_vec().try_into().unwrap(),
        parent: None,
        metadata_hash: [0; 32],
    };
    Models::publish(RuntimeOrigin::signed(PUBLISHER), info).unwrap();
}

/// Two releases published; the test then runs and the invariants of both pallets are checked.
pub fn new_test_ext(test: impl FnOnce()) {
    let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    pallet_balances::GenesisConfig::<Test> {
        balances: vec![(PUBLISHER, 1_000), (ALICE, 10_000), (BOB, 10_000), (CHARLIE, 10_000), (DAVE, 10_000), (POOR, 150)],
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        System::set_block_number(1);
        publish(RELEASE, "1.0");
        publish(OTHER_RELEASE, "2.0");
        test();
        Models::do_try_state().expect("model invariants hold");
        Providers::do_try_state().expect("provider invariants hold");
    });
}

#[cfg(feature = "runtime-benchmarks")]
pub fn bench_ext() -> sp_io::TestExternalities {
    let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
