//! `agora publish`: a GGUF hashed (with a progress bar) and registered as a model release.

use crate::output::emit;
use crate::Global;
use agora_client::report::ReleaseView;
use agora_client::{ModelRef, ReleaseMeta};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct PublishArgs {
    gguf: PathBuf,
    #[arg(long)]
    family: String,
    #[arg(long)]
    version: String,
    #[arg(long, default_value = "unknown")]
    license: String,
    /// The release this one derives from (sha256).
    #[arg(long)]
    parent: Option<String>,
    /// Default: the GGUF's own `general.architecture`.
    #[arg(long)]
    architecture: Option<String>,
    /// Default: from the GGUF's own `general.file_type`.
    #[arg(long)]
    quantization: Option<String>,
}

pub async fn run(global: &Global, args: PublishArgs) -> anyhow::Result<()> {
    let parent = match args.parent.map(|p| p.parse::<ModelRef>()).transpose()? {
        Some(ModelRef::Release(hash)) => Some(hash),
        Some(other) => anyhow::bail!("--parent takes a release's sha256, not {other}"),
        None => None,
    };
    let meta = ReleaseMeta {
        family: args.family,
        version: args.version,
        license: args.license,
        parent,
        architecture: args.architecture,
        quantization: args.quantization,
        ..Default::default()
    };
    let release = ReleaseView::from(&super::client(global).await?.publish(&args.gguf, meta).await?);
    emit(global.json, &release, |r| println!("published {} {} as {}", r.family, r.version, r.sha256))
}
