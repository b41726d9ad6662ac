//! The inference protocol between clients and providers (`/agora/infer/1`), the verification
//! protocol that brings a disputed request's data to its drawn verifiers (`/agora/verify/1`), and
//! the hashes that tie what travels off-chain to what the chain holds.
//!
//! Every message is SCALE-encoded and sent as one length-prefixed frame (u32 little-endian
//! length, then the bytes). Frames are bounded by [`MAX_FRAME_BYTES`] so a peer can never make the
//! other side buffer without limit.

use crate::{Hash256, Outcome, RequestId, TicketUse};
use alloc::vec::Vec;
use codec::{Decode, Encode};
use polkadot_sdk::sp_crypto_hashing::{blake2_256, sha2_256};

/// The libp2p protocol name of the inference stream.
pub const INFER_PROTOCOL: &str = "/agora/infer/1";

/// Largest frame either side accepts: a prompt of 16k token ids fits with room to spare.
pub const MAX_FRAME_BYTES: u32 = 80 * 1024;

/// Largest prompt the protocol carries, in tokens.
pub const MAX_PROMPT_TOKENS: u32 = 16 * 1024;

/// The hash the chain holds for a token sequence (prompt or output): sha256 of the SCALE
/// encoding of the token ids, so every party computes it the same way from ids alone.
pub fn token_hash(tokens: &[u32]) -> Hash256 {
    sha2_256(&tokens.encode())
}

/// Domain of a client's signature over a [`Use`], so that it is valid as no other message.
pub const USE_DOMAIN: &[u8] = b"agora/use/2";

/// Domain of a provider's acknowledgement of a [`Use`]: it has the prompt and takes the job,
/// so from now on not answering is its fault (a no-show, slashable with this signature).
pub const ACK_DOMAIN: &[u8] = b"agora/ack/2";

/// Domain of a provider's signed outcome: the result it stands by for one [`Use`].
pub const OUTCOME_DOMAIN: &[u8] = b"agora/outcome/2";

/// Longest libp2p PeerId the protocol carries, in bytes (an ed25519 one is 38).
pub const MAX_PEER_ID_BYTES: usize = 64;

/// What a client authorises a request's providers to run, and for whom, signed with its account
/// key (sr25519: the request's `client` on-chain). A provider serves a request only under its
/// client's `Use`, and only to the libp2p peer the `Use` names (the Noise handshake
/// authenticates the peer), so nobody else who learns the request id and the prompt, a
/// co-assigned provider among them, can take the answer or be served before the client.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct Use {
    /// The genesis hash of the chain the request is on: a `Use` signed for one chain (a
    /// testnet, say, with the same keys and request ids) is valid on no other.
    pub chain: Hash256,
    pub request: RequestId,
    pub prompt_hash: Hash256,
    pub prompt_tokens: u32,
    /// The client's libp2p PeerId, as bytes.
    pub client_peer: Vec<u8>,
}

impl Use {
    pub fn new(chain: Hash256, request: RequestId, prompt: &[u32], client_peer: Vec<u8>) -> Self {
        Self { chain, request, prompt_hash: token_hash(prompt), prompt_tokens: prompt.len() as u32, client_peer }
    }

    /// The bytes the client signs: the domain, then the `Use`.
    pub fn signing_payload(&self) -> Vec<u8> {
        (USE_DOMAIN, self).encode()
    }

    /// `H(Use)`: what a provider's acknowledgement and outcome are bound to (blake2-256 of the
    /// SCALE encoding, which the runtime recomputes from the request and the client's peer).
    pub fn hash(&self) -> Hash256 {
        blake2_256(&self.encode())
    }

    /// The bytes a provider signs (sr25519, its account key) to acknowledge this `Use` before
    /// prefill.
    pub fn ack_payload(&self) -> Vec<u8> {
        (ACK_DOMAIN, self.hash()).encode()
    }

