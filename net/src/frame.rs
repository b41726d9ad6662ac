//! Length-prefixed SCALE frames: a u32 little-endian length, then that many bytes.
//!
//! A reader states the largest frame it accepts and never buffers more, so a peer cannot make it
//! allocate without limit; a frame that is too big, cut short or undecodable is an error and the
//! caller drops the stream.

use codec::{Decode, Encode};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u32, max: u32 },
    #[error("frame does not decode: {0}")]
    Decode(#[from] codec::Error),
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` if the stream ended cleanly before a new frame began.
pub async fn read<T: Decode, S: AsyncRead + Unpin>(stream: &mut S, max: u32) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(()) => {},
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut buf = vec![0u8; len as usize];
    stream.read_exact(&mut buf).await?;
    let mut input = &buf[..];
    let value = T::decode(&mut input)?;
    if !input.is_empty() {
        return Err(FrameError::Decode("trailing bytes after the message".into()));
    }
    Ok(Some(value))
}

/// Writes one frame and flushes it, so streamed tokens leave at once.
pub async fn write<T: Encode, S: AsyncWrite + Unpin>(stream: &mut S, value: &T) -> Result<(), FrameError> {
    let bytes = value.encode();
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge { len: u32::MAX, max: u32::MAX })?;
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_primitives::wire::{InferFrame, InferRequest, MAX_FRAME_BYTES};
    use futures::io::Cursor;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut buf = Cursor::new(Vec::new());
        let request = InferRequest { request: 9, prompt: vec![1, 2, 3], client_peer: vec![4; 38], signature: [5; 64] };
        let done = InferFrame::Done { output_hash: [4; 32], token_count: 2, stop: agora_primitives::wire::StopReason::MaxTokens, signature: [5; 64] };
        block_on(write(&mut buf, &request)).unwrap();
        block_on(write(&mut buf, &done)).unwrap();
        buf.set_position(0);
        assert_eq!(block_on(read::<InferRequest, _>(&mut buf, MAX_FRAME_BYTES)).unwrap(), Some(request));
        assert_eq!(block_on(read::<InferFrame, _>(&mut buf, MAX_FRAME_BYTES)).unwrap(), Some(done));
        assert_eq!(block_on(read::<InferFrame, _>(&mut buf, MAX_FRAME_BYTES)).unwrap(), None);
    }

    #[test]
    fn oversized_truncated_and_garbage_frames_are_errors() {
        let mut huge = Cursor::new((MAX_FRAME_BYTES + 1).to_le_bytes().to_vec());
        assert!(matches!(block_on(read::<InferRequest, _>(&mut huge, MAX_FRAME_BYTES)), Err(FrameError::TooLarge { .. })));
        let mut cut = Cursor::new([10u8, 0, 0, 0, 1, 2].to_vec());
        assert!(matches!(block_on(read::<InferRequest, _>(&mut cut, MAX_FRAME_BYTES)), Err(FrameError::Io(_))));
        let mut garbage = Cursor::new([3u8, 0, 0, 0, 0xff, 0xff, 0xff].to_vec());
        assert!(matches!(block_on(read::<InferRequest, _>(&mut garbage, MAX_FRAME_BYTES)), Err(FrameError::Decode(_))));
        let mut trailing = Vec::new();
        let body = InferRequest { request: 1, prompt: vec![], client_peer: vec![], signature: [0; 64] }.encode();
        trailing.extend_from_slice(&(body.len() as u32 + 1).to_le_bytes());
        trailing.extend_from_slice(&body);
        trailing.push(0);
        assert!(matches!(block_on(read::<InferRequest, _>(&mut Cursor::new(trailing), MAX_FRAME_BYTES)), Err(FrameError::Decode(_))));
    }
}
