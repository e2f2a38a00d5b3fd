//! The two storage threads beside the core.
//!
//! The log writer does group commit: it takes every transaction that queued
//! while its previous sync ran, writes them as one batch with one sync, and
//! then tells the core the highest durable zxid. The core answers nothing
//! that depends on a transaction before that report.
//!
//! The snapshotter writes snapshots from O(1) clones of the tree, so that the
//! core goes on applying writes meanwhile, and purges old snapshots and log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{error, info, warn};

use super::{purge, write_snapshot, Epochs, SnapshotSource, Storage, StorageError};
use crate::failpoint;
use crate::txn::Txn;

/// At most this many transactions go in one batch.
const MAX_BATCH: usize = 4096;

/// The longest a batch waits for more transactions (see [`Gather`]).
const MAX_LINGER: Duration = Duration::from_millis(1);

/// One storage operation, as ZAB orders them.
#[derive(Debug)]
pub enum LogOp {
    Append(Vec<Arc<Txn>>),
    /// Remove every log entry above the zxid (ZAB's TRUNC).
    TruncateAfter(i64),
    /// Store a snapshot received from the leader, then empty the log.
    InstallSnapshot(SnapshotSource),
    SetEpochs(Epochs),
}

/// What the log writer reports to the core.
#[derive(Debug)]
pub enum LogEvent {
    /// Every operation submitted up to this number is durable.
    Persisted(u64),
    /// Storage could not be written; nothing after the last `Persisted` is.
    Failed(StorageError),
}

