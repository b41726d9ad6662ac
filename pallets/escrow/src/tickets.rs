//! Tickets: bought from a deposit, drawn in a later block, expired when unused.

use super::*;
use crate::types::{Expired, Fallen, Purchase, PurchaseDrawn, TicketOrigin};
use agora_primitives::{pricing, RequestStatus, Ticket, TicketId, TicketSpec, TicketStatus, TicketUse, MAX_REDUNDANCY};
use codec::Encode;
use pallet_agora_providers::BalanceOf;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};
use polkadot_sdk::sp_runtime::{
    traits::{CheckedMul, Saturating, Zero},
    BoundedVec,
};

type Providers<T> = pallet_agora_providers::Pallet<T>;
pub type TicketOf<T> = Ticket<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;
pub type TicketSpecOf<T> = TicketSpec<BalanceOf<T>>;

impl<T: Config> Pallet<T> {
    /// The most one ticket of `spec` can cost its buyer: k × the whole prompt and output at
    /// the highest price it accepts.
    pub fn ticket_escrow(spec: &TicketSpecOf<T>) -> Result<BalanceOf<T>, Error<T>> {
        let one = pricing::max_cost(spec.max_prompt_tokens, spec.max_output_tokens, spec.max_price_per_1k)
            .ok_or(Error::<T>::PriceOverflow)?;
        one.checked_mul(&spec.redundancy.into()).ok_or(Error::<T>::PriceOverflow)
    }

    /// Takes `count` tickets' escrow from `buyer`'s deposit and queues them for a draw.
    /// Returns how many providers the release and profile listed (the weight charged).
    pub(crate) fn do_buy_tickets(buyer: T::AccountId, spec: TicketSpecOf<T>, count: u32) -> Result<u32, DispatchError> {
        pallet_agora_models::Pallet::<T>::ensure_servable(&spec.release)?;
        ensure!((1..=MAX_REDUNDANCY).contains(&spec.redundancy), Error::<T>::BadRedundancy);
        ensure!(spec.redundancy >= 2, Error::<T>::SingleProviderTicket);
        ensure!(spec.max_prompt_tokens > 0 && spec.max_output_tokens > 0, Error::<T>::ZeroTokens);
        ensure!((1..=T::MaxTicketsPerPurchase::get()).contains(&count), Error::<T>::BadTicketCount);
        let escrow = Self::ticket_escrow(&spec)?;
        let total = escrow.checked_mul(&count.into()).ok_or(Error::<T>::PriceOverflow)?;
        let eligible = Providers::<T>::eligible(
            &spec.release,
            &spec.runtime_profile,
            spec.max_price_per_1k,
            spec.max_prompt_tokens.saturating_add(spec.max_output_tokens),
        );
        ensure!(eligible.listings.len() as u32 >= spec.redundancy, Error::<T>::NotEnoughProviders);
        Self::debit(&buyer, total)?;

        let first = NextTicketId::<T>::get();
        let now = frame_system::Pallet::<T>::block_number();
        let purchase = Purchase { first, count, bought_at: now };
        PurchasesAwaitingDraw::<T>::try_append(purchase).map_err(|_| Error::<T>::TooManyPurchases)?;
        NextTicketId::<T>::put(first.saturating_add(count.into()));
        for id in purchase.ids() {
            let ticket = TicketOf::<T> {
                buyer: buyer.clone(),
                spec: spec.clone(),
                escrow,
                status: TicketStatus::AwaitingDraw,
                providers: BoundedVec::new(),
                prices: BoundedVec::new(),
                bought_at: now,
                expires_at: now,
            };
            Tickets::<T>::insert(id, ticket);
        }
        Self::deposit_event(Event::TicketsBought { buyer, first, count, escrow_each: escrow });
        Ok(eligible.listed)
    }

