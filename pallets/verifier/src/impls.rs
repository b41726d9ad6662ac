use super::*;
use agora_primitives::{pricing, DisputeKind, Hash256, JobOutcome, Outcome, RequestId, RequestStatus};
use agora_verifier::audit::{audit_probability, is_audited, AuditPolicy};
use agora_verifier::{commitment::commitment, tally};
use alloc::vec::Vec;
use polkadot_sdk::sp_crypto_hashing::blake2_256;
use polkadot_sdk::sp_runtime::traits::SaturatedConversion;
use pallet_agora_escrow::{Requests, RequestOf};
use pallet_agora_providers::BalanceOf;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system;
use polkadot_sdk::sp_runtime::{
    traits::{Saturating, Zero},
    BoundedVec, Perbill,
};

type Providers<T> = pallet_agora_providers::Pallet<T>;
type Escrow<T> = pallet_agora_escrow::Pallet<T>;

/// What `settle` did, for its weight.
pub(crate) struct SettleReport {
    /// The providers assigned: the benchmark's parameter.
    pub assigned: u32,
    /// Whether verifiers were looked for (the dearer path).
    pub looked_for_verifiers: bool,
    /// The listings rewritten beyond each provider's first.
    pub relisted: u32,
}

/// Commitments and reveals only matter while a request is in its commit–reveal phase; whoever
/// closes it (settlement here, or an expiry refund in the escrow pallet), they go. The receipt
/// and resolution stay as long as the request's record, and a challenge keeps both.
impl<T: Config> pallet_agora_escrow::OnRequestClosed for Pallet<T> {
    fn on_request_closed(request: RequestId) {
        let _ = Commitments::<T>::clear_prefix(request, agora_primitives::MAX_REDUNDANCY, None);
        let _ = Reveals::<T>::clear_prefix(request, agora_primitives::MAX_REDUNDANCY, None);
        let _ = Acknowledged::<T>::clear_prefix(request, agora_primitives::MAX_REDUNDANCY, None);
        let _ = Equivocated::<T>::clear_prefix(request, agora_primitives::MAX_REDUNDANCY, None);
    }

    /// Kept while a challenge is under way, and for a retention after it is resolved, so that
    /// a resolution made in the block its record falls due is seen.
    fn keeps_record(request: RequestId) -> bool {
        let retention = <T as pallet_agora_escrow::Config>::RecordRetention::get();
        let now = frame_system::Pallet::<T>::block_number();
        Disputes::<T>::contains_key(request) ||
            Resolutions::<T>::get(request).is_some_and(|r| now < r.resolved_at.saturating_add(retention))
    }

    fn on_request_forgotten(request: RequestId) {
        Receipts::<T>::remove(request);
        Resolutions::<T>::remove(request);
    }

    /// Not measured: the reads and writes, and the proof of the largest values read or removed
    /// with a trie path (about 1 KB) for each of the three keys.
    fn forget_weight() -> Weight {
        let values = DisputeOf::<T>::max_encoded_len()
            .saturating_add(ResolutionOf::<T>::max_encoded_len())
            .saturating_add(ReceiptOf::<T>::max_encoded_len());
        T::DbWeight::get()
            .reads_writes(2, 2)
            .saturating_add(Weight::from_parts(0, values.saturating_add(3 * 1024) as u64))
    }
}

impl<T: Config> Pallet<T> {
    /// This chain's genesis hash, which every signed `Use` names: known from block 1 on (the
    /// first block records its parent's hash), before any transaction.
    pub fn chain() -> Hash256 {
        let genesis = frame_system::Pallet::<T>::block_hash(polkadot_sdk::frame_system::pallet_prelude::BlockNumberFor::<T>::zero());
        let (bytes, mut out) = (genesis.as_ref(), [0u8; 32]);
        let n = bytes.len().min(32);
        out[..n].copy_from_slice(&bytes[..n]);
        out
    }

    /// The request, if `who` is one of its providers and it is in its commit–reveal phase.
    fn active_for(request: RequestId, who: &T::AccountId) -> Result<RequestOf<T>, DispatchError> {
        let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(r.status == RequestStatus::Assigned, Error::<T>::NotActive);
        ensure!(r.providers.contains(who), Error::<T>::NotAssigned);
        Ok(r)
    }

    /// Every provider committed, or proved that it served another `Use` and so never will.
    fn all_committed(request: RequestId, r: &RequestOf<T>) -> bool {
        r.providers.iter().all(|p| Commitments::<T>::contains_key(request, p) || Equivocated::<T>::contains_key(request, p))
    }

