//! `agora gateway`: the OpenAI-compatible HTTP API over the marketplace.

use crate::Global;
use agora_client::gateway::{self, GatewayConfig};
use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct GatewayArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Providers per call.
    #[arg(short, default_value_t = 3)]
    k: u32,
    /// The most paid to any provider per 1k tokens (default: what the k cheapest ask).
    #[arg(long)]
    max_price: Option<u128>,
    /// The most tokens one call may ask for.
    #[arg(long, default_value_t = 512)]
    max_tokens_limit: u32,
    /// Serve calls from pools of tickets bought ahead (k ≥ 2): no transaction before the first
    /// token, verified by the providers' signed outcomes, settled in batches.
    #[arg(long)]
    tickets: bool,
    /// Tickets bought at a time per model, with `--tickets`.
    #[arg(long, default_value_t = 8)]
    ticket_batch: u32,
    /// The longest prompt a ticket takes, in tokens, with `--tickets`.
    #[arg(long, default_value_t = 512)]
    ticket_prompt_tokens: u32,
}

pub async fn run(global: &Global, args: GatewayArgs) -> anyhow::Result<()> {
    if args.tickets && args.k < 2 {
        return Err(agora_client::ClientError::TicketsNeedMajority(args.k).into());
    }
    let client = std::sync::Arc::new(super::client(global).await?);
    let tickets = args.tickets.then_some(agora_client::PoolConfig { batch: args.ticket_batch, max_prompt_tokens: args.ticket_prompt_tokens, refill: true });
    let config = GatewayConfig { k: args.k, max_price_per_1k: args.max_price, max_tokens_limit: args.max_tokens_limit, tickets, ..Default::default() };
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    eprintln!("OpenAI-compatible gateway on http://{}/v1 (k = {})", listener.local_addr()?, args.k);
    gateway::serve(listener, client, config).await?;
    Ok(())
}
