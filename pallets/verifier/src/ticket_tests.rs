//! Settling tickets from the buyer's signed `Use` and the providers' signed outcomes.

use crate::{mock::*, tickets::TicketBundleOf, Error, Event};
use agora_primitives::receipts::{self, leaf, ReceiptRoot};
use agora_primitives::{JobOutcome, Outcome, SamplingParams, SignedOutcome, TicketBundle, TicketId, TicketSpec, TicketUse};
use pallet_agora_escrow::{Deposits, Tickets};
use codec::Encode;
use polkadot_sdk::frame_support::{assert_noop, assert_ok, traits::Hooks};
use polkadot_sdk::sp_runtime::{testing::TestSignature, BoundedVec, DispatchError};

type Records = pallet_agora_providers::Providers<Test>;

pub(crate) fn result(byte: u8, tokens: u32) -> Outcome {
    Outcome { output_hash: [byte; 32], token_count: tokens }
}

/// `count` tickets of k providers bought by `CLIENT` (up to 1,000 prompt and output tokens at
/// `PRICE`: at most 20 per provider) and drawn in the next block.
pub(crate) fn drawn_tickets(k: u32, count: u32) -> Vec<TicketId> {
    let first = pallet_agora_escrow::NextTicketId::<Test>::get();
    let spec = TicketSpec {
        release: RELEASE,
        runtime_profile: PROFILE,
        redundancy: k,
        max_prompt_tokens: 1000,
        max_output_tokens: 1000,
        max_price_per_1k: PRICE,
    };
    assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 20 * u64::from(k * count)));
    assert_ok!(Escrow::buy_tickets(RuntimeOrigin::signed(CLIENT), spec, count));
    next_block();
    (first..first + u64::from(count)).collect()
}

pub(crate) fn providers_of(ticket: TicketId) -> Vec<u64> {
    Tickets::<Test>::get(ticket).expect("the ticket exists").providers.to_vec()
}

/// A `Use` of `ticket` for a 500-token prompt.
pub(crate) fn use_of(ticket: TicketId) -> TicketUse {
    TicketUse {
        chain: Verifier::chain(),
        ticket,
        prompt_hash: [5; 32],
        prompt_tokens: 500,
        max_output_tokens: 1000,
        sampling: SamplingParams::default(),
        client_peer: BoundedVec::truncate_from(b"client-peer".to_vec()),
    }
}

/// The bundle of `authorised`, signed by `CLIENT`, with each `(position, result)` signed by the
/// ticket's provider at that position.
pub(crate) fn bundle_of(authorised: TicketUse, results: &[(u8, Outcome)]) -> TicketBundleOf<Test> {
    let providers = if results.is_empty() { Vec::new() } else { providers_of(authorised.ticket) };
    let outcomes = results
        .iter()
        .map(|(i, o)| SignedOutcome {
            provider: *i,
            outcome: *o,
            // A position with no provider is signed by nobody in particular.
            signature: TestSignature(providers.get(*i as usize).copied().unwrap_or(POOR_CLIENT), authorised.outcome_payload(o)),
        })
        .collect();
    TicketBundle {
        buyer_signature: TestSignature(CLIENT, authorised.signing_payload()),
        authorised,
        outcomes: BoundedVec::truncate_from(outcomes),
    }
}

pub(crate) fn bundle(ticket: TicketId, results: &[(u8, Outcome)]) -> TicketBundleOf<Test> {
    bundle_of(use_of(ticket), results)
}

pub(crate) fn settle(bundles: Vec<TicketBundleOf<Test>>) -> polkadot_sdk::sp_runtime::DispatchResult {
    Verifier::settle_tickets(RuntimeOrigin::signed(POOR_CLIENT), BoundedVec::truncate_from(bundles), 64, 0).map(|_| ()).map_err(|e| e.error)
}

pub(crate) fn stake(who: u64) -> u64 {
    Records::get(who).unwrap().stake
}

