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
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::info;

pub use config::Config;
use storage::{LogWriter, RocksStorage, Snapshotter, StorageError};

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

/// Recovers the data directory, then serves clients on `listener` until
/// `shutdown` resolves. Fails if the data cannot be recovered (the message
/// names what is damaged) or if the log cannot be written while serving.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StorageError> {
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
            zxid = format!("{:#x}", recovered.tree.last_zxid()),
            nodes = recovered.tree.node_count(),
            sessions = recovered.sessions.len(),
            replayed = recovered.replayed,
            ms = started.elapsed().as_millis() as u64,
            "data directory recovered"
        );
        Ok::<_, StorageError>((storage, recovered))
    })
    .await
    .map_err(|e| StorageError::Io(format!("recovery panicked: {e}")))??;
    let (log_tx, log_rx) = mpsc::unbounded_channel();
    let log = LogWriter::start(storage.clone(), log_tx);
    let purge_every = (config.purge_interval_hours > 0)
        .then(|| Duration::from_secs(u64::from(config.purge_interval_hours) * 3600));
    let snapshots = Snapshotter::start(storage, config.snap_retain_count, purge_every);
    let (events_tx, events_rx) = mpsc::channel(config.max_outstanding_requests);
    let core = core::Core::new(Arc::clone(&config), recovered, log, snapshots);
    let mut core_task = tokio::spawn(core.run(events_rx, log_rx));
    tokio::select! {
        () = net::serve(listener, config, events_tx, shutdown) => {
            core_task.abort();
            Ok(())
        }
        result = &mut core_task => match result {
            Ok(result) => result,
            Err(e) => Err(StorageError::Io(format!("the core stopped: {e}"))),
        },
    }
}
