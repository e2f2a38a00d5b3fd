//! `zoo-bench`: a load generator for Zoo and Apache ZooKeeper alike.
//!
//! Request workloads (`read`, `write`, `mixed`, `create`, `create-delete`,
//! `large-read`, `large-write`): each client is one session with
//! `--in-flight` requests outstanding; every reply is checked and counted by
//! outcome; latencies go to an HDR histogram. Two workloads have loops of
//! their own: `watch-fanout` (one writer, `--clients` watchers, in rounds;
//! `fanout.rs`) and `session-storm` (sessions opened and closed;
//! `storm.rs`). The run prints a summary, or one JSON object with `--json`,
//! and draws a progress line on standard error when that is a terminal.
//!
//! `zoo-bench chart` draws the comparison scripts' tables as a PNG
//! (`chart.rs`).

mod chart;
mod fanout;
mod progress;
mod storm;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;
use zoo_client::{Client, CreateOptions, Error};
use zoo_wire::CreateMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// getData of existing keys.
    Read,
    /// setData of existing keys.
    Write,
    /// `--read-percent` reads, the rest writes.
    Mixed,
    /// create of new persistent nodes.
    Create,
    /// create then delete of the same node.
    CreateDelete,
    /// getData of large values (`--value-size`, default 512 KiB).
    LargeRead,
    /// setData of large values (`--value-size`, default 512 KiB).
    LargeWrite,
    /// `--clients` sessions each watch one node; a writer changes it; a
    /// round ends when every watcher has its event. ops = rounds.
    WatchFanout,
    /// `--clients` loops open a session and close it. ops = sessions.
    SessionStorm,
}

impl Workload {
    /// The name on the command line, and in the JSON report.
    fn name(self) -> String {
        self.to_possible_value()
            .expect("no skipped variants")
            .get_name()
            .to_string()
    }

    fn is_large(self) -> bool {
        matches!(self, Workload::LargeRead | Workload::LargeWrite)
    }
}

/// Default value size of the large workloads: big, yet well under
/// ZooKeeper's default `jute.maxbuffer` (1 MiB - 1) with the request's
/// header and path on top.
const LARGE_VALUE_SIZE: usize = 512 * 1024;
/// Default value size of the other workloads.
const SMALL_VALUE_SIZE: usize = 100;
/// Default keys of the large workloads: 16 × 512 KiB = 8 MiB of data, which
/// the servers hold in memory (and ZooKeeper in a JVM heap).
const LARGE_KEYS: usize = 16;
/// Default keys of the other workloads.
const SMALL_KEYS: usize = 1000;

#[derive(Debug, Parser)]
#[command(
    about = "Load generator for ZooKeeper-protocol servers",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Draw a comparison table (TSV: label, Zoo, ZooKeeper, unit) as a PNG
    /// of grouped bars, the ratio labelled.
    Chart(chart::ChartArgs),
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Connect string, e.g. 127.0.0.1:2181.
    #[arg(long, default_value = "127.0.0.1:2181")]
    connect: String,
    #[arg(long, value_enum, default_value = "read")]
    workload: Workload,
    /// Sessions, one connection each (watchers for `watch-fanout`, loops
    /// for `session-storm`).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests outstanding per client (not used by `watch-fanout` and
    /// `session-storm`).
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Bytes per value [default: 100; 524288 for large-read, large-write].
    #[arg(long)]
    value_size: Option<usize>,
    /// Distinct keys [default: 1000; 16 for large-read, large-write].
    #[arg(long)]
    keys: Option<usize>,
    /// For `mixed`.
    #[arg(long, default_value_t = 90)]
    read_percent: u32,
    /// Parent node of the benchmark's keys.
    #[arg(long, default_value = "/zoo-bench")]
    root: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Create the keys, then exit without a measured run.
    #[arg(long)]
    prepare_only: bool,
}

impl BenchArgs {
    fn value_size(&self) -> usize {
        self.value_size.unwrap_or(if self.workload.is_large() {
            LARGE_VALUE_SIZE
        } else {
            SMALL_VALUE_SIZE
        })
    }

