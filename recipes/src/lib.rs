//! `zoo-recipes`: coordination recipes on the public `zoo-client` API, for
//! Zoo and Apache ZooKeeper alike.
//!
//! | recipe | what it gives |
//! |---|---|
//! | [`Lock`] | exclusive and read/write locks, kazoo-compatible, with fencing tokens |
//! | [`Semaphore`] | at most N lease holders |
//! | [`LeaderElection`] | one leader, lost on suspension as well as expiry |
//! | [`Barrier`], [`DoubleBarrier`] | hold until lowered; start and finish together |
//! | [`Counter`] | a compare-and-set counter, kazoo- or Curator-encoded |
//! | [`Queue`] | a FIFO of sequential nodes (read its caveats) |
//! | [`TreeCache`] | a watch-maintained local copy of a subtree |
//! | [`kafka`] | Kafka's ZooKeeper metadata layout with controller-epoch fencing |
//!
//! Every recipe rides out connection losses by retrying what is safe to
//! repeat and finding its own sequential nodes again by a unique prefix.
//! What depends on a session (locks, leases, leadership, membership) is
//! reported lost as soon as the connection drops, since from then on the
//! session may expire without this client knowing.

mod barrier;
mod cache;
mod counter;
mod election;
mod error;
pub mod kafka;
mod lock;
mod queue;
mod semaphore;
mod support;

pub use barrier::{Barrier, DoubleBarrier};
pub use cache::{CacheEvent, CachedNode, TreeCache, MAX_CACHED_NODES};
pub use counter::{Counter, Encoding, Versioned, MAX_CONFLICTS};
pub use election::{LeaderElection, Leadership};
pub use error::{Error, Result};
pub use lock::{Lock, LockGuard, LockKind, Loss};
pub use queue::Queue;
pub use semaphore::{Lease, Semaphore};
