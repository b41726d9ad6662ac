//! Chain spec and metadata, made from the runtime itself.

use anyhow::{anyhow, Context, Result};
use polkadot_sdk::sp_runtime::BuildStorage;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The metadata version written for clients (subxt and chopsticks both read v15).
pub const METADATA_VERSION: u32 = 15;

/// The runtime's WASM (compressed), as the chain executes it.
pub fn wasm() -> Result<&'static [u8]> {
    agora_runtime::WASM_BINARY.ok_or_else(|| anyhow!("the runtime was built without its WASM (SKIP_WASM_BUILD set?)"))
}

/// The SCALE-encoded metadata (`RuntimeMetadataPrefixed`), exactly as `state_getMetadata` serves it.
pub fn metadata() -> Result<Vec<u8>> {
    // Building the metadata reads storage versions, so it needs (empty) externalities.
    let opaque = polkadot_sdk::sp_io::TestExternalities::new_empty()
        .execute_with(|| agora_runtime::Runtime::metadata_at_version(METADATA_VERSION))
        .ok_or_else(|| anyhow!("the runtime has no metadata v{METADATA_VERSION}"))?;
    Ok(opaque.to_vec())
}

/// The raw chain spec of the `development` preset: genesis storage as hex key/value pairs.
pub fn raw_chain_spec() -> Result<Value> {
    let preset_id = agora_runtime::genesis::DEVELOPMENT.into();
    let preset = agora_runtime::genesis::get_preset(&preset_id).context("no development preset")?;
    let config: agora_runtime::RuntimeGenesisConfig =
        serde_json::from_slice(&preset).context("the development preset does not parse")?;
    let storage = config.build_storage().map_err(|e| anyhow!("building genesis storage: {e}"))?;
    let mut top = Map::new();
    for (key, value) in storage.top.iter() {
        top.insert(format!("0x{}", hex::encode(key)), Value::String(format!("0x{}", hex::encode(value))));
    }
    top.insert(format!("0x{}", hex::encode(b":code")), Value::String(format!("0x{}", hex::encode(wasm()?))));
    Ok(json!({
        "name": "Agora Development",
        "id": "agora_dev",
        "chainType": "Development",
        "bootNodes": [],
        "protocolId": "agora",
        "properties": { "tokenSymbol": "AGR", "tokenDecimals": 12, "ss58Format": 42 },
        "relay_chain": "rococo-local",
        "para_id": agora_runtime::genesis::PARA_ID,
        "codeSubstitutes": {},
        "genesis": { "raw": { "top": top, "childrenDefault": {} } }
    }))
}

pub fn write_raw_chain_spec(path: &Path) -> Result<()> {
    let spec = raw_chain_spec()?;
    std::fs::write(path, serde_json::to_vec(&spec)?).with_context(|| format!("writing {}", path.display()))
}

pub fn write_metadata(path: &Path) -> Result<()> {
    std::fs::write(path, metadata()?).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_spec_holds_code_and_funded_dev_accounts() {
        let spec = raw_chain_spec().unwrap();
        let top = spec["genesis"]["raw"]["top"].as_object().unwrap();
        let code = top[&format!("0x{}", hex::encode(b":code"))].as_str().unwrap();
        assert_eq!(hex::decode(&code[2..]).unwrap(), wasm().unwrap());
        // System.Account entries: one per dev account, the treasury's and the escrow pallet's
        // (its existential deposit, so the ledger's last withdrawal leaves no dust), none else.
        let account_prefix = "0x26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9";
        let accounts = top.keys().filter(|k| k.starts_with(account_prefix)).count();
        assert_eq!(accounts, agora_runtime::genesis::dev_accounts().len() + 2);
    }

    /// The client crate compiles against a committed copy of the metadata; it must be this
    /// runtime's, or the generated calls would not match the chain.
    #[test]
    fn committed_metadata_matches_the_runtime() {
        let committed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../chain-client/metadata/agora.scale"))
            .expect("chain-client/metadata/agora.scale exists");
        assert!(
            committed == metadata().unwrap(),
            "chain-client/metadata/agora.scale is stale: run `cargo run -p agora-devnet --bin agora-chain -- metadata`"
        );
    }
}
