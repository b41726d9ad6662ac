//! Settling tickets from signed outcomes: no commit, no reveal, one transaction for many.
//!
//! A bundle is a ticket's `Use`, signed by its buyer, and outcomes signed over `H(Use)` by the
//! ticket's providers. A strict majority of the ticket's k signing one result settles it:
//! each signer of it is paid its price for the prompt and its tokens, each signer of another
//! result is slashed (its signature proves what it claimed), each provider the bundle does not
//! name keeps its most under the `Use` held in the ticket until the settle window closes, for
//! it to claim with its own signed outcome (paid if it is the winner, slashed if not; unclaimed,
//! it earns the reservation fee at expiry), and the rest goes back to the buyer. Money moves
//! between ledger entries, gathered over the whole call so each account is written once;
//! reputation likewise. Each receipt is an event, and a leaf of its block's receipt root.

use super::*;
use crate::types::TicketsSettled;
use agora_primitives::{
    pricing, Hash256, JobOutcome, Outcome, Settlement, SignedOutcome, TicketBundle, TicketId, TicketReceipt, TicketStatus, MAX_REDUNDANCY,
};
use agora_verifier::tally;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use pallet_agora_providers::BalanceOf;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system::{self, pallet_prelude::BlockNumberFor};
use polkadot_sdk::sp_runtime::{
    traits::{Saturating, Verify, Zero},
    BoundedVec,
};

type Escrow<T> = pallet_agora_escrow::Pallet<T>;
type Providers<T> = pallet_agora_providers::Pallet<T>;
pub type TicketBundleOf<T> = TicketBundle<<T as Config>::OffchainSignature>;
pub type TicketReceiptOf<T> =
    TicketReceipt<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

/// What a call's bundles owe, gathered so that each account is written once.
struct Batch<T: Config> {
    credits: BTreeMap<T::AccountId, BalanceOf<T>>,
    /// Every account credited or recorded: what the call's witness bounds.
    accounts: BTreeSet<T::AccountId>,
    /// Each provider with an outcome, in the order its bundles came.
    outcomes: BTreeMap<T::AccountId, Vec<JobOutcome>>,
    extra_outcomes: u32,
    dissents: u32,
    held: u32,
    /// Listings rewritten beyond the first of each provider record written: what the call's
    /// second witness bounds.
    relisted: u32,
    relisted_witness: u32,
    /// This chain's genesis hash, read once a call: every bundle's `Use` must name it.
    chain: Hash256,
}

impl<T: Config> Batch<T> {
    fn credit(&mut self, who: &T::AccountId, amount: BalanceOf<T>) {
        if !amount.is_zero() {
            let entry = self.credits.entry(who.clone()).or_default();
            *entry = entry.saturating_add(amount);
            self.accounts.insert(who.clone());
        }
    }

    fn record(&mut self, who: &T::AccountId, outcome: JobOutcome) {
        self.outcomes.entry(who.clone()).or_default().push(outcome);
        self.accounts.insert(who.clone());
    }

    /// Counts the listings a write of `who`'s record will rewrite beyond its first, before it
    /// is written: a provider with many offers costs more than the benchmark measured, and the
    /// witness paid for it.
    fn will_relist(&mut self, who: &T::AccountId) -> DispatchResult {
        self.relisted.saturating_accrue(Providers::<T>::listings_of(who).saturating_sub(1));
        ensure!(self.relisted <= self.relisted_witness, Error::<T>::ListingsWitnessTooLow);
        Ok(())
    }
}

