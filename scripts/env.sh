# Shared build settings, sourced by every script and by .ci/run.
# One target directory outside the clone, shared by developers and CI on this machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora-target}"
# The runtime's WASM half is built in a nested workspace; point it at ours so it honours Cargo.lock.
export WASM_BUILD_WORKSPACE_HINT="${WASM_BUILD_WORKSPACE_HINT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# Two cores: cargo's default parallelism already matches; keep the WASM build from doubling it.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
