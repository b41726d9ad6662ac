use crate::{mock::*, Commitments, Disputes, Error, Event, Receipts, Resolutions, Reveals};
use agora_primitives::{DisputeKind, JobOutcome, Outcome, OutcomeVerdict, RequestStatus};
use agora_verifier::commitment::commitment;
use polkadot_sdk::sp_runtime::Perbill;
use pallet_agora_escrow::Requests;
use polkadot_sdk::frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
};

const SALT: [u8; 32] = [42; 32];

pub(crate) fn good() -> Outcome {
    Outcome { output_hash: [0xaa; 32], token_count: 500 }
}

pub(crate) fn bad() -> Outcome {
    Outcome { output_hash: [0xbb; 32], token_count: 500 }
}

/// Creates a request with redundancy `k` at the providers' price and runs blocks until it is
/// drawn (the next one, or the one after with a lagging randomness source).
pub(crate) fn assigned_request(k: u32) -> (u64, Vec<u64>) {
    let id = pallet_agora_escrow::NextRequestId::<Test>::get();
    assert_ok!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(k, PRICE)));
    for _ in 0..=RandomnessLag::get() {
        next_block();
    }
    let request = Requests::<Test>::get(id).unwrap();
    assert_eq!(request.status, RequestStatus::Assigned);
    (id, request.providers.to_vec())
}

pub(crate) fn commit(who: u64, id: u64, outcome: Outcome) -> polkadot_sdk::sp_runtime::DispatchResult {
    Verifier::commit(RuntimeOrigin::signed(who), id, commitment(id, &who, &outcome, &SALT))
}

pub(crate) fn reveal(who: u64, id: u64, outcome: Outcome) -> polkadot_sdk::sp_runtime::DispatchResult {
    Verifier::reveal(RuntimeOrigin::signed(who), id, outcome, SALT)
}

fn peer(bytes: &[u8]) -> crate::PeerIdOf {
    bytes.to_vec().try_into().unwrap()
}

fn stake(who: u64) -> u64 {
    pallet_agora_providers::Providers::<Test>::get(who).unwrap().stake
}

fn score(who: u64) -> u32 {
    pallet_agora_providers::Providers::<Test>::get(who).unwrap().reputation.score_ppm
}

fn escrow_held() -> u64 {
    Balances::balance_on_hold(&pallet_agora_escrow::HoldReason::RequestEscrow.into(), &CLIENT)
}

#[test]
fn two_agree_one_lies_pays_slashes_refunds_and_keeps_a_receipt() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        // Escrow: 3 × (2000 tokens × 10 / 1000) = 60.
        assert_eq!(escrow_held(), 60);
        let before: Vec<u64> = p.iter().map(|a| Balances::balance(a)).collect();
        let client_before = Balances::balance(&CLIENT);
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(commit(p[1], id, good()));
        assert_ok!(commit(p[2], id, bad()));
        for (who, o) in [(p[0], good()), (p[1], good()), (p[2], bad())] {
            assert_ok!(reveal(who, id, o));
        }
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(PUBLISHER), id));

        // Each winner: ceil((1000 × 10 + 500 × 10) / 1000) = 15.
        assert_eq!(Balances::balance(&p[0]), before[0] + 15);
        assert_eq!(Balances::balance(&p[1]), before[1] + 15);
        assert_eq!(Balances::balance(&p[2]), before[2]);
        assert_eq!(stake(p[2]), 900);
        assert_eq!(Balances::balance(&TREASURY), 1_000 + 100);
        assert_eq!(escrow_held(), 0);
        assert_eq!(Balances::balance(&CLIENT), client_before + 30);
        assert_eq!((score(p[0]), score(p[1]), score(p[2])), (525_000, 525_000, 375_000));
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Settled);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.winning, Some(good()));
        assert_eq!(receipt.paid.to_vec(), vec![(p[0], 15), (p[1], 15)]);
        assert_eq!(receipt.slashed.to_vec(), vec![(p[2], 100, JobOutcome::Wrong)]);
        assert_eq!(receipt.refunded, 30);
        assert_eq!(Commitments::<Test>::iter_prefix(id).count(), 0);
        assert_eq!(Reveals::<Test>::iter_prefix(id).count(), 0);
        assert!(p.iter().all(|a| pallet_agora_providers::Providers::<Test>::get(a).unwrap().open_jobs == 0));
        System::assert_last_event(Event::Settled { request: id, winning: good(), paid: 30, refunded: 30 }.into());
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(PUBLISHER), id), Error::<Test>::NotActive);
    });
}

