//! `watch-fanout`: how long one change takes to reach many watchers.
//!
//! `--clients` watcher sessions and one writer session share one node,
//! `<root>/fanout`, whose data is the number of the last round written. A
//! round: every watcher reads the node with a one-shot data watch (and must
//! read that number); the writer sets the round's number; the
//! round ends when every watcher has its `NodeDataChanged` event. Its
//! latency runs from sending the write until the last watcher has the
//! event (`latency_us`); `after_ack_us` is the part of that after the
//! writer's acknowledgement (0 when every event came first). ops = rounds.
//!
//! Checked: each watcher gets exactly one event per round. One that has
//! none within `ROUND_TIMEOUT` is a miss; one whose watch fires before the
//! write (a duplicate of an earlier round's event, or an event no write
//! caused) is a spurious event; either is an error, and the round does not
//! count.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Future, FutureExt};
use tokio::task::JoinHandle;
use zoo_client::{Client, CreateOptions, Error, WatchedEvent};
use zoo_wire::{CreateMode, EventType};

use crate::{new_histogram, record_us, BenchArgs, Shared, Tally};

/// How long a round waits for its events: far beyond any healthy fan-out
/// (milliseconds), yet short enough that a lost event ends the run soon.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

type Pending = Pin<Box<dyn Future<Output = zoo_client::Result<WatchedEvent>> + Send>>;

/// Connects the watchers and the writer and starts the rounds; returns the
/// task and the sessions to close at the end.
pub async fn spawn(
    args: &Arc<BenchArgs>,
    shared: &Arc<Shared>,
) -> Result<(Vec<JoinHandle<()>>, Vec<Client>), String> {
    let node = format!("{}/fanout", args.root);
    let writer = Client::connect(&args.connect)
        .await
        .map_err(|e| format!("the writer cannot connect: {e}"))?;
    match writer
        .create(&node, b"0", CreateOptions::new(CreateMode::Persistent))
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => return Err(format!("creating {node}: {e}")),
    }
    // Round 1 expects to read round 0's number, whatever an earlier run
    // left there.
    writer
        .set_data(&node, b"0", None)
        .await
        .map_err(|e| format!("resetting {node}: {e}"))?;
    let mut watchers = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        watchers.push(
            Client::connect(&args.connect)
                .await
                .map_err(|e| format!("watcher {i} cannot connect: {e}"))?,
        );
    }
    let mut sessions = watchers.clone();
    sessions.push(writer.clone());
    let shared = Arc::clone(shared);
    let task = tokio::spawn(async move { rounds(&writer, &watchers, &node, &shared).await });
    Ok((vec![task], sessions))
}

async fn rounds(writer: &Client, watchers: &[Client], node: &str, shared: &Shared) {
    let mut tally = Tally::default();
    let mut latency = new_histogram();
    let mut after_ack = new_histogram();
    let mut events = 0u64;
    let mut round = 0u64;
    // The node's data as last written and acknowledged.
    let mut last_written = 0u64;
    while !shared.stopped() {
        round += 1;
        let outcome = one_round(writer, watchers, node, last_written, round).await;
        if outcome.written {
            last_written = round;
        }
        if !shared.measuring() {
            continue;
        }
        events += outcome.events;
        if outcome.errors.is_empty() {
            tally.ok += 1;
            shared.completed_one();
            record_us(&mut latency, outcome.latency);
            record_us(&mut after_ack, outcome.after_ack);
        }
        for e in outcome.errors {
            tally.error(e);
        }
    }
    shared.merge(tally, &latency);
    shared.merge_extra("after_ack_us", &after_ack);
    shared.add_counter("events", events);
}

/// What one round found.
struct Round {
    /// Events received as expected.
    events: u64,
    /// From sending the write until the last watcher had its event.
    latency: Duration,
    /// The part of `latency` after the write's acknowledgement.
    after_ack: Duration,
    /// One entry per problem (per watcher, for misses), by kind: these are
    /// the keys of the report's `errors`, so they carry no details.
    errors: Vec<String>,
    /// The write was acknowledged.
    written: bool,
}

async fn one_round(
    writer: &Client,
    watchers: &[Client],
    node: &str,
    last_written: u64,
    round: u64,
) -> Round {
    let mut errors = Vec::new();
    // Arm: every watcher reads the node and sets a one-shot watch.
    let expected = last_written.to_string();
    let armed =
        futures::future::join_all(watchers.iter().map(|w| w.get_data_and_watch(node))).await;
    let mut pending: Vec<Pending> = Vec::with_capacity(watchers.len());
    for result in armed {
        match result {
            Ok((data, _, watcher)) => {
                if data != expected.as_bytes() {
                    errors.push("stale read before the round".to_string());
                }
                pending.push(Box::pin(watcher.changed()));
            }
            Err(e) => errors.push(format!("arming: {e:?}")),
        }
    }
    // Nothing has changed the node since it was read: a watch that has
    // fired already got an event too many.
    pending.retain_mut(|w| match w.now_or_never() {
        None => true,
        Some(_) => {
            errors.push("spurious event before the write".to_string());
            false
        }
    });
    let sent = Instant::now();
    if let Err(e) = writer
        .set_data(node, round.to_string().as_bytes(), None)
        .await
    {
        // No event to wait for (or one that may come, if the write took
        // effect after all: the next round then reads a value it does not
        // expect, and says so).
        errors.push(format!("write: {e:?}"));
        return Round {
            events: 0,
            latency: Duration::ZERO,
            after_ack: Duration::ZERO,
            errors,
            written: false,
        };
    }
    let acked = Instant::now();
    let deadline = tokio::time::Instant::from_std(sent + ROUND_TIMEOUT);
    let arrivals = futures::future::join_all(pending.into_iter().map(|w| async move {
        let event = tokio::time::timeout_at(deadline, w).await;
        (event, Instant::now())
    }))
    .await;
    let mut events = 0;
    let mut last = sent;
    for (event, at) in arrivals {
        match event {
            Ok(Ok(e)) if e.event_type == EventType::NodeDataChanged && e.path == node => {
                events += 1;
                last = last.max(at);
            }
            Ok(Ok(e)) => errors.push(format!("unexpected event {:?}", e.event_type)),
            Ok(Err(e)) => errors.push(format!("watcher: {e:?}")),
            Err(_) => errors.push("missed event".to_string()),
        }
    }
    Round {
        events,
        latency: last - sent,
        after_ack: last.saturating_duration_since(acked),
        errors,
        written: true,
    }
}
