//! Deposits, the ledger and tickets.

use crate::{mock::*, Deposits, Error, Event, NextTicketId, Pallet as EscrowPallet, PurchasesAwaitingDraw, Tickets};
use agora_primitives::{TicketSpec, TicketStatus};
use polkadot_sdk::frame_support::{assert_noop, assert_ok, traits::fungible::Inspect};

/// Tickets for prompts and outputs of up to 1,000 tokens each at up to `max_price` per 1k:
/// one provider's most is 2 × max_price.
fn spec(k: u32, max_price: u64) -> TicketSpec<u64> {
    TicketSpec {
        release: RELEASE,
        runtime_profile: PROFILE,
        redundancy: k,
        max_prompt_tokens: 1000,
        max_output_tokens: 1000,
        max_price_per_1k: max_price,
    }
}

fn buy(k: u32, count: u32) -> polkadot_sdk::sp_runtime::DispatchResult {
    Escrow::buy_tickets(RuntimeOrigin::signed(CLIENT), spec(k, PRICE), count).map(|_| ()).map_err(|e| e.error)
}

fn pot() -> u64 {
    Balances::balance(&EscrowPallet::<Test>::account_id())
}

fn stake(who: u64) -> u64 {
    pallet_agora_providers::Providers::<Test>::get(who).unwrap().stake
}

#[test]
fn deposits_and_withdrawals_move_money_through_the_ledger_only() {
    new_test_ext(|| {
        let (client, pot_before) = (Balances::balance(&CLIENT), pot());
        assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 10_000));
        assert_eq!((Balances::balance(&CLIENT), pot(), Deposits::<Test>::get(CLIENT)), (client - 10_000, pot_before + 10_000, 10_000));
        System::assert_last_event(Event::Deposited { who: CLIENT, amount: 10_000 }.into());

        assert_ok!(Escrow::withdraw(RuntimeOrigin::signed(CLIENT), 4_000));
        assert_eq!(Deposits::<Test>::get(CLIENT), 6_000);
        assert_noop!(Escrow::withdraw(RuntimeOrigin::signed(CLIENT), 6_001), Error::<Test>::InsufficientDeposit);
        assert_noop!(Escrow::withdraw(RuntimeOrigin::signed(CLIENT), 0), Error::<Test>::ZeroAmount);
        assert_noop!(Escrow::deposit(RuntimeOrigin::signed(POOR_CLIENT), 1_000), Error::<Test>::InsufficientBalance);
        // All of it comes back, and the pallet's account keeps its existential deposit.
        assert_ok!(Escrow::withdraw(RuntimeOrigin::signed(CLIENT), 6_000));
        assert!(!Deposits::<Test>::contains_key(CLIENT));
        assert_eq!((Balances::balance(&CLIENT), pot()), (client, pot_before));
        assert!(pot() >= Balances::minimum_balance());
    });
}

#[test]
fn bought_tickets_take_their_escrow_and_are_drawn_in_a_later_block() {
    new_test_ext(|| {
        assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 10_000));
        assert_ok!(buy(2, 16));
        // k = 2 × (1000 + 1000 tokens × 10 per 1k) = 40 a ticket.
        assert_eq!(Deposits::<Test>::get(CLIENT), 10_000 - 16 * 40);
        System::assert_last_event(Event::TicketsBought { buyer: CLIENT, first: 0, count: 16, escrow_each: 40 }.into());
        assert_eq!(NextTicketId::<Test>::get(), 16);
        assert_eq!(Tickets::<Test>::get(3).unwrap().status, TicketStatus::AwaitingDraw);
        // Nothing the buyer's block knew draws them.
        <Escrow as polkadot_sdk::frame_support::traits::Hooks<u64>>::on_initialize(1);
        assert_eq!(Tickets::<Test>::get(0).unwrap().status, TicketStatus::AwaitingDraw);

        next_block();
        System::assert_has_event(Event::TicketsDrawn { first: 0, count: 16, expires_at: 2 + 20 }.into());
        assert!(PurchasesAwaitingDraw::<Test>::get().is_empty());
        let mut pairs = Vec::new();
        for id in 0..16 {
            let t = Tickets::<Test>::get(id).unwrap();
            assert_eq!((t.status, t.providers.len(), t.expires_at), (TicketStatus::Drawn, 2, 22));
            assert_ne!(t.providers[0], t.providers[1], "a ticket's providers are distinct");
            assert!(t.prices.iter().all(|p| *p == (PRICE, PRICE)));
            let mut pair = t.providers.to_vec();
            pair.sort();
            pairs.push(pair);
        }
        pairs.sort();
        pairs.dedup();
        assert!(pairs.len() > 1, "each ticket draws with its own seed");
        // Tickets do not hold job slots: providers serve them as their capacity allows.
        assert!(PROVIDERS.iter().all(|p| pallet_agora_providers::Providers::<Test>::get(p).unwrap().open_jobs == 0));
    });
}

