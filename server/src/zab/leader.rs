//! Leading: discovery, synchronization and broadcast as the leader runs them.
//!
//! The leader waits for a quorum of FOLLOWERINFOs (itself included), makes
//! an epoch above every acceptedEpoch it heard and persists it, collects a
//! quorum of ACKEPOCHs — giving up if a follower's history is newer — then
//! adopts the epoch as its currentEpoch and brings each follower's history
//! equal to its own (DIFF, TRUNC then DIFF, or SNAP then DIFF) followed by
//! NEWLEADER. With a quorum of NEWLEADER acknowledgements its whole history
//! is committed and it serves: PROPOSAL to every synchronized follower,
//! COMMIT once a quorum (itself included, once durable) has logged it.
//! Followers that arrive later are synchronized the same way, proposals
//! queued behind their sync. A leader that loses its quorum for
//! `sync_limit_ticks` steps down.

use zoo_wire::peer::MAX_ENTRIES_PER_MESSAGE;

use super::{
    count_voters, epoch_of, Arrival, Effect, Entry, Epochs, Link, Peers, ProposeError, QuorumBody,
    QuorumMessage, Role, ServerId, State, Zab, Zxid,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Waiting for a quorum of FOLLOWERINFOs.
    Gathering,
    /// The new acceptedEpoch is being persisted.
    EpochPending,
    /// LEADERINFO sent; waiting for a quorum of ACKEPOCHs.
    AwaitingEpochAcks,
    /// Followers synchronized; waiting for a quorum of NEWLEADER acks.
    AwaitingNewLeaderAcks,
    Broadcast,
}

/// How far one follower has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// FOLLOWERINFO received.
    Info,
    /// LEADERINFO sent.
    Told,
    /// ACKEPOCH received.
    EpochAcked,
    /// Its sync and NEWLEADER are sent; it receives proposals and commits.
    Synced,
    /// It acknowledged NEWLEADER; its ACKs count.
    Ready,
}

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) link: Link,
    accepted_epoch: i64,
    last_zxid: Zxid,
    stage: Stage,
    last_heard: u64,
    /// The highest zxid it has logged, as far as this leader knows.
    acked: Zxid,
    /// The last zxid of the history it was synchronized to.
    synced_to: Zxid,
}

#[derive(Debug)]
pub(super) struct Leader {
    pub(super) peers: Peers<Peer>,
    /// Links of followers this leader dropped or replaced: a late copy of
    /// such a link's FOLLOWERINFO must not open it again, as its numbering
    /// would restart where the follower's does not.
    retired: Peers<std::collections::VecDeque<u64>>,
    phase: Phase,
    epoch: i64,
    started: u64,
    new_leader_zxid: Zxid,
}

/// Retired link ids remembered per follower.
const RETIRED_LINKS: usize = 16;

impl Leader {
    fn retire(&mut self, id: ServerId, link: u64) {
        let retired = self.retired.entry(id).or_default();
        if retired.len() == RETIRED_LINKS {
            retired.pop_front();
        }
        retired.push_back(link);
    }

    /// Forgets a follower; its link is retired.
    fn remove_peer(&mut self, id: ServerId) -> Option<Peer> {
        let peer = self.peers.remove(&id)?;
        self.retire(id, peer.link.id);
        Some(peer)
    }

    fn is_retired(&self, id: ServerId, link: u64) -> bool {
        self.retired.get(&id).is_some_and(|r| r.contains(&link))
    }

    pub(super) fn role(&self) -> Role {
        Role::Leading {
            epoch: self.epoch,
            serving: self.phase == Phase::Broadcast,
        }
    }

    pub(super) fn epoch(&self) -> i64 {
        self.epoch
    }

    pub(super) fn serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }
}

/// The zxid after `last` in `epoch`: the next counter, or the epoch's first.
pub(super) fn next_zxid_of(epoch: i64, last: Zxid) -> Zxid {
    if epoch_of(last) == epoch {
        last + 1
    } else {
        epoch << 32 | 1
    }
}

impl<P: Clone + std::fmt::Debug> Zab<P> {
    pub(super) fn become_leader(&mut self) {
        self.state = State::Leading(Leader {
            peers: Peers::new(),
            retired: Peers::new(),
            phase: Phase::Gathering,
            epoch: 0,
            started: self.now,
            new_leader_zxid: 0,
        });
        self.leader_progress();
    }

    fn leader(&mut self) -> &mut Leader {
        match &mut self.state {
            State::Leading(l) => l,
            _ => unreachable!("not leading"),
        }
    }

