//! The load safeguard: offline on-chain while the machine is overloaded, so no new work is drawn.

use super::*;

impl Inner {
    pub(super) async fn load_monitor(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let limits = load::Limits {
            max_load_per_core: self.config.max_load_per_core,
            max_temperature_c: self.config.max_temperature_c,
        };
        let mut gate = load::Gate::new(limits);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {},
                _ = stopping.changed() => return,
            }
            let reading = load::read(Path::new("/proc"), Path::new("/sys"));
            let was_open = gate.is_open();
            let open = gate.update(reading);
            if open == was_open {
                continue;
            }
            self.metrics.accepting.set(i64::from(open));
            tracing::warn!(?reading, open, "load safeguard");
            let result = if open {
                self.submit(&agora::tx().providers().go_online()).await
            } else {
                self.submit(&agora::tx().providers().go_offline()).await
            };
            if let Err(e) = result {
                self.chain_error("load_safeguard", &e);
            }
        }
    }
}
