//! Configuration of every pallet in the runtime.

use super::*;
use frame_support::{
    derive_impl,
    dispatch::DispatchClass,
    parameter_types,
    traits::{ConstBool, ConstU128, ConstU16, ConstU32, ConstU64, ConstU8, VariantCountOf},
    weights::{
        constants::{BlockExecutionWeight, ExtrinsicBaseWeight, RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
        ConstantMultiplier, IdentityFee, Weight,
    },
    PalletId,
};
use frame_system::limits::{BlockLength, BlockWeights};
use sp_runtime::{traits::AccountIdConversion, Perbill};

/// About 5% of a block goes to `on_initialize` (provider assignment among it).
const AVERAGE_ON_INITIALIZE_RATIO: Perbill = Perbill::from_percent(5);
/// Normal extrinsics may fill 75% of a block; the rest is for operational ones.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
/// Two seconds of compute per six-second block, and the relay chain's proof-size limit.
pub const MAXIMUM_BLOCK_WEIGHT: Weight = Weight::from_parts(
    WEIGHT_REF_TIME_PER_SECOND.saturating_mul(2),
    cumulus_primitives_core::relay_chain::MAX_POV_SIZE as u64,
);

parameter_types! {
    pub const Version: RuntimeVersion = VERSION;
    pub RuntimeBlockLength: BlockLength = BlockLength::builder()
        .max_length(5 * 1024 * 1024)
        .modify_max_length_for_class(DispatchClass::Normal, |max| *max = NORMAL_DISPATCH_RATIO * *max)
        .build();
    pub RuntimeBlockWeights: BlockWeights = BlockWeights::builder()
        .base_block(BlockExecutionWeight::get())
        .for_class(DispatchClass::all(), |weights| {
            weights.base_extrinsic = ExtrinsicBaseWeight::get();
        })
        .for_class(DispatchClass::Normal, |weights| {
            weights.max_total = Some(NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
        })
        .for_class(DispatchClass::Operational, |weights| {
            weights.max_total = Some(MAXIMUM_BLOCK_WEIGHT);
            weights.reserved = Some(MAXIMUM_BLOCK_WEIGHT - NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
        })
        .avg_block_initialization(AVERAGE_ON_INITIALIZE_RATIO)
        .build_or_panic();
}

#[derive_impl(frame_system::config_preludes::ParaChainDefaultConfig)]
impl frame_system::Config for Runtime {
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type Block = Block;
    type BlockHashCount = ConstU32<256>;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type DbWeight = RocksDbWeight;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type SS58Prefix = ConstU16<42>;
    type OnSetCode = cumulus_pallet_parachain_system::ParachainSetCode<Self>;
    type MaxConsumers = ConstU32<16>;
}


impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = Aura;
    type MinimumPeriod = ConstU64<0>;
    type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
    type MaxLocks = ConstU32<50>;
    type Balance = Balance;
    type RuntimeEvent = RuntimeEvent;
    type DustRemoval = ();
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
    type MaxReserves = ConstU32<50>;
    type ReserveIdentifier = [u8; 8];
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type FreezeIdentifier = RuntimeFreezeReason;
    type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
    type DoneSlashHandler = ();
}


impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = pallet_transaction_payment::FungibleAdapter<Balances, ()>;
    /// One unit of ref-time costs one planck: cheap enough for a dev chain, still non-zero.
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = ConstantMultiplier<Balance, ConstU128<{ MICRO_UNIT }>>;
    type FeeMultiplierUpdate = ();
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightInfo = ();
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = ();
}

parameter_types! {
    pub const RelayOrigin: cumulus_primitives_core::AggregateMessageOrigin =
        cumulus_primitives_core::AggregateMessageOrigin::Parent;
}

/// No XCM yet: downward and horizontal messages are dropped, none are sent.
impl cumulus_pallet_parachain_system::Config for Runtime {
    type WeightInfo = ();
    type RuntimeEvent = RuntimeEvent;
    type OnSystemEvent = ();
    type SelfParaId = parachain_info::Pallet<Runtime>;
    type OutboundXcmpMessageSource = ();
    type DmpQueue = frame_support::traits::EnqueueWithOrigin<(), RelayOrigin>;
    type ReservedDmpWeight = ();
    type XcmpMessageHandler = ();
    type ReservedXcmpWeight = ();
    type CheckAssociatedRelayNumber = cumulus_pallet_parachain_system::RelayNumberMonotonicallyIncreases;
    type ConsensusHook = ConsensusHook;
    type RelayParentOffset = ConstU32<0>;
    type SchedulingSignatureVerifier = ();
}

impl parachain_info::Config for Runtime {}

impl cumulus_pallet_aura_ext::Config for Runtime {}

impl pallet_aura::Config for Runtime {
    type AuthorityId = sp_consensus_aura::sr25519::AuthorityId;
    type DisabledValidators = ();
    type MaxAuthorities = ConstU32<32>;
    type AllowMultipleBlocksPerSlot = ConstBool<true>;
    type SlotDuration = ConstU64<SLOT_DURATION>;
}

/// Insecure: block-hash based. Fine for a dev chain; production takes relay-chain randomness
/// through the same `Randomness` trait (below).
impl pallet_insecure_randomness_collective_flip::Config for Runtime {}

/// The dev chain's randomness: the collective flip over the last 81 block hashes. Its newest
/// input is the parent block's hash (the flip's `on_initialize` runs before the Agora pallets'),
/// so a seed read in block n became determinable in block n - 1, which is what this reports.
/// (The flip itself reports n - 81, its oldest input, which would hold every draw 81 blocks.)
/// A block author can still grind it: dev only.
///
/// Production replaces it with the relay chain's per-block randomness (BABE's VRF output of the
/// relay parent, `CURRENT_BLOCK_RANDOMNESS` in the relay state proof that parachain-system
/// verifies each block, as Moonbeam's randomness pallet reads it), reported at the para block
/// whose relay parent produced it.
pub struct ParentBlockRandomness;
impl frame_support::traits::Randomness<Hash, BlockNumber> for ParentBlockRandomness {
    fn random(subject: &[u8]) -> (Hash, BlockNumber) {
        let (seed, _) = <RandomnessCollectiveFlip as frame_support::traits::Randomness<Hash, BlockNumber>>::random(subject);
        (seed, System::block_number().saturating_sub(1))
    }
}

parameter_types! {
    pub const TreasuryPalletId: PalletId = PalletId(*b"agora/tr");
    /// Holds every client deposit, ticket escrow and unwithdrawn provider earning.
    pub const EscrowPalletId: PalletId = PalletId(*b"agora/es");
    pub TreasuryAccount: AccountId = TreasuryPalletId::get().into_account_truncating();
    pub const MinProviderStake: Balance = 100 * UNIT;
    pub const WrongResultSlash: Perbill = Perbill::from_percent(10);
    pub const NoShowSlash: Perbill = Perbill::from_percent(2);
    /// What a client holds on a challenge of its settled result.
    pub const ChallengeBond: Balance = 10 * UNIT;
    /// A verdict is one prefill of prompt + output: a fraction of a generation, priced like a
    /// few hundred tokens at the devnet's prices.
    pub const VerifierFee: Balance = UNIT / 1_000;
    pub const AuditFloor: Perbill = Perbill::from_percent(5);
    pub const AuditCeiling: Perbill = Perbill::from_percent(100);
}

impl pallet_agora_models::Config for Runtime {
    type MaxReleasesPerFamily = ConstU32<256>;
    type WeightInfo = pallet_agora_models::weights::SubstrateWeight<Runtime>;
}

impl pallet_agora_providers::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type MinStake = MinProviderStake;
    /// One hour: long enough for every open request to settle before the stake leaves.
    type UnbondingDelay = ConstU32<{ HOURS }>;
    type MaxProvidersPerRelease = ConstU32<64>;
    type Treasury = TreasuryAccount;
    type WeightInfo = pallet_agora_providers::weights::SubstrateWeight<Runtime>;
}

