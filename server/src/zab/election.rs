//! Leader election: ZooKeeper's fast leader election, in rounds.
//!
//! A looking server votes for itself — `(currentEpoch, last zxid, id)` —
//! and tells every member; on hearing a better vote of its round it adopts
//! and repeats it. Once a quorum of voters holds its vote it waits
//! `finalize_ticks` for a better one (or none, when every voter agrees), then
//! leads or follows. A server that hears from a quorum of voters already
//! following one leader, and from that leader, joins it without a round.
//! Election only needs to pick a good leader "with high probability":
//! safety comes from discovery, which re-checks epochs and histories.

use super::{
    count_voters, Effect, Notification, PeerState, Peers, Role, ServerId, State, Vote, Zab,
};

/// The state of a looking server.
#[derive(Debug, Default)]
pub(super) struct Election {
    /// Votes of looking voters in this round, this server's included.
    votes: Peers<Vote>,
    /// What servers that are not looking say they follow.
    settled: Peers<(PeerState, Vote)>,
    /// When a quorum started to agree on the current vote.
    agreed_since: Option<u64>,
}

impl<P: Clone + std::fmt::Debug> Zab<P> {
    /// This server's own candidacy; observers stand for no one.
    fn own_vote(&self) -> Vote {
        if self.is_voter(self.cfg.id) {
            Vote {
                epoch: self.epochs.current,
                zxid: self.history.last(),
                leader: self.cfg.id,
            }
        } else {
            Vote {
                epoch: 0,
                zxid: 0,
                leader: 0,
            }
        }
    }

    fn election(&mut self) -> &mut Election {
        match &mut self.state {
            State::Looking(e) => e,
            _ => unreachable!("not looking"),
        }
    }

    /// A new round with this server's own vote.
    pub(super) fn start_election(&mut self) {
        self.round += 1;
        self.vote = self.own_vote();
        self.restart_tally();
        self.broadcast_notification();
        self.check_election();
    }

    /// Forgets the votes of an older round and counts this server's own.
    fn restart_tally(&mut self) {
        let (me, vote, voter) = (self.cfg.id, self.vote, self.is_voter(self.cfg.id));
        let e = self.election();
        e.votes.clear();
        e.agreed_since = None;
        if voter {
            e.votes.insert(me, vote);
        }
    }

    fn notification(&self) -> Notification {
        let state = match &self.state {
            State::Looking(_) => PeerState::Looking,
            State::Leading(_) => PeerState::Leading,
            State::Following(_) if self.is_voter(self.cfg.id) => PeerState::Following,
            State::Following(_) => PeerState::Observing,
        };
        Notification {
            round: self.round,
            state,
            vote: self.vote,
        }
    }

    fn broadcast_notification(&mut self) {
        let n = self.notification();
        let others: Vec<ServerId> = self
            .cfg
            .members
            .iter()
            .map(|m| m.id)
            .filter(|&id| id != self.cfg.id)
            .collect();
        for to in others {
            self.send(to, super::PeerMessage::Notification(n));
        }
    }

    pub(super) fn on_notification(&mut self, from: ServerId, n: Notification) {
        if !matches!(self.state, State::Looking(_)) {
            // A looking server learns where the ensemble stands.
            if n.state == PeerState::Looking {
                let mine = self.notification();
                self.send(from, super::PeerMessage::Notification(mine));
            }
            return;
        }
        let candidate_ok = self.is_voter(n.vote.leader);
        let from_voter = self.is_voter(from);
        match n.state {
            PeerState::Looking => {
                if n.round > self.round {
                    self.round = n.round;
                    let own = self.own_vote();
                    self.vote = if candidate_ok { own.max(n.vote) } else { own };
                    self.restart_tally();
                    self.broadcast_notification();
                } else if n.round < self.round {
                    let mine = self.notification();
                    self.send(from, super::PeerMessage::Notification(mine));
                    return;
                } else if candidate_ok && n.vote > self.vote {
                    self.vote = n.vote;
                    let (me, vote, voter) = (self.cfg.id, self.vote, self.is_voter(self.cfg.id));
                    let e = self.election();
                    e.agreed_since = None;
                    if voter {
                        e.votes.insert(me, vote);
                    }
                    self.broadcast_notification();
                }
                if from_voter {
                    self.election().votes.insert(from, n.vote);
                }
            }
            state => {
                self.election().settled.insert(from, (state, n.vote));
            }
        }
        self.check_election();
    }

    pub(super) fn election_tick(&mut self) {
        // Notifications are small and self-contained: repeating them is how
        // an election survives lost messages.
        self.broadcast_notification();
        self.check_election();
    }

    fn check_election(&mut self) {
        let (quorum, now, finalize) = (self.quorum, self.now, self.cfg.finalize_ticks);
        let voters = self.voters.clone();
        let vote = self.vote;
        let e = self.election();

        // An established ensemble: a quorum of voters follows one leader,
        // and that leader says it leads.
        let leading: Vec<(ServerId, Vote)> = e
            .settled
            .iter()
            .filter(|(id, (state, v))| *state == PeerState::Leading && v.leader == **id)
            .map(|(id, (_, v))| (*id, *v))
            .collect();
        for (leader, leader_vote) in leading {
            let followers = e
                .settled
                .iter()
                .filter(|(_, (state, v))| {
                    matches!(state, PeerState::Following | PeerState::Leading) && v.leader == leader
                })
                .map(|(id, _)| id);
            if count_voters(&voters, followers) >= quorum {
                self.decide(leader_vote);
                return;
            }
        }

        if vote.leader == 0 {
            return;
        }
        let agreeing = count_voters(
            &voters,
            e.votes
                .iter()
                .filter(|(_, v)| **v == vote)
                .map(|(id, _)| id),
        );
        if agreeing < quorum {
            e.agreed_since = None;
            return;
        }
        let since = *e.agreed_since.get_or_insert(now);
        if agreeing == voters.len() || now.saturating_sub(since) >= finalize {
            self.decide(vote);
        }
    }

    fn decide(&mut self, vote: Vote) {
        self.vote = vote;
        tracing::info!(
            server = self.cfg.id,
            leader = vote.leader,
            round = self.round,
            "election decided"
        );
        if vote.leader == self.cfg.id {
            self.become_leader();
        } else {
            self.become_follower(vote.leader);
        }
        let role = self.role();
        self.out.push(Effect::Role(role));
    }
}

impl Role {
    /// True when this server serves clients in this role.
    pub fn serving(&self) -> bool {
        match self {
            Role::Looking => false,
            Role::Following { serving, .. } | Role::Leading { serving, .. } => *serving,
        }
    }
}
