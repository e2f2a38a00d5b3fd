//! A shared counter: read, then write back with the version read
//! (compare-and-set), again on a conflict.
//!
//! The value is stored as kazoo's `Counter` stores an int (decimal ASCII,
//! empty meaning the default), or as Curator's `SharedCount` does (four
//! big-endian bytes), so either of those can share the node.
//!
//! Guarantees and limits: every successful `add` is applied exactly once,
//! in some order, and returns the values just before and after it. Under
//! heavy contention an `add` can lose `MAX_CONFLICTS` races in a row and give
//! up with `Error::TooManyConflicts` (kazoo raises `BadVersionError`);
//! nothing was changed then. An `add` that fails with `ConnectionLoss` may
//! have been applied.

use zoo_client::Client;

use crate::error::{Error, Result};
use crate::support::{ensure_path, retry};

/// Races an `add` may lose before it gives up.
pub const MAX_CONFLICTS: u32 = 1000;

/// How the value is written in the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Decimal ASCII, as kazoo's `Counter` (the default).
    Text,
    /// A big-endian `i32`, as Curator's `SharedCount`.
    Curator,
}

/// A value and the node version it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versioned {
    pub value: i64,
    pub version: i32,
}

/// A counter in one node.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::Counter;
///
/// let hits = Counter::new(&client, "/counters/hits");
/// let (before, after) = hits.add(5).await?;
/// assert_eq!(after, before + 5);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Counter {
    client: Client,
    path: String,
    default: i64,
    encoding: Encoding,
}

impl Counter {
    pub fn new(client: &Client, path: &str) -> Counter {
        Counter {
            client: client.clone(),
            path: path.to_string(),
            default: 0,
            encoding: Encoding::Text,
        }
    }

    /// The value of an empty node (default 0).
    pub fn default_value(mut self, default: i64) -> Counter {
        self.default = default;
        self
    }

    pub fn encoding(mut self, encoding: Encoding) -> Counter {
        self.encoding = encoding;
        self
    }

    /// The value now, and the version to pass to `compare_and_set`.
    pub async fn get(&self) -> Result<Versioned> {
        ensure_path(&self.client, &self.path).await?;
        let (data, stat) = retry(&self.client, || self.client.get_data(&self.path)).await?;
        Ok(Versioned {
            value: self.decode(&data)?,
            version: stat.version,
        })
    }

    pub async fn value(&self) -> Result<i64> {
        Ok(self.get().await?.value)
    }

    /// Sets `value` if the counter is still at `seen`'s version; false if
    /// someone changed it since.
    pub async fn compare_and_set(&self, seen: Versioned, value: i64) -> Result<bool> {
        let data = self.encode(value)?;
        match self
            .client
            .set_data(&self.path, &data, Some(seen.version))
            .await
        {
            Ok(_) => Ok(true),
            Err(zoo_client::Error::BadVersion) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds `delta` (negative to subtract); returns the values before and
    /// after.
    pub async fn add(&self, delta: i64) -> Result<(i64, i64)> {
        for _ in 0..MAX_CONFLICTS {
            let seen = self.get().await?;
            let next = seen
                .value
                .checked_add(delta)
                .ok_or_else(|| Error::bad_data(&self.path, "the counter would overflow"))?;
            if self.compare_and_set(seen, next).await? {
                return Ok((seen.value, next));
            }
        }
        Err(Error::TooManyConflicts(MAX_CONFLICTS))
    }

    fn decode(&self, data: &[u8]) -> Result<i64> {
        if data.is_empty() {
            return Ok(self.default);
        }
        match self.encoding {
            Encoding::Text => std::str::from_utf8(data)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| Error::bad_data(&self.path, "not a decimal integer")),
            Encoding::Curator => <[u8; 4]>::try_from(data)
                .map(|b| i64::from(i32::from_be_bytes(b)))
                .map_err(|_| Error::bad_data(&self.path, "not a 4-byte integer")),
        }
    }

    fn encode(&self, value: i64) -> Result<Vec<u8>> {
        match self.encoding {
            Encoding::Text => Ok(value.to_string().into_bytes()),
            Encoding::Curator => i32::try_from(value)
                .map(|v| v.to_be_bytes().to_vec())
                .map_err(|_| Error::bad_data(&self.path, "out of range for a 4-byte counter")),
        }
    }
}
