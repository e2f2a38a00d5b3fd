//! One run: a cluster, a workload under a nemesis, then healing, a quiet
//! period, the final reads, the checkers and the report.
//!
//! Harness failures (a cluster that never became healthy, a final read
//! that could not be made, a server that would not start) are kept apart
//! from anomalies: they make the run `unknown`, never `invalid`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::checker::{self, CheckResult, LinearOptions, Verdict};
use crate::cluster::{Cluster, ClusterOptions};
use crate::history::{self, Op, Recorder};
use crate::nemesis::{self, FaultWindow, Nemesis, Schedule};
use crate::report;
use crate::workload::{self, Env, Workload};

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub workload: Workload,
    pub nemesis: Nemesis,
    pub nodes: usize,
    pub time_limit: Duration,
    pub seed: u64,
    /// Concurrent workers; 0 means two per server.
    pub concurrency: usize,
    pub server_bin: PathBuf,
    /// Where the run's directory is made (`<workload>-<nemesis>-<seed>`).
    pub out_dir: PathBuf,
    /// zoo.cfg lines added to every server (e.g. a planted bug's switch).
    pub extra_config: String,
    pub tick_ms: u64,
    pub session_timeout: Duration,
    /// How long the healed cluster gets to recover before the final reads.
    pub quiet: Duration,
    /// A progress line on standard error while it runs.
    pub progress: bool,
}

impl RunOptions {
    pub fn new(
        workload: Workload,
        nemesis: Nemesis,
        server_bin: PathBuf,
        out_dir: PathBuf,
    ) -> Self {
        RunOptions {
            workload,
            nemesis,
            nodes: 3,
            time_limit: Duration::from_secs(30),
            seed: 1,
            concurrency: 0,
            server_bin,
            out_dir,
            extra_config: String::new(),
            tick_ms: 200,
            session_timeout: Duration::from_millis(3000),
            quiet: Duration::from_secs(5),
            progress: std::io::stderr().is_terminal(),
        }
    }
}

/// What a run concluded, as written to `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub workload: String,
    pub nemesis: String,
    pub nodes: usize,
    pub seed: u64,
    pub time_limit_s: u64,
    pub verdict: Verdict,
    pub checkers: Vec<CheckResult>,
    /// Failures of the harness, apart from anomalies.
    pub harness_errors: Vec<String>,
    pub faults: Vec<FaultWindow>,
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub dir: PathBuf,
}

