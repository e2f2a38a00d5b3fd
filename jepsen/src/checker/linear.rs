//! Linearizability of each register key against a versioned CAS register:
//! a Wing–Gong search with Lowe's memo of (operations linearized, state), as
//! Knossos's WGL does. The state is ZooKeeper's `(data, version)`: a write
//! makes version + 1 (and its reply must say so), a CAS succeeds exactly when
//! the version matches, and a failed CAS (`BadVersion`, a definite failure)
//! is an observation that the version did not match. `ok` operations must
//! all take effect between their invocation and completion; `info` ones may
//! take effect at any time after their invocation, or never.
//!
//! ZooKeeper does not promise linearizable reads (a follower answers from
//! its own tree), so reads are left out unless `include_reads` asks for
//! them; the ZooKeeper read guarantees have their own checker.
//!
//! The search is bounded: past `max_steps` states explored for one key the
//! key's verdict is `unknown`.

use std::collections::{BTreeMap, HashSet};

use super::{anomaly, Anomaly, CheckResult};
use crate::history::{Call, Op, Outcome, Ret};

/// How the search runs.
#[derive(Debug, Clone, Copy)]
pub struct LinearOptions {
    /// Search states explored per key before giving up.
    pub max_steps: u64,
    /// Also require reads (plain and after `sync`) to be linearizable.
    pub include_reads: bool,
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions {
            // About a second of search per key on a laptop.
            max_steps: 2_000_000,
            include_reads: false,
        }
    }
}

/// The register: (value, version).
type State = (i64, i32);

#[derive(Debug, Clone, Copy)]
enum Step {
    Write {
        value: i64,
        version: Option<i32>,
    },
    Cas {
        expected: i32,
        value: i64,
        version: Option<i32>,
    },
    CasFailed {
        expected: i32,
    },
    Read {
        value: i64,
        version: i32,
    },
}

