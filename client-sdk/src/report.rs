//! Chain records as JSON (for `--json` and the gateway) and as lines for humans.

use crate::models::text;
use crate::dispute::DisputeReport;
use crate::run::RunResult;
use agora_primitives::wire::VerifyReply;
use agora_chain_client::{types, AccountId, ModelRelease, ProviderRecord, Receipt};
use serde_json::{json, Value};

pub fn release(r: &ModelRelease) -> Value {
    json!({
        "sha256": hex::encode(r.info.sha256),
        "family": text(&r.info.family.0),
        "version": text(&r.info.version.0),
        "size_bytes": r.info.size_bytes,
        "architecture": text(&r.info.architecture.0),
        "quantization": text(&r.info.quantization.0),
        "license": text(&r.info.license.0),
        "parent": r.info.parent.map(hex::encode),
        "status": format!("{:?}", r.status).to_lowercase(),
        "publisher": r.publisher.to_string(),
        "published_at": r.published_at,
        "status_changed_at": r.status_changed_at,
    })
}

pub fn provider(who: &AccountId, r: &ProviderRecord) -> Value {
    json!({
        "account": who.to_string(),
        "status": match r.status {
            types::ProviderStatus::Online => "online".to_string(),
            types::ProviderStatus::Offline => "offline".to_string(),
            types::ProviderStatus::Unbonding { unlocks_at } => format!("unbonding until block {unlocks_at}"),
        },
        "stake": r.stake.to_string(),
        "reputation_ppm": r.reputation.score_ppm,
        "agreed": r.reputation.agreed,
        "wrong": r.reputation.wrong,
        "no_shows": r.reputation.no_shows,
        "open_jobs": r.open_jobs,
        "price_per_1k_input": r.manifest.price_per_1k_input.to_string(),
        "price_per_1k_output": r.manifest.price_per_1k_output.to_string(),
        "max_context": r.manifest.max_context,
        "max_concurrent_jobs": r.manifest.max_concurrent_jobs,
        "hardware_class": text(&r.manifest.hardware_class.0),
        "multiaddrs": r.manifest.multiaddrs.0.iter().map(|a| text(&a.0)).collect::<Vec<_>>(),
        "offers": r.manifest.offers.0.iter().map(|o| json!({
            "release": hex::encode(o.release),
            "runtime_profile": hex::encode(o.runtime_profile),
            "tokens_per_sec": f64::from(o.milli_tokens_per_sec) / 1000.0,
        })).collect::<Vec<_>>(),
    })
}

pub fn receipt(r: &Receipt) -> Value {
    json!({
        "request": r.request,
        "client": r.client.to_string(),
        "release": hex::encode(r.release),
        "output_hash": r.winning.as_ref().map(|w| hex::encode(w.output_hash)),
        "token_count": r.winning.as_ref().map(|w| w.token_count),
        "paid": r.paid.0.iter().map(|(who, amount)| json!({"provider": who.to_string(), "amount": amount.to_string()})).collect::<Vec<_>>(),
        "slashed": r.slashed.0.iter().map(|(who, amount, why)| json!({
            "provider": who.to_string(), "amount": amount.to_string(), "reason": format!("{why:?}").to_lowercase(),
        })).collect::<Vec<_>>(),
        "refunded": r.refunded.to_string(),
        "settled_at": r.settled_at,
    })
}

