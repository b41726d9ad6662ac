//! `agora receipt`: who was paid, slashed and refunded for a request; `agora receipt verify`
//! checks a saved ticket receipt offline.

use crate::output::emit;
use crate::Global;
use agora_client::report::{ReceiptView, VerifiedReceiptView};
use agora_client::ReceiptFile;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReceiptArgs {
    #[command(subcommand)]
    command: Option<ReceiptCommand>,
    /// The request whose receipt the chain keeps (for its retention after it closes).
    request: Option<u64>,
}

#[derive(Subcommand)]
enum ReceiptCommand {
    /// Check a ticket's receipt file (from `agora run --tickets --save-receipt`) with no chain
    /// connection: its receipt is under its block's receipt root, its Use is the buyer's, and
    /// a strict majority of its providers signed the result. Prints the block hash to compare
    /// with a node you trust; fails, naming the check, if anything does not hold.
    Verify { file: PathBuf },
}

pub async fn run(global: &Global, args: ReceiptArgs) -> anyhow::Result<()> {
    match (args.command, args.request) {
        (Some(ReceiptCommand::Verify { file }), _) => verify(global, &file),
        (None, Some(request)) => {
            let receipt = ReceiptView::from(&super::client(global).await?.receipt(request).await?);
            emit(global.json, &receipt, |r| print!("{r}"))
        },
        (None, None) => anyhow::bail!("name a request (`agora receipt 42`) or a receipt file (`agora receipt verify FILE`)"),
    }
}

fn verify(global: &Global, file: &std::path::Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let verified = ReceiptFile::from_bytes(&bytes)
        .and_then(|receipt| receipt.verify())
        .with_context(|| format!("{} does not prove its receipt", file.display()))?;
    emit(global.json, &VerifiedReceiptView::from(&verified), |v| print!("{v}"))
}