/// Review finding (issue 13): every write of a provider record rewrites one listing per offer,
/// and the benchmarks measure one. Settling the results of providers with four offers each
/// charges the three more listings each of their writes rewrites (two writes each: the result,
/// and the job released), within what was charged before dispatch.
#[test]
fn a_settlement_pays_for_every_listing_its_providers_offers_rewrite() {
    new_test_ext(|| {
        offer_more_releases(3);
        let (id, p) = assigned_request(3);
        commit_and_reveal(id, &p, &[good(), good(), bad()]);
        let call = crate::Call::<Test>::settle { request: id };
        let charged = polkadot_sdk::frame_support::dispatch::GetDispatchInfo::get_dispatch_info(&call).call_weight;
        let used = Verifier::settle(RuntimeOrigin::signed(CLIENT), id).unwrap().actual_weight.unwrap();
        let relisting = Providers::relisting_weight(3 * 3 * 2);
        assert!(relisting.proof_size() > 0 && relisting.ref_time() > 0);
        assert_eq!(used, <() as crate::WeightInfo>::settle(3) + relisting);
        assert!(used.all_lte(charged));
    });
}

#[test]
fn no_show_is_slashed_less_and_majority_still_wins() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(commit(p[1], id, good()));
        // p[2] acknowledged the client's `Use` and never commits: reveals open only after the
        // commit deadline.
        assert_ok!(Verifier::prove_ack(RuntimeOrigin::signed(CLIENT), id, p[2], peer(b"peer"), ack(p[2], id, b"peer")));
        assert_noop!(reveal(p[0], id, good()), Error::<Test>::RevealNotOpen);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.commit_deadline + 1);
        assert_noop!(commit(p[2], id, good()), Error::<Test>::CommitClosed);
        assert_ok!(reveal(p[0], id, good()));
        assert_ok!(reveal(p[1], id, good()));
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::TooEarly);
        run_to(r.reveal_deadline + 1);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(stake(p[2]), 980);
        assert_eq!(score(p[2]), 450_000);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.slashed.to_vec(), vec![(p[2], 20, JobOutcome::NoShow)]);
        assert_eq!(receipt.paid.len(), 2);
    });
}

/// Commits and reveals `outcomes[i]` for provider `p[i]`.
pub(crate) fn commit_and_reveal(id: u64, p: &[u64], outcomes: &[Outcome]) {
    for (who, o) in p.iter().zip(outcomes) {
        assert_ok!(commit(*who, id, *o));
    }
    for (who, o) in p.iter().zip(outcomes) {
        assert_ok!(reveal(*who, id, *o));
    }
}

fn third() -> Outcome {
    Outcome { output_hash: [0xcc; 32], token_count: 3 }
}

fn verdicts(judged: &[(Outcome, bool)]) -> crate::VerdictsOf {
    judged.iter().map(|&(outcome, accepted)| OutcomeVerdict { outcome, accepted }).collect::<Vec<_>>().try_into().unwrap()
}

pub(crate) fn verdict(who: u64, id: u64, judged: &[(Outcome, bool)]) -> polkadot_sdk::sp_runtime::DispatchResult {
    Verifier::submit_verdict(RuntimeOrigin::signed(who), id, verdicts(judged)).map(|_| ()).map_err(|e| e.error)
}

fn bond_held(who: u64) -> u64 {
    Balances::balance_on_hold(&crate::HoldReason::ChallengeBond.into(), &who)
}

#[test]
fn a_split_vote_without_verifiers_is_refunded_and_blames_nobody() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        commit_and_reveal(id, &p, &[good(), bad(), third()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Refunded);
        assert_eq!(escrow_held(), 0);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!((receipt.winning, receipt.refunded, receipt.paid.len(), receipt.slashed.len()), (None, 60, 0, 0));
        assert!(p.iter().all(|a| stake(*a) == 1_000 && score(*a) == 500_000));
        System::assert_has_event(Event::Disputed { request: id }.into());
    });
}

