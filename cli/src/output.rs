//! One way to print a command's result: JSON for scripts, lines for humans.

use serde::Serialize;

/// Prints `value` as pretty JSON with `--json`, else as `human` renders it.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}
