//! Tickets nobody settled from a bundle, and buyers who signed two `Use`s of one ticket.
//!
//! A bundle settles a ticket only with a strict majority of signed outcomes, and only if
//! someone sends it: a buyer who has its answer may never settle (and would pay only the
//! reservation fees at expiry), and outcomes without a majority settle nothing. Either way the
//! ticket falls back to the request path: whoever holds the buyer's signed `Use` (its buyer at
//! any time, anyone `TicketFallbackGrace` blocks after its expiry) makes it an assigned request
//! of the same providers at their drawn prices. Its providers commit and reveal the results
//! they journaled, the tally pays, slashes or opens a dispute for verifiers, and a provider that
//! acknowledged the `Use` and never answers is a no-show (`prove_ack` takes its signature over
//! the ticket's `Use`).
//!
//! The buyer signs one `Use` per ticket. Two of them are provable equivocation: a provider that
//! served the other one brings it, the buyer's signature, and is paid the most it could have
//! earned under the `Use` that counts: from the share held for it if a bundle settled the ticket
//! without it, or from the request's escrow (as its reservation, in the receipt) if the ticket
//! fell back. Equivocating never buys a second answer for the price of one, and the provider it
//! used loses nothing.

use super::*;
use agora_primitives::{RequestId, RequestStatus, TicketStatus, TicketUse};
use pallet_agora_escrow::{FellBack, Requests, Tickets};
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system;
use polkadot_sdk::sp_runtime::traits::Verify;

type Escrow<T> = pallet_agora_escrow::Pallet<T>;

impl<T: Config> Pallet<T> {
    /// Falls ticket `authorised.ticket` back to commit–reveal under `authorised`, signed by its
    /// buyer. Returns the request and the listings its providers' new jobs rewrote beyond each
    /// one's first.
    pub(crate) fn do_fall_back(
        caller: T::AccountId,
        authorised: TicketUse,
        buyer_signature: T::OffchainSignature,
    ) -> Result<pallet_agora_escrow::types::Fallen, DispatchError> {
        let id = authorised.ticket;
        let ticket = Tickets::<T>::get(id).ok_or(pallet_agora_escrow::Error::<T>::UnknownTicket)?;
        ensure!(authorised.chain == Self::chain(), Error::<T>::WrongChain);
        ensure!(ticket.spec.admits(&authorised), Error::<T>::UseExceedsTicket);
        ensure!(buyer_signature.verify(&authorised.signing_payload()[..], &ticket.buyer), Error::<T>::BadUseSignature);
        Escrow::<T>::fall_back_ticket(id, &caller, &authorised)
    }

    /// Pays `provider` for having served `authorised`, a `Use` of its ticket the buyer signed
    /// beside the one the ticket was settled under or fell back with. `request` names the
    /// request it fell back to, or `None` for a ticket a bundle settled without `provider`.
    pub(crate) fn do_prove_equivocation(
        provider: T::AccountId,
        authorised: TicketUse,
        buyer_signature: T::OffchainSignature,
        request: Option<RequestId>,
    ) -> DispatchResult {
        ensure!(authorised.chain == Self::chain(), Error::<T>::WrongChain);
        let id = authorised.ticket;
        match request {
            None => Self::equivocated_settlement(provider, authorised, buyer_signature),
            Some(request) => {
                let origin = FellBack::<T>::get(request).filter(|o| o.ticket == id).ok_or(Error::<T>::NotFellBack)?;
                ensure!(origin.use_hash != authorised.hash(), Error::<T>::NotEquivocation);
                let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
                ensure!(r.status == RequestStatus::Assigned, Error::<T>::NotActive);
                ensure!(r.providers.contains(&provider), Error::<T>::NotAssigned);
                ensure!(frame_system::Pallet::<T>::block_number() <= r.reveal_deadline, Error::<T>::AckClosed);
                ensure!(buyer_signature.verify(&authorised.signing_payload()[..], &r.client), Error::<T>::BadUseSignature);
                // Its result is for another prompt: it is judged by this proof, not a reveal.
                ensure!(!Commitments::<T>::contains_key(request, &provider), Error::<T>::AlreadyCommitted);
                ensure!(!Equivocated::<T>::contains_key(request, &provider), Error::<T>::AlreadyProven);
                Equivocated::<T>::insert(request, &provider, ());
                Self::deposit_event(Event::Equivocation { ticket: id, provider, paid: None });
                Ok(())
            },
        }
    }

    fn equivocated_settlement(provider: T::AccountId, authorised: TicketUse, buyer_signature: T::OffchainSignature) -> DispatchResult {
        let id = authorised.ticket;
        let ticket = Escrow::<T>::take_settleable_ticket(id)?;
        let TicketStatus::Settled(settlement) = ticket.status else { return Err(Error::<T>::NotSettled.into()) };
        ensure!(settlement.use_hash != authorised.hash(), Error::<T>::NotEquivocation);
        ensure!(buyer_signature.verify(&authorised.signing_payload()[..], &ticket.buyer), Error::<T>::BadUseSignature);
        let position = ticket.providers.iter().position(|p| *p == provider).ok_or(Error::<T>::NotTicketProvider)?;
        ensure!(settlement.open & (1 << position) != 0, Error::<T>::NotOpen);
        let prices = ticket.prices.get(position).copied().ok_or(Error::<T>::NotTicketProvider)?;
        let share = Self::held_share(&settlement, prices, ticket.escrow);
        Escrow::<T>::credit(&provider, share);
        Self::deposit_event(Event::Equivocation { ticket: id, provider, paid: Some(share) });
        Self::close_position(id, ticket, settlement, position, share);
        Ok(())
    }

    /// An equivocation is proven only for an open request a ticket fell back to, by one of its
    /// providers, which committed nothing.
    pub(crate) fn fallback_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        for (request, who, ()) in Equivocated::<T>::iter() {
            let r = Requests::<T>::get(request).ok_or("an equivocation for an unknown request")?;
            ensure!(r.status.holds_escrow(), "an equivocation outlived its request");
            ensure!(FellBack::<T>::contains_key(request), "an equivocation for a request no ticket fell back to");
            ensure!(r.providers.contains(&who), "an equivocation proven by an unassigned account");
            ensure!(!Commitments::<T>::contains_key(request, &who), "an equivocated provider committed");
        }
        Ok(())
    }
}