#[test]
fn a_split_vote_goes_to_verifiers_whose_verdicts_settle_it() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        opt_in_verifiers(3);
        commit_and_reveal(id, &p, &[good(), bad(), third()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Disputed);
        assert_eq!(escrow_held(), 60);
        next_block();
        let dispute = Disputes::<Test>::get(id).unwrap();
        let mut drawn = dispute.verifiers.to_vec();
        drawn.sort();
        assert_eq!(drawn, VERIFIERS.to_vec());
        let mut outcomes = vec![good(), bad(), third()];
        outcomes.sort();
        assert_eq!(dispute.outcomes.to_vec(), outcomes);
        // The dispute keeps the reveals it judges; it cannot be settled or refunded meanwhile.
        assert_eq!(Reveals::<Test>::iter_prefix(id).count(), 3);
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::NotActive);
        run_to(System::block_number() + 30);
        assert_noop!(Escrow::refund_expired(RuntimeOrigin::signed(CLIENT), id), pallet_agora_escrow::Error::<Test>::NotOpen);

        // Run the clock back into the verdict window (the refund attempt above only needed time).
        System::set_block_number(dispute.opened_at);
        let judged = [(good(), true), (bad(), false), (third(), false)];
        // Bad verdicts: from a provider not drawn, the request's own provider, one missing a
        // result, one judging a result twice, one judging a result not in dispute.
        assert_noop!(verdict(PROVIDERS[3], id, &judged), Error::<Test>::NotSelectedVerifier);
        assert_noop!(verdict(p[0], id, &judged), Error::<Test>::NotSelectedVerifier);
        assert_noop!(verdict(20, id, &judged[..2]), Error::<Test>::VerdictMismatch);
        assert_noop!(verdict(20, id, &[(good(), true), (good(), true), (bad(), false)]), Error::<Test>::VerdictMismatch);
        let stranger = Outcome { output_hash: [0xdd; 32], token_count: 1 };
        assert_noop!(verdict(20, id, &[(good(), true), (bad(), false), (stranger, false)]), Error::<Test>::VerdictMismatch);
        assert_noop!(verdict(20, 99, &judged), Error::<Test>::NoDispute);

        assert_ok!(verdict(20, id, &judged));
        assert_noop!(verdict(20, id, &judged), Error::<Test>::AlreadyVoted);
        // 21 dissents on `bad`; 22 stays silent.
        assert_ok!(verdict(21, id, &[(good(), true), (bad(), true), (third(), false)]));
        assert_noop!(Verifier::resolve_dispute(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::TooEarly);
        run_to(dispute.verdict_deadline + 1);
        assert_noop!(verdict(22, id, &judged), Error::<Test>::VerdictClosed);
        let (treasury, client) = (Balances::balance(&TREASURY), Balances::balance(&CLIENT));
        let (before_20, before_21) = (Balances::balance(&20), Balances::balance(&21));
        assert_ok!(Verifier::resolve_dispute(RuntimeOrigin::signed(PUBLISHER), id));

        // `good` accepted (2 to 0), `third` rejected (0 to 2), `bad` tied 1 to 1: accepted.
        let resolution = Resolutions::<Test>::get(id).unwrap();
        let decided: Vec<(Outcome, bool)> = resolution.decided.iter().map(|d| (d.outcome, d.accepted)).collect();
        let mut expected = vec![(good(), true), (bad(), true), (third(), false)];
        expected.sort();
        assert_eq!(decided, expected);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.paid.to_vec(), vec![(p[0], 15), (p[1], 15)]);
        assert_eq!(receipt.slashed.to_vec(), vec![(p[2], 100, JobOutcome::Wrong)]);
        assert_eq!(receipt.refunded, 30);
        assert_eq!(Balances::balance(&CLIENT), client + 30);
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Settled);
        // A tie gives the provider the benefit of the doubt, so 21 agreed with every decision
        // and is paid; 20 rejected `bad` and is not.
        let mut paid = resolution.verifiers_paid.to_vec();
        paid.sort();
        assert_eq!(paid, vec![(20, 0), (21, 7)]);
        assert_eq!((Balances::balance(&20), Balances::balance(&21)), (before_20, before_21 + 7));
        assert_eq!(resolution.silent.to_vec(), vec![22]);
        assert_eq!(stake(22), 980);
        assert_eq!(Balances::balance(&TREASURY), treasury + 100 + 20 - 7);
        assert!(Disputes::<Test>::get(id).is_none());
        assert_eq!(crate::Verdicts::<Test>::iter_prefix(id).count(), 0);
        assert_eq!(Reveals::<Test>::iter_prefix(id).count(), 0);
        assert!(p.iter().all(|a| pallet_agora_providers::Providers::<Test>::get(a).unwrap().open_jobs == 0));
        assert_noop!(Verifier::resolve_dispute(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::NoDispute);
    });
}

#[test]
fn the_last_verdict_resolves_and_a_dissenting_verifier_is_not_paid() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        opt_in_verifiers(3);
        commit_and_reveal(id, &p, &[good(), bad(), third()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        let honest = [(good(), true), (bad(), false), (third(), false)];
        assert_ok!(verdict(20, id, &honest));
        assert_ok!(verdict(21, id, &honest));
        assert_ok!(verdict(22, id, &[(good(), false), (bad(), true), (third(), false)]));
        let mut paid = Resolutions::<Test>::get(id).unwrap().verifiers_paid.to_vec();
        paid.sort();
        assert_eq!(paid, vec![(20, 7), (21, 7), (22, 0)]);
        assert!(score(22) < 500_000 && score(20) > 500_000);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.winning, Some(good()));
        assert_eq!(receipt.paid.to_vec(), vec![(p[0], 15)]);
        assert_eq!(receipt.slashed.len(), 2);
    });
}

