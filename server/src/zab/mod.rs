//! `zab`: leader election, discovery, synchronization and broadcast — ZAB as
//! a pure state machine.
//!
//! [`Zab`] holds no socket, no database and no clock. The runtime feeds it
//! inputs — [`Zab::step`] (a peer's message), [`Zab::tick`] (time passed),
//! [`Zab::propose`] (a new transaction, on the leader) and
//! [`Zab::persisted`] (storage finished operations) — and carries out the
//! [`Effect`]s it returns from [`Zab::drain`], *in order*: send a message,
//! store something, apply committed entries, announce a role.
//!
//! # What the runtime must do
//! - Execute [`Effect::Store`] operations in the order given, each durably
//!   (synced), and report progress with `persisted(op)`: every operation up to
//!   `op` is durable. Appends may be grouped into one write and one sync.
//! - Apply [`Effect::Apply`] entries to its state machine in order, before
//!   processing any later effect; a [`QuorumBody::Snap`] it is asked to send
//!   must carry the state machine as of that moment (its zxid is the one in
//!   the message), and a received one is installed by
//!   [`StoreOp::InstallSnapshot`].
//! - Deliver the messages of one link in order, or not at all (TCP). The core
//!   also numbers them and treats a gap as a broken link, so a lossy or
//!   reordering network costs liveness, never safety.
//!
//! # What the core guarantees
//! - At most one leader establishes each epoch: a server accepts an epoch only
//!   above its durable acceptedEpoch, and a leader needs a quorum of them.
//! - Persist before acknowledge, in ZAB's order: a follower's entries are
//!   durable, then its currentEpoch, before it acknowledges NEWLEADER; an
//!   entry is durable before it is acknowledged (ZOOKEEPER-3911, -4646).
//! - Nothing is applied before it is committed and durable on this server,
//!   so a state machine never runs ahead of its own disk (ZOOKEEPER-4882);
//!   applied zxids strictly increase; histories have no holes.
//! - At every start `currentEpoch ≤ acceptedEpoch` and `epoch(last zxid) ≤
//!   acceptedEpoch` are asserted. (`epoch(last zxid) ≤ currentEpoch` holds
//!   except on a follower stopped between logging a new leader's history and
//!   adopting its epoch — the crash ZOOKEEPER-1653 tripped on — which is safe:
//!   it only lowers that server's vote.)

mod election;
mod follower;
mod history;
mod leader;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

pub use zoo_wire::peer::{
    Entry, Notification, PeerMessage, PeerState, QuorumBody, QuorumMessage, ServerId, Vote, Zxid,
};

use crate::storage::{epoch_of, Epochs};
use election::Election;
use follower::Follower;
use history::History;
use leader::Leader;

/// A member of the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub id: ServerId,
    /// Observers receive commits but neither vote nor count for quorums.
    pub voting: bool,
}

/// Who is in the ensemble and how patient to be, in ticks.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    pub id: ServerId,
    /// Every member, this server included.
    pub members: Vec<Member>,
    /// Distinct for every start of this server (below 2^31), so that links
    /// of an earlier run are never taken for current ones.
    pub incarnation: u64,
    /// Ticks a follower may spend connecting and syncing to a leader, and a
    /// leader may spend establishing its epoch (ZooKeeper's `initLimit`).
    pub init_limit_ticks: u64,
    /// Ticks without hearing from the other side before a link is given up
    /// (ZooKeeper's `syncLimit`).
    pub sync_limit_ticks: u64,
    /// Ticks an election waits, once a quorum agrees, for a better vote
    /// (ZooKeeper's `finalizeWait`); an election all voters agree on ends
    /// at once.
    pub finalize_ticks: u64,
    /// Committed entries kept in memory below a compaction point, so that a
    /// follower a little behind gets a DIFF rather than a whole snapshot.
    pub retained_entries: usize,
}

/// What the runtime recovered from disk.
#[derive(Debug, Clone)]
pub struct DurableState<P> {
    pub epochs: Epochs,
    /// The zxid of the state machine the runtime holds (its snapshot's).
    pub applied: Zxid,
    /// Every logged entry above `applied`, in order.
    pub log: Vec<Entry<P>>,
}

/// A storage operation; see the module's contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp<P> {
    Append(Vec<Entry<P>>),
    /// Remove every log entry above the zxid.
    TruncateAfter(Zxid),
    /// Replace the state machine with the snapshot received beside the SNAP
    /// message for this zxid, store it, and empty the log.
    InstallSnapshot(Zxid),
    SetEpochs(Epochs),
}

