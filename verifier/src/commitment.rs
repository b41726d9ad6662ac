//! The commit–reveal commitment.
//!
//! `H(domain, request, provider, output_hash, token_count, salt)`: binding the provider's
//! account into the preimage means a provider cannot copy another's commitment, and the salt
//! keeps a result from being guessed from its commitment before the reveal.

use agora_primitives::{Hash256, Outcome, RequestId};
use codec::Encode;
use polkadot_sdk::sp_crypto_hashing::blake2_256;

/// Separates Agora commitments from every other blake2 preimage.
pub const COMMIT_DOMAIN: &[u8; 16] = b"agora/commit/v1\0";

pub fn commitment<AccountId: Encode>(
    request: RequestId,
    provider: &AccountId,
    outcome: &Outcome,
    salt: &Hash256,
) -> Hash256 {
    (COMMIT_DOMAIN, request, provider, outcome.output_hash, outcome.token_count, salt)
        .using_encoded(blake2_256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(byte: u8, n: u32) -> Outcome {
        Outcome { output_hash: [byte; 32], token_count: n }
    }

    #[test]
    fn every_field_changes_the_commitment() {
        let base = commitment(7, &1u64, &outcome(1, 10), &[9; 32]);
        assert_eq!(base, commitment(7, &1u64, &outcome(1, 10), &[9; 32]));
        assert_ne!(base, commitment(8, &1u64, &outcome(1, 10), &[9; 32]));
        assert_ne!(base, commitment(7, &2u64, &outcome(1, 10), &[9; 32]));
        assert_ne!(base, commitment(7, &1u64, &outcome(2, 10), &[9; 32]));
        assert_ne!(base, commitment(7, &1u64, &outcome(1, 11), &[9; 32]));
        assert_ne!(base, commitment(7, &1u64, &outcome(1, 10), &[8; 32]));
    }
}