    fn keys(&self) -> usize {
        self.keys.unwrap_or(if self.workload.is_large() {
            LARGE_KEYS
        } else {
            SMALL_KEYS
        })
    }

    /// Key `i`. The large workloads have keys of their own, so that a
    /// `read` after a `large-write` (or the reverse) under the same root
    /// finds values of the size it checks for.
    fn key(&self, i: usize) -> String {
        let prefix = if self.workload.is_large() { "L" } else { "k" };
        format!("{}/{prefix}{i:07}", self.root)
    }
}

/// Outcomes of measured operations: successes, and failures by kind.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// One load task's own tally and latencies, merged into `Shared` when it
/// stops.
#[derive(Debug)]
struct Lane {
    tally: Tally,
    latency: Histogram<u64>,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            tally: Tally::default(),
            latency: new_histogram(),
        }
    }

    /// One measured operation that took `elapsed`.
    fn record<E: std::fmt::Debug>(
        &mut self,
        shared: &Shared,
        elapsed: Duration,
        result: Result<(), E>,
    ) {
        match result {
            Ok(()) => {
                self.tally.ok += 1;
                shared.completed_one();
                record_us(&mut self.latency, elapsed);
            }
            Err(e) => self.tally.error(format!("{e:?}")),
        }
    }

    fn merge_into(self, shared: &Shared) {
        shared.merge(self.tally, &self.latency);
    }
}

/// Histogram bounds: 1 µs to 60 s, three significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds")
}

fn record_us(h: &mut Histogram<u64>, elapsed: Duration) {
    // Saturates at the upper bound rather than losing the sample.
    h.saturating_record(elapsed.as_micros().max(1) as u64);
}

/// What the load tasks and the timer share. Each task keeps its own
/// histograms and tally and merges them in once, when it stops.
#[derive(Debug)]
struct Shared {
    /// Past the warmup and not yet past the measured run: record.
    measuring: AtomicBool,
    /// The run is over: finish the operation at hand and merge.
    stop: AtomicBool,
    /// Measured successes so far, for the progress line.
    completed: AtomicU64,
    results: std::sync::Mutex<Results>,
}

/// Merged results of every task.
#[derive(Debug)]
struct Results {
    tally: Tally,
    latency: Histogram<u64>,
    /// Workload-specific histograms (`watch-fanout`'s time after the
    /// write's acknowledgement), by name.
    extra: BTreeMap<&'static str, Histogram<u64>>,
    /// Workload-specific counters, by name.
    counters: BTreeMap<&'static str, u64>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            completed: AtomicU64::new(0),
            results: std::sync::Mutex::new(Results {
                tally: Tally::default(),
                latency: new_histogram(),
                extra: BTreeMap::new(),
                counters: BTreeMap::new(),
            }),
        }
    }

    fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Counts one measured success for the progress line.
    fn completed_one(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    fn merge(&self, tally: Tally, latency: &Histogram<u64>) {
        let mut r = self.results.lock().expect("not poisoned");
        r.latency.add(latency).expect("same bounds");
        r.tally.ok += tally.ok;
        for (k, v) in tally.errors {
            *r.tally.errors.entry(k).or_default() += v;
        }
    }

    fn merge_extra(&self, name: &'static str, h: &Histogram<u64>) {
        let mut r = self.results.lock().expect("not poisoned");
        r.extra
            .entry(name)
            .or_insert_with(new_histogram)
            .add(h)
            .expect("same bounds");
    }

    fn add_counter(&self, name: &'static str, n: u64) {
        *self
            .results
            .lock()
            .expect("not poisoned")
            .counters
            .entry(name)
            .or_default() += n;
    }
}

/// Creates in flight while preparing the keys.
const PREPARE_IN_FLIGHT: usize = 256;

