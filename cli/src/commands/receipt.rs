//! `agora receipt`: who was paid, slashed and refunded for a request.

use crate::output::emit;
use crate::Global;
use agora_client::report::ReceiptView;

pub async fn run(global: &Global, request: u64) -> anyhow::Result<()> {
    let receipt = ReceiptView::from(&super::client(global).await?.receipt(request).await?);
    emit(global.json, &receipt, |r| print!("{r}"))
}
