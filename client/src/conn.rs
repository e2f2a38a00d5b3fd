//! The connection task: one per client. It owns the socket, assigns xids,
//! matches replies in order, keeps the session alive with pings, delivers
//! watch events, and on a lost connection reconnects to the next server,
//! resumes the session, re-sends credentials and re-registers watches.
//!
//! A client that accepts read-only servers (`ClientBuilder::read_only`)
//! may land on one cut off from its quorum. While there, the task asks the
//! connect string's other hosts, now and then, whether they take writes
//! (the four-letter word `isro`, as Java's client does) and moves to the
//! first that does. A read-only server's session is its own, so the move
//! brings a new session; watches are re-registered on it.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};
use zoo_wire::opcode::xid;
use zoo_wire::*;

use crate::connect_string::ConnectString;
use crate::error::{Error, Result};
use crate::watcher::{SessionState, WatchedEvent};

/// A watch to register when the reply succeeds.
#[derive(Debug)]
pub(crate) enum WatchReg {
    Data(oneshot::Sender<WatchedEvent>),
    /// exists: a data watch if the node is there, an exist watch if not.
    Exists(oneshot::Sender<WatchedEvent>),
    Child(oneshot::Sender<WatchedEvent>),
    Persistent {
        recursive: bool,
        id: u64,
        tx: mpsc::Sender<WatchedEvent>,
    },
    /// removeWatches: when the server agrees, the path's watches of this
    /// type end, each told with a `*WatchRemoved` event.
    Remove(WatcherType),
}

pub(crate) type Reply = Result<Option<ResponseBody>>;

/// Told once the first session is established (its id and password are
/// then in `SessionInfo`), or why there is none.
pub(crate) type Connected = oneshot::Sender<Result<()>>;

/// The session as the last handshake gave it. It changes only when a
/// session from a read-only server is left for a read-write server's.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionInfo {
    pub id: i64,
    pub password: Vec<u8>,
    pub timeout_ms: i32,
}

/// While on a read-only server, the first look for a read-write server
/// comes this long after connecting; each look that finds none doubles
/// the wait, up to `RW_SEARCH_MAX_DELAY`. Java's client starts at 100 ms
/// and doubles up to 60 s; a shorter ceiling finds a healed partition
/// sooner, and costs one short connection per host every ten seconds.
const RW_SEARCH_FIRST_DELAY: Duration = Duration::from_millis(500);
const RW_SEARCH_MAX_DELAY: Duration = Duration::from_secs(10);

/// How long one `isro` question may take, connecting included (Java's
/// client gives it a 1 s socket timeout). A host that does not answer in
/// time is taken for one that does not take writes.
const RW_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The most of an `isro` answer read: "rw", "ro" and "null" are short,
/// and anything longer (a whitelist refusal) is not "rw".
const RW_PROBE_MAX_ANSWER: u64 = 64;

/// One round of the search for a read-write server: the index of a host
/// that answered "rw", or `None`.
type RwSearch = Pin<Box<dyn Future<Output = Option<usize>> + Send>>;

