//! Seeded simulation of ZAB ensembles: 3 and 5 servers of the pure core on a
//! simulated network and simulated disks, through message loss, reordering,
//! duplication, partitions and crash-restarts that keep what was durable.
//!
//! After every step the run checks ZAB's properties: at most one leader
//! establishes each epoch; every server's applied sequence is a prefix of one
//! common sequence (committed prefixes agree, nothing committed is lost or
//! reordered); applied and logged zxids strictly increase; a restarted
//! server's state is such a prefix too. Then faults stop, every server comes
//! back, and within a quiet period the ensemble must converge: one serving
//! leader, every server serving with the same state, holding every write the
//! leader acknowledged, and accepting new ones.
//!
//! A failing schedule prints its seed; `ZOO_ZAB_SEED=<seed>` replays exactly
//! that one. `ZOO_ZAB_SCHEDULES=<n>` sets how many run per cluster size, and
//! `ZOO_ZAB_FIRST=<k>` starts at the k-th schedule, to explore new ones.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use zoo_server::storage::Epochs;
use zoo_server::zab::{
    DurableState, Effect, Entry, Member, PeerMessage, QuorumBody, Role, ServerId, StoreOp, Zab,
    ZabConfig, Zxid,
};

/// splitmix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The state machine: the sequence of applied (zxid, value).
type Machine = Vec<(Zxid, u64)>;

#[derive(Debug, Clone, Default)]
struct Disk {
    epochs: Epochs,
    snapshot_zxid: Zxid,
    snapshot: Machine,
    log: Vec<Entry<u64>>,
}

#[derive(Debug)]
struct Node {
    id: ServerId,
    zab: Option<Zab<u64>>,
    disk: Disk,
    /// Storage operations issued and not yet durable, with a received
    /// snapshot's content for an install.
    pending: VecDeque<(u64, StoreOp<u64>, Option<Machine>)>,
    machine: Machine,
    /// Snapshots received beside SNAP messages, by zxid.
    received_snapshots: HashMap<Zxid, Machine>,
    incarnation: u64,
    role: Role,
    /// Values this server proposed as leader, not yet applied.
    proposed: BTreeSet<u64>,
}

#[derive(Debug)]
struct InFlight {
    from: ServerId,
    to: ServerId,
    message: PeerMessage<u64>,
    snapshot: Option<Machine>,
}

/// How hostile the network and the servers' lives are.
#[derive(Debug, Clone, Copy)]
struct Faults {
    loss: f64,
    duplication: f64,
    reordering: f64,
    crash: f64,
    restart: f64,
    partition: f64,
    heal: f64,
    /// A runtime reporting a peer's connection closed when it did not.
    spurious_close: f64,
}

const QUIET: Faults = Faults {
    loss: 0.0,
    duplication: 0.0,
    reordering: 0.0,
    crash: 0.0,
    restart: 0.0,
    partition: 0.0,
    heal: 0.0,
    spurious_close: 0.0,
};

/// Simulated time units per tick of a server.
const TICK: u64 = 10;

#[derive(Debug, Default)]
struct Counters {
    elections_won: u64,
    diffs: u64,
    truncs: u64,
    snaps: u64,
    crashes: u64,
    committed: u64,
}

struct Sim {
    seed: u64,
    /// `ZOO_ZAB_TRACE=1` prints every event of a replayed schedule.
    trace: bool,
    rng: Rng,
    now: u64,
    nodes: Vec<Node>,
    members: Vec<Member>,
    network: BinaryHeap<Reverse<(u64, u64, usize)>>,
    in_flight: HashMap<usize, InFlight>,
    next_message: usize,
    /// Latest delivery time per link, to keep links FIFO unless reordering.
    link_clock: HashMap<(ServerId, ServerId), u64>,
    blocked: BTreeSet<(ServerId, ServerId)>,
    faults: Faults,
    /// The one sequence every applied state is a prefix of.
    canon: Machine,
    leaders: BTreeMap<i64, ServerId>,
    acknowledged: BTreeSet<u64>,
    next_value: u64,
    counters: Counters,
}

