//! The job journal: every job's state, kept in RocksDB and written (synced) *before* the chain
//! call that depends on it, so a provider killed at any point restarts, reads the journal and
//! finishes each pending commit and reveal. A verifier keeps its disputes here too: the data it
//! was brought is not brought twice, so a restart must not lose it.
//!
//! The journal guards the two promises that matter to the chain: a job's state only moves
//! forward, and once a commitment is written its output, salt and commitment never change, so
//! the reveal after a restart is always the value that was committed.

mod tickets;

pub use tickets::{TicketJob, TicketState};

use agora_primitives::wire::{JudgedOutcome, StopReason};
use agora_primitives::{Hash256, Outcome, ReleaseId, RequestId, SamplingParams};
use codec::{Decode, Encode};
use std::path::Path;

/// Where a job is. The order is the order of the protocol.
#[derive(Clone, Copy, Encode, Decode, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum JobState {
    /// The chain assigned the request to this provider.
    Assigned,
    /// The client's prompt arrived and matched the on-chain hash.
    PromptReceived,
    /// The output, its salt and its commitment are fixed.
    Generated,
    /// The commitment is on-chain.
    Committed,
    /// The reveal is on-chain.
    Revealed,
    /// The request is closed on-chain (settled, refunded or disputed); nothing left to do.
    Closed,
}

impl JobState {
    pub const ALL: [JobState; 6] =
        [Self::Assigned, Self::PromptReceived, Self::Generated, Self::Committed, Self::Revealed, Self::Closed];

    pub fn name(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::PromptReceived => "prompt_received",
            Self::Generated => "generated",
            Self::Committed => "committed",
            Self::Revealed => "revealed",
            Self::Closed => "closed",
        }
    }
}

/// What the chain says of a request, copied at assignment so that a prompt can be checked
/// without a chain round trip on the way to the first token.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct JobParams {
    /// The request's client: the account whose signed `Use` alone is served.
    pub client: [u8; 32],
    pub runtime_profile: Hash256,
    pub prompt_hash: Hash256,
    pub prompt_tokens: u32,
    pub max_output_tokens: u32,
    pub sampling: SamplingParams,
}

/// Everything the node needs to finish a job after a restart.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug)]
pub struct JobRecord {
    pub request: RequestId,
    pub state: JobState,
    pub release: ReleaseId,
    pub commit_deadline: u32,
    pub reveal_deadline: u32,
    pub params: JobParams,
    pub prompt: Option<Vec<u32>>,
    pub output: Option<Vec<u32>>,
    pub outcome: Option<Outcome>,
    pub salt: Option<Hash256>,
    pub commitment: Option<Hash256>,
    pub stop: Option<StopReason>,
}

impl JobRecord {
    pub fn assigned(request: RequestId, release: ReleaseId, commit_deadline: u32, reveal_deadline: u32, params: JobParams) -> Self {
        Self {
            request,
            state: JobState::Assigned,
            release,
            commit_deadline,
            reveal_deadline,
            params,
            prompt: None,
            output: None,
            outcome: None,
            salt: None,
            commitment: None,
            stop: None,
        }
    }
}