#[test]
fn a_majority_pays_its_signers_slashes_a_signed_dissent_and_refunds_the_rest() {
    new_test_ext(|| {
        let ticket = drawn_tickets(3, 1)[0];
        let p = providers_of(ticket);
        let before = Deposits::<Test>::get(CLIENT);
        let signed = bundle(ticket, &[(0, result(1, 300)), (1, result(1, 300)), (2, result(2, 300))]);
        assert_ok!(settle(vec![signed.clone()]));

        // 500 prompt + 300 output tokens at 10 per 1k: 8 each.
        assert_eq!((Deposits::<Test>::get(p[0]), Deposits::<Test>::get(p[1])), (8, 8));
        assert_eq!(Deposits::<Test>::get(p[2]), 0);
        assert_eq!(stake(p[2]), 900, "the dissenting signer lost WrongResultSlash of its stake");
        assert_eq!(Deposits::<Test>::get(CLIENT), before + 60 - 16, "the buyer gets back what nobody earned");
        assert_eq!(Records::get(p[0]).unwrap().reputation.agreed, 1);
        assert_eq!(Records::get(p[2]).unwrap().reputation.wrong, 1);
        assert!(Tickets::<Test>::get(ticket).is_none(), "a settled ticket leaves nothing in storage");
        let receipt = frame_system_events()
            .iter()
            .find_map(|e| match e {
                RuntimeEvent::Verifier(Event::TicketSettled { receipt }) => Some(receipt.clone()),
                _ => None,
            })
            .expect("a receipt is deposited");
        assert_eq!(receipt.use_hash, use_of(ticket).hash());
        assert_eq!(receipt.winning, result(1, 300));
        assert_eq!(receipt.paid.to_vec(), vec![(p[0], 8), (p[1], 8)]);
        assert_eq!(receipt.slashed.to_vec(), vec![(p[2], 100, JobOutcome::Wrong)]);
        assert_eq!(receipt.refunded, 44);
        // Settled once: the same bundle again finds no ticket.
        assert_noop!(settle(vec![signed]), pallet_agora_escrow::Error::<Test>::UnknownTicket);
    });
}

pub(crate) fn frame_system_events() -> Vec<RuntimeEvent> {
    System::events().into_iter().map(|r| r.event).collect()
}

fn claim(ticket: TicketId, position: u8, outcome: Outcome, use_hash: [u8; 32]) -> polkadot_sdk::sp_runtime::DispatchResult {
    let who = providers_of(ticket)[position as usize];
    let signature = TestSignature(who, agora_primitives::tickets::outcome_payload(ticket, &use_hash, &outcome));
    Verifier::claim_ticket_outcome(RuntimeOrigin::signed(POOR_CLIENT), ticket, SignedOutcome { provider: position, outcome, signature }).map(|_| ()).map_err(|e| e.error)
}

