//! Disputes: verifier opt-in, the draw of verifiers, challenges, verdicts and resolution.

use super::*;
use agora_primitives::{DisputeKind, JobOutcome, Outcome, OutcomeVerdict, RequestId, RequestStatus, MAX_VERIFIERS};
use alloc::vec::Vec;
use pallet_agora_escrow::{weighted_sample, RequestOf, Requests};
use pallet_agora_providers::{BalanceOf, Candidate};
use polkadot_sdk::frame_support::{
    ensure,
    pallet_prelude::*,
    traits::{
        fungible::{Inspect, InspectHold, Mutate, MutateHold},
        tokens::{Fortitude, Precision, Preservation, Restriction},
    },
};
use polkadot_sdk::frame_system;
use polkadot_sdk::sp_runtime::{
    traits::{Bounded, Saturating, Zero},
    BoundedVec,
};

type Providers<T> = pallet_agora_providers::Pallet<T>;
type Currency<T> = <T as pallet_agora_providers::Config>::Currency;

impl<T: Config> Pallet<T> {
    fn bond_reason() -> <T as pallet_agora_providers::Config>::RuntimeHoldReason {
        HoldReason::ChallengeBond.into()
    }

    pub(crate) fn do_opt_in(who: T::AccountId) -> DispatchResult {
        ensure!(pallet_agora_providers::Providers::<T>::contains_key(&who), Error::<T>::NotAProvider);
        ensure!(!Verifiers::<T>::contains_key(&who), Error::<T>::AlreadyVerifier);
        Verifiers::<T>::insert(&who, ());
        Self::deposit_event(Event::VerifierOptedIn { who });
        Ok(())
    }

    pub(crate) fn do_opt_out(who: T::AccountId) -> DispatchResult {
        ensure!(Verifiers::<T>::take(&who).is_some(), Error::<T>::NotVerifier);
        Self::deposit_event(Event::VerifierOptedOut { who });
        Ok(())
    }

    /// Who may judge `r`: opted-in providers that could serve the request themselves (release,
    /// runtime profile, context, online, not full), other than its client and providers.
    pub(crate) fn verifier_candidates(r: &RequestOf<T>) -> Vec<Candidate<T::AccountId>> {
        let p = &r.params;
        let eligible = Providers::<T>::eligible(
            &p.release,
            &p.runtime_profile,
            BalanceOf::<T>::max_value(),
            p.prompt_tokens.saturating_add(p.max_output_tokens),
        );
        eligible
            .listings
            .into_iter()
            .filter(|l| Verifiers::<T>::contains_key(&l.who) && l.who != r.client && !r.providers.contains(&l.who))
            .map(|l| Candidate { who: l.who, weight: l.weight })
            .collect()
    }

    /// Opens a dispute over `outcomes` of `request`. Its verifiers are drawn in a later block
    /// ([`Self::draw_pending`]), so that whoever opened it cannot pick them by timing.
    pub(crate) fn open_dispute(request: RequestId, kind: DisputeKindOf<T>, outcomes: Vec<Outcome>) -> DispatchResult {
        let now = frame_system::Pallet::<T>::block_number();
        Self::queue_draw(request, now)?;
        let dispute = DisputeOf::<T> {
            kind,
            outcomes: BoundedVec::truncate_from(outcomes),
            verifiers: BoundedVec::new(),
            opened_at: now,
            // Provisional: the draw sets it a verdict window after the verifiers are known.
            verdict_deadline: now.saturating_add(T::VerdictWindow::get()),
        };
        Disputes::<T>::insert(request, dispute);
        Ok(())
    }

    /// Draws the dispute's verifiers from `seed`, weighted by stake × reputation, and starts
    /// its verdict window. False when nobody can judge it any more.
    pub(crate) fn draw_verifiers(request: RequestId, r: &RequestOf<T>, dispute: &mut DisputeOf<T>, seed: &[u8]) -> bool {
        let mut candidates = Self::verifier_candidates(r);
        if candidates.is_empty() {
            return false;
        }
        let count = if dispute.kind == DisputeKind::Audit { T::AuditVerifiers::get() } else { T::DisputeVerifiers::get() };
        let chosen = weighted_sample(&mut candidates, count.clamp(1, MAX_VERIFIERS) as usize, seed);
        chosen.iter().for_each(Providers::<T>::enter_dispute);
        dispute.verifiers = BoundedVec::truncate_from(chosen);
        dispute.verdict_deadline = frame_system::Pallet::<T>::block_number().saturating_add(T::VerdictWindow::get());
        Self::deposit_event(Event::DisputeOpened {
            request,
            kind: dispute.kind.clone(),
            verifiers: dispute.verifiers.clone(),
            verdict_deadline: dispute.verdict_deadline,
        });
        true
    }

