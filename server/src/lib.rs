//! The Zoo server: the znode tree, sessions, watches and the request
//! pipeline, serving ZooKeeper's client protocol.
//!
//! `run(listener, config, shutdown)` serves until `shutdown` resolves, so
//! tests bind `127.0.0.1:0` and call it directly.

pub mod acl;
pub mod commit;
pub mod config;
pub mod core;
mod four_letter;
pub mod net;
pub mod prep;
pub mod session;
pub mod stats;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tree;
pub mod txn;
pub mod watch;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use config::Config;

/// Serves clients on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let config = Arc::new(config);
    let (events_tx, events_rx) = mpsc::channel(config.max_outstanding_requests);
    let core = core::Core::new(
        Arc::clone(&config),
        Box::new(commit::MemoryCommit::default()),
    );
    let core_task = tokio::spawn(core.run(events_rx));
    net::serve(listener, config, events_tx, shutdown).await;
    core_task.abort();
}
