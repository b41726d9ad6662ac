//! Token pricing. Prices are per 1,000 tokens; costs round up so a provider is never paid
//! less than its stated price, and the escrow bound uses the same rounding so it always covers
//! any eligible provider's cost.

use polkadot_sdk::sp_arithmetic::traits::AtLeast32BitUnsigned;

/// `ceil((input_tokens * price_in + output_tokens * price_out) / 1000)`, or `None` on overflow.
pub fn cost<B: AtLeast32BitUnsigned + Copy>(
    input_tokens: u32,
    price_per_1k_input: B,
    output_tokens: u32,
    price_per_1k_output: B,
) -> Option<B> {
    let input = price_per_1k_input.checked_mul(&B::from(input_tokens))?;
    let output = price_per_1k_output.checked_mul(&B::from(output_tokens))?;
    let total = input.checked_add(&output)?;
    let thousand = B::from(1000u32);
    let whole = total / thousand;
    Some(if (total % thousand).is_zero() { whole } else { whole + B::one() })
}

/// The most one provider can cost for a request at `max_price_per_1k`.
pub fn max_cost<B: AtLeast32BitUnsigned + Copy>(
    prompt_tokens: u32,
    max_output_tokens: u32,
    max_price_per_1k: B,
) -> Option<B> {
    cost(prompt_tokens, max_price_per_1k, max_output_tokens, max_price_per_1k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_and_detects_overflow() {
        assert_eq!(cost(1000, 5u128, 0, 7u128), Some(5));
        assert_eq!(cost(1, 5u128, 0, 7u128), Some(1));
        assert_eq!(cost(0, 5u128, 0, 7u128), Some(0));
        assert_eq!(cost(500, 2u128, 1500, 2u128), Some(4));
        assert_eq!(cost(u32::MAX, u128::MAX, 1, 1u128), None);
        assert_eq!(cost(1, u128::MAX, 1, u128::MAX), None);
        assert_eq!(cost(u32::MAX, u64::MAX as u128, u32::MAX, u64::MAX as u128).is_some(), true);
    }

    #[test]
    fn max_cost_covers_every_cheaper_price() {
        for p_in in [0u128, 1, 999, 1000, 1001] {
            for p_out in [0u128, 1, 999, 1000, 1001] {
                let max = max_cost(123, 456, 1001u128).unwrap();
                for out in [0u32, 1, 455, 456] {
                    assert!(cost(123, p_in, out, p_out).unwrap() <= max);
                }
            }
        }
    }
}
