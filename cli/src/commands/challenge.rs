//! `agora challenge`: have drawn verifiers re-score a kept answer, against a bond.

use crate::output::emit;
use crate::Global;
use agora_client::report::DisputeView;

pub async fn run(global: &Global, request: Option<u64>) -> anyhow::Result<()> {
    let runs = super::runs(global);
    let record = match request {
        Some(request) => runs.load(request)?,
        None => runs.last()?,
    };
    let client = super::client(global).await?;
    eprintln!("challenging request {}: holding the bond, bringing the answer to the drawn verifiers...", record.request);
    let report = client.challenge(record.request, &record.prompt, &record.output).await?;
    let verdict = if report.upheld() {
        "challenge upheld: the providers were slashed and you were repaid; the bond is back"
    } else if report.resolution.decided.0.is_empty() {
        "no verifier judged the answer: nothing changed and the bond is back"
    } else {
        "challenge rejected: the verifiers accepted the answer; the bond went to the treasury"
    };
    emit(global.json, &DisputeView::from(&report), |view| {
        print!("{view}");
        println!("{verdict}");
    })
}
