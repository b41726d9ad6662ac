//! The settle path's weights as the runtime is configured, and what fits in one block; and the
//! dearer path of a request that goes to verifiers.

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
    let mut steps = vec![
        ("Escrow::create_request".to_string(), EscrowWeights::create_request(providers) + base),
        ("Escrow draw (on_initialize)".to_string(), EscrowWeights::draw(providers)),
        (format!("Verifier::commit × {k}"), (VerifierWeights::commit() + base).saturating_mul(k.into())),
        (format!("Verifier::reveal × {k}"), (VerifierWeights::reveal() + base).saturating_mul(k.into())),
        ("Verifier::settle".to_string(), VerifierWeights::settle(k) + base),
    ];
    if k == 1 {
        // Every k = 1 settlement is followed by its audit draw, in a later block; the audited
        // few pay for drawing verifiers instead (the dispute table).
        steps.push(("Verifier audit draw, unaudited (on_initialize)".to_string(), pallet_agora_verifier::Pallet::<Runtime>::unaudited_draw_weight()));
    }
    let total = steps.iter().fold(Weight::zero(), |acc, (_, w)| acc + *w);
    SettlePath {
        k,
        requests_per_block: fits(budget, total),
        settles_per_block: fits(budget, VerifierWeights::settle(k) + base),
        steps,
    }
}

/// The extra steps of a request that goes to verifiers: a spot check for k = 1 (its
/// `AuditVerifiers`; its audit draw reads the verifier candidates instead of settling), a split
/// vote otherwise (its `DisputeVerifiers`, each judging k results: the settlement that looks
/// for verifiers replaces the majority path's, and their draw follows in a later block). The
/// last verdict resolves the dispute.
pub fn dispute_steps(k: u32) -> Vec<(String, Weight)> {
    let base = <Runtime as frame_system::Config>::BlockWeights::get().get(DispatchClass::Normal).base_extrinsic;
    let verifiers = if k == 1 {
        <Runtime as pallet_agora_verifier::Config>::AuditVerifiers::get()
    } else {
        <Runtime as pallet_agora_verifier::Config>::DisputeVerifiers::get()
    };
    let mut steps = Vec::new();
    if k > 1 {
        steps.push(("Verifier::settle → dispute".to_string(), VerifierWeights::settle_to_dispute(k) + base));
    }
    steps.push(("Verifier draw of verifiers (on_initialize)".to_string(), pallet_agora_verifier::Pallet::<Runtime>::verifier_draw_weight(k)));
    steps.push((format!("Verifier::submit_verdict × {verifiers}"), (VerifierWeights::submit_verdict(verifiers, k) + base).saturating_mul(verifiers.into())));
    steps
}

/// One k-provider request's share of the ticket path at its bounds, and how many whole
/// requests (bought, drawn, settled from signed outcomes) fit in a block: a purchase of
/// `MaxTicketsPerPurchase` tickets from a release listing `MaxProvidersPerRelease` providers,
/// that purchase's draw (each ticket drawing the most providers), and a `settle_tickets` of
/// `MaxBundlesPerSettle` bundles of k outcomes, crediting all of the release's providers and
/// one buyer (a dApp's or a relayer's batch).
pub fn ticket_path(k: u32) -> (Vec<(String, Weight)>, u64) {
    let n = <Runtime as pallet_agora_escrow::Config>::MaxTicketsPerPurchase::get();
    let bundles = <Runtime as pallet_agora_verifier::Config>::MaxBundlesPerSettle::get();
    let providers = <Runtime as pallet_agora_providers::Config>::MaxProvidersPerRelease::get();
    let block = <Runtime as frame_system::Config>::BlockWeights::get();
    let normal = block.get(DispatchClass::Normal);
    let budget = normal.max_total.unwrap_or(block.max_block);
    let share = |w: Weight, of: u32| Weight::from_parts(w.ref_time() / u64::from(of), w.proof_size() / u64::from(of));
    // Charged as any call is before dispatch: every bundle's ticket may be written back.
    let settled = pallet_agora_verifier::types::TicketsSettled {
        bundles,
        extra_outcomes: bundles * k.saturating_sub(2),
        dissents: 0,
        held: bundles,
        accounts: providers + 1,
        // Each provider offers one release.
        relisted: 0,
    };
    let settle = pallet_agora_verifier::Pallet::<Runtime>::tickets_weight(settled) + normal.base_extrinsic;
    let steps = vec![
        (format!("Escrow::buy_tickets({n}) ÷ {n}"), share(EscrowWeights::buy_tickets(n, providers) + normal.base_extrinsic, n)),
        (format!("Escrow draw of {n} tickets (on_initialize) ÷ {n}"), share(EscrowWeights::draw_tickets(n, providers), n)),
        (format!("Verifier::settle_tickets({bundles} of k = {k}) ÷ {bundles}"), share(settle, bundles)),
    ];
    let total = steps.iter().fold(Weight::zero(), |acc, (_, w)| acc + *w);
    (steps, fits(budget, total))
}

