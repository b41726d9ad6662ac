//! A ticket's receipt as a file anyone can check offline.
//!
//! The chain keeps nothing of a settled ticket: its receipt is an event, and the header of the
//! block that settled it carries the Merkle root of that block's receipts
//! ([`agora_primitives::receipts`]). A [`ReceiptFile`] holds the receipt, the bundle it was
//! settled from (the buyer's signed `Use` and the providers' signed outcomes), the block's
//! header and the path of the receipt's leaf. [`ReceiptFile::verify`] checks all of it with
//! no chain connection: the `Use` is the one the receipt names and its buyer signed it, a
//! strict majority of the ticket's providers signed the winning result (each signer one the
//! receipt pays, or slashes for another result), and the receipt is in the root the header
//! carries. What is left to trust is the block hash it prints: compare it with a finalized
//! block of a node or explorer you trust (a file is made once its block is included, before
//! it is final). A receipt is what settlement did: a left-out provider's later claim of its
//! held share is an event of its own, under no root.
//!
//! A node that seals the runtime's header (polkadot-omni-node) serves the root in it. The dev
//! chain's engine, chopsticks, builds headers of its own (a zero state root, the parent's
//! digest) that carry nothing the runtime deposits: a receipt from it passes every check of
//! its signatures and then fails `NoReceiptRoot`, since nothing ties it to a block hash.

use crate::error::{ClientError, Result};
use agora_chain_client::{signed_by, AccountId, Signature, TicketBundle, TicketReceipt};
use agora_primitives::receipts::{self, SettlingBlock};
use agora_primitives::{tickets::outcome_payload, Hash256, Outcome, TicketUse};
use codec::{Decode, Encode};

/// What every receipt file starts with, and the layout it has.
const MAGIC: [u8; 8] = *b"agorarcp";
const LAYOUT: u8 = 1;

/// A settled ticket's receipt and its evidence; SCALE-encoded in a file.
#[derive(Clone, Debug, Encode, Decode)]
pub struct ReceiptFile {
    pub receipt: TicketReceipt,
    /// What the ticket was settled from.
    pub bundle: TicketBundle,
    /// The settling block's header, as the chain encodes it.
    pub header: Vec<u8>,
    /// The receipt's position among the block's receipts.
    pub leaf_index: u32,
    /// The sibling hashes from the receipt's leaf up to the root.
    pub path: Vec<Hash256>,
}

/// Why a receipt file does not prove what it claims: each check that failed, by name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptCheckError {
    #[error("not an Agora receipt file (wrong magic bytes, layout or encoding): was it saved by `agora run --save-receipt`?")]
    NotAReceiptFile,
    #[error("the file's header is not a block header of the Agora chain's format")]
    BadHeader,
    #[error("block {block}'s header carries no receipt root, so nothing ties the receipt to it: the block settled no tickets, or a dev chain (chopsticks) built the header, and its headers carry nothing the runtime deposits")]
    NoReceiptRoot { block: u32 },
    #[error("the receipt says it was settled in block {settled_at}, but the header is block {block}")]
    WrongBlock { settled_at: u32, block: u32 },
    #[error("the receipt is not in block {block}'s receipt root: the receipt or its path was altered")]
    NotInRoot { block: u32 },
    #[error("the bundle's Use is not the one the receipt names (ticket or H(Use) differ)")]
    UseMismatch,
    #[error("the Use is not signed by the ticket's buyer {buyer}")]
    BadUseSignature { buyer: String },
    #[error("outcome {position} is not signed by a provider the receipt pays or slashes for it")]
    BadOutcomeSignature { position: u8 },
    #[error("only {agreeing} of the ticket's {k} providers signed the winning result: no strict majority")]
    NoMajority { agreeing: usize, k: usize },
}

/// What a receipt file proved.
#[derive(Clone, Debug)]
pub struct VerifiedReceipt {
    pub receipt: TicketReceipt,
    /// The settling block: its number and hash (the one thing left to trust).
    pub block: SettlingBlock,
    /// The genesis hash of the chain the `Use` was signed for.
    pub chain: Hash256,
    /// The ticket's k and how many of its providers signed the winning result.
    pub k: usize,
    pub agreeing: usize,
}

