//! Barriers: a single barrier that holds everyone until it is removed, and
//! a double barrier that lets a fixed number of members start together and
//! finish together (ZooKeeper's recipes document).

use std::time::Duration;

use tokio::time::Instant;
use zoo_client::{Client, CreateOptions};
use zoo_wire::CreateMode;

use crate::error::{Error, Result};
use crate::support::{delete_owned, ensure_path, retry, MAX_ATTEMPTS};

/// Holds clients in `wait` while its node exists.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::Barrier;
///
/// let barrier = Barrier::new(&client, "/barriers/deploy");
/// barrier.set().await?;        // the coordinator raises it
/// // ... workers call barrier.wait(None).await? ...
/// barrier.remove().await?;     // and lowers it: every waiter goes on
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    pub fn new(client: &Client, path: &str) -> Barrier {
        Barrier {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    /// Raises the barrier (a persistent node; raising it twice is fine).
    pub async fn set(&self) -> Result<()> {
        if let Some(parent) = parent(&self.path) {
            ensure_path(&self.client, parent).await?;
        }
        let options = CreateOptions::new(CreateMode::Persistent);
        match retry(&self.client, || {
            self.client.create(&self.path, b"", options.clone())
        })
        .await
        {
            Ok(_) | Err(Error::Client(zoo_client::Error::NodeExists)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lowers the barrier.
    pub async fn remove(&self) -> Result<()> {
        delete_owned(&self.client, &self.path).await
    }

    /// Waits until the barrier is down (at most `timeout`, if given).
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let (stat, watcher) =
                retry(&self.client, || self.client.exists_and_watch(&self.path)).await?;
            if stat.is_none() {
                return Ok(());
            }
            until(deadline, watcher.changed()).await??;
        }
    }
}

/// Lets `members` clients start together (`enter` returns once all have
/// entered) and finish together (`leave` returns once all have left).
///
/// Each member is an ephemeral `<dir>/<identifier>`; the last to enter
/// creates `<dir>/ready`, which every member watched before joining, so none
/// misses it. Leaving follows the recipe: the lowest member waits for the
/// highest to go, everyone else leaves and waits for the lowest, so each
/// departure wakes at most one member. Use a fresh directory per round.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::DoubleBarrier;
///
/// let barrier = DoubleBarrier::new(&client, "/barriers/round-7", 3, "worker-a");
/// barrier.enter(None).await?;  // all three are in
/// // ... compute ...
/// barrier.leave(None).await?;  // all three are done
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    client: Client,
    dir: String,
    members: usize,
    identifier: String,
}

const READY: &str = "ready";

impl DoubleBarrier {
    pub fn new(client: &Client, dir: &str, members: usize, identifier: &str) -> DoubleBarrier {
        assert!(members > 0, "a double barrier needs members");
        assert!(
            identifier != READY && !identifier.is_empty() && !identifier.contains('/'),
            "a member's identifier is one path component other than {READY:?}"
        );
        DoubleBarrier {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
            members,
            identifier: identifier.to_string(),
        }
    }

    fn own(&self) -> String {
        format!("{}/{}", self.dir, self.identifier)
    }

    /// Joins and waits until all members have joined.
    pub async fn enter(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        ensure_path(&self.client, &self.dir).await?;
        let ready = format!("{}/{READY}", self.dir);
        let (ready_stat, watcher) =
            retry(&self.client, || self.client.exists_and_watch(&ready)).await?;
        let own = self.own();
        let options = CreateOptions::new(CreateMode::Ephemeral);
        match retry(&self.client, || {
            self.client.create(&own, b"", options.clone())
        })
        .await
        {
            Ok(_) => {}
            // Ours, from a create whose reply was lost; or another member
            // with our identifier, which the caller must not do.
            Err(Error::Client(zoo_client::Error::NodeExists)) => {
                let stat = retry(&self.client, || self.client.exists(&own)).await?;
                if stat.map(|s| s.ephemeral_owner) != Some(self.client.session_id()) {
                    return Err(zoo_client::Error::NodeExists.into());
                }
            }
            Err(e) => return Err(e),
        }
        if ready_stat.is_some() {
            return Ok(());
        }
        let joined = self.present().await?;
        if joined.len() >= self.members {
            let options = CreateOptions::new(CreateMode::Persistent);
            match retry(&self.client, || {
                self.client.create(&ready, b"", options.clone())
            })
            .await
            {
                Ok(_) | Err(Error::Client(zoo_client::Error::NodeExists)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        until(deadline, watcher.changed()).await??;
        Ok(())
    }

    /// Leaves and waits until all members have left.
    pub async fn leave(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let own = self.own();
        // Everyone entered, so nobody waits for `ready` any more.
        delete_owned(&self.client, &format!("{}/{READY}", self.dir)).await?;
        // Each pass ends with a departure of some member; bounded by how many
        // there can be, plus retries of a watch that fired for nothing.
        for _ in 0..(self.members as u32 + MAX_ATTEMPTS) {
            let mut present = self.present().await?;
            present.sort();
            let is_present = present.contains(&self.identifier);
            if present.is_empty() {
                return Ok(());
            }
            if present.len() == 1 && is_present {
                return delete_owned(&self.client, &own).await;
            }
            let lowest = &present[0];
            let highest = &present[present.len() - 1];
            let watched = if *lowest == self.identifier {
                highest.clone()
            } else {
                if is_present {
                    delete_owned(&self.client, &own).await?;
                }
                lowest.clone()
            };
            let path = format!("{}/{watched}", self.dir);
            let (stat, watcher) =
                retry(&self.client, || self.client.exists_and_watch(&path)).await?;
            if stat.is_some() {
                until(deadline, watcher.changed()).await??;
            }
        }
        Err(Error::Timeout)
    }

    /// The members now in the barrier.
    async fn present(&self) -> Result<Vec<String>> {
        let children = retry(&self.client, || self.client.get_children(&self.dir)).await?;
        Ok(children.into_iter().filter(|c| c != READY).collect())
    }
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// Awaits `future`, until `deadline` if there is one.
async fn until<T>(
    deadline: Option<Instant>,
    future: impl std::future::Future<Output = T>,
) -> Result<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| Error::Timeout),
        None => Ok(future.await),
    }
}