    pub(crate) fn do_challenge(who: T::AccountId, request: RequestId) -> DispatchResult {
        let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(r.client == who, Error::<T>::NotClient);
        let receipt = Receipts::<T>::get(request).ok_or(Error::<T>::NotChallengeable)?;
        let winning = receipt.winning.ok_or(Error::<T>::NotChallengeable)?;
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(
            r.status == RequestStatus::Settled &&
                now <= receipt.settled_at.saturating_add(T::ChallengeWindow::get()) &&
                !Disputes::<T>::contains_key(request) &&
                !Resolutions::<T>::contains_key(request),
            Error::<T>::NotChallengeable
        );
        ensure!(!Self::verifier_candidates(&r).is_empty(), Error::<T>::NoVerifiers);
        let bond = T::ChallengeBond::get();
        Currency::<T>::hold(&Self::bond_reason(), &who, bond)?;
        let kind = DisputeKind::Challenge { challenger: who, bond };
        Self::open_dispute(request, kind, Vec::from([winning]))?;
        receipt.paid.iter().for_each(|(winner, _)| Providers::<T>::enter_dispute(winner));
        Ok(())
    }

    /// Returns the listings rewritten beyond each provider's first, if the verdict resolved the
    /// dispute.
    pub(crate) fn do_submit_verdict(who: T::AccountId, request: RequestId, verdicts: VerdictsOf) -> Result<u32, DispatchError> {
        let dispute = Disputes::<T>::get(request).ok_or(Error::<T>::NoDispute)?;
        ensure!(dispute.verifiers.contains(&who), Error::<T>::NotSelectedVerifier);
        ensure!(frame_system::Pallet::<T>::block_number() <= dispute.verdict_deadline, Error::<T>::VerdictClosed);
        ensure!(!Verdicts::<T>::contains_key(request, &who), Error::<T>::AlreadyVoted);
        let covers_each_once = verdicts.len() == dispute.outcomes.len() &&
            dispute.outcomes.iter().all(|o| verdicts.iter().filter(|v| v.outcome == *o).count() == 1);
        ensure!(covers_each_once, Error::<T>::VerdictMismatch);
        Verdicts::<T>::insert(request, &who, verdicts);
        Self::deposit_event(Event::VerdictPosted { request, verifier: who });
        if dispute.verifiers.iter().all(|v| Verdicts::<T>::contains_key(request, v)) {
            return Self::resolve(request, dispute);
        }
        Ok(0)
    }

    /// Returns the listings rewritten beyond each provider's first.
    pub(crate) fn do_resolve_after_deadline(request: RequestId) -> Result<u32, DispatchError> {
        let dispute = Disputes::<T>::get(request).ok_or(Error::<T>::NoDispute)?;
        ensure!(!dispute.verifiers.is_empty(), Error::<T>::TooEarly);
        ensure!(frame_system::Pallet::<T>::block_number() > dispute.verdict_deadline, Error::<T>::TooEarly);
        Self::resolve(request, dispute)
    }

