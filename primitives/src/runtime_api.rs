//! The runtime API clients and auditors query (also reachable through subxt's runtime-API calls).

use crate::*;
use alloc::vec::Vec;

polkadot_sdk::sp_api::decl_runtime_apis! {
    pub trait AgoraApi<AccountId, Balance, BlockNumber>
    where
        AccountId: codec::Codec,
        Balance: codec::Codec,
        BlockNumber: codec::Codec,
    {
        /// Providers that could be assigned a request for `release` under `runtime_profile`
        /// right now, with what each would cost at most. Sorted cheapest first.
        fn quote(
            release: ReleaseId,
            runtime_profile: Hash256,
            prompt_tokens: u32,
            max_output_tokens: u32,
        ) -> Vec<Quote<AccountId, Balance>>;
        /// Every release of a family, oldest first.
        fn release_history(family: Vec<u8>) -> Vec<ModelRelease<AccountId, BlockNumber>>;
        fn release(id: ReleaseId) -> Option<ModelRelease<AccountId, BlockNumber>>;
        fn provider(who: AccountId) -> Option<ProviderRecord<Balance, BlockNumber>>;
        fn request(id: RequestId) -> Option<Request<AccountId, Balance, BlockNumber>>;
        fn receipt(id: RequestId) -> Option<Receipt<AccountId, Balance, BlockNumber>>;
    }
}
