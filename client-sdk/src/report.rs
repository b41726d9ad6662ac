//! Chain records and results as typed views: `Serialize` for `--json` and the gateway, `Display`
//! for humans. Amounts are strings in JSON (u128 does not fit a JSON number).

use crate::dispute::DisputeReport;
use crate::models::text;
use crate::receipt_file::VerifiedReceipt;
use crate::run::{ProviderReport, RunResult};
use crate::tickets::TicketAnswer;
use agora_chain_client::{types, AccountId, ModelRelease, ProviderRecord, Receipt, TicketReceipt};
use agora_primitives::wire::VerifyReply;
use serde::Serialize;
use std::fmt;

fn lower_debug(value: &impl fmt::Debug) -> String {
    format!("{value:?}").to_lowercase()
}

fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A model release.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseView {
    pub sha256: String,
    pub family: String,
    pub version: String,
    pub size_bytes: u64,
    pub architecture: String,
    pub quantization: String,
    pub license: String,
    pub parent: Option<String>,
    pub status: String,
    pub publisher: String,
    pub published_at: u32,
    pub status_changed_at: u32,
}

impl From<&ModelRelease> for ReleaseView {
    fn from(r: &ModelRelease) -> Self {
        Self {
            sha256: hex::encode(r.info.sha256),
            family: text(&r.info.family.0),
            version: text(&r.info.version.0),
            size_bytes: r.info.size_bytes,
            architecture: text(&r.info.architecture.0),
            quantization: text(&r.info.quantization.0),
            license: text(&r.info.license.0),
            parent: r.info.parent.map(hex::encode),
            status: lower_debug(&r.status),
            publisher: r.publisher.to_string(),
            published_at: r.published_at,
            status_changed_at: r.status_changed_at,
        }
    }
}

impl ReleaseView {
    /// One line of a family's history.
    pub fn history_line(&self) -> String {
        let parent = self.parent.as_ref().map(|p| format!("  parent {p}")).unwrap_or_default();
        format!("{}  {:<10} {:<11} block {:<6} {}{parent}", self.sha256, self.version, self.status, self.published_at, self.quantization)
    }
}

impl fmt::Display for ReleaseView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parent = self.parent.clone().unwrap_or_else(|| "none".into());
        for (key, value) in [
            ("sha256", self.sha256.clone()),
            ("family", self.family.clone()),
            ("version", self.version.clone()),
            ("size_bytes", self.size_bytes.to_string()),
            ("architecture", self.architecture.clone()),
            ("quantization", self.quantization.clone()),
            ("license", self.license.clone()),
            ("parent", parent),
            ("status", self.status.clone()),
            ("publisher", self.publisher.clone()),
            ("published_at", self.published_at.to_string()),
            ("status_changed_at", self.status_changed_at.to_string()),
        ] {
            writeln!(f, "{key:<18} {value}")?;
        }
        Ok(())
    }
}

/// One `(release, runtime profile)` a provider offers.
#[derive(Clone, Debug, Serialize)]
pub struct OfferView {
    pub release: String,
    pub runtime_profile: String,
    pub tokens_per_sec: f64,
}

/// A provider's record.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderView {
    pub account: String,
    pub status: String,
    pub stake: String,
    pub reputation_ppm: u32,
    pub agreed: u32,
    pub wrong: u32,
    pub no_shows: u32,
    pub open_jobs: u32,
    pub price_per_1k_input: String,
    pub price_per_1k_output: String,
    pub max_context: u32,
    pub max_concurrent_jobs: u32,
    pub hardware_class: String,
    pub multiaddrs: Vec<String>,
    pub offers: Vec<OfferView>,
}

impl ProviderView {
    pub fn new(who: &AccountId, r: &ProviderRecord) -> Self {
        Self {
            account: who.to_string(),
            status: match r.status {
                types::ProviderStatus::Online => "online".to_string(),
                types::ProviderStatus::Offline => "offline".to_string(),
                types::ProviderStatus::Unbonding { unlocks_at } => format!("unbonding until block {unlocks_at}"),
            },
            stake: r.stake.to_string(),
            reputation_ppm: r.reputation.score_ppm,
            agreed: r.reputation.agreed,
            wrong: r.reputation.wrong,
            no_shows: r.reputation.no_shows,
            open_jobs: r.open_jobs,
            price_per_1k_input: r.manifest.price_per_1k_input.to_string(),
            price_per_1k_output: r.manifest.price_per_1k_output.to_string(),
            max_context: r.manifest.max_context,
            max_concurrent_jobs: r.manifest.max_concurrent_jobs,
            hardware_class: text(&r.manifest.hardware_class.0),
            multiaddrs: r.manifest.multiaddrs.0.iter().map(|a| text(&a.0)).collect(),
            offers: r
                .manifest
                .offers
                .0
                .iter()
                .map(|o| OfferView {
                    release: hex::encode(o.release),
                    runtime_profile: hex::encode(o.runtime_profile),
                    tokens_per_sec: f64::from(o.milli_tokens_per_sec) / 1000.0,
                })
                .collect(),
        }
    }
}

