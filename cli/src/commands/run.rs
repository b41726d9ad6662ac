//! `agora run`: one paid, verified request, streamed.

use crate::output::emit;
use crate::Global;
use agora_client::report::{DisputeView, RunView, TicketRunView};
use agora_client::{ChatTurn, Job, ModelRef, PoolConfig, Prompt, RunEvent, RunRecord};
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct RunArgs {
    /// `family`, `family:version` or a release's sha256.
    #[arg(long, short)]
    model: String,
    /// Independent providers to run it (the assurance level).
    #[arg(short, default_value_t = 3)]
    k: u32,
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// The most paid to any provider per 1k tokens (default: what the k cheapest ask).
    #[arg(long)]
    max_price: Option<u128>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Send the prompt as raw text instead of a user turn in the model's chat template.
    #[arg(long)]
    raw: bool,
    /// Serve the prompt from a ticket (k ≥ 2): bought and drawn first, then answered from the
    /// providers' signed outcomes and settled in one transaction, with no commit or reveal.
    #[arg(long)]
    tickets: bool,
    /// Save the settled ticket's receipt here, for `agora receipt verify` (with `--tickets`).
    #[arg(long, requires = "tickets", value_name = "FILE")]
    save_receipt: Option<PathBuf>,
    prompt: String,
}

/// `value` in thousandths, refused by name outside 0..=`max` (never clamped).
fn milli(value: f64, what: &str, max: f64) -> anyhow::Result<u32> {
    anyhow::ensure!((0.0..=max).contains(&value), "{what} is {value}, but it must be between 0 and {max}");
    Ok((value * 1000.0).round() as u32)
}

impl RunArgs {
    fn job(&self) -> anyhow::Result<Job> {
        let model: ModelRef = self.model.parse()?;
        let content = self.prompt.clone();
        let prompt = if self.raw { Prompt::Text(content) } else { Prompt::Chat(vec![ChatTurn { role: "user".into(), content }]) };
        let mut job = Job::new(model, prompt);
        job.k = self.k;
        job.max_tokens = self.max_tokens;
        job.max_price_per_1k = self.max_price;
        job.sampling.temperature_milli = milli(self.temperature, "--temperature", 100.0)?;
        job.sampling.top_k = self.top_k;
        job.sampling.top_p_milli = milli(self.top_p, "--top-p", 1.0)?;
        Ok(job)
    }
}

/// What a human sees while the request runs: the answer on stdout, the steps on stderr.
fn show(event: RunEvent) {
    match event {
        RunEvent::Escrowed { request, escrow } => eprintln!("request {request}: {escrow} escrowed"),
        RunEvent::Assigned { providers, .. } => eprintln!("assigned to {} providers", providers.len()),
        RunEvent::Ticket { ticket, providers } => eprintln!("ticket {ticket}: {} providers", providers.len()),
        RunEvent::Token { piece, .. } => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&piece);
            let _ = out.flush();
        },
        RunEvent::ProviderFinished(report) => {
            if let Some(why) = &report.failure {
                eprintln!("\nprovider {} gave no answer: {why}", report.provider);
            }
        },
        RunEvent::Acknowledged { .. } | RunEvent::Settled(_) => {},
        RunEvent::Disputed { request, cause } => {
            eprintln!("\nrequest {request} went to verifiers ({}); bringing them the answers and waiting for their verdict", cause.name())
        },
    }
}

fn summary(view: &RunView) {
    println!();
    if view.stream_corrected {
        println!("(the first provider to answer was outvoted; the majority answer is)\n{}", view.text);
    }
    let verified = if view.verified { "yes" } else { "NO" };
    println!("\n{} of {} providers agreed; verified against the receipt: {verified}", view.agreeing, view.providers.len());
    if let Some(dispute) = &view.dispute {
        print!("{dispute}");
    }
    match &view.receipt {
        Some(receipt) => print!("{receipt}"),
        None => println!("request {} is {}: no receipt", view.request, view.status),
    }
}

