//! The core: the one task that owns the tree, the sessions and the watches,
//! and runs every request through the pipeline in arrival order:
//! prep → log (group commit, sync) → apply (in zxid order) → notifications
//! → reply.
//!
//! A write is prepared against the tree plus the outstanding (prepared, not
//! yet durable) transactions, handed to the log writer, and kept in the
//! in-flight queue. When the log writer reports a zxid durable, every
//! transaction up to it is applied and answered. Nothing that depends on a
//! transaction leaves before it is on disk. A connection's reads wait behind
//! its own earlier requests in the same queue, so that replies keep their
//! order; other connections' reads are served at once from the tree, which
//! holds only durable transactions.
//!
//! Connection tasks decode frames and hand requests here over a bounded
//! channel; when it is full they stop reading their sockets, which is the
//! server's backpressure. Each connection's outbound queue is bounded too: a
//! client that does not read its replies is disconnected.

mod read_only;
mod replication;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use zoo_wire::codec::write_frame;
use zoo_wire::opcode::xid;
use zoo_wire::*;

use crate::acl::{digest_id, mask_digests, Identities};
use crate::config::Config;
use crate::net::peer::{Inbound, PeerNet};
use crate::prep::{prep, Outstanding, PrepContext};
use crate::session::SessionTable;
use crate::stats::{ConnStats, ServerStats};
use crate::storage::{LogEvent, LogWriter, Recovered, SnapshotAssembly, Snapshotter, StorageError};
use crate::tree::{Applied, Change, Tree};
use crate::txn::{OwnerKind, SessionEffect, Txn, TxnOp};
use crate::watch::{ConnId, Fired, WatchManager};
use crate::zab::{Role, Zab};
use replication::recv_peer;

/// What a connection's writer is told.
#[derive(Debug)]
pub enum Outbound {
    Frame(Bytes),
    /// Flush what is queued, then close the socket.
    Close,
}

/// Messages from connection tasks to the core.
#[derive(Debug)]
pub enum Event {
    /// The first frame of a connection.
    Connect {
        conn: ConnId,
        remote: SocketAddr,
        out: mpsc::Sender<Outbound>,
        request: ConnectRequest,
    },
    Request {
        conn: ConnId,
        request: Request,
        received: Instant,
    },
    /// A request whose body did not decode: answered MARSHALLINGERROR.
    Malformed { conn: ConnId, xid: i32 },
    /// An opcode the server does not accept: UNIMPLEMENTED, then close.
    Unimplemented { conn: ConnId, xid: i32 },
    /// The socket closed.
    Closed { conn: ConnId },
    FourLetter {
        word: FourLetterWord,
        arg: Option<i64>,
        remote: SocketAddr,
        reply: oneshot::Sender<String>,
    },
}

pub(crate) struct Conn {
    pub(crate) out: mpsc::Sender<Outbound>,
    pub(crate) remote: SocketAddr,
    pub(crate) session: Option<i64>,
    pub(crate) ids: Identities,
    pub(crate) stats: ConnStats,
    /// This connection's entries in the in-flight queue: while there are
    /// any, its reads queue behind them.
    queued: u32,
    /// Accepted by a server without a quorum in read-only mode.
    read_only: bool,
}

/// Who waits for a transaction's outcome.
#[derive(Debug)]
enum Origin {
    /// The server's own (session expiry, container reaping).
    Server,
    Request {
        conn: ConnId,
        xid: i32,
        body: RequestBody,
        received: Instant,
    },
    /// A new session: the connect response waits for it.
    Connect {
        conn: ConnId,
        response: ConnectResponse,
    },
    Close {
        conn: ConnId,
        xid: i32,
    },
}

impl Origin {
    fn conn(&self) -> Option<ConnId> {
        match self {
            Origin::Server => None,
            Origin::Request { conn, .. }
            | Origin::Connect { conn, .. }
            | Origin::Close { conn, .. } => Some(*conn),
        }
    }
}

/// An entry of the in-flight queue, in arrival order.
#[derive(Debug)]
enum Pending {
    /// Proposed by this server as leader; answered once committed.
    Write { txn: Arc<Txn>, origin: Origin },
    /// Forwarded to the leader by this follower; answered when the
    /// transaction of this session and xid is committed.
    Forwarded {
        session: i64,
        cxid: i32,
        origin: Origin,
    },
    /// A `sync`: answered once the tree holds what the leader had proposed
    /// when asked (`until`; on a follower, unknown until the leader answers).
    Sync {
        conn: ConnId,
        session: i64,
        xid: i32,
        body: RequestBody,
        received: Instant,
        until: Option<i64>,
    },
    /// A read behind its connection's earlier requests.
    Read {
        conn: ConnId,
        session: i64,
        xid: i32,
        body: RequestBody,
        received: Instant,
    },
}

