//! Both halves of `/agora/infer/1`: the client sends one [`InferOpen`] (a request's prompt or a
//! ticket's) and reads
//! [`InferFrame`]s (tokens, then `Done` or `Error`); the provider reads the request and streams
//! the frames.

use crate::{frame, infer_protocol, Location, Network, StreamError};
use agora_primitives::wire::{InferErrorKind, InferFrame, InferOpen, MAX_FRAME_BYTES};
use futures::AsyncWriteExt;
use libp2p::Stream;
use std::time::Duration;

/// An inference stream a client opened, its request sent.
pub struct InferCall {
    stream: Stream,
}

impl InferCall {
    /// Dials the provider at `location` (each address for at most `dial_timeout`) and opens a
    /// stream.
    pub async fn open(net: &Network, location: &Location, dial_timeout: Duration) -> Result<Self, StreamError> {
        Ok(Self { stream: net.open_stream(location, infer_protocol(), dial_timeout).await? })
    }

    /// Sends the request: the prompt as token ids, under the client's signed `Use`.
    pub async fn send(&mut self, request: &InferOpen) -> Result<(), StreamError> {
        Ok(frame::write(&mut self.stream, request).await?)
    }

    /// The next frame, waiting at most `within`; `None` once the provider closed the stream.
    pub async fn next(&mut self, within: Duration) -> Result<Option<InferFrame>, StreamError> {
        match tokio::time::timeout(within, frame::read::<InferFrame, _>(&mut self.stream, MAX_FRAME_BYTES)).await {
            Err(_) => Err(StreamError::Timeout(within)),
            Ok(read) => Ok(read?),
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close().await;
    }
}

/// The provider's half: the client's request, sent within `within` of opening the stream;
/// `None` if the client closed it first.
pub async fn read_request(stream: &mut Stream, within: Duration) -> Result<Option<InferOpen>, StreamError> {
    match tokio::time::timeout(within, frame::read::<InferOpen, _>(stream, MAX_FRAME_BYTES)).await {
        Err(_) => Err(StreamError::Timeout(within)),
        Ok(read) => Ok(read?),
    }
}

/// Sends one frame to the client.
pub async fn send(stream: &mut Stream, frame: &InferFrame) -> Result<(), StreamError> {
    Ok(frame::write(stream, frame).await?)
}

/// Refuses the request by name; the stream is closed after it.
pub async fn refuse(stream: &mut Stream, kind: InferErrorKind, message: &str) {
    let _ = frame::write(stream, &InferFrame::Error { kind, message: message.as_bytes().to_vec() }).await;
}