impl<T: Config> Pallet<T> {
    /// The weight of settling `bundles` that credit or record at most `accounts` accounts and
    /// rewrite at most `relisted` listings beyond each provider record's first, from the bundles
    /// alone: a bundle that settles has a majority, and every outcome outside its largest group
    /// is a slash.
    pub fn settle_tickets_weight(bundles: &[TicketBundleOf<T>], accounts: u32, relisted: u32) -> Weight {
        // Any bundle may leave a provider out, and its ticket is then written back.
        let mut settled = TicketsSettled { bundles: bundles.len() as u32, held: bundles.len() as u32, ..Default::default() };
        for bundle in bundles {
            let outcomes: Vec<Outcome> = bundle.outcomes.iter().map(|s| s.outcome).collect();
            settled.extra_outcomes.saturating_accrue((outcomes.len() as u32).saturating_sub(2));
            settled.dissents.saturating_accrue((outcomes.len() as u32).saturating_sub(tally::largest_group(&outcomes)));
        }
        // Each bundle names at most k providers and one buyer.
        settled.accounts = accounts.min(settled.bundles.saturating_mul(MAX_REDUNDANCY + 1));
        // Each provider record is written once for its outcomes and once for each slash.
        let writes = settled.bundles.saturating_mul(MAX_REDUNDANCY).saturating_add(settled.dissents);
        settled.relisted = relisted.min(Providers::<T>::most_relisted(writes));
        Self::tickets_weight(settled)
    }

    /// A buyer is charged as a provider: its one ledger entry costs less than a provider's
    /// record, listings, exposure and entry.
    pub fn tickets_weight(settled: TicketsSettled) -> Weight {
        <T as Config>::WeightInfo::settle_tickets(settled.bundles.max(1), settled.accounts.max(2))
            .saturating_add(<T as Config>::WeightInfo::ticket_outcome().saturating_mul(settled.extra_outcomes.into()))
            .saturating_add(<T as Config>::WeightInfo::ticket_dissent().saturating_mul(settled.dissents.into()))
            .saturating_add(T::DbWeight::get().writes(settled.held.into()))
            .saturating_add(Providers::<T>::relisting_weight(settled.relisted))
            .saturating_add(Self::receipt_leaves_weight(settled.bundles))
    }

    /// Settles every bundle or none: one that does not hold fails the call with its reason.
    /// `witness` bounds the distinct accounts credited or recorded and `relisted_witness` the
    /// listings rewritten beyond each provider record's first, which the weight paid for.
    pub(crate) fn do_settle_tickets(
        bundles: Vec<TicketBundleOf<T>>,
        witness: u32,
        relisted_witness: u32,
    ) -> Result<TicketsSettled, DispatchError> {
        let mut batch = Batch::<T> {
            credits: BTreeMap::new(),
            accounts: BTreeSet::new(),
            outcomes: BTreeMap::new(),
            extra_outcomes: 0,
            dissents: 0,
            held: 0,
            relisted: 0,
            relisted_witness,
            chain: Self::chain(),
        };
        let count = bundles.len() as u32;
        for bundle in bundles {
            Self::settle_bundle(bundle, &mut batch)?;
            ensure!(batch.accounts.len() as u32 <= witness, Error::<T>::AccountsWitnessTooLow);
        }
        for who in batch.outcomes.keys().cloned().collect::<Vec<_>>() {
            batch.will_relist(&who)?;
        }
        let settled = TicketsSettled {
            bundles: count,
            extra_outcomes: batch.extra_outcomes,
            dissents: batch.dissents,
            held: batch.held,
            accounts: batch.accounts.len() as u32,
            relisted: batch.relisted,
        };
        let challengeable_until = frame_system::Pallet::<T>::block_number().saturating_add(T::ChallengeWindow::get());
        for (who, outcomes) in batch.outcomes {
            if outcomes.contains(&JobOutcome::Agreed) {
                // What it was paid stays answerable to its stake through the challenge window.
                Providers::<T>::expose_until(&who, challengeable_until);
            }
            Providers::<T>::record_outcomes(&who, outcomes);
        }
        batch.credits.iter().for_each(|(who, amount)| Escrow::<T>::credit(who, *amount));
        Ok(settled)
    }