impl ReceiptFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        (MAGIC, LAYOUT, self).encode()
    }

    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, ReceiptCheckError> {
        use codec::DecodeAll;
        let (magic, layout, file) = <([u8; 8], u8, Self)>::decode_all(&mut &bytes[..]).map_err(|_| ReceiptCheckError::NotAReceiptFile)?;
        if magic != MAGIC || layout != LAYOUT {
            return Err(ReceiptCheckError::NotAReceiptFile);
        }
        Ok(file)
    }

    /// Checks the receipt against its block's root, its `Use` and its signed outcomes, offline.
    pub fn verify(&self) -> std::result::Result<VerifiedReceipt, ReceiptCheckError> {
        let (chain, k, agreeing) = self.check_signatures()?;
        let block = SettlingBlock::from_header(&self.header).ok_or(ReceiptCheckError::BadHeader)?;
        let root = block.receipt_root.ok_or(ReceiptCheckError::NoReceiptRoot { block: block.number })?;
        let receipt = &self.receipt;
        if receipt.settled_at != block.number {
            return Err(ReceiptCheckError::WrongBlock { settled_at: receipt.settled_at, block: block.number });
        }
        if !root.contains(self.leaf_index, receipts::leaf(&receipt.encode()), &self.path) {
            return Err(ReceiptCheckError::NotInRoot { block: block.number });
        }
        Ok(VerifiedReceipt { receipt: receipt.clone(), block, chain, k, agreeing })
    }

    /// The receipt's own evidence, before its block's: the buyer signed the `Use` it names, and
    /// a strict majority of its providers signed the winning result, each signer paid or
    /// slashed as the receipt says. Returns the `Use`'s chain, k and the agreeing signers.
    fn check_signatures(&self) -> std::result::Result<(Hash256, usize, usize), ReceiptCheckError> {
        let receipt = &self.receipt;
        let authorised = TicketUse::decode(&mut &self.bundle.authorised.encode()[..]).map_err(|_| ReceiptCheckError::UseMismatch)?;
        let use_hash = authorised.hash();
        if authorised.ticket != receipt.ticket || use_hash != receipt.use_hash {
            return Err(ReceiptCheckError::UseMismatch);
        }
        if !signed(&receipt.buyer, &self.bundle.buyer_signature, &authorised.signing_payload()) {
            return Err(ReceiptCheckError::BadUseSignature { buyer: receipt.buyer.to_string() });
        }
        let winning = Outcome { output_hash: receipt.winning.output_hash, token_count: receipt.winning.token_count };
        let paid: Vec<&AccountId> = receipt.paid.0.iter().map(|(who, _)| who).collect();
        let slashed: Vec<&AccountId> = receipt.slashed.0.iter().map(|(who, ..)| who).collect();
        let mut signers: Vec<&AccountId> = Vec::new();
        let mut agreeing = 0;
        for signed_outcome in &self.bundle.outcomes.0 {
            let outcome = Outcome { output_hash: signed_outcome.outcome.output_hash, token_count: signed_outcome.outcome.token_count };
            let payload = outcome_payload(receipt.ticket, &use_hash, &outcome);
            // The receipt names its accounts, not their positions: the signer must be one of
            // those it pays (the winning result) or slashes (another), and sign once.
            let accounts = if outcome == winning { &paid } else { &slashed };
            let signer = accounts
                .iter()
                .find(|who| !signers.contains(who) && signed(who, &signed_outcome.signature, &payload))
                .ok_or(ReceiptCheckError::BadOutcomeSignature { position: signed_outcome.provider })?;
            signers.push(signer);
            agreeing += usize::from(outcome == winning);
        }
        let k = receipt.paid.0.len() + receipt.slashed.0.len() + receipt.held.0.len();
        if agreeing * 2 <= k {
            return Err(ReceiptCheckError::NoMajority { agreeing, k });
        }
        Ok((authorised.chain, k, agreeing))
    }
}

fn signed(who: &AccountId, signature: &Signature, payload: &[u8]) -> bool {
    match signature {
        Signature::Sr25519(signature) => signed_by(&who.0, signature, payload),
        _ => false,
    }
}