    fn leader_ref(&self) -> &Leader {
        match &self.state {
            State::Leading(l) => l,
            _ => unreachable!("not leading"),
        }
    }

    fn step_down(&mut self, why: &str) {
        tracing::warn!(server = self.cfg.id, why, "stepping down");
        self.become_looking();
    }

    fn send_to(&mut self, to: ServerId, body: QuorumBody<P>) {
        let Some(peer) = self.leader().peers.get_mut(&to) else {
            return;
        };
        let message = peer.link.message(body);
        self.send(to, message);
    }

    /// Voters (this server included) whose follower has reached `stage`.
    fn voters_at(&self, stage: Stage) -> usize {
        let l = self.leader_ref();
        let peers = l
            .peers
            .iter()
            .filter(|(_, p)| p.stage >= stage)
            .map(|(id, _)| id);
        count_voters(&self.voters, peers) + 1
    }

    /// Moves through the phases as far as the followers and the disk allow.
    fn leader_progress(&mut self) {
        loop {
            let phase = self.leader_ref().phase;
            match phase {
                Phase::Gathering => {
                    if self.voters_at(Stage::Info) < self.quorum {
                        return;
                    }
                    let heard = self.leader_ref().peers.values().map(|p| p.accepted_epoch);
                    let epoch = heard.chain([self.epochs.accepted]).max().unwrap_or(0) + 1;
                    assert!(epoch <= i64::from(i32::MAX), "epochs exhausted");
                    let l = self.leader();
                    l.epoch = epoch;
                    l.phase = Phase::EpochPending;
                    self.set_epochs(Epochs {
                        accepted: epoch,
                        current: self.epochs.current,
                    });
                }
                Phase::EpochPending => {
                    let l = self.leader_ref();
                    if self.durable_epochs.accepted < l.epoch {
                        return;
                    }
                    self.leader().phase = Phase::AwaitingEpochAcks;
                    let waiting: Vec<ServerId> = self.peers_at(Stage::Info);
                    for id in waiting {
                        self.tell_epoch(id);
                    }
                }
                Phase::AwaitingEpochAcks => {
                    if self.voters_at(Stage::EpochAcked) < self.quorum {
                        return;
                    }
                    let epoch = self.leader_ref().epoch;
                    let last = self.history.last();
                    let l = self.leader();
                    l.phase = Phase::AwaitingNewLeaderAcks;
                    l.new_leader_zxid = last;
                    // The leader's own history is durable before this (storage
                    // runs in order), as a follower's is before its ACK.
                    self.set_epochs(Epochs {
                        accepted: epoch,
                        current: epoch,
                    });
                    for id in self.peers_at(Stage::EpochAcked) {
                        self.sync_peer(id);
                    }
                }
                Phase::AwaitingNewLeaderAcks => {
                    let epoch = self.leader_ref().epoch;
                    let own = usize::from(self.durable_epochs.current == epoch);
                    if self.voters_at(Stage::Ready) - 1 + own < self.quorum {
                        return;
                    }
                    let l = self.leader();
                    l.phase = Phase::Broadcast;
                    let established = l.new_leader_zxid;
                    tracing::info!(server = self.cfg.id, epoch, "leader established");
                    self.commit = self.commit.max(established);
                    self.apply_committed();
                    let commit = self.commit;
                    for id in self.peers_at(Stage::Ready) {
                        self.send_to(id, QuorumBody::UpToDate { commit });
                    }
                    let role = self.leader_ref().role();
                    self.out.push(Effect::Role(role));
                    return;
                }
                Phase::Broadcast => return,
            }
        }
    }

    fn peers_at(&self, stage: Stage) -> Vec<ServerId> {
        self.leader_ref()
            .peers
            .iter()
            .filter(|(_, p)| p.stage == stage)
            .map(|(id, _)| *id)
            .collect()
    }

    fn tell_epoch(&mut self, id: ServerId) {
        let epoch = self.leader_ref().epoch;
        if let Some(peer) = self.leader().peers.get_mut(&id) {
            peer.stage = Stage::Told;
        }
        self.send_to(id, QuorumBody::LeaderInfo { epoch });
    }

