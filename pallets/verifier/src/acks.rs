//! Who took the job. The chain cannot see whether a client sent its prompt, so a provider that
//! revealed nothing is a no-show only if it is known to have had the prompt: it committed, or the
//! client proved its signed acknowledgement of the client's `Use` (`prove_ack`). Otherwise
//! nobody can tell a provider that never answered from a client that never asked: nobody is
//! slashed, and the provider is paid a reservation fee for the capacity it held, so withholding
//! the prompt costs the client instead of the providers.

use super::*;
use agora_primitives::{pricing, wire::Use, RequestId, RequestStatus};
use pallet_agora_escrow::{RequestOf, Requests};
use pallet_agora_providers::BalanceOf;
use polkadot_sdk::frame_support::{ensure, pallet_prelude::*};
use polkadot_sdk::frame_system;
use polkadot_sdk::sp_runtime::traits::{Verify, Zero};

impl<T: Config> Pallet<T> {
    pub(crate) fn do_prove_ack(
        request: RequestId,
        provider: T::AccountId,
        client_peer: PeerIdOf,
        signature: T::OffchainSignature,
    ) -> DispatchResult {
        let r = Requests::<T>::get(request).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(r.status == RequestStatus::Assigned, Error::<T>::NotActive);
        ensure!(r.providers.contains(&provider), Error::<T>::NotAssigned);
        // Settling a request with missing reveals waits for the reveal deadline: a proof that
        // lands by then always counts.
        ensure!(frame_system::Pallet::<T>::block_number() <= r.reveal_deadline, Error::<T>::AckClosed);
        ensure!(!Acknowledged::<T>::contains_key(request, &provider), Error::<T>::AlreadyAcknowledged);
        // A fell-back ticket's providers acknowledged the ticket's `Use`, before it was a request.
        let payload = match pallet_agora_escrow::FellBack::<T>::get(request) {
            Some(origin) => agora_primitives::tickets::ack_payload(origin.ticket, &origin.use_hash),
            None => Use {
                chain: Self::chain(),
                request,
                prompt_hash: r.params.prompt_hash,
                prompt_tokens: r.params.prompt_tokens,
                client_peer: client_peer.into_inner(),
            }
            .ack_payload(),
        };
        ensure!(signature.verify(&payload[..], &provider), Error::<T>::BadAcknowledgement);
        Acknowledged::<T>::insert(request, &provider, ());
        Self::deposit_event(Event::Acknowledged { request, provider });
        Ok(())
    }

    /// Whether `provider` is known to have had the request's prompt.
    pub(crate) fn took_the_job(request: RequestId, provider: &T::AccountId) -> bool {
        Commitments::<T>::contains_key(request, provider) || Acknowledged::<T>::contains_key(request, provider)
    }

    /// `ReservationShare` of what `provider` would have earned at its fixed price for the
    /// request's whole output: within its share of the escrow.
    pub(crate) fn reservation_fee(r: &RequestOf<T>, prices: (BalanceOf<T>, BalanceOf<T>)) -> BalanceOf<T> {
        T::ReservationShare::get() * Self::most_pay(r, prices)
    }

    /// What a provider at `prices` would earn for the request's whole output: what one its
    /// buyer made serve another `Use` of the ticket is paid.
    pub(crate) fn most_pay(r: &RequestOf<T>, (price_in, price_out): (BalanceOf<T>, BalanceOf<T>)) -> BalanceOf<T> {
        pricing::cost(r.params.prompt_tokens, price_in, r.params.max_output_tokens, price_out).unwrap_or_else(Zero::zero)
    }

    /// Acknowledgements exist only for requests still open, from their providers.
    pub(crate) fn acks_try_state() -> Result<(), polkadot_sdk::sp_runtime::TryRuntimeError> {
        for (request, who, ()) in Acknowledged::<T>::iter() {
            let r = Requests::<T>::get(request).ok_or("an acknowledgement for an unknown request")?;
            ensure!(r.status.holds_escrow(), "an acknowledgement outlived its request");
            ensure!(r.providers.contains(&who), "an acknowledgement from an unassigned account");
        }
        Ok(())
    }
}