/// What this server is, as the runtime needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Looking,
    /// Following (or observing) `leader`; `serving` once synchronized.
    Following {
        leader: ServerId,
        epoch: i64,
        serving: bool,
    },
    /// Leading `epoch`; `serving` once a quorum has synchronized.
    Leading {
        epoch: i64,
        serving: bool,
    },
}

/// One thing for the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<P> {
    Send {
        to: ServerId,
        message: PeerMessage<P>,
    },
    Store {
        op: u64,
        what: StoreOp<P>,
    },
    /// Committed entries, in zxid order, to apply now.
    Apply(Vec<Entry<P>>),
    Role(Role),
}

/// Why a proposal was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("this server is not an established leader")]
    NotLeader,
    /// The epoch's 32-bit counter is used up; a new election follows.
    #[error("the epoch's zxid counter is exhausted")]
    EpochExhausted,
}

/// What storage completion means to the core.
#[derive(Debug, Clone, Copy)]
enum Durable {
    Log(Zxid),
    Truncated(Zxid),
    Snapshot(Zxid),
    Epochs(Epochs),
}

/// A message to send once every storage operation issued before it is durable.
#[derive(Debug)]
struct Deferred<P> {
    after_op: u64,
    to: ServerId,
    link: u64,
    body: QuorumBody<P>,
}

/// The sending and receiving ends of one link, numbering its messages.
#[derive(Debug, Clone)]
struct Link {
    id: u64,
    next_send: u64,
    next_recv: u64,
}

/// What the receiving end makes of a sequence number.
#[derive(Debug, PartialEq, Eq)]
enum Arrival {
    InOrder,
    Duplicate,
    Gap,
}

impl Link {
    fn new(id: u64) -> Self {
        Link {
            id,
            next_send: 0,
            next_recv: 0,
        }
    }

    fn receive(&mut self, seq: u64) -> Arrival {
        match seq.cmp(&self.next_recv) {
            std::cmp::Ordering::Less => Arrival::Duplicate,
            std::cmp::Ordering::Greater => Arrival::Gap,
            std::cmp::Ordering::Equal => {
                self.next_recv += 1;
                Arrival::InOrder
            }
        }
    }

    fn message<P>(&mut self, body: QuorumBody<P>) -> PeerMessage<P> {
        let seq = self.next_send;
        self.next_send += 1;
        PeerMessage::Quorum(QuorumMessage {
            link: self.id,
            seq,
            body,
        })
    }
}

#[derive(Debug)]
enum State {
    Looking(Election),
    Following(Follower),
    Leading(Leader),
}

/// One server's ZAB state machine.
pub struct Zab<P> {
    cfg: ZabConfig,
    voters: Vec<ServerId>,
    /// How many voters make a quorum: a majority.
    quorum: usize,
    /// Epochs as last issued to storage, and as durable.
    epochs: Epochs,
    durable_epochs: Epochs,
    history: History<P>,
    /// The last zxid whose append is durable.
    durable_zxid: Zxid,
    /// The last zxid applied to the state machine, and the last known to be
    /// committed (by this server's current leader, or itself).
    applied: Zxid,
    commit: Zxid,
    next_op: u64,
    pending_ops: VecDeque<(u64, Durable)>,
    deferred: VecDeque<Deferred<P>>,
    /// Links this server started, so each gets a fresh id.
    links_started: u64,
    /// The election round, and the vote this server holds (in an election)
    /// or was elected by (once decided).
    round: u64,
    vote: Vote,
    now: u64,
    state: State,
    out: Vec<Effect<P>>,
}

impl<P: Clone> fmt::Debug for Zab<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zab")
            .field("id", &self.cfg.id)
            .field("state", &self.state)
            .field("epochs", &self.epochs)
            .field("last_zxid", &self.history.last())
            .field("applied", &self.applied)
            .field("commit", &self.commit)
            .finish()
    }
}

