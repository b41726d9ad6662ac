//! Both halves of `/agora/verify/1`: whoever holds a disputed request's prompt and outputs (its
//! client, its providers) brings them to a drawn verifier, which replies once with a
//! [`VerifyReply`].

use crate::{frame, verify_protocol, Location, Network, StreamError};
use agora_primitives::wire::{VerifyReply, VerifyRequest, MAX_VERIFY_FRAME_BYTES};
use futures::AsyncWriteExt;
use libp2p::Stream;
use std::time::Duration;

/// How long a verifier may take to answer: re-scoring every disputed output comes first.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(180);

/// Sends `request` to the verifier at `location` and returns its reply.
pub async fn push(net: &Network, location: &Location, request: &VerifyRequest, dial_timeout: Duration) -> Result<VerifyReply, StreamError> {
    let mut stream = net.open_stream(location, verify_protocol(), dial_timeout).await?;
    frame::write(&mut stream, request).await?;
    let reply = tokio::time::timeout(REPLY_TIMEOUT, frame::read::<VerifyReply, _>(&mut stream, MAX_VERIFY_FRAME_BYTES)).await;
    let _ = stream.close().await;
    match reply {
        Err(_) => Err(StreamError::Timeout(REPLY_TIMEOUT)),
        Ok(read) => read?.ok_or(StreamError::Closed),
    }
}

/// The verifier's half: the pushed request, sent within `within` of opening the stream.
pub async fn read_request(stream: &mut Stream, within: Duration) -> Result<VerifyRequest, StreamError> {
    match tokio::time::timeout(within, frame::read::<VerifyRequest, _>(stream, MAX_VERIFY_FRAME_BYTES)).await {
        Err(_) => Err(StreamError::Timeout(within)),
        Ok(read) => read?.ok_or(StreamError::Closed),
    }
}

/// The verifier's one reply.
pub async fn reply(stream: &mut Stream, reply: &VerifyReply) -> Result<(), StreamError> {
    Ok(frame::write(stream, reply).await?)
}