#[test]
fn a_false_challenge_loses_its_bond() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        commit_and_reveal(id, &p, &[good(), good(), bad()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        // Nobody to judge: the challenge is refused and nothing is held.
        assert_noop!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::NoVerifiers);
        opt_in_verifiers(3);
        assert_noop!(Verifier::challenge(RuntimeOrigin::signed(PUBLISHER), id), Error::<Test>::NotClient);
        assert_noop!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), 99), Error::<Test>::UnknownRequest);
        let client = Balances::balance(&CLIENT);
        assert_ok!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(bond_held(CLIENT), 500);
        assert_noop!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::NotChallengeable);
        next_block();
        let treasury = Balances::balance(&TREASURY);
        for v in VERIFIERS {
            assert_ok!(verdict(v, id, &[(good(), true)]));
        }
        assert_eq!(bond_held(CLIENT), 0);
        assert_eq!(Balances::balance(&CLIENT), client - 500);
        // The bond pays the three verifiers' fees through the treasury; the rest stays there.
        assert_eq!(Balances::balance(&TREASURY), treasury + 500 - 21);
        assert_eq!((stake(p[0]), stake(p[1])), (1_000, 1_000));
        let resolution = Resolutions::<Test>::get(id).unwrap();
        assert!(resolution.decided.iter().all(|d| d.accepted));
        // One dispute per request.
        assert_noop!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::NotChallengeable);
    });
}

#[test]
fn an_upheld_challenge_slashes_the_winners_and_makes_the_client_whole() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        commit_and_reveal(id, &p, &[bad(), bad(), good()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        opt_in_verifiers(3);
        let client = Balances::balance(&CLIENT);
        assert_ok!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        for v in VERIFIERS {
            assert_ok!(verdict(v, id, &[(bad(), false)]));
        }
        assert_eq!(bond_held(CLIENT), 0);
        // Back: the bond and the 15 paid to each of the two colluding winners.
        assert_eq!(Balances::balance(&CLIENT), client + 30);
        assert_eq!((stake(p[0]), stake(p[1])), (900, 900));
        assert!(score(p[0]) < 500_000);
    });
}

#[test]
fn a_challenge_must_come_within_its_window() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        commit_and_reveal(id, &p, &[good(), good()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        opt_in_verifiers(1);
        run_to(System::block_number() + 7);
        assert_noop!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::NotChallengeable);
        // A refunded request has no result to challenge.
        let (id, _) = assigned_request(2);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 1);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_noop!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::NotChallengeable);
    });
}

#[test]
fn an_audited_single_provider_cheat_is_slashed_and_an_honest_one_paid() {
    new_test_ext(|| {
        AuditFloor::set(Perbill::one());
        let (cheat, p) = assigned_request(1);
        let (honest, q) = assigned_request(1);
        opt_in_verifiers(1);
        commit_and_reveal(cheat, &p, &[bad()]);
        commit_and_reveal(honest, &q, &[good()]);
        let client = Balances::balance(&CLIENT);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(p[0]), cheat));
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(q[0]), honest));
        next_block();
        for id in [cheat, honest] {
            let dispute = Disputes::<Test>::get(id).unwrap();
            assert_eq!((dispute.kind, dispute.verifiers.to_vec()), (DisputeKind::Audit, vec![20]));
            assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Disputed);
        }
        assert_ok!(verdict(20, cheat, &[(bad(), false)]));
        assert_ok!(verdict(20, honest, &[(good(), true)]));
        let receipt = Receipts::<Test>::get(cheat).unwrap();
        assert_eq!((receipt.winning, receipt.refunded), (None, 20));
        assert_eq!(receipt.slashed.to_vec(), vec![(p[0], 100, JobOutcome::Wrong)]);
        let receipt = Receipts::<Test>::get(honest).unwrap();
        assert_eq!((receipt.winning, receipt.paid.to_vec()), (Some(good()), vec![(q[0], 15)]));
        assert_eq!(Balances::balance(&CLIENT), client + 20 + 5);
        // The verifier's two fees (its stake of 1,000 is held).
        assert_eq!(Balances::balance(&20), 9_000 + 14);
    });
}

