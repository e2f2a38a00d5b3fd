//! `zoo-jepsen`: runs workloads against real Zoo clusters under faults and
//! checks what the clients saw.
//!
//! ```text
//! zoo-jepsen test --workload register --nemesis partition --nodes 5 --time-limit 60 --seed 7
//! zoo-jepsen soak --runs 20 --workload all --nemesis mixed --time-limit 60
//! zoo-jepsen check --workload register runs/register-partition-n5-seed7/history.jsonl
//! ```
//!
//! Each run leaves a directory with `history.jsonl`, `results.json`,
//! `timeline.html`, `latency.png` and `throughput.png`. The exit status is
//! 0 when every run was valid, 1 when a checker found an anomaly, 2 when a
//! run could not be judged (harness failure or a search that gave up).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use zoo_jepsen::checker::{combine, Verdict};
use zoo_jepsen::history;
use zoo_jepsen::nemesis::Nemesis;
use zoo_jepsen::runner::{self, RunOptions};
use zoo_jepsen::workload::Workload;

#[derive(Parser, Debug)]
#[command(
    name = "zoo-jepsen",
    about = "Fault injection and history checking for Zoo clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One run.
    Test(RunArgs),
    /// Many runs with consecutive seeds; a summary line each.
    Soak {
        #[command(flatten)]
        run: RunArgs,
        /// Runs per workload.
        #[arg(long, default_value_t = 3)]
        runs: u64,
        /// Keeps the servers' data directories of valid runs too (by
        /// default only failed runs keep them: each holds hundreds of MB).
        #[arg(long)]
        keep_data: bool,
    },
    /// Checks a saved history again.
    Check {
        #[arg(long)]
        workload: String,
        history: PathBuf,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// register, set, sequential, lock, sessions, watch (or `all` for soak).
    #[arg(long, default_value = "register")]
    workload: String,
    /// none, kill, pause, partition, loss, delay, crash, clock, mixed.
    #[arg(long, default_value = "mixed")]
    nemesis: String,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Seconds of workload under faults.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent workers (0: two per server).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
    /// Where the run directories go.
    #[arg(long, default_value = "jepsen-runs")]
    out: PathBuf,
    /// The zoo-server binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Runs servers with a planted bug, to show the checkers catch it:
    /// `unsafe-local-sync` (a follower answers sync without the leader).
    #[arg(long)]
    planted_bug: Option<String>,
}

impl RunArgs {
    fn workloads(&self) -> Result<Vec<Workload>, String> {
        if self.workload == "all" {
            Ok(Workload::ALL.to_vec())
        } else {
            Ok(vec![Workload::parse(&self.workload)?])
        }
    }

    fn options(&self, workload: Workload, seed: u64) -> Result<RunOptions, String> {
        let server_bin = match &self.server_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .with_file_name("zoo-server"),
        };
        let mut options = RunOptions::new(
            workload,
            Nemesis::parse(&self.nemesis)?,
            server_bin,
            self.out.clone(),
        );
        options.nodes = self.nodes;
        options.time_limit = Duration::from_secs(self.time_limit);
        options.seed = seed;
        options.concurrency = self.concurrency;
        match self.planted_bug.as_deref() {
            None => {}
            Some("unsafe-local-sync") => {
                options.extra_config = "testOnly.unsafeLocalSync=true\n".to_string()
            }
            Some(other) => return Err(format!("unknown planted bug {other:?}")),
        }
        Ok(options)
    }
}

fn status(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Valid => 0,
        Verdict::Invalid => 1,
        Verdict::Unknown => 2,
    }
}

async fn main_async(cli: Cli) -> Result<u8, String> {
    match cli.command {
        Command::Test(args) => {
            let workloads = args.workloads()?;
            let mut worst = Verdict::Valid;
            for workload in workloads {
                let result = runner::run(&args.options(workload, args.seed)?).await?;
                eprintln!("{}", runner::summary_line(&result));
                for c in &result.checkers {
                    for a in &c.anomalies {
                        eprintln!("  {}: {} {} (ops {:?})", c.checker, a.kind, a.detail, a.ops);
                    }
                }
                eprintln!("  report: {}", result.dir.join("timeline.html").display());
                worst = worse(worst, result.verdict);
            }
            Ok(status(worst))
        }
        Command::Soak {
            run,
            runs,
            keep_data,
        } => {
            let mut worst = Verdict::Valid;
            let (mut total_ops, mut total_faults, mut anomalies, mut count) = (0, 0, 0, 0);
            for workload in run.workloads()? {
                for k in 0..runs {
                    let seed = run.seed + k;
                    let verdict = match runner::run(&run.options(workload, seed)?).await {
                        Ok(result) => {
                            eprintln!("{}", runner::summary_line(&result));
                            if result.verdict == Verdict::Valid && !keep_data {
                                let data = result.dir.join("cluster");
                                if let Err(e) = std::fs::remove_dir_all(&data) {
                                    eprintln!("  cannot remove {}: {e}", data.display());
                                }
                            }
                            total_ops += result.ops;
                            total_faults += result.faults.len();
                            anomalies += result
                                .checkers
                                .iter()
                                .map(|c| c.anomaly_count)
                                .sum::<usize>();
                            result.verdict
                        }
                        Err(e) => {
                            eprintln!("{:<10} seed {seed}: harness failure: {e}", workload.name());
                            Verdict::Unknown
                        }
                    };
                    count += 1;
                    worst = worse(worst, verdict);
                }
            }
            eprintln!(
                "soak: {count} runs, {total_ops} operations, {total_faults} faults, {anomalies} anomalies; worst verdict {worst:?}"
            );
            Ok(status(worst))
        }
        Command::Check { workload, history } => {
            let workload = Workload::parse(&workload)?;
            let ops = history::load(&history).map_err(|e| format!("{}: {e}", history.display()))?;
            let results = runner::check(workload, &ops);
            for r in &results {
                eprintln!("{}: {:?}: {}", r.checker, r.verdict, r.summary);
                for a in &r.anomalies {
                    eprintln!("  {} {} (ops {:?})", a.kind, a.detail, a.ops);
                }
            }
            Ok(status(combine(&results)))
        }
    }
}

/// The worse of two verdicts: invalid, then unknown, then valid.
fn worse(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
        (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
        _ => Verdict::Valid,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zoo-jepsen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("zoo-jepsen: {e}");
            ExitCode::from(2)
        }
    }
}
