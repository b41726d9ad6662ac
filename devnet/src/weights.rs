//! The settle path's weights as the runtime is configured, and what fits in one block.

use agora_runtime::Runtime;
use polkadot_sdk::frame_support::{dispatch::DispatchClass, traits::Get, weights::Weight};
use polkadot_sdk::frame_system;

use pallet_agora_escrow::WeightInfo as _;
use pallet_agora_verifier::WeightInfo as _;

type EscrowWeights = <Runtime as pallet_agora_escrow::Config>::WeightInfo;
type VerifierWeights = <Runtime as pallet_agora_verifier::Config>::WeightInfo;

pub struct SettlePath {
    pub k: u32,
    pub steps: Vec<(String, Weight)>,
    /// Whole requests (create, draw, k commits, k reveals, settle) that fit in one block's
    /// normal-class budget, by ref time and by proof size.
    pub requests_per_block: u64,
    /// `settle` calls alone that fit in one block.
    pub settles_per_block: u64,
}

fn fits(budget: Weight, per_item: Weight) -> u64 {
    let by_time = budget.ref_time() / per_item.ref_time().max(1);
    let by_proof = budget.proof_size() / per_item.proof_size().max(1);
    by_time.min(by_proof)
}

pub fn settle_path(k: u32) -> SettlePath {
    let providers = <Runtime as pallet_agora_providers::Config>::MaxProvidersPerRelease::get();
    let block = <Runtime as frame_system::Config>::BlockWeights::get();
    let normal = block.get(DispatchClass::Normal);
    let base = normal.base_extrinsic;
    let budget = normal.max_total.unwrap_or(block.max_block);
    let steps = vec![
        ("Escrow::create_request".to_string(), EscrowWeights::create_request(providers) + base),
        ("Escrow draw (on_initialize)".to_string(), EscrowWeights::draw(providers)),
        (format!("Verifier::commit × {k}"), (VerifierWeights::commit() + base).saturating_mul(k.into())),
        (format!("Verifier::reveal × {k}"), (VerifierWeights::reveal() + base).saturating_mul(k.into())),
        ("Verifier::settle".to_string(), VerifierWeights::settle(k) + base),
    ];
    let total = steps.iter().fold(Weight::zero(), |acc, (_, w)| acc + *w);
    SettlePath {
        k,
        requests_per_block: fits(budget, total),
        settles_per_block: fits(budget, VerifierWeights::settle(k) + base),
        steps,
    }
}

/// A Markdown table of the settle path for `k` = 1, 3 and 8.
pub fn table() -> String {
    let mut out = String::from("| k | step | ref time (µs) | proof (bytes) |\n|---|---|---|---|\n");
    let mut fits_rows = String::from("\n| k | settles per block | whole requests per block |\n|---|---|---|\n");
    for k in [1, 3, agora_primitives::MAX_REDUNDANCY] {
        let path = settle_path(k);
        for (step, w) in &path.steps {
            out.push_str(&format!("| {k} | {step} | {:.1} | {} |\n", w.ref_time() as f64 / 1e6, w.proof_size()));
        }
        fits_rows.push_str(&format!("| {k} | {} | {} |\n", path.settles_per_block, path.requests_per_block));
    }
    out + &fits_rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_providers_cost_more_and_fit_less() {
        let one = settle_path(1);
        let three = settle_path(3);
        assert!(three.settles_per_block < one.settles_per_block);
        assert!(three.requests_per_block < one.requests_per_block);
        assert!(three.requests_per_block > 0);
    }
}
