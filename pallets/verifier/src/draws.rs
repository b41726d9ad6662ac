//! Draws that wait for randomness nobody knew when they were asked for: whether a single
//! provider's result is spot-checked (asked for by `settle`) and who judges a dispute (asked
//! for by `settle` or `challenge`). Taking them from the asking block's randomness let the
//! caller see the outcome before sending: a cheat could settle in a block that does not audit
//! it, a challenger in one that draws its own verifiers.

use super::*;
use agora_primitives::{DisputeKind, RequestId, RequestStatus, MAX_REDUNDANCY, MAX_VERIFIERS};
use codec::Encode;
use pallet_agora_escrow::Requests;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system::pallet_prelude::BlockNumberFor;
use polkadot_sdk::sp_runtime::{traits::Saturating, BoundedVec};

type Escrow<T> = pallet_agora_escrow::Pallet<T>;
type Providers<T> = pallet_agora_providers::Pallet<T>;

/// The most writes of provider records that closing a request can make: each provider's result
/// recorded (and slashed) and its job released.
pub const CLOSE_STORES: u32 = 2 * MAX_REDUNDANCY;
/// The most that resolving a dispute can make: closing its request, and each verifier's verdict
/// recorded (and slashed).
pub const RESOLVE_STORES: u32 = CLOSE_STORES + MAX_VERIFIERS;

impl<T: Config> Pallet<T> {
    /// Queues `request`'s draw for the first block with randomness that became known after
    /// block `asked_in`.
    pub(crate) fn queue_draw(request: RequestId, asked_in: BlockNumberFor<T>) -> DispatchResult {
        PendingDraws::<T>::try_append((request, asked_in)).map_err(|_| Error::<T>::TooManyPendingDraws.into())
    }

    /// What an unaudited result's draw costs: the settlement of one result, as `settle(1)`
    /// measured it before it handed the audit to the next block.
    pub fn unaudited_draw_weight() -> Weight {
        <T as Config>::WeightInfo::settle(1)
    }

    /// What a draw of verifiers costs (an audited result, or a dispute of `k` results): reading
    /// every candidate and drawing, as `settle_to_dispute(k)` measured it when it drew them itself.
    pub fn verifier_draw_weight(k: u32) -> Weight {
        <T as Config>::WeightInfo::settle_to_dispute(k)
    }

    /// Runs every queued draw whose randomness has arrived; the rest wait on. Returns the
    /// weight used, by the path each draw took.
    pub(crate) fn draw_pending() -> Weight {
        let pending = PendingDraws::<T>::get();
        let mut weight = T::DbWeight::get().reads(1);
        if pending.is_empty() {
            return weight;
        }
        let mut still_pending = BoundedVec::<_, T::MaxPendingDraws>::new();
        for (request, asked_in) in pending {
            let audit = Escrow::<T>::fresh_seed(&(b"agora/audit", request).encode(), asked_in);
            let verifiers = Escrow::<T>::fresh_seed(&(b"agora/verifiers", request).encode(), asked_in);
            let (Some(audit), Some(verifiers)) = (audit, verifiers) else {
                // `still_pending` holds a subset of `pending`, under the same bound.
                let _ = still_pending.try_push((request, asked_in));
                continue;
            };
            match Self::draw_for(request, audit.as_ref(), verifiers.as_ref()) {
                Ok(used) => weight.saturating_accrue(used),
                // Only a broken invariant gets here (`try_state` names it); the block goes on.
                Err(e) => {
                    weight.saturating_accrue(Self::verifier_draw_weight(MAX_REDUNDANCY).saturating_add(Providers::<T>::most_relisting_weight(RESOLVE_STORES)));
                    polkadot_sdk::frame_support::defensive!(e, "a queued draw finds its request open");
                },
            }
        }
        PendingDraws::<T>::put(still_pending);
        weight.saturating_add(T::DbWeight::get().writes(1))
    }

    /// A single provider's result: audited (verifiers drawn, the request under dispute) or
    /// settled as revealed. A dispute: its verifiers drawn, or, if nobody can judge it any more,
    /// resolved with no verdict (a challenge's bond goes back, a split vote is refunded).
    /// Returns the weight of the path taken.
    fn draw_for(request: RequestId, audit_seed: &[u8], verifier_seed: &[u8]) -> Result<Weight, DispatchError> {
        let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
        let with_verifiers = Self::verifier_draw_weight(r.providers.len() as u32);
        if r.status == RequestStatus::AwaitingAudit {
            let reveals = Self::reveals_of(request, &r);
            let (_, revealed) = *reveals.first().ok_or(Error::<T>::NotActive)?;
            let audited = Self::drawn_for_audit(request, &r, &revealed, audit_seed);
            if audited {
                let now = frame_system::Pallet::<T>::block_number();
                let mut dispute = DisputeOf::<T> {
                    kind: DisputeKind::Audit,
                    outcomes: BoundedVec::truncate_from(alloc::vec![revealed]),
                    verifiers: BoundedVec::new(),
                    opened_at: now,
                    verdict_deadline: now.saturating_add(T::VerdictWindow::get()),
                };
                if Self::draw_verifiers(request, &r, &mut dispute, verifier_seed) {
                    Escrow::<T>::mark(request, RequestStatus::Disputed)?;
                    Disputes::<T>::insert(request, dispute);
                    return Ok(with_verifiers);
                }
            }
            // Not audited, or nobody is left to audit it: it stands as revealed.
            let relisted = Self::close_with(request, &r, &reveals, |o| Some(*o == revealed), Some(revealed))?;
            let drawn = if audited { with_verifiers } else { Self::unaudited_draw_weight() };
            return Ok(drawn.saturating_add(Providers::<T>::relisting_weight(relisted)));
        }
        let mut dispute = Disputes::<T>::get(request).ok_or(Error::<T>::NoDispute)?;
        if Self::draw_verifiers(request, &r, &mut dispute, verifier_seed) {
            Disputes::<T>::insert(request, dispute);
            return Ok(with_verifiers);
        }
        let relisted = Self::resolve(request, dispute)?;
        Ok(with_verifiers.saturating_add(Providers::<T>::relisting_weight(relisted)))
    }

    /// Invariants of the queue: each entry is a request waiting for its audit draw or a dispute
    /// waiting for its verifiers, once; every request waiting for its audit draw is queued.
    pub(crate) fn draws_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let pending = PendingDraws::<T>::get();
        for (i, (request, _)) in pending.iter().enumerate() {
            ensure!(!pending.iter().skip(i + 1).any(|(r, _)| r == request), "a draw is queued twice");
            let awaiting_audit = Requests::<T>::get(request).is_some_and(|r| r.status == RequestStatus::AwaitingAudit);
            let undrawn_dispute = Disputes::<T>::get(request).is_some_and(|d| d.verifiers.is_empty());
            ensure!(awaiting_audit != undrawn_dispute, "a queued draw has nothing (or two things) to draw");
        }
        for (request, r) in Requests::<T>::iter() {
            if r.status == RequestStatus::AwaitingAudit {
                ensure!(pending.iter().any(|(p, _)| *p == request), "a request awaits an audit draw that is not queued");
            }
        }
        Ok(())
    }
}
