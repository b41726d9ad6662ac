//! The pallets whose benchmarks `frame-omni-bencher` runs against this runtime.

polkadot_sdk::frame_benchmarking::define_benchmarks!(
    [pallet_agora_models, crate::Models]
    [pallet_agora_providers, crate::Providers]
    [pallet_agora_escrow, crate::Escrow]
    [pallet_agora_verifier, crate::Verifier]
);
