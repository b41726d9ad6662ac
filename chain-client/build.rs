// The `subxt` macro reads metadata/agora.scale at compile time but does not tell cargo, so a
// regenerated file would leave a stale client compiled (and every call it encodes refused as
// incompatible with the live chain). Naming the file here recompiles the crate when it changes.
fn main() {
    println!("cargo:rerun-if-changed=metadata/agora.scale");
}