impl fmt::Display for ProviderView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {:<8} reputation {:>7} ppm  price in/out {}/{} per 1k  stake {}",
            self.account, self.status, self.reputation_ppm, self.price_per_1k_input, self.price_per_1k_output, self.stake
        )
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PaidView {
    pub provider: String,
    pub amount: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SlashedView {
    pub provider: String,
    pub amount: String,
    pub reason: String,
}

fn paid_views(list: &[(AccountId, u128)]) -> Vec<PaidView> {
    list.iter().map(|(who, amount)| PaidView { provider: who.to_string(), amount: amount.to_string() }).collect()
}

fn slashed_views(list: &[(AccountId, u128, types::JobOutcome)]) -> Vec<SlashedView> {
    list.iter().map(|(who, amount, why)| SlashedView { provider: who.to_string(), amount: amount.to_string(), reason: lower_debug(why) }).collect()
}

fn write_paid_and_slashed(f: &mut fmt::Formatter<'_>, paid: &[PaidView], slashed: &[SlashedView]) -> fmt::Result {
    for p in paid {
        writeln!(f, "  paid     {}  {}", p.provider, p.amount)?;
    }
    for s in slashed {
        writeln!(f, "  slashed  {}  {} ({})", s.provider, s.amount, s.reason)?;
    }
    Ok(())
}

/// A settled request's receipt.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptView {
    pub request: u64,
    pub client: String,
    pub release: String,
    pub output_hash: Option<String>,
    pub token_count: Option<u32>,
    pub paid: Vec<PaidView>,
    pub slashed: Vec<SlashedView>,
    /// Providers never shown to have had the prompt, and the reservation fee each was paid.
    pub reserved: Vec<PaidView>,
    pub refunded: String,
    pub settled_at: u32,
}

impl From<&Receipt> for ReceiptView {
    fn from(r: &Receipt) -> Self {
        Self {
            request: r.request,
            client: r.client.to_string(),
            release: hex::encode(r.release),
            output_hash: r.winning.as_ref().map(|w| hex::encode(w.output_hash)),
            token_count: r.winning.as_ref().map(|w| w.token_count),
            paid: paid_views(&r.paid.0),
            slashed: slashed_views(&r.slashed.0),
            reserved: paid_views(&r.reserved.0),
            refunded: r.refunded.to_string(),
            settled_at: r.settled_at,
        }
    }
}

impl fmt::Display for ReceiptView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "receipt of request {} (settled in block {})", self.request, self.settled_at)?;
        match (&self.output_hash, self.token_count) {
            (Some(hash), Some(count)) => writeln!(f, "  output   {hash} ({count} tokens)")?,
            _ => writeln!(f, "  output   no majority")?,
        }
        write_paid_and_slashed(f, &self.paid, &self.slashed)?;
        for p in &self.reserved {
            writeln!(f, "  reserved {}  {} (never shown to have had the prompt)", p.provider, p.amount)?;
        }
        writeln!(f, "  refunded {}", self.refunded)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct VerdictView {
    pub output_hash: String,
    pub token_count: u32,
    pub accepted: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct FeeView {
    pub verifier: String,
    pub fee: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryView {
    pub verifier: String,
    pub delivery: String,
}

/// How a dispute was resolved.
#[derive(Clone, Debug, Serialize)]
pub struct DisputeView {
    pub request: u64,
    pub cause: &'static str,
    pub decided: Vec<VerdictView>,
    pub verifiers_paid: Vec<FeeView>,
    pub silent: Vec<String>,
    pub deliveries: Vec<DeliveryView>,
    pub resolved_at: u32,
    pub status: String,
}

fn delivery(reply: &Result<VerifyReply, String>) -> String {
    match reply {
        Ok(VerifyReply::Judged { .. }) => "judged".into(),
        Ok(VerifyReply::Waiting { missing }) => format!("taken, waiting for {missing} more output(s)"),
        Ok(VerifyReply::Error { kind, message }) => format!("refused ({kind:?}): {}", String::from_utf8_lossy(message)),
        Err(e) => format!("unreachable: {e}"),
    }
}

impl From<&DisputeReport> for DisputeView {
    fn from(d: &DisputeReport) -> Self {
        let r = &d.resolution;
        Self {
            request: d.request,
            cause: d.cause.name(),
            decided: r
                .decided
                .0
                .iter()
                .map(|v| VerdictView { output_hash: hex::encode(v.outcome.output_hash), token_count: v.outcome.token_count, accepted: v.accepted })
                .collect(),
            verifiers_paid: r.verifiers_paid.0.iter().map(|(who, fee)| FeeView { verifier: who.to_string(), fee: fee.to_string() }).collect(),
            silent: r.silent.0.iter().map(|who| who.to_string()).collect(),
            deliveries: d.deliveries.iter().map(|(who, reply)| DeliveryView { verifier: who.to_string(), delivery: delivery(reply) }).collect(),
            resolved_at: r.resolved_at,
            status: lower_debug(&d.status),
        }
    }
}

impl fmt::Display for DisputeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} of request {} resolved in block {}", self.cause, self.request, self.resolved_at)?;
        for v in &self.decided {
            let verdict = if v.accepted { "accepted" } else { "rejected" };
            writeln!(f, "  {verdict:<9}{} ({} tokens)", v.output_hash, v.token_count)?;
        }
        if self.decided.is_empty() {
            writeln!(f, "  no verifier judged it")?;
        }
        for d in &self.deliveries {
            writeln!(f, "  verifier {}: {}", d.verifier, d.delivery)?;
        }
        for who in &self.silent {
            writeln!(f, "  silent   {who} (slashed)")?;
        }
        Ok(())
    }
}

