//! The set workload: every element acknowledged as added must be in the
//! final read of every server (nothing acknowledged lost), nothing may be
//! there that no one tried to add, and the servers' final reads (each after
//! a `sync`, once the cluster is quiet) must agree.

use std::collections::BTreeSet;

use super::{anomaly, divergent_replicas, CheckResult};
use crate::history::{Call, Op, Outcome, Ret};

pub fn check_set(history: &[Op]) -> CheckResult {
    let mut ok = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    let mut adder = std::collections::HashMap::new();
    for op in history {
        if let Call::Add { element } = op.call {
            adder.insert(element, op.id);
            if op.outcome != Outcome::Fail {
                attempted.insert(element);
            }
            if op.outcome == Outcome::Ok {
                ok.insert(element);
            }
        }
    }
    let finals: Vec<(&Op, BTreeSet<u64>)> = history
        .iter()
        .filter_map(|op| match (&op.call, op.outcome, &op.ret) {
            (Call::ReadSet, Outcome::Ok, Some(Ret::Elements { elements })) => {
                Some((op, elements.iter().copied().collect()))
            }
            _ => None,
        })
        .collect();
    let mut anomalies = Vec::new();
    for (read, seen) in &finals {
        let lost: Vec<u64> = ok.difference(seen).copied().collect();
        if !lost.is_empty() {
            let mut ops: Vec<u64> = lost.iter().filter_map(|e| adder.get(e).copied()).collect();
            ops.push(read.id);
            anomalies.push(anomaly(
                "lost-write",
                format!(
                    "server {} lacks {} acknowledged elements: {:?}",
                    read.node + 1,
                    lost.len(),
                    &lost[..lost.len().min(20)]
                ),
                ops,
            ));
        }
        let unexpected: Vec<u64> = seen.difference(&attempted).copied().collect();
        if !unexpected.is_empty() {
            anomalies.push(anomaly(
                "unexpected-element",
                format!(
                    "server {} holds elements no successful or indeterminate add made: {:?}",
                    read.node + 1,
                    &unexpected[..unexpected.len().min(20)]
                ),
                vec![read.id],
            ));
        }
    }
    anomalies.extend(divergent_replicas(&finals, BTreeSet::len, "elements"));
    let recovered = finals
        .first()
        .map_or(0, |(_, seen)| seen.difference(&ok).count());
    let unknown = if finals.is_empty() {
        Some("no final read".to_string())
    } else if ok.is_empty() {
        Some("no add was acknowledged".to_string())
    } else {
        None
    };
    CheckResult::from_anomalies(
        "set",
        anomalies,
        unknown,
        format!(
            "{} adds acknowledged, {} indeterminate ones present, {} final reads",
            ok.len(),
            recovered,
            finals.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_history::H;
    use crate::checker::Verdict;

    fn add(h: &mut H, element: u64, outcome: Outcome) {
        h.op(
            1,
            element * 10,
            element * 10 + 5,
            outcome,
            Call::Add { element },
            None,
        );
    }

    fn final_read(h: &mut H, node: usize, elements: &[u64]) {
        let id = h.op(
            0,
            1000,
            1001,
            Outcome::Ok,
            Call::ReadSet,
            Some(Ret::Elements {
                elements: elements.to_vec(),
            }),
        );
        h.ops[id as usize].node = node;
    }

    #[test]
    fn every_acknowledged_element_present_passes() {
        let mut h = H::default();
        add(&mut h, 1, Outcome::Ok);
        add(&mut h, 2, Outcome::Info);
        add(&mut h, 3, Outcome::Info);
        add(&mut h, 4, Outcome::Fail);
        final_read(&mut h, 0, &[1, 2]);
        final_read(&mut h, 1, &[1, 2]);
        let r = check_set(&h.ops);
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
    }

    #[test]
    fn a_lost_write_is_flagged() {
        let mut h = H::default();
        add(&mut h, 1, Outcome::Ok);
        add(&mut h, 2, Outcome::Ok);
        final_read(&mut h, 0, &[1]);
        let r = check_set(&h.ops);
        assert_eq!(r.kinds(), ["lost-write"], "{r:?}");
        assert_eq!(r.anomalies[0].ops, [1, 2]);
    }

    #[test]
    fn divergent_replicas_and_failed_adds_that_appear_are_flagged() {
        let mut h = H::default();
        add(&mut h, 1, Outcome::Ok);
        add(&mut h, 2, Outcome::Fail);
        final_read(&mut h, 0, &[1, 2]);
        final_read(&mut h, 1, &[1]);
        let r = check_set(&h.ops);
        let mut kinds = r.kinds();
        kinds.sort_unstable();
        assert_eq!(kinds, ["divergent-replicas", "unexpected-element"], "{r:?}");
    }

    #[test]
    fn without_a_final_read_the_verdict_is_unknown() {
        let mut h = H::default();
        add(&mut h, 1, Outcome::Ok);
        assert_eq!(check_set(&h.ops).verdict, Verdict::Unknown);
    }
}