fn rows(out: &mut String, k: u32, steps: &[(String, Weight)]) {
    for (step, w) in steps {
        out.push_str(&format!("| {k} | {step} | {:.1} | {} |\n", w.ref_time() as f64 / 1e6, w.proof_size()));
    }
}

/// Markdown tables of the settle path and of the dispute path for `k` = 1, 3 and 8.
pub fn table() -> String {
    let ks = [1, 3, agora_primitives::MAX_REDUNDANCY];
    let mut out = String::from("| k | step | ref time (µs) | proof (bytes) |\n|---|---|---|---|\n");
    let mut fits_rows = String::from("\n| k | settles per block | whole requests per block |\n|---|---|---|\n");
    for k in ks {
        let path = settle_path(k);
        rows(&mut out, k, &path.steps);
        fits_rows.push_str(&format!("| {k} | {} | {} |\n", path.settles_per_block, path.requests_per_block));
    }
    let mut disputes = String::from("\n| k | dispute step | ref time (µs) | proof (bytes) |\n|---|---|---|---|\n");
    for k in ks {
        rows(&mut disputes, k, &dispute_steps(k));
    }
    let (ticket_steps, tickets) = ticket_path(3);
    let mut ticket_rows = String::from("\n| ticket step, k = 3 | ref time (µs) | proof (bytes) |\n|---|---|---|\n");
    for (step, w) in &ticket_steps {
        ticket_rows.push_str(&format!("| {step} | {:.1} | {} |\n", w.ref_time() as f64 / 1e6, w.proof_size()));
    }
    ticket_rows.push_str(&format!("| whole k = 3 requests per block (bought, drawn, settled) | {tickets} | |\n"));
    out + &fits_rows + &disputes + &ticket_rows
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
        let (settle, dispute) = (&three.steps[4].1, &dispute_steps(3)[0].1);
        assert!(dispute.proof_size() > settle.proof_size(), "looking for verifiers reads every candidate's record");
        let (draw, create) = (&three.steps[1].1, &three.steps[0].1);
        assert!(draw.proof_size() < 64 * 1024 && create.proof_size() < 16 * 1024, "the draw reads listings, not every record");
    }

    /// Issue 13's target: a block takes a thousand whole k = 3 requests on the ticket path.
    #[test]
    fn a_block_takes_a_thousand_whole_k3_requests_on_the_ticket_path() {
        let (steps, per_block) = ticket_path(3);
        assert!(per_block >= 1_000, "{per_block} whole k = 3 requests per block: {steps:?}");
        let (steps_of_8, per_block_of_8) = ticket_path(8);
        assert!(steps_of_8[2].1.ref_time() > steps[2].1.ref_time(), "each outcome is paid for");
        assert!(per_block_of_8 <= per_block);
    }

    #[test]
    fn the_readme_shows_the_weights_of_these_runtime_constants() {
        let readme = include_str!("../../docs/BENCHMARKS.md");
        let table = table();
        assert!(readme.contains(&table), "docs/BENCHMARKS.md's weights tables are stale; `agora-chain weights` prints:\n{table}");
    }
}
