//! The lock workload: processes take a `zoo_recipes::Lock`, hold it a
//! moment, and release it. A hold runs from its acquire's completion to its
//! release's invocation; its token is the lock node's czxid.
//!
//! - *double-holder*: two holds of one lock overlap in time, and the earlier
//!   one's release found its node still there (`ok`), so it really held the
//!   lock all along. A hold whose release found the node gone (`fail`: the
//!   session expired, the lock was lost) may overlap its successor, which
//!   is what fencing tokens are for;
//! - *stale-token*: an acquire that began after another had completed got a
//!   token that is not higher: a resource fenced by tokens would take the
//!   older holder's writes after the newer one's.

use std::collections::HashMap;

use super::{anomaly, CheckResult};
use crate::history::{Call, Op, Outcome, Ret};

/// One completed acquire and what became of it.
#[derive(Debug)]
struct Hold {
    acquire: u64,
    invoked: u64,
    from: u64,
    /// The release's invocation; open to the end when never released.
    until: u64,
    token: i64,
    /// The release found the node still there.
    kept: bool,
}

pub fn check_locks(history: &[Op]) -> CheckResult {
    let mut holds: HashMap<&str, Vec<Hold>> = HashMap::new();
    // (lock, token) → index in holds[lock].
    let mut by_token: HashMap<(&str, i64), usize> = HashMap::new();
    for op in history {
        if let (Call::Acquire { lock }, Outcome::Ok, Some(Ret::Fenced { token })) =
            (&op.call, op.outcome, &op.ret)
        {
            let list = holds.entry(lock).or_default();
            by_token.insert((lock, *token), list.len());
            list.push(Hold {
                acquire: op.id,
                invoked: op.invoke_ns,
                from: op.complete_ns,
                until: u64::MAX,
                token: *token,
                kept: false,
            });
        }
    }
    for op in history {
        if let Call::Release { lock, token } = &op.call {
            if let Some(&i) = by_token.get(&(lock.as_str(), *token)) {
                let hold = &mut holds.get_mut(lock.as_str()).expect("indexed")[i];
                hold.until = op.invoke_ns;
                hold.kept = op.outcome == Outcome::Ok;
            }
        }
    }
    let mut anomalies = Vec::new();
    let mut count = 0;
    for (lock, list) in &mut holds {
        count += list.len();
        list.sort_by_key(|h| h.from);
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                if b.from >= a.until {
                    break;
                }
                // b began holding while a still held.
                if a.kept {
                    anomalies.push(anomaly(
                        "double-holder",
                        format!(
                            "{lock}: token 0x{:x} was acquired while token 0x{:x}, released \
                             later with its node intact, still held it",
                            b.token, a.token
                        ),
                        vec![a.acquire, b.acquire],
                    ));
                }
            }
        }
        // The highest token granted by each point in time, in `from` order.
        let mut highest: Vec<(i64, u64)> = Vec::with_capacity(list.len());
        for h in list.iter() {
            let best = highest.last().map_or((h.token, h.acquire), |&b| {
                if b.0 >= h.token {
                    b
                } else {
                    (h.token, h.acquire)
                }
            });
            highest.push(best);
        }
        for b in list.iter() {
            let granted_before = list.partition_point(|a| a.from < b.invoked);
            if granted_before == 0 {
                continue;
            }
            let (token, acquire) = highest[granted_before - 1];
            if b.token <= token {
                anomalies.push(anomaly(
                    "stale-token",
                    format!(
                        "{lock}: an acquire begun after token 0x{token:x} was granted got \
                         0x{:x}",
                        b.token
                    ),
                    vec![acquire, b.acquire],
                ));
            }
        }
    }
    let unknown = (count == 0).then(|| "no lock was ever acquired".to_string());
    CheckResult::from_anomalies(
        "locks",
        anomalies,
        unknown,
        format!("{count} holds of {} locks", holds.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_history::H;
    use crate::checker::Verdict;

    fn hold(h: &mut H, p: u64, t: (u64, u64, u64), token: i64, release: Outcome) {
        h.op(
            p,
            t.0,
            t.1,
            Outcome::Ok,
            Call::Acquire { lock: "/l".into() },
            Some(Ret::Fenced { token }),
        );
        h.op(
            p,
            t.2,
            t.2 + 1,
            release,
            Call::Release {
                lock: "/l".into(),
                token,
            },
            (release == Outcome::Ok).then_some(Ret::Done),
        );
    }

    #[test]
    fn holds_one_after_another_are_valid() {
        let mut h = H::default();
        hold(&mut h, 1, (0, 10, 20), 5, Outcome::Ok);
        // Waited during the first hold, granted after its release.
        hold(&mut h, 2, (5, 22, 30), 6, Outcome::Ok);
        hold(&mut h, 1, (31, 32, 40), 9, Outcome::Ok);
        let result = check_locks(&h.ops);
        assert_eq!(result.verdict, Verdict::Valid, "{result:?}");
    }

    #[test]
    fn two_holders_at_once_are_flagged() {
        let mut h = H::default();
        hold(&mut h, 1, (0, 10, 50), 5, Outcome::Ok);
        hold(&mut h, 2, (5, 20, 30), 6, Outcome::Ok);
        let result = check_locks(&h.ops);
        assert_eq!(result.verdict, Verdict::Invalid);
        assert_eq!(result.kinds(), vec!["double-holder"]);
    }

    #[test]
    fn a_lost_hold_may_overlap_its_successor() {
        let mut h = H::default();
        // The first holder's session expired while it slept: its release
        // found the node gone.
        hold(&mut h, 1, (0, 10, 50), 5, Outcome::Fail);
        hold(&mut h, 2, (5, 20, 30), 6, Outcome::Ok);
        assert_eq!(check_locks(&h.ops).verdict, Verdict::Valid);
    }

    #[test]
    fn a_token_that_goes_back_is_flagged() {
        let mut h = H::default();
        hold(&mut h, 1, (0, 10, 20), 9, Outcome::Ok);
        hold(&mut h, 2, (21, 22, 30), 6, Outcome::Ok);
        let result = check_locks(&h.ops);
        assert_eq!(result.kinds(), vec!["stale-token"]);
    }
}
