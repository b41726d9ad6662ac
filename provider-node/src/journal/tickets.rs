//! Tickets this provider was drawn for: copied from the chain at their draw, so a `Use` is
//! checked with no chain call on the way to the first token, and journaled like requests — the
//! `Use` and prompt before the acknowledgement, the result before the signed outcome.
//!
//! A ticket serves one `Use`: once one is journaled, it never changes, so the provider never
//! signs outcomes for two prompts of one ticket.

use super::{prefixed, Journal, JournalError};
use agora_primitives::wire::StopReason;
use agora_primitives::{Outcome, TicketId, TicketSpec, TicketUse};
use codec::{Decode, Encode};

/// Tickets live under `t` + the big-endian ticket id.
const TICKET_PREFIX: u8 = b't';

/// Where a ticket job is. The order is the order of the protocol.
#[derive(Clone, Copy, Encode, Decode, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum TicketState {
    /// The chain drew this provider for the ticket.
    Drawn,
    /// The buyer's `Use` and its prompt arrived and were checked.
    PromptReceived,
    /// The output is fixed; the signed outcome may have been sent.
    Generated,
    /// The ticket is gone from the chain (settled, claimed or expired); nothing left to do.
    Closed,
}

/// A ticket this provider was drawn for, as the chain drew it, and what it served.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct TicketJob {
    pub ticket: TicketId,
    pub state: TicketState,
    /// The account whose signed `Use` alone is served.
    pub buyer: [u8; 32],
    /// This provider's position among the ticket's drawn providers.
    pub position: u8,
    /// What the ticket was bought for: release, profile, k, lengths, price limit.
    pub spec: TicketSpec<u128>,
    /// The last block in which the ticket may be used.
    pub expires_at: u32,
    /// The one `Use` this ticket serves, once it came.
    pub authorised: Option<TicketUse>,
    /// The buyer's signature over it: what shows the Use on-chain without the buyer.
    pub buyer_signature: Option<[u8; 64]>,
    pub prompt: Option<Vec<u32>>,
    pub output: Option<Vec<u32>>,
    pub outcome: Option<Outcome>,
    pub stop: Option<StopReason>,
}

impl TicketJob {
    pub fn drawn(ticket: TicketId, buyer: [u8; 32], position: u8, spec: TicketSpec<u128>, expires_at: u32) -> Self {
        Self {
            ticket,
            state: TicketState::Drawn,
            buyer,
            position,
            spec,
            expires_at,
            authorised: None,
            buyer_signature: None,
            prompt: None,
            output: None,
            outcome: None,
            stop: None,
        }
    }

    /// Whether `authorised` stays within what the ticket was bought for.
    pub fn admits(&self, authorised: &TicketUse) -> bool {
        authorised.ticket == self.ticket && self.spec.admits(authorised)
    }
}

impl Journal {
    pub fn ticket(&self, ticket: TicketId) -> Result<Option<TicketJob>, JournalError> {
        match self.db.get(prefixed(TICKET_PREFIX, ticket))? {
            Some(bytes) => Ok(Some(TicketJob::decode(&mut &bytes[..]).map_err(|e| JournalError::Corrupt(ticket, e))?)),
            None => Ok(None),
        }
    }

    /// Writes a ticket job durably, refusing a move backwards, another `Use` than the one
    /// journaled, or a change to a fixed result.
    pub fn put_ticket(&self, job: &TicketJob) -> Result<(), JournalError> {
        if let Some(old) = self.ticket(job.ticket)? {
            if job.state < old.state {
                return Err(JournalError::TicketBackwards { ticket: job.ticket, from: old.state, to: job.state });
            }
            if old.authorised.is_some() && (old.authorised != job.authorised || old.prompt != job.prompt || old.buyer_signature != job.buyer_signature) {
                return Err(JournalError::UseChanged(job.ticket));
            }
            if old.outcome.is_some() && (old.outcome != job.outcome || old.output != job.output || old.stop != job.stop) {
                return Err(JournalError::TicketResultChanged(job.ticket));
            }
        }
        self.put_synced(&prefixed(TICKET_PREFIX, job.ticket), &job.encode())
    }

    /// Marks a ticket job done, from its journaled copy (a copy read earlier may be stale).
    pub fn close_ticket(&self, ticket: TicketId) -> Result<(), JournalError> {
        match self.ticket(ticket)? {
            Some(job) => self.put_ticket(&TicketJob { state: TicketState::Closed, ..job }),
            None => Ok(()),
        }
    }

