//! Splitting text into the words BPE runs on, as llama.cpp's `smollm` and `gpt2`
//! pre-tokenizers do: optionally every number character on its own first, then GPT-2's
//! pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! within each piece (llama.cpp's hand-written form of it, so edge cases agree).

use regex::Regex;
use std::sync::OnceLock;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Class {
    letter: bool,
    number: bool,
    space: bool,
    /// Outside the piece being split: matches nothing.
    outside: bool,
}

fn class(c: char) -> Class {
    static CATEGORIES: OnceLock<(Regex, Regex)> = OnceLock::new();
    if c.is_ascii() {
        return Class { letter: c.is_ascii_alphabetic(), number: c.is_ascii_digit(), space: c.is_ascii_whitespace() || c == '\x0b', outside: false };
    }
    let (letter, number) = CATEGORIES.get_or_init(|| (Regex::new(r"^\p{L}$").expect("valid"), Regex::new(r"^\p{N}$").expect("valid")));
    let s = c.encode_utf8(&mut [0; 4]).to_owned();
    Class { letter: letter.is_match(&s), number: number.is_match(&s), space: c.is_whitespace(), outside: false }
}

/// Every number character alone, and the runs between them.
pub(crate) fn isolate_digits(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if class(c).number {
            if start < i {
                out.push(&text[start..i]);
            }
            out.push(&text[i..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// GPT-2's pattern over one piece.
pub(crate) fn gpt2_words(piece: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = piece.char_indices().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let class_at = |i: usize| at(i).map(class).unwrap_or(Class { outside: true, ..Class::default() });
    // Word boundaries, as character positions.
    let mut bounds: Vec<usize> = Vec::new();
    let mut pos = 0;
    let cut = |end: usize, bounds: &mut Vec<usize>| {
        if bounds.last().copied().unwrap_or(0) < end {
            bounds.push(end);
        }
    };
    while pos < n {
        let c = chars[pos].1;
        let here = class_at(pos);
        if c == '\'' && pos + 1 < n {
            let next = at(pos + 1).unwrap_or('\0');
            if matches!(next, 's' | 't' | 'm' | 'd') {
                pos += 2;
                cut(pos, &mut bounds);
                continue;
            }
            if pos + 2 < n {
                let pair = (next, at(pos + 2).unwrap_or('\0'));
                if matches!(pair, ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    pos += 3;
                    cut(pos, &mut bounds);
                    continue;
                }
            }
        }
        let lead = if c == ' ' { class_at(pos + 1) } else { here };
        let other = |k: Class| !(k.space || k.letter || k.number) && !k.outside;
        let run: Option<fn(Class) -> bool> = if lead.letter {
            Some(|k| k.letter)
        } else if lead.number {
            Some(|k| k.number)
        } else if other(lead) {
            Some(|k| !(k.space || k.letter || k.number) && !k.outside)
        } else {
            None
        };
        if let Some(more) = run {
            if c == ' ' {
                pos += 1;
            }
            while pos < n && more(class_at(pos)) {
                pos += 1;
            }
            cut(pos, &mut bounds);
            continue;
        }
        let mut spaces = 0;
        while class_at(pos + spaces).space {
            spaces += 1;
        }
        if spaces > 1 && pos + spaces < n {
            // `\s+(?!\S)`: the last space goes with the word after it.
            pos += spaces - 1;
            cut(pos, &mut bounds);
            continue;
        }
        if spaces > 0 {
            pos += spaces;
            cut(pos, &mut bounds);
            continue;
        }
        pos += 1;
        cut(pos, &mut bounds);
    }
    let byte = |i: usize| chars.get(i).map_or(piece.len(), |&(b, _)| b);
    let mut start = 0;
    bounds
        .into_iter()
        .map(|end| {
            let word = &piece[byte(start)..byte(end)];
            start = end;
            word
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_words_split_like_the_pattern() {
        assert_eq!(gpt2_words("Hello world's  end!!"), ["Hello", " world", "'s", " ", " end", "!!"]);
        assert_eq!(gpt2_words("  x\n\n"), [" ", " x", "\n\n"]);
        assert_eq!(gpt2_words("é, ça"), ["é", ",", " ça"]);
    }

    #[test]
    fn digits_stand_alone() {
        assert_eq!(isolate_digits("ab 123c"), ["ab ", "1", "2", "3", "c"]);
        assert_eq!(isolate_digits("٣x"), ["٣", "x"]);
    }
}