    fn settle_bundle(bundle: TicketBundleOf<T>, batch: &mut Batch<T>) -> DispatchResult {
        let authorised = &bundle.authorised;
        let mut ticket = Escrow::<T>::take_settleable_ticket(authorised.ticket)?;
        // Its winner is fixed: what is left is claimed one outcome at a time.
        ensure!(ticket.status == TicketStatus::Drawn, Error::<T>::AlreadySettled);
        ensure!(authorised.chain == batch.chain, Error::<T>::WrongChain);
        ensure!(ticket.spec.admits(authorised), Error::<T>::UseExceedsTicket);
        ensure!(
            bundle.buyer_signature.verify(&authorised.signing_payload()[..], &ticket.buyer),
            Error::<T>::BadUseSignature
        );
        let mut signed: [Option<Outcome>; MAX_REDUNDANCY as usize] = Default::default();
        for s in bundle.outcomes.iter() {
            let index = s.provider as usize;
            let who = ticket.providers.get(index).ok_or(Error::<T>::NotTicketProvider)?;
            ensure!(signed[index].is_none(), Error::<T>::DuplicateOutcome);
            ensure!(s.outcome.token_count <= authorised.max_output_tokens, Error::<T>::TooManyTokens);
            ensure!(s.signature.verify(&authorised.outcome_payload(&s.outcome)[..], who), Error::<T>::BadOutcomeSignature);
            signed[index] = Some(s.outcome);
        }
        let outcomes: Vec<Outcome> = signed.iter().flatten().copied().collect();
        let winning = tally::strict_majority(&outcomes, ticket.spec.redundancy).ok_or(Error::<T>::NoMajority)?;
        batch.extra_outcomes = batch.extra_outcomes.saturating_add((outcomes.len() as u32).saturating_sub(2));

        let mut receipt = TicketReceiptOf::<T> {
            ticket: authorised.ticket,
            buyer: ticket.buyer.clone(),
            use_hash: authorised.hash(),
            winning,
            paid: BoundedVec::new(),
            slashed: BoundedVec::new(),
            held: BoundedVec::new(),
            refunded: Zero::zero(),
            settled_at: frame_system::Pallet::<T>::block_number(),
        };
        let mut left = ticket.escrow;
        let (mut held, mut open) = (BalanceOf::<T>::zero(), 0u8);
        for (position, ((who, (price_in, price_out)), claimed)) in ticket.providers.iter().zip(ticket.prices.iter()).zip(signed).enumerate() {
            // Every share is capped by what is left, so the ticket never pays out more than
            // its escrow; by construction (prices and tokens within the spec) none is capped.
            match claimed {
                Some(o) if o == winning => {
                    let due = pricing::cost(authorised.prompt_tokens, *price_in, o.token_count, *price_out).unwrap_or_default().min(left);
                    left = left.saturating_sub(due);
                    batch.credit(who, due);
                    batch.record(who, JobOutcome::Agreed);
                    let _ = receipt.paid.try_push((who.clone(), due));
                },
                Some(_) => {
                    batch.dissents.saturating_accrue(1);
                    batch.will_relist(who)?;
                    let taken = Providers::<T>::slash(who, T::WrongResultSlash::get()).taken;
                    batch.record(who, JobOutcome::Wrong);
                    let _ = receipt.slashed.try_push((who.clone(), taken, JobOutcome::Wrong));
                },
                // Whoever settles cannot short a provider by leaving its outcome out: its most
                // under the `Use` stays held for it to claim.
                None => {
                    let share = pricing::cost(authorised.prompt_tokens, *price_in, authorised.max_output_tokens, *price_out)
                        .unwrap_or_default()
                        .min(left);
                    left = left.saturating_sub(share);
                    held = held.saturating_add(share);
                    open |= 1 << position;
                    let _ = receipt.held.try_push((who.clone(), share));
                },
            }
        }
        receipt.refunded = left;
        batch.credit(&ticket.buyer, left);
        if open != 0 {
            let settlement = Settlement {
                use_hash: receipt.use_hash,
                winning,
                prompt_tokens: authorised.prompt_tokens,
                max_output_tokens: authorised.max_output_tokens,
                open,
            };
            ticket.status = TicketStatus::Settled(settlement);
            ticket.escrow = held;
            Escrow::<T>::hold_ticket(authorised.ticket, ticket);
            batch.held.saturating_accrue(1);
        }
        Self::note_receipt(&receipt)?;
        Self::deposit_event(Event::TicketSettled { receipt });
        Ok(())
    }

