//! A tree cache: a local copy of a subtree, kept current by one persistent
//! recursive watch (Curator's `CuratorCache` design), with change events.
//!
//! Guarantees and limits (as Curator's caches document): the copy is
//! eventually consistent, not transactional. Changes arrive in the server's
//! order, but a node changed twice quickly may be read once at its newer
//! value, and across a lost connection the cache reloads the subtree and
//! reports only the difference (a node deleted and re-created meanwhile is
//! one `Changed`). Write back with versions, never trusting the cache as
//! current.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use zoo_client::{Client, PersistentWatcher, SessionState};
use zoo_wire::{EventType, Stat};

use crate::error::{Error, Result};
use crate::support::retry;

/// The most nodes a cache holds: a cache is for configuration-sized
/// subtrees; loading more is refused rather than exhausting memory.
pub const MAX_CACHED_NODES: usize = 100_000;

/// Events kept for a subscriber that falls behind; one that falls further
/// behind is told how many it missed (`RecvError::Lagged`) and should re-read
/// the copy.
const EVENT_BUFFER: usize = 4096;

/// A cached node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNode {
    pub data: Vec<u8>,
    pub stat: Stat,
}

/// A change to the cached copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    Created(String),
    Changed(String),
    Deleted(String),
    /// The copy was reloaded after a lost connection; the changes it found
    /// were reported just before this.
    Reloaded,
    /// The session ended: the copy is no longer kept current.
    Stopped,
}

type Nodes = Arc<RwLock<BTreeMap<String, CachedNode>>>;

/// A watch-maintained copy of the subtree at `root`.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::{CacheEvent, TreeCache};
///
/// let cache = TreeCache::start(&client, "/config").await?;
/// let mut events = cache.events();
/// if let Some(node) = cache.get("/config/feature-x") {
///     println!("feature-x = {:?}", node.data);
/// }
/// while let Ok(event) = events.recv().await {
///     if let CacheEvent::Changed(path) = event {
///         println!("{path} changed: {:?}", cache.get(&path).map(|n| n.data));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TreeCache {
    root: String,
    nodes: Nodes,
    events: broadcast::Sender<CacheEvent>,
    task: JoinHandle<()>,
}