impl Step {
    fn apply(self, (value, version): State) -> Option<State> {
        match self {
            Step::Write {
                value: v,
                version: r,
            } => {
                let next = version + 1;
                r.is_none_or(|r| r == next).then_some((v, next))
            }
            Step::Cas {
                expected,
                value: v,
                version: r,
            } => {
                let next = expected + 1;
                (version == expected && r.is_none_or(|r| r == next)).then_some((v, next))
            }
            Step::CasFailed { expected } => (version != expected).then_some((value, version)),
            Step::Read {
                value: v,
                version: r,
            } => (v == value && r == version).then_some((value, version)),
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    invoke: u64,
    /// `u64::MAX` for an indeterminate operation.
    complete: u64,
    required: bool,
    step: Step,
}

fn entry(op: &Op, include_reads: bool) -> Option<Entry> {
    let written_version = match &op.ret {
        Some(Ret::Written { version, .. }) => Some(*version),
        _ => None,
    };
    let step = match (&op.call, op.outcome) {
        (Call::Write { value, .. }, Outcome::Ok | Outcome::Info) => Step::Write {
            value: *value,
            version: written_version,
        },
        (Call::Cas { version, value, .. }, Outcome::Ok | Outcome::Info) => Step::Cas {
            expected: *version,
            value: *value,
            version: written_version,
        },
        (Call::Cas { version, .. }, Outcome::Fail)
            if op.error.as_deref().is_some_and(|e| e.contains("version")) =>
        {
            Step::CasFailed { expected: *version }
        }
        (Call::Read { .. } | Call::SyncRead { .. }, Outcome::Ok) if include_reads => match op.ret {
            Some(Ret::Value { value, version, .. }) => Step::Read { value, version },
            _ => return None,
        },
        _ => return None,
    };
    let required = op.outcome != Outcome::Info;
    Some(Entry {
        id: op.id,
        invoke: op.invoke_ns,
        complete: if required { op.complete_ns } else { u64::MAX },
        required,
        step,
    })
}

/// The outcome of one key's search.
#[derive(Debug, PartialEq, Eq)]
enum Search {
    Linearizable,
    /// No order works; the ops that could not be placed after the longest
    /// consistent prefix found.
    Not {
        placed: usize,
        stuck: Vec<u64>,
    },
    GaveUp,
}

fn search(entries: &[Entry], initial: State, max_steps: u64) -> Search {
    let n = entries.len();
    let words = n.div_ceil(64);
    let required_total = entries.iter().filter(|e| e.required).count();
    let mut visited: HashSet<(Vec<u64>, State)> = HashSet::new();
    // Each frame: the set linearized, the state, how many required ops it
    // holds.
    let mut stack: Vec<(Vec<u64>, State, usize)> = vec![(vec![0; words], initial, 0)];
    let mut steps = 0u64;
    let mut best: (usize, Vec<u64>) = (0, Vec::new());
    let is_set = |set: &[u64], i: usize| set[i / 64] >> (i % 64) & 1 == 1;
    while let Some((set, state, placed)) = stack.pop() {
        steps += 1;
        if steps > max_steps {
            return Search::GaveUp;
        }
        if placed == required_total {
            return Search::Linearizable;
        }
        // An op may go next only if it was invoked before every op still to
        // place had completed.
        let horizon = (0..n)
            .filter(|&i| !is_set(&set, i) && entries[i].required)
            .map(|i| entries[i].complete)
            .min()
            .unwrap_or(u64::MAX);
        let mut stuck = Vec::new();
        for i in 0..n {
            if is_set(&set, i) || entries[i].invoke > horizon {
                continue;
            }
            let Some(next) = entries[i].step.apply(state) else {
                stuck.push(entries[i].id);
                continue;
            };
            let mut next_set = set.clone();
            next_set[i / 64] |= 1 << (i % 64);
            let key = (next_set, next);
            if visited.contains(&key) {
                continue;
            }
            visited.insert(key.clone());
            stack.push((key.0, key.1, placed + usize::from(entries[i].required)));
        }
        if placed >= best.0 {
            best = (placed, stuck);
        }
    }
    Search::Not {
        placed: best.0,
        stuck: best.1,
    }
}

/// Checks every register key of the history.
pub fn check_register_linearizable(history: &[Op], options: LinearOptions) -> CheckResult {
    let mut by_key: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
    for op in history {
        if let (Some(key), Some(e)) = (op.call.key(), entry(op, options.include_reads)) {
            by_key.entry(key).or_default().push(e);
        }
    }
    let mut anomalies: Vec<Anomaly> = Vec::new();
    let mut gave_up = Vec::new();
    let mut checked_ops = 0;
    for (key, mut entries) in by_key {
        entries.sort_by_key(|e| (e.invoke, e.id));
        checked_ops += entries.len();
        match search(&entries, (0, 0), options.max_steps) {
            Search::Linearizable => {}
            Search::GaveUp => gave_up.push(key.to_string()),
            Search::Not { placed, stuck } => anomalies.push(anomaly(
                "non-linearizable",
                format!(
                    "key {key}: no linearization of its {} operations; the longest \
                     consistent prefix places {placed} required ones, then none of \
                     ops {stuck:?} fits the register's state",
                    entries.len()
                ),
                stuck,
            )),
        }
    }
    let unknown = (!gave_up.is_empty()).then(|| {
        format!(
            "search gave up after {} states on keys {gave_up:?}",
            options.max_steps
        )
    });
    let unknown = unknown.or_else(|| (checked_ops == 0).then(|| "no register operations".into()));
    CheckResult::from_anomalies(
        "linearizable-register",
        anomalies,
        unknown,
        format!(
            "{checked_ops} operations checked{}",
            if options.include_reads {
                ", reads included"
            } else {
                ", writes and CAS"
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_history::H;
    use crate::checker::Verdict;

    fn cas(
        h: &mut H,
        p: u64,
        t: (u64, u64),
        expected: i32,
        value: i64,
        outcome: Outcome,
        ret: Option<(i32, i64)>,
    ) {
        h.op(
            p,
            t.0,
            t.1,
            outcome,
            Call::Cas {
                key: "/r".into(),
                version: expected,
                value,
            },
            ret.map(|(version, mzxid)| Ret::Written { version, mzxid }),
        );
    }

    #[test]
    fn concurrent_writes_in_either_order_are_linearizable() {
        let mut h = H::default();
        h.init("/r", 1);
        h.write(1, (10, 50), "/r", 1, Some((2, 3)));
        h.write(2, (20, 40), "/r", 2, Some((1, 2)));
        cas(&mut h, 3, (60, 70), 2, 3, Outcome::Ok, Some((3, 4)));
        cas(&mut h, 3, (80, 90), 2, 4, Outcome::Fail, None);
        let r = check_register_linearizable(&h.ops, LinearOptions::default());
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
    }

    #[test]
    fn an_indeterminate_write_may_or_may_not_have_happened() {
        let mut h = H::default();
        h.write(1, (10, 20), "/r", 1, None);
        // Either it happened (version 1 → this CAS on 1 succeeds)...
        cas(&mut h, 2, (30, 40), 1, 2, Outcome::Ok, Some((2, 5)));
        let r = check_register_linearizable(&h.ops, LinearOptions::default());
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
        // ...or it did not (a CAS on 0 succeeds).
        let mut h = H::default();
        h.write(1, (10, 20), "/r", 1, None);
        cas(&mut h, 2, (30, 40), 0, 2, Outcome::Ok, Some((1, 5)));
        let r = check_register_linearizable(&h.ops, LinearOptions::default());
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
    }

    #[test]
    fn a_cas_that_fails_when_it_must_succeed_is_flagged() {
        let mut h = H::default();
        h.write(1, (10, 20), "/r", 1, Some((1, 2)));
        // Nothing else ran: the version is 1, yet this CAS on 1 failed.
        cas(&mut h, 2, (30, 40), 1, 2, Outcome::Fail, None);
        let r = check_register_linearizable(&h.ops, LinearOptions::default());
        assert_eq!(r.verdict, Verdict::Invalid, "{r:?}");
        assert_eq!(r.kinds(), ["non-linearizable"]);
        assert_eq!(r.anomalies[0].ops, [1]);
    }

    #[test]
    fn two_sequential_writes_reporting_one_version_are_flagged() {
        let mut h = H::default();
        h.write(1, (10, 20), "/r", 1, Some((1, 2)));
        h.write(2, (30, 40), "/r", 2, Some((1, 3)));
        let r = check_register_linearizable(&h.ops, LinearOptions::default());
        assert_eq!(r.verdict, Verdict::Invalid, "{r:?}");
    }

    #[test]
    fn a_stale_read_is_flagged_only_when_reads_are_included() {
        let mut h = H::default();
        h.write(1, (10, 20), "/r", 1, Some((1, 2)));
        h.read(2, (30, 40), "/r", 0, 0, 1);
        let without = check_register_linearizable(&h.ops, LinearOptions::default());
        assert_eq!(without.verdict, Verdict::Valid, "{without:?}");
        let with = check_register_linearizable(
            &h.ops,
            LinearOptions {
                include_reads: true,
                ..LinearOptions::default()
            },
        );
        assert_eq!(with.verdict, Verdict::Invalid, "{with:?}");
    }

    #[test]
    fn the_search_says_unknown_when_it_runs_out_of_budget() {
        let mut h = H::default();
        // Many concurrent indeterminate writes and one required op that no
        // order satisfies: the search must try every subset.
        for p in 0..20 {
            h.write(p, (10 + p, 1000), "/r", p as i64, None);
        }
        cas(&mut h, 99, (5000, 5001), 50, 1, Outcome::Ok, Some((51, 9)));
        let r = check_register_linearizable(
            &h.ops,
            LinearOptions {
                max_steps: 1000,
                include_reads: false,
            },
        );
        assert_eq!(r.verdict, Verdict::Unknown, "{r:?}");
    }
}
