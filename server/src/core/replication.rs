//! The core's side of replication: it carries out what ZAB asks (messages,
//! storage, applying, role changes), feeds it the peers' messages, and
//! moves client traffic between followers and their leader.
//!
//! A follower forwards every write, new session and close to the leader and
//! answers its client when the transaction comes back committed; it serves
//! reads from its own tree and tells the leader which sessions are active.
//! The leader prepares what it is forwarded as it prepares its own clients'
//! requests, and is the only server that expires sessions and reaps nodes.
//! A server that is not serving (electing, or synchronizing) accepts no
//! client, and one that stops serving disconnects its clients, which then
//! find a server that does.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tracing::{info, warn};
use zoo_wire::peer::{LearnerMessage, MAX_SESSIONS_PER_TOUCH};
use zoo_wire::{ErrorCode, Request, RequestBody};

use super::{Core, Origin, Pending};
use crate::acl::Identities;
use crate::net::peer::{Inbound, PeerEvent};
use crate::prep::{prep, Outstanding, PrepContext};
use crate::storage::{
    decode_txn, encode_chunks, encode_txn, LogOp, SessionRecord, SnapshotAssembly, SnapshotSource,
};
use crate::txn::{Txn, TxnOp};
use crate::zab::{Effect, PeerMessage, QuorumBody, QuorumMessage, Role, ServerId, StoreOp};