    /// Pays or slashes a provider a settlement left out, from its signed outcome for the `Use`
    /// the ticket was settled under: the winning result earns its price from the share held
    /// for it, another is slashed; the rest of the share goes back to the buyer. Returns the
    /// listings rewritten beyond the provider's first.
    pub(crate) fn do_claim_outcome(id: TicketId, claimed: SignedOutcome<T::OffchainSignature>) -> Result<u32, DispatchError> {
        let ticket = Escrow::<T>::take_settleable_ticket(id)?;
        let TicketStatus::Settled(settlement) = ticket.status else { return Err(Error::<T>::NotSettled.into()) };
        let position = claimed.provider as usize;
        let (Some(who), Some((price_in, price_out))) = (ticket.providers.get(position), ticket.prices.get(position)) else {
            return Err(Error::<T>::NotTicketProvider.into());
        };
        ensure!(settlement.open & (1 << position) != 0, Error::<T>::NotOpen);
        let outcome = claimed.outcome;
        ensure!(outcome.token_count <= settlement.max_output_tokens, Error::<T>::TooManyTokens);
        let payload = agora_primitives::tickets::outcome_payload(id, &settlement.use_hash, &outcome);
        ensure!(claimed.signature.verify(&payload[..], who), Error::<T>::BadOutcomeSignature);
        let share = Self::held_share(&settlement, (*price_in, *price_out), ticket.escrow);
        let (paid, slashed, relisted) = if outcome == settlement.winning {
            let due = pricing::cost(settlement.prompt_tokens, *price_in, outcome.token_count, *price_out).unwrap_or_default().min(share);
            Escrow::<T>::credit(who, due);
            let relisted = Providers::<T>::record_outcome(who, JobOutcome::Agreed);
            Providers::<T>::expose_until(who, frame_system::Pallet::<T>::block_number().saturating_add(T::ChallengeWindow::get()));
            (due, Zero::zero(), relisted)
        } else {
            let punished = Providers::<T>::punish(who, Some(JobOutcome::Wrong), T::WrongResultSlash::get());
            (Zero::zero(), punished.taken, punished.relisted)
        };
        Escrow::<T>::credit(&ticket.buyer, share.saturating_sub(paid));
        Self::deposit_event(Event::TicketOutcomeClaimed { ticket: id, provider: who.clone(), outcome, paid, slashed });
        Self::close_position(id, ticket, settlement, position, share);
        Ok(relisted)
    }

    /// The most a provider at `prices` could earn under a settlement's `Use`: the share held
    /// for it, within what the ticket still holds.
    pub(crate) fn held_share(settlement: &Settlement, (price_in, price_out): (BalanceOf<T>, BalanceOf<T>), escrow: BalanceOf<T>) -> BalanceOf<T> {
        pricing::cost(settlement.prompt_tokens, price_in, settlement.max_output_tokens, price_out).unwrap_or_default().min(escrow)
    }

    /// Closes `position` of a settled ticket whose `share` was paid out, and puts the ticket
    /// back only while another position is still open.
    pub(crate) fn close_position(id: TicketId, mut ticket: pallet_agora_escrow::TicketOf<T>, mut settlement: Settlement, position: usize, share: BalanceOf<T>) {
        settlement.open &= !(1 << position);
        ticket.escrow = ticket.escrow.saturating_sub(share);
        if settlement.open != 0 {
            ticket.status = TicketStatus::Settled(settlement);
            Escrow::<T>::hold_ticket(id, ticket);
        }
    }
}
