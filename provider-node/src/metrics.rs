//! Prometheus metrics, served as text on a local port (`GET /metrics`).

use crate::journal::JobState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub tokens_generated: Counter,
    /// Decode speed of the last finished job, tokens per second.
    pub tokens_per_second: Gauge<f64, AtomicU64>,
    pub queue_depth: Gauge,
    pub running_jobs: Gauge,
    pub jobs: Family<StateLabel, Gauge>,
    pub chain_errors: Family<KindLabel, Counter>,
    pub protocol_errors: Family<KindLabel, Counter>,
    /// Disputed results this verifier judged, by verdict (`accepted`, `rejected`).
    pub verdicts: Family<KindLabel, Counter>,
    /// 1 while the load safeguard lets new jobs in.
    pub accepting: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("agora_provider");
        let m = Metrics {
            tokens_generated: Counter::default(),
            tokens_per_second: Gauge::default(),
            queue_depth: Gauge::default(),
            running_jobs: Gauge::default(),
            jobs: Family::default(),
            chain_errors: Family::default(),
            protocol_errors: Family::default(),
            verdicts: Family::default(),
            accepting: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("tokens_generated", "Tokens generated", m.tokens_generated.clone());
        registry.register("tokens_per_second", "Decode speed of the last job", m.tokens_per_second.clone());
        registry.register("queue_depth", "Jobs waiting for an inference slot", m.queue_depth.clone());
        registry.register("running_jobs", "Jobs running in an inference slot", m.running_jobs.clone());
        registry.register("jobs", "Journaled jobs by state", m.jobs.clone());
        registry.register("chain_errors", "Failed chain calls by kind", m.chain_errors.clone());
        registry.register("protocol_errors", "Inference streams refused or dropped, by kind", m.protocol_errors.clone());
        registry.register("verdicts", "Disputed results judged by re-scoring, by verdict", m.verdicts.clone());
        registry.register("accepting", "1 while the load safeguard lets new jobs in", m.accepting.clone());
        for state in JobState::ALL {
            m.jobs.get_or_create(&StateLabel { state: state.name() }).set(0);
        }
        Arc::new(Metrics { registry, ..m })
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Serves `/metrics` until the task is dropped.
    pub async fn serve(self: Arc<Self>, addr: SocketAddr) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                async move {
                    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], metrics.render())
                }
            }),
        );
        Ok(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }))
    }
}