/// Waits for the next peer message; never resolves without peers.
pub(super) async fn recv_peer(peers: &mut Option<mpsc::Receiver<Inbound>>) -> Option<Inbound> {
    match peers {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Core {
    /// True while this server serves clients: an established leader, or a
    /// follower synchronized with one.
    pub(crate) fn serving(&self) -> bool {
        matches!(
            self.role,
            Role::Leading { serving: true, .. } | Role::Following { serving: true, .. }
        )
    }

    pub(crate) fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leading { .. })
    }

    /// The leader this follower forwards to, while it serves.
    fn leader_id(&self) -> Option<ServerId> {
        match self.role {
            Role::Following {
                leader,
                serving: true,
                ..
            } => Some(leader),
            _ => None,
        }
    }

    /// Carries out ZAB's effects, in order, until it has no more.
    pub(super) fn drive(&mut self) {
        loop {
            let effects: Vec<Effect<Arc<Txn>>> = self.zab.drain().collect();
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                match effect {
                    Effect::Send { to, message } => self.send_peer(to, message),
                    Effect::Store { op, what } => self.store(op, what),
                    Effect::Apply(entries) => {
                        for entry in entries {
                            self.committed(&entry.payload);
                        }
                    }
                    Effect::Role(role) => self.role_changed(role),
                }
            }
        }
        // A snapshot ZAB did not ask to install (its SNAP came out of turn)
        // is not kept.
        self.snapshot_received = None;
        self.maybe_snapshot();
        // Compacting walks the history: done once per batch of entries.
        let retained = self.config.commit_log_count.max(1);
        if self.since_compact >= retained {
            self.since_compact = 0;
            self.zab.compact(self.tree.last_zxid());
        }
    }

    fn store(&mut self, op: u64, what: StoreOp<Arc<Txn>>) {
        let what = match what {
            StoreOp::Append(entries) => {
                LogOp::Append(entries.into_iter().map(|e| e.payload).collect())
            }
            StoreOp::TruncateAfter(zxid) => {
                info!(
                    zxid = format!("{zxid:#x}"),
                    "truncating the log after the leader's history"
                );
                LogOp::TruncateAfter(zxid)
            }
            StoreOp::SetEpochs(epochs) => LogOp::SetEpochs(epochs),
            StoreOp::InstallSnapshot(zxid) => match self.install_snapshot(zxid) {
                Some(source) => LogOp::InstallSnapshot(source),
                None => return,
            },
        };
        if !self.log.submit(op, what) {
            // The writer reports why it stopped; the run loop ends on it.
            warn!(op, "the log writer has stopped");
        }
    }

    /// Replaces the tree and sessions with the snapshot the leader sent for
    /// `zxid`; what to store of it.
    fn install_snapshot(&mut self, zxid: i64) -> Option<SnapshotSource> {
        // A SNAP reaches ZAB only with its snapshot complete and checked.
        let (tree, sessions) = match self.snapshot_received.take() {
            Some((at, tree, sessions)) if at == zxid => (tree, sessions),
            _ => unreachable!("a checked snapshot precedes its SNAP"),
        };
        info!(
            zxid = format!("{zxid:#x}"),
            nodes = tree.node_count(),
            sessions = sessions.len(),
            "installing the leader's snapshot"
        );
        self.tree = tree;
        let now = self.now_ms();
        let old: Vec<i64> = self.sessions.iter().map(|s| s.id).collect();
        for id in old {
            self.sessions.remove(id);
        }
        for s in &sessions {
            self.sessions.add(s.id, s.timeout_ms, s.password, now);
        }
        self.outstanding = Outstanding::default();
        self.since_snapshot = 0;
        Some(SnapshotSource {
            zxid,
            nodes: self.tree.nodes(),
            sessions,
        })
    }

    fn send_peer(&mut self, to: ServerId, message: PeerMessage<Arc<Txn>>) {
        let Some(peers) = &self.peers else {
            return;
        };
        if let PeerMessage::Quorum(QuorumMessage {
            body: QuorumBody::Snap { zxid },
            ..
        }) = &message
        {
            // The state goes ahead of the SNAP on the same link.
            assert_eq!(*zxid, self.tree.last_zxid(), "SNAP of the applied state");
            let source = self.snapshot_source();
            let mut chunks = encode_chunks(&source).peekable();
            let mut index = 0;
            // An empty tree still has its root, so there is a first chunk.
            while let Some(data) = chunks.next() {
                let chunk = LearnerMessage::SnapshotChunk {
                    zxid: *zxid,
                    index,
                    last: chunks.peek().is_none(),
                    data: Bytes::from(data),
                };
                if !peers.send(to, &PeerMessage::Learner(chunk)) {
                    // The follower sees an incomplete snapshot and drops the
                    // SNAP; its link breaks and it syncs again.
                    break;
                }
                index += 1;
            }
        }
        let encoded = message.try_map(|txn| {
            let mut out = BytesMut::new();
            encode_txn(&txn, &mut out);
            Ok::<_, std::convert::Infallible>(out.freeze())
        });
        let Ok(encoded) = encoded;
        peers.send(to, &encoded);
    }

    /// The tree and sessions as they are now.
    pub(super) fn snapshot_source(&self) -> SnapshotSource {
        SnapshotSource {
            zxid: self.tree.last_zxid(),
            nodes: self.tree.nodes(),
            sessions: self
                .sessions
                .iter()
                .filter(|s| !self.local_sessions.contains(&s.id))
                .map(|s| SessionRecord {
                    id: s.id,
                    timeout_ms: s.timeout_ms,
                    password: s.password,
                })
                .collect(),
        }
    }

    /// A message from a peer, or the end of its connection.
    pub(super) fn peer_event(&mut self, from: ServerId, event: PeerEvent) {
        match event {
            PeerEvent::Message(message) => self.peer_message(from, message),
            PeerEvent::Closed => self.zab.peer_disconnected(from),
        }
    }

    fn peer_message(&mut self, from: ServerId, message: PeerMessage<Bytes>) {
        if let PeerMessage::Learner(m) = message {
            return self.learner_message(from, m);
        }
        if let PeerMessage::Quorum(QuorumMessage {
            body: QuorumBody::Snap { zxid },
            ..
        }) = &message
        {
            let assembly = self.incoming.take().filter(|a| a.zxid == *zxid);
            match assembly.map(SnapshotAssembly::finish) {
                Some(Ok((tree, sessions))) => {
                    self.snapshot_received = Some((*zxid, tree, sessions));
                }
                // Dropped: the gap it leaves breaks the link, and the
                // follower synchronizes again.
                Some(Err(e)) => {
                    warn!(peer = from, "the leader's snapshot is refused: {e}");
                    return;
                }
                None => {
                    warn!(
                        peer = from,
                        zxid = format!("{zxid:#x}"),
                        "SNAP without its whole snapshot; dropped"
                    );
                    return;
                }
            }
        }
        let decoded = message.try_map(|payload| {
            decode_txn(&payload)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        match decoded {
            Ok(message) => {
                if let Some(bad) = entry_mismatch(&message) {
                    warn!(peer = from, "{bad}; message dropped");
                    return;
                }
                self.zab.step(from, message);
            }
            // Dropped: the gap it leaves breaks the link, which ZAB repairs.
            Err(e) => warn!(peer = from, "undecodable transaction from a peer: {e}"),
        }
    }

    fn learner_message(&mut self, from: ServerId, message: LearnerMessage) {
        let leading = self.is_leader();
        match message {
            LearnerMessage::SnapshotChunk {
                zxid,
                index,
                last,
                data,
            } => {
                if !matches!(self.role, Role::Following { leader, .. } if leader == from) {
                    return;
                }
                if index == 0 {
                    self.incoming = Some(SnapshotAssembly::new(zxid));
                }
                let Some(assembly) = self.incoming.as_mut().filter(|a| a.zxid == zxid) else {
                    return;
                };
                if let Err(e) = assembly.push(index, last, &data) {
                    warn!(peer = from, "snapshot from the leader refused: {e}");
                    self.incoming = None;
                }
            }
            LearnerMessage::Synced {
                session,
                cxid,
                zxid,
            } => {
                if self.leader_id() != Some(from) {
                    return;
                }
                let waiting = self.inflight.iter_mut().find_map(|p| match p {
                    Pending::Sync {
                        session: s,
                        xid,
                        until: until @ None,
                        ..
                    } if *s == session && *xid == cxid => Some(until),
                    _ => None,
                });
                if let Some(until) = waiting {
                    *until = Some(zxid);
                }
                self.serve_queued_reads();
            }
            _ if !leading || !self.serving() => {
                // A follower's traffic reached a server that is not its
                // leader now; the follower's clients time out and retry.
            }
            LearnerMessage::Sync { session, cxid } => {
                // Everything proposed so far: the follower answers once it has
                // applied that much, so the client reads at least this.
                let zxid = self.zab.last_zxid();
                let reply = LearnerMessage::Synced {
                    session,
                    cxid,
                    zxid,
                };
                self.send_learner(from, reply);
            }
            LearnerMessage::Touch { sessions } => {
                let now = self.now_ms();
                for id in sessions {
                    self.sessions.touch(id, now);
                }
            }
            LearnerMessage::CreateSession {
                session,
                timeout_ms,
                password,
            } => {
                let op = TxnOp::CreateSession {
                    session_id: session,
                    timeout_ms,
                    password,
                };
                if self.propose(session, 0, op, Origin::Server) {
                    // Tracked from now, as ZooKeeper's leader does: a quorum
                    // of followers can commit the session before this
                    // server's own log has it, and its client's first
                    // forwarded request must not find it unknown here.
                    let now = self.now_ms();
                    self.sessions.add(session, timeout_ms, password, now);
                    self.proposed_sessions.insert(session);
                }
            }
            LearnerMessage::Request {
                session,
                auth,
                request,
            } => self.forwarded_request(from, session, auth, request),
        }
    }

    /// A write a follower forwarded: prepared and proposed like a local one;
    /// the follower answers its client when it commits.
    fn forwarded_request(
        &mut self,
        from: ServerId,
        session: i64,
        auth: Vec<zoo_wire::Id>,
        request: Bytes,
    ) {
        let request = match Request::decode(&mut &request[..]) {
            Ok(request) => request,
            Err(e) => {
                warn!(peer = from, "a forwarded request does not decode: {e}");
                return;
            }
        };
        let xid = request.xid;
        let now = self.now_ms();
        let live = self.sessions.touch(session, now);
        let op = match request.body {
            _ if !live => TxnOp::Error(ErrorCode::SessionExpired),
            RequestBody::CloseSession => {
                self.sessions.mark_closing(session);
                TxnOp::CloseSession {
                    session_id: session,
                }
            }
            body => {
                let ids = Identities::from_ids(auth);
                let ctx = PrepContext {
                    session_id: session,
                    identities: &ids,
                    extended_types_enabled: self.config.extended_types_enabled,
                };
                let zxid = self.next_zxid();
                prep(&body, &self.tree, &mut self.outstanding, zxid, &ctx)
            }
        };
        self.propose(session, xid, op, Origin::Server);
    }

    /// Sends a client's write (or close) to the leader; false if there is no
    /// leader to send it to.
    pub(super) fn forward(
        &mut self,
        conn: u64,
        session: i64,
        request: Request,
        origin: Origin,
    ) -> bool {
        let Some(auth) = self.conns.get(&conn).map(|c| c.ids.ids().to_vec()) else {
            return false;
        };
        let mut encoded = BytesMut::new();
        request.encode(&mut encoded);
        let message = LearnerMessage::Request {
            session,
            auth,
            request: encoded.freeze(),
        };
        if !self.send_to_leader(message) {
            return false;
        }
        let cxid = request.xid;
        self.queue(origin, |origin| Pending::Forwarded {
            session,
            cxid,
            origin,
        });
        true
    }

    /// A client's `sync` on a follower: the leader says how far to catch up.
    pub(super) fn forward_sync(
        &mut self,
        conn: u64,
        session: i64,
        request: Request,
        received: std::time::Instant,
    ) -> bool {
        let message = LearnerMessage::Sync {
            session,
            cxid: request.xid,
        };
        if !self.send_to_leader(message) {
            return false;
        }
        self.enqueue(
            Some(conn),
            Pending::Sync {
                conn,
                session,
                xid: request.xid,
                body: request.body,
                received,
                until: None,
            },
        );
        true
    }

    /// Asks the leader for a new session; false if there is no leader.
    pub(super) fn forward_session(&mut self, op: TxnOp, origin: Origin) -> bool {
        let TxnOp::CreateSession {
            session_id,
            timeout_ms,
            password,
        } = op
        else {
            unreachable!("only new sessions are forwarded this way");
        };
        let message = LearnerMessage::CreateSession {
            session: session_id,
            timeout_ms,
            password,
        };
        if !self.send_to_leader(message) {
            return false;
        }
        self.queue(origin, |origin| Pending::Forwarded {
            session: session_id,
            cxid: 0,
            origin,
        });
        true
    }

    /// Sends to the leader this follower serves under; false if there is
    /// none or the message could not be queued.
    fn send_to_leader(&self, message: LearnerMessage) -> bool {
        self.leader_id()
            .is_some_and(|leader| self.send_learner(leader, message))
    }

    fn send_learner(&self, to: ServerId, message: LearnerMessage) -> bool {
        self.peers
            .as_ref()
            .is_some_and(|p| p.send(to, &PeerMessage::Learner(message)))
    }

    /// A follower tells its leader which sessions were active here.
    pub(super) fn send_touches(&mut self) {
        let Some(leader) = self.leader_id() else {
            self.touched.clear();
            return;
        };
        if self.touched.is_empty() {
            return;
        }
        let touched: Vec<i64> = self.touched.drain().collect();
        for sessions in touched.chunks(MAX_SESSIONS_PER_TOUCH) {
            let message = LearnerMessage::Touch {
                sessions: sessions.to_vec(),
            };
            self.send_learner(leader, message);
        }
    }

    fn role_changed(&mut self, role: Role) {
        let was_serving = self.serving();
        let before = self.role;
        self.role = role;
        info!(server = self.zab.id(), ?before, now = ?role, "role changed");
        if was_serving
            && !matches!(
                role,
                Role::Leading { serving: true, .. } | Role::Following { serving: true, .. }
            )
        {
            // Answers for what was in flight may never come: the clients
            // reconnect, to this server once it serves again or another.
            let conns: Vec<u64> = self.conns.keys().copied().collect();
            for conn in conns {
                self.close_conn(conn);
            }
            self.inflight.clear();
            self.outstanding = Outstanding::default();
            // What a new leader does not commit never happened here.
            for session in self.proposed_sessions.drain() {
                self.sessions.remove(session);
            }
            self.incoming = None;
            self.touched.clear();
        }
        self.serving_tx.send_replace(self.serving());
        if self.serving() {
            self.end_read_only();
        }
        if let Role::Leading { serving: true, .. } = role {
            // The sessions are this leader's to expire now, each with a full
            // timeout, as after a restart.
            let now = self.now_ms();
            self.sessions.renew_all(now);
        }
    }
}

/// An entry whose payload names another zxid than the entry's own.
fn entry_mismatch(message: &PeerMessage<Arc<Txn>>) -> Option<String> {
    let PeerMessage::Quorum(m) = message else {
        return None;
    };
    let entries: Vec<&crate::zab::Entry<Arc<Txn>>> = match &m.body {
        QuorumBody::Diff { entries } => entries.iter().collect(),
        QuorumBody::Proposal { entry } => vec![entry],
        _ => return None,
    };
    entries
        .into_iter()
        .find(|e| e.payload.zxid != e.zxid)
        .map(|e| {
            format!(
                "entry {:#x} carries the transaction of {:#x}",
                e.zxid, e.payload.zxid
            )
        })
}
