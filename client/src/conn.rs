//! The connection task: one per client. It owns the socket, assigns xids,
//! matches replies in order, keeps the session alive with pings, delivers
//! watch events, and on a lost connection reconnects to the next server,
//! resumes the session, re-sends credentials and re-registers watches.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rand::seq::SliceRandom;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Framed;
use tracing::{debug, info};
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
}

pub(crate) type Reply = Result<Option<ResponseBody>>;

/// Told once the first session is established: id, password, timeout.
pub(crate) type Connected = oneshot::Sender<Result<(i64, Vec<u8>, i32)>>;

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
            _ => {}
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
}

pub(crate) struct Task {
    settings: Settings,
    commands: mpsc::Receiver<Command>,
    state: watch::Sender<SessionState>,
    session_id: i64,
    password: Vec<u8>,
    timeout_ms: i32,
    last_zxid: i64,
    next_xid: i32,
    watches: Watches,
    hosts: Vec<String>,
    next_host: usize,
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
    ) -> Task {
        let mut hosts = settings.connect.hosts.clone();
        hosts.shuffle(&mut rand::thread_rng());
        let (session_id, password) = settings.resume.clone().unwrap_or((0, vec![0; 16]));
        Task {
            settings,
            commands,
            state,
            session_id,
            password,
            timeout_ms: 0,
            last_zxid: 0,
            next_xid: 1,
            watches: Watches::default(),
            hosts,
            next_host: 0,
        }
    }

    /// Connects, then runs until the session ends or the client closes.
    pub(crate) async fn run(mut self, connected: Connected) {
        let mut connected = Some(connected);
        let mut backoff = Duration::from_millis(50);
        let started = Instant::now();
        loop {
            match self.connect().await {
                Ok(conn) => {
                    backoff = Duration::from_millis(50);
                    let _ = self.state.send(SessionState::Connected);
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(Ok((
                            self.session_id,
                            self.password.clone(),
                            self.timeout_ms,
                        )));
                    }
                    match self.serve(conn).await {
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

    async fn connect(&mut self) -> Result<Conn> {
        let _ = self.state.send_if_modified(|s| {
            if *s == SessionState::Connected {
                *s = SessionState::Disconnected;
                true
            } else {
                false
            }
        });
        let host = self.hosts[self.next_host % self.hosts.len()].clone();
        self.next_host += 1;
        let per_host = self.settings.connection_timeout / self.hosts.len() as u32;
        let stream = tokio::time::timeout(per_host, TcpStream::connect(&host))
            .await
            .map_err(|_| Error::ConnectionLoss)?
            .map_err(|_| Error::ConnectionLoss)?;
        let _ = stream.set_nodelay(true);
        let mut conn = Framed::new(stream, FrameCodec::new(self.settings.max_frame_len));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: self.settings.session_timeout.as_millis() as i32,
            session_id: self.session_id,
            passwd: Bytes::from(self.password.clone()),
            read_only: Some(false),
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
        if self.session_id != 0 && response.session_id != self.session_id {
            return Err(Error::SessionExpired);
        }
        info!(
            host,
            session = format!("{:#x}", response.session_id),
            "connected"
        );
        self.session_id = response.session_id;
        self.password = response.passwd.to_vec();
        self.timeout_ms = response.timeout_ms;

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
        Ok(conn)
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

    /// Serves one connection until it drops or the session ends.
    async fn serve(&mut self, mut conn: Conn) -> Ended {
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
        let ended = loop {
            tokio::select! {
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { break Ended::Final(SessionState::Closed) };
                    match cmd {
                        Command::Call { body, watch, reply } => {
                            let path = request_path(&body);
                            let op = body.opcode();
                            // Auth goes with its fixed xid; its reply echoes it.
                            let xid = if op == OpCode::Auth { xid::AUTH } else { self.take_xid() };
                            // Requests already queued behind this one go out
                            // in the same write: flush only when none is left.
                            let mut sent = conn.feed(&Request::new(xid, body)).await;
                            if sent.is_ok() && self.commands.is_empty() {
                                sent = SinkExt::<&Request>::flush(&mut conn).await;
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

/// The server path a request acts on (where a watch would be registered).
fn request_path(body: &RequestBody) -> String {
    match body {
        RequestBody::Exists(r) => r.path.clone(),
        RequestBody::GetData(r) => r.path.clone(),
        RequestBody::GetChildren(r) | RequestBody::GetChildren2(r) => r.path.clone(),
        RequestBody::AddWatch(r) => r.path.clone(),
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
