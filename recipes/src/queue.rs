//! A FIFO queue of persistent sequential nodes.
//!
//! Caveats, as Curator's Tech Note 4 and kazoo's docs give them: ZooKeeper
//! is a poor queue. Every item lives in memory on every server, a node holds
//! at most `jute.maxbuffer` (1 MB), and `take` lists the whole directory, so
//! keep queues short. `take` removes the item before the caller processes
//! it: an item taken by a consumer that then crashes is lost (at-most-once
//! processing). Waiting consumers all watch the directory, so an item wakes
//! every idle consumer (one of them gets it).
//!
//! Guarantees: `put` adds an item exactly once even across connection
//! losses (its node name carries a unique prefix it looks for); each item is
//! taken by exactly one consumer, in `put` order.

use std::time::Duration;

use tokio::time::Instant;
use zoo_client::Client;
use zoo_wire::CreateMode;

use crate::error::{Error, Result};
use crate::support::{create_protected, ensure_path, retry, sequence_after, unique_prefix};

const ITEM_MARKER: &str = "__item__";

/// A queue in one directory node.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::Queue;
///
/// let jobs = Queue::new(&client, "/queues/jobs");
/// jobs.put(b"resize 42.png").await?;
/// let job = jobs.take(None).await?;
/// assert_eq!(job, b"resize 42.png");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    dir: String,
}

impl Queue {
    pub fn new(client: &Client, dir: &str) -> Queue {
        Queue {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
        }
    }

    /// Appends an item.
    pub async fn put(&self, item: &[u8]) -> Result<()> {
        let prefix = unique_prefix();
        let name = format!("{prefix}{ITEM_MARKER}");
        create_protected(
            &self.client,
            &self.dir,
            &prefix,
            &name,
            item,
            CreateMode::PersistentSequential,
        )
        .await?;
        Ok(())
    }

    /// Removes and returns the oldest item, if there is one.
    pub async fn try_take(&self) -> Result<Option<Vec<u8>>> {
        let children = match retry(&self.client, || self.client.get_children(&self.dir)).await {
            Err(Error::Client(zoo_client::Error::NoNode)) => return Ok(None),
            other => other?,
        };
        self.take_first(children).await
    }

    /// Waits for an item (at most `timeout`, if given) and removes it.
    pub async fn take(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        ensure_path(&self.client, &self.dir).await?;
        loop {
            let (children, watcher) = retry(&self.client, || {
                self.client.get_children_and_watch(&self.dir)
            })
            .await?;
            if let Some(item) = self.take_first(children).await? {
                return Ok(item);
            }
            match deadline {
                Some(deadline) => {
                    tokio::time::timeout_at(deadline, watcher.changed())
                        .await
                        .map_err(|_| Error::Timeout)??;
                }
                None => {
                    watcher.changed().await?;
                }
            }
        }
    }

    /// The number of items now.
    pub async fn len(&self) -> Result<usize> {
        match retry(&self.client, || self.client.get_children(&self.dir)).await {
            Ok(children) => Ok(children.len()),
            Err(Error::Client(zoo_client::Error::NoNode)) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Takes the oldest of `children` that no other consumer takes first.
    async fn take_first(&self, children: Vec<String>) -> Result<Option<Vec<u8>>> {
        let mut items: Vec<(i32, String)> = children
            .into_iter()
            .filter_map(|c| sequence_after(&c, &[ITEM_MARKER]).map(|seq| (seq, c)))
            .collect();
        items.sort();
        for (_, name) in items {
            let path = format!("{}/{name}", self.dir);
            let (data, stat) = match retry(&self.client, || self.client.get_data(&path)).await {
                Ok(found) => found,
                Err(Error::Client(zoo_client::Error::NoNode)) => continue,
                Err(e) => return Err(e),
            };
            // Whoever deletes the node owns the item. A delete whose reply
            // was lost fails with ConnectionLoss: the item may be gone with
            // it, the at-most-once caveat above.
            match self.client.delete(&path, Some(stat.version)).await {
                Ok(()) => return Ok(Some(data)),
                Err(zoo_client::Error::NoNode) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}
