use super::*;
use agora_primitives::{ReleaseId, ReleaseInfo, ReleaseStatus};
use alloc::vec::Vec;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system;

impl<T: Config> Pallet<T> {
    pub(crate) fn do_publish(publisher: T::AccountId, info: ReleaseInfo) -> DispatchResult {
        ensure!(!info.family.is_empty() && !info.version.is_empty(), Error::<T>::EmptyName);
        ensure!(info.size_bytes > 0, Error::<T>::ZeroSize);
        ensure!(!Releases::<T>::contains_key(info.sha256), Error::<T>::ReleaseExists);
        if let Some(parent) = info.parent {
            ensure!(parent != info.sha256, Error::<T>::SelfParent);
            ensure!(Releases::<T>::contains_key(parent), Error::<T>::UnknownParent);
        }
        let mut family = Families::<T>::get(&info.family);
        let version_taken = family
            .iter()
            .filter_map(Releases::<T>::get)
            .any(|r| r.info.version == info.version);
        ensure!(!version_taken, Error::<T>::VersionExists);
        family.try_push(info.sha256).map_err(|_| Error::<T>::FamilyFull)?;

        let now = frame_system::Pallet::<T>::block_number();
        let id = info.sha256;
        let family_name = info.family.clone();
        Families::<T>::insert(&family_name, family);
        Releases::<T>::insert(
            id,
            ReleaseOf::<T> {
                info,
                publisher: publisher.clone(),
                status: ReleaseStatus::Active,
                published_at: now,
                status_changed_at: now,
            },
        );
        Self::deposit_event(Event::ReleasePublished { release: id, family: family_name, publisher });
        Ok(())
    }

    pub(crate) fn do_deprecate(who: Option<T::AccountId>, id: ReleaseId) -> DispatchResult {
        Self::change_status(who, id, ReleaseStatus::Deprecated)?;
        Self::deposit_event(Event::ReleaseDeprecated { release: id });
        Ok(())
    }

    pub(crate) fn do_revoke(who: Option<T::AccountId>, id: ReleaseId) -> DispatchResult {
        Self::change_status(who, id, ReleaseStatus::Revoked)?;
        Self::deposit_event(Event::ReleaseRevoked { release: id });
        Ok(())
    }

    /// `who` is `None` for root. Status only moves forward.
    fn change_status(who: Option<T::AccountId>, id: ReleaseId, to: ReleaseStatus) -> DispatchResult {
        Releases::<T>::try_mutate(id, |slot| {
            let release = slot.as_mut().ok_or(Error::<T>::UnknownRelease)?;
            if let Some(who) = who {
                ensure!(release.publisher == who, Error::<T>::NotPublisher);
            }
            match (release.status, to) {
                (ReleaseStatus::Revoked, _) => return Err(Error::<T>::ReleaseRevoked.into()),
                (ReleaseStatus::Deprecated, ReleaseStatus::Deprecated) =>
                    return Err(Error::<T>::AlreadyDeprecated.into()),
                _ => {},
            }
            release.status = to;
            release.status_changed_at = frame_system::Pallet::<T>::block_number();
            Ok(())
        })
    }

    /// A release may be advertised and requested while it exists and is not revoked.
    pub fn ensure_servable(id: &ReleaseId) -> DispatchResult {
        let release = Releases::<T>::get(id).ok_or(Error::<T>::UnknownRelease)?;
        ensure!(release.status != ReleaseStatus::Revoked, Error::<T>::ReleaseRevoked);
        Ok(())
    }

    /// Every release of `family`, oldest first.
    pub fn history(family: &[u8]) -> Vec<ReleaseOf<T>> {
        let Ok(name) = agora_primitives::FamilyName::try_from(family.to_vec()) else {
            return Vec::new();
        };
        Families::<T>::get(name).iter().filter_map(Releases::<T>::get).collect()
    }

    /// Invariants: each family lists each of its releases exactly once; every listed release
    /// exists and names that family; every parent exists.
    pub fn do_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let mut listed = 0usize;
        for (family, ids) in Families::<T>::iter() {
            for (i, id) in ids.iter().enumerate() {
                ensure!(!ids[..i].contains(id), "a family lists a release twice");
                let release = Releases::<T>::get(id).ok_or("a family lists an unknown release")?;
                ensure!(release.info.family == family, "a release is listed under another family");
                listed += 1;
            }
        }
        let mut total = 0usize;
        for (id, release) in Releases::<T>::iter() {
            ensure!(id == release.info.sha256, "a release is stored under another id");
            if let Some(parent) = release.info.parent {
                ensure!(Releases::<T>::contains_key(parent), "a release names an unknown parent");
            }
            ensure!(release.status_changed_at >= release.published_at, "status changed before publication");
            total += 1;
        }
        ensure!(listed == total, "a release is missing from its family");
        Ok(())
    }
}