#[test]
fn an_audit_nobody_judges_stands_and_the_silent_verifier_pays() {
    new_test_ext(|| {
        AuditFloor::set(Perbill::one());
        let (id, p) = assigned_request(1);
        opt_in_verifiers(1);
        commit_and_reveal(id, &p, &[good()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        let deadline = Disputes::<Test>::get(id).unwrap().verdict_deadline;
        run_to(deadline + 1);
        assert_ok!(Verifier::resolve_dispute(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Receipts::<Test>::get(id).unwrap().paid.to_vec(), vec![(p[0], 15)]);
        assert_eq!(Resolutions::<Test>::get(id).unwrap().silent.to_vec(), vec![20]);
        assert_eq!(stake(20), 980);
    });
}

#[test]
fn the_audit_rate_follows_the_floor() {
    new_test_ext(|| {
        AuditFloor::set(Perbill::from_percent(25));
        opt_in_verifiers(3);
        let mut audited = 0;
        for _ in 0..120 {
            let (id, p) = assigned_request(1);
            commit_and_reveal(id, &p, &[good()]);
            assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
            next_block();
            if let Some(dispute) = Disputes::<Test>::get(id) {
                audited += 1;
                let v = dispute.verifiers[0];
                assert_ok!(verdict(v, id, &[(good(), true)]));
            }
        }
        // 25 % of 120 is 30; a binomial spread of ±4.7 makes 15..=45 a 3-sigma band.
        assert!((15..=45).contains(&audited), "{audited} of 120 audited");
    });
}

#[test]
fn verifiers_opt_in_and_out() {
    new_test_ext(|| {
        assert_noop!(Verifier::opt_in_verifier(RuntimeOrigin::signed(CLIENT)), Error::<Test>::NotAProvider);
        assert_ok!(Verifier::opt_in_verifier(RuntimeOrigin::signed(10)));
        assert_noop!(Verifier::opt_in_verifier(RuntimeOrigin::signed(10)), Error::<Test>::AlreadyVerifier);
        assert_ok!(Verifier::opt_out_verifier(RuntimeOrigin::signed(10)));
        assert_noop!(Verifier::opt_out_verifier(RuntimeOrigin::signed(10)), Error::<Test>::NotVerifier);
        System::assert_last_event(Event::VerifierOptedOut { who: 10 }.into());
    });
}

/// Issue 13, hole 1: a client that never sends its prompt (or says it did) used to get every
/// drawn provider slashed as a no-show. Without an acknowledgement or a commitment nobody can
/// tell who failed: nobody is slashed, reputations stay, and each provider is paid the
/// reservation fee from the client's escrow.
#[test]
fn a_withheld_use_slashes_nobody_and_pays_the_reservation_fee() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 1);
        let client_before = Balances::balance(&CLIENT);
        let before: Vec<u64> = p.iter().map(|a| Balances::balance(a)).collect();
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(p[0]), id));
        // Full pay at price 10 for 1,000 + 1,000 tokens is 20; the reservation share, 10 %, 2.
        assert_eq!(Balances::balance(&CLIENT), client_before + 40 - 4);
        assert_eq!(p.iter().map(|a| Balances::balance(a)).collect::<Vec<_>>(), vec![before[0] + 2, before[1] + 2]);
        assert!(p.iter().all(|a| stake(*a) == 1_000 && score(*a) == 500_000));
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Refunded);
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.winning, None);
        assert!(receipt.slashed.is_empty());
        assert_eq!(receipt.reserved.to_vec(), vec![(p[0], 2), (p[1], 2)]);
        assert!(p.iter().all(|a| pallet_agora_providers::Providers::<Test>::get(a).unwrap().open_jobs == 0));
        System::assert_last_event(Event::Abandoned { request: id, refunded: 36 }.into());
    });
}

#[test]
fn an_acknowledgement_is_proven_once_by_the_right_signer_for_the_right_use_until_the_reveal_deadline() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        let prove = |provider: u64, signature| Verifier::prove_ack(RuntimeOrigin::signed(CLIENT), id, provider, peer(b"peer"), signature);
        // Another signer, another peer, another request: none is this provider's acknowledgement.
        assert_noop!(prove(p[0], ack(p[1], id, b"peer")), Error::<Test>::BadAcknowledgement);
        assert_noop!(prove(p[0], ack(p[0], id, b"other")), Error::<Test>::BadAcknowledgement);
        // Signed for another chain (a testnet with the same keys and request ids): not this one's.
        assert_noop!(prove(p[0], ack_on([9; 32], p[0], id, b"peer")), Error::<Test>::BadAcknowledgement);
        assert_noop!(prove(PROVIDERS[3], ack(PROVIDERS[3], id, b"peer")), Error::<Test>::NotAssigned);
        assert_noop!(
            Verifier::prove_ack(RuntimeOrigin::signed(CLIENT), id + 1, p[0], peer(b"peer"), ack(p[0], id, b"peer")),
            Error::<Test>::UnknownRequest
        );
        assert_ok!(prove(p[0], ack(p[0], id, b"peer")));
        System::assert_last_event(Event::Acknowledged { request: id, provider: p[0] }.into());
        assert_noop!(prove(p[0], ack(p[0], id, b"peer")), Error::<Test>::AlreadyAcknowledged);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 1);
        assert_noop!(prove(p[1], ack(p[1], id, b"peer")), Error::<Test>::AckClosed);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        // The acknowledged provider is a no-show; the other may never have had the prompt.
        let receipt = Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.slashed.to_vec(), vec![(p[0], 20, JobOutcome::NoShow)]);
        assert_eq!(receipt.reserved.to_vec(), vec![(p[1], 2)]);
        assert_eq!(crate::Acknowledged::<Test>::iter_prefix(id).count(), 0);
        assert_noop!(prove(p[1], ack(p[1], id, b"peer")), Error::<Test>::NotActive);
    });
}