pub fn run_result(r: &RunResult) -> Value {
    json!({
        "request": r.request,
        "release": hex::encode(r.release),
        "text": r.text,
        "tokens": r.tokens,
        "output_hash": hex::encode(r.output_hash),
        "agreeing": r.agreeing,
        "verified": r.verified,
        "status": format!("{:?}", r.status).to_lowercase(),
        "stream_corrected": r.stream_corrected,
        "receipt": r.receipt.as_ref().map(receipt),
        "dispute": r.dispute.as_ref().map(dispute),
        "providers": r.providers.iter().map(|p| json!({
            "provider": p.provider.to_string(),
            "tokens": p.tokens.len(),
            "output_hash": p.answered().map(hex::encode),
            "failure": p.failure,
            "time_to_first_token_ms": p.time_to_first_token.map(|d| d.as_secs_f64() * 1000.0),
        })).collect::<Vec<_>>(),
        "timings_ms": {
            "escrow": r.timings.escrow.as_secs_f64() * 1000.0,
            "assignment": r.timings.assignment.as_secs_f64() * 1000.0,
            "dial": r.timings.dial.as_secs_f64() * 1000.0,
            "first_token": r.timings.first_token.as_secs_f64() * 1000.0,
            "generation": r.timings.generation.as_secs_f64() * 1000.0,
            "settlement": r.timings.settlement.as_secs_f64() * 1000.0,
        },
    })
}

fn delivery(reply: &Result<VerifyReply, String>) -> String {
    match reply {
        Ok(VerifyReply::Judged { .. }) => "judged".into(),
        Ok(VerifyReply::Waiting { missing }) => format!("taken, waiting for {missing} more output(s)"),
        Ok(VerifyReply::Error { kind, message }) => format!("refused ({kind:?}): {}", String::from_utf8_lossy(message)),
        Err(e) => format!("unreachable: {e}"),
    }
}

pub fn dispute(d: &DisputeReport) -> Value {
    let r = &d.resolution;
    json!({
        "request": d.request,
        "cause": d.cause.name(),
        "decided": r.decided.0.iter().map(|v| json!({
            "output_hash": hex::encode(v.outcome.output_hash), "token_count": v.outcome.token_count, "accepted": v.accepted,
        })).collect::<Vec<_>>(),
        "verifiers_paid": r.verifiers_paid.0.iter().map(|(who, fee)| json!({"verifier": who.to_string(), "fee": fee.to_string()})).collect::<Vec<_>>(),
        "silent": r.silent.0.iter().map(|who| who.to_string()).collect::<Vec<_>>(),
        "deliveries": d.deliveries.iter().map(|(who, reply)| json!({"verifier": who.to_string(), "delivery": delivery(reply)})).collect::<Vec<_>>(),
        "resolved_at": r.resolved_at,
        "status": format!("{:?}", d.status).to_lowercase(),
    })
}

/// A dispute's resolution as a few lines for humans.
pub fn dispute_lines(d: &DisputeReport) -> String {
    let r = &d.resolution;
    let mut out = format!("{} of request {} resolved in block {}\n", d.cause.name(), d.request, r.resolved_at);
    for v in &r.decided.0 {
        let verdict = if v.accepted { "accepted" } else { "rejected" };
        out.push_str(&format!("  {verdict:<9}{} ({} tokens)\n", hex::encode(v.outcome.output_hash), v.outcome.token_count));
    }
    if r.decided.0.is_empty() {
        out.push_str("  no verifier judged it\n");
    }
    for (who, reply) in &d.deliveries {
        out.push_str(&format!("  verifier {who}: {}\n", delivery(reply)));
    }
    for who in &r.silent.0 {
        out.push_str(&format!("  silent   {who} (slashed)\n"));
    }
    out
}

/// A receipt as a few lines for humans.
pub fn receipt_lines(r: &Receipt) -> String {
    let mut out = format!("receipt of request {} (settled in block {})\n", r.request, r.settled_at);
    match &r.winning {
        Some(w) => out.push_str(&format!("  output   {} ({} tokens)\n", hex::encode(w.output_hash), w.token_count)),
        None => out.push_str("  output   no majority\n"),
    }
    for (who, amount) in &r.paid.0 {
        out.push_str(&format!("  paid     {who}  {amount}\n"));
    }
    for (who, amount, why) in &r.slashed.0 {
        out.push_str(&format!("  slashed  {who}  {amount} ({})\n", format!("{why:?}").to_lowercase()));
    }
    out.push_str(&format!("  refunded {}\n", r.refunded));
    out
}