impl Sim {
    fn new(seed: u64, size: usize, observers: usize) -> Self {
        let members: Vec<Member> = (1..=(size + observers) as u64)
            .map(|id| Member {
                id,
                voting: id <= size as u64,
            })
            .collect();
        let mut sim = Sim {
            seed,
            trace: std::env::var_os("ZOO_ZAB_TRACE").is_some(),
            rng: Rng(seed),
            now: 0,
            nodes: Vec::new(),
            members: members.clone(),
            network: BinaryHeap::new(),
            in_flight: HashMap::new(),
            next_message: 0,
            link_clock: HashMap::new(),
            blocked: BTreeSet::new(),
            faults: QUIET,
            canon: Vec::new(),
            leaders: BTreeMap::new(),
            acknowledged: BTreeSet::new(),
            next_value: 1,
            counters: Counters::default(),
        };
        for m in &members {
            sim.nodes.push(Node {
                id: m.id,
                zab: None,
                disk: Disk::default(),
                pending: VecDeque::new(),
                machine: Vec::new(),
                received_snapshots: HashMap::new(),
                incarnation: 0,
                role: Role::Looking,
                proposed: BTreeSet::new(),
            });
        }
        for i in 0..sim.nodes.len() {
            sim.start(i);
        }
        sim
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "seed {} at time {}: {what}\nreplay with ZOO_ZAB_SEED={}",
            self.seed, self.now, self.seed
        );
    }

    fn config(&self, i: usize) -> ZabConfig {
        ZabConfig {
            id: self.nodes[i].id,
            members: self.members.clone(),
            incarnation: self.nodes[i].incarnation,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            finalize_ticks: 2,
            retained_entries: 8,
        }
    }

    /// Starts (or restarts) a server from its disk.
    fn start(&mut self, i: usize) {
        self.nodes[i].incarnation += 1;
        if self.trace {
            eprintln!(
                "{:>6} s{} START disk {:?}",
                self.now,
                i + 1,
                self.nodes[i].disk
            );
        }
        let cfg = self.config(i);
        let node = &mut self.nodes[i];
        let durable = DurableState {
            epochs: node.disk.epochs,
            applied: node.disk.snapshot_zxid,
            log: node
                .disk
                .log
                .iter()
                .filter(|e| e.zxid > node.disk.snapshot_zxid)
                .cloned()
                .collect(),
        };
        node.machine = node.disk.snapshot.clone();
        node.pending.clear();
        node.received_snapshots.clear();
        node.proposed.clear();
        node.role = Role::Looking;
        node.zab = Some(Zab::new(cfg, durable));
        let machine = node.machine.clone();
        self.check_prefix(i, &machine, "recovered state");
        self.process(i);
    }

    /// kill -9: what storage had not finished may or may not have reached
    /// the disk, in order.
    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let keep = self.rng.below(node.pending.len() as u64 + 1) as usize;
        let ops: Vec<_> = node.pending.drain(..).take(keep).collect();
        for (_, op, snapshot) in ops {
            self.write_disk(i, op, snapshot);
        }
        let node = &mut self.nodes[i];
        node.zab = None;
        node.role = Role::Looking;
        self.counters.crashes += 1;
        // The others' sockets to it close, and most runtimes notice.
        let dead = self.nodes[i].id;
        for j in 0..self.nodes.len() {
            if j != i && self.nodes[j].zab.is_some() && self.rng.chance(0.7) {
                self.close_reported(j, dead);
            }
        }
        if self.trace {
            eprintln!(
                "{:>6} s{} CRASH kept {keep} ops; disk {:?}",
                self.now,
                i + 1,
                self.nodes[i].disk
            );
        }
    }

    fn write_disk(&mut self, i: usize, op: StoreOp<u64>, snapshot: Option<Machine>) {
        let disk = &mut self.nodes[i].disk;
        match op {
            StoreOp::Append(entries) => {
                for e in entries {
                    if let Some(last) = disk.log.last() {
                        if e.zxid <= last.zxid {
                            let msg = format!(
                                "server {} logged {:#x} after {:#x}",
                                i + 1,
                                e.zxid,
                                last.zxid
                            );
                            self.fail(msg);
                        }
                    }
                    disk.log.push(e);
                }
            }
            StoreOp::TruncateAfter(z) => disk.log.retain(|e| e.zxid <= z),
            StoreOp::InstallSnapshot(z) => {
                disk.snapshot = snapshot.expect("install carries its snapshot");
                disk.snapshot_zxid = z;
                disk.log.clear();
            }
            StoreOp::SetEpochs(e) => disk.epochs = e,
        }
    }

    /// Storage finishes the first `n` pending operations.
    fn persist(&mut self, i: usize, n: usize) {
        let ops: Vec<_> = self.nodes[i].pending.drain(..n).collect();
        let Some(last) = ops.last().map(|(id, _, _)| *id) else {
            return;
        };
        for (_, op, snapshot) in ops {
            self.write_disk(i, op, snapshot);
        }
        if self.trace {
            eprintln!("{:>6} s{} persisted {last}", self.now, i + 1);
        }
        self.nodes[i].zab.as_mut().unwrap().persisted(last);
        self.process(i);
    }

    fn check_prefix(&mut self, i: usize, machine: &Machine, what: &str) {
        for (k, pair) in machine.windows(2).enumerate() {
            if pair[1].0 <= pair[0].0 {
                self.fail(format!(
                    "server {}: {what}: zxid {:#x} after {:#x} at {k}",
                    i + 1,
                    pair[1].0,
                    pair[0].0
                ));
            }
        }
        let common = machine.len().min(self.canon.len());
        if machine[..common] != self.canon[..common] {
            let at = (0..common).find(|&k| machine[k] != self.canon[k]).unwrap();
            self.fail(format!(
                "server {}: {what} diverges at index {at}: {:?} where the committed sequence has {:?}",
                i + 1,
                machine[at],
                self.canon[at]
            ));
        }
        if machine.len() > self.canon.len() {
            self.canon.extend_from_slice(&machine[self.canon.len()..]);
        }
    }

    /// Carries out a server's effects, in order.
    fn process(&mut self, i: usize) {
        loop {
            let Some(zab) = self.nodes[i].zab.as_mut() else {
                return;
            };
            let effects: Vec<Effect<u64>> = zab.drain().collect();
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                self.effect(i, effect);
            }
        }
        let node = &self.nodes[i];
        let zab = node.zab.as_ref().unwrap();
        let applied = node.machine.last().map_or(0, |p| p.0);
        if zab.applied() != applied && !(node.machine.is_empty() && zab.applied() == 0) {
            let msg = format!(
                "server {}: core applied {:#x}, machine at {:#x}",
                i + 1,
                zab.applied(),
                applied
            );
            self.fail(msg);
        }
        let e = zab.epochs();
        if !(e.current <= e.accepted && (zab.last_zxid() >> 32) <= e.current.max(e.accepted)) {
            let msg = format!("server {}: epochs {e:?}", i + 1);
            self.fail(msg);
        }
    }

    fn effect(&mut self, i: usize, effect: Effect<u64>) {
        let id = self.nodes[i].id;
        if self.trace {
            match &effect {
                Effect::Send {
                    message: PeerMessage::Notification(_),
                    ..
                } => {}
                e => eprintln!("{:>6} s{id} {e:?}", self.now),
            }
        }
        match effect {
            Effect::Send { to, message } => {
                let snapshot = match &message {
                    PeerMessage::Quorum(m) => match &m.body {
                        QuorumBody::Snap { zxid } => {
                            let machine = self.nodes[i].machine.clone();
                            let at = machine.last().map_or(0, |p| p.0);
                            if at != *zxid {
                                self.fail(format!(
                                    "server {id} sends SNAP at {zxid:#x} holding {at:#x}"
                                ));
                            }
                            self.counters.snaps += 1;
                            Some(machine)
                        }
                        QuorumBody::Trunc { .. } => {
                            self.counters.truncs += 1;
                            None
                        }
                        QuorumBody::Diff { entries } if !entries.is_empty() => {
                            self.counters.diffs += 1;
                            None
                        }
                        _ => None,
                    },
                    PeerMessage::Notification(_) => None,
                    PeerMessage::Learner(m) => {
                        self.fail(format!("ZAB emitted runtime traffic {m:?}"))
                    }
                };
                self.send(id, to, message, snapshot);
            }
            Effect::Store { op, what } => {
                let snapshot = match &what {
                    StoreOp::InstallSnapshot(z) => {
                        let Some(machine) = self.nodes[i].received_snapshots.remove(z) else {
                            self.fail(format!("server {id} installs a snapshot it never got"));
                        };
                        self.check_prefix(i, &machine, "installed snapshot");
                        self.nodes[i].machine = machine.clone();
                        Some(machine)
                    }
                    _ => None,
                };
                self.nodes[i].pending.push_back((op, what, snapshot));
            }
            Effect::Apply(entries) => {
                let leading = matches!(self.nodes[i].role, Role::Leading { serving: true, .. });
                for e in entries {
                    let node = &mut self.nodes[i];
                    node.machine.push((e.zxid, e.payload));
                    if node.proposed.remove(&e.payload) && leading {
                        self.acknowledged.insert(e.payload);
                    }
                }
                let machine = std::mem::take(&mut self.nodes[i].machine);
                let before = self.canon.len();
                self.check_prefix(i, &machine, "applied state");
                self.counters.committed += (self.canon.len() - before) as u64;
                self.nodes[i].machine = machine;
            }
            Effect::Role(role) => {
                self.nodes[i].role = role;
                match role {
                    Role::Leading {
                        epoch,
                        serving: true,
                    } => {
                        self.counters.elections_won += 1;
                        if let Some(other) = self.leaders.insert(epoch, id) {
                            if other != id {
                                self.fail(format!(
                                    "two leaders established epoch {epoch}: {other} and {id}"
                                ));
                            }
                        }
                    }
                    Role::Following {
                        leader,
                        epoch,
                        serving: true,
                    } if self.leaders.get(&epoch) != Some(&leader) => {
                        let known = self.leaders.get(&epoch).copied();
                        self.fail(format!(
                            "server {id} serves under {leader} in epoch {epoch}, established by {known:?}"
                        ));
                    }
                    _ => {}
                }
            }
        }
    }

    fn send(
        &mut self,
        from: ServerId,
        to: ServerId,
        message: PeerMessage<u64>,
        snap: Option<Machine>,
    ) {
        if self.blocked.contains(&(from, to)) || self.rng.chance(self.faults.loss) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplication) {
            2
        } else {
            1
        };
        for copy in 0..copies {
            let delay = 1 + self.rng.below(4);
            let mut at = self.now + delay;
            let clock = self.link_clock.entry((from, to)).or_insert(0);
            if copy == 0 && !self.rng.chance(self.faults.reordering) {
                at = at.max(*clock);
                *clock = at;
            }
            let key = self.next_message;
            self.next_message += 1;
            self.in_flight.insert(
                key,
                InFlight {
                    from,
                    to,
                    message: message.clone(),
                    snapshot: snap.clone(),
                },
            );
            self.network.push(Reverse((at, key as u64, key)));
        }
    }

    fn deliver(&mut self, m: InFlight) {
        let Some(i) = self.nodes.iter().position(|n| n.id == m.to) else {
            return;
        };
        if self.nodes[i].zab.is_none() || self.blocked.contains(&(m.from, m.to)) {
            return;
        }
        if let (PeerMessage::Quorum(q), Some(machine)) = (&m.message, m.snapshot) {
            if let QuorumBody::Snap { zxid } = q.body {
                self.nodes[i].received_snapshots.insert(zxid, machine);
            }
        }
        if self.trace && !matches!(m.message, PeerMessage::Notification(_)) {
            eprintln!("{:>6} s{} <- s{} {:?}", self.now, m.to, m.from, m.message);
        }
        self.nodes[i].zab.as_mut().unwrap().step(m.from, m.message);
        self.process(i);
    }

    fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.zab.is_some() && matches!(n.role, Role::Leading { serving: true, .. }))
    }

    fn propose(&mut self, i: usize) {
        let value = self.next_value;
        self.next_value += 1;
        let zab = self.nodes[i].zab.as_mut().unwrap();
        if zab.propose(value).is_ok() {
            self.nodes[i].proposed.insert(value);
        }
        self.process(i);
    }

    /// Server `i`'s runtime reports `peer`'s connection closed.
    fn close_reported(&mut self, i: usize, peer: ServerId) {
        if let Some(zab) = self.nodes[i].zab.as_mut() {
            zab.peer_disconnected(peer);
            self.process(i);
        }
    }

    /// A random partition: each side gets a random subset.
    fn partition(&mut self) {
        self.blocked.clear();
        let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).collect();
        let side: Vec<bool> = ids.iter().map(|_| self.rng.chance(0.5)).collect();
        let one_way = self.rng.chance(0.2);
        for (a, &x) in ids.iter().enumerate() {
            for (b, &y) in ids.iter().enumerate() {
                if side[a] != side[b] && (!one_way || side[a]) {
                    self.blocked.insert((x, y));
                }
            }
        }
    }

    /// One unit of simulated time.
    fn step(&mut self, propose_chance: f64) {
        self.now += 1;
        let f = self.faults;
        let n = self.nodes.len();
        if self.rng.chance(f.crash) {
            let i = self.rng.below(n as u64) as usize;
            if self.nodes[i].zab.is_some() {
                self.crash(i);
            }
        }
        if self.rng.chance(f.restart) {
            let i = self.rng.below(n as u64) as usize;
            if self.nodes[i].zab.is_none() {
                self.start(i);
            }
        }
        if self.rng.chance(f.partition) {
            self.partition();
        }
        if self.rng.chance(f.heal) {
            self.blocked.clear();
        }
        if self.rng.chance(f.spurious_close) {
            let i = self.rng.below(n as u64) as usize;
            let peer = self.nodes[self.rng.below(n as u64) as usize].id;
            if peer != self.nodes[i].id {
                self.close_reported(i, peer);
            }
        }
        while let Some(Reverse((at, _, key))) = self.network.peek().copied() {
            if at > self.now {
                break;
            }
            self.network.pop();
            let m = self.in_flight.remove(&key).unwrap();
            self.deliver(m);
        }
        for i in 0..n {
            if self.nodes[i].zab.is_none() {
                continue;
            }
            if (self.now + i as u64 * 3).is_multiple_of(TICK) {
                self.nodes[i].zab.as_mut().unwrap().tick();
                self.process(i);
            }
            if !self.nodes[i].pending.is_empty() && self.rng.chance(0.3) {
                let len = self.nodes[i].pending.len() as u64;
                let k = 1 + self.rng.below(len) as usize;
                self.persist(i, k);
            }
            if self.rng.chance(0.002) {
                self.snapshot(i);
            }
        }
        if self.rng.chance(propose_chance) {
            if let Some(i) = self.leader() {
                self.propose(i);
            }
        }
    }

    /// A server writes a snapshot of its state and lets the core compact.
    fn snapshot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let zxid = node.machine.last().map_or(0, |p| p.0);
        if zxid <= node.disk.snapshot_zxid {
            return;
        }
        // Snapshots hold only applied, hence durable, state; the log below
        // them may go.
        node.disk.snapshot = node.machine.clone();
        node.disk.snapshot_zxid = zxid;
        node.disk.log.retain(|e| e.zxid > zxid);
        node.zab.as_mut().unwrap().compact(zxid);
    }

    fn converged(&self) -> bool {
        let Some(l) = self.leader() else {
            return false;
        };
        let target = &self.nodes[l].machine;
        self.nodes.iter().all(|n| {
            n.zab.is_some() && n.role.serving() && n.machine == *target && n.pending.is_empty()
        })
    }
}

