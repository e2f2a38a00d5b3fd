//! zoo-jepsen against real clusters: a 30-second run of each workload under
//! faults must be judged valid, and a server built with a planted bug must
//! be caught.
//!
//! The servers are the workspace's `zoo-server`, built by `cargo test
//! --workspace` with the `failpoints` feature (the server crate's tests
//! ask for it), so the crash nemesis's points are armed.

mod support;

use std::time::Duration;

use zoo_jepsen::checker::Verdict;
use zoo_jepsen::nemesis::Nemesis;
use zoo_jepsen::runner::{self, RunOptions, RunResult};
use zoo_jepsen::workload::Workload;

/// A run's result and the directory that holds its report (removed when
/// dropped, unless the run was not valid).
struct Run {
    result: RunResult,
    _dir: Option<tempfile::TempDir>,
}

async fn run(workload: Workload, nemesis: Nemesis, seconds: u64, planted: &str) -> Run {
    let out = tempfile::tempdir().expect("a temporary directory");
    let mut options = RunOptions::new(
        workload,
        nemesis,
        support::server_bin(),
        out.path().to_path_buf(),
    );
    options.time_limit = Duration::from_secs(seconds);
    options.seed = 42;
    options.progress = false;
    options.extra_config = planted.to_string();
    let result = runner::run(&options).await.expect("the run completes");
    for name in [
        "history.jsonl",
        "results.json",
        "timeline.html",
        "latency.png",
        "throughput.png",
    ] {
        let path = result.dir.join(name);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "the report lacks {name}");
    }
    eprintln!("{}", runner::summary_line(&result));
    // Keep the report of a failed run where a person can look at it.
    let dir = if result.verdict != Verdict::Valid && planted.is_empty() {
        let kept = out.keep();
        eprintln!("kept the run's directory: {}", kept.display());
        None
    } else {
        Some(out)
    };
    Run { result, _dir: dir }
}

/// A run under faults: the faults happened, the clients got work done, and
/// every checker found the history valid.
async fn valid_under_faults(workload: Workload, nemesis: Nemesis) -> Run {
    let run = run(workload, nemesis, 30, "").await;
    let result = &run.result;
    assert!(!result.faults.is_empty(), "no fault was injected");
    assert!(result.ok >= 50, "only {} operations succeeded", result.ok);
    assert!(
        result.harness_errors.is_empty(),
        "harness errors: {:#?}",
        result.harness_errors
    );
    for c in &result.checkers {
        assert_eq!(c.verdict, Verdict::Valid, "{}: {:#?}", c.checker, c);
    }
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_under_mixed_faults() {
    valid_under_faults(Workload::Register, Nemesis::Mixed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_under_kills() {
    valid_under_faults(Workload::Set, Nemesis::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_under_crash_points() {
    let run = valid_under_faults(Workload::Sequential, Nemesis::Crash).await;
    let result = &run.result;
    // The servers really aborted at their crash points.
    let crashes: usize = (1..=result.nodes)
        .map(|id| {
            let log = result.dir.join(format!("cluster/s{id}/server.log"));
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .matches("crash point")
                .count()
        })
        .sum();
    assert!(crashes > 0, "no server reached a crash point");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_under_pauses() {
    valid_under_faults(Workload::Lock, Nemesis::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_under_partitions() {
    valid_under_faults(Workload::Sessions, Nemesis::Partition).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_under_one_way_loss() {
    valid_under_faults(Workload::Watch, Nemesis::Loss).await;
}

/// Followers that answer `sync` from their own tree, with the leader's
/// links delayed so that they trail it: a read after a sync misses writes
/// acknowledged before the sync began, and the read checker says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_unsafe_sync_is_caught() {
    let run = run(
        Workload::Register,
        Nemesis::Delay,
        20,
        "testOnly.unsafeLocalSync=true\n",
    )
    .await;
    let result = &run.result;
    assert_eq!(result.verdict, Verdict::Invalid, "{:#?}", result.checkers);
    let reads = result
        .checkers
        .iter()
        .find(|c| c.checker == "zk-reads")
        .expect("the read checker ran");
    assert!(reads.kinds().contains(&"stale-sync-read"), "{:#?}", reads);
}

/// `soak` from the command line: two short runs, a summary, exit status 0;
/// the valid runs' server data removed unless `--keep-data`.
#[test]
fn a_soak_summarizes_its_runs_and_drops_the_data_of_valid_ones() {
    let out = tempfile::tempdir().unwrap();
    let soak = |dir: &str, extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_zoo-jepsen"))
            .args(["soak", "--workload", "register", "--nemesis", "none"])
            .args(["--runs", "2", "--time-limit", "2", "--seed", "5"])
            .arg("--server-bin")
            .arg(support::server_bin())
            .arg("--out")
            .arg(out.path().join(dir))
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("soak: 2 runs"), "{stderr}");
        out.path().join(dir)
    };
    let pruned = soak("pruned", &[]);
    let kept = soak("kept", &["--keep-data"]);
    for seed in [5, 6] {
        let run = format!("register-none-n3-seed{seed}");
        assert!(pruned.join(&run).join("results.json").is_file(), "{run}");
        assert!(pruned.join(&run).join("history.jsonl").is_file(), "{run}");
        assert!(!pruned.join(&run).join("cluster").exists(), "{run}");
        assert!(kept.join(&run).join("cluster").is_dir(), "{run}");
    }
}