impl crate::Client {
    /// The receipt file of a ticket `block` settled: the block's header and every ticket
    /// receipt it deposited, read from the chain, and the path of this one's leaf among them.
    pub async fn receipt_file(&self, settled: &crate::tickets::SettledTicket) -> Result<ReceiptFile> {
        let block = self.chain.settled_tickets_at(settled.block).await?;
        let leaves: Vec<Hash256> = block.receipts.iter().map(|r| receipts::leaf(&r.encode())).collect();
        let ticket = settled.receipt.ticket;
        let index = block.receipts.iter().position(|r| r.ticket == ticket).ok_or(ClientError::TicketNotSettled {
            ticket,
            reason: format!("block 0x{} deposited no receipt of it", hex::encode(settled.block)),
        })?;
        let path = receipts::path(&leaves, index as u32).expect("the index is one of the leaves");
        Ok(ReceiptFile {
            receipt: block.receipts[index].clone(),
            bundle: settled.bundle.clone(),
            header: block.header,
            leaf_index: index as u32,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_chain_client::{bounded, subxt_signer::sr25519::Keypair, types, SignedOutcome};
    use agora_primitives::receipts::ReceiptRoot;
    use codec::Compact;

    fn key(name: &str) -> Keypair {
        crate::account_from_uri(&format!("//{name}")).unwrap()
    }

    fn account(key: &Keypair) -> AccountId {
        AccountId::from(key.public_key().0)
    }

    fn result(byte: u8) -> types::Outcome {
        types::Outcome { output_hash: [byte; 32], token_count: 7 }
    }

    /// A header as the chain encodes it (parent, number, state root, extrinsics root, digest),
    /// carrying `root` if there is one.
    fn header(number: u32, root: Option<ReceiptRoot>) -> Vec<u8> {
        let logs: Vec<Vec<u8>> = root.iter().map(|r| r.digest_item().encode()).collect();
        let mut bytes = ([1u8; 32], Compact(number), [2u8; 32], [3u8; 32], Compact(logs.len() as u32)).encode();
        logs.iter().for_each(|item| bytes.extend(item));
        bytes
    }

    /// Ticket 9, k = 3 (Bob, Charlie, Dave), settled in block 40 beside two other receipts:
    /// Bob and Charlie signed the winning result, Dave another.
    fn settled() -> ReceiptFile {
        let (buyer, providers) = (key("Alice"), [key("Bob"), key("Charlie"), key("Dave")]);
        let authorised = TicketUse {
            chain: [4; 32],
            ticket: 9,
            prompt_hash: [5; 32],
            prompt_tokens: 3,
            max_output_tokens: 8,
            sampling: agora_primitives::SamplingParams::default(),
            client_peer: agora_primitives::PeerIdBytes::truncate_from(b"peer".to_vec()),
        };
        let results = [result(1), result(1), result(2)];
        let outcomes = providers
            .iter()
            .zip(results.iter())
            .enumerate()
            .map(|(position, (who, o))| {
                let payload = authorised.outcome_payload(&Outcome { output_hash: o.output_hash, token_count: o.token_count });
                SignedOutcome { provider: position as u8, outcome: o.clone(), signature: Signature::Sr25519(who.sign(&payload).0) }
            })
            .collect::<Vec<_>>();
        let bundle = TicketBundle {
            authorised: Decode::decode(&mut &authorised.encode()[..]).unwrap(),
            buyer_signature: Signature::Sr25519(buyer.sign(&authorised.signing_payload()).0),
            outcomes: bounded(outcomes),
        };
        let receipt = TicketReceipt {
            ticket: 9,
            buyer: account(&buyer),
            use_hash: authorised.hash(),
            winning: result(1),
            paid: bounded(vec![(account(&providers[0]), 10), (account(&providers[1]), 10)]),
            slashed: bounded(vec![(account(&providers[2]), 100, types::JobOutcome::Wrong)]),
            held: bounded(vec![]),
            refunded: 5,
            settled_at: 40,
        };
        let leaves = [receipts::leaf(b"another"), receipts::leaf(&receipt.encode()), receipts::leaf(b"a third")];
        let path = receipts::path(&leaves, 1).unwrap();
        ReceiptFile { receipt, bundle, header: header(40, Some(ReceiptRoot::of(&leaves))), leaf_index: 1, path }
    }

    #[test]
    fn a_settled_receipt_is_verified_offline_through_its_file() {
        let file = ReceiptFile::from_bytes(&settled().to_bytes()).unwrap();
        let verified = file.verify().unwrap();
        assert_eq!((verified.k, verified.agreeing, verified.block.number, verified.chain), (3, 2, 40, [4; 32]));
        assert_eq!(verified.block.hash, agora_primitives::receipts::SettlingBlock::from_header(&file.header).unwrap().hash);
    }

    #[test]
    fn each_altered_part_of_a_receipt_file_is_refused_by_name() {
        let check = |alter: &dyn Fn(&mut ReceiptFile)| {
            let mut file = settled();
            alter(&mut file);
            file.verify().unwrap_err()
        };
        assert_eq!(check(&|f| f.receipt.refunded += 1), ReceiptCheckError::NotInRoot { block: 40 });
        assert_eq!(check(&|f| f.receipt.paid.0[0].1 += 1), ReceiptCheckError::NotInRoot { block: 40 });
        assert_eq!(check(&|f| f.leaf_index = 0), ReceiptCheckError::NotInRoot { block: 40 });
        assert_eq!(check(&|f| f.path[0][0] ^= 1), ReceiptCheckError::NotInRoot { block: 40 });
        assert_eq!(check(&|f| f.header = header(40, Some(ReceiptRoot::of(&[[0; 32]])))), ReceiptCheckError::NotInRoot { block: 40 });
        assert_eq!(check(&|f| f.header = header(40, None)), ReceiptCheckError::NoReceiptRoot { block: 40 });
        let same_root_block_41 = |f: &mut ReceiptFile| f.header = header(41, SettlingBlock::from_header(&f.header).unwrap().receipt_root);
        assert_eq!(check(&same_root_block_41), ReceiptCheckError::WrongBlock { settled_at: 40, block: 41 });
        assert_eq!(check(&|f| f.header.truncate(10)), ReceiptCheckError::BadHeader);
        assert_eq!(check(&|f| f.bundle.authorised.prompt_hash[0] ^= 1), ReceiptCheckError::UseMismatch);
        // A Use re-signed by someone else for the receipt's H(Use) is still not the buyer's.
        let buyer = account(&key("Alice")).to_string();
        assert_eq!(
            check(&|f| f.bundle.buyer_signature = Signature::Sr25519(key("Eve").sign(&(agora_primitives::tickets::TICKET_USE_DOMAIN, &f.bundle.authorised).encode()).0)),
            ReceiptCheckError::BadUseSignature { buyer }
        );
        // Bob's signature presented for Charlie's position twice: one signer counts once.
        assert_eq!(
            check(&|f| f.bundle.outcomes.0[1].signature = f.bundle.outcomes.0[0].signature.clone()),
            ReceiptCheckError::BadOutcomeSignature { position: 1 }
        );
        // Dave's dissent presented as the winning result: he did not sign that.
        assert_eq!(check(&|f| f.bundle.outcomes.0[2].outcome = result(1)), ReceiptCheckError::BadOutcomeSignature { position: 2 });
        assert_eq!(check(&|f| drop(f.bundle.outcomes.0.remove(1))), ReceiptCheckError::NoMajority { agreeing: 1, k: 3 });
    }

    #[test]
    fn anything_but_a_receipt_file_is_refused() {
        let bytes = settled().to_bytes();
        assert_eq!(ReceiptFile::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err(), ReceiptCheckError::NotAReceiptFile);
        assert_eq!(ReceiptFile::from_bytes(&[bytes.clone(), vec![0]].concat()).unwrap_err(), ReceiptCheckError::NotAReceiptFile);
        let mut other_layout = bytes;
        other_layout[8] = 2;
        assert_eq!(ReceiptFile::from_bytes(&other_layout).unwrap_err(), ReceiptCheckError::NotAReceiptFile);
        assert_eq!(ReceiptFile::from_bytes(b"{\"json\": true}").unwrap_err(), ReceiptCheckError::NotAReceiptFile);
    }
}