/// Runs one test end to end and writes its report directory.
pub async fn run(options: &RunOptions) -> Result<RunResult, String> {
    let name = format!(
        "{}-{}-n{}-seed{}",
        options.workload.name(),
        options.nemesis.name(),
        options.nodes,
        options.seed
    );
    let dir = options.out_dir.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut extra = format!(
        "maxSessionTimeout=60000\nminSessionTimeout={}\n",
        options.tick_ms * 2
    );
    if options.nemesis == Nemesis::Crash || options.nemesis == Nemesis::Mixed {
        // Snapshots often enough that their crash points are reached.
        extra.push_str("snapCount=200\n");
    }
    extra.push_str(&options.extra_config);
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: options.nodes,
        server_bin: options.server_bin.clone(),
        dir: dir.join("cluster"),
        tick_ms: options.tick_ms,
        extra_config: extra,
    })
    .await?;
    let mut harness_errors = Vec::new();
    if let Err(e) = cluster.wait_healthy(Duration::from_secs(30)).await {
        return Err(format!("the cluster never became healthy: {e}"));
    }

    let recorder = Recorder::new(std::time::Instant::now());
    let env = Arc::new(Env::new(
        options.workload,
        recorder.clone(),
        cluster.client_addrs(),
        options.session_timeout,
        Duration::from_secs(5),
    ));
    workload::setup(&env).await?;

    let started = Instant::now();
    let deadline = started + options.time_limit;
    let workers = if options.concurrency == 0 {
        options.nodes * 2
    } else {
        options.concurrency
    };
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        tasks.spawn(workload::worker(env.clone(), w, deadline, options.seed));
    }
    let progress = options.progress.then(|| {
        let recorder = recorder.clone();
        let total = options.time_limit;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (ok, fail, info) = recorder.counts();
                let done = started.elapsed().min(total);
                let width = 30;
                let filled = (done.as_secs_f64() / total.as_secs_f64() * width as f64) as usize;
                eprint!(
                    "\r[{}{}] {:>3}/{}s  ok {ok}  fail {fail}  info {info}  ",
                    "#".repeat(filled),
                    " ".repeat(width - filled),
                    done.as_secs(),
                    total.as_secs()
                );
            }
        })
    });
    let schedule = Schedule::new(options.nemesis, options.seed);
    let now = {
        let recorder = recorder.clone();
        move || recorder.now_ns()
    };
    let (faults, nemesis_errors) = nemesis::run(&mut cluster, &schedule, deadline, now).await;
    harness_errors.extend(nemesis_errors);
    // Workers stop at the deadline; one stuck past its op timeouts is cut.
    let stragglers = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if stragglers.is_err() {
        tasks.abort_all();
        harness_errors.push("workers still running 30 s after the deadline".to_string());
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }

    // Heal, and let the cluster recover.
    if let Err(e) = cluster.heal_all() {
        harness_errors.push(format!("healing: {e}"));
    }
    match cluster.wait_healthy(Duration::from_secs(60)).await {
        Ok(_) => tokio::time::sleep(options.quiet).await,
        Err(e) => harness_errors.push(format!("not healthy after healing: {e}")),
    }
    for (i, status) in cluster.exited() {
        harness_errors.push(format!(
            "server {} exited ({status}) after healing:\n{}",
            i + 1,
            cluster.log_tail(i, 20)
        ));
    }
    if let Err(e) = workload::finish(&env).await {
        harness_errors.push(e);
    }
    cluster.stop();

    let ops = recorder.history();
    history::save(&dir.join("history.jsonl"), &ops)
        .map_err(|e| format!("writing the history: {e}"))?;
    let checkers = check(options.workload, &ops);
    let mut verdict = checker::combine(&checkers);
    if verdict == Verdict::Valid && !harness_errors.is_empty() {
        verdict = Verdict::Unknown;
    }
    let (ok, fail, info) = recorder.counts();
    let result = RunResult {
        workload: options.workload.name().to_string(),
        nemesis: options.nemesis.name().to_string(),
        nodes: options.nodes,
        seed: options.seed,
        time_limit_s: options.time_limit.as_secs(),
        verdict,
        checkers,
        harness_errors,
        faults,
        ops: ops.len(),
        ok,
        fail,
        info,
        dir: dir.clone(),
    };
    let json = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), json).map_err(|e| e.to_string())?;
    report::write(&dir, &result, &ops)?;
    Ok(result)
}

/// The checkers that judge a workload's history.
pub fn check(workload: Workload, ops: &[Op]) -> Vec<CheckResult> {
    match workload {
        Workload::Register => vec![
            checker::check_register_linearizable(ops, LinearOptions::default()),
            checker::check_zk_reads(ops),
        ],
        Workload::Set => vec![checker::check_set(ops)],
        Workload::Sequential => vec![checker::check_sequential(ops)],
        Workload::Lock => vec![checker::check_locks(ops)],
        Workload::Sessions => vec![checker::check_sessions(ops)],
        Workload::Watch => vec![checker::check_watches(ops), checker::check_zk_reads(ops)],
    }
}

/// One line for a run, for soak summaries and logs.
pub fn summary_line(result: &RunResult) -> String {
    let verdicts: Vec<String> = result
        .checkers
        .iter()
        .map(|c| format!("{}={:?}", c.checker, c.verdict))
        .collect();
    format!(
        "{:<10} {:<9} seed {:<6} {:?}: {} ops ({} ok, {} fail, {} info), {} faults; {}{}",
        result.workload,
        result.nemesis,
        result.seed,
        result.verdict,
        result.ops,
        result.ok,
        result.fail,
        result.info,
        result.faults.len(),
        verdicts.join(" "),
        if result.harness_errors.is_empty() {
            String::new()
        } else {
            format!("; harness: {}", result.harness_errors.join(" | "))
        }
    )
}
