//! Storage migrations, each behind the storage version it moves from.

/// Version 2: every receipt gains `reserved` (the providers paid a reservation fee instead of
/// being slashed); receipts written before had none.
pub mod v2 {
    use crate::{Config, Pallet, ReceiptOf, Receipts};
    use agora_primitives::{JobOutcome, MaxRedundancy, Outcome, ReleaseId, RequestId};
    use codec::Decode;
    use pallet_agora_providers::BalanceOf;
    use polkadot_sdk::frame_support::{migrations::VersionedMigration, traits::{Get, UncheckedOnRuntimeUpgrade}, weights::Weight, BoundedVec};
    use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};

    /// A receipt as version 1 stored it.
    #[derive(Decode)]
    pub struct ReceiptV1<AccountId, Balance, BlockNumber> {
        pub request: RequestId,
        pub client: AccountId,
        pub release: ReleaseId,
        pub winning: Option<Outcome>,
        pub paid: BoundedVec<(AccountId, Balance), MaxRedundancy>,
        pub slashed: BoundedVec<(AccountId, Balance, JobOutcome), MaxRedundancy>,
        pub refunded: Balance,
        pub settled_at: BlockNumber,
    }

    type ReceiptV1Of<T> = ReceiptV1<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

    /// Rewrites every receipt with an empty `reserved`. Not to be used alone: [`MigrateV1ToV2`]
    /// runs it only on a chain at version 1.
    pub struct UncheckedMigrateV1ToV2<T>(core::marker::PhantomData<T>);

    impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV1ToV2<T> {
        fn on_runtime_upgrade() -> Weight {
            let mut rewritten = 0u64;
            Receipts::<T>::translate::<ReceiptV1Of<T>, _>(|_, old| {
                rewritten += 1;
                Some(ReceiptOf::<T> {
                    request: old.request,
                    client: old.client,
                    release: old.release,
                    winning: old.winning,
                    paid: old.paid,
                    slashed: old.slashed,
                    reserved: BoundedVec::new(),
                    refunded: old.refunded,
                    settled_at: old.settled_at,
                })
            });
            <T as frame_system::Config>::DbWeight::get().reads_writes(rewritten, rewritten)
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
