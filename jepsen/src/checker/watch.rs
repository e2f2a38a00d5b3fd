//! The watch workload: processes register one-shot data watches with
//! `get_data` and wait for the event, while others write the same keys.
//! A registration read the key at mzxid M: its watch covers every change
//! after M.
//!
//! - *missed-watch*: an acknowledged write to the key has an mzxid above M
//!   and was acknowledged at least `MISSED_WATCH_GRACE_NS` before the wait for
//!   the event ran out (`fail`) with the session connected throughout. The
//!   grace leaves the watcher's server time to apply the write: a follower
//!   may trail the leader, and the promise is "eventually", not "at once";
//! - *spurious-watch*: an event arrived, but no write to the key that may
//!   have happened (acknowledged with an mzxid above M, or indeterminate)
//!   could have fired it;
//! - *event-before-data*: after the event, a read of the key on the same
//!   session still saw M or older: ZooKeeper promises a client sees the
//!   event before the data that follows it, never the event without it;
//! - *duplicate-watch*: one registration delivered more than one event.

use std::collections::HashMap;

use super::{anomaly, CheckResult};
use crate::history::{Call, Op, Outcome, Ret};

/// How long before the end of a wait a write must have been acknowledged
/// for its missing event to count as missed.
pub const MISSED_WATCH_GRACE_NS: u64 = 2_000_000_000;