/// Issue 13 review: whoever settles cannot short a provider by leaving its outcome out. Its most
/// under the `Use` stays held; its own signed outcome, brought later, is paid if it is the
/// winner and slashed if not; unclaimed, it earns the reservation fee at expiry.
#[test]
fn a_left_out_provider_s_share_is_held_for_its_claim() {
    new_test_ext(|| {
        let tickets = drawn_tickets(3, 3);
        let use_hash = |t: TicketId| use_of(t).hash();
        let agreed = [(0, result(1, 300)), (1, result(1, 300))];
        let before = Deposits::<Test>::get(CLIENT);
        let third = |t: TicketId| providers_of(t)[2];
        let (honest, liar, silent) = (third(tickets[0]), third(tickets[1]), third(tickets[2]));
        assert_ok!(settle(tickets.iter().map(|t| bundle(*t, &agreed)).collect()));
        // 500 prompt + 1,000 output tokens at 10 per 1k: 15 held for each third provider.
        assert_eq!(Deposits::<Test>::get(CLIENT), before + 3 * (60 - 16 - 15), "the buyer was refunded a left-out provider's share");
        assert_eq!(Tickets::<Test>::get(tickets[0]).unwrap().escrow, 15);
        assert_noop!(settle(vec![bundle(tickets[0], &agreed)]), Error::<Test>::AlreadySettled);
        assert_noop!(claim(tickets[0], 0, result(1, 300), use_hash(tickets[0])), Error::<Test>::NotOpen);
        assert_noop!(claim(tickets[0], 2, result(1, 300), [9; 32]), Error::<Test>::BadOutcomeSignature);

        let (honest_before, liar_stake) = (Deposits::<Test>::get(honest), stake(liar));
        assert_ok!(claim(tickets[0], 2, result(1, 300), use_hash(tickets[0])));
        assert_eq!(Deposits::<Test>::get(honest), honest_before + 8, "the winning result is paid its price");
        assert!(Tickets::<Test>::get(tickets[0]).is_none());
        assert_ok!(claim(tickets[1], 2, result(2, 300), use_hash(tickets[1])));
        assert_eq!(stake(liar), liar_stake - liar_stake / 10, "a signed dissent brought later is slashed");
        assert_eq!(Deposits::<Test>::get(CLIENT), before + 3 * 29 + 7 + 15, "the rest of each share is the buyer's");

        // Nobody claims the third: after the settle window it earns the fee, the buyer the rest.
        let closes = Tickets::<Test>::get(tickets[2]).unwrap().expires_at + 10;
        run_to(closes + 1);
        assert_noop!(claim(tickets[2], 2, result(1, 300), use_hash(tickets[2])), pallet_agora_escrow::Error::<Test>::TicketClosed);
        let (silent_before, reputation) = (Deposits::<Test>::get(silent), Records::get(silent).unwrap().reputation);
        assert_ok!(Escrow::expire_ticket(RuntimeOrigin::signed(POOR_CLIENT), tickets[2]));
        assert_eq!(Deposits::<Test>::get(silent), silent_before + 1);
        assert_eq!(Records::get(silent).unwrap().reputation, reputation);
        assert_eq!(Deposits::<Test>::get(CLIENT), before + 3 * 29 + 7 + 15 + 14);
    });
}

#[test]
fn one_call_settles_many_tickets_writing_each_provider_once() {
    new_test_ext(|| {
        let tickets = drawn_tickets(2, 8);
        let bundles: Vec<_> = tickets.iter().map(|t| bundle(*t, &[(0, result(1, 100)), (1, result(1, 100))])).collect();
        let mut served = std::collections::BTreeMap::<u64, u32>::new();
        tickets.iter().flat_map(|t| providers_of(*t)).for_each(|p| *served.entry(p).or_default() += 1);
        // The providers and the one buyer.
        let accounts = served.len() as u32 + 1;
        assert_noop!(
            Verifier::settle_tickets(RuntimeOrigin::signed(POOR_CLIENT), BoundedVec::truncate_from(bundles.clone()), accounts - 1, 0)
                .map_err(|e| e.error),
            Error::<Test>::AccountsWitnessTooLow
        );
        let settled = Verifier::do_settle_tickets(bundles, accounts, 0).unwrap();

        assert_eq!((settled.bundles, settled.extra_outcomes, settled.accounts), (8, 0, accounts));
        for (who, jobs) in served {
            // 500 + 100 tokens at 10 per 1k: 6 a ticket.
            assert_eq!(Deposits::<Test>::get(who), 6 * u64::from(jobs));
            assert_eq!(Records::get(who).unwrap().reputation.agreed, jobs);
        }
        assert!(tickets.iter().all(|t| Tickets::<Test>::get(t).is_none()));
    });
}

/// Review finding (issue 13): every write of a provider record rewrites one listing per offer,
/// and the benchmark measures one. With four offers a provider, the three agreeing providers'
/// writes and the dissenter's slash rewrite three more listings each: a witness short of that
/// is refused before anything is written, and the weight used charges them.
#[test]
fn a_settlement_pays_for_every_listing_its_providers_offers_rewrite() {
    new_test_ext(|| {
        offer_more_releases(3);
        let ticket = drawn_tickets(3, 1)[0];
        let bundles = vec![bundle(ticket, &[(0, result(1, 300)), (1, result(1, 300)), (2, result(2, 300))])];
        // Three records written once, and the dissenter's once more for its slash.
        let relisted = (3 + 1) * 3;
        let settle = |witness: u32| {
            Verifier::settle_tickets(RuntimeOrigin::signed(POOR_CLIENT), BoundedVec::truncate_from(bundles.clone()), 4, witness)
        };
        assert_noop!(settle(relisted - 1).map_err(|e| e.error), Error::<Test>::ListingsWitnessTooLow);
        let charged = Verifier::settle_tickets_weight(&bundles, 4, relisted);
        let used = settle(relisted).unwrap().actual_weight.unwrap();
        let measured = crate::types::TicketsSettled { bundles: 1, extra_outcomes: 1, dissents: 1, held: 0, accounts: 4, relisted: 0 };
        assert!(Providers::relisting_weight(relisted).proof_size() > 0);
        assert_eq!(used, Verifier::tickets_weight(measured) + Providers::relisting_weight(relisted));
        assert!(used.all_lte(charged));
    });
}

