//! The client side of `/agora/verify/1`: bring a disputed request's prompt and outputs to one of
//! its drawn verifiers. Clients push what they received; providers push their own result.

use super::{frame, verify_protocol, Location, Network};
use agora_primitives::wire::{VerifyReply, VerifyRequest, MAX_VERIFY_FRAME_BYTES};
use futures::AsyncWriteExt;
use std::time::Duration;

/// How long a verifier may take to answer: re-scoring every disputed output comes first.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(180);

/// Sends `request` to the verifier at `location` and returns its reply.
pub async fn push(net: &Network, location: &Location, request: &VerifyRequest, dial_timeout: Duration) -> Result<VerifyReply, String> {
    let (peer, addrs) = location;
    net.dial_first(addrs, dial_timeout).await?;
    let mut stream = net.control().open_stream(*peer, verify_protocol()).await.map_err(|e| format!("open stream: {e}"))?;
    frame::write(&mut stream, request).await.map_err(|e| format!("send: {e}"))?;
    let reply = tokio::time::timeout(REPLY_TIMEOUT, frame::read::<VerifyReply, _>(&mut stream, MAX_VERIFY_FRAME_BYTES)).await;
    let _ = stream.close().await;
    match reply {
        Err(_) => Err("no reply in time".into()),
        Ok(Err(e)) => Err(format!("broken stream: {e}")),
        Ok(Ok(None)) => Err("the stream closed without a reply".into()),
        Ok(Ok(Some(reply))) => Ok(reply),
    }
}