impl pallet_agora_escrow::Config for Runtime {
    type Randomness = ParentBlockRandomness;
    type MinCommitBlocks = ConstU32<2>;
    type MaxCommitBlocks = ConstU32<{ 10 * MINUTES }>;
    type RevealWindow = ConstU32<20>;
    type SettleWindow = ConstU32<{ HOURS }>;
    /// Draws in the next block's `on_initialize`: 24 take ~40 ms and at most ~1.1 MB of proof
    /// (each reads its release's listings and its drawn records, 44.5 KB at 64 providers, as
    /// benchmarked); more requests wait a block.
    type MaxAssignmentsPerBlock = ConstU32<24>;
    type OnClose = Verifier;
    type PalletId = EscrowPalletId;
    /// A client's pool refill: a block's draw of 16 purchases is 1,024 tickets.
    type MaxTicketsPerPurchase = ConstU32<64>;
    type MaxPurchasesAwaitingDraw = ConstU32<16>;
    /// Half an hour in a client's pool.
    type TicketLifetime = ConstU32<{ 30 * MINUTES }>;
    /// A closed request's record outlives its challenge window and the verdict that may follow.
    type RecordRetention = ConstU32<{ 10 * MINUTES + 30 }>;
    type TicketReservationFee = ReservationShare;
    /// A bundle settles within a block or two of its answer: a minute after expiry, whoever
    /// holds the buyer's `Use` may fall a ticket nobody settled back to commit–reveal.
    type TicketFallbackGrace = ConstU32<{ MINUTES }>;
    /// The client's default commit window.
    type FallbackCommitBlocks = ConstU32<20>;
    type WeightInfo = pallet_agora_escrow::weights::SubstrateWeight<Runtime>;
}

