//! Storage migrations, each behind the storage version it moves from.

/// Version 2: the deposit ledger and tickets. Their storage starts empty; the pallet's account,
/// which holds the deposits, gets its existential deposit, as genesis gives it on a new chain.
pub mod v2 {
    use crate::{Config, Pallet};
    use polkadot_sdk::frame_support::{
        migrations::VersionedMigration,
        traits::{Get, UncheckedOnRuntimeUpgrade},
        weights::Weight,
    };
    use polkadot_sdk::frame_system;

    /// Not to be used alone: [`MigrateV1ToV2`] runs it only on a chain at version 1.
    pub struct UncheckedMigrateV1ToV2<T>(core::marker::PhantomData<T>);

    impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV1ToV2<T> {
        fn on_runtime_upgrade() -> Weight {
            Pallet::<T>::ensure_account_exists();
            <T as frame_system::Config>::DbWeight::get().reads_writes(2, 2)
        }
    }

    pub type MigrateV1ToV2<T> =
        VersionedMigration<1, 2, UncheckedMigrateV1ToV2<T>, Pallet<T>, <T as frame_system::Config>::DbWeight>;
}