    pub(crate) fn do_commit(who: T::AccountId, request: RequestId, hash: Hash256) -> DispatchResult {
        let r = Self::active_for(request, &who)?;
        ensure!(frame_system::Pallet::<T>::block_number() <= r.commit_deadline, Error::<T>::CommitClosed);
        ensure!(!Commitments::<T>::contains_key(request, &who), Error::<T>::AlreadyCommitted);
        // It served another `Use` of the ticket: its result is for another prompt.
        ensure!(!Equivocated::<T>::contains_key(request, &who), Error::<T>::AlreadyProven);
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

    /// Returns how many providers were assigned (the settle weight's parameter), whether
    /// verifiers were looked for (the dearer path) and the listings rewritten beyond each
    /// provider's first.
    pub(crate) fn do_settle(request: RequestId) -> Result<SettleReport, DispatchError> {
        let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(r.status == RequestStatus::Assigned, Error::<T>::NotActive);
        let reveals = Self::reveals_of(request, &r);
        let now = frame_system::Pallet::<T>::block_number();
        let equivocated = r.providers.iter().filter(|p| Equivocated::<T>::contains_key(request, p)).count();
        ensure!(now > r.reveal_deadline || reveals.len() + equivocated == r.providers.len(), Error::<T>::TooEarly);

        let outcomes: Vec<Outcome> = reveals.iter().map(|(_, o)| *o).collect();
        let assigned = r.providers.len() as u32;
        let winning = tally::strict_majority(&outcomes, assigned);
        let mut looked_for_verifiers = false;
        let mut relisted = 0;
        match winning {
            None if !reveals.is_empty() => {
                let mut distinct = outcomes;
                distinct.sort_unstable();
                distinct.dedup();
                looked_for_verifiers = true;
                if Self::verifier_candidates(&r).is_empty() {
                    // Nobody can judge the results: nobody is paid or blamed for them.
                    Self::deposit_event(Event::Disputed { request });
                    relisted = Self::close_with(request, &r, &reveals, |_| None, None)?;
                } else {
                    Self::open_dispute(request, DisputeKind::SplitVote, distinct)?;
                    Escrow::<T>::mark(request, RequestStatus::Disputed)?;
                }
            },
            // Whether it is audited is drawn in a later block, from randomness nobody knows now.
            Some(_) if assigned == 1 => {
                Self::queue_draw(request, now)?;
                Escrow::<T>::mark(request, RequestStatus::AwaitingAudit)?;
                Self::deposit_event(Event::AwaitingAudit { request });
            },
            _ => relisted = Self::close_with(request, &r, &reveals, |o| winning.map(|w| *o == w), winning)?,
        }
        Ok(SettleReport { assigned, looked_for_verifiers, relisted })
    }

    /// What each of the request's providers revealed, in assignment order.
    pub(crate) fn reveals_of(request: RequestId, r: &RequestOf<T>) -> Vec<(T::AccountId, Outcome)> {
        r.providers.iter().filter_map(|p| Reveals::<T>::get(request, p).map(|o| (p.clone(), o))).collect()
    }

    /// Closes an assigned or disputed request. `judge` says of each revealed result whether it
    /// is right (paid, reputation up), wrong (slashed, reputation down) or undecided (neither);
    /// providers that revealed nothing are no-shows if they took the job, and are paid the
    /// reservation fee if nobody can tell they had the prompt. The rest of the escrow goes
    /// back to the client and the receipt names `winning`. Returns the listings rewritten
    /// beyond each provider's first.
    pub(crate) fn close_with(
        request: RequestId,
        r: &RequestOf<T>,
        reveals: &[(T::AccountId, Outcome)],
        judge: impl Fn(&Outcome) -> Option<bool>,
        winning: Option<Outcome>,
    ) -> Result<u32, DispatchError> {
        let mut relisted = 0u32;
        let mut paid: BoundedVec<(T::AccountId, BalanceOf<T>), _> = BoundedVec::new();
        let mut slashed: BoundedVec<(T::AccountId, BalanceOf<T>, JobOutcome), _> = BoundedVec::new();
        let mut reserved: BoundedVec<(T::AccountId, BalanceOf<T>), _> = BoundedVec::new();
        let mut paid_total: BalanceOf<T> = Zero::zero();
        for (provider, (price_in, price_out)) in r.providers.iter().zip(r.prices.iter()) {
            let revealed = reveals.iter().find(|(p, _)| p == provider).map(|(_, o)| *o);
            let job = match revealed.map(|o| (o, judge(&o))) {
                Some((o, Some(true))) => {
                    // Bounded by the escrow: prices were at most the client's maximum at
                    // assignment and the token count at most the request's limit.
                    let due = pricing::cost(r.params.prompt_tokens, *price_in, o.token_count, *price_out)
                        .unwrap_or_else(Zero::zero);
                    if !due.is_zero() {
                        Escrow::<T>::pay(request, provider, due)?;
                    }
                    paid_total = paid_total.saturating_add(due);
                    let _ = paid.try_push((provider.clone(), due));
                    JobOutcome::Agreed
                },
                Some((_, Some(false))) => JobOutcome::Wrong,
                Some((_, None)) => continue,
                // Its buyer made it serve another `Use`: paid its most, as a reservation.
                None if Equivocated::<T>::contains_key(request, provider) => {
                    let due = Self::most_pay(r, (*price_in, *price_out));
                    if !due.is_zero() {
                        Escrow::<T>::pay(request, provider, due)?;
                    }
                    let _ = reserved.try_push((provider.clone(), due));
                    continue;
                },
                None if Self::took_the_job(request, provider) => JobOutcome::NoShow,
                None => {
                    let fee = Self::reservation_fee(r, (*price_in, *price_out));
                    if !fee.is_zero() {
                        Escrow::<T>::pay(request, provider, fee)?;
                    }
                    let _ = reserved.try_push((provider.clone(), fee));
                    continue;
                },
            };
            let fraction = match job {
                JobOutcome::Agreed => Perbill::zero(),
                JobOutcome::Wrong => T::WrongResultSlash::get(),
                JobOutcome::NoShow => T::NoShowSlash::get(),
            };
            let punished = Providers::<T>::punish(provider, Some(job), fraction);
            relisted.saturating_accrue(punished.relisted);
            if job != JobOutcome::Agreed {
                let _ = slashed.try_push((provider.clone(), punished.taken, job));
            }
        }
        let status = if paid.is_empty() { RequestStatus::Refunded } else { RequestStatus::Settled };
        let closed = Escrow::<T>::close(request, status)?;
        relisted.saturating_accrue(closed.relisted);
        let refunded = closed.refund;
        let now = frame_system::Pallet::<T>::block_number();
        if winning.is_some() {
            // A challenge can still take back what the winners were paid: their stake stays.
            let challengeable_until = now.saturating_add(T::ChallengeWindow::get());
            paid.iter().for_each(|(provider, _)| Providers::<T>::expose_until(provider, challengeable_until));
        }
        Receipts::<T>::insert(
            request,
            ReceiptOf::<T> {
                request,
                client: r.client.clone(),
                release: r.params.release,
                winning,
                paid,
                slashed,
                reserved,
                refunded,
                settled_at: now,
            },
        );
        Self::deposit_event(match winning {
            Some(winning) => Event::Settled { request, winning, paid: paid_total, refunded },
            None => Event::Abandoned { request, refunded },
        });
        Ok(relisted)
    }

    /// Whether a single-provider request is spot-checked: `seed` (randomness that became known
    /// after the request was settled) against the probability of `agora_verifier::audit`.
    pub(crate) fn drawn_for_audit(request: RequestId, r: &RequestOf<T>, revealed: &Outcome, seed: &[u8]) -> bool {
        let (Some(provider), Some((price_in, price_out))) = (r.providers.first(), r.prices.first()) else { return false };
        let Some(record) = pallet_agora_providers::Providers::<T>::get(provider) else { return false };
        let value = pricing::cost(r.params.prompt_tokens, *price_in, revealed.token_count, *price_out).unwrap_or_else(Zero::zero);
        let slash = T::WrongResultSlash::get() * record.stake;
        let policy = AuditPolicy {
            floor: T::AuditFloor::get(),
            ceiling: T::AuditCeiling::get(),
            safety_percent: T::AuditSafetyPercent::get(),
        };
        let probability = audit_probability(&policy, value.saturated_into(), slash.saturated_into(), record.reputation.score_ppm);
        is_audited(probability, &blake2_256(seed), request)
    }

    /// Invariants: commitments and reveals exist only for requests in their commit–reveal
    /// phase, waiting for their audit draw or under dispute, and only from their providers; every reveal has a commitment;
    /// receipts exist only for closed requests and account for the escrow to the last unit
    /// (paid, reservation fees and refund); and those of disputes, acknowledgements and draws.
    pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        for (request, who, _) in Commitments::<T>::iter() {
            let r = Requests::<T>::get(request).ok_or("a commitment for an unknown request")?;
            ensure!(
                matches!(r.status, RequestStatus::Assigned | RequestStatus::AwaitingAudit | RequestStatus::Disputed),
                "a commitment outlived its request's phase"
            );
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
            let paid = receipt.paid.iter().chain(receipt.reserved.iter()).fold(BalanceOf::<T>::zero(), |acc, (_, a)| acc.saturating_add(*a));
            let original = pricing::max_cost(r.params.prompt_tokens, r.params.max_output_tokens, r.params.max_price_per_1k)
                .map(|c| c.saturating_mul(BalanceOf::<T>::from(r.params.redundancy)))
                .ok_or("escrow overflow in a stored request")?;
            ensure!(paid.saturating_add(receipt.refunded) == original, "a receipt does not account for the escrow");
        }
        Self::disputes_try_state()?;
        Self::acks_try_state()?;
        Self::fallback_try_state()?;
        Self::draws_try_state()
    }
}
