use crate as pallet_agora_models;
use agora_primitives::{ReleaseId, ReleaseInfo};
use polkadot_sdk::{
    frame_support::{derive_impl, traits::ConstU32},
    frame_system, sp_io, sp_runtime::BuildStorage,
};

type Block = frame_system::mocking::MockBlock<Test>;

polkadot_sdk::frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Models: pallet_agora_models,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

impl pallet_agora_models::Config for Test {
    type MaxReleasesPerFamily = ConstU32<4>;
    type WeightInfo = ();
}

pub const PUBLISHER: u64 = 1;
pub const OTHER: u64 = 2;

pub fn release(family: &str, version: &str, hash_byte: u8, parent: Option<ReleaseId>) -> ReleaseInfo {
    ReleaseInfo {
        family: family.as_bytes().to_vec().try_into().unwrap(),
        version: version.as_bytes().to_vec().try_into().unwrap(),
        sha256: [hash_byte; 32],
        size_bytes: 98_362_432,
        architecture: b"llama".to_vec().try_into().unwrap(),
        quantization: b"Q4_1".to_vec().try_into().unwrap(),
        license: b"Apache-2.0".to_vec().try_into().unwrap(),
        parent,
        metadata_hash: [0xee; 32],
    }
}

/// Runs `test` and then checks the pallet's invariants, as every test here must.
pub fn new_test_ext(test: impl FnOnce()) {
    let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        System::set_block_number(1);
        test();
        Models::do_try_state().expect("invariants hold");
    });
}

#[cfg(feature = "runtime-benchmarks")]
pub fn bench_ext() -> sp_io::TestExternalities {
    let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