#[derive(Debug)]
pub(crate) enum Command {
    Call {
        body: RequestBody,
        watch: Option<WatchReg>,
        reply: oneshot::Sender<Reply>,
    },
    /// A persistent watcher was dropped.
    Unwatch {
        path: String,
        recursive: bool,
        id: u64,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

#[derive(Debug)]
struct Pending {
    xid: i32,
    op: OpCode,
    reply: Option<oneshot::Sender<Reply>>,
    watch: Option<WatchReg>,
    path: String,
}

/// Watches held locally, keyed by server path.
#[derive(Debug, Default)]
struct Watches {
    data: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    exist: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    child: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    persistent: HashMap<String, Vec<(u64, mpsc::Sender<WatchedEvent>)>>,
    recursive: HashMap<String, Vec<(u64, mpsc::Sender<WatchedEvent>)>>,
}

/// Events a persistent watcher may hold unread before more are dropped.
pub(crate) const PERSISTENT_QUEUE: usize = 1024;

impl Watches {
    fn register(&mut self, reg: WatchReg, path: &str, err: ErrorCode) {
        let key = path.to_string();
        match reg {
            WatchReg::Data(tx) if err.is_ok() => self.data.entry(key).or_default().push(tx),
            WatchReg::Exists(tx) if err.is_ok() => self.data.entry(key).or_default().push(tx),
            WatchReg::Exists(tx) if err == ErrorCode::NoNode => {
                self.exist.entry(key).or_default().push(tx)
            }
            WatchReg::Child(tx) if err.is_ok() => self.child.entry(key).or_default().push(tx),
            WatchReg::Persistent { recursive, id, tx } if err.is_ok() => {
                let table = if recursive {
                    &mut self.recursive
                } else {
                    &mut self.persistent
                };
                table.entry(key).or_default().push((id, tx));
            }
            WatchReg::Remove(watcher_type) if err.is_ok() => self.remove(path, watcher_type),
            _ => {}
        }
    }

    /// Ends the watches of `watcher_type` on `path`, as Java's client does
    /// after a successful removeWatches: each watcher gets one last event
    /// saying its watch was removed.
    fn remove(&mut self, path: &str, watcher_type: WatcherType) {
        let any = watcher_type == WatcherType::Any;
        let removed = |event_type| WatchedEvent {
            event_type,
            path: path.to_string(),
        };
        if any || watcher_type == WatcherType::Data {
            for table in [&mut self.data, &mut self.exist] {
                for tx in table.remove(path).unwrap_or_default() {
                    let _ = tx.send(removed(EventType::DataWatchRemoved));
                }
            }
        }
        if any || watcher_type == WatcherType::Children {
            for tx in self.child.remove(path).unwrap_or_default() {
                let _ = tx.send(removed(EventType::ChildWatchRemoved));
            }
        }
        let persistent = [
            (WatcherType::Persistent, &mut self.persistent),
            (WatcherType::PersistentRecursive, &mut self.recursive),
        ];
        for (kind, table) in persistent {
            if any || watcher_type == kind {
                for (_, tx) in table.remove(path).unwrap_or_default() {
                    let _ = tx.try_send(removed(EventType::PersistentWatchRemoved));
                }
            }
        }
    }

    fn deliver(&mut self, event: &WatcherEvent, chroot: &ConnectString) {
        let out = WatchedEvent {
            event_type: event.event_type,
            path: chroot.client_path(&event.path),
        };
        let path = &event.path;
        let fire = |table: &mut HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>| {
            for tx in table.remove(path).unwrap_or_default() {
                let _ = tx.send(out.clone());
            }
        };
        match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                fire(&mut self.data);
                fire(&mut self.exist);
            }
            EventType::NodeDeleted => {
                fire(&mut self.data);
                fire(&mut self.exist);
                fire(&mut self.child);
            }
            EventType::NodeChildrenChanged => fire(&mut self.child),
            _ => {}
        }
        for (_, tx) in self.persistent.get(path).into_iter().flatten() {
            let _ = tx.try_send(out.clone());
        }
        if event.event_type != EventType::NodeChildrenChanged {
            let mut current = path.as_str();
            loop {
                for (_, tx) in self.recursive.get(current).into_iter().flatten() {
                    let _ = tx.try_send(out.clone());
                }
                match zoo_wire::path::parent(current) {
                    Some(p) => current = p,
                    None => break,
                }
            }
        }
    }

    /// What to send in SetWatches2 after a reconnect.
    fn restore(&self, relative_zxid: i64) -> Option<SetWatches2> {
        let keys = |t: &HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>| -> Vec<String> {
            t.iter()
                .filter(|(_, v)| v.iter().any(|tx| !tx.is_closed()))
                .map(|(k, _)| k.clone())
                .collect()
        };
        let w = SetWatches2 {
            relative_zxid,
            data_watches: keys(&self.data),
            exist_watches: keys(&self.exist),
            child_watches: keys(&self.child),
            persistent_watches: self.persistent.keys().cloned().collect(),
            persistent_recursive_watches: self.recursive.keys().cloned().collect(),
        };
        let empty = w.data_watches.is_empty()
            && w.exist_watches.is_empty()
            && w.child_watches.is_empty()
            && w.persistent_watches.is_empty()
            && w.persistent_recursive_watches.is_empty();
        (!empty).then_some(w)
    }

    /// Drops one persistent watcher; true when it was the path's last.
    fn unwatch(&mut self, path: &str, recursive: bool, id: u64) -> bool {
        let table = if recursive {
            &mut self.recursive
        } else {
            &mut self.persistent
        };
        if let Some(list) = table.get_mut(path) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                table.remove(path);
                return true;
            }
        }
        false
    }
}

