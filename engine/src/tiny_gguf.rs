//! A tiny llama GGUF with random weights, written by the project itself, for fast tests.
//!
//! It is a real llama-architecture model (2 blocks, 64-wide, grouped-query attention, SwiGLU)
//! that llama.cpp loads and runs through the same code paths as a real model, with a byte-level
//! SentencePiece vocabulary (`<unk>`, `<s>`, `</s>` and the 256 byte tokens). Its outputs are
//! meaningless but deterministic, which is all the engine's tests need.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{self, Write};
use std::path::Path;

pub const N_VOCAB: u32 = 3 + 256;
pub const N_EMBD: u64 = 64;
pub const N_HEAD: u32 = 4;
pub const N_HEAD_KV: u32 = 2;
pub const N_FF: u64 = 128;
pub const N_LAYER: u32 = 2;
pub const N_CTX_TRAIN: u32 = 512;
pub const EOS: u32 = 2;

const ALIGNMENT: u64 = 32;

enum Value {
    U32(u32),
    F32(f32),
    Str(String),
    StrArray(Vec<String>),
    F32Array(Vec<f32>),
    I32Array(Vec<i32>),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    // GGUF value type tags.
    const U32: u32 = 4;
    const I32: u32 = 5;
    const F32: u32 = 6;
    const STR: u32 = 8;
    const ARRAY: u32 = 9;
    let tag = |out: &mut Vec<u8>, t: u32| out.extend_from_slice(&t.to_le_bytes());
    match value {
        Value::U32(v) => {
            tag(out, U32);
            out.extend_from_slice(&v.to_le_bytes());
        },
        Value::F32(v) => {
            tag(out, F32);
            out.extend_from_slice(&v.to_le_bytes());
        },
        Value::Str(s) => {
            tag(out, STR);
            put_str(out, s);
        },
        Value::StrArray(items) => {
            tag(out, ARRAY);
            tag(out, STR);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|s| put_str(out, s));
        },
        Value::F32Array(items) => {
            tag(out, ARRAY);
            tag(out, F32);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        },
        Value::I32Array(items) => {
            tag(out, ARRAY);
            tag(out, I32);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        },
    }
}

struct Tensor {
    name: String,
    /// GGUF order: the first dimension is the innermost (contiguous) one.
    dims: Vec<u64>,
    data: Vec<f32>,
}

fn random_tensor(rng: &mut ChaCha8Rng, name: String, dims: Vec<u64>, scale: f32) -> Tensor {
    let n: u64 = dims.iter().product();
    let data = (0..n)
        .map(|_| {
            let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32; // [0, 1)
            (unit * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor { name, dims, data }
}

fn ones(name: String, n: u64) -> Tensor {
    Tensor { name, dims: vec![n], data: vec![1.0; n as usize] }
}

fn vocabulary() -> (Vec<String>, Vec<f32>, Vec<i32>) {
    // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte.
    let mut tokens = vec!["<unk>".to_string(), "<s>".to_string(), "</s>".to_string()];
    let mut types = vec![2, 3, 3];
    for byte in 0..=255u8 {
        tokens.push(format!("<0x{byte:02X}>"));
        types.push(6);
    }
    let scores = vec![0.0; tokens.len()];
    (tokens, scores, types)
}

/// Writes the tiny model to `path`. The same seed always gives the same bytes.
pub fn write(path: &Path, seed: u64) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let head_dim = N_EMBD / u64::from(N_HEAD);
    let n_embd_kv = head_dim * u64::from(N_HEAD_KV);
    let vocab = u64::from(N_VOCAB);
    let scale = 1.0 / (N_EMBD as f32).sqrt();

    let mut tensors = vec![random_tensor(&mut rng, "token_embd.weight".into(), vec![N_EMBD, vocab], 1.0)];
    for layer in 0..N_LAYER {
        let name = |part: &str| format!("blk.{layer}.{part}.weight");
        tensors.push(ones(name("attn_norm"), N_EMBD));
        tensors.push(random_tensor(&mut rng, name("attn_q"), vec![N_EMBD, N_EMBD], scale));
        tensors.push(random_tensor(&mut rng, name("attn_k"), vec![N_EMBD, n_embd_kv], scale));
        tensors.push(random_tensor(&mut rng, name("attn_v"), vec![N_EMBD, n_embd_kv], scale));
        tensors.push(random_tensor(&mut rng, name("attn_output"), vec![N_EMBD, N_EMBD], scale));
        tensors.push(ones(name("ffn_norm"), N_EMBD));
        tensors.push(random_tensor(&mut rng, name("ffn_gate"), vec![N_EMBD, N_FF], scale));
        tensors.push(random_tensor(&mut rng, name("ffn_up"), vec![N_EMBD, N_FF], scale));
        tensors.push(random_tensor(&mut rng, name("ffn_down"), vec![N_FF, N_EMBD], 1.0 / (N_FF as f32).sqrt()));
    }
    tensors.push(ones("output_norm.weight".into(), N_EMBD));
    tensors.push(random_tensor(&mut rng, "output.weight".into(), vec![N_EMBD, vocab], 3.0 * scale));

    let (tokens, scores, types) = vocabulary();
    let metadata = vec![
        ("general.architecture", Value::Str("llama".into())),
        ("general.name", Value::Str("agora-tiny-random".into())),
        ("general.file_type", Value::U32(0)),
        ("llama.context_length", Value::U32(N_CTX_TRAIN)),
        ("llama.embedding_length", Value::U32(N_EMBD as u32)),
        ("llama.block_count", Value::U32(N_LAYER)),
        ("llama.feed_forward_length", Value::U32(N_FF as u32)),
        ("llama.attention.head_count", Value::U32(N_HEAD)),
        ("llama.attention.head_count_kv", Value::U32(N_HEAD_KV)),
        ("llama.rope.dimension_count", Value::U32(head_dim as u32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.vocab_size", Value::U32(N_VOCAB)),
        ("tokenizer.ggml.model", Value::Str("llama".into())),
        ("tokenizer.ggml.tokens", Value::StrArray(tokens)),
        ("tokenizer.ggml.scores", Value::F32Array(scores)),
        ("tokenizer.ggml.token_type", Value::I32Array(types)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(EOS)),
    ];

    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in &metadata {
        put_str(&mut out, key);
        put_value(&mut out, value);
    }
    let mut offset = 0u64;
    for tensor in &tensors {
        put_str(&mut out, &tensor.name);
        out.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
        tensor.dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
        out.extend_from_slice(&0u32.to_le_bytes()); // F32
        out.extend_from_slice(&offset.to_le_bytes());
        offset = (offset + tensor.data.len() as u64 * 4).next_multiple_of(ALIGNMENT);
    }
    let pad = |out: &mut Vec<u8>| out.resize((out.len() as u64).next_multiple_of(ALIGNMENT) as usize, 0);
    pad(&mut out);
    for tensor in &tensors {
        tensor.data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        pad(&mut out);
    }
    let mut file = std::fs::File::create(path)?;
    file.write_all(&out)?;
    file.sync_all()
}