    /// Makes a follower's history equal this leader's, then NEWLEADER.
    fn sync_peer(&mut self, id: ServerId) {
        let (epoch, peer_last) = {
            let l = self.leader_ref();
            (l.epoch, l.peers[&id].last_zxid)
        };
        let last = self.history.last();
        let base = self.history.base();
        let (how, diff_from) = if peer_last == last {
            ("nothing to send", None)
        } else if peer_last < base {
            // This leader no longer holds the entries it lacks.
            self.send_to(id, QuorumBody::Snap { zxid: self.applied });
            ("SNAP", Some(self.applied))
        } else if self.history.contains(peer_last) {
            ("DIFF", Some(peer_last))
        } else {
            // It holds entries this history does not: drop them back to the
            // newest point both share, then send what follows.
            let point = self.history.point_below(peer_last);
            self.send_to(id, QuorumBody::Trunc { zxid: point });
            ("TRUNC", Some(point))
        };
        tracing::info!(
            server = self.cfg.id,
            peer = id,
            how,
            from = format!("{peer_last:#x}"),
            to = format!("{last:#x}"),
            "synchronizing a follower"
        );
        if let Some(from) = diff_from {
            let entries = self.history.range(from, last);
            for chunk in entries.chunks(MAX_ENTRIES_PER_MESSAGE) {
                self.send_to(
                    id,
                    QuorumBody::Diff {
                        entries: chunk.to_vec(),
                    },
                );
            }
        }
        self.send_to(id, QuorumBody::NewLeader { epoch, zxid: last });
        if let Some(peer) = self.leader().peers.get_mut(&id) {
            peer.stage = Stage::Synced;
            peer.synced_to = last;
        }
    }

    pub(super) fn leader_step(&mut self, from: ServerId, m: QuorumMessage<P>) {
        let now = self.now;
        if let QuorumBody::FollowerInfo {
            accepted_epoch,
            observer,
        } = m.body
        {
            let known = self.leader_ref().peers.get(&from).map(|p| p.link.id);
            if m.seq != 0 || known == Some(m.link) || self.leader_ref().is_retired(from, m.link) {
                // A copy of the link's first message: the link stands, or
                // was given up and stays so.
                return;
            }
            if observer == self.is_voter(from) {
                tracing::warn!(
                    peer = from,
                    observer,
                    "peer type differs from the configuration"
                );
                return;
            }
            let mut link = Link::new(m.link);
            link.next_recv = 1;
            // A newer link from the same follower replaces the older one.
            self.leader().remove_peer(from);
            self.leader().peers.insert(
                from,
                Peer {
                    link,
                    accepted_epoch,
                    last_zxid: 0,
                    stage: Stage::Info,
                    last_heard: now,
                    acked: 0,
                    synced_to: 0,
                },
            );
            let l = self.leader_ref();
            if l.phase >= Phase::AwaitingEpochAcks {
                if accepted_epoch > l.epoch {
                    // It promised a newer epoch than this one and can never
                    // join: only a new election can bring it in.
                    if l.phase == Phase::Broadcast {
                        return self.step_down("a follower accepted a newer epoch");
                    }
                    self.leader().remove_peer(from);
                    return;
                }
                self.tell_epoch(from);
            }
            return self.leader_progress();
        }

        let epoch = self.leader_ref().epoch;
        let Some(peer) = self.leader().peers.get_mut(&from) else {
            return;
        };
        if peer.link.id != m.link {
            return;
        }
        match peer.link.receive(m.seq) {
            Arrival::Duplicate => return,
            Arrival::Gap => {
                self.leader().remove_peer(from);
                return;
            }
            Arrival::InOrder => {}
        }
        peer.last_heard = now;
        let stage = peer.stage;
        match (stage, m.body) {
            (_, QuorumBody::Ping) => {}
            (
                Stage::Told,
                QuorumBody::AckEpoch {
                    current_epoch,
                    last_zxid,
                },
            ) => {
                if (current_epoch, last_zxid) > (self.epochs.current, self.history.last()) {
                    return self.step_down("a follower's history is newer");
                }
                let peer = self.leader().peers.get_mut(&from).expect("peer exists");
                peer.last_zxid = last_zxid;
                peer.stage = Stage::EpochAcked;
                if self.leader_ref().phase >= Phase::AwaitingNewLeaderAcks {
                    self.sync_peer(from);
                }
                self.leader_progress();
            }
            (Stage::Synced, QuorumBody::AckNewLeader { epoch: acked }) if acked == epoch => {
                let peer = self.leader().peers.get_mut(&from).expect("peer exists");
                peer.stage = Stage::Ready;
                peer.acked = peer.synced_to;
                if self.leader_ref().phase == Phase::Broadcast {
                    let commit = self.commit;
                    self.send_to(from, QuorumBody::UpToDate { commit });
                    self.try_commit();
                } else {
                    self.leader_progress();
                }
            }
            (Stage::Ready, QuorumBody::Ack { zxid }) => {
                let peer = self.leader().peers.get_mut(&from).expect("peer exists");
                peer.acked = peer.acked.max(zxid);
                self.try_commit();
            }
            (stage, body) => {
                tracing::warn!(
                    peer = from,
                    message = body.name(),
                    ?stage,
                    "unexpected message; dropping the follower"
                );
                self.leader().remove_peer(from);
            }
        }
    }