/// One schedule: faults for a while, then quiet until converged.
fn run(seed: u64, size: usize, observers: usize) -> Counters {
    let mut sim = Sim::new(seed, size, observers);
    let mut rng = Rng(seed ^ 0x5eed);
    let hostile = Faults {
        loss: 0.01 + rng.below(40) as f64 / 1000.0,
        duplication: rng.below(30) as f64 / 1000.0,
        reordering: rng.below(20) as f64 / 1000.0,
        crash: 0.0005 + rng.below(30) as f64 / 10_000.0,
        restart: 0.01,
        partition: rng.below(20) as f64 / 10_000.0,
        heal: 0.003,
        spurious_close: rng.below(20) as f64 / 10_000.0,
    };
    let fault_time = 1500 + rng.below(2500);
    sim.faults = hostile;
    while sim.now < fault_time {
        sim.step(0.3);
    }

    // Heal everything; every server comes back.
    sim.faults = QUIET;
    sim.blocked.clear();
    for i in 0..sim.nodes.len() {
        if sim.nodes[i].zab.is_none() {
            sim.start(i);
        }
    }
    let deadline = sim.now + 100 * TICK;
    while !sim.converged() {
        if sim.now > deadline {
            let states: Vec<String> = sim
                .nodes
                .iter()
                .map(|n| format!("{}: {:?} applied {}", n.id, n.zab, n.machine.len()))
                .collect();
            sim.fail(format!(
                "no convergence after the faults:\n{}",
                states.join("\n")
            ));
        }
        sim.step(0.0);
    }

    // It still takes writes, and they reach every server.
    let before = sim.canon.len();
    let deadline = sim.now + 100 * TICK;
    while sim.canon.len() < before + 20 || !sim.converged() {
        if sim.now > deadline {
            sim.fail("writes after the faults did not commit everywhere".into());
        }
        sim.step(if sim.canon.len() < before + 20 {
            0.5
        } else {
            0.0
        });
    }
    for value in &sim.acknowledged {
        for n in &sim.nodes {
            if !n.machine.iter().any(|p| p.1 == *value) {
                sim.fail(format!(
                    "acknowledged value {value} missing on server {}",
                    n.id
                ));
            }
        }
    }
    sim.counters
}

