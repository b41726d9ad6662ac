//! The faults a test build streams on purpose (`--test-drip-ms`, `--test-overrun`), for the
//! tests that a provider can neither hold a client nor flood it. Generation, the journal and
//! the commitment stay honest: only what goes down the stream misbehaves.

use super::*;

impl Inner {
    /// What a faulty test provider does before it sends `frame`, having sent `tokens_sent`
    /// tokens: pause before every frame after the first token, or stream tokens past those
    /// asked for ahead of the closing frame.
    pub(super) async fn inject_faults(&self, stream: &mut libp2p::Stream, frame: &InferFrame, tokens_sent: u32) -> Result<(), StreamError> {
        if !cfg!(feature = "fault-injection") {
            return Ok(());
        }
        if self.config.test_drip_ms > 0 && tokens_sent > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.test_drip_ms.into())).await;
        }
        if let InferFrame::Done { token_count, .. } = frame {
            for index in *token_count..token_count + self.config.test_overrun {
                infer::send(stream, &InferFrame::Token { index, token: 0, piece: Vec::new() }).await?;
            }
        }
        Ok(())
    }
}
