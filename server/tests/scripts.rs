//! The comparison scripts (failover, ensemble throughput) run end to end
//! once each, so that they keep working; their figures are read by people,
//! not checked here. One test, so that the two do not load the machine at
//! the same time.

mod support;

use support::{run_ok, script};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_comparison_scripts_run() {
    // One round of scripts/failover.sh.
    let mut command = std::process::Command::new("bash");
    command
        .arg(script("failover.sh"))
        .arg("1")
        .env("ZOO_SERVER_BIN", env!("CARGO_BIN_EXE_zoo-server"));
    let stdout = run_ok(command).await;
    assert!(
        stdout.contains("zoo        round 1: writes again"),
        "{stdout}"
    );
    assert!(
        stdout.contains("zookeeper  round 1: writes again"),
        "{stdout}"
    );
    assert!(stdout.contains("median failover: Zoo "), "{stdout}");

    // One second per workload of scripts/compare-ensemble.sh.
    let server = std::path::Path::new(env!("CARGO_BIN_EXE_zoo-server"));
    let bench = server.with_file_name("zoo-bench");
    assert!(
        bench.exists(),
        "{} is built by `cargo test --workspace`",
        bench.display()
    );
    let charts = tempfile::tempdir().unwrap();
    let chart = charts.path().join("compare-ensemble.png");
    let mut command = std::process::Command::new("bash");
    command
        .arg(script("compare-ensemble.sh"))
        .arg("1")
        .arg(&chart)
        .env("ZOO_SERVER_BIN", server)
        .env("ZOO_BENCH_BIN", bench);
    let stdout = run_ok(command).await;
    for row in [
        "write via leader 16x8",
        "write via follower 16x8",
        "read at a follower 16x8",
        "fan-out to 16 at follower",
        "session storm 16 follower",
        "large-write 512K via leader",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(row) && l.contains("/s")),
            "{row} missing:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("chart: {}", chart.display())),
        "{stdout}"
    );
    let png = std::fs::read(&chart).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", chart.display());
}