impl pallet_agora_verifier::Config for Runtime {
    type WrongResultSlash = WrongResultSlash;
    type NoShowSlash = NoShowSlash;
    type DisputeVerifiers = ConstU32<3>;
    type AuditVerifiers = ConstU32<1>;
    /// A re-scoring takes seconds; a minute at the devnet's block rate, three at 6 s slots.
    type VerdictWindow = ConstU32<30>;
    type ChallengeWindow = ConstU32<{ 10 * MINUTES }>;
    type ChallengeBond = ChallengeBond;
    type VerifierFee = VerifierFee;
    type AuditFloor = AuditFloor;
    type AuditCeiling = AuditCeiling;
    /// Twice the break-even probability `value / (slash + value)`.
    type AuditSafetyPercent = ConstU32<200>;
    /// A block's k = 1 settlements and dispute openings, drawn in the next block: each draw is
    /// charged as a settlement that looks for verifiers in that block's `on_initialize`.
    type MaxPendingDraws = ConstU32<32>;
    /// A provider that was never sent the prompt is paid 5 % of its pay for the whole output:
    /// withholding a `Use` costs the client, and never acknowledging earns a provider little.
    type ReservationShare = ReservationShare;
    type OffchainSignature = crate::Signature;
    /// 1,024 bundles of k = 3 are some 470 KB of call data and 4,096 signature checks: within
    /// a block's length and weight, and more than the tickets a block is expected to settle.
    type MaxBundlesPerSettle = ConstU32<1024>;
    type MaxBlockReceipts = ConstU32<4096>;
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = AckSigner;
    type WeightInfo = pallet_agora_verifier::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
    pub const ReservationShare: Perbill = Perbill::from_percent(5);
}

/// Signs as a provider in the benchmarks, with an sr25519 key of the benchmark's keystore.
#[cfg(feature = "runtime-benchmarks")]
pub struct AckSigner;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_agora_verifier::BenchmarkHelper<AccountId, crate::Signature> for AckSigner {
    fn signer(index: u32) -> AccountId {
        let key_type = polkadot_sdk::sp_core::crypto::KeyTypeId(*b"agbn");
        let seed = alloc::format!("//AgoraBench/{index}").into_bytes();
        polkadot_sdk::sp_io::crypto::sr25519_generate(key_type, Some(seed)).into()
    }

    fn sign(signer: &AccountId, message: &[u8]) -> crate::Signature {
        let key_type = polkadot_sdk::sp_core::crypto::KeyTypeId(*b"agbn");
        let raw: &[u8; 32] = signer.as_ref();
        let public = polkadot_sdk::sp_core::sr25519::Public::from_raw(*raw);
        polkadot_sdk::sp_io::crypto::sr25519_sign(key_type, &public, message).expect("the benchmark's keystore holds the key").into()
    }
}