/// How one provider answered.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderAnswerView {
    pub provider: String,
    pub tokens: usize,
    pub output_hash: Option<String>,
    pub failure: Option<String>,
    pub time_to_first_token_ms: Option<f64>,
}

impl From<&ProviderReport> for ProviderAnswerView {
    fn from(p: &ProviderReport) -> Self {
        Self {
            provider: p.provider.to_string(),
            tokens: p.tokens.len(),
            output_hash: p.answered().map(hex::encode),
            failure: p.failure.clone(),
            time_to_first_token_ms: p.time_to_first_token.map(millis),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TimingsView {
    pub escrow: f64,
    pub assignment: f64,
    pub dial: f64,
    pub first_token: f64,
    pub generation: f64,
    pub settlement: f64,
}

/// A whole run: the answer, who gave it, the receipt.
#[derive(Clone, Debug, Serialize)]
pub struct RunView {
    pub request: u64,
    pub release: String,
    pub text: String,
    pub tokens: Vec<u32>,
    pub output_hash: String,
    pub agreeing: usize,
    pub verified: bool,
    pub status: String,
    pub stream_corrected: bool,
    pub receipt: Option<ReceiptView>,
    pub dispute: Option<DisputeView>,
    pub providers: Vec<ProviderAnswerView>,
    pub timings_ms: TimingsView,
}

impl From<&RunResult> for RunView {
    fn from(r: &RunResult) -> Self {
        Self {
            request: r.request,
            release: hex::encode(r.release),
            text: r.text.clone(),
            tokens: r.tokens.clone(),
            output_hash: hex::encode(r.output_hash),
            agreeing: r.agreeing,
            verified: r.verified,
            status: lower_debug(&r.status),
            stream_corrected: r.stream_corrected,
            receipt: r.receipt.as_ref().map(ReceiptView::from),
            dispute: r.dispute.as_ref().map(DisputeView::from),
            providers: r.providers.iter().map(ProviderAnswerView::from).collect(),
            timings_ms: TimingsView {
                escrow: millis(r.timings.escrow),
                assignment: millis(r.timings.assignment),
                dial: millis(r.timings.dial),
                first_token: millis(r.timings.first_token),
                generation: millis(r.timings.generation),
                settlement: millis(r.timings.settlement),
            },
        }
    }
}

/// A settled ticket's receipt.
#[derive(Clone, Debug, Serialize)]
pub struct TicketReceiptView {
    pub ticket: u64,
    pub buyer: String,
    /// `H(Use)`: the prompt, limits and sampling the buyer signed for.
    pub use_hash: String,
    pub output_hash: String,
    pub token_count: u32,
    pub paid: Vec<PaidView>,
    pub slashed: Vec<SlashedView>,
    /// Providers the bundle left out, and what stays held for each to claim.
    pub held: Vec<PaidView>,
    pub refunded: String,
    pub settled_at: u32,
}

impl From<&TicketReceipt> for TicketReceiptView {
    fn from(r: &TicketReceipt) -> Self {
        Self {
            ticket: r.ticket,
            buyer: r.buyer.to_string(),
            use_hash: hex::encode(r.use_hash),
            output_hash: hex::encode(r.winning.output_hash),
            token_count: r.winning.token_count,
            paid: paid_views(&r.paid.0),
            slashed: slashed_views(&r.slashed.0),
            held: paid_views(&r.held.0),
            refunded: r.refunded.to_string(),
            settled_at: r.settled_at,
        }
    }
}

impl fmt::Display for TicketReceiptView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "receipt of ticket {} (settled in block {})", self.ticket, self.settled_at)?;
        writeln!(f, "  output   {} ({} tokens)", self.output_hash, self.token_count)?;
        write_paid_and_slashed(f, &self.paid, &self.slashed)?;
        for p in &self.held {
            writeln!(f, "  held     {}  {} (left out of the bundle: held for its claim)", p.provider, p.amount)?;
        }
        writeln!(f, "  refunded {}", self.refunded)
    }
}

