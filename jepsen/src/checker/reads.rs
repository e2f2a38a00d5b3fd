//! ZooKeeper's read guarantees, checked with the zxids the server reports.
//! Every acknowledged write tells its zxid (the new Stat's mzxid), and every
//! read tells the mzxid of the value it saw. A read of key k with mzxid M
//! was served from a tree at some zxid z with M ≤ z < next(k, M), the zxid
//! of the next write to k after M. From that:
//!
//! - *values*: a read's (value, mzxid) is one that a write produced;
//! - *session order* (ZooKeeper's "single system image"): a session never
//!   sees an older tree than it already saw. Each write and each read
//!   raises the session's floor; a read whose value had been overwritten
//!   at or below the floor (next(k, M) ≤ floor) went back in time;
//! - *sync then read*: a read after `sync` sees every write that completed
//!   before the sync began, on any key: next(k, M) must be above them all;
//! - *write order*: writes acknowledged one after the other in real time
//!   have increasing zxids.
//!
//! Writes whose outcome is unknown are learnt from reads that see them; one
//! never seen cannot be placed, which can only hide an anomaly, never
//! invent one.

use std::collections::{BTreeMap, HashMap};

use super::{anomaly, Anomaly, CheckResult};
use crate::history::{Call, Op, Outcome, Ret};

#[derive(Debug, Default)]
struct KeyWrites {
    /// zxid → (value, op id) of the writes known to have happened.
    at: BTreeMap<i64, (i64, u64)>,
}

impl KeyWrites {
    fn next_after(&self, zxid: i64) -> i64 {
        self.at
            .range(zxid + 1..)
            .next()
            .map_or(i64::MAX, |(z, _)| *z)
    }
}

fn written_value(call: &Call) -> Option<i64> {
    match call {
        Call::Init { .. } => Some(0),
        Call::Write { value, .. } | Call::Cas { value, .. } => Some(*value),
        _ => None,
    }
}

fn is_read(call: &Call) -> bool {
    matches!(
        call,
        Call::Read { .. } | Call::SyncRead { .. } | Call::WatchRead { .. }
    )
}

