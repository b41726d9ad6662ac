//! Storage migrations, each behind the storage version it moves from.

/// Version 2: the draw reads [`crate::Listings`] (per release and profile, packed) instead of
/// `ServersOf` (per release, account ids) and then every full record.
pub mod v2 {
    use crate::{Config, Pallet, Providers};
    use agora_primitives::ReleaseId;
    use polkadot_sdk::frame_support::{
        migrations::VersionedMigration,
        storage_alias,
        traits::{Get, UncheckedOnRuntimeUpgrade},
        weights::Weight,
        BoundedVec, Identity,
    };
    use polkadot_sdk::frame_system;

    /// The version 1 index: for each release, the providers whose manifest offers it.
    #[storage_alias]
    pub type ServersOf<T: Config> = StorageMap<
        Pallet<T>,
        Identity,
        ReleaseId,
        BoundedVec<<T as frame_system::Config>::AccountId, <T as Config>::MaxProvidersPerRelease>,
    >;

    /// Drops `ServersOf` and lists every registered provider. Not to be used alone:
    /// [`MigrateV1ToV2`] runs it only on a chain at version 1.
    pub struct UncheckedMigrateV1ToV2<T>(core::marker::PhantomData<T>);

    impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV1ToV2<T> {
        fn on_runtime_upgrade() -> Weight {
            let dropped = ServersOf::<T>::drain().count() as u64;
            let mut listed = 0u64;
            let records: alloc::vec::Vec<_> = Providers::<T>::iter().collect();
            for (who, record) in records {
                // Version 1 bounded each release's providers as version 2 bounds each release and
                // profile, so every provider finds room.
                if Pallet::<T>::store_listed(&who, None, record).is_ok() {
                    listed += 1;
                }
            }
            <T as frame_system::Config>::DbWeight::get().reads_writes(dropped + 3 * listed, dropped + 2 * listed)
        }
    }

    pub type MigrateV1ToV2<T> = VersionedMigration<
        1,
        2,
        UncheckedMigrateV1ToV2<T>,
        Pallet<T>,
        <T as frame_system::Config>::DbWeight,
    >;
}
