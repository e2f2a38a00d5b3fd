//! The sessions workload: each process opens a session, creates an
//! ephemeral node, reads it back, and ends the session by `close` or by
//! abandoning it (its connection dropped, so that it expires). After the
//! run, once every session has ended and the quiet period has passed their
//! timeouts, each server lists the ephemerals it holds.
//!
//! - *lost-ephemeral*: a session read its own acknowledged ephemeral back
//!   (while the session lived) and it was missing or owned by another;
//! - *ephemeral-outlived-session*: a final read still holds an ephemeral of
//!   a session that had ended;
//! - *unexpected-ephemeral*: a final read holds a node no create made;
//! - *divergent-replicas*: two servers' final reads differ.

use std::collections::{BTreeSet, HashMap};

use super::{anomaly, divergent_replicas, CheckResult};
use crate::history::{Call, Op, Outcome, Ret};

pub fn check_sessions(history: &[Op]) -> CheckResult {
    // Every ephemeral a create may have made: path → (creating op, session,
    // acknowledged).
    let mut created: HashMap<&str, (u64, i64, bool)> = HashMap::new();
    let mut anomalies = Vec::new();
    for op in history {
        match (&op.call, op.outcome, &op.ret) {
            (Call::CreateEphemeral { path }, Outcome::Ok | Outcome::Info, _) => {
                created.insert(path.as_str(), (op.id, op.session, op.is_ok()));
            }
            (Call::CheckEphemeral { path }, Outcome::Ok, Some(Ret::Node { exists, owner })) => {
                let Some(&(create, session, acknowledged)) = created.get(path.as_str()) else {
                    continue;
                };
                if acknowledged && (!exists || *owner != session) {
                    anomalies.push(anomaly(
                        "lost-ephemeral",
                        format!(
                            "session 0x{session:x} read its ephemeral {path} back as {} \
                             (owner 0x{owner:x}) while it lived",
                            if *exists { "present" } else { "missing" }
                        ),
                        vec![create, op.id],
                    ));
                }
            }
            _ => {}
        }
    }
    let finals: Vec<(&Op, BTreeSet<(String, i64)>)> = history
        .iter()
        .filter_map(|op| match (&op.call, op.outcome, &op.ret) {
            (Call::ReadEphemerals, Outcome::Ok, Some(Ret::Ephemerals { nodes })) => {
                Some((op, nodes.iter().cloned().collect()))
            }
            _ => None,
        })
        .collect();
    // A final read begins once every session ended, so nothing of theirs
    // may remain.
    for (read, nodes) in &finals {
        for (path, owner) in nodes {
            match created.get(path.as_str()) {
                Some(&(create, _, _)) => anomalies.push(anomaly(
                    "ephemeral-outlived-session",
                    format!(
                        "server {} still holds {path} of session 0x{owner:x}, which had ended",
                        read.node + 1
                    ),
                    vec![create, read.id],
                )),
                None => anomalies.push(anomaly(
                    "unexpected-ephemeral",
                    format!(
                        "server {} holds {path} (session 0x{owner:x}), which no create made",
                        read.node + 1
                    ),
                    vec![read.id],
                )),
            }
        }
    }
    anomalies.extend(divergent_replicas(&finals, BTreeSet::len, "ephemerals"));
    let sessions = history
        .iter()
        .filter(|op| matches!(op.call, Call::OpenSession) && op.is_ok())
        .count();
    let checks = history
        .iter()
        .filter(|op| matches!(op.call, Call::CheckEphemeral { .. }) && op.is_ok())
        .count();
    let unknown = if finals.is_empty() {
        Some("no server could be read at the end".to_string())
    } else if sessions == 0 {
        Some("no session was opened".to_string())
    } else {
        None
    };
    CheckResult::from_anomalies(
        "sessions",
        anomalies,
        unknown,
        format!(
            "{sessions} sessions, {} ephemerals created, {checks} read back, {} final reads",
            created.len(),
            finals.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_history::H;
    use crate::checker::Verdict;

    fn session_life(h: &mut H, p: u64, t: u64, path: &str, seen: Option<i64>) {
        let session = p as i64 + 100;
        h.op(
            p,
            t,
            t + 1,
            Outcome::Ok,
            Call::OpenSession,
            Some(Ret::Session { id: session }),
        );
        h.op(
            p,
            t + 2,
            t + 3,
            Outcome::Ok,
            Call::CreateEphemeral { path: path.into() },
            Some(Ret::Created {
                path: path.into(),
                czxid: t as i64,
            }),
        );
        h.op(
            p,
            t + 4,
            t + 5,
            Outcome::Ok,
            Call::CheckEphemeral { path: path.into() },
            Some(Ret::Node {
                exists: seen.is_some(),
                owner: seen.unwrap_or(0),
            }),
        );
        h.op(
            p,
            t + 6,
            t + 7,
            Outcome::Ok,
            Call::EndSession {
                how: "close".into(),
            },
            Some(Ret::Done),
        );
    }

    fn final_read(h: &mut H, node: usize, nodes: Vec<(String, i64)>) {
        let id = h.op(
            0,
            1000,
            1001,
            Outcome::Ok,
            Call::ReadEphemerals,
            Some(Ret::Ephemerals { nodes }),
        );
        h.ops[id as usize].node = node;
    }

    #[test]
    fn clean_sessions_are_valid() {
        let mut h = H::default();
        session_life(&mut h, 1, 10, "/e/1", Some(101));
        session_life(&mut h, 2, 20, "/e/2", Some(102));
        final_read(&mut h, 0, vec![]);
        final_read(&mut h, 1, vec![]);
        let result = check_sessions(&h.ops);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
    }

    #[test]
    fn an_ephemeral_that_outlives_its_session_is_flagged() {
        let mut h = H::default();
        session_life(&mut h, 1, 10, "/e/1", Some(101));
        final_read(&mut h, 0, vec![]);
        final_read(&mut h, 1, vec![("/e/1".into(), 101)]);
        let result = check_sessions(&h.ops);
        assert_eq!(result.verdict, Verdict::Invalid);
        let kinds = result.kinds();
        assert!(kinds.contains(&"ephemeral-outlived-session"), "{kinds:?}");
        assert!(kinds.contains(&"divergent-replicas"), "{kinds:?}");
    }

    #[test]
    fn a_lost_or_foreign_ephemeral_is_flagged() {
        let mut h = H::default();
        session_life(&mut h, 1, 10, "/e/1", None);
        session_life(&mut h, 2, 20, "/e/2", Some(999));
        final_read(&mut h, 0, vec![("/e/ghost".into(), 5)]);
        let result = check_sessions(&h.ops);
        assert_eq!(result.verdict, Verdict::Invalid);
        assert_eq!(
            result.kinds(),
            vec!["lost-ephemeral", "lost-ephemeral", "unexpected-ephemeral"]
        );
    }

    #[test]
    fn no_final_read_is_unknown() {
        let mut h = H::default();
        session_life(&mut h, 1, 10, "/e/1", Some(101));
        assert_eq!(check_sessions(&h.ops).verdict, Verdict::Unknown);
    }
}