#[test]
fn single_provider_request_settles_on_its_own_reveal() {
    new_test_ext(|| {
        let (id, p) = assigned_request(1);
        assert_ok!(commit(p[0], id, good()));
        // All (one) commitments are in, so the reveal opens before the deadline.
        assert_ok!(reveal(p[0], id, good()));
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        assert_eq!(Receipts::<Test>::get(id).unwrap().paid.to_vec(), vec![(p[0], 15)]);
    });
}

#[test]
fn commit_rejects_bad_input() {
    new_test_ext(|| {
        assert_noop!(commit(10, 99, good()), Error::<Test>::UnknownRequest);
        assert_ok!(Escrow::create_request(RuntimeOrigin::signed(CLIENT), params(2, PRICE)));
        // Not drawn yet.
        assert_noop!(commit(10, 0, good()), Error::<Test>::NotActive);
        next_block();
        let p = Requests::<Test>::get(0).unwrap().providers.to_vec();
        let outsider = PROVIDERS.iter().copied().find(|a| !p.contains(a)).unwrap();
        assert_noop!(commit(outsider, 0, good()), Error::<Test>::NotAssigned);
        assert_noop!(commit(CLIENT, 0, good()), Error::<Test>::NotAssigned);
        assert_ok!(commit(p[0], 0, good()));
        assert_noop!(commit(p[0], 0, bad()), Error::<Test>::AlreadyCommitted);
    });
}

#[test]
fn reveal_rejects_bad_input() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        assert_ok!(commit(p[0], id, good()));
        assert_noop!(reveal(p[1], id, good()), Error::<Test>::RevealNotOpen);
        let too_long = Outcome { output_hash: [1; 32], token_count: 1001 };
        assert_ok!(Verifier::commit(RuntimeOrigin::signed(p[1]), id, commitment(id, &p[1], &too_long, &SALT)));
        assert_noop!(reveal(p[1], id, too_long), Error::<Test>::TooManyTokens);
        // A reveal that differs from the commitment in any part is refused.
        assert_noop!(reveal(p[0], id, bad()), Error::<Test>::CommitmentMismatch);
        assert_noop!(
            Verifier::reveal(RuntimeOrigin::signed(p[0]), id, good(), [0; 32]),
            Error::<Test>::CommitmentMismatch
        );
        // Copying another provider's commitment does not work: the provider is in the hash.
        assert_noop!(reveal(p[1], id, good()), Error::<Test>::CommitmentMismatch);
        assert_ok!(reveal(p[0], id, good()));
        assert_noop!(reveal(p[0], id, good()), Error::<Test>::AlreadyRevealed);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 1);
        assert_noop!(reveal(p[1], id, too_long), Error::<Test>::RevealClosed);
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(CLIENT), 77), Error::<Test>::UnknownRequest);
    });
}

#[test]
fn reveal_needs_a_commitment() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        assert_ok!(commit(p[0], id, good()));
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.commit_deadline + 1);
        assert_noop!(reveal(p[1], id, good()), Error::<Test>::NotCommitted);
    });
}

#[test]
fn an_expiry_refund_drops_commitments_and_reveals() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(commit(p[1], id, good()));
        assert_ok!(reveal(p[0], id, good()));
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 11);
        assert_ok!(Escrow::refund_expired(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Commitments::<Test>::iter_prefix(id).count(), 0);
        assert_eq!(Reveals::<Test>::iter_prefix(id).count(), 0);
        assert_eq!(escrow_held(), 0);
    });
}

#[test]
fn payment_uses_prices_fixed_at_assignment() {
    new_test_ext(|| {
        let (id, p) = assigned_request(1);
        // Raising the price after the draw changes nothing for this request.
        assert_ok!(Providers::update_manifest(RuntimeOrigin::signed(p[0]), manifest(PRICE * 3)));
        assert_ok!(commit(p[0], id, good()));
        assert_ok!(reveal(p[0], id, good()));
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        assert_eq!(Receipts::<Test>::get(id).unwrap().paid.to_vec(), vec![(p[0], 15)]);
    });
}