impl TreeCache {
    /// Watches `root`'s subtree, loads it, and keeps it current until
    /// dropped. `root` need not exist yet.
    pub async fn start(client: &Client, root: &str) -> Result<TreeCache> {
        let root = match root.trim_end_matches('/') {
            "" => "/".to_string(),
            trimmed => trimmed.to_string(),
        };
        // The watch comes first, so no change after the load is missed.
        let watcher = retry(client, || client.watch(&root, true)).await?;
        let nodes: Nodes = Arc::default();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let mut keeper = Keeper {
            client: client.clone(),
            root: root.clone(),
            nodes: nodes.clone(),
            events: events.clone(),
        };
        keeper.reload().await?;
        let task = tokio::spawn(keeper.run(watcher));
        Ok(TreeCache {
            root,
            nodes,
            events,
            task,
        })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The cached node at `path`.
    pub fn get(&self, path: &str) -> Option<CachedNode> {
        self.nodes.read().expect("cache lock").get(path).cloned()
    }

    /// The names of `path`'s cached children, sorted.
    pub fn children(&self, path: &str) -> Vec<String> {
        let nodes = self.nodes.read().expect("cache lock");
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, _)| {
                let rest = &p[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }

    /// Every cached node, by path.
    pub fn snapshot(&self) -> BTreeMap<String, CachedNode> {
        self.nodes.read().expect("cache lock").clone()
    }

    /// Changes from now on.
    pub fn events(&self) -> broadcast::Receiver<CacheEvent> {
        self.events.subscribe()
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        // Dropping the task's watcher removes the watch from the server.
        self.task.abort();
    }
}

/// The task that applies the watch's events to the copy.
struct Keeper {
    client: Client,
    root: String,
    nodes: Nodes,
    events: broadcast::Sender<CacheEvent>,
}

impl Keeper {
    async fn run(mut self, mut watcher: PersistentWatcher) {
        let mut states = self.client.state_changes();
        let mut suspended = false;
        loop {
            tokio::select! {
                event = watcher.next() => {
                    let Some(event) = event else { break };
                    let applied = match event.event_type {
                        EventType::NodeDeleted => {
                            self.remove_subtree(&event.path);
                            Ok(())
                        }
                        EventType::NodeCreated | EventType::NodeDataChanged => {
                            self.refresh(&event.path).await
                        }
                        _ => Ok(()),
                    };
                    if let Err(e) = applied {
                        tracing::debug!(path = %event.path, "cache refresh failed: {e}");
                        suspended = true;
                    }
                }
                changed = states.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let state = *states.borrow_and_update();
                    match state {
                        // A read-only server serves reads: the copy can follow it.
                        SessionState::Connected | SessionState::ConnectedReadOnly if suspended => {
                            suspended = false;
                            match self.reload().await {
                                Ok(()) => self.emit(CacheEvent::Reloaded),
                                Err(e) => {
                                    tracing::debug!("cache reload failed: {e}");
                                    suspended = true;
                                }
                            }
                        }
                        SessionState::Connected | SessionState::ConnectedReadOnly => {}
                        SessionState::Connecting | SessionState::Disconnected => suspended = true,
                        SessionState::Expired | SessionState::AuthFailed | SessionState::Closed => break,
                    }
                }
            }
        }
        self.emit(CacheEvent::Stopped);
    }

    fn emit(&self, event: CacheEvent) {
        // No subscriber is fine: the copy is still kept.
        let _ = self.events.send(event);
    }

    /// Re-reads one node after a create or change event.
    async fn refresh(&mut self, path: &str) -> Result<()> {
        match retry(&self.client, || self.client.get_data(path)).await {
            Ok((data, stat)) => {
                self.store(path, CachedNode { data, stat })?;
                Ok(())
            }
            Err(Error::Client(zoo_client::Error::NoNode)) => {
                self.remove_subtree(path);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn store(&mut self, path: &str, node: CachedNode) -> Result<()> {
        let mut nodes = self.nodes.write().expect("cache lock");
        let event = match nodes.get(path) {
            Some(old) if old.stat.mzxid == node.stat.mzxid && old.stat.czxid == node.stat.czxid => {
                None
            }
            Some(_) => Some(CacheEvent::Changed(path.to_string())),
            None if nodes.len() >= MAX_CACHED_NODES => {
                return Err(Error::bad_data(
                    path,
                    format!("the cache holds {MAX_CACHED_NODES} nodes already"),
                ));
            }
            None => Some(CacheEvent::Created(path.to_string())),
        };
        nodes.insert(path.to_string(), node);
        drop(nodes);
        if let Some(event) = event {
            self.emit(event);
        }
        Ok(())
    }

    fn remove_subtree(&mut self, path: &str) {
        let prefix = format!("{path}/");
        let mut nodes = self.nodes.write().expect("cache lock");
        let mut gone: Vec<String> = nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        if nodes.contains_key(path) {
            gone.insert(0, path.to_string());
        }
        for p in &gone {
            nodes.remove(p);
        }
        drop(nodes);
        // Deepest first, as the server deletes them.
        for p in gone.into_iter().rev() {
            self.emit(CacheEvent::Deleted(p));
        }
    }

    /// Loads the whole subtree and reports how it differs from the copy.
    async fn reload(&mut self) -> Result<()> {
        let mut fresh = BTreeMap::new();
        let mut pending = vec![self.root.clone()];
        while let Some(path) = pending.pop() {
            if fresh.len() >= MAX_CACHED_NODES {
                return Err(Error::bad_data(
                    &self.root,
                    format!("more than {MAX_CACHED_NODES} nodes to cache"),
                ));
            }
            let (data, stat) = match retry(&self.client, || self.client.get_data(&path)).await {
                Ok(found) => found,
                Err(Error::Client(zoo_client::Error::NoNode)) => continue,
                Err(e) => return Err(e),
            };
            let children = if stat.num_children > 0 {
                match retry(&self.client, || self.client.get_children(&path)).await {
                    Ok(children) => children,
                    Err(Error::Client(zoo_client::Error::NoNode)) => Vec::new(),
                    Err(e) => return Err(e),
                }
            } else {
                Vec::new()
            };
            for child in children {
                pending.push(if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                });
            }
            fresh.insert(path, CachedNode { data, stat });
        }
        let old = std::mem::take(&mut *self.nodes.write().expect("cache lock"));
        let mut events = Vec::new();
        for (path, node) in &fresh {
            match old.get(path) {
                None => events.push(CacheEvent::Created(path.clone())),
                Some(was) if was != node => events.push(CacheEvent::Changed(path.clone())),
                Some(_) => {}
            }
        }
        for path in old.keys().rev() {
            if !fresh.contains_key(path) {
                events.push(CacheEvent::Deleted(path.clone()));
            }
        }
        *self.nodes.write().expect("cache lock") = fresh;
        for event in events {
            self.emit(event);
        }
        Ok(())
    }
}
