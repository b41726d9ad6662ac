//! Tallying revealed results.
//!
//! Reveals are grouped by `(output_hash, token_count)`. A group wins only with a strict
//! majority of the providers assigned (not of those who revealed), so two colluders cannot
//! outvote one honest provider when the others stay silent.

use agora_primitives::Outcome;
use alloc::vec::Vec;

/// The largest group of equal outcomes and its size (the smallest outcome among tied groups).
fn largest(reveals: &[Outcome]) -> Option<(Outcome, u32)> {
    let mut sorted: Vec<Outcome> = reveals.to_vec();
    sorted.sort_unstable();
    let mut best: Option<(Outcome, u32)> = None;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        let count = (j - i) as u32;
        if best.map_or(true, |(_, c)| count > c) {
            best = Some((sorted[i], count));
        }
        i = j;
    }
    best
}

/// How many outcomes the largest group of equal ones holds (0 for none).
pub fn largest_group(reveals: &[Outcome]) -> u32 {
    largest(reveals).map_or(0, |(_, count)| count)
}

/// The winning outcome, if one group holds more than half of `assigned`.
pub fn strict_majority(reveals: &[Outcome], assigned: u32) -> Option<Outcome> {
    largest(reveals).filter(|(_, count)| u64::from(*count) * 2 > u64::from(assigned)).map(|(o, _)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(b: u8, n: u32) -> Outcome {
        Outcome { output_hash: [b; 32], token_count: n }
    }

    #[test]
    fn strict_majority_of_assigned() {
        assert_eq!(strict_majority(&[o(1, 5), o(1, 5), o(2, 5)], 3), Some(o(1, 5)));
        assert_eq!(strict_majority(&[o(1, 5), o(2, 5), o(3, 5)], 3), None);
        // Same hash, different count: different results.
        assert_eq!(strict_majority(&[o(1, 5), o(1, 6), o(2, 5)], 3), None);
        // Two of four is not a strict majority.
        assert_eq!(strict_majority(&[o(1, 5), o(1, 5)], 4), None);
        // Silence counts against: one reveal of three assigned does not win.
        assert_eq!(strict_majority(&[o(1, 5)], 3), None);
        assert_eq!(strict_majority(&[o(1, 5)], 1), Some(o(1, 5)));
        assert_eq!(strict_majority(&[], 1), None);
        assert_eq!(strict_majority(&[o(2, 1), o(1, 1), o(2, 1)], 3), Some(o(2, 1)));
        assert_eq!((largest_group(&[o(2, 1), o(1, 1), o(2, 1)]), largest_group(&[o(1, 1)]), largest_group(&[])), (2, 1, 0));
    }
}