    /// Commits the newest zxid of this epoch a quorum has logged.
    fn try_commit(&mut self) {
        let l = self.leader_ref();
        if l.phase != Phase::Broadcast {
            return;
        }
        let epoch = l.epoch;
        let mut logged: Vec<Zxid> = l
            .peers
            .iter()
            .filter(|(id, p)| p.stage == Stage::Ready && self.voters.contains(id))
            .map(|(_, p)| p.acked)
            .chain([self.durable_zxid])
            .collect();
        if logged.len() < self.quorum {
            return;
        }
        logged.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_logged = logged[self.quorum - 1].min(self.history.last());
        if quorum_logged <= self.commit || epoch_of(quorum_logged) != epoch {
            return;
        }
        let targets: Vec<ServerId> = l
            .peers
            .iter()
            .filter(|(_, p)| p.stage >= Stage::Synced)
            .map(|(id, _)| *id)
            .collect();
        self.commit = quorum_logged;
        for id in targets {
            self.send_to(
                id,
                QuorumBody::Commit {
                    zxid: quorum_logged,
                },
            );
        }
        self.apply_committed();
    }

    pub(super) fn leader_durable(&mut self) {
        if self.leader_ref().phase == Phase::Broadcast {
            self.try_commit();
        } else {
            self.leader_progress();
        }
    }

    /// On a leader: the followers (observers included) linked to it, and
    /// those of them synchronized and receiving proposals.
    pub fn follower_counts(&self) -> Option<(usize, usize)> {
        match &self.state {
            State::Leading(l) => Some((
                l.peers.len(),
                l.peers
                    .values()
                    .filter(|p| p.stage >= Stage::Synced)
                    .count(),
            )),
            _ => None,
        }
    }

    /// A follower's connection closed: it is forgotten until it opens a new
    /// link, and a leader left without a quorum steps down.
    pub(super) fn drop_follower(&mut self, id: ServerId) {
        if self.leader().remove_peer(id).is_none() {
            return;
        }
        tracing::info!(server = self.cfg.id, peer = id, "follower disconnected");
        if self.leader_ref().phase == Phase::Broadcast && self.voters_at(Stage::Ready) < self.quorum
        {
            self.step_down("lost the quorum");
        }
    }

    pub(super) fn leader_tick(&mut self) {
        let (now, init, sync) = (
            self.now,
            self.cfg.init_limit_ticks,
            self.cfg.sync_limit_ticks,
        );
        let l = self.leader();
        if l.phase != Phase::Broadcast && now - l.started > init {
            return self.step_down("no quorum established within initLimit");
        }
        let silent: Vec<ServerId> = l
            .peers
            .iter()
            .filter(|(_, p)| now - p.last_heard > sync)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            l.remove_peer(id);
        }
        let pinged: Vec<ServerId> = l
            .peers
            .iter()
            .filter(|(_, p)| p.stage >= Stage::Told)
            .map(|(id, _)| *id)
            .collect();
        for id in pinged {
            self.send_to(id, QuorumBody::Ping);
        }
        if self.leader_ref().phase == Phase::Broadcast && self.voters_at(Stage::Ready) < self.quorum
        {
            self.step_down("lost the quorum");
        }
    }

    /// Proposes a new transaction; returns its zxid.
    pub fn propose(&mut self, payload: P) -> Result<Zxid, ProposeError> {
        let epoch = match &self.state {
            State::Leading(l) if l.serving() => l.epoch,
            _ => return Err(ProposeError::NotLeader),
        };
        let zxid = next_zxid_of(epoch, self.history.last());
        if epoch_of(zxid) != epoch {
            self.step_down("the epoch's zxid counter is exhausted");
            return Err(ProposeError::EpochExhausted);
        }
        let entry = Entry { zxid, payload };
        self.append(vec![entry.clone()]);
        let targets: Vec<ServerId> = self
            .leader_ref()
            .peers
            .iter()
            .filter(|(_, p)| p.stage >= Stage::Synced)
            .map(|(id, _)| *id)
            .collect();
        for id in targets {
            self.send_to(
                id,
                QuorumBody::Proposal {
                    entry: entry.clone(),
                },
            );
        }
        // A quorum of one commits on its own durability.
        Ok(zxid)
    }
}
