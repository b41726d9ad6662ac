//! The draw's index: per release and runtime profile, one packed [`Listing`] per provider.
//!
//! A draw used to read the release's provider list and then every full record on it (2.4 KB
//! each, plus the trie nodes that prove it): about 317 KB of proof for 64 providers, where it
//! needs some 90 bytes of each. Every change to a record goes through here, so the listings
//! always say what the records say (checked by `try_state`).

use super::*;
use crate::types::{Eligible, Listing};
use agora_primitives::{Hash256, ProviderStatus, ReleaseId};
use alloc::vec::Vec;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::sp_runtime::SaturatedConversion;

pub type ListingOf<T> = Listing<<T as frame_system::Config>::AccountId, BalanceOf<T>>;

impl<T: Config> Pallet<T> {
    /// What the draw reads of `record`.
    pub(crate) fn listing(who: &T::AccountId, record: &ProviderOf<T>) -> ListingOf<T> {
        let m = &record.manifest;
        let drawable = record.status == ProviderStatus::Online && record.stake >= T::MinStake::get();
        let min_stake: u128 = T::MinStake::get().saturated_into::<u128>().max(1);
        let stake_units = (record.stake.saturated_into::<u128>() / min_stake).max(1);
        Listing {
            who: who.clone(),
            price_per_1k_input: m.price_per_1k_input,
            price_per_1k_output: m.price_per_1k_output,
            max_context: m.max_context,
            free_jobs: if drawable { m.max_concurrent_jobs.saturating_sub(record.open_jobs) } else { 0 },
            weight: stake_units.saturating_mul(record.reputation.score_ppm.into()),
        }
    }

    /// Stores `record`, listed under each of its offers and under none of the offers of the
    /// manifest it replaces (`old`). Fails, before writing anything, if an index is full.
    pub(crate) fn store_listed(who: &T::AccountId, old: Option<&ManifestOf<T>>, record: ProviderOf<T>) -> DispatchResult {
        for offer in record.manifest.offers.iter() {
            let listed = Listings::<T>::decode_len(offer.release, offer.runtime_profile).unwrap_or(0) as u32;
            let already = old.is_some_and(|m| m.offers.iter().any(|o| o.release == offer.release && o.runtime_profile == offer.runtime_profile));
            ensure!(already || listed < T::MaxProvidersPerRelease::get(), Error::<T>::TooManyProviders);
        }
        if let Some(old) = old {
            for offer in old.offers.iter().filter(|o| record.manifest.offer_for(&o.release).map(|n| n.runtime_profile) != Some(o.runtime_profile)) {
                Self::unlist(who, &offer.release, &offer.runtime_profile);
            }
        }
        let listing = Self::listing(who, &record);
        for offer in record.manifest.offers.iter() {
            Listings::<T>::mutate(offer.release, offer.runtime_profile, |listings| match listings.iter_mut().find(|l| &l.who == who) {
                Some(slot) => *slot = listing.clone(),
                // Room was checked above.
                None => {
                    let _ = listings.try_push(listing.clone());
                },
            });
        }
        Providers::<T>::insert(who, record);
        Ok(())
    }

    /// Stores `record`, whose offers have not changed, and rewrites its listings. Returns how
    /// many listings it rewrote beyond the first: the work that the benchmarks of the calls that
    /// change records (one offer per provider) did not measure, charged by
    /// [`Self::relisting_weight`].
    pub(crate) fn store(who: &T::AccountId, record: ProviderOf<T>) -> u32 {
        let relisted = (record.manifest.offers.len() as u32).saturating_sub(1);
        let listing = Self::listing(who, &record);
        for offer in record.manifest.offers.iter() {
            Listings::<T>::mutate(offer.release, offer.runtime_profile, |listings| {
                if let Some(slot) = listings.iter_mut().find(|l| &l.who == who) {
                    *slot = listing.clone();
                }
            });
        }
        Providers::<T>::insert(who, record);
        relisted
    }

    /// The weight of rewriting `relisted` listings beyond the first of each record stored.
    pub fn relisting_weight(relisted: u32) -> Weight {
        <T as Config>::WeightInfo::relist(relisted.saturating_add(1)).saturating_sub(<T as Config>::WeightInfo::relist(1))
    }

    /// The most listings beyond the first that `stores` record writes can rewrite: what a call
    /// that cannot know its providers' offers beforehand charges before dispatch.
    pub fn most_relisted(stores: u32) -> u32 {
        stores.saturating_mul(<agora_primitives::MaxOffers as Get<u32>>::get().saturating_sub(1))
    }

    /// The weight of the most listings that `stores` record writes can rewrite beyond the first
    /// of each.
    pub fn most_relisting_weight(stores: u32) -> Weight {
        Self::relisting_weight(Self::most_relisted(stores))
    }

    /// Removes `who` and its listings.
    pub(crate) fn remove_listed(who: &T::AccountId, manifest: &ManifestOf<T>) {
        for offer in manifest.offers.iter() {
            Self::unlist(who, &offer.release, &offer.runtime_profile);
        }
        Providers::<T>::remove(who);
    }

    fn unlist(who: &T::AccountId, release: &ReleaseId, profile: &Hash256) {
        Listings::<T>::mutate_exists(release, profile, |listings| {
            if let Some(list) = listings {
                list.retain(|l| &l.who != who);
                if list.is_empty() {
                    *listings = None;
                }
            }
        });
    }

    /// The providers that can take a request for `release` under `profile` now: free, priced
    /// at or under `max_price_per_1k` for input and output, with `context_needed` tokens of
    /// context. In index order, so a draw over them is deterministic. One storage read.
    pub fn eligible(
        release: &ReleaseId,
        profile: &Hash256,
        max_price_per_1k: BalanceOf<T>,
        context_needed: u32,
    ) -> Eligible<T::AccountId, BalanceOf<T>> {
        let all = Listings::<T>::get(release, profile);
        let listed = all.len() as u32;
        let listings = all
            .into_iter()
            .filter(|l| {
                l.free_jobs > 0 &&
                    l.price_per_1k_input <= max_price_per_1k &&
                    l.price_per_1k_output <= max_price_per_1k &&
                    l.max_context >= context_needed
            })
            .collect();
        Eligible { listings, listed }
    }

    /// Every provider listed under `release`, whatever its profile or state.
    pub fn servers_of(release: &ReleaseId) -> Vec<T::AccountId> {
        Listings::<T>::iter_prefix_values(release).flat_map(|listings| listings.into_iter().map(|l| l.who)).collect()
    }

    /// Each record is listed exactly once under each of its offers, as [`Self::listing`] says;
    /// nothing else is listed, and no empty list is kept.
    pub(crate) fn listings_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let mut offers = 0usize;
        for (who, record) in Providers::<T>::iter() {
            let listing = Self::listing(&who, &record);
            for offer in record.manifest.offers.iter() {
                let listed = Listings::<T>::get(offer.release, offer.runtime_profile);
                ensure!(listed.iter().filter(|l| l.who == who).count() == 1, "an offer is not listed exactly once");
                ensure!(listed.iter().any(|l| l == &listing), "a listing differs from its record");
                offers += 1;
            }
        }
        let mut listed = 0usize;
        for (_, _, listings) in Listings::<T>::iter() {
            ensure!(!listings.is_empty(), "an empty list of listings is kept");
            listed += listings.len();
        }
        ensure!(offers == listed, "the listings and the manifests differ in size");
        Ok(())
    }
}
