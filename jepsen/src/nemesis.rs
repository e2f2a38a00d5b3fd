//! Nemeses: faults on a seeded random schedule. Each round waits a quiet
//! spell, injects one fault, holds it, and heals it; every fault is healed
//! when the run's fault phase ends. Each fault's window is recorded for the
//! report.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::proxy::LinkState;

/// The named crash points of the server's log and snapshot paths.
pub const CRASH_POINTS: [&str; 4] = [
    "log.before_write",
    "log.after_sync",
    "snapshot.before_write",
    "snapshot.after_write",
];

/// A family of faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nemesis {
    /// No faults: a baseline.
    None,
    /// kill -9 of a random server, the leader, or all of them; restarted
    /// when healed.
    Kill,
    /// SIGSTOP of a random server or the leader; SIGCONT when healed.
    Pause,
    /// Network partitions: random halves, the leader isolated, a ring of
    /// overlapping majorities, a bridge.
    Partition,
    /// One-way loss: links from one server (often the leader) blocked.
    Loss,
    /// Delay on the links out of the leader (out of a random server while
    /// there is none).
    Delay,
    /// A server restarted armed to abort at a named crash point.
    Crash,
    /// A server restarted with its wall clock skewed (a test-only setting),
    /// seconds to an hour either way; set right when healed.
    Clock,
    /// Any of the above, at random.
    Mixed,
}

impl Nemesis {
    /// Every nemesis: `None` first, `Mixed` last, the faults `Mixed`
    /// draws from between.
    pub const ALL: [Nemesis; 9] = [
        Nemesis::None,
        Nemesis::Kill,
        Nemesis::Pause,
        Nemesis::Partition,
        Nemesis::Loss,
        Nemesis::Delay,
        Nemesis::Crash,
        Nemesis::Clock,
        Nemesis::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Nemesis::None => "none",
            Nemesis::Kill => "kill",
            Nemesis::Pause => "pause",
            Nemesis::Partition => "partition",
            Nemesis::Loss => "loss",
            Nemesis::Delay => "delay",
            Nemesis::Crash => "crash",
            Nemesis::Clock => "clock",
            Nemesis::Mixed => "mixed",
        }
    }

    pub fn parse(name: &str) -> Result<Nemesis, String> {
        Nemesis::ALL
            .into_iter()
            .find(|n| n.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Nemesis::ALL.iter().map(|n| n.name()).collect();
                format!("unknown nemesis {name:?}: one of {}", names.join(", "))
            })
    }
}

/// One fault, from injection to healing.
#[derive(Debug, Clone, Serialize)]
pub struct FaultWindow {
    pub kind: String,
    pub detail: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// How the schedule runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub nemesis: Nemesis,
    pub seed: u64,
    /// Quiet spell before each fault.
    pub quiet: (Duration, Duration),
    /// How long each fault is held.
    pub hold: (Duration, Duration),
}

impl Schedule {
    pub fn new(nemesis: Nemesis, seed: u64) -> Schedule {
        Schedule {
            nemesis,
            seed,
            quiet: (Duration::from_millis(1000), Duration::from_millis(3000)),
            hold: (Duration::from_millis(2000), Duration::from_millis(5000)),
        }
    }
}

fn between(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + Duration::from_millis(rng.gen_range(0..(hi - lo).as_millis() as u64))
}

/// Runs the schedule on `cluster` until `deadline`, then heals every
/// fault. `now_ns` gives the run's clock. Returns the fault windows and the
/// errors of the harness itself (a server that would not start).
pub async fn run(
    cluster: &mut Cluster,
    schedule: &Schedule,
    deadline: Instant,
    now_ns: impl Fn() -> u64,
) -> (Vec<FaultWindow>, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(schedule.seed ^ 0x6e65_6d65_7369_7300);
    let mut windows = Vec::new();
    let mut errors = Vec::new();
    if schedule.nemesis == Nemesis::None {
        tokio::time::sleep_until(deadline).await;
        return (windows, errors);
    }
    loop {
        let quiet = between(&mut rng, schedule.quiet);
        if Instant::now() + quiet >= deadline {
            tokio::time::sleep_until(deadline).await;
            break;
        }
        tokio::time::sleep(quiet).await;
        let kind = match schedule.nemesis {
            Nemesis::Mixed => *Nemesis::ALL[1..Nemesis::ALL.len() - 1]
                .choose(&mut rng)
                .expect("not empty"),
            other => other,
        };
        let start_ns = now_ns();
        let detail = match inject(cluster, kind, &mut rng).await {
            Ok(detail) => detail,
            Err(e) => {
                errors.push(format!("{}: {e}", kind.name()));
                continue;
            }
        };
        let hold = between(&mut rng, schedule.hold);
        tokio::time::sleep(hold.min(deadline.saturating_duration_since(Instant::now()))).await;
        if let Err(e) = cluster.heal_all() {
            errors.push(format!("healing {}: {e}", kind.name()));
        }
        windows.push(FaultWindow {
            kind: kind.name().to_string(),
            detail,
            start_ns,
            end_ns: now_ns(),
        });
        if Instant::now() >= deadline {
            break;
        }
    }
    if let Err(e) = cluster.heal_all() {
        errors.push(format!("final heal: {e}"));
    }
    (windows, errors)
}

