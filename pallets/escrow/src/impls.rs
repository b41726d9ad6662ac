use super::*;
use agora_primitives::{pricing, RequestId, RequestStatus, MAX_REDUNDANCY};
use alloc::{collections::btree_map::BTreeMap, vec::Vec};
use codec::Encode;
use pallet_agora_providers::{BalanceOf, Candidate};
use crate::types::{Closed, Drawn};
use polkadot_sdk::frame_support::{
    ensure,
    pallet_prelude::*,
    traits::{
        fungible::{InspectHold, MutateHold},
        tokens::{Fortitude, Precision, Restriction},
        Randomness,
    },
};
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};
use polkadot_sdk::sp_crypto_hashing::blake2_256;
use polkadot_sdk::sp_runtime::{
    traits::{CheckedMul, Saturating, Zero},
    BoundedVec,
};

type Providers<T> = pallet_agora_providers::Pallet<T>;

/// A request opened, and how many providers its release and profile list (what its check of
/// eligibility read, and so the weight charged).
pub struct Created {
    // The dispatchable needs only `listed`; the benchmarks build on the id.
    #[cfg_attr(not(feature = "runtime-benchmarks"), allow(dead_code))]
    pub request: RequestId,
    pub listed: u32,
}

/// A provider a draw may pick, with its (input, output) prices per 1k tokens.
pub(crate) type Drawable<T> = Candidate<(<T as frame_system::Config>::AccountId, (BalanceOf<T>, BalanceOf<T>))>;

impl<T: Config> Pallet<T> {
    fn hold_reason() -> <T as pallet_agora_providers::Config>::RuntimeHoldReason {
        HoldReason::RequestEscrow.into()
    }

    pub(crate) fn do_create(client: T::AccountId, params: ParamsOf<T>) -> Result<Created, DispatchError> {
        pallet_agora_models::Pallet::<T>::ensure_servable(&params.release)?;
        ensure!((1..=MAX_REDUNDANCY).contains(&params.redundancy), Error::<T>::BadRedundancy);
        ensure!(params.prompt_tokens > 0 && params.max_output_tokens > 0, Error::<T>::ZeroTokens);
        ensure!(
            params.commit_blocks >= T::MinCommitBlocks::get() && params.commit_blocks <= T::MaxCommitBlocks::get(),
            Error::<T>::BadCommitWindow
        );
        let per_provider =
            pricing::max_cost(params.prompt_tokens, params.max_output_tokens, params.max_price_per_1k)
                .ok_or(Error::<T>::PriceOverflow)?;
        let escrow = per_provider
            .checked_mul(&BalanceOf::<T>::from(params.redundancy))
            .ok_or(Error::<T>::PriceOverflow)?;
        let eligible = Providers::<T>::eligible(
            &params.release,
            &params.runtime_profile,
            params.max_price_per_1k,
            params.prompt_tokens.saturating_add(params.max_output_tokens),
        );
        ensure!(eligible.listings.len() as u32 >= params.redundancy, Error::<T>::NotEnoughProviders);

        let id = NextRequestId::<T>::get();
        AwaitingDraw::<T>::try_append(id).map_err(|_| Error::<T>::TooManyRequests)?;
        T::Currency::hold(&Self::hold_reason(), &client, escrow).map_err(|_| Error::<T>::InsufficientBalance)?;
        NextRequestId::<T>::put(id.saturating_add(1));
        Requests::<T>::insert(
            id,
            RequestOf::<T> {
                client: client.clone(),
                params,
                escrow,
                status: RequestStatus::Pending,
                providers: BoundedVec::new(),
                prices: BoundedVec::new(),
                created_at: frame_system::Pallet::<T>::block_number(),
                commit_deadline: Zero::zero(),
                reveal_deadline: Zero::zero(),
            },
        );
        Self::deposit_event(Event::RequestCreated { request: id, client, escrow });
        Ok(Created { request: id, listed: eligible.listed })
    }

