//! Start-up: the self-benchmark the manifest advertises, registration (or an updated manifest,
//! a topped-up stake, back online) and the verifier opt-in, each step read from the chain first.

use super::*;

/// Measures generation speed on this machine, as the manifest advertises it.
pub(super) fn self_benchmark(engine: &Engine) -> Result<u32, EngineError> {
    let prompt = engine.tokenize("Count from one to twenty in words:", true);
    let request = GenerateRequest { prompt, max_output_tokens: 32, sampling: SamplingParams::default(), seed: 0, logprobs: false };
    let started = Instant::now();
    let generation = engine.generate_blocking(request)?;
    let tokens = generation.tokens.len().max(1) as f64;
    Ok((tokens / started.elapsed().as_secs_f64() * 1000.0).min(f64::from(u32::MAX)) as u32)
}

impl Inner {
    /// Brings the held stake back to the configured amount (after a slash, or a raised setting).
    pub(super) async fn top_up(&self, record: &agora_chain_client::ProviderRecord) -> Result<(), agora_chain_client::Error> {
        if record.stake < self.config.stake {
            self.submit(&agora::tx().providers().add_stake(self.config.stake - record.stake)).await?;
        }
        Ok(())
    }

    pub(super) async fn ensure_registered(&self, manifest: types::CapabilityManifest<u128>) -> anyhow::Result<()> {
        match self.chain.provider(&self.account).await? {
            None => {
                self.submit(&agora::tx().providers().register(self.config.stake, manifest))
                    .await
                    .context("registering as a provider")?;
                tracing::info!(stake = self.config.stake, "registered as a provider");
            },
            Some(record) => {
                if record.manifest != manifest {
                    self.submit(&agora::tx().providers().update_manifest(manifest)).await.context("updating the manifest")?;
                }
                self.top_up(&record).await.context("topping up the stake")?;
                match record.status {
                    types::ProviderStatus::Offline => {
                        self.submit(&agora::tx().providers().go_online()).await.context("going online")?;
                    },
                    types::ProviderStatus::Unbonding { unlocks_at } => {
                        tracing::warn!(unlocks_at, "this provider is unbonding: it finishes its jobs but takes no new ones");
                    },
                    types::ProviderStatus::Online => {},
                }
            },
        }
        self.set_verifier(self.config.verifier).await
    }

    /// Opts in to verifying disputes, or out, as configured.
    pub(super) async fn set_verifier(&self, wanted: bool) -> anyhow::Result<()> {
        if self.chain.is_verifier(&self.account).await? == wanted {
            return Ok(());
        }
        if wanted {
            self.submit(&agora::tx().verifier().opt_in_verifier()).await.context("opting in as a verifier")?;
            tracing::info!("opted in to verify disputes");
        } else {
            self.submit(&agora::tx().verifier().opt_out_verifier()).await.context("opting out of verifying")?;
            tracing::info!("opted out of verifying disputes");
        }
        Ok(())
    }
}