    /// The bytes a provider signs over the result it returns for this `Use`.
    pub fn outcome_payload(&self, outcome: &Outcome) -> Vec<u8> {
        (OUTCOME_DOMAIN, self.request, self.hash(), outcome).encode()
    }
}

/// The first and only frame a client sends on an inference stream.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct InferRequest {
    pub request: RequestId,
    /// The prompt as token ids of the release's tokenizer; its hash and length must match the
    /// request on-chain.
    pub prompt: Vec<u32>,
    /// The peer the client reads the answer on: its libp2p PeerId, as bytes.
    pub client_peer: Vec<u8>,
    /// The client's sr25519 signature over [`InferRequest::authorised_use`].
    pub signature: [u8; 64],
}

impl InferRequest {
    /// The [`Use`] this request stands for on chain `chain` (its genesis hash); its signature
    /// must be the client's over it.
    pub fn authorised_use(&self, chain: Hash256) -> Use {
        Use::new(chain, self.request, &self.prompt, self.client_peer.clone())
    }
}

/// A ticket's prompt under its buyer's signed [`TicketUse`]: the first frame of a stream that
/// serves a ticket. No chain call stands between it and the prefill: the provider knows the
/// ticket from its draw.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct TicketRequest {
    pub authorised: TicketUse,
    /// The prompt as token ids; their hash and count must be the `Use`'s.
    pub prompt: Vec<u32>,
    /// The buyer's sr25519 signature over [`TicketUse::signing_payload`].
    pub signature: [u8; 64],
}

/// The first and only frame a client sends on an inference stream: a request's prompt or a
/// ticket's.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub enum InferOpen {
    Request(InferRequest),
    Ticket(TicketRequest),
}

impl From<InferRequest> for InferOpen {
    fn from(request: InferRequest) -> Self {
        Self::Request(request)
    }
}

impl From<TicketRequest> for InferOpen {
    fn from(request: TicketRequest) -> Self {
        Self::Ticket(request)
    }
}

/// What a provider's acknowledgement and signed outcome are bound to: a request's [`Use`] or
/// a ticket's [`TicketUse`]. Each signs under its own domains, so no signature of one is valid
/// for the other.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Authorised {
    Request(Use),
    Ticket(TicketUse),
}

impl Authorised {
    pub fn ack_payload(&self) -> Vec<u8> {
        match self {
            Self::Request(authorised) => authorised.ack_payload(),
            Self::Ticket(authorised) => authorised.ack_payload(),
        }
    }

    pub fn outcome_payload(&self, outcome: &Outcome) -> Vec<u8> {
        match self {
            Self::Request(authorised) => authorised.outcome_payload(outcome),
            Self::Ticket(authorised) => authorised.outcome_payload(outcome),
        }
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Encode, Decode, PartialEq, Eq, Debug)]
pub enum StopReason {
    /// The model produced an end-of-generation token (not part of the output).
    EndOfGeneration,
    /// The request's `max_output_tokens` was reached.
    MaxTokens,
    /// Prompt plus output filled the context.
    ContextFull,
}

/// Why a provider refused or abandoned a request. Each maps to one clear message for the client.
#[derive(Clone, Copy, Encode, Decode, PartialEq, Eq, Debug)]
pub enum InferErrorKind {
    /// The frame did not decode or broke a size limit.
    Malformed,
    /// The chain has no open request with this id.
    UnknownRequest,
    /// This provider is not among the request's assigned providers.
    NotAssigned,
    /// The prompt's hash or token count differs from the request on-chain.
    PromptMismatch,
    /// The prompt does not fit the model's context, or holds a token id outside the vocabulary.
    PromptInvalid,
    /// The provider does not serve the request's release under the request's runtime profile.
    UnsupportedRelease,
    /// Every slot and the whole queue are taken; try again later.
    Busy,
    /// The provider has already served this request to a client.
    AlreadyServed,
    /// Inference failed inside the engine.
    Internal,
    /// The request is not signed by the request's client for the peer that sent it.
    Unauthorized,
    /// The `Use` asks for more than its ticket was bought for (prompt or output length).
    ExceedsTicket,
}