    /// Decides each disputed result by the verdicts cast (accepted when at least as many accept
    /// it as reject it, and one does; undecided when nobody voted), then pays, slashes and
    /// refunds by that decision, pays the verifiers that agreed with it and slashes the silent.
    /// Returns the listings rewritten beyond each provider's first.
    pub(crate) fn resolve(request: RequestId, dispute: DisputeOf<T>) -> Result<u32, DispatchError> {
        let mut relisted = 0u32;
        let cast: Vec<(T::AccountId, VerdictsOf)> =
            dispute.verifiers.iter().filter_map(|v| Verdicts::<T>::get(request, v).map(|x| (v.clone(), x))).collect();
        let decided: Vec<OutcomeVerdict> = if cast.is_empty() {
            Vec::new()
        } else {
            dispute
                .outcomes
                .iter()
                .map(|o| {
                    let (accepts, rejects) = cast.iter().flat_map(|(_, vs)| vs.iter().filter(|v| v.outcome == *o)).fold(
                        (0u32, 0u32),
                        |(a, r), v| if v.accepted { (a + 1, r) } else { (a, r + 1) },
                    );
                    OutcomeVerdict { outcome: *o, accepted: accepts >= rejects && accepts > 0 }
                })
                .collect()
        };
        let decision = |o: &Outcome| decided.iter().find(|d| d.outcome == *o).map(|d| d.accepted);

        match &dispute.kind {
            DisputeKind::SplitVote | DisputeKind::Audit => {
                let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
                let reveals = Self::reveals_of(request, &r);
                // The accepted result most providers revealed names the receipt.
                let winning = decided
                    .iter()
                    .filter(|d| d.accepted)
                    .max_by_key(|d| reveals.iter().filter(|(_, o)| *o == d.outcome).count())
                    .map(|d| d.outcome);
                // An audit nobody judged stands as revealed: there is no evidence against it.
                let unjudged_audit = cast.is_empty() && dispute.kind == DisputeKind::Audit;
                let (winning, judge): (Option<Outcome>, &dyn Fn(&Outcome) -> Option<bool>) = if unjudged_audit {
                    (dispute.outcomes.first().copied(), &|_| Some(true))
                } else {
                    (winning, &decision)
                };
                relisted.saturating_accrue(Self::close_with(request, &r, &reveals, judge, winning)?);
            },
            DisputeKind::Challenge { challenger, bond } => {
                let upheld = decided.first().is_some_and(|d| !d.accepted);
                let receipt = Receipts::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
                receipt.paid.iter().for_each(|(winner, _)| Providers::<T>::leave_dispute(winner));
                if upheld {
                    for (provider, paid) in receipt.paid.iter() {
                        let punished = Providers::<T>::punish(provider, Some(JobOutcome::Wrong), T::WrongResultSlash::get());
                        relisted.saturating_accrue(punished.relisted);
                        Self::pay_from_treasury(challenger, (*paid).min(punished.taken));
                    }
                }
                if upheld || decided.is_empty() {
                    Currency::<T>::release(&Self::bond_reason(), challenger, *bond, Precision::BestEffort)?;
                } else {
                    Currency::<T>::transfer_on_hold(
                        &Self::bond_reason(),
                        challenger,
                        &<T as pallet_agora_providers::Config>::Treasury::get(),
                        *bond,
                        Precision::BestEffort,
                        Restriction::Free,
                        Fortitude::Force,
                    )?;
                }
            },
        }

        let mut verifiers_paid: BoundedVec<(T::AccountId, BalanceOf<T>), _> = BoundedVec::new();
        let mut silent: BoundedVec<T::AccountId, _> = BoundedVec::new();
        for verifier in dispute.verifiers.iter() {
            Providers::<T>::leave_dispute(verifier);
            match cast.iter().find(|(v, _)| v == verifier) {
                None => {
                    relisted.saturating_accrue(Providers::<T>::punish(verifier, Some(JobOutcome::NoShow), T::NoShowSlash::get()).relisted);
                    let _ = silent.try_push(verifier.clone());
                },
                Some((_, verdicts)) => {
                    let agreed = verdicts.iter().all(|v| decision(&v.outcome) == Some(v.accepted));
                    let fee = if agreed { Self::pay_from_treasury(verifier, T::VerifierFee::get()) } else { Zero::zero() };
                    relisted.saturating_accrue(Providers::<T>::record_outcome(verifier, if agreed { JobOutcome::Agreed } else { JobOutcome::Wrong }));
                    let _ = verifiers_paid.try_push((verifier.clone(), fee));
                },
            }
        }
        let decided = BoundedVec::truncate_from(decided);
        Resolutions::<T>::insert(
            request,
            ResolutionOf::<T> {
                kind: dispute.kind,
                decided: decided.clone(),
                verifiers_paid,
                silent,
                resolved_at: frame_system::Pallet::<T>::block_number(),
            },
        );
        Disputes::<T>::remove(request);
        let _ = Verdicts::<T>::clear_prefix(request, MAX_VERIFIERS, None);
        Self::deposit_event(Event::DisputeResolved { request, decided });
        Ok(relisted)
    }