/// Checks the read guarantees over every key of the history.
pub fn check_zk_reads(history: &[Op]) -> CheckResult {
    let mut anomalies: Vec<Anomaly> = Vec::new();
    let mut keys: HashMap<&str, KeyWrites> = HashMap::new();
    // Values some write tried to set, per key: (value → op ids).
    let mut attempted: HashMap<(&str, i64), Vec<u64>> = HashMap::new();
    for op in history {
        let (Some(key), Some(value)) = (op.call.key(), written_value(&op.call)) else {
            continue;
        };
        attempted.entry((key, value)).or_default().push(op.id);
        if let (Outcome::Ok, Some(Ret::Written { mzxid, .. })) = (op.outcome, &op.ret) {
            let known = keys.entry(key).or_default();
            if let Some((other, other_id)) = known.at.insert(*mzxid, (value, op.id)) {
                anomalies.push(anomaly(
                    "duplicate-zxid",
                    format!("two writes to {key} acknowledged at zxid {mzxid:#x}: values {other} and {value}"),
                    vec![other_id, op.id],
                ));
            }
        }
    }
    // Reads: each must show a value some write made; unknown writes are
    // placed where reads saw them.
    let mut reads = 0;
    for op in history {
        let (true, Outcome::Ok, Some(key), Some(Ret::Value { value, mzxid, .. })) =
            (is_read(&op.call), op.outcome, op.call.key(), &op.ret)
        else {
            continue;
        };
        reads += 1;
        let known = keys.entry(key).or_default();
        match known.at.get(mzxid) {
            Some((v, writer)) if v != value => anomaly_push(
                &mut anomalies,
                "wrong-value",
                format!(
                    "read of {key} saw {value} at zxid {mzxid:#x}, where write {writer} set {v}"
                ),
                vec![*writer, op.id],
            ),
            Some(_) => {}
            None => match attempted.get(&(key, *value)) {
                Some(writers) if writers.len() == 1 => {
                    known.at.insert(*mzxid, (*value, writers[0]));
                }
                Some(_) => {}
                None => anomaly_push(
                    &mut anomalies,
                    "phantom-value",
                    format!("read of {key} saw {value}, which no operation wrote"),
                    vec![op.id],
                ),
            },
        }
    }
    // Write order against real time, across keys.
    let mut writes: Vec<(&Op, i64)> = history
        .iter()
        .filter_map(|op| match (&op.call, op.outcome, &op.ret) {
            (
                Call::Write { .. } | Call::Cas { .. },
                Outcome::Ok,
                Some(Ret::Written { mzxid, .. }),
            ) => Some((op, *mzxid)),
            _ => None,
        })
        .collect();
    writes.sort_by_key(|(op, _)| op.complete_ns);
    {
        // For each write, the highest zxid among writes completed before it
        // was invoked must be below its own.
        let mut by_invoke: Vec<&(&Op, i64)> = writes.iter().collect();
        by_invoke.sort_by_key(|(op, _)| op.invoke_ns);
        let mut done = writes.iter().peekable();
        let mut max_done: Option<(i64, u64)> = None;
        for (op, zxid) in by_invoke {
            while let Some((w, z)) = done.next_if(|(w, _)| w.complete_ns < op.invoke_ns) {
                if max_done.is_none_or(|(m, _)| *z > m) {
                    max_done = Some((*z, w.id));
                }
            }
            if let Some((m, id)) = max_done {
                if m >= *zxid {
                    anomaly_push(
                        &mut anomalies,
                        "write-order",
                        format!(
                            "write {} got zxid {zxid:#x} although write {id}, with zxid {m:#x}, \
                             completed before it was invoked",
                            op.id
                        ),
                        vec![id, op.id],
                    );
                }
            }
        }
    }
    // Session order, and sync-then-read.
    let mut by_process: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_process.entry(op.process).or_default().push(op);
    }
    let mut done = writes.iter().peekable();
    let mut max_done: Option<(i64, u64)> = None;
    let mut sync_reads: Vec<&Op> = history
        .iter()
        .filter(|op| matches!(op.call, Call::SyncRead { .. }) && op.outcome == Outcome::Ok)
        .collect();
    sync_reads.sort_by_key(|op| op.invoke_ns);
    for op in sync_reads {
        while let Some((w, z)) = done.next_if(|(w, _)| w.complete_ns < op.invoke_ns) {
            if max_done.is_none_or(|(m, _)| *z > m) {
                max_done = Some((*z, w.id));
            }
        }
        let (Some(key), Some(Ret::Value { value, mzxid, .. })) = (op.call.key(), &op.ret) else {
            continue;
        };
        if let Some((floor, writer)) = max_done {
            let next = keys.get(key).map_or(i64::MAX, |k| k.next_after(*mzxid));
            if next <= floor {
                anomaly_push(
                    &mut anomalies,
                    "stale-sync-read",
                    format!(
                        "after sync, read of {key} saw {value} (mzxid {mzxid:#x}), overwritten at \
                         {next:#x}, although write {writer} (zxid {floor:#x}) completed before the \
                         sync began"
                    ),
                    vec![writer, op.id],
                );
            }
        }
    }
    for ops in by_process.values() {
        let mut floor: Option<(i64, u64)> = None;
        for op in ops {
            if op.outcome != Outcome::Ok {
                continue;
            }
            match (&op.call, &op.ret) {
                (call, Some(Ret::Written { mzxid, .. }))
                    if written_value(call).is_some() && floor.is_none_or(|(f, _)| *mzxid > f) =>
                {
                    floor = Some((*mzxid, op.id));
                }
                (call, Some(Ret::Value { value, mzxid, .. })) if is_read(call) => {
                    let key = call.key().unwrap_or_default();
                    let next = keys.get(key).map_or(i64::MAX, |k| k.next_after(*mzxid));
                    if let Some((f, by)) = floor {
                        if next <= f {
                            anomaly_push(
                                &mut anomalies,
                                "session-went-back",
                                format!(
                                    "session {:#x} (process {}) read {key} = {value} (mzxid \
                                     {mzxid:#x}, overwritten at {next:#x}) after operation {by} \
                                     had shown it zxid {f:#x}",
                                    op.session, op.process
                                ),
                                vec![by, op.id],
                            );
                        }
                    }
                    if floor.is_none_or(|(f, _)| *mzxid > f) {
                        floor = Some((*mzxid, op.id));
                    }
                }
                _ => {}
            }
        }
    }
    let unknown = (reads == 0).then(|| "no reads".to_string());
    CheckResult::from_anomalies(
        "zk-reads",
        anomalies,
        unknown,
        format!(
            "{reads} reads and {} acknowledged writes checked",
            writes.len()
        ),
    )
}

