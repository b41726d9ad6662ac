//! The deposit ledger: a client's money for tickets and a provider's earnings, kept as one
//! balance per account while the funds sit in the pallet's account.
//!
//! Settling a ticket moves numbers between ledger entries, not balances between accounts: a
//! batch of settlements writes each touched account once, and nobody's free balance (or its
//! existential deposit) is in the way. Money enters by `deposit` and leaves by `withdraw`.

use super::*;
use pallet_agora_providers::BalanceOf;
use polkadot_sdk::frame_support::{
    ensure,
    pallet_prelude::*,
    traits::{
        fungible::{Inspect, Mutate},
        tokens::Preservation,
    },
};
use polkadot_sdk::sp_runtime::traits::{AccountIdConversion, CheckedSub, Saturating, Zero};

type Currency<T> = <T as pallet_agora_providers::Config>::Currency;

impl<T: Config> Pallet<T> {
    /// The account that holds every deposit, ticket escrow and unwithdrawn earning.
    pub fn account_id() -> T::AccountId {
        T::PalletId::get().into_account_truncating()
    }

    /// Makes the pallet's account exist (its existential deposit, minted at genesis), so the
    /// last withdrawal never has to leave dust behind.
    pub(crate) fn ensure_account_exists() {
        let account = Self::account_id();
        let minimum = Currency::<T>::minimum_balance();
        let balance = Currency::<T>::balance(&account);
        if balance < minimum {
            let _ = Currency::<T>::mint_into(&account, minimum.saturating_sub(balance));
        }
    }

    pub(crate) fn do_deposit(who: T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
        ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
        Currency::<T>::transfer(&who, &Self::account_id(), amount, Preservation::Preserve)
            .map_err(|_| Error::<T>::InsufficientBalance)?;
        Self::credit(&who, amount);
        Self::deposit_event(Event::Deposited { who, amount });
        Ok(())
    }

    pub(crate) fn do_withdraw(who: T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
        ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
        Self::debit(&who, amount)?;
        Currency::<T>::transfer(&Self::account_id(), &who, amount, Preservation::Preserve)?;
        Self::deposit_event(Event::Withdrawn { who, amount });
        Ok(())
    }

    /// Adds `amount` to `who`'s entry. Cannot overflow: every entry is part of the pallet
    /// account's balance, which the total issuance bounds. Only for funds already in the
    /// pallet's account and owed to nobody else: a deposit, or a ticket's escrow once the
    /// ticket is gone ([`Self::take_settleable_ticket`]).
    pub fn credit(who: &T::AccountId, amount: BalanceOf<T>) {
        if !amount.is_zero() {
            Deposits::<T>::mutate(who, |entry| *entry = entry.saturating_add(amount));
        }
    }

    /// Takes `amount` from `who`'s entry, or fails with `InsufficientDeposit` and takes nothing.
    pub(crate) fn debit(who: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
        Deposits::<T>::try_mutate_exists(who, |entry| {
            let left = entry.unwrap_or_default().checked_sub(&amount).ok_or(Error::<T>::InsufficientDeposit)?;
            *entry = (!left.is_zero()).then_some(left);
            Ok(())
        })
    }

    /// Conservation: the pallet's account holds at least every ledger entry, ticket escrow and
    /// fell-back request's escrow (more only by its existential deposit and by anything sent to
    /// it directly), and no entry is kept at zero.
    pub(crate) fn ledger_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let mut owed = BalanceOf::<T>::zero();
        for (_, entry) in Deposits::<T>::iter() {
            ensure!(!entry.is_zero(), "a ledger entry is kept at zero");
            owed = owed.saturating_add(entry);
        }
        for (_, ticket) in Tickets::<T>::iter() {
            owed = owed.saturating_add(ticket.escrow);
        }
        // A fell-back request's escrow stays in the account (none once it closed).
        for (id, _) in FellBack::<T>::iter() {
            owed = owed.saturating_add(Requests::<T>::get(id).map(|r| r.escrow).unwrap_or_default());
        }
        let held = Currency::<T>::balance(&Self::account_id()).saturating_sub(Currency::<T>::minimum_balance());
        ensure!(held >= owed, "the pallet account holds less than the ledger and the tickets owe");
        Ok(())
    }
}