/// Settings the task runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub connect: ConnectString,
    pub session_timeout: Duration,
    pub connection_timeout: Duration,
    pub auth: Vec<(String, Bytes)>,
    pub resume: Option<(i64, Vec<u8>)>,
    pub max_frame_len: usize,
    /// Sent as the ConnectRequest's readOnly byte.
    pub read_only: bool,
}

pub(crate) struct Task {
    settings: Settings,
    commands: mpsc::Receiver<Command>,
    state: watch::Sender<SessionState>,
    /// Where the client reads `session_id` and `session_password`.
    session: watch::Sender<SessionInfo>,
    session_id: i64,
    password: Vec<u8>,
    timeout_ms: i32,
    /// This session came from a read-write server (or the caller resumed
    /// it), so reconnects resume it. Until then each connect asks for a
    /// new session: a read-only server's session is unknown elsewhere
    /// (Java's `seenRwServerBefore`).
    seen_read_write: bool,
    last_zxid: i64,
    next_xid: i32,
    watches: Watches,
    hosts: Vec<String>,
    next_host: usize,
    /// The index in `hosts` of the server connected to (or last tried).
    current_host: usize,
    /// The wait before the next look for a read-write server.
    rw_search_delay: Duration,
}

type Conn = Framed<TcpStream, FrameCodec>;

enum Ended {
    /// The connection dropped: try again.
    Lost,
    /// Nothing more to do.
    Final(SessionState),
}

impl Task {
    pub(crate) fn new(
        settings: Settings,
        commands: mpsc::Receiver<Command>,
        state: watch::Sender<SessionState>,
        session: watch::Sender<SessionInfo>,
    ) -> Task {
        let mut hosts = settings.connect.hosts.clone();
        hosts.shuffle(&mut rand::thread_rng());
        let seen_read_write = settings.resume.is_some();
        let (session_id, password) = settings.resume.clone().unwrap_or((0, vec![0; 16]));
        Task {
            settings,
            commands,
            state,
            session,
            session_id,
            password,
            timeout_ms: 0,
            seen_read_write,
            last_zxid: 0,
            next_xid: 1,
            watches: Watches::default(),
            hosts,
            next_host: 0,
            current_host: 0,
            rw_search_delay: RW_SEARCH_FIRST_DELAY,
        }
    }