    pub(crate) fn do_cancel(client: T::AccountId, id: RequestId) -> DispatchResult {
        let request = Requests::<T>::get(id).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(request.client == client, Error::<T>::NotClient);
        ensure!(request.status == RequestStatus::Pending, Error::<T>::NotPending);
        AwaitingDraw::<T>::mutate(|ids| ids.retain(|i| *i != id));
        Self::finish(id, request, RequestStatus::Cancelled)?;
        Self::deposit_event(Event::RequestCancelled { request: id });
        Ok(())
    }

    /// Returns the listings rewritten beyond each provider's first.
    pub(crate) fn do_refund_expired(id: RequestId) -> Result<u32, DispatchError> {
        let request = Requests::<T>::get(id).ok_or(Error::<T>::UnknownRequest)?;
        // Pending requests are drawn (or refunded) in the next block, so they never expire; a
        // disputed one is closed by its verdicts, which anyone can force after their deadline.
        ensure!(request.status == RequestStatus::Assigned, Error::<T>::NotOpen);
        let expires = request.reveal_deadline.saturating_add(T::SettleWindow::get());
        ensure!(frame_system::Pallet::<T>::block_number() > expires, Error::<T>::NotExpired);
        let closed = Self::finish(id, request, RequestStatus::Refunded)?;
        Self::deposit_event(Event::RequestRefunded { request: id, amount: closed.refund });
        Ok(closed.relisted)
    }

    /// A seed for `subject` that nobody could know when block `after` was built, or `None`
    /// while the source has none yet. This is the `Randomness` trait's contract: a seed may only
    /// decide among commitments made before the block it says it became known in. Every draw
    /// of the chain goes through here, so no caller can time a transaction to pick its draw.
    pub fn fresh_seed(subject: &[u8], after: BlockNumberFor<T>) -> Option<T::Hash> {
        let (seed, known_since) = T::Randomness::random(subject);
        (known_since > after).then_some(seed)
    }

    /// Draws every waiting request whose fresh randomness has arrived; the rest wait on.
    /// Returns the weight used.
    pub(crate) fn draw_all() -> Weight {
        let waiting = AwaitingDraw::<T>::get();
        let mut weight = T::DbWeight::get().reads(1);
        if waiting.is_empty() {
            return weight;
        }
        let mut still_waiting = BoundedVec::<RequestId, T::MaxAssignmentsPerBlock>::new();
        for id in waiting {
            weight.saturating_accrue(T::DbWeight::get().reads(1));
            let Some(request) = Requests::<T>::get(id).filter(|r| r.status == RequestStatus::Pending) else { continue };
            match Self::fresh_seed(&(b"agora/draw", id).encode(), request.created_at) {
                Some(seed) => {
                    let drawn = Self::draw(id, request, seed);
                    weight.saturating_accrue(<T as Config>::WeightInfo::draw(drawn.listed.max(1)));
                    weight.saturating_accrue(Providers::<T>::relisting_weight(drawn.relisted));
                },
                // The bounds are equal and `still_waiting` holds a subset of `waiting`.
                None => {
                    let _ = still_waiting.try_push(id);
                },
            }
        }
        AwaitingDraw::<T>::put(still_waiting);
        weight.saturating_add(T::DbWeight::get().writes(1))
    }

    /// The providers a draw may pick for `release` under `profile` (free, priced at or under
    /// `max_price_per_1k`, with `context` tokens of context), each with its prices; and how
    /// many the index listed, which the draw's weight is charged by.
    pub(crate) fn drawable(
        release: &agora_primitives::ReleaseId,
        profile: &agora_primitives::Hash256,
        max_price_per_1k: BalanceOf<T>,
        context: u32,
    ) -> (Vec<Drawable<T>>, u32) {
        let eligible = Providers::<T>::eligible(release, profile, max_price_per_1k, context);
        let candidates = eligible
            .listings
            .into_iter()
            .map(|l| Candidate { who: (l.who, (l.price_per_1k_input, l.price_per_1k_output)), weight: l.weight })
            .collect();
        (candidates, eligible.listed)
    }