/// Whether every provider of `touched` is credited by the weight test's bundles: the third
/// provider of the second ticket is not, unless another bundle names it.
fn bundles_credit(tickets: &[TicketId], touched: &[u64]) -> bool {
    let named: Vec<u64> = [providers_of(tickets[0]), providers_of(tickets[1])[..2].to_vec(), providers_of(tickets[2])].concat();
    touched.iter().all(|p| named.contains(p))
}

/// The weight charged before dispatch, from the bundles and the witness alone, covers what the
/// call did: its outcomes beyond two, its dissents (each a slash) and the accounts it touched.
#[test]
fn the_weight_charged_upfront_covers_the_weight_used() {
    new_test_ext(|| {
        let tickets = drawn_tickets(3, 3);
        let bundles = vec![
            bundle(tickets[0], &[(0, result(1, 300)), (1, result(1, 300)), (2, result(2, 300))]),
            bundle(tickets[1], &[(0, result(1, 300)), (1, result(1, 300))]),
            bundle(tickets[2], &[(0, result(1, 300)), (1, result(1, 300)), (2, result(1, 300))]),
        ];
        let mut touched: Vec<u64> = tickets.iter().flat_map(|t| providers_of(*t)).collect();
        touched.sort();
        touched.dedup();
        let charged = Verifier::settle_tickets_weight(&bundles, 64, 0);
        // The provider the second bundle leaves out is not credited (its share is held).
        let accounts = touched.len() as u32 + 1 - u32::from(!bundles_credit(&tickets, &touched));
        let expected = crate::types::TicketsSettled { bundles: 3, extra_outcomes: 2, dissents: 1, held: 1, accounts, relisted: 0 };
        assert_eq!(
            charged,
            Verifier::tickets_weight(crate::types::TicketsSettled { accounts: 27, held: 3, ..expected }),
            "at most 9 accounts a bundle, and any bundle may be held"
        );
        let used = Verifier::settle_tickets(RuntimeOrigin::signed(POOR_CLIENT), BoundedVec::truncate_from(bundles), 64, 0)
            .unwrap()
            .actual_weight
            .unwrap();
        assert_eq!(used, Verifier::tickets_weight(expected), "the providers drawn and the buyer");
        assert!(used.all_lte(charged));
    });
}

