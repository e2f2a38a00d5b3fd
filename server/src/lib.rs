//! The Zoo server: the znode tree, sessions, watches and the request
//! pipeline, serving ZooKeeper's client protocol, with its state in RocksDB.
//!
//! `run(listener, config, shutdown)` recovers the data directory, then serves
//! until `shutdown` resolves, so tests bind `127.0.0.1:0` and call it directly.

pub mod acl;
pub mod config;
pub mod core;
pub mod failpoint;
mod four_letter;
pub mod inspect;
pub mod net;
pub mod prep;
pub mod session;
pub mod stats;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::info;

pub use config::Config;
use storage::{LogWriter, RocksStorage, Snapshotter, StorageError};

/// TEST ONLY: ms added to every wall-clock reading of this process
/// (`testOnly.clockOffsetMs`).
static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// The wall clock, in ms since the Unix epoch, with the test-only offset.
/// Only times people read come from it (znode ctime and mtime, snapshot
/// times) and seeds that must differ between starts (session ids, ZAB's
/// incarnation); timeouts run on the monotonic clock.
pub fn wall_clock_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    now.saturating_add(CLOCK_OFFSET_MS.load(Ordering::Relaxed))
}

/// Where the database of a data directory lives.
pub fn database_dir(config: &Config) -> PathBuf {
    config.data_dir.join("zoo-db")
}

/// Where the write-ahead log goes when `dataLogDir` is set.
pub fn wal_dir(config: &Config) -> Option<PathBuf> {
    config.data_log_dir.as_ref().map(|d| d.join("zoo-wal"))
}

/// Opens the data directory's storage, creating it on first use.
pub fn open_storage(config: &Config) -> Result<Arc<RocksStorage>, StorageError> {
    let dir = database_dir(config);
    std::fs::create_dir_all(&dir)
        .map_err(|e| StorageError::Io(format!("creating {}: {e}", dir.display())))?;
    let wal = wal_dir(config);
    if let Some(wal) = &wal {
        std::fs::create_dir_all(wal)
            .map_err(|e| StorageError::Io(format!("creating {}: {e}", wal.display())))?;
    }
    RocksStorage::open(&dir, wal.as_deref())
}

/// This server's place in the ensemble: the `server.N` lines, or an
/// ensemble of one.
pub fn zab_config(config: &Config) -> zab::ZabConfig {
    let (id, members) = if config.peers.is_empty() {
        let id = config.server_id.max(1);
        (id, vec![zab::Member { id, voting: true }])
    } else {
        let members = config
            .peers
            .iter()
            .map(|p| zab::Member {
                id: p.id,
                voting: !p.observer,
            })
            .collect();
        (config.server_id, members)
    };
    let now_ms = wall_clock_ms().max(0) as u64;
    let per_tick = zab_ticks_per_tick(config);
    zab::ZabConfig {
        id,
        members,
        incarnation: now_ms & 0x7fff_ffff,
        init_limit_ticks: u64::from(config.init_limit) * per_tick,
        sync_limit_ticks: u64::from(config.sync_limit) * per_tick,
        // ZooKeeper's finalizeWait: 200 ms for a better vote to arrive.
        finalize_ticks: (FINALIZE_WAIT_MS / zab_tick_ms(config)).max(1),
        retained_entries: config.commit_log_count,
    }
}

/// ZAB's clock runs finer than `tickTime`, so that an election's short waits
/// do not take whole ticks; `initLimit` and `syncLimit` keep their meaning.
const ZAB_TICK_TARGET_MS: u64 = 50;

/// How long an election waits for a better vote once a quorum agrees.
const FINALIZE_WAIT_MS: u64 = 200;

fn zab_ticks_per_tick(config: &Config) -> u64 {
    (u64::from(config.tick_time_ms) / ZAB_TICK_TARGET_MS).max(1)
}

/// The period of ZAB's tick: `tickTime` divided evenly into about 50 ms.
pub fn zab_tick_ms(config: &Config) -> u64 {
    (u64::from(config.tick_time_ms) / zab_ticks_per_tick(config)).max(1)
}

/// Why a server stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory cannot be recovered or the log not written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The quorum port cannot be opened, or the ensemble is misconfigured.
    #[error("peers: {0}")]
    Peers(String),
    /// The task that runs the tree stopped on its own.
    #[error("the core stopped: {0}")]
    Core(String),
}

