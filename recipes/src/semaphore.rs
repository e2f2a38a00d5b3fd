//! A counting semaphore: at most `max_leases` holders at once (Curator's
//! `InterProcessSemaphoreV2` design).
//!
//! A lease is an ephemeral-sequential node under `<dir>/leases`. To take
//! one, a client first takes the exclusive lock `<dir>/locks`, adds its
//! lease, and if there are more leases than allowed waits, still under the
//! lock, for the lease children to change. So only one client at a time
//! waits on the lease directory: a release wakes one waiter, not all.
//!
//! Guarantees and limits:
//! - Every client must use the same `max_leases`: the count is not stored.
//! - A lease is as good as the session, as with `Lock` (see there);
//!   `Lease::lost` resolves on suspension.

use std::time::Duration;

use tokio::time::Instant;
use zoo_client::Client;
use zoo_wire::CreateMode;

use crate::error::{Error, Result};
use crate::lock::{watch_loss, Lock, Loss};
use crate::support::{
    create_protected, delete_in_background, delete_owned, ensure_path, read_identifiers, retry,
    unique_prefix,
};

const LEASE_MARKER: &str = "__lease__";

/// A semaphore on a directory node.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::Semaphore;
///
/// let pool = Semaphore::new(&client, "/semaphores/db", 4);
/// let lease = pool.acquire().await?; // one of at most 4
/// lease.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    leases_dir: String,
    lock: Lock,
    max_leases: usize,
    identifier: Vec<u8>,
}

impl Semaphore {
    pub fn new(client: &Client, dir: &str, max_leases: usize) -> Semaphore {
        assert!(max_leases > 0, "a semaphore needs at least one lease");
        let dir = dir.trim_end_matches('/');
        Semaphore {
            client: client.clone(),
            leases_dir: format!("{dir}/leases"),
            lock: Lock::new(client, &format!("{dir}/locks")),
            max_leases,
            identifier: Vec::new(),
        }
    }

    /// Data stored in this holder's lease, shown by `holders`.
    pub fn identifier(mut self, identifier: &str) -> Semaphore {
        self.identifier = identifier.as_bytes().to_vec();
        self
    }

    /// Waits for a lease.
    pub async fn acquire(&self) -> Result<Lease> {
        self.take(None).await
    }

    /// Waits at most `timeout`; `Error::Timeout` then.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Lease> {
        self.take(Some(Instant::now() + timeout)).await
    }

    /// The identifiers of the current lease holders.
    pub async fn holders(&self) -> Result<Vec<String>> {
        let children =
            match retry(&self.client, || self.client.get_children(&self.leases_dir)).await {
                Err(Error::Client(zoo_client::Error::NoNode)) => return Ok(Vec::new()),
                other => other?,
            };
        read_identifiers(&self.client, &self.leases_dir, children).await
    }

    async fn take(&self, deadline: Option<Instant>) -> Result<Lease> {
        let serialised = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.lock.acquire_timeout(left).await?
            }
            None => self.lock.acquire().await?,
        };
        ensure_path(&self.client, &self.leases_dir).await?;
        let prefix = unique_prefix();
        let name = format!("{prefix}{LEASE_MARKER}");
        let (name, _) = create_protected(
            &self.client,
            &self.leases_dir,
            &prefix,
            &name,
            &self.identifier,
            CreateMode::EphemeralSequential,
        )
        .await?;
        let lease = Lease {
            client: self.client.clone(),
            dir: self.leases_dir.clone(),
            prefix,
            path: format!("{}/{name}", self.leases_dir),
            name,
            armed: true,
        };
        loop {
            let (children, watcher) = retry(&self.client, || {
                self.client.get_children_and_watch(&self.leases_dir)
            })
            .await?;
            if !children.contains(&lease.name) {
                return Err(Error::NodeGone(lease.path.clone()));
            }
            if children.len() <= self.max_leases {
                break;
            }
            let changed = watcher.changed();
            match deadline {
                Some(deadline) => {
                    tokio::time::timeout_at(deadline, changed)
                        .await
                        .map_err(|_| Error::Timeout)??;
                }
                None => {
                    changed.await?;
                }
            }
        }
        serialised.release().await?;
        Ok(lease)
    }
}

/// One of a semaphore's leases. `release` it; dropping it releases it in
/// the background.
#[derive(Debug)]
pub struct Lease {
    client: Client,
    dir: String,
    prefix: String,
    name: String,
    path: String,
    armed: bool,
}

impl Lease {
    pub fn node(&self) -> &str {
        &self.path
    }

    /// Resolves when the lease can no longer be trusted.
    pub async fn lost(&self) -> Loss {
        watch_loss(&self.client, &self.path).await
    }

    pub async fn release(mut self) -> Result<()> {
        self.armed = false;
        delete_owned(&self.client, &self.path).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.armed {
            delete_in_background(
                &self.client,
                self.dir.clone(),
                self.prefix.clone(),
                Some(self.name.clone()),
            );
        }
    }
}