    /// Connects, then runs until the session ends or the client closes.
    pub(crate) async fn run(mut self, connected: Connected) {
        let mut connected = Some(connected);
        let mut backoff = Duration::from_millis(50);
        let started = Instant::now();
        loop {
            match self.connect().await {
                Ok((conn, read_only)) => {
                    backoff = Duration::from_millis(50);
                    let _ = self.state.send(if read_only {
                        SessionState::ConnectedReadOnly
                    } else {
                        SessionState::Connected
                    });
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(Ok(()));
                    }
                    match self.serve(conn, read_only).await {
                        Ended::Lost => {
                            let _ = self.state.send(SessionState::Disconnected);
                        }
                        Ended::Final(state) => return self.finish(state, connected),
                    }
                }
                Err(Error::SessionExpired) => return self.finish(SessionState::Expired, connected),
                Err(Error::AuthFailed) => return self.finish(SessionState::AuthFailed, connected),
                Err(e) => {
                    debug!("connect failed: {e}");
                    if connected.is_some() && started.elapsed() > self.settings.connection_timeout {
                        if let Some(tx) = connected.take() {
                            let _ = tx.send(Err(Error::Timeout));
                        }
                        return self.finish(SessionState::Closed, None);
                    }
                    // Requests that arrive meanwhile fail: the caller decides.
                    while let Ok(cmd) = self.commands.try_recv() {
                        if !self.refuse(cmd, Error::ConnectionLoss) {
                            return self.finish(SessionState::Closed, connected);
                        }
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Answers a command without a server; false for Close.
    fn refuse(&mut self, cmd: Command, err: Error) -> bool {
        match cmd {
            Command::Call { reply, .. } => {
                let _ = reply.send(Err(err));
                true
            }
            Command::Unwatch {
                path,
                recursive,
                id,
            } => {
                self.watches.unwatch(&path, recursive, id);
                true
            }
            Command::Close { reply } => {
                let _ = reply.send(());
                false
            }
        }
    }

    fn finish(mut self, state: SessionState, connected: Option<Connected>) {
        let _ = self.state.send(state);
        let err = if state == SessionState::Closed {
            Error::Closed
        } else {
            Error::from_state(state)
        };
        if let Some(tx) = connected {
            let _ = tx.send(Err(err.clone()));
        }
        // Watchers see their channels close.
        self.watches = Watches::default();
        let state_tx = self.state.clone();
        tokio::spawn(async move {
            let _keep = state_tx;
            while let Some(cmd) = self.commands.recv().await {
                self.refuse(cmd, err.clone());
            }
        });
    }

    /// Connects to the next host and establishes the session there; true
    /// with the connection when the server is read-only.
    async fn connect(&mut self) -> Result<(Conn, bool)> {
        let _ = self.state.send_if_modified(|s| {
            if s.is_connected() {
                *s = SessionState::Disconnected;
                true
            } else {
                false
            }
        });
        self.current_host = self.next_host % self.hosts.len();
        self.next_host = self.current_host + 1;
        let host = self.hosts[self.current_host].clone();
        let per_host = self.settings.connection_timeout / self.hosts.len() as u32;
        let stream = tokio::time::timeout(per_host, TcpStream::connect(&host))
            .await
            .map_err(|_| Error::ConnectionLoss)?
            .map_err(|_| Error::ConnectionLoss)?;
        let _ = stream.set_nodelay(true);
        let mut conn = Framed::new(stream, FrameCodec::new(self.settings.max_frame_len));
        let (session_id, password) = if self.seen_read_write {
            (self.session_id, self.password.clone())
        } else {
            (0, vec![0; 16])
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: self.settings.session_timeout.as_millis() as i32,
            session_id,
            passwd: Bytes::from(password),
            read_only: Some(self.settings.read_only),
        };
        conn.send(&request)
            .await
            .map_err(|_| Error::ConnectionLoss)?;
        let mut payload = tokio::time::timeout(per_host, conn.next())
            .await
            .map_err(|_| Error::ConnectionLoss)?
            .ok_or(Error::ConnectionLoss)?
            .map_err(|_| Error::ConnectionLoss)?;
        let response =
            ConnectResponse::decode(&mut payload).map_err(|e| Error::Protocol(e.to_string()))?;
        if response.timeout_ms <= 0 {
            return Err(Error::SessionExpired);
        }
        if session_id != 0 && response.session_id != session_id {
            return Err(Error::SessionExpired);
        }
        let read_only = response.read_only == Some(true);
        if read_only && !self.settings.read_only {
            warn!(
                host,
                "a read-only server took a client that did not accept one"
            );
        }
        info!(
            host,
            session = format!("{:#x}", response.session_id),
            read_only,
            "connected"
        );
        self.session_id = response.session_id;
        self.password = response.passwd.to_vec();
        self.timeout_ms = response.timeout_ms;
        if !read_only {
            self.seen_read_write = true;
            // The next partition's search starts quick again.
            self.rw_search_delay = RW_SEARCH_FIRST_DELAY;
        }
        self.session.send_replace(SessionInfo {
            id: self.session_id,
            password: self.password.clone(),
            timeout_ms: self.timeout_ms,
        });

        // Credentials first, each answered before the next (xid -4).
        for (scheme, auth) in self.settings.auth.clone() {
            let packet = Request::new(
                xid::AUTH,
                RequestBody::Auth(AuthPacket {
                    auth_type: 0,
                    scheme,
                    auth: Some(auth),
                }),
            );
            conn.send(&packet)
                .await
                .map_err(|_| Error::ConnectionLoss)?;
            loop {
                let mut payload = conn
                    .next()
                    .await
                    .ok_or(Error::ConnectionLoss)?
                    .map_err(|_| Error::ConnectionLoss)?;
                match ServerMessage::decode(&mut payload, |_| None)
                    .map_err(|e| Error::Protocol(e.to_string()))?
                {
                    ServerMessage::Reply { header, .. } if header.xid == xid::AUTH => {
                        if header.err == ErrorCode::AuthFailed {
                            return Err(Error::AuthFailed);
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        Ok((conn, read_only))
    }

    /// The next round of the search for a read-write server: after the
    /// current wait, every other host is asked `isro` at once.
    fn rw_search(&mut self) -> RwSearch {
        let delay = self.rw_search_delay;
        self.rw_search_delay = (delay * 2).min(RW_SEARCH_MAX_DELAY);
        let others: Vec<(usize, String)> = self
            .hosts
            .iter()
            .cloned()
            .enumerate()
            .filter(|(i, _)| *i != self.current_host)
            .collect();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let mut probes: FuturesUnordered<_> = others
                .into_iter()
                .map(|(i, host)| async move { (i, is_read_write(&host).await) })
                .collect();
            while let Some((i, read_write)) = probes.next().await {
                if read_write {
                    return Some(i);
                }
            }
            None
        })
    }

    fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if self.next_xid == i32::MAX {
            1
        } else {
            self.next_xid + 1
        };
        x
    }

    /// Serves one connection until it drops or the session ends. On a
    /// read-only server (`read_only`), it also ends when another host
    /// answers that it takes writes: the next connect goes there.
    async fn serve(&mut self, mut conn: Conn, read_only: bool) -> Ended {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        if let Some(restore) = self.watches.restore(self.last_zxid) {
            let xid = self.take_xid();
            if conn
                .send(&Request::new(xid, RequestBody::SetWatches2(restore)))
                .await
                .is_err()
            {
                return Ended::Lost;
            }
            pending.push_back(Pending {
                xid,
                op: OpCode::SetWatches2,
                reply: None,
                watch: None,
                path: String::new(),
            });
        }
        let timeout = Duration::from_millis(self.timeout_ms.max(1) as u64);
        let ping_every = timeout / 3;
        let read_timeout = timeout * 2 / 3;
        let mut last_sent = Instant::now();
        let mut last_heard = Instant::now();
        let mut ticker = tokio::time::interval(
            ping_every
                .min(Duration::from_millis(500))
                .max(Duration::from_millis(10)),
        );
        let mut rw_search = (read_only && self.hosts.len() > 1).then(|| self.rw_search());
        let ended = loop {
            tokio::select! {
                found = next_rw_search(&mut rw_search) => match found {
                    Some(index) => {
                        info!(host = %self.hosts[index], "a read-write server answered; moving there");
                        self.next_host = index;
                        break Ended::Lost;
                    }
                    None => rw_search = Some(self.rw_search()),
                },
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { break Ended::Final(SessionState::Closed) };
                    match cmd {
                        Command::Call { body, watch, reply } => {
                            let path = request_path(&body);
                            let op = body.opcode();
                            // Auth goes with its fixed xid; its reply echoes it.
                            let xid = if op == OpCode::Auth { xid::AUTH } else { self.take_xid() };
                            // Requests already queued behind this one go out
                            // in the same write: flush only when none is left,
                            // after letting the callers that the last replies
                            // woke queue their next ones.
                            let mut sent = conn.feed(&Request::new(xid, body)).await;
                            if sent.is_ok() && self.commands.is_empty() {
                                tokio::task::yield_now().await;
                                if self.commands.is_empty() {
                                    sent = SinkExt::<&Request>::flush(&mut conn).await;
                                }
                            }
                            if sent.is_err() {
                                let _ = reply.send(Err(Error::ConnectionLoss));
                                break Ended::Lost;
                            }
                            last_sent = Instant::now();
                            pending.push_back(Pending { xid, op, reply: Some(reply), watch, path });
                        }
                        Command::Unwatch { path, recursive, id } => {
                            if self.watches.unwatch(&path, recursive, id) {
                                let xid = self.take_xid();
                                let watcher_type = if recursive { WatcherType::PersistentRecursive } else { WatcherType::Persistent };
                                let body = RequestBody::RemoveWatches(WatchesRequest { path: path.clone(), watcher_type });
                                if conn.send(&Request::new(xid, body)).await.is_err() {
                                    break Ended::Lost;
                                }
                                pending.push_back(Pending { xid, op: OpCode::RemoveWatches, reply: None, watch: None, path });
                            }
                        }
                        Command::Close { reply } => {
                            let xid = self.take_xid();
                            if conn.send(&Request::new(xid, RequestBody::CloseSession)).await.is_ok() {
                                // Wait (briefly) for the server to end the session.
                                let _ = tokio::time::timeout(timeout, async {
                                    while let Some(Ok(mut payload)) = conn.next().await {
                                        if let Ok(ServerMessage::Reply { header, .. }) = ServerMessage::decode(&mut payload, |_| Some(OpCode::CloseSession)) {
                                            if header.xid == xid { break; }
                                        }
                                    }
                                }).await;
                            }
                            for p in pending.drain(..) {
                                if let Some(r) = p.reply { let _ = r.send(Err(Error::Closed)); }
                            }
                            let _ = self.state.send(SessionState::Closed);
                            let _ = reply.send(());
                            break Ended::Final(SessionState::Closed);
                        }
                    }
                }
                frame = conn.next() => {
                    let Some(Ok(mut payload)) = frame else { break Ended::Lost };
                    last_heard = Instant::now();
                    let front_op = pending.front().map(|p| (p.xid, p.op));
                    let message = match ServerMessage::decode(&mut payload, |x| front_op.filter(|(px, _)| *px == x).map(|(_, op)| op)) {
                        Ok(m) => m,
                        Err(e) => {
                            debug!("undecodable frame: {e}");
                            break Ended::Lost;
                        }
                    };
                    match message {
                        ServerMessage::Notification { event, .. } => self.watches.deliver(&event, &self.settings.connect),
                        ServerMessage::Reply { header, body } => {
                            if header.zxid > 0 {
                                self.last_zxid = self.last_zxid.max(header.zxid);
                            }
                            let awaited_auth = pending.front().is_some_and(|p| p.op == OpCode::Auth);
                            if header.xid == xid::PING || (header.xid == xid::AUTH && !awaited_auth) {
                                continue;
                            }
                            let Some(p) = pending.pop_front() else { break Ended::Lost };
                            if p.xid != header.xid {
                                debug!(expected = p.xid, got = header.xid, "reply out of order");
                                break Ended::Lost;
                            }
                            if let Some(reg) = p.watch {
                                self.watches.register(reg, &p.path, header.err);
                            }
                            let result = match Error::from_code(header.err) {
                                None => Ok(body),
                                Some(e) => Err(e),
                            };
                            if let Some(reply) = p.reply {
                                let _ = reply.send(result);
                            }
                            if p.op == OpCode::CloseSession {
                                break Ended::Final(SessionState::Closed);
                            }
                        }
                    }
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() > read_timeout {
                        debug!("server silent for {:?}; reconnecting", last_heard.elapsed());
                        break Ended::Lost;
                    }
                    if last_sent.elapsed() >= ping_every {
                        if conn.send(&Request::ping()).await.is_err() {
                            break Ended::Lost;
                        }
                        last_sent = Instant::now();
                    }
                }
            }
        };
        for p in pending.drain(..) {
            if let Some(reply) = p.reply {
                let _ = reply.send(Err(Error::ConnectionLoss));
            }
        }
        ended
    }
}

/// The outcome of the search's current round; never, without a search.
async fn next_rw_search(search: &mut Option<RwSearch>) -> Option<usize> {
    match search {
        Some(round) => round.await,
        None => std::future::pending().await,
    }
}

/// Asks `host` with the four-letter word `isro` whether it takes writes:
/// "rw" yes; "ro" (read-only), "null" (not serving), a refusal or silence
/// no.
async fn is_read_write(host: &str) -> bool {
    let ask = async {
        let mut stream = TcpStream::connect(host).await.ok()?;
        stream.write_all(b"isro").await.ok()?;
        // Half-closed, as Java's client does: the server answers and closes.
        stream.shutdown().await.ok()?;
        let mut answer = Vec::new();
        stream
            .take(RW_PROBE_MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .ok()?;
        Some(answer)
    };
    matches!(
        tokio::time::timeout(RW_PROBE_TIMEOUT, ask).await,
        Ok(Some(answer)) if answer.trim_ascii() == b"rw"
    )
}

/// The server path a request acts on (where a watch would be registered).
fn request_path(body: &RequestBody) -> String {
    match body {
        RequestBody::Exists(r) => r.path.clone(),
        RequestBody::GetData(r) => r.path.clone(),
        RequestBody::GetChildren(r) | RequestBody::GetChildren2(r) => r.path.clone(),
        RequestBody::AddWatch(r) => r.path.clone(),
        RequestBody::RemoveWatches(r) => r.path.clone(),
        _ => String::new(),
    }
}

impl Error {
    fn from_state(state: SessionState) -> Error {
        match state {
            SessionState::AuthFailed => Error::AuthFailed,
            SessionState::Closed => Error::Closed,
            _ => Error::SessionExpired,
        }
    }
}