/// Hole: the audit bit of a k = 1 request came from the randomness of the settling block, known
/// before the settle transaction was sent, so a cheat could settle in a block that does not audit
/// it. With the dev chain's source, the bit comes two blocks after the settlement.
#[test]
fn settling_a_single_result_does_not_reveal_whether_it_is_audited() {
    new_test_ext(|| {
        AuditFloor::set(Perbill::one());
        RandomnessLag::set(1);
        let (id, p) = assigned_request(1);
        opt_in_verifiers(1);
        commit_and_reveal(id, &p, &[bad()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(p[0]), id));
        System::assert_last_event(Event::AwaitingAudit { request: id }.into());
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::AwaitingAudit);
        assert!(Receipts::<Test>::get(id).is_none() && Disputes::<Test>::get(id).is_none());
        assert_eq!(escrow_held(), 20);
        assert_noop!(Verifier::settle(RuntimeOrigin::signed(p[0]), id), Error::<Test>::NotActive);
        assert_noop!(Escrow::refund_expired(RuntimeOrigin::signed(CLIENT), id), pallet_agora_escrow::Error::<Test>::NotOpen);
        next_block();
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::AwaitingAudit, "this block's seed was known at settlement");
        next_block();
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Disputed);
        assert_eq!(Disputes::<Test>::get(id).unwrap().verifiers.to_vec(), vec![20]);
        assert_ok!(verdict(20, id, &[(bad(), false)]));
        assert_eq!(Receipts::<Test>::get(id).unwrap().slashed.to_vec(), vec![(p[0], 100, JobOutcome::Wrong)]);
    });
}

/// Hole: a challenge drew its verifiers from the randomness of the challenging block, so a
/// challenger could pick a block that draws verifiers it controls.
#[test]
fn a_challenge_draws_its_verifiers_in_a_later_block() {
    new_test_ext(|| {
        RandomnessLag::set(1);
        let (id, p) = assigned_request(2);
        commit_and_reveal(id, &p, &[bad(), bad()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        opt_in_verifiers(3);
        assert_ok!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id));
        let dispute = Disputes::<Test>::get(id).unwrap();
        assert!(dispute.verifiers.is_empty());
        assert!(!System::events().iter().any(|e| matches!(e.event, RuntimeEvent::Verifier(Event::DisputeOpened { .. }))));
        assert_noop!(verdict(20, id, &[(bad(), false)]), Error::<Test>::NotSelectedVerifier);
        assert_noop!(Verifier::resolve_dispute(RuntimeOrigin::signed(CLIENT), id), Error::<Test>::TooEarly);
        next_block();
        assert!(Disputes::<Test>::get(id).unwrap().verifiers.is_empty());
        next_block();
        let drawn = Disputes::<Test>::get(id).unwrap();
        assert_eq!(drawn.verifiers.len(), 3);
        assert_eq!(drawn.verdict_deadline, System::block_number() + 4);
        assert!(System::events().iter().any(|e| matches!(e.event, RuntimeEvent::Verifier(Event::DisputeOpened { .. }))));
        for v in VERIFIERS {
            assert_ok!(verdict(v, id, &[(bad(), false)]));
        }
        assert!(Resolutions::<Test>::get(id).is_some());
    });
}

/// Every verifier left between the dispute's opening and its draw: it resolves with no verdict
/// (the split results are refunded, nobody is blamed for them), and nothing stays held.
#[test]
fn a_dispute_nobody_is_left_to_judge_resolves_without_verdicts() {
    new_test_ext(|| {
        let (id, p) = assigned_request(3);
        opt_in_verifiers(3);
        commit_and_reveal(id, &p, &[good(), bad(), third()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        for v in VERIFIERS {
            assert_ok!(Verifier::opt_out_verifier(RuntimeOrigin::signed(v)));
        }
        next_block();
        assert!(Disputes::<Test>::get(id).is_none());
        assert!(Resolutions::<Test>::get(id).unwrap().decided.is_empty());
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Refunded);
        assert_eq!(escrow_held(), 0);
        assert!(p.iter().all(|a| stake(*a) == 1_000));
        assert!(crate::PendingDraws::<Test>::get().is_empty());
    });
}

/// Hole: the stake a late challenge would take was already withdrawn. A provider unbonds while
/// its job is open; the job settles late, so its unbonding delay ends inside the challenge
/// window: it must not withdraw until the window has passed.
#[test]
fn a_paid_stake_stays_held_through_the_challenge_window() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        assert_ok!(Providers::unbond(RuntimeOrigin::signed(p[0])));
        let unlocks_at = System::block_number() + 10;
        commit_and_reveal(id, &p, &[good(), good()]);
        let r = Requests::<Test>::get(id).unwrap();
        run_to(r.reveal_deadline + 1);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        let challengeable_until = System::block_number() + 6;
        assert!(challengeable_until > unlocks_at, "the fixture must put the unlock inside the window");
        run_to(unlocks_at);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(p[0])), pallet_agora_providers::Error::<Test>::StillSlashable);
        run_to(challengeable_until);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(p[0])), pallet_agora_providers::Error::<Test>::StillSlashable);
        next_block();
        assert_ok!(Providers::withdraw(RuntimeOrigin::signed(p[0])));
        assert!(pallet_agora_providers::Exposures::<Test>::get(p[0]) == Default::default());
    });
}

