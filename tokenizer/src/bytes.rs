//! GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable character,
//! so that BPE works on text while any byte sequence stays representable.

use std::sync::OnceLock;

struct Alphabet {
    char_of: [char; 256],
    byte_of: std::collections::HashMap<char, u8>,
}

fn alphabet() -> &'static Alphabet {
    static ALPHABET: OnceLock<Alphabet> = OnceLock::new();
    ALPHABET.get_or_init(|| {
        let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let mut char_of = ['\0'; 256];
        let mut shifted = 0;
        for b in 0..256u32 {
            let c = if printable(b) {
                b
            } else {
                shifted += 1;
                255 + shifted
            };
            char_of[b as usize] = char::from_u32(c).expect("below the surrogates");
        }
        let byte_of = char_of.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
        Alphabet { char_of, byte_of }
    })
}

/// `bytes` in the byte-level alphabet.
pub(crate) fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| alphabet().char_of[b as usize]).collect()
}

/// The bytes a token's text stands for; a character outside the alphabet (a malformed
/// vocabulary) stands for itself.
pub(crate) fn decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match alphabet().byte_of.get(&c) {
            Some(&b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_byte_round_trips_and_space_is_g_dot() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(super::decode(&super::encode(&all)), all);
        assert_eq!(super::encode(b" a\n"), "\u{120}a\u{10A}");
    }
}