/// Handle on the log writer thread. Submissions are bounded by the core,
/// which admits at most `maxOutstandingRequests` unanswered requests and
/// stops reading peers while storage is behind.
#[derive(Debug)]
pub struct LogWriter {
    tx: Option<mpsc::Sender<(u64, LogOp)>>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// `test_delay` (`testOnly.logDelayMs`, zero on a real server) is
    /// waited before every write, as a slow disk would.
    pub fn start(
        storage: Arc<dyn Storage>,
        events: UnboundedSender<LogEvent>,
        test_delay: Duration,
    ) -> LogWriter {
        let (tx, rx) = mpsc::channel::<(u64, LogOp)>();
        let thread = std::thread::Builder::new()
            .name("zoo-log".into())
            .spawn(move || write_loop(&*storage, rx, events, test_delay))
            .expect("spawning the log writer thread");
        LogWriter {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues operation number `op`; false if the writer has stopped.
    /// Operations are carried out in the order submitted.
    pub fn submit(&self, op: u64, what: LogOp) -> bool {
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.send((op, what)).is_ok())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has written what queued.
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Appends what `batch` holds with one sync, and empties it.
fn flush(
    storage: &dyn Storage,
    batch: &mut Vec<Arc<Txn>>,
    test_delay: Duration,
) -> Result<(), StorageError> {
    if batch.is_empty() {
        return Ok(());
    }
    if !test_delay.is_zero() {
        std::thread::sleep(test_delay);
    }
    failpoint::hit("log.before_write");
    storage.append(batch)?;
    failpoint::hit("log.after_sync");
    batch.clear();
    Ok(())
}

/// Carries out one operation other than an append.
fn execute(storage: &dyn Storage, what: LogOp) -> Result<(), StorageError> {
    match what {
        LogOp::Append(_) => unreachable!("appends are batched"),
        LogOp::TruncateAfter(zxid) => storage.truncate_after(zxid),
        LogOp::SetEpochs(epochs) => storage.set_epochs(epochs),
        LogOp::InstallSnapshot(source) => {
            // The snapshot first: a crash before the log is emptied leaves
            // entries above it that ZAB treats as this server's own history.
            write_snapshot(storage, &source)?;
            storage.truncate_after(-1)
        }
    }
}

/// When a batch may wait for more transactions before its sync.
///
/// Many clients with one write each in flight answer a large group's
/// replies all at once: the next sync would otherwise start with the one or
/// two transactions that came first, and the rest wait a whole sync more
/// (groups of 1 and of 60 in turn, at 64 writers). So a batch smaller than
/// three quarters of the previous group waits for the rest, at most as long
/// as the last sync took (and [`MAX_LINGER`]): a single writer never waits,
/// and the wait is never longer than the sync it saves. (Half the group, the
/// first threshold, left more syncs of part of a group: at 64 writers × 1,
/// three quarters measured about 5 % more writes per second and less CPU
/// per write.)
#[derive(Debug, Default)]
struct Gather {
    last_group: usize,
    last_sync: Duration,
}

impl Gather {
    /// How long a batch of `len` transactions, begun at `began`, may still
    /// wait at `now`; `None` if it should be written now.
    fn linger(&self, len: usize, began: Instant, now: Instant) -> Option<Duration> {
        if len == 0 || len * 4 >= self.last_group * 3 {
            return None;
        }
        let until = began + self.last_sync.min(MAX_LINGER);
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    fn synced(&mut self, group: usize, took: Duration) {
        if group > 0 {
            self.last_group = group;
            self.last_sync = took;
        }
    }
}

/// Group commit: every append that queued while the previous sync ran goes
/// in one batch (see [`Gather`] for when it waits for more); other
/// operations run in their place in the order.
fn write_loop(
    storage: &dyn Storage,
    rx: mpsc::Receiver<(u64, LogOp)>,
    events: UnboundedSender<LogEvent>,
    test_delay: Duration,
) {
    let mut batch: Vec<Arc<Txn>> = Vec::with_capacity(MAX_BATCH);
    let mut gather = Gather::default();
    while let Ok(first) = rx.recv() {
        let began = Instant::now();
        let mut next = Some(first);
        let mut done = 0;
        let result = (|| {
            while let Some((op, what)) = next.take() {
                match what {
                    LogOp::Append(txns) => batch.extend(txns),
                    other => {
                        flush(storage, &mut batch, test_delay)?;
                        execute(storage, other)?;
                    }
                }
                done = op;
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok().or_else(|| {
                        let wait = gather.linger(batch.len(), began, Instant::now())?;
                        rx.recv_timeout(wait).ok()
                    });
                }
            }
            let group = batch.len();
            let sync_began = Instant::now();
            flush(storage, &mut batch, test_delay)?;
            gather.synced(group, sync_began.elapsed());
            Ok(())
        })();
        match result {
            Ok(()) => {
                if events.send(LogEvent::Persisted(done)).is_err() {
                    return;
                }
            }
            Err(e) => {
                error!("the transaction log cannot be written: {e}");
                let _ = events.send(LogEvent::Failed(e));
                return;
            }
        }
    }
}

/// Handle on the snapshot thread.
#[derive(Debug)]
pub struct Snapshotter {
    tx: Option<mpsc::SyncSender<SnapshotSource>>,
    busy: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Snapshotter {
    /// `purge_every` is `autopurge.purgeInterval`; `None` disables purging.
    pub fn start(
        storage: Arc<dyn Storage>,
        retain: usize,
        purge_every: Option<Duration>,
    ) -> Snapshotter {
        let (tx, rx) = mpsc::sync_channel::<SnapshotSource>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let thread_busy = Arc::clone(&busy);
        let thread = std::thread::Builder::new()
            .name("zoo-snapshot".into())
            .spawn(move || snapshot_loop(&*storage, rx, &thread_busy, retain, purge_every))
            .expect("spawning the snapshot thread");
        Snapshotter {
            tx: Some(tx),
            busy,
            thread: Some(thread),
        }
    }

    /// Starts a snapshot unless one is being written; true if started.
    pub fn take(&self, source: SnapshotSource) -> bool {
        if self.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        match self.tx.as_ref().map(|tx| tx.try_send(source)) {
            Some(Ok(())) => true,
            _ => {
                self.busy.store(false, Ordering::Release);
                false
            }
        }
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn snapshot_loop(
    storage: &dyn Storage,
    rx: mpsc::Receiver<SnapshotSource>,
    busy: &AtomicBool,
    retain: usize,
    purge_every: Option<Duration>,
) {
    let mut next_purge = purge_every.map(|every| Instant::now() + every);
    loop {
        let wait = next_purge.map_or(Duration::from_secs(3600), |at| {
            at.saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(wait) {
            Ok(source) => {
                let started = Instant::now();
                failpoint::hit("snapshot.before_write");
                match write_snapshot(storage, &source) {
                    Ok(info) => {
                        failpoint::hit("snapshot.after_write");
                        info!(
                            zxid = format!("{:#x}", info.zxid),
                            nodes = info.nodes,
                            sessions = info.sessions,
                            bytes = info.bytes,
                            ms = started.elapsed().as_millis() as u64,
                            "snapshot written"
                        );
                    }
                    // The log still holds everything: a failed snapshot only
                    // makes the next restart longer.
                    Err(e) => warn!("snapshot at {:#x} failed: {e}", source.zxid),
                }
                drop(source);
                busy.store(false, Ordering::Release);
            }
            Err(RecvTimeoutError::Timeout) => {
                if let (Some(at), Some(every)) = (next_purge, purge_every) {
                    if Instant::now() >= at {
                        match purge(storage, retain) {
                            Ok(n) => info!(removed = n, retain, "purged old snapshots and log"),
                            Err(e) => warn!("purge failed: {e}"),
                        }
                        next_purge = Some(Instant::now() + every);
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waits_only_when_smaller_than_three_quarters_of_the_last_group_and_never_past_the_last_sync(
    ) {
        let mut gather = Gather::default();
        let now = Instant::now();
        // Nothing synced yet, and an empty batch: no wait.
        assert_eq!(gather.linger(1, now, now), None);
        assert_eq!(gather.linger(0, now, now), None);
        // One writer: groups of one never wait.
        gather.synced(1, Duration::from_micros(200));
        assert_eq!(gather.linger(1, now, now), None);
        // After a group of 60, a batch of 1 waits, at most the last sync's time.
        gather.synced(60, Duration::from_micros(200));
        let later = now + Duration::from_micros(50);
        assert_eq!(gather.linger(1, now, now), Some(Duration::from_micros(200)));
        assert_eq!(
            gather.linger(1, now, later),
            Some(Duration::from_micros(150))
        );
        // Under three quarters of the last group waits; that much or more
        // is written at once.
        assert_eq!(
            gather.linger(44, now, now),
            Some(Duration::from_micros(200))
        );
        assert_eq!(gather.linger(45, now, now), None);
        // A batch begun longer ago than the last sync took: written at once.
        assert_eq!(
            gather.linger(1, now, now + Duration::from_micros(200)),
            None
        );
        assert_eq!(
            gather.linger(1, now, now + Duration::from_micros(300)),
            None
        );
        // A slow sync does not make a batch wait longer than MAX_LINGER.
        gather.synced(60, Duration::from_secs(2));
        assert_eq!(gather.linger(1, now, now), Some(MAX_LINGER));
        // An empty group (a flush with nothing in it) leaves the figures.
        gather.synced(0, Duration::ZERO);
        assert_eq!(gather.linger(1, now, now), Some(MAX_LINGER));
    }
}
