//! A provider's side of its disputed requests: it brings its own result to the drawn verifiers.

use super::*;

impl Inner {
    /// Brings this node's prompt and output of a disputed request to each of its verifiers, once
    /// (again after a failure, at the next pass).
    pub(super) fn push_own_result(self: &Arc<Self>, record: &JobRecord) {
        let id = record.request;
        let (Some(prompt), Some(output)) = (record.prompt.clone(), record.output.clone()) else { return };
        if !self.pushed.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let push = VerifyRequest { request: id, prompt, outputs: vec![output] };
            let result = node.push_to_verifiers(&push).await;
            if let Err(e) = result {
                node.chain_error("push_result", &format!("request {id}: {e:#}"));
                node.pushed.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            }
        });
    }

    pub(super) async fn push_to_verifiers(&self, push: &VerifyRequest) -> anyhow::Result<()> {
        let id = push.request;
        let Some(dispute) = self.chain.dispute(id).await? else { return Ok(()) };
        let mut failed = 0;
        for verifier in &dispute.verifiers.0 {
            let record = self.chain.provider(verifier).await?.ok_or_else(|| anyhow!("verifier {verifier} is not registered"))?;
            let location = {
                let (peer, addrs) = agora_chain_client::manifest_endpoint(&record);
                Location::from_manifest(peer, addrs)?
            };
            match agora_net::verify::push(&self.network, &location, push, Duration::from_secs(10)).await {
                Ok(VerifyReply::Error { kind, message }) => {
                    failed += 1;
                    tracing::warn!(request = id, %verifier, ?kind, message = %String::from_utf8_lossy(&message), "a verifier refused our result");
                },
                Ok(reply) => tracing::info!(request = id, %verifier, ?reply, "result brought to a verifier"),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(request = id, %verifier, error = %e, "cannot reach a verifier");
                },
            }
        }
        if failed > 0 {
            bail!("{failed} of {} verifiers did not take the result", dispute.verifiers.0.len());
        }
        Ok(())
    }

}
