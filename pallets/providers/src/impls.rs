use super::*;
use agora_primitives::{
    pricing, Hash256, JobOutcome, ProviderStatus, Quote, ReleaseId, Reputation,
};
use alloc::vec::Vec;
use polkadot_sdk::frame_support::{
    ensure,
    pallet_prelude::*,
    traits::{
        fungible::{InspectHold, MutateHold},
        tokens::{Fortitude, Precision, Restriction},
    },
};
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};
use polkadot_sdk::sp_runtime::{
    traits::{Bounded, CheckedAdd, Saturating, Zero},
    Perbill,
};

/// A provider that may be drawn, with its draw weight (stake × reputation).
#[derive(Clone)]
pub struct Candidate<AccountId> {
    pub who: AccountId,
    pub weight: u128,
}

impl<T: Config> Pallet<T> {
    fn hold_reason() -> T::RuntimeHoldReason {
        HoldReason::ProviderStake.into()
    }

    pub(crate) fn do_register(who: T::AccountId, stake: BalanceOf<T>, manifest: ManifestOf<T>) -> DispatchResult {
        ensure!(!Providers::<T>::contains_key(&who), Error::<T>::AlreadyRegistered);
        ensure!(stake >= T::MinStake::get(), Error::<T>::StakeTooLow);
        Self::validate_manifest(&manifest)?;
        let record = ProviderOf::<T> {
            stake,
            manifest,
            status: ProviderStatus::Online,
            reputation: Reputation::new(),
            open_jobs: 0,
            registered_at: frame_system::Pallet::<T>::block_number(),
        };
        Self::store_listed(&who, None, record)?;
        T::Currency::hold(&Self::hold_reason(), &who, stake).map_err(|_| Error::<T>::InsufficientBalance)?;
        Self::deposit_event(Event::Registered { provider: who, stake });
        Ok(())
    }

    pub(crate) fn do_update_manifest(who: T::AccountId, manifest: ManifestOf<T>) -> DispatchResult {
        let mut record = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
        Self::validate_manifest(&manifest)?;
        let old = core::mem::replace(&mut record.manifest, manifest);
        Self::store_listed(&who, Some(&old), record)?;
        Self::deposit_event(Event::ManifestUpdated { provider: who });
        Ok(())
    }

    pub(crate) fn do_add_stake(who: T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
        let mut record = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
        ensure!(!amount.is_zero(), Error::<T>::NoChange);
        record.stake = record.stake.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
        T::Currency::hold(&Self::hold_reason(), &who, amount).map_err(|_| Error::<T>::InsufficientBalance)?;
        Self::store(&who, record);
        Self::deposit_event(Event::StakeAdded { provider: who, amount });
        Ok(())
    }

    pub(crate) fn do_set_online(who: T::AccountId, online: bool) -> DispatchResult {
        let mut record = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
        record.status = match (record.status, online) {
            (ProviderStatus::Unbonding { .. }, _) => return Err(Error::<T>::Unbonding.into()),
            (ProviderStatus::Online, true) | (ProviderStatus::Offline, false) => return Err(Error::<T>::NoChange.into()),
            (_, true) => ProviderStatus::Online,
            (_, false) => ProviderStatus::Offline,
        };
        Self::store(&who, record);
        Self::deposit_event(if online { Event::WentOnline { provider: who } } else { Event::WentOffline { provider: who } });
        Ok(())
    }