/// A frame from provider to client. A stream is `Accepted Token* (Done | Error)`, or one
/// `Error` when the request is refused.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub enum InferFrame {
    /// The provider took the job: its sr25519 signature over [`Use::ack_payload`], sent before
    /// prefill. With it the client can prove on-chain that a provider which then stays silent
    /// had the prompt (`Verifier::prove_ack`); without it nobody is a no-show.
    Accepted { signature: [u8; 64] },
    Token {
        /// Position in the output, from 0.
        index: u32,
        token: u32,
        /// The token's text as the release's tokenizer renders it (possibly a partial UTF-8 sequence).
        piece: Vec<u8>,
    },
    Done {
        output_hash: Hash256,
        token_count: u32,
        stop: StopReason,
        /// The provider's sr25519 signature over [`Use::outcome_payload`] of this result.
        signature: [u8; 64],
    },
    Error {
        kind: InferErrorKind,
        message: Vec<u8>,
    },
}

/// The libp2p protocol name of the verification stream.
pub const VERIFY_PROTOCOL: &str = "/agora/verify/1";

/// Largest frame of the verification stream: a full-size prompt and eight outputs of a 4k
/// context.
pub const MAX_VERIFY_FRAME_BYTES: u32 = 256 * 1024;

/// The first and only frame sent to a drawn verifier, by whoever holds a disputed request's data:
/// its client (a challenge, or to see a split vote or an audit through) or its providers (their
/// own result). Only hashes and counts are on-chain; this brings the tokens they stand for.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct VerifyRequest {
    pub request: RequestId,
    /// The prompt's token ids; their hash and length must match the request on-chain.
    pub prompt: Vec<u32>,
    /// Outputs of disputed results, each matching one result's hash and token count. Any subset:
    /// the verifier keeps what it was given and judges once it holds every disputed output.
    pub outputs: Vec<Vec<u32>>,
}

/// How a verifier judged one disputed result.
#[derive(Clone, Copy, Encode, Decode, PartialEq, Eq, Debug)]
pub struct JudgedOutcome {
    pub outcome: Outcome,
    pub accepted: bool,
    /// The first position re-scoring rejected; `None` when accepted, or rejected because nobody
    /// brought the output before the verdict was due.
    pub first_bad_position: Option<u32>,
}

/// Why a verifier refused a [`VerifyRequest`].
#[derive(Clone, Copy, Encode, Decode, PartialEq, Eq, Debug)]
pub enum VerifyErrorKind {
    /// The frame did not decode or broke a size limit.
    Malformed,
    /// The request has no open dispute on-chain.
    NoDispute,
    /// This node is not among the dispute's drawn verifiers.
    NotSelected,
    /// The prompt's hash or token count differs from the request on-chain.
    PromptMismatch,
    /// An output matches none of the disputed results' hashes and token counts.
    UnknownOutput,
    /// The verdict window has closed.
    VerdictClosed,
    /// Too many verification streams from this peer at once; try again later.
    Busy,
    /// Re-scoring or the chain failed on the verifier's side.
    Internal,
}

/// The verifier's one reply.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub enum VerifyReply {
    /// The data was kept; this many disputed outputs are still missing.
    Waiting { missing: u32 },
    /// Every disputed result was judged and the verdict is on-chain.
    Judged { verdicts: Vec<JudgedOutcome> },
    Error { kind: VerifyErrorKind, message: Vec<u8> },
}

