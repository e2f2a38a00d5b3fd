//! What the harness's tests share.

use std::path::PathBuf;

/// The zoo-server beside the test binary's directory (`target/debug`),
/// built by `cargo test --workspace` with the `failpoints` feature.
pub fn server_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .join("zoo-server");
    assert!(
        bin.is_file(),
        "no zoo-server at {}: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}
