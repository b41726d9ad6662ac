//! Genesis presets. `development` funds the well-known dev accounts and makes Alice the
//! Aura authority and sudo key.

use crate::{AccountId, BalancesConfig, ParachainInfoConfig, RuntimeGenesisConfig, SudoConfig, UNIT};
use alloc::{vec, vec::Vec};
use polkadot_sdk::*;
use sp_genesis_builder::PresetId;
use sp_keyring::Sr25519Keyring;

pub const DEVELOPMENT: &str = sp_genesis_builder::DEV_RUNTIME_PRESET;
/// The para id the dev chain claims; any id works without a relay chain.
pub const PARA_ID: u32 = 2000;
/// What each dev account starts with.
pub const DEV_ENDOWMENT: u128 = 1_000_000 * UNIT;
/// What the treasury starts with on the dev chain.
pub const TREASURY_ENDOWMENT: u128 = 1_000 * UNIT;

pub fn dev_accounts() -> Vec<AccountId> {
    Sr25519Keyring::iter().map(|k| k.to_account_id()).collect()
}

fn development() -> serde_json::Value {
    let config = RuntimeGenesisConfig {
        balances: BalancesConfig {
            // The treasury pays verifier fees; it starts with something to pay them from.
            balances: dev_accounts()
                .into_iter()
                .map(|a| (a, DEV_ENDOWMENT))
                .chain([(crate::configs::TreasuryAccount::get(), TREASURY_ENDOWMENT)])
                .collect(),
            ..Default::default()
        },
        parachain_info: ParachainInfoConfig { parachain_id: PARA_ID.into(), ..Default::default() },
        aura: crate::AuraConfig { authorities: vec![Sr25519Keyring::Alice.public().into()] },
        sudo: SudoConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
        ..Default::default()
    };
    serde_json::to_value(config).expect("the genesis config serialises")
}

pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
    let value = match id.as_ref() {
        DEVELOPMENT => development(),
        _ => return None,
    };
    Some(serde_json::to_string(&value).expect("a JSON value serialises").into_bytes())
}

pub fn preset_names() -> Vec<PresetId> {
    vec![PresetId::from(DEVELOPMENT)]
}
