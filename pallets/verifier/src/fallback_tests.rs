//! Tickets nobody settled from a bundle fall back to commit–reveal; a buyer's two `Use`s of one
//! ticket are proven and paid for.

use crate::mock::*;
use crate::tests::{commit, commit_and_reveal, reveal};
use crate::ticket_tests::{bundle, drawn_tickets, frame_system_events, providers_of, result, settle, stake, use_of};
use crate::{Equivocated, Error, Event};
use agora_primitives::{JobOutcome, RequestStatus, TicketId, TicketStatus, TicketUse};
use pallet_agora_escrow::{Deposits, FellBack, Requests, Tickets};
use polkadot_sdk::frame_support::{assert_noop, assert_ok, traits::{fungible::InspectHold, Get}};
use polkadot_sdk::sp_runtime::{testing::TestSignature, DispatchError};

type EscrowError = pallet_agora_escrow::Error<Test>;

fn signed_by_buyer(authorised: &TicketUse) -> TestSignature {
    TestSignature(CLIENT, authorised.signing_payload())
}

fn fall_back(caller: u64, authorised: TicketUse) -> Result<u64, DispatchError> {
    let request = pallet_agora_escrow::NextRequestId::<Test>::get();
    let signature = signed_by_buyer(&authorised);
    Verifier::fall_back_ticket(RuntimeOrigin::signed(caller), authorised, signature).map_err(|e| e.error)?;
    Ok(request)
}

/// Runs to the first block in which anyone, not only the buyer, may fall `ticket` back.
fn past_grace(ticket: TicketId) {
    let expires_at = Tickets::<Test>::get(ticket).unwrap().expires_at;
    run_to(expires_at + <<Test as pallet_agora_escrow::Config>::TicketFallbackGrace as Get<u64>>::get() + 1);
}

fn held_for_requests(who: u64) -> u64 {
    Balances::balance_on_hold(&pallet_agora_escrow::HoldReason::RequestEscrow.into(), &who)
}

/// Another prompt of the same ticket, signed by the same buyer.
fn other_use_of(ticket: TicketId) -> TicketUse {
    TicketUse { prompt_hash: [6; 32], ..use_of(ticket) }
}

/// Issue 13: a buyer that has its answers and never sends the bundle paid only the reservation
/// fees at expiry. A provider holding the buyer's signed `Use` falls the ticket back once the
/// grace after expiry has passed, and the providers are paid per token through commit–reveal.
#[test]
fn a_buyer_who_never_settles_pays_per_token_through_the_fallback() {
    new_test_ext(|| {
        let ticket = drawn_tickets(3, 1)[0];
        let p = providers_of(ticket);
        let ledger = Deposits::<Test>::get(CLIENT);
        // Until the grace after expiry has passed, the buyer's bundle may be on its way.
        run_to(Tickets::<Test>::get(ticket).unwrap().expires_at + 1);
        assert_noop!(fall_back(p[0], use_of(ticket)), EscrowError::FallbackTooEarly);
        past_grace(ticket);

        let id = fall_back(p[0], use_of(ticket)).expect("a provider falls back a ticket nobody settled");
        assert!(Tickets::<Test>::get(ticket).is_none(), "the ticket is now a request");
        let r = Requests::<Test>::get(id).unwrap();
        assert_eq!((r.client, r.status, r.providers.to_vec()), (CLIENT, RequestStatus::Assigned, p.clone()));
        assert_eq!((r.params.prompt_tokens, r.params.prompt_hash), (500, [5; 32]));
        // 3 × the most a 500-token prompt and 1,000 tokens cost at 10 per 1k, kept in the
        // ledger's account (the buyer may have emptied its own); the rest of the ticket's 60
        // goes back to the buyer's entry.
        assert_eq!((r.escrow, held_for_requests(CLIENT)), (45, 0));
        assert_eq!(Deposits::<Test>::get(CLIENT), ledger + 15);
        assert_eq!(FellBack::<Test>::get(id).unwrap().use_hash, use_of(ticket).hash());
        System::assert_has_event(
            pallet_agora_escrow::Event::TicketFellBack { ticket, request: id, use_hash: use_of(ticket).hash(), refund: 15 }.into(),
        );

        let before: Vec<u64> = p.iter().map(|who| Deposits::<Test>::get(who)).collect();
        commit_and_reveal(id, &p, &[result(1, 300), result(1, 300), result(2, 300)]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(p[0]), id));
        // 500 + 300 tokens at 10 per 1k: 8 each, not the reservation fee of 1 an expiry pays.
        assert_eq!((Deposits::<Test>::get(p[0]) - before[0], Deposits::<Test>::get(p[1]) - before[1]), (8, 8));
        assert_eq!(stake(p[2]), 900, "the signer of another result is slashed");
        assert_eq!(Deposits::<Test>::get(CLIENT), ledger + 15 + 45 - 16, "the rest comes back to the buyer's entry");
        // The ticket is gone, so it can neither expire nor be settled from a bundle now.
        assert_noop!(Escrow::expire_ticket(RuntimeOrigin::signed(p[0]), ticket), EscrowError::UnknownTicket);
        assert_noop!(settle(vec![bundle(ticket, &[])]), EscrowError::UnknownTicket);
    });
}

