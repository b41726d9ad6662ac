//! Receipt roots: every block that settles tickets commits to their receipts in its header.
//!
//! A ticket's receipt is an event, and events are not kept by every node; proving one from a
//! header means a storage proof of the block's whole `System::Events`. So the verifier pallet
//! gathers the leaf of each receipt it deposits during a block and, at the block's end, puts
//! the binary Merkle root of them in the header's digest ([`ReceiptRoot`]). Whoever holds a
//! receipt, the header of its block and the path of its leaf can then check, with no chain
//! connection, that this very receipt was settled in the block with that hash: all an auditor
//! has to trust is the block hash, once it is final (the runtime refuses a block whose author
//! put a root of its own in the digest).

use crate::Hash256;
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use polkadot_sdk::binary_merkle_tree::{merkle_proof_raw, merkle_root_raw, verify_proof, Leaf};
use polkadot_sdk::sp_core::H256;
use polkadot_sdk::sp_crypto_hashing::blake2_256;
use polkadot_sdk::sp_runtime::generic::{DigestItem, Header};
use polkadot_sdk::sp_runtime::traits::{BlakeTwo256, Header as _};
use scale_info::TypeInfo;

/// Domain of a receipt's leaf, so that no inner node of the tree is also a leaf.
pub const RECEIPT_LEAF_DOMAIN: &[u8] = b"agora/receipt-leaf/1";

/// The tag that starts the digest item carrying a block's [`ReceiptRoot`].
pub const RECEIPT_ROOT_TAG: [u8; 4] = *b"agrr";

/// The leaf of a receipt in its block's tree, from the receipt's SCALE encoding.
pub fn leaf(encoded_receipt: &[u8]) -> Hash256 {
    blake2_256(&(RECEIPT_LEAF_DOMAIN, encoded_receipt).encode())
}

/// What a block that settled tickets commits to: how many receipts, and their Merkle root.
#[derive(Clone, Copy, Encode, Decode, DecodeWithMemTracking, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct ReceiptRoot {
    /// Leaves in the tree: a proof names its leaf's position among them.
    pub count: u32,
    pub root: Hash256,
}

impl ReceiptRoot {
    /// The root of `leaves`, in the order their receipts were deposited.
    pub fn of(leaves: &[Hash256]) -> Self {
        let root = merkle_root_raw::<BlakeTwo256, _>(leaves.iter().map(|l| H256(*l)));
        Self { count: leaves.len() as u32, root: root.0 }
    }

    /// The digest item that carries it in the header.
    pub fn digest_item(&self) -> DigestItem {
        DigestItem::Other((RECEIPT_ROOT_TAG, self).encode())
    }

    /// Whether `item` claims to carry a receipt root.
    pub fn is_tagged(item: &DigestItem) -> bool {
        matches!(item, DigestItem::Other(data) if data.starts_with(&RECEIPT_ROOT_TAG))
    }

    /// The receipt root among a header's digest items, if the block settled tickets: exactly
    /// one tagged item, exactly a root. The runtime refuses a block whose author tagged one, so
    /// two are a header no runtime built.
    pub fn find(logs: &[DigestItem]) -> Option<Self> {
        use codec::DecodeAll;
        let mut tagged = logs.iter().filter(|item| Self::is_tagged(item));
        match (tagged.next(), tagged.next()) {
            (Some(DigestItem::Other(data)), None) => Self::decode_all(&mut &data[RECEIPT_ROOT_TAG.len()..]).ok(),
            _ => None,
        }
    }

    /// The receipt root in an encoded digest (such as the runtime's `System::Digest` of a
    /// block), if there is one.
    pub fn from_encoded_digest(bytes: &[u8]) -> Option<Self> {
        let digest = polkadot_sdk::sp_runtime::generic::Digest::decode(&mut &bytes[..]).ok()?;
        Self::find(digest.logs())
    }

    /// Whether `leaf` is the `index`th of the tree, by the sibling hashes of its path.
    pub fn contains(&self, index: u32, leaf: Hash256, path: &[Hash256]) -> bool {
        verify_proof::<BlakeTwo256, _, _>(&H256(self.root), path.iter().map(|h| H256(*h)), self.count, index, Leaf::Hash(H256(leaf)))
    }
}

