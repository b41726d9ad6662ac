//! The load safeguard: stop taking new jobs when the machine is too loaded or too hot, resume
//! once it has cooled down. Thresholds have hysteresis so the node does not flap.

use std::path::Path;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_load_per_core: f64,
    pub max_temperature_c: f64,
}

/// What was read off the machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    pub load_per_core: f64,
    /// Hottest thermal zone, if the machine exposes any.
    pub temperature_c: Option<f64>,
}

pub struct Gate {
    limits: Limits,
    open: bool,
}

impl Gate {
    pub fn new(limits: Limits) -> Self {
        Self { limits, open: true }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Updates the gate from a reading and returns whether it is open. It closes above a limit
    /// and opens again only below 80 % of the load limit and 5 °C under the temperature limit.
    pub fn update(&mut self, reading: Reading) -> bool {
        let temp = reading.temperature_c.unwrap_or(f64::NEG_INFINITY);
        if self.open {
            if reading.load_per_core > self.limits.max_load_per_core || temp > self.limits.max_temperature_c {
                self.open = false;
            }
        } else if reading.load_per_core < 0.8 * self.limits.max_load_per_core && temp < self.limits.max_temperature_c - 5.0 {
            self.open = true;
        }
        self.open
    }
}

/// Reads the 1-minute load average per core and the hottest thermal zone.
pub fn read(proc_root: &Path, sys_root: &Path) -> Reading {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let load = std::fs::read_to_string(proc_root.join("loadavg"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
        .unwrap_or(0.0);
    let temperature_c = std::fs::read_dir(sys_root.join("class/thermal"))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("temp")).ok())
        .filter_map(|s| s.trim().parse::<f64>().ok())
        .map(|milli| milli / 1000.0)
        .fold(None, |hottest: Option<f64>, t| Some(hottest.map_or(t, |h| h.max(t))));
    Reading { load_per_core: load / cores, temperature_c }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_closes_above_a_limit_and_reopens_with_hysteresis() {
        let mut gate = Gate::new(Limits { max_load_per_core: 2.0, max_temperature_c: 80.0 });
        let at = |load, temp| Reading { load_per_core: load, temperature_c: temp };
        assert!(gate.update(at(1.9, None)));
        assert!(!gate.update(at(2.1, None)));
        assert!(!gate.update(at(1.7, None)), "80 % of the limit is 1.6");
        assert!(gate.update(at(1.5, None)));
        assert!(!gate.update(at(0.1, Some(81.0))));
        assert!(!gate.update(at(0.1, Some(76.0))));
        assert!(gate.update(at(0.1, Some(74.0))));
    }

    #[test]
    fn readings_come_from_proc_and_sys() {
        let dir = tempfile::tempdir().unwrap();
        let (proc_root, sys_root) = (dir.path().join("proc"), dir.path().join("sys"));
        std::fs::create_dir_all(&proc_root).unwrap();
        std::fs::write(proc_root.join("loadavg"), "3.00 2.00 1.00 1/100 42\n").unwrap();
        for (zone, milli) in [("thermal_zone0", "45000"), ("thermal_zone1", "67500"), ("cooling_device0", "99000")] {
            std::fs::create_dir_all(sys_root.join("class/thermal").join(zone)).unwrap();
            std::fs::write(sys_root.join("class/thermal").join(zone).join("temp"), milli).unwrap();
        }
        let cores = std::thread::available_parallelism().unwrap().get() as f64;
        let reading = read(&proc_root, &sys_root);
        assert_eq!(reading.load_per_core, 3.0 / cores);
        assert_eq!(reading.temperature_c, Some(67.5));
        let missing = read(&dir.path().join("none"), &dir.path().join("none"));
        assert_eq!((missing.load_per_core, missing.temperature_c), (0.0, None));
    }
}