/// The determinism contract a release is served under (docs/DESIGN.md section 4). Providers that share
/// a profile produce bit-identical tokens for the same request, which is what exact-hash voting
/// needs; its hash goes into every offer and every request.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct RuntimeProfile {
    pub model_sha256: Hash256,
    /// The inference library and its exact version, e.g. `llama-cpp-2=0.1.160`.
    pub engine: Vec<u8>,
    /// Compute backend, e.g. `cpu`.
    pub backend: Vec<u8>,
    /// Instruction-set level llama.cpp was built for, e.g. `x86-64-v3`.
    pub isa: Vec<u8>,
    pub n_ctx: u32,
    /// Prefill chunk size; `n_ubatch` equals it.
    pub n_batch: u32,
    pub flash_attention: bool,
    /// KV-cache element type, e.g. `f16`.
    pub kv_cache_type: Vec<u8>,
    /// The sampler for temperature > 0, e.g. `agora-chacha20-v1`.
    pub sampler: Vec<u8>,
    /// How re-scoring verification judges outputs produced under this profile.
    pub tolerances: Tolerances,
}

/// How far a verifier's teacher-forced prefill may disagree with the claimant's token-by-token
/// decode before a claimed output is rejected (docs/DESIGN.md section 4, tier 1). Prefill and decode
/// use different kernels, so honest logits differ slightly; these bounds are part of the runtime
/// profile, so everyone serving or verifying a release under one profile applies the same rule.
/// The defaults come from the calibration bench (`agora-verifier-calibrate`) on SmolLM2-135M,
/// except δ: 0.3 on 48-token outputs but 0.453 on outputs of up to 384 and 512 tokens, it ships
/// at 0.6, where every cheat of the long-output calibration is still caught (see
/// `verifier/README.md`).
#[derive(Clone, Copy, Encode, Decode, PartialEq, Eq, Debug)]
pub struct Tolerances {
    /// Greedy: the highest rank (0 = the verifier's argmax) a claimed token may have.
    pub max_rank: u32,
    /// Greedy: the largest gap, in thousandths of a logit (= of a nat of log-probability),
    /// between the verifier's top token and a claimed token.
    pub max_margin_milli: u32,
    /// Sampled: the largest difference of one logit between the claimant and the verifier, in
    /// thousandths; it widens the interval of the sampler's uniform draw a claimed token may own.
    pub max_logit_delta_milli: u32,
    /// Greedy: the least share, in parts per million, of positions whose claimed token is
    /// exactly the verifier's argmax.
    pub min_match_ppm: u32,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self { max_rank: 4, max_margin_milli: 600, max_logit_delta_milli: 600, min_match_ppm: 880_000 }
    }
}