async fn prepare(args: &BenchArgs) -> Result<(), Error> {
    let c = Client::connect(&args.connect).await?;
    let persistent = CreateOptions::new(CreateMode::Persistent);
    match c.create(&args.root, b"", persistent.clone()).await {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => return Err(e),
    }
    let keys = if args.workload == Workload::WatchFanout {
        0
    } else {
        args.keys()
    };
    let value = vec![b'v'; args.value_size()];
    // Many creates in flight on the one session: loading a million keys
    // one round trip (and one fsync) at a time would take far too long.
    // Fewer when the values are large, to bound the bytes in flight.
    let in_flight = (PREPARE_IN_FLIGHT * SMALL_VALUE_SIZE / args.value_size().max(1))
        .clamp(1, PREPARE_IN_FLIGHT);
    let mut creates = futures::stream::iter(0..keys)
        .map(|i| {
            let (c, value, persistent) = (&c, &value, persistent.clone());
            async move { c.create(&args.key(i), value, persistent).await }
        })
        .buffer_unordered(in_flight);
    while let Some(result) = creates.next().await {
        match result {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    drop(creates);
    c.close().await;
    Ok(())
}

async fn one_request(
    c: &Client,
    args: &BenchArgs,
    n: u64,
    value: &[u8],
    worker: usize,
) -> Result<(), Error> {
    let k = args.key((n as usize).wrapping_mul(2_654_435_761) % args.keys().max(1));
    let read = match args.workload {
        Workload::Read | Workload::LargeRead => true,
        Workload::Write | Workload::LargeWrite => false,
        Workload::Mixed => n % 100 < u64::from(args.read_percent),
        Workload::Create => {
            let path = format!("{}/c-{worker}-{n}", args.root);
            c.create(&path, value, CreateOptions::new(CreateMode::Persistent))
                .await?;
            return Ok(());
        }
        Workload::CreateDelete => {
            let path = format!("{}/cd-{worker}-{n}", args.root);
            c.create(&path, value, CreateOptions::new(CreateMode::Persistent))
                .await?;
            return c.delete(&path, None).await;
        }
        Workload::WatchFanout | Workload::SessionStorm => {
            unreachable!("{:?} has a loop of its own", args.workload)
        }
    };
    if read {
        let (data, _) = c.get_data(&k).await?;
        // Every value is one byte repeated: b'v' as prepared, b'w' once
        // written. Large values are checked byte by byte, so that a reply
        // assembled wrongly from several reads of the socket shows.
        let intact = !args.workload.is_large() || data.iter().all(|&b| b == b'v' || b == b'w');
        if data.len() != args.value_size() || !intact {
            return Err(Error::Protocol(format!(
                "{k}: {} bytes (intact: {intact}), expected {}",
                data.len(),
                args.value_size()
            )));
        }
    } else {
        let stat = c.set_data(&k, value, None).await?;
        if stat.data_length as usize != value.len() {
            return Err(Error::Protocol(format!(
                "{k}: stat says {} bytes, {} written",
                stat.data_length,
                value.len()
            )));
        }
    }
    Ok(())
}

/// Starts `--in-flight` request loops on each of `--clients` sessions.
async fn spawn_request_loops(
    args: &Arc<BenchArgs>,
    shared: &Arc<Shared>,
) -> Result<(Vec<JoinHandle<()>>, Vec<Client>), String> {
    let mut tasks = Vec::new();
    let mut clients = Vec::new();
    for worker in 0..args.clients {
        let client = Client::connect(&args.connect)
            .await
            .map_err(|e| format!("client {worker} cannot connect: {e}"))?;
        clients.push(client.clone());
        for lane in 0..args.in_flight {
            let (client, args, shared) = (client.clone(), Arc::clone(args), Arc::clone(shared));
            tasks.push(tokio::spawn(async move {
                let value = vec![b'w'; args.value_size()];
                let mut results = Lane::new();
                let id = worker * args.in_flight + lane;
                let mut n = id as u64 * 1_000_003;
                while !shared.stopped() {
                    let started = Instant::now();
                    let result = one_request(&client, &args, n, &value, id).await;
                    n += 1;
                    if shared.measuring() {
                        results.record(&shared, started.elapsed(), result);
                    }
                }
                results.merge_into(&shared);
            }));
        }
    }
    Ok((tasks, clients))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Chart(chart)) => match chart::draw(&chart) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zoo-bench chart: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(bench(Arc::new(cli.bench))),
    }
}

