//! A dApp's first Agora request, against a running chain (the devnet: `agora devnet up`).
//!
//! ```sh
//! cargo run -p agora-quickstart -- ws://127.0.0.1:9944
//! ```
//!
//! It quotes the model, runs one prompt on three independent providers, checks that the on-chain
//! receipt names the answer it got, and reads the model's release history as an auditor would.
//! It pays as the development account `//Eve` and tokenises with the release's GGUF from
//! `~/.cache/agora-models` (`AGORA_GGUF` points elsewhere). Exit status 1 if anything is off.

use agora_client::report::{ReceiptView, ReleaseView};
use agora_client::{dev_account, Client, ClientConfig, Job, Prompt, RunEvent};
use std::io::Write;
use std::path::PathBuf;

#[tokio::main]
async fn main() {
    if let Err(e) = quickstart().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn quickstart() -> agora_client::Result<()> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9944".into());
    let mut config = ClientConfig::new(&url, dev_account("//Eve"));
    if let Some(gguf) = std::env::var_os("AGORA_GGUF") {
        config.model_files = vec![PathBuf::from(gguf)];
    }
    let client = Client::connect(config).await?;

    // 1. A quote: nothing is paid yet.
    let mut job = Job::new("smollm2-135m-instruct".parse()?, Prompt::Text("The capital of France is".into()));
    job.k = 3;
    job.max_tokens = 16;
    let prepared = client.prepare(&job).await?;
    println!("quote: {} providers eligible; {} held in escrow at most", prepared.quotes.len(), prepared.escrow);

    // 2. The request, streamed as the first provider answers.
    let result = client
        .run_prepared(prepared, |event| {
            if let RunEvent::Token { piece, .. } = event {
                let _ = std::io::stdout().write_all(&piece);
                let _ = std::io::stdout().flush();
            }
        })
        .await?;
    println!();

    // 3. The receipt: who was paid, and whether it names the answer we got.
    let receipt = client.receipt(result.request).await?;
    print!("{}", ReceiptView::from(&receipt));
    println!("request {}: {} of {} providers agreed; verified: {}", result.request, result.agreeing, result.providers.len(), result.verified);

    // 4. The model's history, as an auditor reads it.
    for release in client.history("smollm2-135m-instruct").await? {
        println!("{}", ReleaseView::from(&release).history_line());
    }
    if !result.verified {
        std::process::exit(1);
    }
    Ok(())
}