/// A random server, the leader a third of the time (when there is one).
async fn victim(cluster: &Cluster, rng: &mut StdRng) -> (usize, bool) {
    if rng.gen_bool(1.0 / 3.0) {
        if let Some(leader) = cluster.leader().await {
            return (leader, true);
        }
    }
    (rng.gen_range(0..cluster.len()), false)
}

fn who(i: usize, leader: bool) -> String {
    if leader {
        format!("server {} (the leader)", i + 1)
    } else {
        format!("server {}", i + 1)
    }
}

/// Injects one fault of `kind`; returns what was done.
async fn inject(cluster: &mut Cluster, kind: Nemesis, rng: &mut StdRng) -> Result<String, String> {
    let n = cluster.len();
    match kind {
        Nemesis::None | Nemesis::Mixed => Ok("nothing".to_string()),
        Nemesis::Kill => {
            if rng.gen_bool(0.1) {
                for i in 0..n {
                    cluster.kill_node(i);
                }
                Ok("kill -9 of every server".to_string())
            } else {
                let (i, leader) = victim(cluster, rng).await;
                cluster.kill_node(i);
                Ok(format!("kill -9 of {}", who(i, leader)))
            }
        }
        Nemesis::Pause => {
            let (i, leader) = victim(cluster, rng).await;
            cluster.pause_node(i)?;
            Ok(format!("SIGSTOP of {}", who(i, leader)))
        }
        Nemesis::Partition => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            match rng.gen_range(0..4) {
                0 => {
                    let (a, b) = order.split_at(n / 2);
                    cluster.partition(&[a.to_vec(), b.to_vec()]);
                    Ok(format!("halves {a:?} | {b:?}", a = ids(a), b = ids(b)))
                }
                1 => {
                    let leader = cluster.leader().await.unwrap_or(order[0]);
                    let rest: Vec<usize> = (0..n).filter(|&i| i != leader).collect();
                    cluster.partition(&[vec![leader], rest]);
                    Ok(format!("server {} (the leader) isolated", leader + 1))
                }
                2 => {
                    // Each server keeps links to its neighbours in a ring
                    // (a majority around each one when n ≤ 5), and no
                    // others.
                    for (pos, &i) in order.iter().enumerate() {
                        for (other_pos, &j) in order.iter().enumerate() {
                            let distance = pos.abs_diff(other_pos).min(n - pos.abs_diff(other_pos));
                            if i != j && distance > 1 {
                                cluster.cut(i, j);
                            }
                        }
                    }
                    Ok(format!("majorities ring over {:?}", ids(&order)))
                }
                _ => {
                    // Two sides joined only through one bridge server.
                    let bridge = order[0];
                    let (a, b) = order[1..].split_at((n - 1) / 2);
                    for &i in a {
                        for &j in b {
                            cluster.cut(i, j);
                        }
                    }
                    Ok(format!(
                        "bridge: {:?} | server {} | {:?}",
                        ids(a),
                        bridge + 1,
                        ids(b)
                    ))
                }
            }
        }
        Nemesis::Loss => {
            let (from, leader) = victim(cluster, rng).await;
            let blocked = LinkState {
                blocked: true,
                delay_ms: 0,
            };
            let mut to: Vec<usize> = (0..n).filter(|&j| j != from).collect();
            to.shuffle(rng);
            to.truncate(rng.gen_range(1..n.max(2)));
            for &j in &to {
                cluster.set_link(from, j, blocked);
            }
            Ok(format!(
                "one-way loss from {} to {:?}",
                who(from, leader),
                ids(&to)
            ))
        }
        Nemesis::Delay => {
            // Out of the leader when there is one: its followers trail it.
            let (from, leader) = match cluster.leader().await {
                Some(l) => (l, true),
                None => (rng.gen_range(0..n), false),
            };
            let delay_ms = rng.gen_range(100..500);
            for j in (0..n).filter(|&j| j != from) {
                cluster.set_link(
                    from,
                    j,
                    LinkState {
                        blocked: false,
                        delay_ms,
                    },
                );
            }
            Ok(format!("{delay_ms} ms delay out of {}", who(from, leader)))
        }
        Nemesis::Clock => {
            let (i, leader) = victim(cluster, rng).await;
            let seconds = rng.gen_range(1..3600i64) * if rng.gen_bool(0.5) { 1 } else { -1 };
            cluster.restart_with_clock_offset(i, seconds * 1000)?;
            Ok(format!(
                "{} restarted with its clock {seconds:+} s off",
                who(i, leader)
            ))
        }
        Nemesis::Crash => {
            let (i, leader) = victim(cluster, rng).await;
            let point = CRASH_POINTS.choose(rng).expect("not empty");
            // Log writes come by the hundred a second under load, snapshots
            // every few hundred transactions.
            let pass = if point.starts_with("log.") {
                rng.gen_range(1..50)
            } else {
                rng.gen_range(1..3)
            };
            cluster.start_node_armed(i, &format!("{point}:{pass}"))?;
            Ok(format!(
                "{} restarted to crash at {point}, pass {pass}",
                who(i, leader)
            ))
        }
    }
}

fn ids(indexes: &[usize]) -> Vec<usize> {
    indexes.iter().map(|i| i + 1).collect()
}