/// A dispute this node was drawn to verify: what it has been brought, and its verdict once cast.
#[derive(Clone, Encode, Decode, PartialEq, Eq, Debug, Default)]
pub struct VerificationRecord {
    pub request: RequestId,
    pub verdict_deadline: u32,
    pub prompt: Option<Vec<u32>>,
    /// Disputed outputs brought so far, each checked against a disputed result's hash.
    pub outputs: Vec<Vec<u32>>,
    pub judged: Option<Vec<JudgedOutcome>>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal storage: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("journal entry {0} is corrupt: {1}")]
    Corrupt(RequestId, codec::Error),
    #[error("request {request}: the journal may not move a job back from {from:?} to {to:?}")]
    Backwards { request: RequestId, from: JobState, to: JobState },
    #[error("request {0}: the committed output, salt or commitment may not change")]
    CommittedValueChanged(RequestId),
    #[error("ticket {ticket}: the journal may not move a ticket job back from {from:?} to {to:?}")]
    TicketBackwards { ticket: u64, from: TicketState, to: TicketState },
    #[error("ticket {0} already serves another Use: a ticket's providers sign outcomes for one prompt only")]
    UseChanged(u64),
    #[error("ticket {0}: the journaled output and outcome may not change")]
    TicketResultChanged(u64),
    #[error(
        "this journal belongs to the chain with genesis {}, not to {} (a dev chain restarted from genesis?); move the journal directory away to start afresh",
        hex::encode(.journal), hex::encode(.chain)
    )]
    OtherChain { journal: [u8; 32], chain: [u8; 32] },
    #[error(
        "this journal's records have layout {found}, and this provider reads layout {FORMAT}: finish its jobs with the provider that wrote it, or move the journal directory away to start afresh"
    )]
    OtherFormat { found: u32 },
}

pub struct Journal {
    db: rocksdb::DB,
}

/// Jobs live under `j` + the big-endian request id, so iteration runs in request order.
const JOB_PREFIX: u8 = b'j';
/// Verifications live under `v` + the big-endian request id.
const VERIFICATION_PREFIX: u8 = b'v';
/// The last block whose assignments were read.
const LAST_BLOCK_KEY: &[u8] = b"m/last_block";
/// The genesis hash of the chain the jobs belong to: request ids and block numbers mean
/// nothing on another chain.
const GENESIS_KEY: &[u8] = b"m/genesis";
/// The layout of the records. 2: a job's params name its client. 3: a ticket's `Use` names its
/// chain.
const FORMAT_KEY: &[u8] = b"m/format";
const FORMAT: u32 = 3;

fn key(request: RequestId) -> [u8; 9] {
    prefixed(JOB_PREFIX, request)
}

fn prefixed(prefix: u8, request: RequestId) -> [u8; 9] {
    let mut key = [prefix; 9];
    key[1..].copy_from_slice(&request.to_be_bytes());
    key
}

