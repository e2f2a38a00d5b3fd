//! Following (and observing): discovery, synchronization and broadcast as
//! the leader's peer sees them.
//!
//! The follower opens a link with FOLLOWERINFO, accepts the leader's epoch
//! only above its own acceptedEpoch (or equal, reconnecting), takes the
//! DIFF / TRUNC / SNAP that makes its history equal the leader's, and
//! acknowledges NEWLEADER only once that history and the new currentEpoch
//! are durable. In broadcast it logs each proposal and acknowledges it once
//! durable; it applies what the leader has committed and it has on disk.

use super::history::next_in_history;
use super::{Arrival, Epochs, StoreOp};
use super::{Effect, Link, QuorumBody, QuorumMessage, Role, ServerId, State, Zab, Zxid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// FOLLOWERINFO sent, waiting for LEADERINFO.
    Discovery,
    /// Epoch acknowledged; taking the leader's history.
    Sync { new_leader_seen: bool },
    /// UPTODATE received: serving.
    Broadcast,
}

#[derive(Debug)]
pub(super) struct Follower {
    pub(super) leader: ServerId,
    pub(super) link: Link,
    phase: Phase,
    /// The leader's epoch, once LEADERINFO has told it.
    epoch: i64,
    started: u64,
    last_heard: u64,
}

impl Follower {
    pub(super) fn role(&self) -> Role {
        Role::Following {
            leader: self.leader,
            epoch: self.epoch,
            serving: self.phase == Phase::Broadcast,
        }
    }
}

impl<P: Clone + std::fmt::Debug> Zab<P> {
    pub(super) fn become_follower(&mut self, leader: ServerId) {
        let link = Link::new(self.new_link_id());
        // What this server knew to be committed may refer to entries the new
        // leader replaces; it learns the commit point again.
        self.commit = self.applied;
        self.state = State::Following(Follower {
            leader,
            link,
            phase: Phase::Discovery,
            epoch: 0,
            started: self.now,
            last_heard: self.now,
        });
        let info = self.follower_info();
        self.follower_send(info);
    }

    fn follower_info(&self) -> QuorumBody<P> {
        QuorumBody::FollowerInfo {
            accepted_epoch: self.epochs.accepted,
            observer: !self.is_voter(self.cfg.id),
        }
    }

    fn follower(&mut self) -> &mut Follower {
        match &mut self.state {
            State::Following(f) => f,
            _ => unreachable!("not following"),
        }
    }

    fn follower_send(&mut self, body: QuorumBody<P>) {
        let f = self.follower();
        let (to, message) = (f.leader, f.link.message(body));
        self.send(to, message);
    }

    /// Sends once everything stored so far is durable.
    fn follower_send_when_durable(&mut self, body: QuorumBody<P>) {
        let f = self.follower();
        let (to, link) = (f.leader, f.link.id);
        self.send_when_durable(to, link, body);
    }

    /// The link or the leader misbehaved: look for a leader again.
    pub(super) fn abandon_leader(&mut self, why: &str) {
        tracing::warn!(server = self.cfg.id, why, "leaving the leader");
        self.become_looking();
    }

