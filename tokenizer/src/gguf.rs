//! The key–value metadata at the head of a GGUF file (format versions 2 and 3). Tensors are
//! never read: a tokenizer needs the vocabulary, the merges and a few settings.
//!
//! Every length is checked against a limit before anything is allocated, so a hostile file can
//! make the reader fail but not exhaust memory.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// The most key–value pairs, array items and string bytes one file may declare.
const MAX_KEYS: u64 = 1 << 16;
const MAX_ITEMS: u64 = 1 << 24;
const MAX_STRING: u64 = 1 << 26;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U64(v) => Some(v),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn into_array(self) -> Option<Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a GGUF file (it does not start with `GGUF`)")]
    NotGguf,
    #[error("GGUF version {0} is not supported (only 2 and 3)")]
    Version(u32),
    #[error("the GGUF metadata is malformed: {0}")]
    Malformed(&'static str),
}

/// The metadata of one GGUF file.
#[derive(Clone, Debug, Default)]
pub struct Metadata(HashMap<String, Value>);

impl Metadata {
    /// Reads the metadata at the head of `path`.
    pub fn read(path: &Path) -> Result<Self, GgufError> {
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        Self::from_reader(&mut reader)
    }

    pub fn from_reader(r: &mut impl Read) -> Result<Self, GgufError> {
        let mut magic = [0u8; 4];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(GgufError::NotGguf);
        }
        let version = u32::from_le_bytes(bytes(r)?);
        if !(2..=3).contains(&version) {
            return Err(GgufError::Version(version));
        }
        let _tensors = u64::from_le_bytes(bytes(r)?);
        let keys = u64::from_le_bytes(bytes(r)?);
        if keys > MAX_KEYS {
            return Err(GgufError::Malformed("too many metadata keys"));
        }
        let mut map = HashMap::new();
        for _ in 0..keys {
            let key = string(r)?;
            let kind = u32::from_le_bytes(bytes(r)?);
            map.insert(key, value(r, kind, 0)?);
        }
        Ok(Self(map))
    }

    /// Metadata made in memory (tests, tools that write GGUFs).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// Moves a (large) value out, so the vocabulary is not kept twice.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// A value as text, as llama.cpp's `meta_val_str` prints it for scalars.
    pub fn text(&self, key: &str) -> Option<String> {
        Some(match self.get(key)? {
            Value::Str(s) => s.clone(),
            Value::U64(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) => return None,
        })
    }
}

fn bytes<const N: usize>(r: &mut impl Read) -> Result<[u8; N], GgufError> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn string(r: &mut impl Read) -> Result<String, GgufError> {
    let len = u64::from_le_bytes(bytes(r)?);
    if len > MAX_STRING {
        return Err(GgufError::Malformed("a string is longer than 64 MiB"));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    // Token texts are byte strings in principle; llama.cpp keeps them as bytes too.
    Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn value(r: &mut impl Read, kind: u32, depth: u8) -> Result<Value, GgufError> {
    Ok(match kind {
        0 => Value::U64(u8::from_le_bytes(bytes(r)?).into()),
        1 => Value::I64(i8::from_le_bytes(bytes(r)?).into()),
        2 => Value::U64(u16::from_le_bytes(bytes(r)?).into()),
        3 => Value::I64(i16::from_le_bytes(bytes(r)?).into()),
        4 => Value::U64(u32::from_le_bytes(bytes(r)?).into()),
        5 => Value::I64(i32::from_le_bytes(bytes(r)?).into()),
        6 => Value::F64(f32::from_le_bytes(bytes(r)?).into()),
        7 => Value::Bool(u8::from_le_bytes(bytes(r)?) != 0),
        8 => Value::Str(string(r)?),
        9 => {
            if depth > 0 {
                return Err(GgufError::Malformed("nested arrays"));
            }
            let item_kind = u32::from_le_bytes(bytes(r)?);
            let len = u64::from_le_bytes(bytes(r)?);
            if len > MAX_ITEMS {
                return Err(GgufError::Malformed("an array has more than 16M items"));
            }
            let mut items = Vec::with_capacity(len.min(1 << 16) as usize);
            for _ in 0..len {
                items.push(value(r, item_kind, depth + 1)?);
            }
            Value::Array(items)
        },
        10 => Value::U64(u64::from_le_bytes(bytes(r)?)),
        11 => Value::I64(i64::from_le_bytes(bytes(r)?)),
        12 => Value::F64(f64::from_le_bytes(bytes(r)?)),
        _ => return Err(GgufError::Malformed("unknown value type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(keys: u64) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(keys.to_le_bytes());
        out
    }

    fn key(out: &mut Vec<u8>, name: &str, kind: u32) {
        out.extend((name.len() as u64).to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(kind.to_le_bytes());
    }

    #[test]
    fn reads_scalars_strings_and_arrays() {
        let mut file = header(3);
        key(&mut file, "general.architecture", 8);
        file.extend(5u64.to_le_bytes());
        file.extend(b"llama");
        key(&mut file, "llama.context_length", 4);
        file.extend(8192u32.to_le_bytes());
        key(&mut file, "tokenizer.ggml.tokens", 9);
        file.extend(8u32.to_le_bytes());
        file.extend(2u64.to_le_bytes());
        for t in ["a", "bc"] {
            file.extend((t.len() as u64).to_le_bytes());
            file.extend(t.as_bytes());
        }
        let meta = Metadata::from_reader(&mut &file[..]).unwrap();
        assert_eq!(meta.str("general.architecture"), Some("llama"));
        assert_eq!(meta.u64("llama.context_length"), Some(8192));
        assert_eq!(meta.text("llama.context_length").as_deref(), Some("8192"));
        let tokens: Vec<_> = meta.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(tokens, ["a", "bc"]);
    }

    #[test]
    fn hostile_headers_fail_without_allocating() {
        assert!(matches!(Metadata::from_reader(&mut &b"GGML...."[..]), Err(GgufError::NotGguf)));
        let mut huge = header(1);
        key(&mut huge, "x", 8);
        huge.extend(u64::MAX.to_le_bytes());
        assert!(matches!(Metadata::from_reader(&mut &huge[..]), Err(GgufError::Malformed(_))));
        let mut array = header(1);
        key(&mut array, "x", 9);
        array.extend(4u32.to_le_bytes());
        array.extend(u64::MAX.to_le_bytes());
        assert!(matches!(Metadata::from_reader(&mut &array[..]), Err(GgufError::Malformed(_))));
        let mut cut = header(2);
        key(&mut cut, "x", 4);
        assert!(matches!(Metadata::from_reader(&mut &cut[..]), Err(GgufError::Io(_))));
        let mut version = b"GGUF".to_vec();
        version.extend(9u32.to_le_bytes());
        assert!(matches!(Metadata::from_reader(&mut &version[..]), Err(GgufError::Version(9))));
    }
}
