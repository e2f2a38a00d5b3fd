//! What every recipe shares: making a path exist, riding out a lost
//! connection, and creating a sequential node whose name can be found again
//! when the reply to its create was lost.

use std::future::Future;
use std::time::Duration;

use zoo_client::{Client, CreateOptions, SessionState};
use zoo_wire::{CreateMode, Stat};

use crate::error::{Error, Result};

/// How many times one operation is retried after connection losses before
/// the recipe gives up with `ConnectionLoss`: enough to ride out a leader
/// election or two, few enough that a broken ensemble is reported.
pub(crate) const MAX_ATTEMPTS: u32 = 32;

/// The longest path `ensure_path` walks: ZooKeeper paths have no depth
/// limit, but a recipe's directory is a handful of levels.
const MAX_DEPTH: usize = 64;

/// Waits until the client is connected again, to a read-write server.
/// Gives up with `ConnectionLoss` after one session timeout without one (by
/// then the session has most likely expired, which the client will
/// report), and with the session's end if it ended.
pub(crate) async fn reconnected(client: &Client) -> Result<()> {
    let mut states = client.state_changes();
    let patience = client.session_timeout().max(Duration::from_secs(1));
    let wait = async {
        loop {
            let state = *states.borrow_and_update();
            match state {
                SessionState::Connected => return Ok(()),
                SessionState::Expired => return Err(zoo_client::Error::SessionExpired.into()),
                SessionState::AuthFailed => return Err(zoo_client::Error::AuthFailed.into()),
                SessionState::Closed => return Err(zoo_client::Error::Closed.into()),
                // Recipes write, and a read-only server takes no writes: wait
                // for the client to move to a read-write server.
                SessionState::Connecting
                | SessionState::Disconnected
                | SessionState::ConnectedReadOnly => {}
            }
            if states.changed().await.is_err() {
                return Err(zoo_client::Error::Closed.into());
            }
        }
    };
    tokio::time::timeout(patience, wait)
        .await
        .unwrap_or(Err(zoo_client::Error::ConnectionLoss.into()))
}

