//! The local Agora dev chain.
//!
//! [`spec`] writes the raw chain spec and the metadata straight from the native runtime (its
//! `development` genesis preset plus the WASM as `:code`), which takes seconds instead of the
//! quarter hour a chain-spec builder install costs. [`chopsticks`] installs the pinned
//! chopsticks from npm and runs it on loopback in genesis mode: a real block-building engine
//! executing the runtime's WASM, with the parachain inherents mocked.

pub mod block_fill;
pub mod chopsticks;
#[cfg(feature = "demo")]
pub mod demo;
pub mod spec;
pub mod weights;

pub use chopsticks::{DevChain, DevChainConfig};
