//! The history of a run: every operation a process asked for, when it was
//! invoked and when it completed (nanoseconds since the run began), and
//! how it ended: `ok` (it happened, with its result), `fail` (it certainly
//! did not happen) or `info` (indeterminate: it may have happened, e.g. a
//! write whose connection was lost). A process whose operation ends `info`
//! is retired, as in Jepsen: its session is dropped and a new process with
//! a new session takes its place, so every process is sequential.
//!
//! Saved as JSON lines, one operation a line, in invocation order.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

/// What a process asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Call {
    /// Setup: a register key created with value 0 (the initial state).
    Init {
        key: String,
    },
    Read {
        key: String,
    },
    /// `sync` on the key, then a read: the invocation time is when the
    /// sync began.
    SyncRead {
        key: String,
    },
    /// Unconditional `set_data`.
    Write {
        key: String,
        value: i64,
    },
    /// `set_data` expecting `version`.
    Cas {
        key: String,
        version: i32,
        value: i64,
    },
    /// Set: create the element's own node.
    Add {
        element: u64,
    },
    /// Set: the elements one server holds, after a sync.
    ReadSet,
    /// Sequential: `create -s` with `tag` as its data.
    CreateSeq {
        tag: String,
    },
    /// Sequential: every sequential node one server holds, after a sync.
    ReadSeq,
    /// Sessions: a new session.
    OpenSession,
    /// Sessions: an ephemeral node of the process's session.
    CreateEphemeral {
        path: String,
    },
    /// Sessions: the session reads its own ephemeral back.
    CheckEphemeral {
        path: String,
    },
    /// Sessions: the session ends by `close` or by being abandoned (its
    /// connection dropped, so that it expires).
    EndSession {
        how: String,
    },
    /// Sessions: the ephemerals one server holds, after a sync, once every
    /// session has ended.
    ReadEphemerals,
    /// Watch: `get_data` with a watch; the reply's Stat says from which
    /// change on the watch counts.
    WatchRead {
        key: String,
    },
    /// Watch: waiting for the event of registration `registration` (an op
    /// id); invoked when that read completed. `fail` when the wait ran out
    /// with the session connected throughout, `info` when it was not.
    WatchEvent {
        key: String,
        registration: u64,
    },
    /// Lock: acquire `lock`; the reply carries the fencing token.
    Acquire {
        lock: String,
    },
    /// Lock: release the hold that `token` names. `ok` when the lock node
    /// was still there to delete (held throughout), `fail` when it was
    /// gone (the hold was lost), `info` when unknown.
    Release {
        lock: String,
        token: i64,
    },
}

impl Call {
    /// Whether the call may change the state (so an indeterminate end
    /// leaves it unknown).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Call::Init { .. }
                | Call::Write { .. }
                | Call::Cas { .. }
                | Call::Add { .. }
                | Call::CreateSeq { .. }
                | Call::OpenSession
                | Call::CreateEphemeral { .. }
                | Call::EndSession { .. }
                | Call::Acquire { .. }
                | Call::Release { .. }
        )
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Call::Init { key }
            | Call::Read { key }
            | Call::SyncRead { key }
            | Call::Write { key, .. }
            | Call::Cas { key, .. }
            | Call::WatchRead { key }
            | Call::WatchEvent { key, .. } => Some(key),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Call::Init { .. } => "init",
            Call::Read { .. } => "read",
            Call::SyncRead { .. } => "sync-read",
            Call::Write { .. } => "write",
            Call::Cas { .. } => "cas",
            Call::Add { .. } => "add",
            Call::ReadSet => "read-set",
            Call::CreateSeq { .. } => "create-seq",
            Call::ReadSeq => "read-seq",
            Call::OpenSession => "open-session",
            Call::CreateEphemeral { .. } => "create-ephemeral",
            Call::CheckEphemeral { .. } => "check-ephemeral",
            Call::EndSession { .. } => "end-session",
            Call::ReadEphemerals => "read-ephemerals",
            Call::WatchRead { .. } => "watch-read",
            Call::WatchEvent { .. } => "watch-event",
            Call::Acquire { .. } => "acquire",
            Call::Release { .. } => "release",
        }
    }
}