#[test]
fn a_bundle_that_does_not_hold_is_refused_by_name_and_moves_nothing() {
    new_test_ext(|| {
        let tickets = drawn_tickets(3, 2);
        let (t, other) = (tickets[0], tickets[1]);
        let p = providers_of(t);
        let agreed = [(0, result(1, 300)), (1, result(1, 300))];
        let refused = |b: TicketBundleOf<Test>, e: DispatchError| {
            assert_noop!(settle(vec![b]), e);
        };

        refused(bundle(99, &[]), pallet_agora_escrow::Error::<Test>::UnknownTicket.into());
        refused(bundle_of(TicketUse { prompt_tokens: 1001, ..use_of(t) }, &agreed), Error::<Test>::UseExceedsTicket.into());
        refused(bundle_of(TicketUse { prompt_tokens: 0, ..use_of(t) }, &agreed), Error::<Test>::UseExceedsTicket.into());
        refused(bundle_of(TicketUse { max_output_tokens: 1001, ..use_of(t) }, &agreed), Error::<Test>::UseExceedsTicket.into());
        // Signed, buyer and providers alike, for another chain with the same keys and ids.
        refused(bundle_of(TicketUse { chain: [9; 32], ..use_of(t) }, &agreed), Error::<Test>::WrongChain.into());
        let mut forged = bundle(t, &agreed);
        forged.buyer_signature = TestSignature(POOR_CLIENT, use_of(t).signing_payload());
        refused(forged, Error::<Test>::BadUseSignature.into());
        // The buyer signed another prompt for this ticket: outcomes for the first do not count.
        let mut switched = bundle(t, &agreed);
        switched.authorised.prompt_hash = [6; 32];
        switched.buyer_signature = TestSignature(CLIENT, switched.authorised.signing_payload());
        refused(switched, Error::<Test>::BadOutcomeSignature.into());
        let mut stolen = bundle(t, &agreed);
        stolen.outcomes.get_mut(1).unwrap().signature = TestSignature(p[2], use_of(t).outcome_payload(&result(1, 300)));
        refused(stolen, Error::<Test>::BadOutcomeSignature.into());
        refused(bundle(t, &[(0, result(1, 300)), (3, result(1, 300))]), Error::<Test>::NotTicketProvider.into());
        refused(bundle(t, &[(0, result(1, 300)), (0, result(1, 300))]), Error::<Test>::DuplicateOutcome.into());
        refused(
            bundle_of(TicketUse { max_output_tokens: 200, ..use_of(t) }, &agreed),
            Error::<Test>::TooManyTokens.into(),
        );
        refused(bundle(t, &[(0, result(1, 300))]), Error::<Test>::NoMajority.into());
        refused(bundle(t, &[(0, result(1, 300)), (1, result(2, 300)), (2, result(3, 300))]), Error::<Test>::NoMajority.into());
        // Same hash, another count: another result.
        refused(bundle(t, &[(0, result(1, 300)), (1, result(1, 301))]), Error::<Test>::NoMajority.into());
        // All or nothing: a good bundle beside a bad one (its ticket settled by the first) is
        // not settled either.
        assert_noop!(settle(vec![bundle(t, &agreed), bundle(t, &agreed)]), Error::<Test>::AlreadySettled);
        // Two providers and the buyer are three accounts (the one left out is not credited yet).
        assert_noop!(
            Verifier::settle_tickets(RuntimeOrigin::signed(POOR_CLIENT), BoundedVec::truncate_from(vec![bundle(t, &agreed)]), 2, 0)
                .map_err(|e| e.error),
            Error::<Test>::AccountsWitnessTooLow
        );

        // A ticket bought in this block is not drawn yet.
        assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 60));
        let spec = Tickets::<Test>::get(t).unwrap().spec;
        assert_ok!(Escrow::buy_tickets(RuntimeOrigin::signed(CLIENT), spec, 1));
        refused(bundle_of(use_of(2), &[]), pallet_agora_escrow::Error::<Test>::NotDrawn.into());

        // Past the settle window a ticket can only expire.
        let closes = Tickets::<Test>::get(other).unwrap().expires_at + 10;
        run_to(closes);
        let winners = providers_of(other);
        assert_ok!(settle(vec![bundle(other, &agreed)]));
        let until = pallet_agora_providers::Exposures::<Test>::get(winners[0]).until;
        assert_eq!(until, closes + 6, "a winner's stake stays through the challenge window after settlement");
        run_to(closes + 1);
        refused(bundle(t, &agreed), pallet_agora_escrow::Error::<Test>::TicketClosed.into());
        assert_ok!(Escrow::expire_ticket(RuntimeOrigin::signed(POOR_CLIENT), t));
    });
}

#[test]
fn a_provider_drawn_for_a_ticket_keeps_its_stake_until_the_ticket_can_no_longer_be_settled() {
    new_test_ext(|| {
        let ticket = drawn_tickets(3, 1)[0];
        let p = providers_of(ticket);
        let closes = Tickets::<Test>::get(ticket).unwrap().expires_at + 10;
        assert_ok!(Providers::unbond(RuntimeOrigin::signed(p[2])));
        run_to(System::block_number() + UnbondingDelay::get() + 1);
        // Without the hold, p[2] would leave now with its whole stake and sign anything.
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(p[2])), pallet_agora_providers::Error::<Test>::StillSlashable);
        assert_ok!(settle(vec![bundle(ticket, &[(0, result(1, 300)), (1, result(1, 300)), (2, result(2, 300))])]));
        assert_eq!(stake(p[2]), 900, "its signed dissent cost it real stake");
        run_to(closes);
        assert_noop!(Providers::withdraw(RuntimeOrigin::signed(p[2])), pallet_agora_providers::Error::<Test>::StillSlashable);
        next_block();
        assert_ok!(Providers::withdraw(RuntimeOrigin::signed(p[2])));
    });
}