/// Issue 13: outcomes without a strict majority settle nothing from a bundle. The buyer falls
/// the ticket back at once, and the split vote goes to verifiers as a request's does.
#[test]
fn the_buyer_falls_a_ticket_without_a_majority_back_to_the_verifiers() {
    new_test_ext(|| {
        let ticket = drawn_tickets(3, 1)[0];
        let p = providers_of(ticket);
        let split = [(0, result(1, 300)), (1, result(2, 300)), (2, result(3, 300))];
        assert_noop!(settle(vec![bundle(ticket, &split)]), Error::<Test>::NoMajority);
        assert_noop!(fall_back(p[0], use_of(ticket)), EscrowError::FallbackTooEarly);
        let id = fall_back(CLIENT, use_of(ticket)).expect("its buyer falls a ticket back at any time");
        opt_in_verifiers(3);
        commit_and_reveal(id, &p, &[result(1, 300), result(2, 300), result(3, 300)]);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        assert_eq!(Requests::<Test>::get(id).unwrap().status, RequestStatus::Disputed);
        next_block();
        assert_eq!(crate::Disputes::<Test>::get(id).unwrap().verifiers.len(), 3, "verifiers are drawn for it");
    });
}

/// Issue 13: a provider that acknowledged the buyer's `Use` of a ticket and never answers is a
/// no-show through the fallback: the buyer proves its acknowledgement of the ticket's `Use`.
#[test]
fn a_provider_that_acknowledged_and_never_answers_is_slashed_through_the_fallback() {
    new_test_ext(|| {
        let ticket = drawn_tickets(3, 1)[0];
        let p = providers_of(ticket);
        let id = fall_back(CLIENT, use_of(ticket)).unwrap();
        let peer: crate::PeerIdOf = b"client-peer".to_vec().try_into().unwrap();
        // An acknowledgement of a request's `Use` is not one of the ticket's.
        assert_noop!(
            Verifier::prove_ack(RuntimeOrigin::signed(CLIENT), id, p[2], peer.clone(), ack(p[2], id, b"client-peer")),
            Error::<Test>::BadAcknowledgement
        );
        let acknowledged = TestSignature(p[2], use_of(ticket).ack_payload());
        assert_ok!(Verifier::prove_ack(RuntimeOrigin::signed(CLIENT), id, p[2], peer, acknowledged));
        let r = Requests::<Test>::get(id).unwrap();
        for who in &p[..2] {
            assert_ok!(commit(*who, id, result(1, 300)));
        }
        run_to(r.commit_deadline + 1);
        for who in &p[..2] {
            assert_ok!(reveal(*who, id, result(1, 300)));
        }
        run_to(r.reveal_deadline + 1);
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        let receipt = crate::Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.slashed.to_vec(), vec![(p[2], 20, JobOutcome::NoShow)], "NoShowSlash of its stake");
        assert!(receipt.reserved.is_empty());
    });
}

#[test]
fn a_fallback_that_does_not_hold_is_refused_by_name() {
    new_test_ext(|| {
        let tickets = drawn_tickets(3, 2);
        let (ticket, settled) = (tickets[0], tickets[1]);
        let mut forged = use_of(ticket);
        let signature = TestSignature(POOR_CLIENT, forged.signing_payload());
        assert_noop!(
            Verifier::fall_back_ticket(RuntimeOrigin::signed(CLIENT), forged.clone(), signature).map_err(|e| e.error),
            Error::<Test>::BadUseSignature
        );
        forged.chain = [9; 32];
        assert_noop!(fall_back(CLIENT, forged), Error::<Test>::WrongChain);
        let too_long = TicketUse { prompt_tokens: 1001, ..use_of(ticket) };
        assert_noop!(fall_back(CLIENT, too_long), Error::<Test>::UseExceedsTicket);
        assert_ok!(settle(vec![bundle(settled, &[(0, result(1, 300)), (1, result(1, 300))])]));
        assert!(matches!(Tickets::<Test>::get(settled).unwrap().status, TicketStatus::Settled(_)));
        assert_noop!(fall_back(CLIENT, use_of(settled)), EscrowError::TicketSettled);
        assert_noop!(fall_back(CLIENT, use_of(99)), EscrowError::UnknownTicket);
        // After the settle window a ticket can only expire.
        let expires_at = Tickets::<Test>::get(ticket).unwrap().expires_at;
        run_to(expires_at + <<Test as pallet_agora_escrow::Config>::SettleWindow as Get<u64>>::get() + 1);
        assert_noop!(fall_back(CLIENT, use_of(ticket)), EscrowError::TicketClosed);
        assert_ok!(Escrow::expire_ticket(RuntimeOrigin::signed(CLIENT), ticket));
    });
}