    /// Draws `request`'s providers, or refunds it.
    fn draw(id: RequestId, mut request: RequestOf<T>, seed: T::Hash) -> Drawn {
        let p = &request.params;
        let (mut candidates, listed) = Self::drawable(
            &p.release,
            &p.runtime_profile,
            p.max_price_per_1k,
            p.prompt_tokens.saturating_add(p.max_output_tokens),
        );
        if (candidates.len() as u32) < p.redundancy {
            // Eligibility changed since creation: give the money back rather than keep it.
            if Self::finish(id, request, RequestStatus::Refunded).is_ok() {
                Self::deposit_event(Event::AssignmentFailed { request: id });
            }
            // No provider was assigned, so none is released.
            return Drawn { listed, relisted: 0 };
        }
        let chosen = weighted_sample(&mut candidates, p.redundancy as usize, seed.as_ref());
        for (who, prices) in chosen {
            // Both bounds are MaxRedundancy and chosen.len() <= redundancy <= MAX_REDUNDANCY.
            let _ = request.providers.try_push(who);
            let _ = request.prices.try_push(prices);
        }
        let relisted = Self::assign(id, &mut request);
        Requests::<T>::insert(id, request);
        Drawn { listed, relisted }
    }

    /// Starts commit–reveal for `request`, whose providers and prices are set: its deadlines
    /// from this block, its providers' jobs noted (returns the listings rewritten beyond each
    /// one's first), `RequestAssigned`. The caller stores it.
    pub(crate) fn assign(id: RequestId, request: &mut RequestOf<T>) -> u32 {
        let now = frame_system::Pallet::<T>::block_number();
        request.commit_deadline = now.saturating_add(request.params.commit_blocks);
        request.reveal_deadline = request.commit_deadline.saturating_add(T::RevealWindow::get());
        request.status = RequestStatus::Assigned;
        let relisted = request.providers.iter().fold(0u32, |n, who| n.saturating_add(Providers::<T>::note_assigned(who)));
        Self::deposit_event(Event::RequestAssigned {
            request: id,
            providers: request.providers.clone(),
            commit_deadline: request.commit_deadline,
            reveal_deadline: request.reveal_deadline,
        });
        relisted
    }

    /// Pays `amount` of a request's escrow to `to`.
    pub fn pay(id: RequestId, to: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
        Requests::<T>::try_mutate(id, |slot| {
            let request = slot.as_mut().ok_or(Error::<T>::UnknownRequest)?;
            ensure!(request.status.holds_escrow(), Error::<T>::NotOpen);
            ensure!(amount <= request.escrow, Error::<T>::InsufficientBalance);
            if FellBack::<T>::contains_key(id) {
                // Its escrow is in the pallet's account: the provider's entry is credited.
                Self::credit(to, amount);
                request.escrow = request.escrow.saturating_sub(amount);
                return Ok(());
            }
            T::Currency::transfer_on_hold(
                &Self::hold_reason(),
                &request.client,
                to,
                amount,
                Precision::Exact,
                Restriction::Free,
                Fortitude::Polite,
            )?;
            request.escrow = request.escrow.saturating_sub(amount);
            Ok(())
        })
    }

    /// Closes a request with `status`, returning what is left of the escrow to the client and
    /// freeing the providers.
    pub fn close(id: RequestId, status: RequestStatus) -> Result<Closed<BalanceOf<T>>, DispatchError> {
        let request = Requests::<T>::get(id).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(request.status.holds_escrow(), Error::<T>::NotOpen);
        ensure!(!status.holds_escrow(), Error::<T>::NotOpen);
        Self::finish(id, request, status)
    }

    /// Moves an assigned request under dispute, or to wait for its audit draw (and an awaiting
    /// one under dispute): its escrow stays held, its providers stay busy and its per-request
    /// state stays, until [`Self::close`].
    pub fn mark(id: RequestId, status: RequestStatus) -> DispatchResult {
        Requests::<T>::try_mutate(id, |slot| {
            let request = slot.as_mut().ok_or(Error::<T>::UnknownRequest)?;
            let allowed = matches!(
                (request.status, status),
                (RequestStatus::Assigned, RequestStatus::Disputed | RequestStatus::AwaitingAudit) |
                    (RequestStatus::AwaitingAudit, RequestStatus::Disputed)
            );
            ensure!(allowed, Error::<T>::NotOpen);
            request.status = status;
            Ok(())
        })
    }