pub async fn run(global: &Global, args: RunArgs) -> anyhow::Result<()> {
    let job = args.job()?;
    if args.tickets {
        return run_ticket(global, &job, args.save_receipt.as_deref()).await;
    }
    let client = super::client(global).await?;
    let json = global.json;
    let result = client.run(&job, |event| if !json { show(event) }).await?;
    if let Err(e) = super::runs(global).save(&RunRecord::from(&result)) {
        eprintln!("warning: the answer cannot be challenged later: {e}");
    }
    emit(json, &RunView::from(&result), summary)
}

/// The prompt on a ticket of its own, sized to it: one bought (no more), used, settled, and its
/// receipt saved if asked; with no majority of signed outcomes, fallen back and seen through
/// its dispute. The answer is shown even when its settlement or receipt fails.
async fn run_ticket(global: &Global, job: &Job, save: Option<&Path>) -> anyhow::Result<()> {
    let json = global.json;
    let client = Arc::new(super::client(global).await?);
    let prompt = client.tokenize(&job.model, &job.prompt).await?;
    let sized = PoolConfig { batch: 1, refill: false, max_prompt_tokens: prompt.len() as u32 };
    let pool = client.ticket_pool(job, sized).await?;
    let mut answer = pool.run(&Prompt::Tokens(prompt), job.max_tokens, &job.sampling, |event| if !json { show(event) }).await?;
    let mut dispute = None;
    let settled = async {
        if !answer.verified {
            if !json {
                eprintln!("no strict majority signed one answer: ticket {} falls back to commit-reveal, and verifiers decide", answer.ticket);
            }
            dispute = Some(pool.see_dispute_through(&mut answer).await?);
            return Ok((None, None));
        }
        let settled = pool.receipt(answer.ticket).await?;
        let saved = match save {
            Some(path) => {
                let file = client.receipt_file(&settled).await?;
                std::fs::write(path, file.to_bytes()).with_context(|| format!("saving the receipt to {}", path.display()))?;
                Some(path.display().to_string())
            },
            None => None,
        };
        anyhow::Ok((Some(settled), saved))
    }
    .await;
    let (receipt, saved) = settled.as_ref().map_or((None, None), |(s, saved)| (s.as_ref().map(|s| &s.receipt), saved.clone()));
    let mut view = TicketRunView::new(&answer, receipt, saved);
    view.dispute = dispute.as_ref().map(DisputeView::from);
    emit(json, &view, ticket_summary)?;
    settled?;
    anyhow::ensure!(answer.verified, "ticket {}: the verifiers accepted none of its providers' answers", answer.ticket);
    Ok(())
}

fn ticket_summary(view: &TicketRunView) {
    println!();
    if view.stream_corrected {
        println!("(the first provider to answer was outvoted; the majority answer is)\n{}", view.text);
    }
    let verified = if view.verified { "yes" } else { "NO" };
    println!("\n{} of {} providers signed this answer; verified: {verified}", view.agreeing, view.k);
    if let Some(receipt) = &view.receipt {
        print!("{receipt}");
    }
    if let Some(dispute) = &view.dispute {
        print!("{dispute}");
    }
    if let Some(file) = &view.receipt_file {
        println!("receipt saved to {file}: check it offline with `agora receipt verify {file}`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        run: RunArgs,
    }

    fn job(flags: &[&str]) -> anyhow::Result<Job> {
        Command::parse_from([&["run", "--model", "smollm2-135m-instruct"], flags, &["Hi"]].concat()).run.job()
    }

    #[test]
    fn out_of_range_sampling_is_refused_by_name_before_anything_is_paid() {
        let sampled = job(&["--temperature", "0.7", "--top-p", "0.95"]).unwrap().sampling;
        assert_eq!((sampled.temperature_milli, sampled.top_p_milli), (700, 950));
        for (flag, value) in [("--top-p", "7"), ("--top-p", "1.01"), ("--temperature", "101"), ("--temperature", "NaN")] {
            let refused = job(&[flag, value]).expect_err("refused, not clamped").to_string();
            assert!(refused.contains(flag), "{flag} {value}: {refused}");
        }
    }
}