impl<P: Clone + fmt::Debug> Zab<P> {
    /// A server starting from what it recovered; it starts an election.
    pub fn new(cfg: ZabConfig, durable: DurableState<P>) -> Self {
        let voters: Vec<ServerId> = cfg
            .members
            .iter()
            .filter(|m| m.voting)
            .map(|m| m.id)
            .collect();
        assert!(!voters.is_empty(), "an ensemble needs a voting member");
        assert!(
            cfg.members.iter().any(|m| m.id == cfg.id),
            "server {} is not a member",
            cfg.id
        );
        assert!(cfg.members.iter().all(|m| m.id != 0), "server id 0");
        assert!(cfg.incarnation < 1 << 31, "incarnation out of range");
        let history = History::new(durable.applied, durable.log);
        let epochs = durable.epochs;
        // A follower stopped between logging a new leader's history and
        // adopting its epoch has entries above its currentEpoch; that only
        // lowers its vote, so acceptedEpoch is the bound that must hold.
        assert!(
            epoch_of(history.last()) <= epochs.accepted && epochs.current <= epochs.accepted,
            "inconsistent epochs: last zxid {:#x}, currentEpoch {}, acceptedEpoch {}",
            history.last(),
            epochs.current,
            epochs.accepted
        );
        let quorum = voters.len() / 2 + 1;
        let durable_zxid = history.last();
        let mut zab = Zab {
            voters,
            quorum,
            epochs,
            durable_epochs: epochs,
            durable_zxid,
            applied: durable.applied,
            commit: durable.applied,
            history,
            next_op: 0,
            pending_ops: VecDeque::new(),
            deferred: VecDeque::new(),
            links_started: 0,
            round: 0,
            vote: Vote {
                epoch: 0,
                zxid: 0,
                leader: 0,
            },
            now: 0,
            state: State::Looking(Election::default()),
            out: Vec::new(),
            cfg,
        };
        zab.become_looking();
        zab
    }

