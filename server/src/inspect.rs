//! `zoo-server inspect`: what a data directory holds, in the spirit of
//! ZooKeeper's TxnLogToolkit and SnapshotFormatter. It opens the database
//! read-only, so it works beside a running server.
//!
//! ```text
//! zoo-server inspect DATADIR                 summary: snapshots, log range, epochs
//! zoo-server inspect DATADIR log [FROM [N]]  N transactions after zxid FROM
//! zoo-server inspect DATADIR snapshot [ZXID] the nodes and sessions of a snapshot
//! ```

use std::fmt::Write as _;
use std::path::Path;

use crate::storage::{read_snapshot, RocksStorage, Storage, StorageError};
use crate::txn::{Txn, TxnOp};

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspect {
    Summary,
    Log { after: i64, count: usize },
    Snapshot { zxid: Option<i64> },
}

impl Inspect {
    /// Parses the words after the data directory.
    pub fn parse(args: &[String]) -> Result<Inspect, String> {
        let number = |s: &str| -> Result<i64, String> {
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => i64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.map_err(|_| format!("{s:?} is not a zxid or count"))
        };
        match args {
            [] => Ok(Inspect::Summary),
            [cmd, rest @ ..] if cmd == "log" => {
                let after = rest.first().map(|s| number(s)).transpose()?.unwrap_or(0);
                let count = rest.get(1).map(|s| number(s)).transpose()?.unwrap_or(100);
                if rest.len() > 2 || count < 0 {
                    return Err("usage: log [FROM [COUNT]]".into());
                }
                Ok(Inspect::Log {
                    after,
                    count: count as usize,
                })
            }
            [cmd, rest @ ..] if cmd == "snapshot" => match rest {
                [] => Ok(Inspect::Snapshot { zxid: None }),
                [z] => Ok(Inspect::Snapshot {
                    zxid: Some(number(z)?),
                }),
                _ => Err("usage: snapshot [ZXID]".into()),
            },
            [other, ..] => Err(format!("unknown inspect command {other:?}")),
        }
    }
}

/// Runs an inspection of the data directory `data_dir`.
pub fn inspect(data_dir: &Path, what: &Inspect) -> Result<String, StorageError> {
    let storage = RocksStorage::open_read_only(&data_dir.join("zoo-db"), None)?;
    render(&*storage, what)
}

/// The text of an inspection of any storage.
pub fn render(storage: &dyn Storage, what: &Inspect) -> Result<String, StorageError> {
    let mut out = String::new();
    match what {
        Inspect::Summary => {
            let epochs = storage.epochs()?;
            let _ = writeln!(
                out,
                "epochs: accepted {} current {}",
                epochs.accepted, epochs.current
            );
            match storage.log_range()? {
                Some((first, last)) => {
                    let _ = writeln!(out, "log: zxid {first:#x} .. {last:#x}");
                }
                None => {
                    let _ = writeln!(out, "log: empty");
                }
            }
            let snapshots = storage.snapshots()?;
            let _ = writeln!(out, "snapshots: {}", snapshots.len());
            for s in snapshots {
                let _ = writeln!(
                    out,
                    "  zxid {:#x}: {} nodes, {} sessions, {} chunks, {} bytes, written at {} ms",
                    s.zxid, s.nodes, s.sessions, s.chunks, s.bytes, s.time_ms
                );
            }
        }
        Inspect::Log { after, count } => {
            for txn in storage.read_log(*after, *count)? {
                let _ = writeln!(out, "{}", describe(&txn));
            }
        }
        Inspect::Snapshot { zxid } => {
            let snapshots = storage.snapshots()?;
            let info = match zxid {
                None => snapshots.last(),
                Some(z) => snapshots.iter().find(|s| s.zxid == *z),
            }
            .ok_or_else(|| StorageError::Io("no such snapshot".into()))?;
            let (tree, sessions) = read_snapshot(storage, info)?;
            let _ = writeln!(
                out,
                "snapshot zxid {:#x}: {} nodes, {} sessions",
                info.zxid, info.nodes, info.sessions
            );
            let mut paths: Vec<(&str, &crate::tree::Node)> = tree.paths().collect();
            paths.sort_by(|a, b| a.0.cmp(b.0));
            for (path, node) in paths {
                let st = node.stat();
                let _ = writeln!(
                    out,
                    "{path} czxid={:#x} mzxid={:#x} pzxid={:#x} version={} cversion={} aversion={} \
                     ephemeralOwner={:#x} dataLength={} numChildren={}",
                    st.czxid,
                    st.mzxid,
                    st.pzxid,
                    st.version,
                    st.cversion,
                    st.aversion,
                    node.stored().ephemeral_owner,
                    st.data_length,
                    st.num_children
                );
            }
            for s in sessions {
                let _ = writeln!(out, "session {:#x} timeout={}ms", s.id, s.timeout_ms);
            }
        }
    }
    Ok(out)
}

/// One line per transaction, like TxnLogToolkit's.
pub fn describe(txn: &Txn) -> String {
    format!(
        "zxid {:#x} time {} session {:#x} cxid {:#x} {}",
        txn.zxid,
        txn.time_ms,
        txn.session_id,
        txn.cxid,
        describe_op(&txn.op)
    )
}

fn describe_op(op: &TxnOp) -> String {
    match op {
        TxnOp::CreateSession {
            session_id,
            timeout_ms,
            ..
        } => format!("createSession {session_id:#x} timeout={timeout_ms}"),
        TxnOp::CloseSession { session_id } => format!("closeSession {session_id:#x}"),
        TxnOp::Create {
            path,
            data,
            acl,
            ephemeral_owner,
        } => format!(
            "create {path} dataLength={} acl={} owner={ephemeral_owner:#x}",
            data.as_ref().map_or(0, |d| d.len()),
            acl.len()
        ),
        TxnOp::Delete { path } => format!("delete {path}"),
        TxnOp::SetData {
            path,
            data,
            version,
        } => format!(
            "setData {path} dataLength={} version={version}",
            data.as_ref().map_or(0, |d| d.len())
        ),
        TxnOp::SetAcl { path, version, .. } => format!("setACL {path} aversion={version}"),
        TxnOp::Check { path } => format!("check {path}"),
        TxnOp::Multi(ops) => format!(
            "multi [{}]",
            ops.iter().map(describe_op).collect::<Vec<_>>().join(", ")
        ),
        TxnOp::Error(code) => format!("error {code}"),
        TxnOp::MultiError(codes) => format!(
            "multiError [{}]",
            codes
                .iter()
                .map(|c| c.as_i32().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