    pub(super) fn follower_step(&mut self, from: ServerId, m: QuorumMessage<P>) {
        let now = self.now;
        let f = self.follower();
        if from != f.leader || m.link != f.link.id {
            return;
        }
        match f.link.receive(m.seq) {
            Arrival::Duplicate => return,
            Arrival::Gap => return self.abandon_leader("a message of the link was lost"),
            Arrival::InOrder => {}
        }
        f.last_heard = now;
        let phase = f.phase;
        let name = m.body.name();
        match (phase, m.body) {
            (_, QuorumBody::Ping) => self.follower_send(QuorumBody::Ping),
            (Phase::Discovery, QuorumBody::LeaderInfo { epoch }) => {
                if epoch < self.epochs.accepted {
                    return self.abandon_leader("the leader's epoch is below the accepted one");
                }
                let f = self.follower();
                f.epoch = epoch;
                f.phase = Phase::Sync {
                    new_leader_seen: false,
                };
                if epoch > self.epochs.accepted {
                    self.set_epochs(Epochs {
                        accepted: epoch,
                        current: self.epochs.current,
                    });
                }
                let (current_epoch, last_zxid) = (self.epochs.current, self.history.last());
                self.follower_send_when_durable(QuorumBody::AckEpoch {
                    current_epoch,
                    last_zxid,
                });
            }
            (
                Phase::Sync {
                    new_leader_seen: false,
                },
                QuorumBody::Diff { entries },
            ) => {
                let mut last = self.history.last();
                for entry in &entries {
                    if !next_in_history(last, entry.zxid) {
                        return self.abandon_leader("DIFF does not follow the log");
                    }
                    last = entry.zxid;
                }
                self.append(entries);
            }
            (
                Phase::Sync {
                    new_leader_seen: false,
                },
                QuorumBody::Trunc { zxid },
            ) => {
                if zxid < self.applied {
                    tracing::error!(
                        server = self.cfg.id,
                        zxid,
                        applied = self.applied,
                        "TRUNC below the applied zxid refused"
                    );
                    return self.abandon_leader("TRUNC below applied");
                }
                if !self.history.contains(zxid) {
                    return self.abandon_leader("TRUNC to a zxid this log does not hold");
                }
                self.history.truncate_after(zxid);
                self.durable_zxid = self.durable_zxid.min(zxid);
                self.store(StoreOp::TruncateAfter(zxid));
            }
            (
                Phase::Sync {
                    new_leader_seen: false,
                },
                QuorumBody::Snap { zxid },
            ) => {
                if zxid < self.applied {
                    return self.abandon_leader("SNAP older than the applied state");
                }
                self.history.reset(zxid);
                self.applied = zxid;
                self.commit = zxid;
                self.durable_zxid = self.durable_zxid.min(zxid);
                self.store(StoreOp::InstallSnapshot(zxid));
            }
            (
                Phase::Sync {
                    new_leader_seen: false,
                },
                QuorumBody::NewLeader { epoch, zxid },
            ) => {
                let last = self.history.last();
                let f = self.follower();
                if epoch != f.epoch || zxid != last {
                    return self.abandon_leader("NEWLEADER does not match the synced history");
                }
                f.phase = Phase::Sync {
                    new_leader_seen: true,
                };
                self.set_epochs(Epochs {
                    accepted: self.epochs.accepted,
                    current: epoch,
                });
                // Entries durable, then currentEpoch durable, then the ACK.
                self.follower_send_when_durable(QuorumBody::AckNewLeader { epoch });
            }
            (
                Phase::Sync {
                    new_leader_seen: true,
                },
                QuorumBody::UpToDate { commit },
            ) => {
                self.follower().phase = Phase::Broadcast;
                self.learn_commit(commit);
                let role = self.follower().role();
                self.out.push(Effect::Role(role));
            }
            (
                Phase::Sync {
                    new_leader_seen: true,
                }
                | Phase::Broadcast,
                QuorumBody::Proposal { entry },
            ) => {
                if !self.history.can_append(entry.zxid) {
                    return self.abandon_leader("PROPOSAL does not follow the log");
                }
                let zxid = entry.zxid;
                self.append(vec![entry]);
                if self.is_voter(self.cfg.id) {
                    self.follower_send_when_durable(QuorumBody::Ack { zxid });
                }
            }
            (
                Phase::Sync {
                    new_leader_seen: true,
                }
                | Phase::Broadcast,
                QuorumBody::Commit { zxid },
            ) => self.learn_commit(zxid),
            (_, _) => {
                tracing::warn!(server = self.cfg.id, message = name, ?phase, "unexpected");
                self.abandon_leader("unexpected message");
            }
        }
    }

    fn learn_commit(&mut self, zxid: Zxid) {
        let zxid = zxid.min(self.history.last());
        if zxid > self.commit {
            self.commit = zxid;
        }
        self.apply_committed();
    }

    pub(super) fn follower_tick(&mut self) {
        let (now, init, sync) = (
            self.now,
            self.cfg.init_limit_ticks,
            self.cfg.sync_limit_ticks,
        );
        let f = self.follower();
        if f.phase != Phase::Broadcast && now - f.started > init {
            self.abandon_leader("no synchronization within initLimit");
        } else if f.phase == Phase::Discovery {
            // The leader may have still been electing when the first copy
            // came; it ignores a copy of a link's first message it has.
            let (to, link) = (f.leader, f.link.id);
            let body = self.follower_info();
            let message = super::PeerMessage::Quorum(QuorumMessage { link, seq: 0, body });
            self.send(to, message);
        } else if f.phase == Phase::Broadcast && now - f.last_heard > sync {
            self.abandon_leader("no word from the leader within syncLimit");
        }
    }
}