    fn finish(id: RequestId, mut request: RequestOf<T>, status: RequestStatus) -> Result<Closed<BalanceOf<T>>, DispatchError> {
        let mut closed = Closed { refund: Zero::zero(), relisted: 0 };
        if !status.holds_escrow() {
            closed.refund = if FellBack::<T>::contains_key(id) {
                Self::credit(&request.client, request.escrow);
                request.escrow
            } else {
                T::Currency::release(&Self::hold_reason(), &request.client, request.escrow, Precision::Exact)?
            };
            request.escrow = Zero::zero();
            for who in request.providers.iter() {
                closed.relisted.saturating_accrue(Providers::<T>::note_released(who));
            }
            Self::queue_forget(id);
        }
        request.status = status;
        Requests::<T>::insert(id, request);
        T::OnClose::on_request_closed(id);
        Ok(closed)
    }

    /// Invariants (escrow conservation): for every client, the balance held for requests equals
    /// the escrow recorded on its open requests but those a ticket fell back to (their escrow
    /// is the ledger's, [`Self::ledger_try_state`]); closed requests record none; every pending
    /// request waits for a draw; every assigned request has one price per provider.
    pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let mut per_client: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        let waiting = AwaitingDraw::<T>::get();
        for (id, request) in Requests::<T>::iter() {
            ensure!(id < NextRequestId::<T>::get(), "a request id was never issued");
            if request.status.holds_escrow() && !FellBack::<T>::contains_key(id) {
                let sum = per_client.entry(request.client.clone()).or_insert_with(Zero::zero);
                *sum = sum.saturating_add(request.escrow);
            }
            if !request.status.holds_escrow() {
                ensure!(request.escrow.is_zero(), "a closed request still records escrow");
            }
            if request.status == RequestStatus::Pending {
                ensure!(waiting.contains(&id), "a pending request is not waiting for a draw");
                ensure!(request.providers.is_empty(), "a pending request has providers");
            } else if request.status != RequestStatus::Cancelled && !request.providers.is_empty() {
                ensure!(request.providers.len() == request.prices.len(), "a provider has no price");
                ensure!(request.providers.len() as u32 == request.params.redundancy, "wrong number of providers");
            }
        }
        for id in waiting.iter() {
            ensure!(
                Requests::<T>::get(id).is_some_and(|r| r.status == RequestStatus::Pending),
                "a request waits for a draw but is not pending"
            );
        }
        for (client, sum) in per_client.iter() {
            ensure!(
                T::Currency::balance_on_hold(&Self::hold_reason(), client) == *sum,
                "held escrow differs from the open requests' escrow"
            );
        }
        for (id, _) in FellBack::<T>::iter() {
            let request = Requests::<T>::get(id).ok_or("a fell-back ticket's request is gone")?;
            ensure!(request.status != RequestStatus::Pending, "a fell-back request waits for a draw");
        }
        Self::ledger_try_state()?;
        Self::pruning_try_state()?;
        Self::tickets_try_state()
    }
}

/// Draws `k` distinct candidates, each with probability proportional to its weight among
/// those not yet drawn. Each draw takes 16 fresh bytes of `blake2(seed, i)`.
pub fn weighted_sample<A: Clone>(candidates: &mut Vec<Candidate<A>>, k: usize, seed: &[u8]) -> Vec<A> {
    let mut chosen = Vec::with_capacity(k);
    for i in 0..k {
        let total = candidates.iter().fold(0u128, |acc, c| acc.saturating_add(c.weight.max(1)));
        if total == 0 || candidates.is_empty() {
            break;
        }
        let digest = blake2_256(&(seed, i as u32).encode());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let mut point = u128::from_le_bytes(bytes) % total;
        let mut pick = candidates.len() - 1;
        for (j, c) in candidates.iter().enumerate() {
            let w = c.weight.max(1);
            if point < w {
                pick = j;
                break;
            }
            point -= w;
        }
        chosen.push(candidates.remove(pick).who);
    }
    chosen
}

