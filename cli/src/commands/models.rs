//! `agora models`: what auditors read of the release registry.

use crate::output::emit;
use crate::Global;
use agora_client::report::ReleaseView;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Every release of a family, oldest first.
    History { family: String },
    /// One release, by sha256 (or family[:version]).
    Show { model: String },
}

pub async fn run(global: &Global, command: ModelsCommand) -> anyhow::Result<()> {
    let client = super::client(global).await?;
    match command {
        ModelsCommand::History { family } => {
            let history: Vec<ReleaseView> = client.history(&family).await?.iter().map(ReleaseView::from).collect();
            emit(global.json, &history, |history| history.iter().for_each(|r| println!("{}", r.history_line())))
        },
        ModelsCommand::Show { model } => {
            let release = ReleaseView::from(&client.release(&model.parse()?).await?);
            emit(global.json, &release, |r| print!("{r}"))
        },
    }
}
