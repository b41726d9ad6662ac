//! `agora providers`: who serves, at what price, with what reputation.

use crate::output::emit;
use crate::Global;
use agora_client::report::ProviderView;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ProvidersCommand {
    /// Registered providers, best reputation first.
    Ls {
        /// Only the providers of this model.
        #[arg(long)]
        model: Option<String>,
    },
}

pub async fn run(global: &Global, command: ProvidersCommand) -> anyhow::Result<()> {
    let ProvidersCommand::Ls { model } = command;
    let client = super::client(global).await?;
    let release = match model {
        Some(m) => Some(client.release(&m.parse()?).await?.info.sha256),
        None => None,
    };
    let providers: Vec<ProviderView> = client.providers(release).await?.iter().map(|(who, r)| ProviderView::new(who, r)).collect();
    emit(global.json, &providers, |providers| providers.iter().for_each(|p| println!("{p}")))
}