/// Runs an operation that is safe to repeat, again after each connection
/// loss (once the client is connected again), at most `MAX_ATTEMPTS` times.
pub(crate) async fn retry<T, F, Fut>(client: &Client, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zoo_client::Result<T>>,
{
    for _ in 0..MAX_ATTEMPTS {
        match op().await {
            Err(e) if e.is_retryable() => reconnected(client).await?,
            other => return other.map_err(Error::from),
        }
    }
    Err(zoo_client::Error::ConnectionLoss.into())
}

/// Creates `path` and its missing ancestors as empty persistent nodes.
pub(crate) async fn ensure_path(client: &Client, path: &str) -> Result<()> {
    let mut end = 0;
    for _ in 0..MAX_DEPTH {
        end = match path[end + 1..].find('/') {
            Some(i) => end + 1 + i,
            None => path.len(),
        };
        let prefix = &path[..end];
        if client.exists(prefix).await.ok().flatten().is_none() {
            let created = retry(client, || {
                client.create(prefix, b"", CreateOptions::new(CreateMode::Persistent))
            })
            .await;
            match created {
                Ok(_) | Err(Error::Client(zoo_client::Error::NodeExists)) => {}
                Err(e) => return Err(e),
            }
        }
        if end == path.len() {
            return Ok(());
        }
    }
    Err(zoo_client::Error::InvalidPath(format!("{path} is deeper than {MAX_DEPTH} levels")).into())
}

/// A random 32-hex-digit prefix, like kazoo's `uuid4().hex`: it lets a
/// contender find its own sequential node after a create whose reply was
/// lost (ZOOKEEPER-1262).
pub(crate) fn unique_prefix() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Width of ZooKeeper's sequence suffix: `%010d` of the parent's cversion
/// (`0000000042`, or `-000000005` after the counter wrapped).
const SEQUENCE_WIDTH: usize = 10;

/// The sequence number of `name` if the name ends in one of `markers`
/// followed by it: kazoo's contender pattern for its locks.
pub(crate) fn sequence_after(name: &str, markers: &[&str]) -> Option<i32> {
    let at = name.len().checked_sub(SEQUENCE_WIDTH)?;
    let head = name.get(..at)?;
    markers
        .iter()
        .any(|m| head.ends_with(m))
        .then(|| sequence_number(name))
        .flatten()
}

/// The sequence number a sequential node's name ends with.
pub(crate) fn sequence_number(name: &str) -> Option<i32> {
    let at = name.len().checked_sub(SEQUENCE_WIDTH)?;
    let suffix = name.get(at..)?;
    let digits = suffix.strip_prefix('-').unwrap_or(suffix);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    suffix.parse().ok()
}

/// The name of `dir`'s child that starts with `prefix`, if there is one.
pub(crate) async fn find_child(client: &Client, dir: &str, prefix: &str) -> Result<Option<String>> {
    let children = retry(client, || client.get_children(dir)).await?;
    Ok(children.into_iter().find(|c| c.starts_with(prefix)))
}

/// Creates the sequential node `dir/<name>` (name starts with a unique
/// prefix) and returns its name and Stat. After a connection loss it looks
/// for the node before creating another, so exactly one exists; a missing
/// `dir` is created.
pub(crate) async fn create_protected(
    client: &Client,
    dir: &str,
    prefix: &str,
    name: &str,
    data: &[u8],
    mode: CreateMode,
) -> Result<(String, Stat)> {
    debug_assert!(name.starts_with(prefix));
    let full = format!("{dir}/{name}");
    let mut maybe_created = false;
    for _ in 0..MAX_ATTEMPTS {
        if maybe_created {
            if let Some(found) = find_child(client, dir, prefix).await? {
                let child = format!("{dir}/{found}");
                if let Some(stat) = retry(client, || client.exists(&child)).await? {
                    return Ok((found, stat));
                }
            }
        }
        match client.create(&full, data, CreateOptions::new(mode)).await {
            Ok((path, stat)) => return Ok((path[dir.len() + 1..].to_string(), stat)),
            Err(zoo_client::Error::NoNode) => ensure_path(client, dir).await?,
            Err(e) if e.is_retryable() => {
                maybe_created = true;
                reconnected(client).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(zoo_client::Error::ConnectionLoss.into())
}

/// Deletes a node the recipe owns, riding out connection losses; a node
/// already gone is fine.
pub(crate) async fn delete_owned(client: &Client, path: &str) -> Result<()> {
    match retry(client, || client.delete(path, None)).await {
        Ok(()) | Err(Error::Client(zoo_client::Error::NoNode)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes, in the background, the node `dir/<prefix>…` a dropped recipe
/// value leaves behind (a cancelled lock wait, a dropped guard). Without a
/// runtime, or when the session ends first, the node goes with the session.
pub(crate) fn delete_in_background(
    client: &Client,
    dir: String,
    prefix: String,
    name: Option<String>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let client = client.clone();
    runtime.spawn(async move {
        let name = match name {
            Some(name) => Some(name),
            None => find_child(&client, &dir, &prefix).await.ok().flatten(),
        };
        if let Some(name) = name {
            let _ = delete_owned(&client, &format!("{dir}/{name}")).await;
        }
    });
}

/// The data of `dir`'s children `names`, in that order, as text (the
/// identifiers contenders store); a child gone meanwhile is skipped.
pub(crate) async fn read_identifiers(
    client: &Client,
    dir: &str,
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<String>> {
    let mut identifiers = Vec::new();
    for name in names {
        let path = format!("{dir}/{name}");
        match retry(client, || client.get_data(&path)).await {
            Ok((data, _)) => identifiers.push(String::from_utf8_lossy(&data).into_owned()),
            Err(Error::Client(zoo_client::Error::NoNode)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(identifiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contender_names_follow_kazoo_pattern() {
        let markers = ["__lock__"];
        assert_eq!(sequence_after("0f3a__lock__0000000007", &markers), Some(7));
        assert_eq!(sequence_after("x__lock__-000000005", &markers), Some(-5));
        assert_eq!(sequence_after("x__rlock__0000000007", &markers), None);
        assert_eq!(sequence_after("lease_holder", &markers), None);
        assert_eq!(sequence_after("__lock__000000007", &markers), None);
        assert_eq!(sequence_after("x__lock__00000000x7", &markers), None);
        assert_eq!(
            sequence_after("x__rlock__0000000003", &["__lock__", "__rlock__"]),
            Some(3)
        );
    }

    #[test]
    fn sequence_numbers_parse_with_sign() {
        assert_eq!(sequence_number("n-0000000042"), Some(42));
        assert_eq!(sequence_number("n-000000005"), Some(-5));
        assert_eq!(sequence_number("n-+000000005"), None);
        assert_eq!(sequence_number("short"), None);
        assert_eq!(sequence_number("ü-000000005"), Some(-5));
    }

    #[test]
    fn prefixes_are_unique_hex() {
        let a = unique_prefix();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, unique_prefix());
    }
}
