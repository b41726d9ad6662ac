//! Signing and submitting: one account's transactions are pipelined by nonce, and each waits
//! for the block that includes it, not for finality.
//!
//! Waiting for each transaction's block before signing the next capped an account at one
//! transaction per block; a provider with many jobs or a client with concurrent calls queued
//! behind itself. Only signing and handing the transaction to the node are serialised here, per
//! account; the wait for inclusion runs concurrently.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use subxt::{
    config::DefaultExtrinsicParamsBuilder,
    error::{DispatchError, TransactionEventsError},
    transactions::{Payload, TransactionProgress, TransactionStatus},
};

use crate::{subxt_err, AgoraConfig, ChainClient, Error, Events, Keypair, Rejection};

/// The progress of a transaction in the pool, then in blocks.
type Progress = TransactionProgress<AgoraConfig, subxt::client::OnlineClientAtBlockImpl<AgoraConfig>>;

/// How many blocks a signed transaction stays valid for: long enough to wait in a busy pool,
/// short enough that a transaction stuck behind a lost nonce does not linger.
const MORTALITY_BLOCKS: u64 = 64;

/// The next nonce of each account this client has signed for. `None` until read from the
/// node, and again after a refusal or a dropped transaction, whose nonce may not have been used.
#[derive(Default)]
pub(crate) struct Nonces(Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<Option<u64>>>>>);

impl Nonces {
    fn of(&self, account: [u8; 32]) -> Arc<tokio::sync::Mutex<Option<u64>>> {
        let mut slots = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(account).or_default().clone()
    }
}

impl ChainClient {
    /// Signs `call` with `signer`, submits it and waits until a block includes it. A dispatch
    /// failure comes back as [`Error::Rejected`] with the pallet's error, decoded.
    ///
    /// Calls from one account may run concurrently: each takes the next nonce, so they are all
    /// in the pool at once and land in the order they were signed.
    pub async fn submit<C: Payload>(&self, call: &C, signer: &Keypair) -> Result<Events, Error> {
        Ok(self.submit_in_block(call, signer).await?.0)
    }

    /// [`Self::submit`], and the hash of the block that included the call.
    pub async fn submit_in_block<C: Payload>(&self, call: &C, signer: &Keypair) -> Result<(Events, [u8; 32]), Error> {
        let account = signer.public_key().0;
        let progress = self.sign_and_send(call, signer, account).await?;
        match included(progress).await {
            Ok(included) => Ok(included),
            Err(Included::Failed(e)) => Err(e),
            Err(Included::Lost(e)) => {
                // A dropped or invalid transaction may leave its nonce unused: read it again.
                *self.nonces.of(account).lock().await = None;
                Err(e)
            }
        }
    }

    /// Signs with the account's next nonce and hands the transaction to the node. A nonce this
    /// client remembered may have been taken by another client of the same account (the
    /// provider's CLI beside its daemon): refused with it, the call is signed once more with the
    /// node's count.
    async fn sign_and_send<C: Payload>(&self, call: &C, signer: &Keypair, account: [u8; 32]) -> Result<Progress, Error> {
        let slot = self.nonces.of(account);
        let mut next = slot.lock().await;
        let remembered = next.take();
        let nonce = match remembered {
            Some(nonce) => nonce,
            None => self.next_nonce(account).await?,
        };
        let sent = match self.send_with_nonce(call, signer, nonce).await {
            Err(_) if remembered.is_some() => {
                let nonce = self.next_nonce(account).await?;
                self.send_with_nonce(call, signer, nonce).await.map(|progress| (progress, nonce))
            }
            sent => sent.map(|progress| (progress, nonce)),
        };
        // Refused by the pool, the next call starts again from the node's count (left `None`).
        let (progress, nonce) = sent?;
        *next = Some(nonce + 1);
        Ok(progress)
    }

    async fn send_with_nonce<C: Payload>(&self, call: &C, signer: &Keypair, nonce: u64) -> Result<Progress, Error> {
        let at = self.api.at_current_block().await.map_err(subxt_err)?;
        let params = DefaultExtrinsicParamsBuilder::<AgoraConfig>::new()
            .nonce(nonce)
            .mortal_from_unchecked(MORTALITY_BLOCKS, at.block_number(), at.block_hash())
            .build();
        let mut signable = at.transactions().create_signable_offline(call, params).map_err(subxt_err)?;
        signable.sign(signer).map_err(subxt_err)?.submit_and_watch().await.map_err(subxt_err)
    }

    /// The account's next nonce as the node counts it, its pool included.
    async fn next_nonce(&self, account: [u8; 32]) -> Result<u64, Error> {
        let address = crate::AccountId::from(account).to_string();
        let nonce: serde_json::Value = self
            .rpc
            .request("system_accountNextIndex", subxt::rpcs::rpc_params![address])
            .await
            .map_err(subxt_err)?;
        nonce.as_u64().ok_or_else(|| Error::Unexpected(format!("a nonce that is not a number: {nonce}")))
    }
}

enum Included {
    /// In a block, and the runtime refused it: its nonce is spent.
    Failed(Error),
    /// Not in a block, and perhaps never will be.
    Lost(Error),
}

async fn included(
    mut progress: Progress,
) -> Result<(Events, [u8; 32]), Included> {
    while let Some(status) = progress.next().await {
        let in_block = match status.map_err(|e| Included::Lost(subxt_err(e)))? {
            TransactionStatus::InBestBlock(in_block) | TransactionStatus::InFinalizedBlock(in_block) => in_block,
            TransactionStatus::Error { message }
            | TransactionStatus::Invalid { message }
            | TransactionStatus::Dropped { message } => {
                return Err(Included::Lost(Error::NotIncluded(message)))
            }
            TransactionStatus::Validated | TransactionStatus::Broadcasted | TransactionStatus::NoLongerInBestBlock => {
                continue
            }
        };
        let block = in_block.block_hash().0;
        return match in_block.wait_for_success().await {
            Ok(events) => Ok((events, block)),
            Err(TransactionEventsError::ExtrinsicFailed(e)) => Err(Included::Failed(refusal(e))),
            Err(e) => Err(Included::Failed(subxt_err(e))),
        };
    }
    Err(Included::Lost(Error::NotIncluded("the node stopped reporting its progress".into())))
}

fn refusal(e: DispatchError) -> Error {
    match e {
        DispatchError::Module(m) => match m.as_root_error::<Rejection>() {
            Ok(rejection) => Error::Rejected { rejection: Box::new(rejection), name: m.details_string() },
            // Still the chain's refusal, of an error this metadata does not know.
            Err(_) => Error::Dispatch(m.details_string()),
        },
        other => Error::Dispatch(other.to_string()),
    }
}