fn prove(provider: u64, authorised: TicketUse, request: Option<u64>) -> polkadot_sdk::sp_runtime::DispatchResult {
    let signature = signed_by_buyer(&authorised);
    Verifier::prove_equivocation(RuntimeOrigin::signed(provider), authorised, signature, request)
}

/// Issue 13: the buyer signs `Use` A for two providers and B for the third, and settles A
/// without it. B's provider did the work and, with a claim refused (its outcome is not over A),
/// would get only the reservation fee. Its proof of the second `Use` pays it its most under A.
#[test]
fn a_provider_served_another_use_than_the_settled_one_is_paid_its_most() {
    new_test_ext(|| {
        let ticket = drawn_tickets(3, 1)[0];
        let p = providers_of(ticket);
        assert_ok!(settle(vec![bundle(ticket, &[(0, result(1, 300)), (1, result(1, 300))])]));
        assert_noop!(prove(p[2], use_of(ticket), None), Error::<Test>::NotEquivocation);
        assert_noop!(prove(p[1], other_use_of(ticket), None), Error::<Test>::NotOpen);
        let forged = other_use_of(ticket);
        assert_noop!(
            Verifier::prove_equivocation(RuntimeOrigin::signed(p[2]), forged.clone(), TestSignature(p[2], forged.signing_payload()), None),
            Error::<Test>::BadUseSignature
        );
        let before = Deposits::<Test>::get(p[2]);
        assert_ok!(prove(p[2], other_use_of(ticket), None));
        // 500 prompt tokens and the whole 1,000 of output at 10 per 1k.
        assert_eq!(Deposits::<Test>::get(p[2]) - before, 15);
        assert!(Tickets::<Test>::get(ticket).is_none(), "nothing is left to claim");
        assert!(frame_system_events().contains(&Event::Equivocation { ticket, provider: p[2], paid: Some(15) }.into()));
    });
}

/// Issue 13: the ticket fell back under `Use` A while one provider served B. Its result is for
/// another prompt: it proves the second `Use` instead of committing, and is paid its most as a
/// reservation, not slashed as a dissent or a no-show.
#[test]
fn a_provider_served_another_use_than_the_fell_back_one_is_paid_its_most() {
    new_test_ext(|| {
        let ticket = drawn_tickets(3, 1)[0];
        let p = providers_of(ticket);
        let id = fall_back(CLIENT, use_of(ticket)).unwrap();
        assert_noop!(prove(p[2], use_of(ticket), Some(id)), Error::<Test>::NotEquivocation);
        assert_noop!(prove(p[2], other_use_of(ticket), Some(id + 1)), Error::<Test>::NotFellBack);
        assert_ok!(commit(p[0], id, result(1, 300)));
        assert_noop!(prove(p[0], other_use_of(ticket), Some(id)), Error::<Test>::AlreadyCommitted);
        assert_ok!(prove(p[2], other_use_of(ticket), Some(id)));
        assert!(Equivocated::<Test>::contains_key(id, p[2]));
        assert_noop!(prove(p[2], other_use_of(ticket), Some(id)), Error::<Test>::AlreadyProven);
        assert_noop!(commit(p[2], id, result(2, 300)), Error::<Test>::AlreadyProven);
        assert_ok!(commit(p[1], id, result(1, 300)));
        assert_ok!(reveal(p[0], id, result(1, 300)));
        assert_ok!(reveal(p[1], id, result(1, 300)));
        let before = Deposits::<Test>::get(p[2]);
        // Everyone who can answer has: nobody waits for the reveal deadline.
        assert_ok!(Verifier::settle(RuntimeOrigin::signed(CLIENT), id));
        let receipt = crate::Receipts::<Test>::get(id).unwrap();
        assert_eq!(receipt.reserved.to_vec(), vec![(p[2], 15)]);
        assert!(receipt.slashed.is_empty());
        assert_eq!((Deposits::<Test>::get(p[2]) - before, stake(p[2])), (15, 1_000));
        assert!(!Equivocated::<Test>::contains_key(id, p[2]), "cleared when the request closes");
    });
}