impl Journal {
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let journal = Self { db: rocksdb::DB::open(&options, path)? };
        journal.check_format()?;
        Ok(journal)
    }

    /// A new journal takes this layout; one with records of another layout (or of the first,
    /// which wrote no layout key) is refused, so that no job is misread.
    fn check_format(&self) -> Result<(), JournalError> {
        match self.db.get(FORMAT_KEY)? {
            Some(v) if v.as_slice() == FORMAT.to_le_bytes() => Ok(()),
            Some(v) => Err(JournalError::OtherFormat { found: v.as_slice().try_into().map(u32::from_le_bytes).unwrap_or(0) }),
            None if self.db.iterator(rocksdb::IteratorMode::Start).next().is_some() => Err(JournalError::OtherFormat { found: 1 }),
            None => self.put_synced(FORMAT_KEY, &FORMAT.to_le_bytes()),
        }
    }

    pub fn get(&self, request: RequestId) -> Result<Option<JobRecord>, JournalError> {
        match self.db.get(key(request))? {
            Some(bytes) => Ok(Some(JobRecord::decode(&mut &bytes[..]).map_err(|e| JournalError::Corrupt(request, e))?)),
            None => Ok(None),
        }
    }

    /// Writes `record` durably (synced to disk before returning), refusing a move backwards or a
    /// change to anything already committed.
    pub fn put(&self, record: &JobRecord) -> Result<(), JournalError> {
        if let Some(old) = self.get(record.request)? {
            if record.state < old.state {
                return Err(JournalError::Backwards { request: record.request, from: old.state, to: record.state });
            }
            let fixed = old.commitment.is_some();
            if fixed
                && (old.commitment != record.commitment ||
                    old.salt != record.salt ||
                    old.outcome != record.outcome ||
                    old.output != record.output ||
                    old.stop != record.stop)
            {
                return Err(JournalError::CommittedValueChanged(record.request));
            }
        }
        self.put_synced(&key(record.request), &record.encode())
    }

    fn put_synced(&self, key: &[u8], value: &[u8]) -> Result<(), JournalError> {
        let mut write = rocksdb::WriteOptions::default();
        write.set_sync(true);
        self.db.put_opt(key, value, &write)?;
        Ok(())
    }

    /// Binds a new journal to the chain with `genesis`; refuses a journal of another chain.
    pub fn bind_to_chain(&self, genesis: [u8; 32]) -> Result<(), JournalError> {
        match self.db.get(GENESIS_KEY)? {
            None => self.put_synced(GENESIS_KEY, &genesis),
            Some(bound) if bound.as_slice() == genesis => Ok(()),
            Some(bound) => {
                let journal = bound.as_slice().try_into().unwrap_or([0; 32]);
                Err(JournalError::OtherChain { journal, chain: genesis })
            },
        }
    }

    /// The last block whose assignments were read, if any.
    pub fn last_block(&self) -> Result<Option<u32>, JournalError> {
        Ok(self.db.get(LAST_BLOCK_KEY)?.and_then(|v| v.as_slice().try_into().ok()).map(u32::from_le_bytes))
    }

    pub fn set_last_block(&self, block: u32) -> Result<(), JournalError> {
        self.put_synced(LAST_BLOCK_KEY, &block.to_le_bytes())
    }

    /// Every job, in request order.
    pub fn all(&self) -> Result<Vec<JobRecord>, JournalError> {
        self.scan(JOB_PREFIX)
    }

    /// Every record under `prefix`, in request order.
    fn scan<T: Decode>(&self, prefix: u8) -> Result<Vec<T>, JournalError> {
        let mut records = Vec::new();
        let start = [prefix];
        for entry in self.db.iterator(rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward)) {
            let (k, v) = entry?;
            if k.first() != Some(&prefix) {
                break;
            }
            let request = k[1..].try_into().map(u64::from_be_bytes).unwrap_or_default();
            records.push(T::decode(&mut &v[..]).map_err(|e| JournalError::Corrupt(request, e))?);
        }
        Ok(records)
    }

    pub fn verification(&self, request: RequestId) -> Result<Option<VerificationRecord>, JournalError> {
        match self.db.get(prefixed(VERIFICATION_PREFIX, request))? {
            Some(bytes) => Ok(Some(VerificationRecord::decode(&mut &bytes[..]).map_err(|e| JournalError::Corrupt(request, e))?)),
            None => Ok(None),
        }
    }

    /// Writes a verification durably, before the reply that says it was taken.
    pub fn put_verification(&self, record: &VerificationRecord) -> Result<(), JournalError> {
        self.put_synced(&prefixed(VERIFICATION_PREFIX, record.request), &record.encode())
    }

    /// Forgets a verification whose dispute is over.
    pub fn remove_verification(&self, request: RequestId) -> Result<(), JournalError> {
        self.db.delete(prefixed(VERIFICATION_PREFIX, request))?;
        Ok(())
    }

    /// Every dispute this node holds as a verifier, in request order.
    pub fn verifications(&self) -> Result<Vec<VerificationRecord>, JournalError> {
        self.scan(VERIFICATION_PREFIX)
    }

    /// Jobs with work left.
    pub fn pending(&self) -> Result<Vec<JobRecord>, JournalError> {
        Ok(self.all()?.into_iter().filter(|r| r.state != JobState::Closed).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(request: RequestId, salt: u8) -> JobRecord {
        JobRecord {
            state: JobState::Generated,
            prompt: Some(vec![1, 2]),
            output: Some(vec![3, 4, 5]),
            outcome: Some(Outcome { output_hash: [7; 32], token_count: 3 }),
            salt: Some([salt; 32]),
            commitment: Some([salt ^ 0xff; 32]),
            ..JobRecord::assigned(request, [1; 32], 10, 20, params())
        }
    }

    fn params() -> JobParams {
        JobParams {
            client: [4; 32],
            runtime_profile: [2; 32],
            prompt_hash: [3; 32],
            prompt_tokens: 2,
            max_output_tokens: 8,
            sampling: SamplingParams::default(),
        }
    }

    #[test]
    fn a_journal_of_another_layout_is_refused_by_name() {
        let old = tempfile::tempdir().unwrap();
        rocksdb::DB::open_default(old.path()).unwrap().put(key(5), b"a record of the first layout").unwrap();
        assert!(matches!(Journal::open(old.path()), Err(JournalError::OtherFormat { found: 1 })));
        let fresh = tempfile::tempdir().unwrap();
        Journal::open(fresh.path()).unwrap().put(&JobRecord::assigned(1, [1; 32], 10, 20, params())).unwrap();
        assert!(Journal::open(fresh.path()).unwrap().get(1).unwrap().is_some());
    }

    #[test]
    fn records_survive_reopening_and_list_in_request_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let journal = Journal::open(dir.path()).unwrap();
            journal.put(&JobRecord::assigned(300, [1; 32], 10, 20, params())).unwrap();
            journal.put(&generated(2, 9)).unwrap();
            let mut closed = generated(7, 1);
            closed.state = JobState::Closed;
            journal.put(&closed).unwrap();
        }
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.last_block().unwrap(), None);
        journal.bind_to_chain([7; 32]).unwrap();
        journal.bind_to_chain([7; 32]).unwrap();
        let refused = journal.bind_to_chain([8; 32]);
        assert!(matches!(refused, Err(JournalError::OtherChain { journal, chain }) if journal == [7; 32] && chain == [8; 32]));
        journal.set_last_block(41).unwrap();
        assert_eq!(journal.last_block().unwrap(), Some(41));
        assert_eq!(journal.get(2).unwrap(), Some(generated(2, 9)));
        assert_eq!(journal.all().unwrap().iter().map(|r| r.request).collect::<Vec<_>>(), vec![2, 7, 300]);
        assert_eq!(journal.pending().unwrap().iter().map(|r| r.request).collect::<Vec<_>>(), vec![2, 300]);
        assert_eq!(journal.get(5).unwrap(), None);
    }

    #[test]
    fn verifications_survive_reopening_apart_from_the_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let record = VerificationRecord { request: 4, verdict_deadline: 30, prompt: Some(vec![1, 2]), outputs: vec![vec![3], vec![4, 5]], judged: None };
        {
            let journal = Journal::open(dir.path()).unwrap();
            journal.put(&generated(4, 1)).unwrap();
            journal.put_verification(&record).unwrap();
            journal.put_verification(&VerificationRecord { request: 9, verdict_deadline: 40, ..Default::default() }).unwrap();
            journal.remove_verification(9).unwrap();
        }
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.verification(4).unwrap(), Some(record.clone()));
        assert_eq!(journal.verifications().unwrap(), vec![record]);
        assert_eq!(journal.verification(9).unwrap(), None);
        assert_eq!(journal.all().unwrap(), vec![generated(4, 1)], "jobs and verifications do not mix");
    }

    #[test]
    fn states_only_move_forward_and_committed_values_never_change() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let record = generated(1, 9);
        journal.put(&record).unwrap();
        let back = JobRecord { state: JobState::Assigned, ..record.clone() };
        assert!(matches!(journal.put(&back), Err(JournalError::Backwards { .. })));
        let other_salt = JobRecord { state: JobState::Committed, salt: Some([8; 32]), ..record.clone() };
        assert!(matches!(journal.put(&other_salt), Err(JournalError::CommittedValueChanged(1))));
        let other_output = JobRecord { output: Some(vec![3]), ..record.clone() };
        assert!(matches!(journal.put(&other_output), Err(JournalError::CommittedValueChanged(1))));
        let committed = JobRecord { state: JobState::Committed, ..record.clone() };
        journal.put(&committed).unwrap();
        assert_eq!(journal.get(1).unwrap().unwrap().state, JobState::Committed);
    }
}
