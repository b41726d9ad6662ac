//! The quickstart against a chain that is not there fails with a named error and status 1, never
//! a panic. (Its successful run, against a dev chain with providers, is in the CLI's
//! marketplace test; this test also makes `cargo test --workspace` build the binary it runs.)

#[test]
fn an_unreachable_chain_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_agora-quickstart")).arg(format!("ws://127.0.0.1:{port}")).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "{stderr}");
}