impl RuntimeProfile {
    pub fn hash(&self) -> Hash256 {
        sha2_256(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: Hash256 = [7; 32];

    #[test]
    fn token_hash_depends_on_every_id_and_the_length() {
        let base = token_hash(&[1, 2, 3]);
        assert_eq!(base, token_hash(&[1, 2, 3]));
        assert_ne!(base, token_hash(&[1, 2, 4]));
        assert_ne!(base, token_hash(&[1, 2]));
        assert_ne!(base, token_hash(&[1, 2, 3, 0]));
    }

    #[test]
    fn a_full_size_prompt_fits_in_a_frame() {
        let request = InferRequest {
            request: u64::MAX,
            prompt: alloc::vec![u32::MAX; MAX_PROMPT_TOKENS as usize],
            client_peer: alloc::vec![0xff; MAX_PEER_ID_BYTES],
            signature: [0xff; 64],
        };
        assert!(request.encode().len() as u32 <= MAX_FRAME_BYTES);
    }

    #[test]
    fn a_full_size_ticket_prompt_fits_in_a_frame() {
        let request = InferOpen::Ticket(TicketRequest {
            authorised: TicketUse {
                chain: [0xff; 32],
                ticket: u64::MAX,
                prompt_hash: [0xff; 32],
                prompt_tokens: MAX_PROMPT_TOKENS,
                max_output_tokens: u32::MAX,
                sampling: crate::SamplingParams { temperature_milli: u32::MAX, top_k: u32::MAX, top_p_milli: u32::MAX },
                client_peer: crate::PeerIdBytes::truncate_from(alloc::vec![0xff; MAX_PEER_ID_BYTES]),
            },
            prompt: alloc::vec![u32::MAX; MAX_PROMPT_TOKENS as usize],
            signature: [0xff; 64],
        });
        assert!(request.encode().len() as u32 <= MAX_FRAME_BYTES);
    }

    #[test]
    fn a_ticket_signature_is_valid_for_no_request_message_and_back() {
        let request = Use::new(CHAIN, 1, &[1, 2, 3], alloc::vec![9; 38]);
        let ticket = TicketUse {
            chain: CHAIN,
            ticket: 1,
            prompt_hash: request.prompt_hash,
            prompt_tokens: 3,
            max_output_tokens: 8,
            sampling: Default::default(),
            client_peer: crate::PeerIdBytes::truncate_from(alloc::vec![9; 38]),
        };
        let outcome = Outcome { output_hash: [1; 32], token_count: 4 };
        let (request, ticket) = (Authorised::Request(request), Authorised::Ticket(ticket));
        let payloads = [
            request.ack_payload(),
            request.outcome_payload(&outcome),
            ticket.ack_payload(),
            ticket.outcome_payload(&outcome),
        ];
        for (i, a) in payloads.iter().enumerate() {
            for b in &payloads[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(payloads[2].starts_with(&crate::tickets::TICKET_ACK_DOMAIN.encode()));
    }

    #[test]
    fn a_use_binds_chain_request_prompt_and_peer() {
        let base = Use::new(CHAIN, 1, &[1, 2, 3], alloc::vec![9; 38]);
        assert_eq!(base.signing_payload(), Use::new(CHAIN, 1, &[1, 2, 3], alloc::vec![9; 38]).signing_payload());
        for other in [Use::new(CHAIN, 2, &[1, 2, 3], alloc::vec![9; 38]), Use::new(CHAIN, 1, &[1, 2, 4], alloc::vec![9; 38]), Use::new(CHAIN, 1, &[1, 2, 3], alloc::vec![8; 38]), Use::new([8; 32], 1, &[1, 2, 3], alloc::vec![9; 38])] {
            assert_ne!(base.signing_payload(), other.signing_payload());
        }
        assert!(base.signing_payload().starts_with(&(USE_DOMAIN).encode()));
    }

    #[test]
    fn acknowledgements_and_outcomes_are_bound_to_their_use_and_domain() {
        let base = Use::new(CHAIN, 1, &[1, 2, 3], alloc::vec![9; 38]);
        let peer = Use::new(CHAIN, 1, &[1, 2, 3], alloc::vec![8; 38]);
        assert_ne!(base.ack_payload(), peer.ack_payload());
        let outcome = Outcome { output_hash: [1; 32], token_count: 4 };
        assert_ne!(base.outcome_payload(&outcome), peer.outcome_payload(&outcome));
        assert_ne!(base.outcome_payload(&outcome), base.outcome_payload(&Outcome { token_count: 5, ..outcome }));
        // No signed message of one kind is a valid message of another.
        let payloads = [base.signing_payload(), base.ack_payload(), base.outcome_payload(&outcome)];
        for (i, a) in payloads.iter().enumerate() {
            for b in &payloads[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(base.ack_payload().starts_with(&ACK_DOMAIN.encode()));
    }

    #[test]
    fn a_full_size_verification_fits_in_a_frame() {
        let request = VerifyRequest {
            request: u64::MAX,
            prompt: alloc::vec![u32::MAX; MAX_PROMPT_TOKENS as usize],
            outputs: alloc::vec![alloc::vec![u32::MAX; 4096]; crate::MAX_REDUNDANCY as usize],
        };
        assert!(request.encode().len() as u32 <= MAX_VERIFY_FRAME_BYTES);
    }
}