    /// The effects produced so far, to carry out in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect<P>> {
        self.out.drain(..)
    }

    pub fn id(&self) -> ServerId {
        self.cfg.id
    }

    pub fn role(&self) -> Role {
        match &self.state {
            State::Looking(_) => Role::Looking,
            State::Following(f) => f.role(),
            State::Leading(l) => l.role(),
        }
    }

    pub fn epochs(&self) -> Epochs {
        self.epochs
    }

    pub fn last_zxid(&self) -> Zxid {
        self.history.last()
    }

    pub fn applied(&self) -> Zxid {
        self.applied
    }

    /// The zxid the next proposal will get, on an established leader.
    pub fn next_zxid(&self) -> Option<Zxid> {
        match &self.state {
            State::Leading(l) if l.serving() => {
                Some(leader::next_zxid_of(l.epoch(), self.history.last()))
            }
            _ => None,
        }
    }

    /// Time passed: one tick.
    pub fn tick(&mut self) {
        self.now += 1;
        match &self.state {
            State::Looking(_) => self.election_tick(),
            State::Following(_) => self.follower_tick(),
            State::Leading(_) => self.leader_tick(),
        }
    }

    /// A message from peer `from`.
    pub fn step(&mut self, from: ServerId, message: PeerMessage<P>) {
        if from == self.cfg.id || !self.is_member(from) {
            tracing::warn!(peer = from, "message from a server outside the ensemble");
            return;
        }
        match message {
            PeerMessage::Notification(n) => self.on_notification(from, n),
            // The runtime's own traffic; it never reaches here from a runtime
            // that routes it.
            PeerMessage::Learner(_) => {}
            PeerMessage::Quorum(m) => match &self.state {
                State::Looking(_) => {}
                State::Following(_) => self.follower_step(from, m),
                State::Leading(_) => self.leader_step(from, m),
            },
        }
    }

    /// The runtime saw `peer`'s connection close: a follower gives up its
    /// leader at once, a leader drops the follower, rather than waiting
    /// out `syncLimit` (as a ZooKeeper server does when a socket closes).
    pub fn peer_disconnected(&mut self, peer: ServerId) {
        match &self.state {
            State::Looking(_) => {}
            State::Following(f) => {
                if f.leader == peer {
                    self.abandon_leader("the connection from the leader closed");
                }
            }
            State::Leading(_) => self.drop_follower(peer),
        }
    }

    /// Storage finished every operation up to `op`.
    pub fn persisted(&mut self, op: u64) {
        while let Some(&(id, what)) = self.pending_ops.front() {
            if id > op {
                break;
            }
            self.pending_ops.pop_front();
            match what {
                Durable::Log(z) => self.durable_zxid = z,
                Durable::Truncated(z) => self.durable_zxid = self.durable_zxid.min(z),
                Durable::Snapshot(z) => self.durable_zxid = z,
                Durable::Epochs(e) => self.durable_epochs = e,
            }
        }
        self.flush_deferred();
        self.apply_committed();
        match &self.state {
            State::Looking(_) => {}
            State::Following(_) => {}
            State::Leading(_) => self.leader_durable(),
        }
    }

    /// The runtime holds a snapshot at `zxid`: entries up to it may go from
    /// memory, except the last `retained_entries` kept for DIFFs.
    pub fn compact(&mut self, zxid: Zxid) {
        let zxid = zxid.min(self.applied);
        let keep = self.cfg.retained_entries;
        let candidates = self.history.range(self.history.base(), zxid);
        if candidates.len() > keep {
            let point = candidates[candidates.len() - keep - 1].zxid;
            self.history.compact(point);
        }
    }

    fn is_member(&self, id: ServerId) -> bool {
        self.cfg.members.iter().any(|m| m.id == id)
    }

    fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    fn send(&mut self, to: ServerId, message: PeerMessage<P>) {
        self.out.push(Effect::Send { to, message });
    }

    fn store(&mut self, what: StoreOp<P>) -> u64 {
        self.next_op += 1;
        let op = self.next_op;
        let durable = match &what {
            StoreOp::Append(entries) => Durable::Log(entries.last().expect("empty append").zxid),
            StoreOp::TruncateAfter(z) => Durable::Truncated(*z),
            StoreOp::InstallSnapshot(z) => Durable::Snapshot(*z),
            StoreOp::SetEpochs(e) => Durable::Epochs(*e),
        };
        self.pending_ops.push_back((op, durable));
        self.out.push(Effect::Store { op, what });
        op
    }

    fn set_epochs(&mut self, epochs: Epochs) {
        assert!(
            epochs.current <= epochs.accepted,
            "currentEpoch above acceptedEpoch"
        );
        assert!(
            epochs.accepted >= self.epochs.accepted,
            "acceptedEpoch going back"
        );
        self.epochs = epochs;
        self.store(StoreOp::SetEpochs(epochs));
    }

    /// Appends entries to history and log; they must follow the history.
    fn append(&mut self, entries: Vec<Entry<P>>) {
        if entries.is_empty() {
            return;
        }
        for entry in &entries {
            self.history.push(entry.clone());
        }
        self.store(StoreOp::Append(entries));
    }

    /// Sends `body` on `link` to `to` once everything stored so far is durable.
    fn send_when_durable(&mut self, to: ServerId, link: u64, body: QuorumBody<P>) {
        self.deferred.push_back(Deferred {
            after_op: self.next_op,
            to,
            link,
            body,
        });
        self.flush_deferred();
    }

    fn durable_op(&self) -> u64 {
        self.pending_ops
            .front()
            .map_or(self.next_op, |&(id, _)| id - 1)
    }

    fn flush_deferred(&mut self) {
        let durable = self.durable_op();
        while self.deferred.front().is_some_and(|d| d.after_op <= durable) {
            let d = self.deferred.pop_front().expect("front exists");
            // Consecutive ACKs collapse into the last: an ACK covers every
            // entry up to its zxid.
            if matches!(d.body, QuorumBody::Ack { .. })
                && self.deferred.front().is_some_and(|n| {
                    n.after_op <= durable
                        && n.link == d.link
                        && matches!(n.body, QuorumBody::Ack { .. })
                })
            {
                continue;
            }
            self.send_on_link(d.to, d.link, d.body);
        }
    }

    /// Sends on the current link to `to`, if `link` still is it.
    fn send_on_link(&mut self, to: ServerId, link: u64, body: QuorumBody<P>) {
        let message = match &mut self.state {
            State::Following(f) if f.leader == to && f.link.id == link => f.link.message(body),
            State::Leading(l) => match l.peers.get_mut(&to) {
                Some(p) if p.link.id == link => p.link.message(body),
                _ => return,
            },
            _ => return,
        };
        self.send(to, message);
    }

    /// Applies what is committed and durable here.
    fn apply_committed(&mut self) {
        let upto = self.commit.min(self.durable_zxid);
        if upto <= self.applied {
            return;
        }
        let entries = self.history.range(self.applied, upto);
        if let Some(last) = entries.last() {
            assert!(last.zxid > self.applied, "applied zxids must increase");
            self.applied = last.zxid;
            self.out.push(Effect::Apply(entries));
        }
    }

    /// Any role → looking: a new election round.
    fn become_looking(&mut self) {
        let was_looking = matches!(self.state, State::Looking(_));
        self.deferred.clear();
        self.state = State::Looking(Election::default());
        if !was_looking || self.now == 0 {
            self.out.push(Effect::Role(Role::Looking));
        }
        self.start_election();
    }

    fn new_link_id(&mut self) -> u64 {
        self.links_started += 1;
        self.cfg.incarnation << 32 | (self.links_started & 0xffff_ffff)
    }
}

/// Counts the voters of `ids` (with duplicates removed by the caller).
fn count_voters<'a>(voters: &[ServerId], ids: impl Iterator<Item = &'a ServerId>) -> usize {
    ids.filter(|id| voters.contains(id)).count()
}

/// Peers by id, ordered, so that effects come out in a deterministic order.
type Peers<T> = BTreeMap<ServerId, T>;