/// Hole: a challenge did not hold the winners' stake, so a winner could withdraw before the
/// verdicts that slash it were counted, and the client was not made whole.
#[test]
fn a_challenged_winner_cannot_withdraw_until_the_challenge_is_resolved() {
    new_test_ext(|| {
        let (id, p) = assigned_request(2);
        commit_and_reveal(id, &p, &[bad(), bad()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_ok!(Providers::unbond(RuntimeOrigin::signed(p[0])));
        opt_in_verifiers(3);
        run_to(System::block_number() + 6);
        assert_ok!(Verifier::challenge(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        let deadline = Disputes::<Test>::get(id).unwrap().verdict_deadline;
        assert_ok!(verdict(VERIFIERS[0], id, &[(bad(), false)]));
        assert_ok!(verdict(VERIFIERS[1], id, &[(bad(), false)]));
        // Unbonded long enough, no open job, but party to an open challenge.
        run_to(deadline + 10);
        assert_eq!(pallet_agora_providers::Providers::<Test>::get(p[0]).unwrap().open_jobs, 0);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(p[0])), pallet_agora_providers::Error::<Test>::StillSlashable);
        // A drawn verifier is party to it too: it cannot leave before its silence is punished.
        assert_ok!(Providers::unbond(RuntimeOrigin::signed(VERIFIERS[2])));
        run_to(System::block_number() + 11);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(VERIFIERS[2])), pallet_agora_providers::Error::<Test>::StillSlashable);
        let client = Balances::balance(&CLIENT);
        assert_ok!(Verifier::resolve_dispute(RuntimeOrigin::signed(CLIENT), id));
        // Made whole from both winners' stakes: the bond back and the 15 paid to each.
        assert_eq!(Balances::balance(&CLIENT), client + 500 + 30);
        assert_ok!(Providers::withdraw(RuntimeOrigin::signed(p[0])));
        assert_ok!(Providers::withdraw(RuntimeOrigin::signed(VERIFIERS[2])));
    });
}

#[test]
#[should_panic(expected = "UnbondingDelay must cover ChallengeWindow + VerdictWindow")]
fn the_unbonding_delay_must_cover_the_challenge_and_verdict_windows() {
    use polkadot_sdk::frame_support::traits::Hooks;
    UnbondingDelay::set(9);
    <Verifier as Hooks<u64>>::integrity_test();
}

#[test]
fn the_mock_runtime_passes_the_integrity_tests() {
    use polkadot_sdk::frame_support::traits::Hooks;
    <Verifier as Hooks<u64>>::integrity_test();
    <Providers as Hooks<u64>>::integrity_test();
}

#[test]
fn version_2_rewrites_the_receipts_of_version_1_with_no_reservation_fees() {
    use crate::migrations::v2::MigrateV1ToV2;
    use codec::Encode;
    use polkadot_sdk::frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
    new_test_ext(|| {
        let (id, p) = assigned_request(1);
        commit_and_reveal(id, &p, &[good()]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        next_block();
        let receipt = Receipts::<Test>::get(id).expect("settled");
        // What version 1 stored: every field but `reserved`, in order.
        let v1 = (receipt.request, receipt.client, receipt.release, receipt.winning, receipt.paid.clone(), receipt.slashed.clone(), receipt.refunded, receipt.settled_at).encode();
        polkadot_sdk::frame_support::storage::unhashed::put_raw(&Receipts::<Test>::hashed_key_for(id), &v1);
        assert!(Receipts::<Test>::get(id).is_none(), "a version 1 receipt does not decode as version 2");
        StorageVersion::new(1).put::<Verifier>();
        MigrateV1ToV2::<Test>::on_runtime_upgrade();
        assert_eq!(Receipts::<Test>::get(id), Some(receipt));
        assert_eq!(Verifier::on_chain_storage_version(), 2);
    });
}
