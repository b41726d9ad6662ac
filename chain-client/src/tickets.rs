//! The deposit ledger and tickets: money in and out of the escrow pallet's account, tickets
//! bought from it and drawn a block later, settled from signed outcomes.

use crate::{agora, subxt_err, AccountId, Balance, BlockNumber, ChainClient, Error, Events, Keypair};
use std::collections::{BTreeMap, BTreeSet};

pub type TicketSpec = crate::types::tickets::TicketSpec<Balance>;
pub type Ticket = crate::types::tickets::Ticket<AccountId, Balance, BlockNumber>;
pub use crate::types::tickets::{TicketStatus, TicketUse};
pub type Signature = agora::runtime_types::sp_runtime::MultiSignature;
/// A ticket's signed `Use` and its providers' signed outcomes.
pub type TicketBundle = crate::types::tickets::TicketBundle<Signature>;
pub type SignedOutcome = crate::types::tickets::SignedOutcome<Signature>;
pub type TicketReceipt = crate::types::tickets::TicketReceipt<AccountId, Balance, BlockNumber>;

/// Tickets bought in one call: ids `first .. first + count`, each holding `escrow_each`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub first: u64,
    pub count: u32,
    pub escrow_each: Balance,
}

/// The witnesses `settle_tickets` is weighed by: the distinct accounts its bundles credit or
/// record, and the listings its writes of provider records rewrite beyond each one's first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SettleWitness {
    pub accounts: u32,
    pub relisted: u32,
}

/// What one `settle_tickets` did: each ticket's receipt, and the block that included it.
#[derive(Clone, Debug)]
pub struct SettledTickets {
    pub block: [u8; 32],
    pub receipts: Vec<TicketReceipt>,
}

/// A block's header, SCALE-encoded, and the ticket receipts it deposited, in order.
#[derive(Clone, Debug)]
pub struct BlockReceipts {
    /// The header as the node serves it.
    pub header: Vec<u8>,
    pub receipts: Vec<TicketReceipt>,
    /// The digest the runtime deposited in the block (`System::Digest`, SCALE-encoded): a node
    /// that seals the runtime's header serves it in the header; chopsticks builds headers of
    /// its own that carry none of it.
    pub runtime_digest: Vec<u8>,
}

impl Purchase {
    pub fn ids(&self) -> std::ops::Range<u64> {
        self.first..self.first + u64::from(self.count)
    }
}

impl ChainClient {
    /// Moves `amount` of `who`'s balance into its ledger entry.
    pub async fn deposit(&self, amount: Balance, who: &Keypair) -> Result<(), Error> {
        self.submit(&agora::tx().escrow().deposit(amount), who).await.map(|_| ())
    }

    /// Moves `amount` of `who`'s ledger entry back to its balance.
    pub async fn withdraw(&self, amount: Balance, who: &Keypair) -> Result<(), Error> {
        self.submit(&agora::tx().escrow().withdraw(amount), who).await.map(|_| ())
    }

    /// What `who`'s ledger entry holds: unspent deposit, refunds and earnings.
    pub async fn ledger_balance(&self, who: &AccountId) -> Result<Balance, Error> {
        Ok(self.lookup(agora::storage().escrow().deposits(), (who.clone(),)).await?.unwrap_or(0))
    }

    /// Buys `count` tickets of `spec` from `buyer`'s ledger entry; their providers are drawn in
    /// a later block ([`Self::ticket`] shows them).
    pub async fn buy_tickets(&self, spec: TicketSpec, count: u32, buyer: &Keypair) -> Result<Purchase, Error> {
        let events = self.submit(&agora::tx().escrow().buy_tickets(spec, count), buyer).await?;
        events
            .find_first::<agora::escrow::events::TicketsBought>()
            .and_then(Result::ok)
            .map(|e| Purchase { first: e.first, count: e.count, escrow_each: e.escrow_each })
            .ok_or_else(|| Error::Unexpected("the purchase succeeded without a TicketsBought event".into()))
    }

    /// Ticket `id` as the chain keeps it, until it is used up or expires.
    pub async fn ticket(&self, id: u64) -> Result<Option<Ticket>, Error> {
        self.lookup(agora::storage().escrow().tickets(), (id,)).await
    }

    /// Settles every ticket of `bundles` in one transaction, or none (the refusal names the
    /// first bundle's fault), with the witnesses the weight is charged by read from the chain
    /// ([`Self::settle_witness`]). Returns each ticket's receipt and the block that settled it.
    pub async fn settle_tickets(&self, bundles: Vec<TicketBundle>, caller: &Keypair) -> Result<SettledTickets, Error> {
        let witness = self.settle_witness(&bundles).await?;
        self.settle_tickets_with(bundles, witness, caller).await
    }

    /// [`Self::settle_tickets`] with the witnesses given: the chain refuses a witness lower
    /// than what the bundles touch by name (`AccountsWitnessTooLow`, `ListingsWitnessTooLow`).
    pub async fn settle_tickets_with(&self, bundles: Vec<TicketBundle>, witness: SettleWitness, caller: &Keypair) -> Result<SettledTickets, Error> {
        let call = agora::tx().verifier().settle_tickets(crate::bounded(bundles), witness.accounts, witness.relisted);
        let (events, block) = self.submit_in_block(&call, caller).await?;
        let receipts = events.find::<agora::verifier::events::TicketSettled>().filter_map(Result::ok).map(|e| e.receipt).collect();
        Ok(SettledTickets { block, receipts })
    }