#[test]
fn a_purchase_needs_its_deposit_and_valid_terms_and_moves_nothing_otherwise() {
    new_test_ext(|| {
        assert_noop!(buy(2, 1), Error::<Test>::InsufficientDeposit);
        assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 500));
        assert_noop!(buy(2, 0), Error::<Test>::BadTicketCount);
        assert_noop!(buy(2, 17), Error::<Test>::BadTicketCount);
        assert_noop!(buy(0, 1), Error::<Test>::BadRedundancy);
        assert_noop!(buy(5, 1), Error::<Test>::NotEnoughProviders);
        assert_noop!(
            Escrow::buy_tickets(RuntimeOrigin::signed(CLIENT), spec(2, PRICE - 1), 1),
            Error::<Test>::NotEnoughProviders
        );
        // 500 pays for 12 tickets of 40.
        assert_noop!(buy(2, 13), Error::<Test>::InsufficientDeposit);
        // A single provider's result would be trusted without its spot check.
        assert_noop!(buy(1, 1), Error::<Test>::SingleProviderTicket);
        for _ in 0..4 {
            assert_ok!(buy(2, 1));
        }
        assert_noop!(buy(2, 1), Error::<Test>::TooManyPurchases);
        next_block();
        assert_ok!(buy(2, 1));
    });
}

#[test]
fn a_purchase_whose_providers_left_before_its_draw_is_refunded() {
    new_test_ext(|| {
        assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 1_000));
        assert_ok!(buy(2, 3));
        for p in &PROVIDERS[1..] {
            assert_ok!(Providers::go_offline(RuntimeOrigin::signed(*p)));
        }
        next_block();
        System::assert_has_event(Event::TicketsRefunded { first: 0, count: 3 }.into());
        assert_eq!(Deposits::<Test>::get(CLIENT), 1_000);
        assert!((0..3).all(|id| Tickets::<Test>::get(id).is_none()));
    });
}

/// Issue 13, hole 1 on the ticket path: a buyer that never sends a prompt makes nobody a
/// no-show. Its unused ticket expires, its providers keep their stake and get the reservation
/// fee, and the buyer gets the rest.
#[test]
fn an_unused_ticket_expires_paying_reservation_fees_and_slashing_nobody() {
    new_test_ext(|| {
        assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 1_000));
        assert_ok!(buy(2, 1));
        assert_noop!(Escrow::expire_ticket(RuntimeOrigin::signed(PUBLISHER), 0), Error::<Test>::NotDrawn);
        next_block();
        let ticket = Tickets::<Test>::get(0).unwrap();
        let stakes: Vec<u64> = ticket.providers.iter().map(|p| stake(*p)).collect();
        // Usable until its expiry, settleable for the settle window after it.
        System::set_block_number(ticket.expires_at + 10);
        assert_noop!(Escrow::expire_ticket(RuntimeOrigin::signed(PUBLISHER), 0), Error::<Test>::NotExpired);
        System::set_block_number(ticket.expires_at + 11);
        assert_ok!(Escrow::expire_ticket(RuntimeOrigin::signed(PUBLISHER), 0));
        // Each provider's most was 20; 5 % of it is 1.
        System::assert_last_event(Event::TicketExpired { ticket: 0, fees: 2, refund: 38 }.into());
        for (p, before) in ticket.providers.iter().zip(stakes) {
            assert_eq!((Deposits::<Test>::get(p), stake(*p)), (1, before));
        }
        assert_eq!(Deposits::<Test>::get(CLIENT), 1_000 - 40 + 38);
        assert_noop!(Escrow::expire_ticket(RuntimeOrigin::signed(PUBLISHER), 0), Error::<Test>::UnknownTicket);
    });
}

/// `try_state` holds the ledger to the pallet account's balance.
#[test]
fn try_state_catches_a_ledger_that_owes_more_than_the_pallet_holds() {
    new_test_ext(|| {
        assert_ok!(Escrow::deposit(RuntimeOrigin::signed(CLIENT), 1_000));
        assert_ok!(buy(2, 3));
        assert_ok!(Escrow::do_try_state());
        Deposits::<Test>::mutate(CLIENT, |d| *d += 1);
        assert!(Escrow::do_try_state().is_err());
        Deposits::<Test>::mutate(CLIENT, |d| *d -= 1);
        Tickets::<Test>::mutate(0, |t| t.as_mut().unwrap().status = TicketStatus::Drawn);
        assert!(Escrow::do_try_state().is_err(), "a waiting purchase's ticket was drawn");
        Tickets::<Test>::mutate(0, |t| t.as_mut().unwrap().status = TicketStatus::AwaitingDraw);
    });
}
