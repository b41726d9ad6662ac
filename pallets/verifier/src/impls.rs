use super::*;
use agora_primitives::{
    commitment::commitment, pricing, tally, Hash256, JobOutcome, Outcome, RequestId, RequestStatus,
};
use alloc::vec::Vec;
use pallet_agora_escrow::{Requests, RequestOf};
use pallet_agora_providers::BalanceOf;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system;
use polkadot_sdk::sp_runtime::{
    traits::{Saturating, Zero},
    BoundedVec,
};

type Providers<T> = pallet_agora_providers::Pallet<T>;
type Escrow<T> = pallet_agora_escrow::Pallet<T>;

/// Commitments and reveals only matter while a request is in its commit–reveal phase; whoever
/// closes it (settlement here, or an expiry refund in the escrow pallet), they go.
impl<T: Config> pallet_agora_escrow::OnRequestClosed for Pallet<T> {
    fn on_request_closed(request: RequestId) {
        let _ = Commitments::<T>::clear_prefix(request, agora_primitives::MAX_REDUNDANCY, None);
        let _ = Reveals::<T>::clear_prefix(request, agora_primitives::MAX_REDUNDANCY, None);
    }
}

impl<T: Config> Pallet<T> {
    /// The request, if `who` is one of its providers and it is in its commit–reveal phase.
    fn active_for(request: RequestId, who: &T::AccountId) -> Result<RequestOf<T>, DispatchError> {
        let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(r.status == RequestStatus::Assigned, Error::<T>::NotActive);
        ensure!(r.providers.contains(who), Error::<T>::NotAssigned);
        Ok(r)
    }

    fn all_committed(request: RequestId, r: &RequestOf<T>) -> bool {
        r.providers.iter().all(|p| Commitments::<T>::contains_key(request, p))
    }

    pub(crate) fn do_commit(who: T::AccountId, request: RequestId, hash: Hash256) -> DispatchResult {
        let r = Self::active_for(request, &who)?;
        ensure!(frame_system::Pallet::<T>::block_number() <= r.commit_deadline, Error::<T>::CommitClosed);
        ensure!(!Commitments::<T>::contains_key(request, &who), Error::<T>::AlreadyCommitted);
        Commitments::<T>::insert(request, &who, hash);
        Self::deposit_event(Event::Committed { request, provider: who });
        Ok(())
    }