pub fn check_watches(history: &[Op]) -> CheckResult {
    // Acknowledged writes' mzxids and indeterminate writes' invocation
    // times, per key.
    let mut acked: HashMap<&str, Vec<(i64, u64, u64)>> = HashMap::new();
    let mut maybe: HashMap<&str, Vec<u64>> = HashMap::new();
    // Registrations: op id → (key, mzxid read).
    let mut registrations: HashMap<u64, (&str, i64)> = HashMap::new();
    for op in history {
        match (&op.call, op.outcome, &op.ret) {
            (
                Call::Write { key, .. } | Call::Cas { key, .. },
                Outcome::Ok,
                Some(Ret::Written { mzxid, .. }),
            ) => acked
                .entry(key)
                .or_default()
                .push((*mzxid, op.id, op.complete_ns)),
            (Call::Write { key, .. } | Call::Cas { key, .. }, Outcome::Info, _) => {
                maybe.entry(key).or_default().push(op.invoke_ns)
            }
            (Call::WatchRead { key }, Outcome::Ok, Some(Ret::Value { mzxid, .. })) => {
                registrations.insert(op.id, (key, *mzxid));
            }
            _ => {}
        }
    }
    let mut anomalies = Vec::new();
    let mut events: HashMap<u64, u64> = HashMap::new();
    let (mut delivered, mut waited_out) = (0usize, 0usize);
    for op in history {
        let Call::WatchEvent { key, registration } = &op.call else {
            continue;
        };
        let Some(&(_, seen)) = registrations.get(registration) else {
            continue;
        };
        // An acknowledged write after the read, acknowledged by `by`.
        let later_acked = |by: u64| {
            acked
                .get(key.as_str())
                .and_then(|ws| ws.iter().find(|&&(z, _, at)| z > seen && at <= by))
                .map(|&(_, id, _)| id)
        };
        match (op.outcome, &op.ret) {
            (Outcome::Ok, Some(Ret::Event { event, mzxid })) => {
                delivered += 1;
                if let Some(first) = events.insert(*registration, op.id) {
                    anomalies.push(anomaly(
                        "duplicate-watch",
                        format!("registration {registration} on {key} delivered twice"),
                        vec![*registration, first, op.id],
                    ));
                }
                let possible_cause = later_acked(u64::MAX).is_some()
                    || maybe
                        .get(key.as_str())
                        .is_some_and(|ts| ts.iter().any(|&t| t < op.complete_ns));
                if !possible_cause {
                    anomalies.push(anomaly(
                        "spurious-watch",
                        format!(
                            "{event} on {key} after a read at 0x{seen:x}, and no write \
                             after it could have fired it"
                        ),
                        vec![*registration, op.id],
                    ));
                }
                if *mzxid <= seen && event == "NodeDataChanged" {
                    anomalies.push(anomaly(
                        "event-before-data",
                        format!(
                            "after {event} on {key} the session still read 0x{mzxid:x}, \
                             not past 0x{seen:x}"
                        ),
                        vec![*registration, op.id],
                    ));
                }
            }
            (Outcome::Fail, _) => {
                waited_out += 1;
                let by = op.complete_ns.saturating_sub(MISSED_WATCH_GRACE_NS);
                if let Some(write) = later_acked(by) {
                    anomalies.push(anomaly(
                        "missed-watch",
                        format!(
                            "the watch on {key} (read at 0x{seen:x}) never fired, though an \
                             acknowledged write changed it later"
                        ),
                        vec![*registration, write, op.id],
                    ));
                }
            }
            _ => {}
        }
    }
    let unknown = (registrations.is_empty()).then(|| "no watch was registered".to_string());
    CheckResult::from_anomalies(
        "watches",
        anomalies,
        unknown,
        format!(
            "{} registrations, {delivered} events, {waited_out} waits ran out",
            registrations.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_history::H;
    use crate::checker::Verdict;

    fn register(h: &mut H, p: u64, t: u64, mzxid: i64) -> u64 {
        h.op(
            p,
            t,
            t + 1,
            Outcome::Ok,
            Call::WatchRead { key: "/k".into() },
            Some(Ret::Value {
                value: 0,
                version: 0,
                mzxid,
            }),
        )
    }

    /// A wait for the event from `t`, lasting past the grace.
    fn event(h: &mut H, p: u64, t: u64, registration: u64, outcome: Outcome, seen: i64) -> u64 {
        h.op(
            p,
            t,
            t + MISSED_WATCH_GRACE_NS + 100,
            outcome,
            Call::WatchEvent {
                key: "/k".into(),
                registration,
            },
            (outcome == Outcome::Ok).then(|| Ret::Event {
                event: "NodeDataChanged".into(),
                mzxid: seen,
            }),
        )
    }

    #[test]
    fn delivered_watches_are_valid() {
        let mut h = H::default();
        h.init("/k", 1);
        let r = register(&mut h, 1, 10, 1);
        h.write(2, (20, 30), "/k", 5, Some((1, 7)));
        event(&mut h, 1, 11, r, Outcome::Ok, 7);
        let result = check_watches(&h.ops);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
    }

    #[test]
    fn a_missed_watch_is_flagged() {
        let mut h = H::default();
        h.init("/k", 1);
        let r = register(&mut h, 1, 10, 1);
        h.write(2, (20, 30), "/k", 5, Some((1, 7)));
        event(&mut h, 1, 11, r, Outcome::Fail, 0);
        let result = check_watches(&h.ops);
        assert_eq!(result.verdict, Verdict::Invalid);
        assert_eq!(result.kinds(), vec!["missed-watch"]);
    }

    #[test]
    fn a_write_acknowledged_too_late_for_the_wait_is_no_miss() {
        let mut h = H::default();
        h.init("/k", 1);
        let r = register(&mut h, 1, 10, 1);
        h.write(2, (20, MISSED_WATCH_GRACE_NS), "/k", 5, Some((1, 7)));
        event(&mut h, 1, 11, r, Outcome::Fail, 0);
        assert_eq!(check_watches(&h.ops).verdict, Verdict::Valid);
    }

    #[test]
    fn a_wait_that_ran_out_with_no_change_is_fine() {
        let mut h = H::default();
        h.init("/k", 1);
        // The write happened before the read: the watch covers nothing.
        h.write(2, (2, 3), "/k", 5, Some((1, 7)));
        let r = register(&mut h, 1, 10, 7);
        event(&mut h, 1, 11, r, Outcome::Fail, 0);
        assert_eq!(check_watches(&h.ops).verdict, Verdict::Valid);
    }

    #[test]
    fn spurious_and_early_events_are_flagged() {
        let mut h = H::default();
        h.init("/k", 1);
        let r = register(&mut h, 1, 10, 7);
        // No write at all after 0x7, and the read after the event saw 0x7.
        event(&mut h, 1, 11, r, Outcome::Ok, 7);
        let result = check_watches(&h.ops);
        assert_eq!(result.kinds(), vec!["spurious-watch", "event-before-data"]);
    }

    #[test]
    fn an_indeterminate_write_may_explain_an_event() {
        let mut h = H::default();
        h.init("/k", 1);
        let r = register(&mut h, 1, 10, 1);
        h.write(2, (12, 90), "/k", 5, None);
        event(&mut h, 1, 11, r, Outcome::Ok, 9);
        assert_eq!(check_watches(&h.ops).verdict, Verdict::Valid);
    }
}