/// What came back from an `ok` operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Ret {
    /// A register's value with the Stat fields the checkers use.
    Value {
        value: i64,
        version: i32,
        mzxid: i64,
    },
    /// A write's new Stat.
    Written { version: i32, mzxid: i64 },
    /// A created node's actual name and the zxid that created it.
    Created { path: String, czxid: i64 },
    /// Set elements.
    Elements { elements: Vec<u64> },
    /// Sequential nodes: (name, data) pairs.
    Named { nodes: Vec<(String, String)> },
    /// A node's presence and its ephemeral owner.
    Node { exists: bool, owner: i64 },
    /// Ephemerals one server holds: (path, owner session).
    Ephemerals { nodes: Vec<(String, i64)> },
    /// A new session's id.
    Session { id: i64 },
    /// A watch event's type, and the mzxid a read of the key right after
    /// the event saw (it must be past the change that fired it).
    Event { event: String, mzxid: i64 },
    /// A lock hold's fencing token (the lock node's czxid).
    Fenced { token: i64 },
    /// Nothing to report.
    Done,
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub process: u64,
    /// The session the process used (0 before it had one).
    pub session: i64,
    /// The server the process talks to.
    pub node: usize,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub outcome: Outcome,
    #[serde(flatten)]
    pub call: Call,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ret: Option<Ret>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl Op {
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Collects operations from every process; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    started: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    ops: Vec<Op>,
    next_id: u64,
    next_process: u64,
}

/// An operation invoked and not yet completed.
#[derive(Debug)]
pub struct Invoked {
    id: u64,
    process: u64,
    session: i64,
    node: usize,
    invoke_ns: u64,
    call: Call,
}

impl Invoked {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn invoke_ns(&self) -> u64 {
        self.invoke_ns
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    pub fn new(started: Instant) -> Recorder {
        Recorder {
            inner: Arc::new(Mutex::new(Inner {
                next_process: 1,
                ..Inner::default()
            })),
            started,
        }
    }

    /// Nanoseconds since the run began.
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// A number for a new process.
    pub fn new_process(&self) -> u64 {
        let mut inner = lock(&self.inner);
        inner.next_process += 1;
        inner.next_process - 1
    }

    pub fn invoke(&self, process: u64, session: i64, node: usize, call: Call) -> Invoked {
        let invoke_ns = self.now_ns();
        let mut inner = lock(&self.inner);
        inner.next_id += 1;
        Invoked {
            id: inner.next_id - 1,
            process,
            session,
            node,
            invoke_ns,
            call,
        }
    }

    /// Completes an operation; returns its id.
    pub fn complete(
        &self,
        invoked: Invoked,
        outcome: Outcome,
        ret: Option<Ret>,
        error: Option<String>,
    ) -> u64 {
        self.complete_at(invoked, self.now_ns(), outcome, ret, error)
    }

    pub fn complete_at(
        &self,
        invoked: Invoked,
        complete_ns: u64,
        outcome: Outcome,
        ret: Option<Ret>,
        error: Option<String>,
    ) -> u64 {
        let op = Op {
            id: invoked.id,
            process: invoked.process,
            session: invoked.session,
            node: invoked.node,
            invoke_ns: invoked.invoke_ns,
            complete_ns,
            outcome,
            call: invoked.call,
            ret,
            error,
        };
        lock(&self.inner).ops.push(op);
        invoked.id
    }

    /// Every completed operation, in invocation order.
    pub fn history(&self) -> Vec<Op> {
        let mut ops = lock(&self.inner).ops.clone();
        ops.sort_by_key(|o| (o.invoke_ns, o.id));
        ops
    }

    /// Completed operations so far, by outcome: (ok, fail, info).
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = lock(&self.inner);
        let count = |o: Outcome| inner.ops.iter().filter(|op| op.outcome == o).count();
        (
            count(Outcome::Ok),
            count(Outcome::Fail),
            count(Outcome::Info),
        )
    }
}

/// Writes a history as JSON lines.
pub fn save(path: &Path, ops: &[Op]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut out, op)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads a history written by `save`.
pub fn load(path: &Path) -> std::io::Result<Vec<Op>> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut ops = Vec::new();
    for line in file.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        ops.push(serde_json::from_str(&line).map_err(std::io::Error::other)?);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_json_lines() {
        let recorder = Recorder::new(Instant::now());
        let p = recorder.new_process();
        let a = recorder.invoke(
            p,
            7,
            1,
            Call::Cas {
                key: "/k".into(),
                version: 3,
                value: 9,
            },
        );
        recorder.complete(
            a,
            Outcome::Ok,
            Some(Ret::Written {
                version: 4,
                mzxid: 0x1_0000_0005,
            }),
            None,
        );
        let b = recorder.invoke(p, 7, 1, Call::ReadSet);
        recorder.complete(b, Outcome::Info, None, Some("connection lost".into()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        save(&path, &recorder.history()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""f":"cas""#), "{text}");
        assert!(text.contains(r#""outcome":"info""#), "{text}");
        assert_eq!(load(&path).unwrap(), recorder.history());
    }
}
