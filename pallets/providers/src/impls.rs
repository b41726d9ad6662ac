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
    traits::{CheckedAdd, Saturating, Zero},
    Perbill, SaturatedConversion,
};

/// A provider that may be drawn, with its draw weight (stake × reputation).
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
        Self::index_offers(&who, &[], &manifest)?;
        T::Currency::hold(&Self::hold_reason(), &who, stake).map_err(|_| Error::<T>::InsufficientBalance)?;
        Providers::<T>::insert(
            &who,
            ProviderOf::<T> {
                stake,
                manifest,
                status: ProviderStatus::Online,
                reputation: Reputation::new(),
                open_jobs: 0,
                registered_at: frame_system::Pallet::<T>::block_number(),
            },
        );
        Self::deposit_event(Event::Registered { provider: who, stake });
        Ok(())
    }

    pub(crate) fn do_update_manifest(who: T::AccountId, manifest: ManifestOf<T>) -> DispatchResult {
        let mut record = Providers::<T>::get(&who).ok_or(Error::<T>::NotRegistered)?;
        Self::validate_manifest(&manifest)?;
        let old: Vec<ReleaseId> = record.manifest.offers.iter().map(|o| o.release).collect();
        Self::index_offers(&who, &old, &manifest)?;
        record.manifest = manifest;
        Providers::<T>::insert(&who, record);
        Self::deposit_event(Event::ManifestUpdated { provider: who });
        Ok(())
    }

    pub(crate) fn do_add_stake(who: T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
        Providers::<T>::try_mutate(&who, |slot| {
            let record = slot.as_mut().ok_or(Error::<T>::NotRegistered)?;
            ensure!(!amount.is_zero(), Error::<T>::NoChange);
            record.stake = record.stake.checked_add(&amount).ok_or(Error::<T>::Overflow)?;
            T::Currency::hold(&Self::hold_reason(), &who, amount).map_err(|_| Error::<T>::InsufficientBalance)?;
            Ok::<_, DispatchError>(())
        })?;
        Self::deposit_event(Event::StakeAdded { provider: who, amount });
        Ok(())
    }

    pub(crate) fn do_set_online(who: T::AccountId, online: bool) -> DispatchResult {
        Providers::<T>::try_mutate(&who, |slot| {
            let record = slot.as_mut().ok_or(Error::<T>::NotRegistered)?;
            record.status = match (record.status, online) {
                (ProviderStatus::Unbonding { .. }, _) => return Err(Error::<T>::Unbonding),
                (ProviderStatus::Online, true) | (ProviderStatus::Offline, false) => return Err(Error::<T>::NoChange),
                (_, true) => ProviderStatus::Online,
                (_, false) => ProviderStatus::Offline,
            };
            Ok(())
        })?;
        Self::deposit_event(if online { Event::WentOnline { provider: who } } else { Event::WentOffline { provider: who } });
        Ok(())
    }

    pub(crate) fn do_unbond(who: T::AccountId) -> DispatchResult {
        let unlocks_at = frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingDelay::get());
        Providers::<T>::try_mutate(&who, |slot| {
            let record = slot.as_mut().ok_or(Error::<T>::NotRegistered)?;
            ensure!(!matches!(record.status, ProviderStatus::Unbonding { .. }), Error::<T>::Unbonding);
            record.status = ProviderStatus::Unbonding { unlocks_at };
            Ok::<_, Error<T>>(())
        })?;
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
        let old: Vec<ReleaseId> = record.manifest.offers.iter().map(|o| o.release).collect();
        Self::unindex(&who, &old);
        T::Currency::release(&Self::hold_reason(), &who, record.stake, Precision::Exact)?;
        Providers::<T>::remove(&who);
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

    /// Moves `who` from the index entries of `old` releases to those of `manifest`.
    fn index_offers(who: &T::AccountId, old: &[ReleaseId], manifest: &ManifestOf<T>) -> DispatchResult {
        Self::unindex(who, old);
        for offer in manifest.offers.iter() {
            ServersOf::<T>::try_mutate(offer.release, |servers| servers.try_push(who.clone()))
                .map_err(|_| Error::<T>::TooManyProviders)?;
        }
        Ok(())
    }

    fn unindex(who: &T::AccountId, releases: &[ReleaseId]) {
        for release in releases {
            ServersOf::<T>::mutate_exists(release, |servers| {
                if let Some(list) = servers {
                    list.retain(|p| p != who);
                    if list.is_empty() {
                        *servers = None;
                    }
                }
            });
        }
    }

    /// Whether `record` may take new work for `release` under `profile`, price aside.
    fn can_serve(record: &ProviderOf<T>, release: &ReleaseId, profile: &Hash256) -> bool {
        record.status == ProviderStatus::Online &&
            record.stake >= T::MinStake::get() &&
            record.open_jobs < record.manifest.max_concurrent_jobs &&
            record.manifest.offer_for(release).is_some_and(|o| &o.runtime_profile == profile)
    }

    /// Providers that can be drawn for a request, with their draw weights: stake (in units of
    /// `MinStake`) times reputation. In index order, so a draw over them is deterministic.
    pub fn eligible(
        release: &ReleaseId,
        profile: &Hash256,
        max_price_per_1k: BalanceOf<T>,
        context_needed: u32,
    ) -> Vec<Candidate<T::AccountId>> {
        let min_stake: u128 = T::MinStake::get().saturated_into::<u128>().max(1);
        ServersOf::<T>::get(release)
            .into_iter()
            .filter_map(|who| {
                let record = Providers::<T>::get(&who)?;
                let fits = Self::can_serve(&record, release, profile) &&
                    record.manifest.price_per_1k_input <= max_price_per_1k &&
                    record.manifest.price_per_1k_output <= max_price_per_1k &&
                    record.manifest.max_context >= context_needed;
                fits.then(|| {
                    let stake_units = (record.stake.saturated_into::<u128>() / min_stake).max(1);
                    Candidate { who, weight: stake_units.saturating_mul(record.reputation.score_ppm.into()) }
                })
            })
            .collect()
    }

    /// What each provider that could serve would cost at most; cheapest first.
    pub fn quote(
        release: &ReleaseId,
        profile: &Hash256,
        prompt_tokens: u32,
        max_output_tokens: u32,
    ) -> Vec<Quote<T::AccountId, BalanceOf<T>>> {
        let mut quotes: Vec<_> = ServersOf::<T>::get(release)
            .into_iter()
            .filter_map(|who| {
                let record = Providers::<T>::get(&who)?;
                if !Self::can_serve(&record, release, profile) ||
                    record.manifest.max_context < prompt_tokens.saturating_add(max_output_tokens)
                {
                    return None;
                }
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

    pub fn note_assigned(who: &T::AccountId) {
        Providers::<T>::mutate(who, |r| {
            if let Some(r) = r {
                r.open_jobs = r.open_jobs.saturating_add(1);
            }
        });
    }

    pub fn note_released(who: &T::AccountId) {
        Providers::<T>::mutate(who, |r| {
            if let Some(r) = r {
                r.open_jobs = r.open_jobs.saturating_sub(1);
            }
        });
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

    /// Moves `fraction` of `who`'s stake to the treasury; returns what was taken.
    pub fn slash(who: &T::AccountId, fraction: Perbill) -> BalanceOf<T> {
        let Some(mut record) = Providers::<T>::get(who) else { return Zero::zero() };
        let wanted = fraction * record.stake;
        if wanted.is_zero() {
            return wanted;
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
        Providers::<T>::insert(who, record);
        Self::deposit_event(Event::Slashed { provider: who.clone(), amount: taken });
        taken
    }

    pub fn record_outcome(who: &T::AccountId, outcome: JobOutcome) {
        Providers::<T>::mutate(who, |r| {
            if let Some(r) = r {
                r.reputation.record(outcome);
            }
        });
    }

    /// Invariants: each provider's recorded stake is exactly what is held for it; the release
    /// index and the manifests agree; scores stay within bounds.
    pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let mut offers = 0usize;
        for (who, record) in Providers::<T>::iter() {
            ensure!(
                T::Currency::balance_on_hold(&Self::hold_reason(), &who) == record.stake,
                "recorded stake differs from the held balance"
            );
            ensure!(record.reputation.score_ppm <= Reputation::MAX_PPM, "score above maximum");
            for offer in record.manifest.offers.iter() {
                ensure!(ServersOf::<T>::get(offer.release).contains(&who), "an offer is missing from the index");
                offers += 1;
            }
        }
        let mut indexed = 0usize;
        for (release, servers) in ServersOf::<T>::iter() {
            ensure!(!servers.is_empty(), "an empty index entry is kept");
            for who in servers.iter() {
                let record = Providers::<T>::get(who).ok_or("the index names an unregistered provider")?;
                ensure!(record.manifest.offer_for(&release).is_some(), "the index names a provider without the offer");
                indexed += 1;
            }
        }
        ensure!(offers == indexed, "the index and the manifests differ in size");
        for (who, _) in Exposures::<T>::iter() {
            ensure!(Providers::<T>::contains_key(&who), "an exposure outlived its provider");
        }
        Ok(())
    }
}