    pub(crate) fn do_reveal(who: T::AccountId, request: RequestId, outcome: Outcome, salt: Hash256) -> DispatchResult {
        let r = Self::active_for(request, &who)?;
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now <= r.reveal_deadline, Error::<T>::RevealClosed);
        ensure!(now > r.commit_deadline || Self::all_committed(request, &r), Error::<T>::RevealNotOpen);
        let committed = Commitments::<T>::get(request, &who).ok_or(Error::<T>::NotCommitted)?;
        ensure!(!Reveals::<T>::contains_key(request, &who), Error::<T>::AlreadyRevealed);
        ensure!(outcome.token_count <= r.params.max_output_tokens, Error::<T>::TooManyTokens);
        ensure!(commitment(request, &who, &outcome, &salt) == committed, Error::<T>::CommitmentMismatch);
        Reveals::<T>::insert(request, &who, outcome);
        Self::deposit_event(Event::Revealed { request, provider: who, outcome });
        Ok(())
    }

    /// Returns how many providers were assigned (the settle weight's parameter).
    pub(crate) fn do_settle(request: RequestId) -> Result<u32, DispatchError> {
        let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(r.status == RequestStatus::Assigned, Error::<T>::NotActive);
        let reveals: Vec<(T::AccountId, Outcome)> = r
            .providers
            .iter()
            .filter_map(|p| Reveals::<T>::get(request, p).map(|o| (p.clone(), o)))
            .collect();
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now > r.reveal_deadline || reveals.len() == r.providers.len(), Error::<T>::TooEarly);

        let outcomes: Vec<Outcome> = reveals.iter().map(|(_, o)| *o).collect();
        let assigned = r.providers.len() as u32;
        let winning = tally::strict_majority(&outcomes, assigned);
        if winning.is_none() && !reveals.is_empty() {
            Escrow::<T>::close(request, RequestStatus::Disputed)?;
            Self::deposit_event(Event::Disputed { request });
            return Ok(assigned);
        }

        let mut paid: BoundedVec<(T::AccountId, BalanceOf<T>), _> = BoundedVec::new();
        let mut slashed: BoundedVec<(T::AccountId, BalanceOf<T>, JobOutcome), _> = BoundedVec::new();
        let mut paid_total: BalanceOf<T> = Zero::zero();
        for (provider, (price_in, price_out)) in r.providers.iter().zip(r.prices.iter()) {
            let revealed = reveals.iter().find(|(p, _)| p == provider).map(|(_, o)| *o);
            let job = match (revealed, winning) {
                (Some(o), Some(w)) if o == w => JobOutcome::Agreed,
                (Some(_), _) => JobOutcome::Wrong,
                (None, _) => JobOutcome::NoShow,
            };
            Providers::<T>::record_outcome(provider, job);
            match (job, winning) {
                (JobOutcome::Agreed, Some(w)) => {
                    // Bounded by the escrow: prices were at most the client's maximum at
                    // assignment and the token count at most the request's limit.
                    let due = pricing::cost(r.params.prompt_tokens, *price_in, w.token_count, *price_out)
                        .unwrap_or_else(Zero::zero);
                    if !due.is_zero() {
                        Escrow::<T>::pay(request, provider, due)?;
                    }
                    paid_total = paid_total.saturating_add(due);
                    let _ = paid.try_push((provider.clone(), due));
                },
                _ => {
                    let fraction = if job == JobOutcome::Wrong { T::WrongResultSlash::get() } else { T::NoShowSlash::get() };
                    let taken = Providers::<T>::slash(provider, fraction);
                    let _ = slashed.try_push((provider.clone(), taken, job));
                },
            }
        }
        let status = if winning.is_some() { RequestStatus::Settled } else { RequestStatus::Refunded };
        let refunded = Escrow::<T>::close(request, status)?;
        Receipts::<T>::insert(
            request,
            ReceiptOf::<T> {
                request,
                client: r.client,
                release: r.params.release,
                winning,
                paid,
                slashed,
                refunded,
                settled_at: now,
            },
        );
        Self::deposit_event(match winning {
            Some(winning) => Event::Settled { request, winning, paid: paid_total, refunded },
            None => Event::Abandoned { request, refunded },
        });
        Ok(assigned)
    }

    /// Invariants: commitments and reveals exist only for requests in their commit–reveal
    /// phase and only from their providers; every reveal has a commitment; receipts exist only
    /// for closed requests and account for the escrow to the last unit.
    pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        for (request, who, _) in Commitments::<T>::iter() {
            let r = Requests::<T>::get(request).ok_or("a commitment for an unknown request")?;
            ensure!(r.status == RequestStatus::Assigned, "a commitment outlived its request's phase");
            ensure!(r.providers.contains(&who), "a commitment from an unassigned account");
        }
        for (request, who, _) in Reveals::<T>::iter() {
            ensure!(Commitments::<T>::contains_key(request, &who), "a reveal without a commitment");
        }
        for (request, receipt) in Receipts::<T>::iter() {
            let r = Requests::<T>::get(request).ok_or("a receipt for an unknown request")?;
            ensure!(
                matches!(r.status, RequestStatus::Settled | RequestStatus::Refunded),
                "a receipt for an open request"
            );
            let paid = receipt.paid.iter().fold(BalanceOf::<T>::zero(), |acc, (_, a)| acc.saturating_add(*a));
            let original = pricing::max_cost(r.params.prompt_tokens, r.params.max_output_tokens, r.params.max_price_per_1k)
                .map(|c| c.saturating_mul(BalanceOf::<T>::from(r.params.redundancy)))
                .ok_or("escrow overflow in a stored request")?;
            ensure!(paid.saturating_add(receipt.refunded) == original, "a receipt does not account for the escrow");
        }
        Ok(())
    }
}
