//! Pruning: a closed request's record, and what other pallets keep beside it, goes once
//! `RecordRetention` has passed (issue 13, hole 5). Requests close in block order and every
//! one waits the same retention, so the queue is in due order and `on_idle` prunes from its
//! front.

use super::*;
use agora_primitives::RequestId;
use polkadot_sdk::frame_support::pallet_prelude::*;
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};
use polkadot_sdk::sp_runtime::traits::Saturating;

impl<T: Config> Pallet<T> {
    /// Queues closed request `id` to be forgotten `RecordRetention` blocks from now.
    pub(crate) fn queue_forget(id: RequestId) {
        let due = frame_system::Pallet::<T>::block_number().saturating_add(T::RecordRetention::get());
        ClosedQueueBounds::<T>::mutate(|(_, back)| {
            ClosedQueue::<T>::insert(*back, (id, due));
            *back = back.saturating_add(1);
        });
    }

    /// What forgetting one request weighs, with what other pallets drop beside it.
    pub fn forget_weight() -> Weight {
        <T as Config>::WeightInfo::forget_request().saturating_add(T::OnClose::forget_weight())
    }

    /// Forgets the closed requests whose retention has passed by `now`, oldest first, as many as
    /// `limit` allows. One something still judges is queued again, a retention from now.
    /// Returns the weight used.
    pub(crate) fn forget_due(now: BlockNumberFor<T>, limit: Weight) -> Weight {
        let db = T::DbWeight::get();
        let mut used = db.reads(1);
        let one = Self::forget_weight();
        if !limit.all_gte(used.saturating_add(db.writes(1))) {
            return Weight::zero();
        }
        let (mut front, mut back) = ClosedQueueBounds::<T>::get();
        let start = (front, back);
        while front < back && limit.all_gte(used.saturating_add(one).saturating_add(db.writes(1))) {
            used.saturating_accrue(one);
            let Some((id, due)) = ClosedQueue::<T>::get(front) else { break };
            if due > now {
                break;
            }
            ClosedQueue::<T>::remove(front);
            front = front.saturating_add(1);
            if T::OnClose::keeps_record(id) {
                ClosedQueue::<T>::insert(back, (id, now.saturating_add(T::RecordRetention::get())));
                back = back.saturating_add(1);
            } else {
                Requests::<T>::remove(id);
                FellBack::<T>::remove(id);
                T::OnClose::on_request_forgotten(id);
            }
        }
        if (front, back) != start {
            ClosedQueueBounds::<T>::put((front, back));
            used.saturating_accrue(db.writes(1));
        }
        used
    }

    /// Every closed request is queued to be forgotten exactly once, and every queued one is a
    /// closed request; the queue is in due order.
    pub(crate) fn pruning_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let (front, back) = ClosedQueueBounds::<T>::get();
        ensure!(front <= back, "the closed queue's front is past its back");
        let mut queued = alloc::collections::btree_set::BTreeSet::new();
        let mut last_due = None;
        for position in front..back {
            let (id, due) = ClosedQueue::<T>::get(position).ok_or("a position of the closed queue is empty")?;
            let request = Requests::<T>::get(id).ok_or("a queued request is gone")?;
            ensure!(!request.status.holds_escrow(), "an open request is queued to be forgotten");
            ensure!(queued.insert(id), "a request is queued twice");
            ensure!(last_due.is_none_or(|last| last <= due), "the closed queue is out of due order");
            last_due = Some(due);
        }
        ensure!(ClosedQueue::<T>::iter_keys().count() as u64 == back - front, "the closed queue has entries outside its bounds");
        let closed = Requests::<T>::iter_values().filter(|r| !r.status.holds_escrow()).count();
        ensure!(closed == queued.len(), "a closed request is not queued to be forgotten");
        Ok(())
    }
}