fn settled_receipts() -> Vec<crate::TicketReceiptOf<Test>> {
    frame_system_events()
        .into_iter()
        .filter_map(|e| match e {
            RuntimeEvent::Verifier(Event::TicketSettled { receipt }) => Some(receipt),
            _ => None,
        })
        .collect()
}

fn receipt_roots() -> Vec<ReceiptRoot> {
    System::digest().logs.iter().filter_map(|item| ReceiptRoot::find(core::slice::from_ref(item))).collect()
}

/// A receipt is only an event; the block's header commits to it, so a receipt, the header and
/// the leaf's path prove offline that it was settled in that block.
#[test]
fn each_block_that_settles_tickets_commits_to_their_receipts_in_its_header() {
    new_test_ext(|| {
        let tickets = drawn_tickets(2, 3);
        let agreeing = [(0, result(1, 100)), (1, result(1, 100))];
        assert_ok!(settle(vec![bundle(tickets[0], &agreeing), bundle(tickets[1], &agreeing)]));
        assert_ok!(settle(vec![bundle(tickets[2], &agreeing)]));
        assert!(receipt_roots().is_empty(), "the root is sealed when the block ends");
        end_block();

        let receipts = settled_receipts();
        let leaves: Vec<_> = receipts.iter().map(|r| leaf(&r.encode())).collect();
        assert_eq!(receipt_roots(), vec![ReceiptRoot::of(&leaves)], "one root of every receipt, in the order of their events");
        let root = receipt_roots()[0];
        assert_eq!(root.count, 3);
        for (i, receipt) in receipts.iter().enumerate() {
            let path = receipts::path(&leaves, i as u32).unwrap();
            assert!(root.contains(i as u32, leaf(&receipt.encode()), &path), "receipt {i} is proven");
            let mut altered = receipt.clone();
            altered.refunded += 1;
            assert!(!root.contains(i as u32, leaf(&altered.encode()), &path), "an altered receipt {i} is not");
        }
        assert!(crate::BlockReceipts::<Test>::get().is_empty(), "nothing of it stays in state");

        // A block that settles nothing has no root.
        next_block();
        assert!(receipt_roots().is_empty());
    });
}

#[test]
fn a_block_commits_to_at_most_max_block_receipts() {
    new_test_ext(|| {
        let agreeing = [(0, result(1, 100)), (1, result(1, 100))];
        let first = drawn_tickets(2, 8);
        let second = drawn_tickets(2, 8);
        start_next_block();
        assert_ok!(settle(first.iter().map(|t| bundle(*t, &agreeing)).collect()));
        let more: Vec<_> = second.iter().map(|t| bundle(*t, &agreeing)).collect();
        // Eight more would take the block past MaxBlockReceipts (12).
        assert_noop!(settle(more.clone()), Error::<Test>::TooManyReceiptsThisBlock);
        end_block();
        assert_eq!(receipt_roots().iter().map(|r| r.count).collect::<Vec<_>>(), vec![8]);
        start_next_block();
        assert_ok!(settle(more));
        end_block();
        assert_eq!(receipt_roots().iter().map(|r| r.count).collect::<Vec<_>>(), vec![8]);
    });
}

/// Review finding: an author's own digest item tagged as a receipt root, ahead of the runtime's,
/// would let a header carry a root of receipts nobody settled. Such a block is invalid.
#[test]
#[should_panic(expected = "a block's author put a receipt root in its digest")]
fn a_block_whose_author_put_a_receipt_root_in_its_digest_is_refused() {
    new_test_ext(|| {
        let forged = ReceiptRoot::of(&[leaf(b"a receipt nobody settled")]);
        System::set_block_number(System::block_number() + 1);
        System::deposit_log(forged.digest_item());
        Verifier::on_initialize(System::block_number());
    });
}