    /// Pays up to `amount` from the treasury, as much as it can spare; returns what was paid.
    fn pay_from_treasury(to: &T::AccountId, amount: BalanceOf<T>) -> BalanceOf<T> {
        let treasury = <T as pallet_agora_providers::Config>::Treasury::get();
        let spare = Currency::<T>::reducible_balance(&treasury, Preservation::Preserve, Fortitude::Polite);
        let amount = amount.min(spare);
        if amount.is_zero() {
            return amount;
        }
        Currency::<T>::transfer(&treasury, to, amount, Preservation::Preserve).unwrap_or_else(|_| Zero::zero())
    }

    /// Invariants of disputes: split votes and audits hold their request under dispute, and
    /// every disputed request has its dispute; a challenge's request is settled; verdicts come
    /// only from drawn verifiers of open disputes; each challenger holds exactly its bonds.
    pub(crate) fn disputes_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        let mut bonds: Vec<(T::AccountId, BalanceOf<T>)> = Vec::new();
        for (request, dispute) in Disputes::<T>::iter() {
            let r = Requests::<T>::get(request).ok_or("a dispute of an unknown request")?;
            ensure!(!dispute.outcomes.is_empty(), "a dispute of no result");
            ensure!(
                !dispute.verifiers.is_empty() || PendingDraws::<T>::get().iter().any(|(r, _)| *r == request),
                "a dispute without verifiers is not waiting for their draw"
            );
            match dispute.kind {
                DisputeKind::SplitVote | DisputeKind::Audit => {
                    ensure!(r.status == RequestStatus::Disputed, "a split vote or audit of a request not under dispute")
                },
                DisputeKind::Challenge { challenger, bond } => {
                    ensure!(r.status == RequestStatus::Settled, "a challenge of an unsettled request");
                    match bonds.iter_mut().find(|(c, _)| *c == challenger) {
                        Some((_, sum)) => *sum = sum.saturating_add(bond),
                        None => bonds.push((challenger, bond)),
                    }
                },
            }
        }
        for (request, r) in Requests::<T>::iter() {
            if r.status == RequestStatus::Disputed {
                ensure!(Disputes::<T>::contains_key(request), "a disputed request without a dispute");
            }
        }
        for (request, verifier, _) in Verdicts::<T>::iter() {
            let dispute = Disputes::<T>::get(request).ok_or("a verdict outlived its dispute")?;
            ensure!(dispute.verifiers.contains(&verifier), "a verdict from a verifier not drawn");
        }
        // Every account a dispute can slash (its verifiers; a challenge's paid winners) counts it.
        let mut parties: Vec<(T::AccountId, u32)> = Vec::new();
        for (request, dispute) in Disputes::<T>::iter() {
            let winners = match dispute.kind {
                DisputeKind::Challenge { .. } => Receipts::<T>::get(request).map(|r| r.paid.into_inner()).unwrap_or_default(),
                _ => Vec::new(),
            };
            for who in dispute.verifiers.iter().cloned().chain(winners.into_iter().map(|(w, _)| w)) {
                match parties.iter_mut().find(|(p, _)| *p == who) {
                    Some((_, n)) => *n += 1,
                    None => parties.push((who, 1)),
                }
            }
        }
        for (who, exposure) in pallet_agora_providers::Exposures::<T>::iter() {
            let counted = parties.iter().find(|(p, _)| *p == who).map_or(0, |(_, n)| *n);
            ensure!(exposure.disputes == counted, "an exposure does not count the disputes its account is party to");
        }
        for (who, n) in parties {
            ensure!(pallet_agora_providers::Exposures::<T>::get(&who).disputes == n, "a party to a dispute is not exposed");
        }
        for (challenger, sum) in bonds {
            ensure!(
                Currency::<T>::balance_on_hold(&Self::bond_reason(), &challenger) == sum,
                "a challenger's held bond differs from its open challenges"
            );
        }
        Ok(())
    }
}