async fn bench(args: Arc<BenchArgs>) -> std::process::ExitCode {
    if args.workload != Workload::SessionStorm {
        if let Err(e) = prepare(&args).await {
            eprintln!("zoo-bench: preparing {} failed: {e}", args.root);
            return std::process::ExitCode::FAILURE;
        }
    }
    if args.prepare_only {
        return std::process::ExitCode::SUCCESS;
    }
    let shared = Arc::new(Shared::new());
    let spawned = match args.workload {
        Workload::WatchFanout => fanout::spawn(&args, &shared).await,
        Workload::SessionStorm => Ok((storm::spawn(&args, &shared), Vec::new())),
        _ => spawn_request_loops(&args, &shared).await,
    };
    let (tasks, clients) = match spawned {
        Ok(spawned) => spawned,
        Err(e) => {
            eprintln!("zoo-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let elapsed = progress::run(
        Duration::from_secs_f64(args.warmup),
        Duration::from_secs_f64(args.duration),
        &shared,
        show_progress,
    )
    .await;
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    // Closed, so that ZooKeeper does not keep them until they expire (and
    // count them against the next run).
    futures::future::join_all(clients.iter().map(|c| c.close())).await;
    report(&args, &shared, elapsed)
}

fn report(args: &BenchArgs, shared: &Shared, elapsed: f64) -> std::process::ExitCode {
    let r = shared.results.lock().expect("not poisoned");
    let (h, t) = (&r.latency, &r.tally);
    let ops_per_sec = t.ok as f64 / elapsed;
    let percentiles = |h: &Histogram<u64>| {
        serde_json::json!({
            "p50": h.value_at_quantile(0.5),
            "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        })
    };
    let errors: u64 = t.errors.values().sum();
    let (in_flight, value_size, keys) = match args.workload {
        Workload::WatchFanout | Workload::SessionStorm => (1, 0, 0),
        _ => (args.in_flight, args.value_size(), args.keys()),
    };
    if args.json {
        let mut report = serde_json::json!({
            "workload": args.workload.name(),
            "clients": args.clients,
            "in_flight": in_flight,
            "value_size": value_size,
            "keys": keys,
            "seconds": elapsed,
            "ok": t.ok,
            "errors": t.errors,
            "ops_per_sec": ops_per_sec,
            "latency_us": percentiles(h),
        });
        for (name, h) in &r.extra {
            report[*name] = percentiles(h);
        }
        for (name, n) in &r.counters {
            report[*name] = serde_json::json!(n);
        }
        // The one line of output is the report itself.
        #[allow(clippy::print_stdout)]
        {
            println!("{report}");
        }
    } else {
        let unit = match args.workload {
            Workload::WatchFanout => "rounds/s",
            Workload::SessionStorm => "sessions/s",
            _ => "ops/s",
        };
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{}: {} clients x {in_flight} in flight, {:.1} s: {ops_per_sec:.0} {unit}, {} ok, {errors} errors {:?}",
                args.workload.name(),
                args.clients,
                elapsed,
                t.ok,
                t.errors
            );
            let line = |name: &str, h: &Histogram<u64>| {
                let name = name.trim_end_matches("_us");
                println!(
                    "{name} us: p50 {} p90 {} p99 {} p99.9 {} max {}",
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.9),
                    h.value_at_quantile(0.99),
                    h.value_at_quantile(0.999),
                    h.max()
                );
            };
            line("latency", h);
            for (name, h) in &r.extra {
                line(name, h);
            }
            for (name, n) in &r.counters {
                println!("{name}: {n}");
            }
        }
    }
    if errors > 0 || t.ok == 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