    pub(crate) fn do_unbond(who: T::AccountId) -> DispatchResult {
        let unlocks_at = frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingDelay::get());
        let mut record = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
        ensure!(!matches!(record.status, ProviderStatus::Unbonding { .. }), Error::<T>::Unbonding);
        record.status = ProviderStatus::Unbonding { unlocks_at };
        Self::store(&who, record);
        Self::deposit_event(Event::Unbonding { provider: who, unlocks_at });
        Ok(())
    }

    pub(crate) fn do_withdraw(who: T::AccountId) -> DispatchResult {
        let record = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
        let ProviderStatus::Unbonding { unlocks_at } = record.status else {
            return Err(Error::<T>::NotUnbonding.into());
        };
        ensure!(frame_system::Pallet::<T>::block_number() >= unlocks_at, Error::<T>::StillLocked);
        ensure!(record.open_jobs == 0, Error::<T>::OpenJobs);
        let exposure = Exposures::<T>::get(&who);
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(exposure.disputes == 0 && now > exposure.until, Error::<T>::StillSlashable);
        Exposures::<T>::remove(&who);
        T::Currency::release(&Self::hold_reason(), &who, record.stake, Precision::Exact)?;
        Self::remove_listed(&who, &record.manifest);
        Self::deposit_event(Event::Withdrawn { provider: who, stake: record.stake });
        Ok(())
    }

    fn validate_manifest(manifest: &ManifestOf<T>) -> DispatchResult {
        ensure!(!manifest.offers.is_empty(), Error::<T>::NoOffers);
        ensure!(manifest.max_context > 0 && manifest.max_concurrent_jobs > 0, Error::<T>::ZeroLimit);
        ensure!(!manifest.peer_id.is_empty() && !manifest.multiaddrs.is_empty(), Error::<T>::NoAddress);
        for (i, offer) in manifest.offers.iter().enumerate() {
            ensure!(!manifest.offers[..i].iter().any(|o| o.release == offer.release), Error::<T>::DuplicateOffer);
            pallet_agora_models::Pallet::<T>::ensure_servable(&offer.release)?;
        }
        Ok(())
    }

    /// What each provider that could serve would cost at most; cheapest first.
    pub fn quote(
        release: &ReleaseId,
        profile: &Hash256,
        prompt_tokens: u32,
        max_output_tokens: u32,
    ) -> Vec<Quote<T::AccountId, BalanceOf<T>>> {
        let eligible = Self::eligible(release, profile, BalanceOf::<T>::max_value(), prompt_tokens.saturating_add(max_output_tokens));
        let mut quotes: Vec<_> = eligible
            .listings
            .into_iter()
            .filter_map(|listing| {
                let who = listing.who;
                let record = Providers::<T>::get(&who)?;
                let m = &record.manifest;
                let max_cost =
                    pricing::cost(prompt_tokens, m.price_per_1k_input, max_output_tokens, m.price_per_1k_output)?;
                Some(Quote {
                    provider: who,
                    max_cost,
                    price_per_1k_input: m.price_per_1k_input,
                    price_per_1k_output: m.price_per_1k_output,
                    stake: record.stake,
                    reputation: record.reputation,
                    offer: m.offer_for(release)?.clone(),
                })
            })
            .collect();
        quotes.sort_by(|a, b| a.max_cost.cmp(&b.max_cost));
        quotes
    }

    /// The prices `who` charges, if registered.
    pub fn prices(who: &T::AccountId) -> Option<(BalanceOf<T>, BalanceOf<T>)> {
        Providers::<T>::get(who).map(|r| (r.manifest.price_per_1k_input, r.manifest.price_per_1k_output))
    }

    /// Counts a job `who` took. Returns the listings rewritten beyond the first.
    pub fn note_assigned(who: &T::AccountId) -> u32 {
        let Some(mut record) = Providers::<T>::get(who) else { return 0 };
        record.open_jobs = record.open_jobs.saturating_add(1);
        Self::store(who, record)
    }

    /// Counts a job of `who` that closed. Returns the listings rewritten beyond the first.
    pub fn note_released(who: &T::AccountId) -> u32 {
        let Some(mut record) = Providers::<T>::get(who) else { return 0 };
        record.open_jobs = record.open_jobs.saturating_sub(1);
        Self::store(who, record)
    }

    /// `who` was paid for a result that can be challenged up to block `until`: its stake stays.
    pub fn expose_until(who: &T::AccountId, until: BlockNumberFor<T>) {
        Exposures::<T>::mutate(who, |e| e.until = e.until.max(until));
    }

    /// `who` became party to a dispute that can slash it (a challenge of its result, a dispute
    /// it judges); its stake stays until [`Self::leave_dispute`].
    pub fn enter_dispute(who: &T::AccountId) {
        Exposures::<T>::mutate(who, |e| e.disputes = e.disputes.saturating_add(1));
    }

    pub fn leave_dispute(who: &T::AccountId) {
        Exposures::<T>::mutate_exists(who, |slot| {
            if let Some(e) = slot {
                e.disputes = e.disputes.saturating_sub(1);
                if *e == Exposure::default() {
                    *slot = None;
                }
            }
        });
    }

    /// Moves `fraction` of `who`'s stake to the treasury.
    pub fn slash(who: &T::AccountId, fraction: Perbill) -> Slashed<BalanceOf<T>> {
        Self::punish(who, None, fraction)
    }

    /// Records `outcome`, if any, and moves `fraction` of `who`'s stake to the treasury, with
    /// one write of its record and listings.
    pub fn punish(who: &T::AccountId, outcome: Option<JobOutcome>, fraction: Perbill) -> Slashed<BalanceOf<T>> {
        let nothing = Slashed { taken: Zero::zero(), relisted: 0 };
        let Some(mut record) = Providers::<T>::get(who) else { return nothing };
        outcome.into_iter().for_each(|outcome| record.reputation.record(outcome));
        let wanted = fraction * record.stake;
        if wanted.is_zero() {
            return Slashed { relisted: if outcome.is_some() { Self::store(who, record) } else { 0 }, ..nothing };
        }
        let taken = T::Currency::transfer_on_hold(
            &Self::hold_reason(),
            who,
            &T::Treasury::get(),
            wanted,
            Precision::BestEffort,
            Restriction::Free,
            Fortitude::Force,
        )
        .unwrap_or_else(|_| Zero::zero());
        record.stake = record.stake.saturating_sub(taken);
        let relisted = Self::store(who, record);
        Self::deposit_event(Event::Slashed { provider: who.clone(), amount: taken });
        Slashed { taken, relisted }
    }

    /// Records `outcome` of `who`. Returns the listings rewritten beyond the first.
    pub fn record_outcome(who: &T::AccountId, outcome: JobOutcome) -> u32 {
        Self::record_outcomes(who, [outcome])
    }

    /// Records several outcomes of `who` in order with one read and one write of its record
    /// and listings: a batch of settlements touches each provider once. Returns the listings
    /// rewritten beyond the first.
    pub fn record_outcomes(who: &T::AccountId, outcomes: impl IntoIterator<Item = JobOutcome>) -> u32 {
        let Some(mut record) = Providers::<T>::get(who) else { return 0 };
        outcomes.into_iter().for_each(|outcome| record.reputation.record(outcome));
        Self::store(who, record)
    }

    /// How many listings `who` has: one per offer of its manifest.
    pub fn listings_of(who: &T::AccountId) -> u32 {
        Providers::<T>::get(who).map_or(0, |record| record.manifest.offers.len() as u32)
    }

    /// Invariants: each provider's recorded stake is exactly what is held for it; the listings
    /// and the records agree; scores stay within bounds.
    pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        for (who, record) in Providers::<T>::iter() {
            ensure!(
                T::Currency::balance_on_hold(&Self::hold_reason(), &who) == record.stake,
                "recorded stake differs from the held balance"
            );
            ensure!(record.reputation.score_ppm <= Reputation::MAX_PPM, "score above maximum");
        }
        Self::listings_try_state()?;
        for (who, _) in Exposures::<T>::iter() {
            ensure!(Providers::<T>::contains_key(&who), "an exposure outlived its provider");
        }
        Ok(())
    }
}

