//! A few seconds of `zoo-bench` against a real zoo-server: every workload
//! runs, every reply checks out, and the JSON report is well formed.

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_bench_runs_every_workload() {
    let config = zoo_server::Config::parse("tickTime=2000\n", "bench").unwrap();
    let server = zoo_server::testkit::ZooServer::start(config).await;
    let addr = server.addr;
    for workload in ["read", "write", "mixed", "create", "create-delete"] {
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_zoo-bench"))
                .args(["--connect", &addr.to_string(), "--workload", workload])
                .args([
                    "--clients",
                    "2",
                    "--in-flight",
                    "4",
                    "--duration",
                    "0.5",
                    "--warmup",
                    "0.1",
                ])
                .args(["--keys", "50", "--value-size", "32", "--json"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{workload}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(stdout.trim()).expect("one JSON object");
        assert_eq!(report["workload"], workload.replace('-', ""));
        assert!(report["ok"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["errors"], serde_json::json!({}), "{report}");
        assert!(report["latency_us"]["p50"].as_u64().unwrap() > 0);
    }
}