    /// Draws every waiting purchase whose fresh randomness has arrived; the rest wait on.
    /// Returns the weight used.
    pub(crate) fn draw_purchases() -> Weight {
        let waiting = PurchasesAwaitingDraw::<T>::get();
        let mut weight = T::DbWeight::get().reads(1);
        if waiting.is_empty() {
            return weight;
        }
        let mut still_waiting = BoundedVec::<Purchase<BlockNumberFor<T>>, T::MaxPurchasesAwaitingDraw>::new();
        for purchase in waiting {
            match Self::fresh_seed(&(b"agora/tickets", purchase.first).encode(), purchase.bought_at) {
                Some(seed) => {
                    let drawn = Self::draw_purchase(purchase, seed);
                    weight.saturating_accrue(<T as Config>::WeightInfo::draw_tickets(drawn.tickets.max(1), drawn.listed.max(1)));
                },
                // The bounds are equal and `still_waiting` holds a subset of `waiting`.
                None => {
                    let _ = still_waiting.try_push(purchase);
                },
            }
        }
        PurchasesAwaitingDraw::<T>::put(still_waiting);
        weight.saturating_add(T::DbWeight::get().writes(1))
    }

    /// Draws each ticket of `purchase` from one read of the listings, each with its own seed;
    /// or, if too few providers are eligible now, returns every ticket's escrow to the buyer.
    fn draw_purchase(purchase: Purchase<BlockNumberFor<T>>, seed: T::Hash) -> PurchaseDrawn {
        let Some(first) = Tickets::<T>::get(purchase.first) else {
            return PurchaseDrawn { tickets: 0, listed: 0 };
        };
        let spec = &first.spec;
        let (candidates, listed) = Self::drawable(
            &spec.release,
            &spec.runtime_profile,
            spec.max_price_per_1k,
            spec.max_prompt_tokens.saturating_add(spec.max_output_tokens),
        );
        if (candidates.len() as u32) < spec.redundancy {
            // Every ticket of the purchase holds the first one's escrow, for the same buyer.
            purchase.ids().for_each(Tickets::<T>::remove);
            Self::credit(&first.buyer, first.escrow.saturating_mul(purchase.count.into()));
            Self::deposit_event(Event::TicketsRefunded { first: purchase.first, count: purchase.count });
            return PurchaseDrawn { tickets: purchase.count, listed };
        }
        let expires_at = frame_system::Pallet::<T>::block_number().saturating_add(T::TicketLifetime::get());
        let mut drawn = alloc::collections::BTreeSet::new();
        // Every ticket of a purchase is the first one but for its providers, and none can go
        // before its draw: each is written whole, never read (its proof is not paid again).
        let template = TicketOf::<T> { status: TicketStatus::Drawn, expires_at, ..first.clone() };
        for id in purchase.ids() {
            let mut ticket = template.clone();
            let chosen = weighted_sample(&mut candidates.clone(), spec.redundancy as usize, (seed, id).encode().as_slice());
            for (who, prices) in chosen {
                drawn.insert(who.clone());
                // Both bounds are MaxRedundancy and chosen.len() <= redundancy <= MAX_REDUNDANCY.
                let _ = ticket.providers.try_push(who);
                let _ = ticket.prices.try_push(prices);
            }
            Tickets::<T>::insert(id, ticket);
        }
        // A drawn provider signs outcomes that can slash it until the ticket can no longer be
        // settled: its stake stays held that long (settlement extends it for a challenge).
        let settleable_until = expires_at.saturating_add(T::SettleWindow::get());
        drawn.iter().for_each(|who| Providers::<T>::expose_until(who, settleable_until));
        Self::deposit_event(Event::TicketsDrawn { first: purchase.first, count: purchase.count, expires_at });
        PurchaseDrawn { tickets: purchase.count, listed }
    }

