//! Verification of inference results (docs/DESIGN.md section 4).
//!
//! - [`commitment`] and [`tally`]: tier 0, exact-hash voting. `no_std`, one implementation used
//!   by the verifier pallet on-chain and by providers and clients off-chain.
//! - `rescore` (feature `rescore`, off-chain only): tier 1, checking a claimed output with one
//!   teacher-forced prefill of the registered model, under the tolerances of the release's
//!   runtime profile. It settles split votes and audits single-provider requests.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod audit;
pub mod commitment;
#[cfg(feature = "rescore")]
pub mod rescore;
pub mod tally;
