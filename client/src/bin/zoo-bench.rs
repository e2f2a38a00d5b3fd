//! `zoo-bench`: a load generator for Zoo and Apache ZooKeeper alike.
//!
//! Each client is one session with `--in-flight` requests outstanding; every
//! reply is checked and counted by outcome; latencies go to an HDR
//! histogram. The run prints a summary, or one JSON object with `--json`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
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
}

#[derive(Debug, Parser)]
#[command(about = "Load generator for ZooKeeper-protocol servers")]
struct Args {
    /// Connect string, e.g. 127.0.0.1:2181.
    #[arg(long, default_value = "127.0.0.1:2181")]
    connect: String,
    #[arg(long, value_enum, default_value = "read")]
    workload: Workload,
    /// Sessions, one connection each.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests outstanding per client.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
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

/// What one measured run produced.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
}

fn key(root: &str, i: usize) -> String {
    format!("{root}/k{i:07}")
}

/// Creates in flight while preparing the keys.
const PREPARE_IN_FLIGHT: usize = 256;

async fn prepare(args: &Args) -> Result<(), Error> {
    let c = Client::connect(&args.connect).await?;
    let persistent = CreateOptions::new(CreateMode::Persistent);
    match c.create(&args.root, b"", persistent.clone()).await {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => return Err(e),
    }
    let value = vec![b'v'; args.value_size];
    // Many creates in flight on the one session: loading a million keys
    // one round trip (and one fsync) at a time would take far too long.
    let mut creates = futures::stream::iter(0..args.keys)
        .map(|i| {
            let (c, value, persistent) = (&c, &value, persistent.clone());
            async move { c.create(&key(&args.root, i), value, persistent).await }
        })
        .buffer_unordered(PREPARE_IN_FLIGHT);
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
    args: &Args,
    n: u64,
    value: &[u8],
    worker: usize,
) -> Result<(), Error> {
    let k = key(
        &args.root,
        (n as usize).wrapping_mul(2_654_435_761) % args.keys.max(1),
    );
    let read = match args.workload {
        Workload::Read => true,
        Workload::Write => false,
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
    };
    if read {
        let (data, _) = c.get_data(&k).await?;
        if data.len() != args.value_size {
            return Err(Error::Protocol(format!(
                "{k}: {} bytes, expected {}",
                data.len(),
                args.value_size
            )));
        }
    } else {
        c.set_data(&k, value, None).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Arc::new(Args::parse());
    if let Err(e) = prepare(&args).await {
        eprintln!("zoo-bench: preparing {} keys failed: {e}", args.keys);
        return std::process::ExitCode::FAILURE;
    }
    if args.prepare_only {
        return std::process::ExitCode::SUCCESS;
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    ));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for worker in 0..args.clients {
        let client = match Client::connect(&args.connect).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("zoo-bench: client {worker} cannot connect: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        for lane in 0..args.in_flight {
            let (client, args) = (client.clone(), Arc::clone(&args));
            let (measuring, stop) = (Arc::clone(&measuring), Arc::clone(&stop));
            let (histogram, tally) = (Arc::clone(&histogram), Arc::clone(&tally));
            tasks.push(tokio::spawn(async move {
                let value = vec![b'w'; args.value_size];
                let mut local =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
                let mut local_tally = Tally::default();
                let mut n = (worker * args.in_flight + lane) as u64 * 1_000_003;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result =
                        one_request(&client, &args, n, &value, worker * args.in_flight + lane)
                            .await;
                    n += 1;
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            local_tally.ok += 1;
                            let _ = local.record(started.elapsed().as_micros().max(1) as u64);
                        }
                        Err(e) => *local_tally.errors.entry(format!("{e:?}")).or_default() += 1,
                    }
                }
                histogram.lock().await.add(&local).expect("same bounds");
                let mut t = tally.lock().await;
                t.ok += local_tally.ok;
                for (k, v) in local_tally.errors {
                    *t.errors.entry(k).or_default() += v;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let h = histogram.lock().await;
    let t = tally.lock().await;
    let ops_per_sec = t.ok as f64 / elapsed;
    let q = |p: f64| h.value_at_quantile(p);
    let errors: u64 = t.errors.values().sum();
    if args.json {
        let report = serde_json::json!({
            "workload": format!("{:?}", args.workload).to_lowercase(),
            "clients": args.clients,
            "in_flight": args.in_flight,
            "value_size": args.value_size,
            "seconds": elapsed,
            "ok": t.ok,
            "errors": t.errors,
            "ops_per_sec": ops_per_sec,
            "latency_us": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999), "max": h.max()},
        });
        // The one line of output is the report itself.
        #[allow(clippy::print_stdout)]
        {
            println!("{report}");
        }
    } else {
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{:?}: {} clients x {} in flight, {:.1} s: {:.0} ops/s, {} ok, {} errors {:?}",
                args.workload,
                args.clients,
                args.in_flight,
                elapsed,
                ops_per_sec,
                t.ok,
                errors,
                t.errors
            );
            println!(
                "latency us: p50 {} p90 {} p99 {} p99.9 {} max {}",
                q(0.5),
                q(0.9),
                q(0.99),
                q(0.999),
                h.max()
            );
        }
    }
    if errors > 0 || t.ok == 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
