//! The sequential workload: `create -s` under one parent from many sessions.
//! Acknowledged names are unique; each session's sequence numbers increase
//! in its own order; sequence numbers increase in the order of the creating
//! zxids; and, after the run, every server holds each acknowledged node
//! under its name with its data, holds each tag (the data, unique per
//! attempt) at most once (a create applied twice would show it twice), and
//! holds no tag that no create carried.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{anomaly, divergent_replicas, sequence_of, CheckResult};
use crate::history::{Call, Op, Outcome, Ret};

/// An acknowledged create: (op, tag, name, sequence number, czxid).
type Created<'a> = (&'a Op, &'a str, &'a str, i64, i64);

pub fn check_sequential(history: &[Op]) -> CheckResult {
    let mut anomalies = Vec::new();
    let mut ok: Vec<Created> = Vec::new();
    let mut attempted: HashMap<&str, u64> = HashMap::new();
    for op in history {
        let Call::CreateSeq { tag } = &op.call else {
            continue;
        };
        if op.outcome != Outcome::Fail {
            attempted.insert(tag, op.id);
        }
        if let (Outcome::Ok, Some(Ret::Created { path, czxid })) = (op.outcome, &op.ret) {
            match sequence_of(path) {
                Some(seq) => ok.push((op, tag, path, seq, *czxid)),
                None => anomalies.push(anomaly(
                    "bad-name",
                    format!("create -s returned {path}, without a 10-digit sequence number"),
                    vec![op.id],
                )),
            }
        }
    }
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    for (op, _, path, _, _) in &ok {
        if let Some(other) = by_name.insert(path, op.id) {
            anomalies.push(anomaly(
                "duplicate-name",
                format!("two creates were both given {path}"),
                vec![other, op.id],
            ));
        }
    }
    let mut by_process: BTreeMap<u64, Vec<&Created>> = BTreeMap::new();
    for entry in &ok {
        by_process.entry(entry.0.process).or_default().push(entry);
    }
    for entries in by_process.values() {
        for w in entries.windows(2) {
            if w[1].3 <= w[0].3 {
                anomalies.push(anomaly(
                    "session-order",
                    format!(
                        "process {} created {} and then {}",
                        w[0].0.process, w[0].2, w[1].2
                    ),
                    vec![w[0].0.id, w[1].0.id],
                ));
            }
        }
    }
    let mut by_zxid: Vec<&(&Op, &str, &str, i64, i64)> = ok.iter().collect();
    by_zxid.sort_by_key(|e| e.4);
    for w in by_zxid.windows(2) {
        if w[1].3 <= w[0].3 {
            anomalies.push(anomaly(
                "zxid-order",
                format!(
                    "{} (zxid {:#x}) has a sequence number not above {} (zxid {:#x})",
                    w[1].2, w[1].4, w[0].2, w[0].4
                ),
                vec![w[0].0.id, w[1].0.id],
            ));
        }
    }
    let finals: Vec<(&Op, &Vec<(String, String)>)> = history
        .iter()
        .filter_map(|op| match (&op.call, op.outcome, &op.ret) {
            (Call::ReadSeq, Outcome::Ok, Some(Ret::Named { nodes })) => Some((op, nodes)),
            _ => None,
        })
        .collect();
    for (read, nodes) in &finals {
        let held: HashMap<&str, &str> = nodes
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_str()))
            .collect();
        for (op, tag, path, _, _) in &ok {
            let name = path.rsplit('/').next().unwrap_or(path);
            match held.get(name) {
                None => anomalies.push(anomaly(
                    "lost-write",
                    format!("server {} lacks acknowledged {path}", read.node + 1),
                    vec![op.id, read.id],
                )),
                Some(data) if data != tag => anomalies.push(anomaly(
                    "wrong-data",
                    format!(
                        "server {} holds {path} with {data:?}, created with {tag:?}",
                        read.node + 1
                    ),
                    vec![op.id, read.id],
                )),
                Some(_) => {}
            }
        }
        let mut tags = HashSet::new();
        for (name, data) in nodes.iter() {
            if !tags.insert(data.as_str()) {
                anomalies.push(anomaly(
                    "applied-twice",
                    format!(
                        "server {} holds tag {data:?} twice (one at {name})",
                        read.node + 1
                    ),
                    vec![read.id],
                ));
            }
            if !attempted.contains_key(data.as_str()) {
                anomalies.push(anomaly(
                    "unexpected-node",
                    format!(
                        "server {} holds {name} = {data:?}, which no create carried",
                        read.node + 1
                    ),
                    vec![read.id],
                ));
            }
        }
    }
    anomalies.extend(divergent_replicas(
        &finals,
        |nodes| nodes.len(),
        "sequential nodes",
    ));
    let unknown = if finals.is_empty() {
        Some("no final read".to_string())
    } else if ok.is_empty() {
        Some("no create was acknowledged".to_string())
    } else {
        None
    };
    CheckResult::from_anomalies(
        "sequential",
        anomalies,
        unknown,
        format!(
            "{} creates acknowledged, {} final reads",
            ok.len(),
            finals.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_history::H;
    use crate::checker::Verdict;

    fn create(h: &mut H, p: u64, t: u64, tag: &str, seq: i64, zxid: i64) {
        h.op(
            p,
            t,
            t + 5,
            Outcome::Ok,
            Call::CreateSeq { tag: tag.into() },
            Some(Ret::Created {
                path: format!("/seq/s-{seq:010}"),
                czxid: zxid,
            }),
        );
    }

    fn final_read(h: &mut H, nodes: &[(i64, &str)]) {
        h.op(
            0,
            1000,
            1001,
            Outcome::Ok,
            Call::ReadSeq,
            Some(Ret::Named {
                nodes: nodes
                    .iter()
                    .map(|(s, d)| (format!("s-{s:010}"), d.to_string()))
                    .collect(),
            }),
        );
    }

    #[test]
    fn increasing_unique_durable_names_pass() {
        let mut h = H::default();
        create(&mut h, 1, 10, "a", 0, 5);
        create(&mut h, 2, 12, "b", 1, 6);
        create(&mut h, 1, 20, "c", 3, 8);
        final_read(&mut h, &[(0, "a"), (1, "b"), (3, "c")]);
        let r = check_sequential(&h.ops);
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
    }

    #[test]
    fn reused_reordered_and_lost_names_are_flagged() {
        let mut h = H::default();
        create(&mut h, 1, 10, "a", 4, 5);
        create(&mut h, 2, 12, "b", 4, 6);
        create(&mut h, 1, 20, "c", 2, 8);
        final_read(&mut h, &[(4, "a"), (4, "b"), (9, "zz")]);
        let r = check_sequential(&h.ops);
        let mut kinds = r.kinds();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(
            kinds,
            [
                "duplicate-name",
                "lost-write",
                "session-order",
                "unexpected-node",
                "wrong-data",
                "zxid-order"
            ],
            "{r:?}"
        );
    }
}