/// The sibling hashes from the `index`th of `leaves` up to their root: what
/// [`ReceiptRoot::contains`] checks. `None` if there is no such leaf.
pub fn path(leaves: &[Hash256], index: u32) -> Option<Vec<Hash256>> {
    if index as usize >= leaves.len() {
        return None;
    }
    let proof = merkle_proof_raw::<BlakeTwo256, _>(leaves.iter().map(|l| H256(*l)), index);
    Some(proof.proof.into_iter().map(|h| h.0).collect())
}

/// What a header says about its block, read from its SCALE bytes alone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SettlingBlock {
    pub number: u32,
    /// blake2-256 of the header's bytes: the block hash, which is what one trusts.
    pub hash: Hash256,
    pub receipt_root: Option<ReceiptRoot>,
}

impl SettlingBlock {
    /// Reads a header of the chain's format (u32 numbers, blake2-256); `None` if the bytes are
    /// not exactly one such header.
    pub fn from_header(bytes: &[u8]) -> Option<Self> {
        use codec::DecodeAll;
        let header = Header::<u32, BlakeTwo256>::decode_all(&mut &bytes[..]).ok()?;
        let receipt_root = ReceiptRoot::find(header.digest().logs());
        Some(Self { number: *header.number(), hash: blake2_256(bytes), receipt_root })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<Hash256> {
        (0..n).map(|i| leaf(&[i; 40])).collect()
    }

    #[test]
    fn every_leaf_of_every_tree_size_is_proven_and_no_other() {
        for n in 1..=9 {
            let leaves = leaves(n);
            let root = ReceiptRoot::of(&leaves);
            assert_eq!(root.count, u32::from(n));
            for (i, l) in leaves.iter().enumerate() {
                let p = path(&leaves, i as u32).unwrap();
                assert!(root.contains(i as u32, *l, &p), "leaf {i} of {n}");
                assert!(!root.contains(i as u32, leaf(b"another receipt"), &p), "a leaf not in the tree, {i} of {n}");
                if n > 1 {
                    let other = (i + 1) % n as usize;
                    assert!(!root.contains(other as u32, *l, &p), "leaf {i} of {n} at position {other}");
                }
            }
            assert!(path(&leaves, u32::from(n)).is_none());
        }
    }

    #[test]
    fn a_root_is_found_in_a_digest_and_a_header_names_its_hash() {
        let root = ReceiptRoot::of(&leaves(3));
        let digest = polkadot_sdk::sp_runtime::generic::Digest {
            logs: alloc::vec![DigestItem::Other(b"something else".to_vec()), root.digest_item()],
        };
        let header = Header::<u32, BlakeTwo256>::new(7, H256([1; 32]), H256([2; 32]), H256([3; 32]), digest);
        let bytes = header.encode();
        let block = SettlingBlock::from_header(&bytes).unwrap();
        assert_eq!(block, SettlingBlock { number: 7, hash: header.hash().0, receipt_root: Some(root) });
        assert!(SettlingBlock::from_header(&[bytes.clone(), alloc::vec![0]].concat()).is_none(), "trailing bytes");
        let twice = alloc::vec![root.digest_item(), ReceiptRoot::of(&leaves(1)).digest_item()];
        assert_eq!(ReceiptRoot::find(&twice), None, "two roots: neither is the runtime's alone");
        let padded = DigestItem::Other([root.digest_item().as_other().unwrap(), &[0]].concat());
        assert_eq!(ReceiptRoot::find(&[padded]), None, "a root with trailing bytes");
        let plain = Header::<u32, BlakeTwo256>::new(7, H256([1; 32]), H256([2; 32]), H256([3; 32]), Default::default());
        assert_eq!(SettlingBlock::from_header(&plain.encode()).unwrap().receipt_root, None);
        assert_eq!(ReceiptRoot::from_encoded_digest(&header.digest().encode()), Some(root));
    }
}