/// What `agora receipt verify` proved of a receipt file, offline.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedReceiptView {
    pub verified: bool,
    pub block: u32,
    /// The settling block's hash: the one thing left to compare with a node one trusts.
    pub block_hash: String,
    pub receipt_root: String,
    /// Receipts the block's root commits to.
    pub receipts_in_block: u32,
    /// The genesis hash of the chain the buyer signed the `Use` for.
    pub chain: String,
    pub k: usize,
    pub agreeing: usize,
    pub receipt: TicketReceiptView,
}

impl From<&VerifiedReceipt> for VerifiedReceiptView {
    fn from(v: &VerifiedReceipt) -> Self {
        let root = v.block.receipt_root.expect("a verified receipt's block has a root");
        Self {
            verified: true,
            block: v.block.number,
            block_hash: format!("0x{}", hex::encode(v.block.hash)),
            receipt_root: format!("0x{}", hex::encode(root.root)),
            receipts_in_block: root.count,
            chain: format!("0x{}", hex::encode(v.chain)),
            k: v.k,
            agreeing: v.agreeing,
            receipt: TicketReceiptView::from(&v.receipt),
        }
    }
}

impl fmt::Display for VerifiedReceiptView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verified offline: ticket {} was settled in block {} (hash {})", self.receipt.ticket, self.block, self.block_hash)?;
        writeln!(f, "  its receipt is one of the {} under the header's receipt root {}", self.receipts_in_block, self.receipt_root)?;
        writeln!(f, "  the buyer signed the Use for chain {}; {} of the ticket's {} providers signed the result", self.chain, self.agreeing, self.k)?;
        writeln!(f, "  compare the block hash with a finalized block of a node or explorer you trust")?;
        write!(f, "{}", self.receipt)
    }
}

/// Timings of one ticket's use, from the call.
#[derive(Clone, Debug, Serialize)]
pub struct TicketTimingsView {
    pub ticket: f64,
    pub first_token: f64,
    pub verified: Option<f64>,
    pub answered: f64,
}

/// A prompt answered from a ticket: the answer, who signed it, the receipt once settled.
#[derive(Clone, Debug, Serialize)]
pub struct TicketRunView {
    pub ticket: u64,
    pub text: String,
    pub tokens: Vec<u32>,
    pub output_hash: String,
    pub agreeing: usize,
    pub k: usize,
    /// A strict majority of the ticket's providers signed this answer.
    pub verified: bool,
    pub stream_corrected: bool,
    pub providers: Vec<ProviderAnswerView>,
    pub timings_ms: TicketTimingsView,
    pub receipt: Option<TicketReceiptView>,
    /// Where the receipt file was saved, for `agora receipt verify`.
    pub receipt_file: Option<String>,
    /// With no majority of signed outcomes: the fell-back request's dispute.
    pub dispute: Option<DisputeView>,
}

impl TicketRunView {
    pub fn new(answer: &TicketAnswer, receipt: Option<&TicketReceipt>, receipt_file: Option<String>) -> Self {
        Self {
            ticket: answer.ticket,
            text: answer.text.clone(),
            tokens: answer.tokens.clone(),
            output_hash: hex::encode(answer.output_hash),
            agreeing: answer.agreeing,
            k: answer.providers.len(),
            verified: answer.verified,
            stream_corrected: answer.stream_corrected,
            providers: answer.providers.iter().map(ProviderAnswerView::from).collect(),
            timings_ms: TicketTimingsView {
                ticket: millis(answer.timings.ticket),
                first_token: millis(answer.timings.first_token),
                verified: answer.timings.verified.map(millis),
                answered: millis(answer.timings.answered),
            },
            receipt: receipt.map(TicketReceiptView::from),
            receipt_file,
            dispute: None,
        }
    }
}
