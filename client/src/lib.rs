//! `zoo-client`: an async Rust client for Zoo and Apache ZooKeeper.
//!
//! ```no_run
//! # async fn demo() -> zoo_client::Result<()> {
//! use zoo_client::{Client, CreateOptions};
//! use zoo_wire::CreateMode;
//!
//! let client = Client::connect("127.0.0.1:2181").await?;
//! let (path, _stat) = client.create("/app", b"hello", CreateOptions::new(CreateMode::Persistent)).await?;
//! let (data, stat, watcher) = client.get_data_and_watch(&path).await?;
//! assert_eq!(data, b"hello");
//! client.set_data(&path, b"world", Some(stat.version)).await?;
//! let event = watcher.changed().await?;
//! assert_eq!(event.path, "/app");
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! Guarantees: requests of one client go on the wire, and are answered, in
//! program order; a watch event arrives before any reply that reflects the
//! change; after a lost connection the client reconnects (to the next
//! server), resumes its session and re-registers its watches; operations in
//! flight when the connection dropped fail with `Error::ConnectionLoss`,
//! which means "may have happened".
//!
//! A client built with `ClientBuilder::read_only(true)` also accepts a
//! server cut off from its quorum (ZooKeeper's read-only mode): there the
//! state is `SessionState::ConnectedReadOnly`, reads work, writes fail
//! with `Error::NotReadOnly`, and the client moves to a read-write server
//! as soon as one answers.

#![warn(missing_docs)]

mod client;
mod conn;
mod connect_string;
mod error;
mod watcher;

pub use client::{Client, ClientBuilder, CreateOptions, Op, OpOutcome, Read, ReadOutcome};
pub use connect_string::ConnectString;
pub use error::{Error, Result};
pub use watcher::{OneshotWatcher, PersistentWatcher, SessionState, WatchedEvent};