    /// Closes a drawn ticket nobody used, once the settle window after its expiry has passed:
    /// each drawn provider is paid its reservation fee (its share of the most the ticket could
    /// have paid it), and the rest goes back to the buyer's deposit. Nobody is slashed: an
    /// unused ticket proves nothing about its providers.
    pub(crate) fn do_expire(id: TicketId) -> Result<Expired<BalanceOf<T>>, DispatchError> {
        let ticket = Tickets::<T>::get(id).ok_or(Error::<T>::UnknownTicket)?;
        let open = match ticket.status {
            TicketStatus::AwaitingDraw => return Err(Error::<T>::NotDrawn.into()),
            TicketStatus::Drawn => u8::MAX,
            // Only the providers whose outcome nobody claimed are owed a fee.
            TicketStatus::Settled(settlement) => settlement.open,
        };
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now > ticket.expires_at.saturating_add(T::SettleWindow::get()), Error::<T>::NotExpired);
        let mut fees = BalanceOf::<T>::zero();
        let owed = ticket.providers.iter().zip(ticket.prices.iter()).enumerate().filter(|(i, _)| open & (1 << i) != 0);
        for (_, (who, prices)) in owed {
            // The escrow covers k × the most any provider can cost, so the fees fit in it.
            let fee = Self::ticket_reservation_fee(&ticket.spec, *prices).min(ticket.escrow.saturating_sub(fees));
            Self::credit(who, fee);
            fees = fees.saturating_add(fee);
        }
        let refund = ticket.escrow.saturating_sub(fees);
        Self::credit(&ticket.buyer, refund);
        Tickets::<T>::remove(id);
        Self::deposit_event(Event::TicketExpired { ticket: id, fees, refund });
        Ok(Expired { fees, refund })
    }

    /// What a drawn provider of a ticket of `spec` is owed for keeping capacity for a prompt
    /// it may never have been sent: `TicketReservationFee` of the most the ticket could pay it.
    pub fn ticket_reservation_fee(spec: &TicketSpecOf<T>, (price_in, price_out): (BalanceOf<T>, BalanceOf<T>)) -> BalanceOf<T> {
        let full = pricing::cost(spec.max_prompt_tokens, price_in, spec.max_output_tokens, price_out).unwrap_or_default();
        T::TicketReservationFee::get() * full
    }

    /// Takes drawn (or partly settled) ticket `id` out of storage to be settled, if it can
    /// still be: up to the settle window after its expiry (then it can only expire). Its escrow
    /// is the caller's to share out through [`Self::credit`], to the last unit, or to keep in
    /// the ticket it puts back with [`Self::hold_ticket`].
    pub fn take_settleable_ticket(id: TicketId) -> Result<TicketOf<T>, DispatchError> {
        let ticket = Tickets::<T>::get(id).ok_or(Error::<T>::UnknownTicket)?;
        ensure!(ticket.status != TicketStatus::AwaitingDraw, Error::<T>::NotDrawn);
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now <= ticket.expires_at.saturating_add(T::SettleWindow::get()), Error::<T>::TicketClosed);
        Tickets::<T>::remove(id);
        Ok(ticket)
    }

    /// Turns drawn ticket `id`, used under `authorised` (the caller has checked its buyer's
    /// signature), into an assigned request of the same providers at their drawn prices, in
    /// commit–reveal from this block: what a ticket nobody settled from a bundle falls back to
    /// (its buyer never settled, or its outcomes have no majority). The request keeps k × the
    /// most the `Use` can cost in the pallet's account ([`FellBack`]: paid and refunded through
    /// the ledger), and the rest of the ticket's escrow goes back to the buyer's entry. Only the
    /// buyer may do this before `TicketFallbackGrace` blocks after expiry; nobody after the
    /// settle window.
    pub fn fall_back_ticket(id: TicketId, caller: &T::AccountId, authorised: &TicketUse) -> Result<Fallen, DispatchError> {
        let ticket = Tickets::<T>::get(id).ok_or(Error::<T>::UnknownTicket)?;
        match ticket.status {
            TicketStatus::AwaitingDraw => return Err(Error::<T>::NotDrawn.into()),
            TicketStatus::Settled(_) => return Err(Error::<T>::TicketSettled.into()),
            TicketStatus::Drawn => {},
        }
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now <= ticket.expires_at.saturating_add(T::SettleWindow::get()), Error::<T>::TicketClosed);
        let open_to_all = now > ticket.expires_at.saturating_add(T::TicketFallbackGrace::get());
        ensure!(*caller == ticket.buyer || open_to_all, Error::<T>::FallbackTooEarly);
        let spec = &ticket.spec;
        let params = ParamsOf::<T> {
            release: spec.release,
            runtime_profile: spec.runtime_profile,
            prompt_hash: authorised.prompt_hash,
            prompt_tokens: authorised.prompt_tokens,
            max_output_tokens: authorised.max_output_tokens,
            max_price_per_1k: spec.max_price_per_1k,
            redundancy: spec.redundancy,
            sampling: authorised.sampling,
            commit_blocks: T::FallbackCommitBlocks::get(),
        };
        // The `Use` is within the spec, so this is at most the ticket's escrow.
        let escrow = pricing::max_cost(params.prompt_tokens, params.max_output_tokens, params.max_price_per_1k)
            .and_then(|one| one.checked_mul(&spec.redundancy.into()))
            .ok_or(Error::<T>::PriceOverflow)?
            .min(ticket.escrow);
        Tickets::<T>::remove(id);
        let refund = ticket.escrow.saturating_sub(escrow);
        Self::credit(&ticket.buyer, refund);
        let request = NextRequestId::<T>::get();
        NextRequestId::<T>::put(request.saturating_add(1));
        let use_hash = authorised.hash();
        FellBack::<T>::insert(request, TicketOrigin { ticket: id, use_hash });
        let mut record = RequestOf::<T> {
            client: ticket.buyer,
            params,
            escrow,
            status: RequestStatus::Pending,
            providers: ticket.providers,
            prices: ticket.prices,
            created_at: now,
            commit_deadline: now,
            reveal_deadline: now,
        };
        let relisted = Self::assign(request, &mut record);
        Self::deposit_event(Event::TicketFellBack { ticket: id, request, use_hash, refund });
        Requests::<T>::insert(request, record);
        Ok(Fallen { request, relisted })
    }

    /// Puts back ticket `id`, taken to be settled, holding what is left of its escrow for the
    /// outcomes still to be claimed.
    pub fn hold_ticket(id: TicketId, ticket: TicketOf<T>) {
        Tickets::<T>::insert(id, ticket);
    }

    /// Every waiting purchase's tickets exist and await their draw, and every ticket awaiting
    /// its draw is in a waiting purchase; a drawn ticket has k providers, each with a price.
    pub(crate) fn tickets_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let waiting = PurchasesAwaitingDraw::<T>::get();
        let mut awaiting = 0usize;
        for purchase in waiting.iter() {
            for id in purchase.ids() {
                let ticket = Tickets::<T>::get(id).ok_or("a waiting purchase's ticket is missing")?;
                ensure!(ticket.status == TicketStatus::AwaitingDraw, "a waiting purchase's ticket was drawn");
                awaiting += 1;
            }
        }
        for (id, ticket) in Tickets::<T>::iter() {
            ensure!(id < NextTicketId::<T>::get(), "a ticket id was never issued");
            match ticket.status {
                TicketStatus::AwaitingDraw => {
                    ensure!(ticket.providers.is_empty(), "an undrawn ticket has providers");
                    awaiting = awaiting.checked_sub(1).ok_or("a ticket awaits a draw outside any purchase")?;
                },
                TicketStatus::Settled(settlement) => {
                    ensure!(settlement.open != 0, "a settled ticket with nothing left to claim was kept");
                    ensure!(u32::from(settlement.open) >> ticket.spec.redundancy == 0, "a claim is open at a position with no provider");
                },
                TicketStatus::Drawn => {
                    ensure!(ticket.providers.len() as u32 == ticket.spec.redundancy, "a drawn ticket has the wrong number of providers");
                    ensure!(ticket.spec.redundancy >= 2, "a single-provider ticket was sold");
                    ensure!(ticket.providers.len() == ticket.prices.len(), "a drawn provider has no price");
                },
            }
        }
        ensure!(awaiting == 0, "a waiting purchase counts a ticket twice");
        Ok(())
    }
}
