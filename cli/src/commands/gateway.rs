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
    /// Serve each call as a request of its own (an escrow transaction and a draw before its
    /// first token) instead of from pools of tickets bought ahead. k = 1 always does: a ticket
    /// is verified by a majority of its signed outcomes.
    #[arg(long)]
    per_request: bool,
    /// Tickets bought at a time per model.
    #[arg(long, default_value_t = 8)]
    ticket_batch: u32,
    /// The longest prompt a ticket takes, in tokens.
    #[arg(long, default_value_t = 512)]
    ticket_prompt_tokens: u32,
    /// Answer only calls that carry this key as `Authorization: Bearer KEY` (as OpenAI clients
    /// send their `api_key`). Without one, anything that reaches the address spends the wallet.
    #[arg(long, env = "AGORA_GATEWAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A host name the gateway answers for, besides loopback and the address it listens on
    /// (calls naming any other host are refused, against DNS rebinding); repeatable.
    #[arg(long = "allow-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
}

impl GatewayArgs {
    /// Pools of tickets unless asked for one request per call or k = 1 has no majority.
    fn tickets(&self) -> Option<agora_client::PoolConfig> {
        let pooled = !self.per_request && self.k >= 2;
        pooled.then_some(agora_client::PoolConfig { batch: self.ticket_batch, max_prompt_tokens: self.ticket_prompt_tokens, refill: true })
    }
}

pub async fn run(global: &Global, args: GatewayArgs) -> anyhow::Result<()> {
    let client = std::sync::Arc::new(super::client(global).await?);
    let tickets = args.tickets();
    let mode = if tickets.is_some() { "from ticket pools" } else { "one request per call" };
    let config = GatewayConfig {
        k: args.k,
        max_price_per_1k: args.max_price,
        max_tokens_limit: args.max_tokens_limit,
        tickets,
        api_key: args.api_key.clone(),
        allowed_hosts: args.allowed_hosts.clone(),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let keyed = if args.api_key.is_some() { "API key required" } else { "no API key: anyone who reaches it spends the wallet" };
    eprintln!("OpenAI-compatible gateway on http://{}/v1 (k = {}, {mode}; {keyed})", listener.local_addr()?, args.k);
    gateway::serve(listener, client, config).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        gateway: GatewayArgs,
    }

    fn tickets(args: &[&str]) -> Option<agora_client::PoolConfig> {
        Command::parse_from([&["gateway"], args].concat()).gateway.tickets()
    }

    #[test]
    fn calls_come_from_ticket_pools_unless_per_request_or_k_is_one() {
        let pooled = tickets(&[]).expect("pooled by default");
        assert_eq!((pooled.batch, pooled.max_prompt_tokens, pooled.refill), (8, 512, true));
        assert_eq!(tickets(&["--ticket-batch", "4", "-k", "2"]).map(|p| p.batch), Some(4));
        assert!(tickets(&["--per-request"]).is_none());
        assert!(tickets(&["-k", "1"]).is_none(), "k = 1 has no majority to verify a ticket");
    }
}
