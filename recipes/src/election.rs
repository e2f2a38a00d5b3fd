//! Leader election: the candidates line up as contenders of an exclusive
//! lock (kazoo's `Election` does the same, so kazoo and Zoo candidates can
//! share an election); the first in line leads.
//!
//! Guarantees and limits:
//! - At most one candidate whose session is alive holds leadership.
//! - Leadership is lost, and `Leadership::lost` resolves, as soon as the
//!   leader's connection drops (suspension), not only when its session
//!   expires: the server hands leadership on only after expiry, so a leader
//!   that stops on suspension stops before a successor can start
//!   (CURATOR-460 is what happens otherwise). `Leadership::lead` runs work
//!   and drops it at that moment.
//! - A leader paused longer than its session can still act afterwards: make
//!   its writes conditional with `Leadership::check_op`, or pass
//!   `Leadership::fencing_token` to what it controls.

use std::future::Future;

use zoo_client::{Client, Op};

use crate::error::Result;
use crate::lock::{Lock, LockGuard, Loss};

/// The candidates for leadership under one directory.
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::LeaderElection;
///
/// let election = LeaderElection::new(&client, "/election/scheduler").identifier("node-a");
/// let leadership = election.campaign().await?;
/// // Runs until the work ends or leadership is lost, whichever is first.
/// let outcome = leadership.lead(async { /* schedule jobs */ }).await;
/// if let Err(loss) = outcome {
///     eprintln!("no longer leader: {loss:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LeaderElection {
    lock: Lock,
}

impl LeaderElection {
    pub fn new(client: &Client, dir: &str) -> LeaderElection {
        LeaderElection {
            lock: Lock::new(client, dir),
        }
    }

    /// The name this candidate goes by in `candidates` and `leader`.
    pub fn identifier(self, identifier: &str) -> LeaderElection {
        LeaderElection {
            lock: self.lock.identifier(identifier),
        }
    }

    /// Joins the election and waits until this candidate leads. Dropping the
    /// future withdraws the candidacy.
    pub async fn campaign(&self) -> Result<Leadership> {
        Ok(Leadership {
            guard: self.lock.acquire().await?,
        })
    }

    /// Leads now if nobody else does, without waiting in line.
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        Ok(self
            .lock
            .try_acquire()
            .await?
            .map(|guard| Leadership { guard }))
    }

    /// The identifiers of the candidates, the leader first.
    pub async fn candidates(&self) -> Result<Vec<String>> {
        self.lock.contenders().await
    }

    /// The current leader's identifier.
    pub async fn leader(&self) -> Result<Option<String>> {
        Ok(self.candidates().await?.into_iter().next())
    }
}

/// Held while this candidate leads.
#[derive(Debug)]
pub struct Leadership {
    guard: LockGuard,
}

impl Leadership {
    /// Grows with every new leader of this election (the leader node's czxid).
    pub fn fencing_token(&self) -> i64 {
        self.guard.fencing_token()
    }

    /// A multi op that fails unless this candidate still leads.
    pub fn check_op(&self) -> Op {
        self.guard.check_op()
    }

    /// Resolves when leadership can no longer be trusted (see the module
    /// notes: suspension counts).
    pub async fn lost(&self) -> Loss {
        self.guard.lost().await
    }

    /// Runs `work` while leading: its result, or the loss that cut it short
    /// (the work future is dropped at that moment).
    pub async fn lead<T>(&self, work: impl Future<Output = T>) -> std::result::Result<T, Loss> {
        tokio::select! {
            biased;
            loss = self.lost() => Err(loss),
            done = work => Ok(done),
        }
    }

    /// Steps down: the next candidate in line takes over.
    pub async fn resign(self) -> Result<()> {
        self.guard.release().await
    }
}