/// The server state and the pipeline.
pub struct Core {
    pub(crate) config: Arc<Config>,
    pub(crate) tree: Tree,
    pub(crate) sessions: SessionTable,
    pub(crate) watches: WatchManager,
    pub(crate) conns: HashMap<ConnId, Conn>,
    session_conn: HashMap<i64, ConnId>,
    log: LogWriter,
    snapshots: Snapshotter,
    /// Replication: the ZAB state machine, this server's role in it, and the
    /// links to the other members (none in an ensemble of one).
    pub(crate) zab: Zab<Arc<Txn>>,
    pub(crate) role: Role,
    peers: Option<PeerNet>,
    /// A snapshot arriving from the leader, chunk by chunk.
    incoming: Option<SnapshotAssembly>,
    /// That snapshot, complete and checked, for the SNAP just passed to ZAB.
    snapshot_received: Option<(i64, Tree, Vec<crate::storage::SessionRecord>)>,
    /// Sessions with client activity here since the leader was last told.
    touched: HashSet<i64>,
    /// Entries applied since ZAB's history was last compacted.
    since_compact: usize,
    /// Whether clients are served, for whoever waits for it.
    serving_tx: tokio::sync::watch::Sender<bool>,
    /// Sessions a read-only server made for its own clients: never
    /// replicated, gone with their connection or once the quorum is back.
    local_sessions: HashSet<i64>,
    /// Sessions a leader tracks from their createSession's proposal, not
    /// yet applied: forgotten if it stops leading before they commit.
    proposed_sessions: HashSet<i64>,
    outstanding: Outstanding,
    inflight: VecDeque<Pending>,
    /// Transactions applied since the last snapshot began, and the count at
    /// which the next one begins.
    since_snapshot: u64,
    snapshot_after: u64,
    pub(crate) stats: ServerStats,
    started: Instant,
    out_buf: BytesMut,
    pub(crate) trace_mask: i64,
    last_reap_ms: u64,
}