    /// Block `block`'s header, as the chain encodes it, and every ticket receipt it deposited,
    /// in order: the leaves of the receipt root its header carries.
    pub async fn settled_tickets_at(&self, block: [u8; 32]) -> Result<BlockReceipts, Error> {
        let at = self.api.at_block(subxt::utils::H256(block)).await.map_err(subxt_err)?;
        let header = at.block_header().await.map_err(subxt_err)?;
        let events = at.events().fetch().await.map_err(subxt_err)?;
        let receipts = events
            .find::<agora::verifier::events::TicketSettled>()
            .map(|e| e.map(|e| e.receipt).map_err(subxt_err))
            .collect::<Result<_, Error>>()?;
        let digest = at.storage().try_fetch(agora::storage().system().digest(), ()).await.map_err(subxt_err)?;
        Ok(BlockReceipts { header: codec::Encode::encode(&header), receipts, runtime_digest: digest.map(|d| d.into_bytes()).unwrap_or_default() })
    }

    /// What settling `bundles` will touch, from their tickets and their providers' records:
    /// every buyer and named provider, and for each named provider its offers less one for its
    /// outcomes and again for each result of it outside its bundle's majority. A bundle whose
    /// ticket is gone counts nothing: the chain refuses it by name.
    pub async fn settle_witness(&self, bundles: &[TicketBundle]) -> Result<SettleWitness, Error> {
        let mut accounts = BTreeSet::new();
        let mut writes: BTreeMap<AccountId, u32> = BTreeMap::new();
        for bundle in bundles {
            let Some(ticket) = self.ticket(bundle.authorised.ticket).await? else { continue };
            accounts.insert(ticket.buyer.clone());
            let outcomes: Vec<_> = bundle.outcomes.0.iter().map(|signed| &signed.outcome).collect();
            let majority = outcomes
                .iter()
                .find(|o| outcomes.iter().filter(|other| other == o).count() * 2 > ticket.providers.0.len())
                .copied();
            for signed in bundle.outcomes.0.iter() {
                let Some(who) = ticket.providers.0.get(usize::from(signed.provider)) else { continue };
                accounts.insert(who.clone());
                let dissent = u32::from(majority != Some(&signed.outcome));
                *writes.entry(who.clone()).or_insert(1) += dissent;
            }
        }
        let mut relisted = 0u32;
        for (who, writes) in writes {
            let offers = self.provider(&who).await?.map_or(0, |record| record.manifest.offers.0.len() as u32);
            relisted = relisted.saturating_add(offers.saturating_sub(1).saturating_mul(writes));
        }
        Ok(SettleWitness { accounts: accounts.len() as u32, relisted })
    }

    /// Brings the signed outcome of a provider that ticket `id`'s settlement left out (within
    /// the settle window): paid from the share held for it if it is the winner, slashed if not.
    pub async fn claim_ticket_outcome(&self, id: u64, outcome: SignedOutcome, caller: &Keypair) -> Result<Events, Error> {
        self.submit(&agora::tx().verifier().claim_ticket_outcome(id, outcome), caller).await
    }

    /// Blocks after a ticket's expiry in which it can still be settled or claimed; after them,
    /// anyone can expire it.
    pub async fn ticket_settle_window(&self) -> Result<BlockNumber, Error> {
        let at = self.api().at_current_block().await.map_err(|e| Error::Subxt(e.into()))?;
        at.constants().entry(agora::constants().escrow().settle_window()).map_err(|e| Error::Subxt(e.into()))
    }

    /// Closes ticket `id`, drawn and never used, once its settle window has passed (anyone may).
    pub async fn expire_ticket(&self, id: u64, caller: &Keypair) -> Result<(), Error> {
        self.submit(&agora::tx().escrow().expire_ticket(id), caller).await.map(|_| ())
    }

    /// Falls ticket `authorised.ticket`, drawn and not settled from a bundle, back to
    /// commit–reveal under the buyer's signed `Use`: it becomes an assigned request of the same
    /// providers. Its buyer may at any time; anyone else `ticket_fallback_grace` blocks after
    /// its expiry. Returns the request.
    pub async fn fall_back_ticket(&self, authorised: TicketUse, buyer_signature: Signature, caller: &Keypair) -> Result<u64, Error> {
        let events = self.submit(&agora::tx().verifier().fall_back_ticket(authorised, buyer_signature), caller).await?;
        events
            .find_first::<agora::escrow::events::TicketFellBack>()
            .and_then(Result::ok)
            .map(|e| e.request)
            .ok_or_else(|| Error::Unexpected("the fallback succeeded without a TicketFellBack event".into()))
    }

    /// Proves that the buyer of `authorised.ticket` signed it beside the `Use` the ticket was
    /// settled under (`request` = `None`) or fell back with (`Some(request)`); the caller, a
    /// provider that served it, is paid its most.
    pub async fn prove_equivocation(&self, authorised: TicketUse, buyer_signature: Signature, request: Option<u64>, caller: &Keypair) -> Result<(), Error> {
        self.submit(&agora::tx().verifier().prove_equivocation(authorised, buyer_signature, request), caller).await.map(|_| ())
    }

    /// Blocks after a ticket's expiry in which only its buyer may fall it back.
    pub async fn ticket_fallback_grace(&self) -> Result<BlockNumber, Error> {
        let at = self.api().at_current_block().await.map_err(|e| Error::Subxt(e.into()))?;
        at.constants().entry(agora::constants().escrow().ticket_fallback_grace()).map_err(|e| Error::Subxt(e.into()))
    }
}