    /// Ticket jobs with work left, in ticket order.
    pub fn pending_tickets(&self) -> Result<Vec<TicketJob>, JournalError> {
        Ok(self.scan::<TicketJob>(TICKET_PREFIX)?.into_iter().filter(|t| t.state != TicketState::Closed).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_primitives::PeerIdBytes;

    fn drawn(ticket: TicketId) -> TicketJob {
        let spec = TicketSpec { release: [1; 32], runtime_profile: [2; 32], redundancy: 3, max_prompt_tokens: 16, max_output_tokens: 8, max_price_per_1k: 10 };
        TicketJob::drawn(ticket, [3; 32], 1, spec, 40)
    }

    fn authorised(ticket: TicketId, prompt: &[u32]) -> TicketUse {
        TicketUse {
            chain: [4; 32],
            ticket,
            prompt_hash: agora_primitives::wire::token_hash(prompt),
            prompt_tokens: prompt.len() as u32,
            max_output_tokens: 8,
            sampling: Default::default(),
            client_peer: PeerIdBytes::truncate_from(vec![9; 38]),
        }
    }

    #[test]
    fn a_ticket_serves_one_use_and_keeps_its_result() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        journal.put_ticket(&drawn(5)).unwrap();
        let received = TicketJob { state: TicketState::PromptReceived, authorised: Some(authorised(5, &[1, 2])), prompt: Some(vec![1, 2]), ..drawn(5) };
        journal.put_ticket(&received).unwrap();

        let second = TicketJob { authorised: Some(authorised(5, &[7])), prompt: Some(vec![7]), ..received.clone() };
        assert!(matches!(journal.put_ticket(&second), Err(JournalError::UseChanged(5))));
        assert!(matches!(journal.put_ticket(&drawn(5)), Err(JournalError::TicketBackwards { ticket: 5, .. })));

        let generated = TicketJob {
            state: TicketState::Generated,
            output: Some(vec![4]),
            outcome: Some(Outcome { output_hash: [4; 32], token_count: 1 }),
            stop: Some(StopReason::MaxTokens),
            ..received
        };
        journal.put_ticket(&generated).unwrap();
        let other = TicketJob { output: Some(vec![5]), ..generated.clone() };
        assert!(matches!(journal.put_ticket(&other), Err(JournalError::TicketResultChanged(5))));
        journal.put_ticket(&TicketJob { state: TicketState::Closed, ..generated.clone() }).unwrap();
        journal.put_ticket(&drawn(9)).unwrap();
        drop(journal);

        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.ticket(5).unwrap().map(|t| (t.state, t.output)), Some((TicketState::Closed, Some(vec![4]))));
        assert_eq!(journal.pending_tickets().unwrap(), vec![drawn(9)]);
        assert!(journal.all().unwrap().is_empty(), "tickets and requests do not mix");
    }

    #[test]
    fn closing_keeps_what_was_journaled_since_a_copy_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let stale = drawn(5);
        journal.put_ticket(&stale).unwrap();
        let received = TicketJob {
            state: TicketState::PromptReceived,
            authorised: Some(authorised(5, &[1, 2])),
            buyer_signature: Some([7; 64]),
            prompt: Some(vec![1, 2]),
            ..drawn(5)
        };
        journal.put_ticket(&received).unwrap();
        let resigned = TicketJob { buyer_signature: Some([8; 64]), ..received.clone() };
        assert!(matches!(journal.put_ticket(&resigned), Err(JournalError::UseChanged(5))));
        // The stale copy closed as it was would lose the Use, and is refused.
        assert!(matches!(journal.put_ticket(&TicketJob { state: TicketState::Closed, ..stale }), Err(JournalError::UseChanged(5))));
        journal.close_ticket(5).unwrap();
        assert_eq!(journal.ticket(5).unwrap(), Some(TicketJob { state: TicketState::Closed, ..received }));
        journal.close_ticket(6).unwrap();
        assert_eq!(journal.ticket(6).unwrap(), None, "nothing to close");
    }

    #[test]
    fn a_use_beyond_the_ticket_is_not_admitted() {
        let job = drawn(5);
        assert!(job.admits(&authorised(5, &[1, 2])));
        assert!(!job.admits(&authorised(6, &[1, 2])), "another ticket's Use");
        assert!(!job.admits(&authorised(5, &[])), "an empty prompt");
        assert!(!job.admits(&authorised(5, &[1; 17])), "a longer prompt than bought");
        assert!(!job.admits(&TicketUse { max_output_tokens: 9, ..authorised(5, &[1, 2]) }), "more output than bought");
    }
}