fn anomaly_push(anomalies: &mut Vec<Anomaly>, kind: &str, detail: String, ops: Vec<u64>) {
    anomalies.push(anomaly(kind, detail, ops));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_history::H;
    use crate::checker::Verdict;

    /// One key, initial value at zxid 1, two writes at 2 and 3.
    fn base() -> H {
        let mut h = H::default();
        h.init("/r", 1);
        h.write(1, (10, 20), "/r", 5, Some((1, 2)));
        h.write(1, (30, 40), "/r", 6, Some((2, 3)));
        h
    }

    #[test]
    fn stale_but_monotonic_reads_pass() {
        let mut h = base();
        // A lagging follower may serve old values, in order.
        h.read(2, (50, 60), "/r", 0, 0, 1);
        h.read(2, (70, 80), "/r", 5, 1, 2);
        h.read(2, (90, 95), "/r", 6, 2, 3);
        h.sync_read(3, (100, 110), "/r", 6, 2, 3);
        let r = check_zk_reads(&h.ops);
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
    }

    #[test]
    fn a_session_reading_back_in_time_is_flagged() {
        let mut h = base();
        h.read(2, (50, 60), "/r", 6, 2, 3);
        h.read(2, (70, 80), "/r", 5, 1, 2);
        let r = check_zk_reads(&h.ops);
        assert_eq!(r.kinds(), ["session-went-back"], "{r:?}");
    }

    #[test]
    fn a_session_not_reading_its_own_write_is_flagged() {
        let mut h = base();
        h.write(2, (50, 60), "/r", 7, Some((3, 4)));
        h.read(2, (70, 80), "/r", 6, 2, 3);
        let r = check_zk_reads(&h.ops);
        assert_eq!(r.kinds(), ["session-went-back"], "{r:?}");
    }

    #[test]
    fn a_stale_read_after_sync_is_flagged() {
        let mut h = base();
        // The write at zxid 3 completed at 40; a sync began at 50.
        h.sync_read(2, (50, 60), "/r", 5, 1, 2);
        let r = check_zk_reads(&h.ops);
        assert_eq!(r.kinds(), ["stale-sync-read"], "{r:?}");
        // A sync that began before the write completed may miss it.
        let mut h = base();
        h.sync_read(2, (35, 60), "/r", 5, 1, 2);
        assert_eq!(check_zk_reads(&h.ops).verdict, Verdict::Valid);
    }

    #[test]
    fn sync_covers_writes_to_other_keys_too() {
        let mut h = base();
        h.init("/s", 4);
        h.write(1, (50, 60), "/s", 9, Some((1, 5)));
        h.write(1, (70, 75), "/r", 8, Some((3, 6)));
        // /r = 6 was current until zxid 6 > 5: fine for a sync after /s's write...
        h.sync_read(2, (65, 68), "/r", 6, 2, 3);
        assert_eq!(check_zk_reads(&h.ops).verdict, Verdict::Valid);
        // ...but not after /r's own write at 6.
        h.sync_read(3, (80, 90), "/r", 6, 2, 3);
        assert_eq!(check_zk_reads(&h.ops).kinds(), ["stale-sync-read"]);
    }

    #[test]
    fn values_nobody_wrote_and_mismatched_values_are_flagged() {
        let mut h = base();
        h.read(2, (50, 60), "/r", 42, 1, 2);
        h.read(3, (50, 60), "/r", 77, 9, 9);
        let r = check_zk_reads(&h.ops);
        let mut kinds = r.kinds();
        kinds.sort_unstable();
        assert_eq!(kinds, ["phantom-value", "wrong-value"], "{r:?}");
    }

    #[test]
    fn an_indeterminate_write_seen_by_a_read_is_placed_where_it_was_seen() {
        let mut h = base();
        h.write(2, (50, 60), "/r", 9, None);
        h.read(3, (70, 80), "/r", 9, 3, 7);
        h.read(3, (90, 95), "/r", 6, 2, 3);
        let r = check_zk_reads(&h.ops);
        assert_eq!(r.kinds(), ["session-went-back"], "{r:?}");
    }

    #[test]
    fn writes_out_of_real_time_order_are_flagged() {
        let mut h = base();
        h.write(2, (50, 60), "/r", 9, Some((3, 2)));
        let r = check_zk_reads(&h.ops);
        assert!(r.kinds().contains(&"write-order"), "{r:?}");
    }
}