fn wall_ms() -> i64 {
    crate::wall_clock_ms()
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("last_zxid", &self.tree.last_zxid())
            .field("sessions", &self.sessions.len())
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Core {
    /// A core on recovered state. Recovered sessions get a full timeout from
    /// now, as in ZooKeeper: a restart shorter than a session's timeout keeps
    /// it.
    ///
    /// `recovered` is the snapshot's state; the log after it went to `zab`,
    /// which applies it once it is known to be committed.
    pub fn new(
        config: Arc<Config>,
        recovered: Recovered,
        log: LogWriter,
        snapshots: Snapshotter,
        zab: Zab<Arc<Txn>>,
        peers: Option<PeerNet>,
    ) -> Core {
        let mut sessions =
            SessionTable::new(config.tick_time_ms, config.server_id, wall_ms() as u64);
        for s in recovered.sessions.values() {
            sessions.add(s.id, s.timeout_ms, s.password, 0);
        }
        let snapshot_after = snapshot_threshold(config.snap_count);
        let role = zab.role();
        Core {
            tree: recovered.tree,
            sessions,
            watches: WatchManager::default(),
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            log,
            snapshots,
            zab,
            role,
            peers,
            incoming: None,
            snapshot_received: None,
            touched: HashSet::new(),
            since_compact: 0,
            serving_tx: tokio::sync::watch::Sender::new(false),
            local_sessions: HashSet::new(),
            proposed_sessions: HashSet::new(),
            outstanding: Outstanding::default(),
            inflight: VecDeque::new(),
            // A restart that replays the log snapshots once it has, as
            // ZooKeeper does, so that the next restart replays less.
            since_snapshot: if recovered.log.is_empty() {
                0
            } else {
                u64::MAX
            },
            snapshot_after,
            config,
            stats: ServerStats::default(),
            started: Instant::now(),
            out_buf: BytesMut::with_capacity(64 * 1024),
            trace_mask: 306,
            last_reap_ms: 0,
        }
    }

    /// Becomes true whenever the server serves clients, false when not.
    pub fn serving_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.serving_tx.subscribe()
    }

    /// Monotonic ms since start: the clock of session expiry.
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Requests and transactions in flight (`mntr`).
    pub(crate) fn outstanding_requests(&self) -> usize {
        self.inflight.len()
    }

    pub(crate) fn uptime_ms(&self) -> u64 {
        self.now_ms()
    }

    /// Runs until every sender of `events` is gone, or the log fails.
    ///
    /// Client events are taken only while fewer than
    /// `maxOutstandingRequests` entries are in flight: beyond that the
    /// connection tasks block on the bounded channel and stop reading.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut log_events: mpsc::UnboundedReceiver<LogEvent>,
        mut peer_events: Option<mpsc::Receiver<Inbound>>,
    ) -> Result<(), StorageError> {
        let tick = Duration::from_millis(u64::from(self.config.tick_time_ms).clamp(10, 1000) / 2);
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let zab_tick = Duration::from_millis(crate::zab_tick_ms(&self.config));
        let mut zab_ticker = tokio::time::interval(zab_tick);
        zab_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.drive();
        let limit = self.config.max_outstanding_requests.max(1);
        let result = loop {
            let admitting = self.inflight.len() < limit;
            tokio::select! {
                biased;
                done = log_events.recv() => match done {
                    Some(LogEvent::Persisted(op)) => {
                        self.zab.persisted(op);
                        self.drive();
                    }
                    Some(LogEvent::Failed(e)) => break Err(e),
                    None => break Err(StorageError::Io("the log writer stopped".into())),
                },
                Some((from, event)) = recv_peer(&mut peer_events) => {
                    self.peer_event(from, event);
                    self.drive();
                }
                event = events.recv(), if admitting => match event {
                    Some(event) => {
                        self.handle(event);
                        self.drive();
                    }
                    None => break Ok(()),
                },
                _ = zab_ticker.tick() => {
                    self.zab.tick();
                    self.drive();
                    self.send_touches();
                }
                _ = ticker.tick() => {
                    self.tick();
                    self.drive();
                }
            }
        };
        if result.is_err() {
            // Nothing more can be made durable: every client is disconnected
            // rather than answered.
            let conns: Vec<ConnId> = self.conns.keys().copied().collect();
            for conn in conns {
                self.close_conn(conn);
            }
        }
        info!(
            last_zxid = format!("{:#x}", self.tree.last_zxid()),
            "core stopped"
        );
        result
    }

    pub(crate) fn handle(&mut self, event: Event) {
        match event {
            Event::Connect {
                conn,
                remote,
                out,
                request,
            } => self.connect(conn, remote, out, request),
            Event::Request {
                conn,
                request,
                received,
            } => self.request(conn, request, received),
            Event::Malformed { conn, xid } => {
                self.stats.packets_received += 1;
                let zxid = self.tree.last_zxid();
                self.reply(
                    conn,
                    &ServerMessage::header_only(xid, zxid, ErrorCode::MarshallingError),
                );
            }
            Event::Unimplemented { conn, xid } => {
                self.stats.packets_received += 1;
                self.reply(
                    conn,
                    &ServerMessage::header_only(xid, -1, ErrorCode::Unimplemented),
                );
                self.close_conn(conn);
            }
            Event::Closed { conn } => self.drop_conn(conn),
            Event::FourLetter {
                word,
                arg,
                remote,
                reply,
            } => {
                let text = self.four_letter(word, arg, remote);
                let _ = reply.send(text);
            }
        }
    }

    // ---- connections -------------------------------------------------------

    fn send(&mut self, conn: ConnId, frame: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let size = frame.len();
        match c.out.try_send(Outbound::Frame(frame)) {
            Ok(()) => {
                c.stats.packets_sent += 1;
                self.stats.record_response(size);
                self.stats.packets_sent += 1;
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(
                    conn,
                    "client is not reading its replies; closing the connection"
                );
                self.close_conn(conn);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.drop_conn(conn),
        }
    }

    fn encode<P: codec::Payload + ?Sized>(&mut self, payload: &P) -> Bytes {
        write_frame(&mut self.out_buf, payload);
        self.out_buf.split().freeze()
    }

    fn reply(&mut self, conn: ConnId, message: &ServerMessage) {
        let frame = self.encode(message);
        if let ServerMessage::Reply { header, .. } = message {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.stats.last_zxid = header.zxid;
            }
        }
        self.send(conn, frame);
    }

    /// Asks the writer to flush and close, and forgets the connection.
    fn close_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.out.try_send(Outbound::Close);
        }
        self.drop_conn(conn);
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.watches.remove_connection(conn);
            if let Some(session) = c.session {
                if self.session_conn.get(&session) == Some(&conn) {
                    self.session_conn.remove(&session);
                }
                // A read-only server's own sessions end with their connection.
                if self.local_sessions.remove(&session) {
                    self.sessions.remove(session);
                }
            }
            debug!(conn, session = c.session.unwrap_or(0), "connection closed");
        }
    }

    fn connect(
        &mut self,
        conn: ConnId,
        remote: SocketAddr,
        out: mpsc::Sender<Outbound>,
        req: ConnectRequest,
    ) {
        self.stats.packets_received += 1;
        self.conns.insert(
            conn,
            Conn {
                out,
                remote,
                session: None,
                ids: Identities::new(remote.ip()),
                stats: ConnStats::new(wall_ms()),
                queued: 0,
                read_only: false,
            },
        );
        if req.last_zxid_seen > self.tree.last_zxid() {
            warn!(
                conn,
                client_zxid = req.last_zxid_seen,
                our_zxid = self.tree.last_zxid(),
                "client has seen a newer zxid than this server; it must try another server"
            );
            self.close_conn(conn);
            return;
        }
        if !self.serving() {
            if self.read_only_mode() && req.read_only == Some(true) {
                return self.connect_read_only(conn, req);
            }
            info!(
                conn,
                "not serving clients now (no quorum); connection closed"
            );
            self.close_conn(conn);
            return;
        }
        let timeout = self.config.negotiate_timeout(req.timeout_ms);
        let read_only = req.read_only.map(|_| false);
        let now = self.now_ms();
        let response = if req.session_id == 0 {
            let session_id = self.sessions.next_id();
            let mut password = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut password);
            let op = TxnOp::CreateSession {
                session_id,
                timeout_ms: timeout,
                password,
            };
            let response = accepted(session_id, timeout, password, read_only);
            // The response waits until the session's transaction commits.
            let origin = Origin::Connect { conn, response };
            let sent = if self.is_leader() {
                self.propose(session_id, 0, op, origin)
            } else {
                self.forward_session(op, origin)
            };
            if !sent {
                self.close_conn(conn);
            }
            return;
        } else {
            let Some(password) = self.resume(conn, &req, read_only) else {
                return;
            };
            self.sessions.set_timeout(req.session_id, timeout, now);
            self.touched.insert(req.session_id);
            self.attach(conn, req.session_id);
            accepted(req.session_id, timeout, password, read_only)
        };
        let frame = self.encode(&response);
        self.send(conn, frame);
    }

    /// A client resuming a session: its password if the session is live and
    /// the password matches, with the session's old connection closed;
    /// otherwise the client is told the session is invalid and closed.
    fn resume(
        &mut self,
        conn: ConnId,
        req: &ConnectRequest,
        read_only: Option<bool>,
    ) -> Option<[u8; 16]> {
        let password = self
            .sessions
            .get(req.session_id)
            .filter(|s| !s.closing && s.password[..] == req.passwd[..])
            .map(|s| s.password);
        let Some(password) = password else {
            info!(
                conn,
                session = format!("{:#x}", req.session_id),
                "session expired or invalid"
            );
            let frame = self.encode(&ConnectResponse::invalid_session(read_only));
            self.send(conn, frame);
            self.close_conn(conn);
            return None;
        };
        // The session moves here; its old connection is closed.
        if let Some(old) = self.session_conn.get(&req.session_id).copied() {
            if old != conn {
                self.close_conn(old);
            }
        }
        Some(password)
    }

    fn attach(&mut self, conn: ConnId, session: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(session);
            c.stats.session_timeout = self.sessions.get(session).map_or(0, |s| s.timeout_ms);
        }
        self.session_conn.insert(session, conn);
    }

    // ---- the pipeline ------------------------------------------------------

    /// The zxid the next proposed transaction takes (on the leader; a
    /// placeholder elsewhere, where nothing is proposed).
    fn next_zxid(&self) -> i64 {
        self.zab.next_zxid().unwrap_or(self.tree.last_zxid() + 1)
    }

    /// Proposes a transaction (prepared for `next_zxid`) and queues its
    /// origin; false if this server cannot propose now.
    fn propose(&mut self, session_id: i64, cxid: i32, op: TxnOp, origin: Origin) -> bool {
        let Some(zxid) = self.zab.next_zxid() else {
            return false;
        };
        let txn = Arc::new(Txn {
            zxid,
            time_ms: wall_ms(),
            session_id,
            cxid,
            op,
        });
        match self.zab.propose(Arc::clone(&txn)) {
            Ok(proposed) => debug_assert_eq!(proposed, zxid),
            Err(e) => {
                warn!(zxid = format!("{zxid:#x}"), "not proposed: {e}");
                return false;
            }
        }
        self.queue(origin, |origin| Pending::Write { txn, origin });
        true
    }

    /// Puts a write's origin in the in-flight queue, behind which the same
    /// connection's reads wait.
    fn queue(&mut self, origin: Origin, entry: impl FnOnce(Origin) -> Pending) {
        let conn = origin.conn();
        self.enqueue(conn, entry(origin));
    }

    /// Puts an entry in the in-flight queue, counted against its
    /// connection, whose later reads then wait behind it.
    fn enqueue(&mut self, conn: Option<ConnId>, entry: Pending) {
        if let Some(c) = conn.and_then(|conn| self.conns.get_mut(&conn)) {
            c.queued += 1;
        }
        self.inflight.push_back(entry);
    }

    /// A committed transaction: applies it, answers whoever waits for it
    /// here, then the reads that queued behind it.
    fn committed(&mut self, txn: &Arc<Txn>) {
        let ours = match self.inflight.front() {
            Some(Pending::Write { txn: t, .. }) => t.zxid == txn.zxid,
            Some(Pending::Forwarded { session, cxid, .. }) => {
                *session == txn.session_id && *cxid == txn.cxid
            }
            _ => false,
        };
        let origin = if ours {
            let origin = match self.inflight.pop_front() {
                Some(Pending::Write { origin, .. } | Pending::Forwarded { origin, .. }) => origin,
                _ => unreachable!("the front is a write"),
            };
            if let Some(c) = origin.conn().and_then(|conn| self.conns.get_mut(&conn)) {
                c.queued = c.queued.saturating_sub(1);
            }
            origin
        } else {
            Origin::Server
        };
        self.finish(txn, origin);
        self.serve_queued_reads();
    }

    /// Answers the reads at the front of the in-flight queue, whose writes
    /// are applied, and the syncs whose point the tree has reached.
    fn serve_queued_reads(&mut self) {
        loop {
            let ready = match self.inflight.front() {
                Some(Pending::Read { .. }) => true,
                Some(Pending::Sync { until, .. }) => {
                    until.is_some_and(|z| self.tree.last_zxid() >= z)
                }
                _ => false,
            };
            if !ready {
                return;
            }
            let (conn, session, xid, body, received) = match self.inflight.pop_front() {
                Some(
                    Pending::Read {
                        conn,
                        session,
                        xid,
                        body,
                        received,
                    }
                    | Pending::Sync {
                        conn,
                        session,
                        xid,
                        body,
                        received,
                        ..
                    },
                ) => (conn, session, xid, body, received),
                _ => unreachable!("the front is a read or a sync"),
            };
            if let Some(c) = self.conns.get_mut(&conn) {
                c.queued = c.queued.saturating_sub(1);
            }
            let message = self.read(conn, session, xid, body);
            self.answer(conn, &message, received);
        }
    }

    /// Applies a durable transaction, fires its watches and answers its
    /// origin.
    fn finish(&mut self, txn: &Txn, origin: Origin) {
        let mut changes = Vec::new();
        let applied = self.tree.apply(txn, &mut changes);
        self.outstanding.applied(txn.zxid);
        self.since_snapshot = self.since_snapshot.saturating_add(1);
        self.since_compact += 1;
        match txn.op.session_effect() {
            Some(SessionEffect::Opened {
                session_id,
                timeout_ms,
                password,
            }) => {
                let now = self.now_ms();
                self.sessions.add(session_id, timeout_ms, password, now);
                self.proposed_sessions.remove(&session_id);
            }
            Some(SessionEffect::Closed(session_id)) => {
                self.sessions.remove(session_id);
                // Closed elsewhere (expired by the leader, or moved): a
                // connection here that still holds it goes.
                if !matches!(origin, Origin::Close { .. }) {
                    if let Some(conn) = self.session_conn.remove(&session_id) {
                        self.close_conn(conn);
                    }
                }
            }
            None => {}
        }
        self.fire(&changes, txn.zxid);
        debug!(zxid = txn.zxid, session = txn.session_id, "applied");
        match origin {
            Origin::Server => {}
            Origin::Request {
                conn,
                xid,
                body,
                received,
            } => {
                let message = write_reply(xid, txn.zxid, &body, applied);
                self.answer(conn, &message, received);
            }
            Origin::Connect { conn, response } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                info!(
                    conn,
                    session = format!("{:#x}", response.session_id),
                    timeout = response.timeout_ms,
                    "session created"
                );
                self.attach(conn, response.session_id);
                let frame = self.encode(&response);
                self.send(conn, frame);
            }
            Origin::Close { conn, xid } => {
                info!(
                    session = format!("{:#x}", txn.session_id),
                    "session closed by client"
                );
                self.reply(
                    conn,
                    &ServerMessage::header_only(xid, txn.zxid, ErrorCode::Ok),
                );
                self.close_conn(conn);
            }
        }
    }

    /// Replies to a request and records its latency.
    fn answer(&mut self, conn: ConnId, message: &ServerMessage, received: Instant) {
        self.reply(conn, message);
        let latency = received.elapsed().as_millis() as u64;
        self.stats.record_latency(latency);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.record_response(latency, wall_ms());
        }
    }

    /// Starts a snapshot once enough transactions were applied since the
    /// last, unless one is being written.
    fn maybe_snapshot(&mut self) {
        if self.since_snapshot < self.snapshot_after || self.snapshots.is_busy() {
            return;
        }
        let source = self.snapshot_source();
        if self.snapshots.take(source) {
            self.since_snapshot = 0;
            self.snapshot_after = snapshot_threshold(self.config.snap_count);
        }
    }

    fn fire(&mut self, changes: &[Change], zxid: i64) {
        let mut fired: Vec<Fired> = Vec::new();
        for change in changes {
            fired.clear();
            self.watches.trigger(change, &mut fired);
            for f in &fired {
                if !self.may_see(f.conn, change) {
                    continue;
                }
                let message = ServerMessage::Notification {
                    zxid,
                    event: WatcherEvent {
                        event_type: f.event,
                        state: KeeperState::SyncConnected,
                        path: f.path.clone(),
                    },
                };
                self.reply(f.conn, &message);
            }
        }
    }

    /// Events are not delivered to a connection without READ on the node
    /// (the parent, for child events), as ZooKeeper 3.8.4+ does.
    fn may_see(&self, conn: ConnId, change: &Change) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let acl = match change {
            Change::Deleted(_, acl) => Some(&acl[..]),
            Change::Created(p) | Change::DataChanged(p) | Change::ChildrenChanged(p) => {
                self.tree.get(p).map(|n| &n.acl()[..])
            }
        };
        acl.is_none_or(|acl| c.ids.allows(acl, Perms::READ))
    }

    fn request(&mut self, conn: ConnId, request: Request, received: Instant) {
        self.stats.packets_received += 1;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.stats.packets_received += 1;
        c.stats.last_op = request.body.opcode();
        if request.xid >= 0 {
            c.stats.last_cxid = Some(request.xid);
        }
        let Some(session) = c.session else {
            return;
        };
        let now = self.now_ms();
        let opcode = request.body.opcode();
        // auth and sasl do not touch the session, as in ZooKeeper.
        if !matches!(opcode, OpCode::Auth | OpCode::Sasl) && !self.sessions.touch(session, now) {
            let zxid = self.tree.last_zxid();
            self.reply(
                conn,
                &ServerMessage::header_only(request.xid, zxid, ErrorCode::SessionExpired),
            );
            return;
        }
        let read_only = self.conns.get(&conn).is_some_and(|c| c.read_only);
        if read_only && (is_write(&request.body) || request.body == RequestBody::CloseSession) {
            return self.refuse_in_read_only(conn, session, request);
        }
        if !read_only {
            self.touched.insert(session);
        }
        if !read_only
            && !self.is_leader()
            && (is_write(&request.body) || request.body == RequestBody::CloseSession)
        {
            if request.body == RequestBody::CloseSession {
                self.sessions.mark_closing(session);
            }
            let origin = match &request.body {
                RequestBody::CloseSession => Origin::Close {
                    conn,
                    xid: request.xid,
                },
                body => Origin::Request {
                    conn,
                    xid: request.xid,
                    body: body.clone(),
                    received,
                },
            };
            if !self.forward(conn, session, request, origin) {
                self.close_conn(conn);
            }
            return;
        }
        if !read_only
            && !self.is_leader()
            && matches!(request.body, RequestBody::Sync(_))
            && !self.config.test_unsafe_local_sync
        {
            if !self.forward_sync(conn, session, request, received) {
                self.close_conn(conn);
            }
            return;
        }
        let xid = request.xid;
        match request.body {
            RequestBody::Ping => {
                let zxid = self.tree.last_zxid();
                self.reply(
                    conn,
                    &ServerMessage::header_only(xid::PING, zxid, ErrorCode::Ok),
                );
            }
            RequestBody::Auth(auth) => self.auth(conn, auth),
            RequestBody::Sasl(_) => {
                // No SASL mechanism is configured: refused, and the connection closed.
                self.reply(
                    conn,
                    &ServerMessage::header_only(xid, 0, ErrorCode::AuthFailed),
                );
                self.close_conn(conn);
            }
            RequestBody::CloseSession => {
                self.sessions.mark_closing(session);
                let op = TxnOp::CloseSession {
                    session_id: session,
                };
                if !self.propose(session, xid, op, Origin::Close { conn, xid }) {
                    self.close_conn(conn);
                }
            }
            body if is_write(&body) => self.write(conn, session, xid, body, received),
            body @ RequestBody::Sync(_) if self.is_leader() => {
                // Followers' acknowledgements alone may commit a write, and
                // a follower answer it, before this leader's own log has it
                // durable, so before it is applied here. The sync waits
                // until the tree holds everything proposed so far.
                let until = Some(self.zab.last_zxid());
                self.enqueue(
                    Some(conn),
                    Pending::Sync {
                        conn,
                        session,
                        xid,
                        body,
                        received,
                        until,
                    },
                );
                self.serve_queued_reads();
            }
            body => {
                let queued = self.conns.get(&conn).is_some_and(|c| c.queued > 0);
                if queued {
                    self.enqueue(
                        Some(conn),
                        Pending::Read {
                            conn,
                            session,
                            xid,
                            body,
                            received,
                        },
                    );
                } else {
                    let message = self.read(conn, session, xid, body);
                    self.answer(conn, &message, received);
                }
            }
        }
    }

    fn auth(&mut self, conn: ConnId, auth: AuthPacket) {
        let super_digest = self.config.super_digest.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let credential = auth.auth.unwrap_or_default();
        let added = match auth.scheme.as_str() {
            "digest" => {
                let id = digest_id(&credential);
                let is_super = super_digest.as_deref() == Some(id.as_str());
                let ok = c.ids.add(Id::new("digest", id));
                if ok && is_super {
                    c.ids.add(Id::new("super", ""));
                }
                ok
            }
            "ip" => {
                let ip = c.remote.ip().to_string();
                c.ids.add(Id::new("ip", ip))
            }
            _ => false,
        };
        if added {
            self.reply(
                conn,
                &ServerMessage::header_only(xid::AUTH, 0, ErrorCode::Ok),
            );
        } else {
            self.stats.auth_failed += 1;
            self.reply(
                conn,
                &ServerMessage::header_only(xid::AUTH, 0, ErrorCode::AuthFailed),
            );
            self.close_conn(conn);
        }
    }

    fn write(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        body: RequestBody,
        received: Instant,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ctx = PrepContext {
            session_id: session,
            identities: &c.ids,
            extended_types_enabled: self.config.extended_types_enabled,
        };
        let zxid = self.next_zxid();
        let op = prep(&body, &self.tree, &mut self.outstanding, zxid, &ctx);
        let origin = Origin::Request {
            conn,
            xid,
            body,
            received,
        };
        if !self.propose(session, xid, op, origin) {
            // Not safe: the client sees its connection drop, not an answer.
            self.close_conn(conn);
        }
    }

    fn read(&mut self, conn: ConnId, session: i64, xid: i32, body: RequestBody) -> ServerMessage {
        let zxid = self.tree.last_zxid();
        let limit = self.config.max_watches_per_connection;
        let result: Result<Option<ResponseBody>, ErrorCode> = match body {
            RequestBody::Exists(r) => {
                if r.path.contains('\0') {
                    Err(ErrorCode::BadArguments)
                } else {
                    match self.tree.get(&r.path) {
                        Some(node) if !self.allows(conn, node.acl(), Perms::READ) => {
                            Err(ErrorCode::NoAuth)
                        }
                        found => {
                            let stat = found.map(|n| n.stat());
                            if r.watch {
                                let added = self.watches.add_data(&r.path, conn, limit);
                                watch_refused_unless(added, conn, &r.path);
                            }
                            match stat {
                                Some(stat) => {
                                    Ok(Some(ResponseBody::Exists(ExistsResponse { stat })))
                                }
                                None => Err(ErrorCode::NoNode),
                            }
                        }
                    }
                }
            }
            RequestBody::GetData(r) => self.get_data(conn, &r.path).map(|(data, stat)| {
                if r.watch {
                    let added = self.watches.add_data(&r.path, conn, limit);
                    watch_refused_unless(added, conn, &r.path);
                }
                Some(ResponseBody::GetData(GetDataResponse { data, stat }))
            }),
            RequestBody::GetChildren(r) => self.get_children(conn, &r.path).map(|(children, _)| {
                if r.watch {
                    let added = self.watches.add_child(&r.path, conn, limit);
                    watch_refused_unless(added, conn, &r.path);
                }
                Some(ResponseBody::GetChildren(GetChildrenResponse { children }))
            }),
            RequestBody::GetChildren2(r) => {
                self.get_children(conn, &r.path).map(|(children, stat)| {
                    if r.watch {
                        let added = self.watches.add_child(&r.path, conn, limit);
                        watch_refused_unless(added, conn, &r.path);
                    }
                    Some(ResponseBody::GetChildren2(GetChildren2Response {
                        children,
                        stat,
                    }))
                })
            }
            RequestBody::GetAcl(r) => match self.tree.get(&r.path) {
                None => Err(ErrorCode::NoNode),
                Some(node) => {
                    let admin = self.allows(conn, node.acl(), Perms::ADMIN);
                    if !admin && !self.allows(conn, node.acl(), Perms::READ) {
                        Err(ErrorCode::NoAuth)
                    } else {
                        let acl = if admin {
                            node.acl().to_vec()
                        } else {
                            mask_digests(node.acl())
                        };
                        Ok(Some(ResponseBody::GetAcl(GetAclResponse {
                            acl,
                            stat: node.stat(),
                        })))
                    }
                }
            },
            RequestBody::GetAllChildrenNumber(r) => match self.tree.get(&r.path) {
                None => Err(ErrorCode::NoNode),
                Some(node) if !self.allows(conn, node.acl(), Perms::READ) => Err(ErrorCode::NoAuth),
                Some(_) => Ok(Some(ResponseBody::GetAllChildrenNumber(
                    GetAllChildrenNumberResponse {
                        total_number: self.tree.descendant_count(&r.path) as i32,
                    },
                ))),
            },
            RequestBody::GetEphemerals(r) => {
                let prefix = r.prefix_path.unwrap_or_default();
                let all = prefix.trim().is_empty() || prefix == "/";
                let ephemerals = self
                    .tree
                    .ephemerals_of(session)
                    .filter(|p| all || p.starts_with(&prefix))
                    .cloned()
                    .collect();
                Ok(Some(ResponseBody::GetEphemerals(GetEphemeralsResponse {
                    ephemerals,
                })))
            }
            // Standalone, every read already sees every committed write.
            RequestBody::Sync(r) => Ok(Some(ResponseBody::Sync(r))),
            RequestBody::WhoAmI => {
                let client_info = self.conns.get(&conn).map_or_else(Vec::new, |c| {
                    c.ids
                        .ids()
                        .iter()
                        .map(|id| ClientInfo {
                            auth_scheme: id.scheme().to_string(),
                            user: match id.scheme() {
                                "digest" => {
                                    id.id().split(':').next().unwrap_or_default().to_string()
                                }
                                "ip" => id.id().to_string(),
                                _ => String::new(),
                            },
                        })
                        .collect()
                });
                Ok(Some(ResponseBody::WhoAmI(WhoAmIResponse { client_info })))
            }
            RequestBody::MultiRead(multi) => {
                if multi.ops.iter().any(|op| !op.is_read()) {
                    Err(ErrorCode::MarshallingError)
                } else {
                    let results = multi
                        .ops
                        .iter()
                        .map(|op| match op {
                            MultiOp::GetData(r) => match self.get_data(conn, &r.path) {
                                Ok((data, stat)) => {
                                    OpResult::GetData(GetDataResponse { data, stat })
                                }
                                Err(code) => OpResult::Error(code),
                            },
                            MultiOp::GetChildren(r) => match self.get_children(conn, &r.path) {
                                Ok((children, _)) => {
                                    OpResult::GetChildren(GetChildrenResponse { children })
                                }
                                Err(code) => OpResult::Error(code),
                            },
                            _ => OpResult::Error(ErrorCode::MarshallingError),
                        })
                        .collect();
                    Ok(Some(ResponseBody::Multi(MultiResponse { results })))
                }
            }
            RequestBody::SetWatches(w) => {
                let all = SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches,
                    exist_watches: w.exist_watches,
                    child_watches: w.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                };
                self.set_watches(conn, all);
                Ok(None)
            }
            RequestBody::SetWatches2(w) => {
                self.set_watches(conn, w);
                Ok(None)
            }
            RequestBody::AddWatch(r) => {
                let recursive = r.mode == AddWatchMode::PersistentRecursive;
                let added = self.watches.add_persistent(&r.path, recursive, conn, limit);
                watch_refused_unless(added, conn, &r.path);
                Ok(Some(ResponseBody::AddWatch(ErrorResponse {
                    err: ErrorCode::Ok,
                })))
            }
            RequestBody::CheckWatches(r) => {
                if self.watches.check(&r.path, r.watcher_type, conn) {
                    Ok(None)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            RequestBody::RemoveWatches(r) => {
                if self.watches.remove_matching(&r.path, r.watcher_type, conn) {
                    Ok(None)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            other => {
                warn!(opcode = ?other.opcode(), "request reached the read path");
                Err(ErrorCode::Unimplemented)
            }
        };
        match result {
            Ok(Some(body)) => ServerMessage::ok(xid, zxid, body),
            Ok(None) => ServerMessage::header_only(xid, zxid, ErrorCode::Ok),
            Err(code) => ServerMessage::header_only(xid, zxid, code),
        }
    }

    fn allows(&self, conn: ConnId, acl: &[Acl], perm: Perms) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.ids.allows(acl, perm))
    }

    fn get_data(&self, conn: ConnId, path: &str) -> Result<(Option<Bytes>, Stat), ErrorCode> {
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        if !self.allows(conn, node.acl(), Perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((node.data_bytes(), node.stat()))
    }

    fn get_children(&self, conn: ConnId, path: &str) -> Result<(Vec<String>, Stat), ErrorCode> {
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        if !self.allows(conn, node.acl(), Perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((
            self.tree.children(path).map(str::to_string).collect(),
            node.stat(),
        ))
    }

    /// Re-registers watches after a reconnect, sending at once (zxid -1) the
    /// events the client missed (protocol section 10.6).
    fn set_watches(&mut self, conn: ConnId, w: SetWatches2) {
        let limit = self.config.max_watches_per_connection;
        let relative = w.relative_zxid;
        let mut events = Vec::new();
        for path in w.data_watches {
            match self.tree.get(&path) {
                None => events.push((EventType::NodeDeleted, path)),
                Some(n) if n.stored().mzxid > relative => {
                    events.push((EventType::NodeDataChanged, path))
                }
                Some(_) => {
                    let added = self.watches.add_data(&path, conn, limit);
                    watch_refused_unless(added, conn, &path);
                }
            }
        }
        for path in w.exist_watches {
            if self.tree.get(&path).is_some() {
                events.push((EventType::NodeCreated, path));
            } else {
                let added = self.watches.add_data(&path, conn, limit);
                watch_refused_unless(added, conn, &path);
            }
        }
        for path in w.child_watches {
            match self.tree.get(&path) {
                None => events.push((EventType::NodeDeleted, path)),
                Some(n) if n.stored().pzxid > relative => {
                    events.push((EventType::NodeChildrenChanged, path))
                }
                Some(_) => {
                    let added = self.watches.add_child(&path, conn, limit);
                    watch_refused_unless(added, conn, &path);
                }
            }
        }
        for path in w.persistent_watches {
            let added = self.watches.add_persistent(&path, false, conn, limit);
            watch_refused_unless(added, conn, &path);
        }
        for path in w.persistent_recursive_watches {
            let added = self.watches.add_persistent(&path, true, conn, limit);
            watch_refused_unless(added, conn, &path);
        }
        for (event_type, path) in events {
            let message = ServerMessage::Notification {
                zxid: -1,
                event: WatcherEvent {
                    event_type,
                    state: KeeperState::SyncConnected,
                    path,
                },
            };
            self.reply(conn, &message);
        }
    }

    // ---- time --------------------------------------------------------------

    fn tick(&mut self) {
        // Sessions and containers are the established leader's to end.
        if !matches!(self.role, Role::Leading { serving: true, .. }) {
            return;
        }
        let now = self.now_ms();
        for session in self.sessions.expired(now) {
            info!(session = format!("{session:#x}"), "session expired");
            if let Some(conn) = self.session_conn.get(&session).copied() {
                self.close_conn(conn);
            }
            let op = TxnOp::CloseSession {
                session_id: session,
            };
            self.propose(session, 0, op, Origin::Server);
        }
        if now.saturating_sub(self.last_reap_ms)
            >= u64::from(self.config.container_check_interval_ms)
        {
            self.last_reap_ms = now;
            self.reap();
        }
    }

    /// Deletes empty containers that once had a child, and expired TTL nodes.
    fn reap(&mut self) {
        let now = wall_ms();
        let doomed: Vec<String> = self
            .tree
            .paths()
            .filter(|(_, node)| node.num_children() == 0)
            .filter(|(_, node)| match node.kind() {
                OwnerKind::Container => node.stored().cversion > 0,
                OwnerKind::Ttl(ttl) => now - node.stored().mtime > ttl,
                _ => false,
            })
            .map(|(path, _)| path.to_string())
            .collect();
        // The server's own requests: no client identity is involved, and
        // deleteContainer checks no ACL.
        let ids = Identities::new(std::net::IpAddr::from([127, 0, 0, 1]));
        for path in doomed {
            let body = RequestBody::DeleteContainer(DeleteContainerRequest { path: path.clone() });
            let ctx = PrepContext {
                session_id: 0,
                identities: &ids,
                extended_types_enabled: self.config.extended_types_enabled,
            };
            let zxid = self.next_zxid();
            let op = prep(&body, &self.tree, &mut self.outstanding, zxid, &ctx);
            if matches!(op, TxnOp::Delete { .. }) {
                debug!(path, "reaping container or TTL node");
                self.propose(0, 0, op, Origin::Server);
            }
        }
    }
}

/// The connect response that accepts a session.
fn accepted(
    session_id: i64,
    timeout_ms: i32,
    password: [u8; 16],
    read_only: Option<bool>,
) -> ConnectResponse {
    ConnectResponse {
        protocol_version: 0,
        timeout_ms,
        session_id,
        passwd: Bytes::copy_from_slice(&password),
        read_only,
    }
}

/// A watch over the connection's limit is not registered; the request
/// itself still succeeds, as there is no error code for it in the protocol.
fn watch_refused_unless(added: bool, conn: ConnId, path: &str) {
    if !added {
        warn!(
            conn,
            path, "watch not set: the connection holds maxWatchesPerConnection watches"
        );
    }
}

fn is_write(body: &RequestBody) -> bool {
    matches!(
        body,
        RequestBody::Create(_)
            | RequestBody::Create2(_)
            | RequestBody::CreateContainer(_)
            | RequestBody::CreateTtl(_)
            | RequestBody::Delete(_)
            | RequestBody::DeleteContainer(_)
            | RequestBody::SetData(_)
            | RequestBody::SetAcl(_)
            | RequestBody::Multi(_)
            | RequestBody::Reconfig(_)
    )
}

/// The next snapshot begins after between half and all of `snapCount`
/// transactions, at random, so that the servers of an ensemble do not all
/// snapshot at once (ZooKeeper's randRoll).
fn snapshot_threshold(snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rand::random::<u64>() % half
}

/// The reply to a write, from what applying it produced.
fn write_reply(xid: i32, zxid: i64, body: &RequestBody, applied: Applied) -> ServerMessage {
    match applied {
        Applied::Failed(code) => ServerMessage::header_only(xid, zxid, code),
        Applied::MultiFailed(codes) => ServerMessage::ok(
            xid,
            zxid,
            ResponseBody::Multi(MultiResponse {
                results: codes.into_iter().map(OpResult::Error).collect(),
            }),
        ),
        Applied::Multi(results) => {
            let RequestBody::Multi(multi) = body else {
                unreachable!("only a multi applies as Multi")
            };
            let results = multi
                .ops
                .iter()
                .zip(results)
                .map(|(op, r)| multi_result(op, r))
                .collect();
            ServerMessage::ok(xid, zxid, ResponseBody::Multi(MultiResponse { results }))
        }
        Applied::Created { path, stat } => match body.opcode() {
            OpCode::Create => {
                ServerMessage::ok(xid, zxid, ResponseBody::Create(CreateResponse { path }))
            }
            _ => ServerMessage::ok(
                xid,
                zxid,
                ResponseBody::Create2(Create2Response { path, stat }),
            ),
        },
        Applied::DataSet { stat } => {
            ServerMessage::ok(xid, zxid, ResponseBody::SetData(SetDataResponse { stat }))
        }
        Applied::AclSet { stat } => {
            ServerMessage::ok(xid, zxid, ResponseBody::SetAcl(SetAclResponse { stat }))
        }
        _ => ServerMessage::header_only(xid, zxid, ErrorCode::Ok),
    }
}

fn multi_result(op: &MultiOp, applied: Applied) -> OpResult {
    match (op, applied) {
        (MultiOp::Create(_), Applied::Created { path, .. }) => {
            OpResult::Create(CreateResponse { path })
        }
        (_, Applied::Created { path, stat }) => OpResult::Create2(Create2Response { path, stat }),
        (_, Applied::Deleted) => OpResult::Delete,
        (_, Applied::DataSet { stat }) => OpResult::SetData(SetDataResponse { stat }),
        (_, Applied::Checked) => OpResult::Check,
        _ => OpResult::Error(ErrorCode::RuntimeInconsistency),
    }
}
