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

/// Version 3: closed requests are pruned after `RecordRetention`. The ones closed before are
/// queued a retention from the upgrade, in id order (all fall due together, so the queue stays in
/// due order).
pub mod v3 {
    use crate::{Config, Pallet, Requests};
    use polkadot_sdk::frame_support::{
        migrations::VersionedMigration,
        traits::{Get, UncheckedOnRuntimeUpgrade},
        weights::Weight,
    };
    use polkadot_sdk::frame_system;
    use polkadot_sdk::sp_runtime::Saturating;

    /// Not to be used alone: [`MigrateV2ToV3`] runs it only on a chain at version 2.
    pub struct UncheckedMigrateV2ToV3<T>(core::marker::PhantomData<T>);

    impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV2ToV3<T> {
        /// Reads every request once: bounded by the chain's request count, which is small on
        /// every chain that ran version 2 (the dev chains; nothing was deployed before pruning).
        fn on_runtime_upgrade() -> Weight {
            let mut read = 0u64;
            let mut closed = alloc::vec::Vec::new();
            for (id, request) in Requests::<T>::iter() {
                read.saturating_inc();
                if !request.status.holds_escrow() {
                    closed.push(id);
                }
            }
            closed.sort_unstable();
            closed.iter().for_each(|id| Pallet::<T>::queue_forget(*id));
            let db = <T as frame_system::Config>::DbWeight::get();
            db.reads(read).saturating_add(db.writes(closed.len() as u64 + 1))
        }
    }

    pub type MigrateV2ToV3<T> =
        VersionedMigration<2, 3, UncheckedMigrateV2ToV3<T>, Pallet<T>, <T as frame_system::Config>::DbWeight>;
}