/// Listens on this server's quorum port and links to the other members;
/// `None` for an ensemble of one.
async fn start_peers(
    config: &Config,
) -> Result<Option<(net::peer::PeerNet, mpsc::Receiver<net::peer::Inbound>)>, ServerError> {
    if config.peers.len() <= 1 {
        return Ok(None);
    }
    let me = config
        .peers
        .iter()
        .find(|p| p.id == config.server_id)
        .ok_or_else(|| ServerError::Peers(format!("no server.{} line", config.server_id)))?;
    let address = format!("{}:{}", me.host, me.quorum_port);
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| ServerError::Peers(format!("listening on {address}: {e}")))?;
    let peers = config
        .peers
        .iter()
        .filter(|p| p.id != config.server_id)
        .map(|p| (p.id, format!("{}:{}", p.host, p.quorum_port)))
        .collect();
    let net_config = net::peer::PeerNetConfig::new(config.server_id, peers);
    let (net, rx) = net::peer::PeerNet::start(listener, net_config)
        .map_err(|e| ServerError::Peers(format!("starting the transport: {e}")))?;
    info!(%address, members = config.peers.len(), "listening for peers");
    Ok(Some((net, rx)))
}

/// Recovers the data directory, then serves clients on `listener` until
/// `shutdown` resolves. Fails if the data cannot be recovered (the message
/// names what is damaged) or if the log cannot be written while serving.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    if config.test_clock_offset_ms != 0 {
        CLOCK_OFFSET_MS.store(config.test_clock_offset_ms, Ordering::Relaxed);
    }
    let config = Arc::new(config);
    let opened = Arc::clone(&config);
    let (storage, recovered) = tokio::task::spawn_blocking(move || {
        let storage = open_storage(&opened)?;
        let started = std::time::Instant::now();
        let recovered = storage::recover(&*storage)?;
        if recovered.is_new() {
            // A data directory always holds a snapshot from its first use,
            // so that a missing snapshot is never taken for a new directory.
            storage::write_snapshot(
                &*storage,
                &storage::SnapshotSource {
                    zxid: 0,
                    nodes: recovered.tree.nodes(),
                    sessions: Vec::new(),
                },
            )?;
        }
        info!(
            snapshot = format!("{:#x}", recovered.tree.last_zxid()),
            nodes = recovered.tree.node_count(),
            sessions = recovered.sessions.len(),
            logged = recovered.log.len(),
            epochs = ?recovered.epochs,
            ms = started.elapsed().as_millis() as u64,
            "data directory recovered"
        );
        Ok::<_, StorageError>((storage, recovered))
    })
    .await
    .map_err(|e| ServerError::Core(format!("recovery panicked: {e}")))??;
    let mut recovered = recovered;
    let durable = zab::DurableState {
        epochs: recovered.epochs,
        applied: recovered.tree.last_zxid(),
        log: std::mem::take(&mut recovered.log)
            .into_iter()
            .map(|txn| zab::Entry {
                zxid: txn.zxid,
                payload: txn,
            })
            .collect(),
    };
    let zab = zab::Zab::new(zab_config(&config), durable);
    let (peers, peer_rx) = match start_peers(&config).await? {
        Some((peers, rx)) => (Some(peers), Some(rx)),
        None => (None, None),
    };
    let (log_tx, log_rx) = mpsc::unbounded_channel();
    let log = LogWriter::start(
        storage.clone(),
        log_tx,
        Duration::from_millis(config.test_log_delay_ms),
    );
    let purge_every = (config.purge_interval_hours > 0)
        .then(|| Duration::from_secs(u64::from(config.purge_interval_hours) * 3600));
    let snapshots = Snapshotter::start(storage, config.snap_retain_count, purge_every);
    let (events_tx, events_rx) = mpsc::channel(config.max_outstanding_requests);
    let core = core::Core::new(Arc::clone(&config), recovered, log, snapshots, zab, peers);
    let mut serving = core.serving_signal();
    let mut core_task = tokio::spawn(core.run(events_rx, log_rx, peer_rx));
    if config.peers.len() <= 1 {
        // An ensemble of one leads as soon as its epoch is durable: clients
        // wait in the listen backlog for that rather than being turned away.
        let up = async move { serving.wait_for(|s| *s).await.is_ok() };
        tokio::select! {
            _ = up => {}
            result = &mut core_task => return match result {
                Ok(Ok(())) => Err(ServerError::Core("before serving".into())),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(ServerError::Core(e.to_string())),
            },
        }
    }
    tokio::select! {
        () = net::serve(listener, config, events_tx, shutdown) => {
            core_task.abort();
            Ok(())
        }
        result = &mut core_task => match result {
            Ok(result) => result.map_err(ServerError::from),
            Err(e) => Err(ServerError::Core(e.to_string())),
        },
    }
}
