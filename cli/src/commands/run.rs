//! `agora run`: one paid, verified request, streamed.

use crate::output::emit;
use crate::Global;
use agora_client::report::RunView;
use agora_client::{ChatTurn, Job, ModelRef, Prompt, RunEvent, RunRecord};
use clap::Args;
use std::io::Write;

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
    prompt: String,
}

fn milli(value: f64, what: &str) -> anyhow::Result<u32> {
    anyhow::ensure!(value.is_finite() && (0.0..=100.0).contains(&value), "{what} must be between 0 and 100");
    Ok((value * 1000.0).round() as u32)
}

impl RunArgs {
    fn job(self) -> anyhow::Result<Job> {
        let model: ModelRef = self.model.parse()?;
        let prompt = if self.raw { Prompt::Text(self.prompt) } else { Prompt::Chat(vec![ChatTurn { role: "user".into(), content: self.prompt }]) };
        let mut job = Job::new(model, prompt);
        job.k = self.k;
        job.max_tokens = self.max_tokens;
        job.max_price_per_1k = self.max_price;
        job.sampling.temperature_milli = milli(self.temperature, "--temperature")?;
        job.sampling.top_k = self.top_k;
        job.sampling.top_p_milli = milli(self.top_p, "--top-p")?.min(1000);
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
    let client = super::client(global).await?;
    let json = global.json;
    let result = client.run(&job, |event| if !json { show(event) }).await?;
    if let Err(e) = super::runs(global).save(&RunRecord::from(&result)) {
        eprintln!("warning: the answer cannot be challenged later: {e}");
    }
    emit(json, &RunView::from(&result), summary)
}

