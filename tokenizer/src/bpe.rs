//! Byte-pair merges: within a word, the adjacent pair of lowest rank merges first (the leftmost
//! of equal ranks), until no pair of the merge table is left.

use std::collections::HashMap;

/// The merge table: `"left right"` (the GGUF's own spelling) to its rank.
pub(crate) struct Merges(HashMap<String, u32>);

impl Merges {
    pub(crate) fn new<'a>(lines: impl IntoIterator<Item = &'a str>) -> Self {
        Self(lines.into_iter().enumerate().map(|(rank, line)| (line.to_owned(), rank as u32)).collect())
    }

    fn rank(&self, left: &str, right: &str, key: &mut String) -> Option<u32> {
        key.clear();
        key.push_str(left);
        key.push(' ');
        key.push_str(right);
        self.0.get(key.as_str()).copied()
    }

    /// The symbols `word` (in the byte-level alphabet) merges into.
    pub(crate) fn apply(&self, word: &str) -> Vec<String> {
        let mut symbols: Vec<String> = word.chars().map(String::from).collect();
        let mut key = String::new();
        loop {
            let best = (0..symbols.len().saturating_sub(1))
                .filter_map(|i| Some((self.rank(&symbols[i], &symbols[i + 1], &mut key)?, i)))
                .min();
            let Some((_, i)) = best else { return symbols };
            let right = symbols.remove(i + 1);
            symbols[i].push_str(&right);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_rank_first_then_leftmost() {
        let merges = Merges::new(["a b", "b c", "ab c", "c c"]);
        assert_eq!(merges.apply("abc"), ["abc"]);
        assert_eq!(merges.apply("bcc"), ["bc", "c"]);
        assert_eq!(merges.apply("cccc"), ["cc", "cc"]);
        assert_eq!(merges.apply("x"), ["x"]);
    }
}
