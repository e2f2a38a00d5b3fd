//! Checkers: each reads a history and gives a verdict with the anomalies
//! it found. `Valid` means "looked and found nothing"; `Unknown` means the
//! checker could not decide (a search gave up, or the run had too little in
//! it to judge); `Invalid` names anomalies, each with the operations that
//! show it. Harness failures (a cluster that would not start, a final read
//! that could not be made) are reported by the runner apart from these.

mod linear;
mod lock;
mod reads;
mod sequential;
mod session;
mod set;
mod watch;

use serde::Serialize;

pub use linear::{check_register_linearizable, LinearOptions};
pub use lock::check_locks;
pub use reads::check_zk_reads;
pub use sequential::check_sequential;
pub use session::check_sessions;
pub use set::check_set;
pub use watch::check_watches;

/// A checker's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

/// One thing that should not have happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// A short name: `lost-write`, `stale-sync-read`, `missed-watch`, …
    pub kind: String,
    pub detail: String,
    /// Ids of the operations that show it.
    pub ops: Vec<u64>,
}

/// Anomalies kept in a result; beyond this only their count is kept.
pub const MAX_ANOMALIES_KEPT: usize = 50;

/// What one checker concluded.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub checker: String,
    pub verdict: Verdict,
    pub summary: String,
    pub anomaly_count: usize,
    pub anomalies: Vec<Anomaly>,
}

impl CheckResult {
    /// Invalid if there are anomalies, else `Unknown` with `unknown` as the
    /// reason if given, else valid.
    pub fn from_anomalies(
        checker: &str,
        mut anomalies: Vec<Anomaly>,
        unknown: Option<String>,
        summary: String,
    ) -> CheckResult {
        let anomaly_count = anomalies.len();
        anomalies.truncate(MAX_ANOMALIES_KEPT);
        let (verdict, summary) = if anomaly_count > 0 {
            let mut kinds: Vec<&str> = anomalies.iter().map(|a| a.kind.as_str()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            (
                Verdict::Invalid,
                format!(
                    "{anomaly_count} anomalies ({}); {summary}",
                    kinds.join(", ")
                ),
            )
        } else if let Some(why) = unknown {
            (Verdict::Unknown, format!("{why}; {summary}"))
        } else {
            (Verdict::Valid, summary)
        };
        CheckResult {
            checker: checker.to_string(),
            verdict,
            summary,
            anomaly_count,
            anomalies,
        }
    }

    pub fn kinds(&self) -> Vec<&str> {
        self.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }
}

/// The verdict of several checkers together: invalid beats unknown beats
/// valid.
pub fn combine(results: &[CheckResult]) -> Verdict {
    if results.iter().any(|r| r.verdict == Verdict::Invalid) {
        Verdict::Invalid
    } else if results.iter().any(|r| r.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Valid
    }
}

fn anomaly(kind: &str, detail: String, ops: Vec<u64>) -> Anomaly {
    Anomaly {
        kind: kind.to_string(),
        detail,
        ops,
    }
}

/// `divergent-replicas` for every two consecutive final reads (each a
/// server's view after a sync) that differ; `what` names the contents.
fn divergent_replicas<T: PartialEq>(
    finals: &[(&crate::history::Op, T)],
    size: impl Fn(&T) -> usize,
    what: &str,
) -> Vec<Anomaly> {
    finals
        .windows(2)
        .filter(|pair| pair[0].1 != pair[1].1)
        .map(|pair| {
            let (a, b) = (&pair[0], &pair[1]);
            anomaly(
                "divergent-replicas",
                format!(
                    "after sync, server {} holds {} {what} and server {} holds {}",
                    a.0.node + 1,
                    size(&a.1),
                    b.0.node + 1,
                    size(&b.1)
                ),
                vec![a.0.id, b.0.id],
            )
        })
        .collect()
}

/// The sequence number at the end of a sequential node's name.
pub(crate) fn sequence_of(name: &str) -> Option<i64> {
    let digits = name.get(name.len().checked_sub(10)?..)?;
    digits.parse().ok()
}

#[cfg(test)]
pub(crate) mod test_history {
    //! Hand-written histories for the checkers' tests.
    use crate::history::{Call, Op, Outcome, Ret};

    /// Builds ops with ids in the order they are added.
    #[derive(Default)]
    pub struct H {
        pub ops: Vec<Op>,
    }

    impl H {
        #[allow(clippy::too_many_arguments)]
        pub fn op(
            &mut self,
            process: u64,
            invoke: u64,
            complete: u64,
            outcome: Outcome,
            call: Call,
            ret: Option<Ret>,
        ) -> u64 {
            let id = self.ops.len() as u64;
            self.ops.push(Op {
                id,
                process,
                session: process as i64 + 100,
                node: 0,
                invoke_ns: invoke,
                complete_ns: complete,
                outcome,
                call,
                ret,
                error: match outcome {
                    Outcome::Ok => None,
                    Outcome::Fail => Some("bad version".into()),
                    Outcome::Info => Some("connection lost".into()),
                },
            });
            id
        }

        pub fn init(&mut self, key: &str, zxid: i64) {
            self.op(
                0,
                0,
                1,
                Outcome::Ok,
                Call::Init { key: key.into() },
                Some(Ret::Written {
                    version: 0,
                    mzxid: zxid,
                }),
            );
        }

        pub fn write(
            &mut self,
            p: u64,
            t: (u64, u64),
            key: &str,
            value: i64,
            ret: Option<(i32, i64)>,
        ) -> u64 {
            let outcome = if ret.is_some() {
                Outcome::Ok
            } else {
                Outcome::Info
            };
            self.op(
                p,
                t.0,
                t.1,
                outcome,
                Call::Write {
                    key: key.into(),
                    value,
                },
                ret.map(|(version, mzxid)| Ret::Written { version, mzxid }),
            )
        }

        pub fn read(
            &mut self,
            p: u64,
            t: (u64, u64),
            key: &str,
            value: i64,
            version: i32,
            mzxid: i64,
        ) -> u64 {
            self.read_as(
                p,
                t,
                Call::Read { key: key.into() },
                (value, version, mzxid),
            )
        }

        pub fn sync_read(
            &mut self,
            p: u64,
            t: (u64, u64),
            key: &str,
            value: i64,
            version: i32,
            mzxid: i64,
        ) -> u64 {
            self.read_as(
                p,
                t,
                Call::SyncRead { key: key.into() },
                (value, version, mzxid),
            )
        }

        /// A successful read of (value, version, mzxid), as `call`.
        fn read_as(
            &mut self,
            p: u64,
            t: (u64, u64),
            call: Call,
            (value, version, mzxid): (i64, i32, i64),
        ) -> u64 {
            self.op(
                p,
                t.0,
                t.1,
                Outcome::Ok,
                call,
                Some(Ret::Value {
                    value,
                    version,
                    mzxid,
                }),
            )
        }
    }
}