fn schedules() -> u64 {
    std::env::var("ZOO_ZAB_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

fn run_many(size: usize, observers: usize, salt: u64) {
    if let Ok(seed) = std::env::var("ZOO_ZAB_SEED") {
        let seed: u64 = seed.parse().expect("ZOO_ZAB_SEED is a number");
        if seed % 16 == salt {
            run(seed, size, observers);
        }
        return;
    }
    let first: u64 = std::env::var("ZOO_ZAB_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut total = Counters::default();
    for k in first..first + schedules() {
        let seed = k * 16 + salt;
        let c = run(seed, size, observers);
        total.elections_won += c.elections_won;
        total.diffs += c.diffs;
        total.truncs += c.truncs;
        total.snaps += c.snaps;
        total.crashes += c.crashes;
        total.committed += c.committed;
    }
    eprintln!("{size}+{observers} servers: {total:?}");
    // The schedules must reach every synchronization path and commit a lot,
    // or they prove little.
    assert!(
        total.diffs > 0 && total.truncs > 0 && total.snaps > 0,
        "{total:?}"
    );
    assert!(total.committed > schedules() * 20, "{total:?}");
    assert!(total.elections_won > schedules(), "{total:?}");
}

#[test]
fn three_servers() {
    run_many(3, 0, 3);
}

#[test]
fn five_servers() {
    run_many(5, 0, 5);
}

#[test]
fn three_servers_and_an_observer() {
    run_many(3, 1, 7);
}
