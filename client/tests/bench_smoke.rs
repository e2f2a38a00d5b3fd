//! A few seconds of `zoo-bench` against a real zoo-server: every workload
//! runs, every reply checks out, and the JSON report is well formed; and
//! `zoo-bench chart` draws a PNG.

use std::net::SocketAddr;
use std::process::Command;

/// Runs zoo-bench with `args` against `addr`; its JSON report.
async fn bench(addr: SocketAddr, workload: &'static str, args: &[&str]) -> serde_json::Value {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_zoo-bench"))
            .args(["--connect", &addr.to_string(), "--workload", workload])
            .args(["--duration", "0.5", "--warmup", "0.1", "--json"])
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{workload}: {stdout}\n{stderr}");
    // Not a terminal: no progress line.
    assert!(stderr.is_empty(), "{workload}: {stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(report["workload"], workload);
    assert!(report["ok"].as_u64().unwrap() > 0, "{report}");
    assert!(report["ops_per_sec"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert!(report["latency_us"]["p50"].as_u64().unwrap() > 0);
    assert!(
        report["latency_us"]["p50"].as_u64() <= report["latency_us"]["max"].as_u64(),
        "{report}"
    );
    report
}

async fn start_server() -> zoo_server::testkit::ZooServer {
    let config = zoo_server::Config::parse("tickTime=2000\n", "bench").unwrap();
    zoo_server::testkit::ZooServer::start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_bench_runs_every_request_workload() {
    let server = start_server().await;
    for workload in ["read", "write", "mixed", "create", "create-delete"] {
        let args = ["--clients", "2", "--in-flight", "4"];
        let report = bench(
            server.addr,
            workload,
            &[&args[..], &["--keys", "50", "--value-size", "32"]].concat(),
        )
        .await;
        assert_eq!(report["value_size"], 32, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_bench_runs_large_values() {
    // 512 KiB by default, each read checked byte by byte.
    let server = start_server().await;
    for workload in ["large-write", "large-read"] {
        let args = ["--clients", "2", "--in-flight", "2", "--keys", "4"];
        let report = bench(server.addr, workload, &args).await;
        assert_eq!(report["value_size"], 512 * 1024, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_bench_fans_a_change_out_to_every_watcher() {
    let server = start_server().await;
    let report = bench(server.addr, "watch-fanout", &["--clients", "8"]).await;
    // Every measured round that counted delivered one event per watcher.
    let rounds = report["ok"].as_u64().unwrap();
    assert_eq!(report["events"].as_u64().unwrap(), rounds * 8, "{report}");
    assert!(report["after_ack_us"]["max"].as_u64().is_some(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_bench_opens_and_closes_sessions() {
    let server = start_server().await;
    let report = bench(server.addr, "session-storm", &["--clients", "4"]).await;
    assert_eq!(report["clients"], 4, "{report}");
}

#[test]
fn zoo_bench_draws_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table.tsv");
    std::fs::write(
        &table,
        "workload\tZoo\tZooKeeper\tunit\n\
         write 16x8\t11519\t3641\tops/s\n\
         read 1x1 p50\t120\t180\tus\n\
         session storm 16\t1600\t-\tsessions/s\n",
    )
    .unwrap();
    let png = dir.path().join("chart.png");
    let out = Command::new(env!("CARGO_BIN_EXE_zoo-bench"))
        .args(["chart", "--input"])
        .arg(&table)
        .arg("--output")
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &bytes[..bytes.len().min(8)]
    );

    // A malformed table is refused, with the reason.
    std::fs::write(
        &table,
        "workload\tZoo\tZooKeeper\tunit\nwrite\tfast\t1\tops/s\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zoo-bench"))
        .args(["chart", "--input"])
        .arg(&table)
        .arg("--output")
        .arg(dir.path().join("bad.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"fast\""));
}
