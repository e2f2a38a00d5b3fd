//! `Client`: a cloneable handle on one session, with one async method per
//! operation. Requests go on the wire in the order they are made.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use zoo_wire::*;

use crate::conn::{Command, Settings, Task, WatchReg, PERSISTENT_QUEUE};
use crate::connect_string::ConnectString;
use crate::error::{Error, Result};
use crate::watcher::{OneshotWatcher, PersistentWatcher, SessionState, Unwatch};

/// Requests queued for the connection task before callers wait.
const COMMAND_QUEUE: usize = 1024;

/// Options for `Client::builder`.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect: String,
    session_timeout: Duration,
    connection_timeout: Duration,
    auth: Vec<(String, Bytes)>,
    resume: Option<(i64, Vec<u8>)>,
    max_frame_len: usize,
}

impl ClientBuilder {
    /// Requested session timeout; the server clamps it (default 30 s).
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }

    /// How long `connect` keeps trying before `Error::Timeout` (default 15 s).
    pub fn connection_timeout(mut self, t: Duration) -> Self {
        self.connection_timeout = t;
        self
    }

    /// A credential sent on every connection, e.g. `("digest", "user:pw")`.
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> Self {
        self.auth
            .push((scheme.to_string(), Bytes::copy_from_slice(auth)));
        self
    }

    /// Resumes an existing session instead of creating one.
    pub fn resume(mut self, session_id: i64, password: &[u8]) -> Self {
        self.resume = Some((session_id, password.to_vec()));
        self
    }

    /// Connects and waits for the session.
    pub async fn connect(self) -> Result<Client> {
        let connect = ConnectString::parse(&self.connect)?;
        let settings = Settings {
            connect: connect.clone(),
            session_timeout: self.session_timeout,
            connection_timeout: self.connection_timeout,
            auth: self.auth,
            resume: self.resume,
            max_frame_len: self.max_frame_len,
        };
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (state_tx, state_rx) = watch::channel(SessionState::Connecting);
        let (connected_tx, connected_rx) = oneshot::channel();
        tokio::spawn(Task::new(settings, rx, state_tx).run(connected_tx));
        let (session_id, password, timeout_ms) =
            connected_rx.await.map_err(|_| Error::Closed)??;
        Ok(Client {
            inner: Arc::new(Inner {
                commands: tx,
                state: state_rx,
                connect,
                session_id,
                password,
                timeout_ms,
                next_watch_id: AtomicU64::new(1),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<SessionState>,
    connect: ConnectString,
    session_id: i64,
    password: Vec<u8>,
    timeout_ms: i32,
    next_watch_id: AtomicU64,
}

/// A handle on one session. Clones share it.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// How to create a node.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub mode: CreateMode,
    pub acl: Vec<Acl>,
    /// For the TTL modes, in ms.
    pub ttl_ms: Option<i64>,
}

impl CreateOptions {
    /// A mode with `OPEN_ACL_UNSAFE`.
    pub fn new(mode: CreateMode) -> CreateOptions {
        CreateOptions {
            mode,
            acl: Acl::open_unsafe(),
            ttl_ms: None,
        }
    }

    pub fn acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = acl;
        self
    }

    pub fn ttl(mut self, ttl_ms: i64) -> Self {
        self.ttl_ms = Some(ttl_ms);
        self
    }
}

/// One operation of a multi, with client paths.
#[derive(Debug, Clone)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        options: CreateOptions,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: Option<i32>,
    },
    Check {
        path: String,
        version: i32,
    },
}

/// One read of a `multi_read`.
#[derive(Debug, Clone)]
pub enum Read {
    Data(String),
    Children(String),
}

/// The outcome of one read of a `multi_read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(Vec<u8>, Stat),
    /// Sorted names.
    Children(Vec<String>),
}

/// The outcome of one operation of a successful multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    Created(String),
    Deleted,
    DataSet(Stat),
    Checked,
}

fn version(v: Option<i32>) -> i32 {
    v.unwrap_or(-1)
}

fn unexpected(body: Option<ResponseBody>) -> Error {
    Error::Protocol(format!("unexpected reply body {body:?}"))
}

impl Client {
    /// Connects to `h1:2181,h2:2181/chroot` with default options.
    pub async fn connect(connect: &str) -> Result<Client> {
        Client::builder(connect).connect().await
    }

    pub fn builder(connect: &str) -> ClientBuilder {
        ClientBuilder {
            connect: connect.to_string(),
            session_timeout: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(15),
            auth: Vec::new(),
            resume: None,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    pub fn session_id(&self) -> i64 {
        self.inner.session_id
    }

    /// The session's password, to resume it from another client.
    pub fn session_password(&self) -> &[u8] {
        &self.inner.password
    }

    /// The negotiated session timeout.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.timeout_ms.max(0) as u64)
    }

    /// The session state now; `state_changes` to follow it.
    pub fn state(&self) -> SessionState {
        *self.inner.state.borrow()
    }

    /// A stream of session states (`changed().await`, then `borrow()`).
    pub fn state_changes(&self) -> watch::Receiver<SessionState> {
        self.inner.state.clone()
    }

    fn server_path(&self, path: &str) -> Result<String> {
        validate_path(path)?;
        Ok(self.inner.connect.server_path(path))
    }

    fn client_path(&self, path: &str) -> String {
        self.inner.connect.client_path(path)
    }

    async fn call(
        &self,
        body: RequestBody,
        watch: Option<WatchReg>,
    ) -> Result<Option<ResponseBody>> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Call { body, watch, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Creates a node; returns its actual path (with any sequence suffix)
    /// and its Stat.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        options: CreateOptions,
    ) -> Result<(String, Stat)> {
        let request = self.create_request(path, data, &options)?;
        let body = match (options.mode.is_container(), options.mode.is_ttl()) {
            (true, _) => RequestBody::CreateContainer(request),
            (_, true) => RequestBody::CreateTtl(CreateTtlRequest {
                path: request.path,
                data: request.data,
                acl: request.acl,
                flags: request.flags,
                ttl: options.ttl_ms.ok_or(Error::BadArguments)?,
            }),
            _ => RequestBody::Create2(request),
        };
        match self.call(body, None).await? {
            Some(ResponseBody::Create2(r)) => Ok((self.client_path(&r.path), r.stat)),
            other => Err(unexpected(other)),
        }
    }

    fn create_request(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> Result<CreateRequest> {
        if options.mode.is_sequential() {
            validate_sequential_path(path)?;
        } else {
            validate_path(path)?;
        }
        if options.acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let server = if path == "/" {
            self.inner.connect.server_path("/")
        } else {
            self.inner.connect.server_path(path)
        };
        Ok(CreateRequest {
            path: server,
            data: Some(Bytes::copy_from_slice(data)),
            acl: Some(options.acl.clone()),
            flags: options.mode.as_i32(),
        })
    }

    /// Deletes a node; `version` `None` matches any.
    pub async fn delete(&self, path: &str, version_expected: Option<i32>) -> Result<()> {
        let path = self.server_path(path)?;
        self.call(
            RequestBody::Delete(DeleteRequest {
                path,
                version: version(version_expected),
            }),
            None,
        )
        .await?;
        Ok(())
    }

    /// The node's Stat, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        let path = self.server_path(path)?;
        match self
            .call(
                RequestBody::Exists(ExistsRequest { path, watch: false }),
                None,
            )
            .await
        {
            Ok(Some(ResponseBody::Exists(r))) => Ok(Some(r.stat)),
            Err(Error::NoNode) => Ok(None),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(e),
        }
    }

    /// `exists`, and a watcher for the node's creation, change or deletion.
    pub async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatcher)> {
        let path = self.server_path(path)?;
        let (tx, rx) = oneshot::channel();
        let result = self
            .call(
                RequestBody::Exists(ExistsRequest { path, watch: true }),
                Some(WatchReg::Exists(tx)),
            )
            .await;
        let stat = match result {
            Ok(Some(ResponseBody::Exists(r))) => Some(r.stat),
            Err(Error::NoNode) => None,
            Ok(other) => return Err(unexpected(other)),
            Err(e) => return Err(e),
        };
        Ok((stat, OneshotWatcher { rx }))
    }

    /// The node's data (a null buffer reads as empty) and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        let path = self.server_path(path)?;
        match self
            .call(
                RequestBody::GetData(GetDataRequest { path, watch: false }),
                None,
            )
            .await?
        {
            Some(ResponseBody::GetData(r)) => {
                Ok((r.data.map(|d| d.to_vec()).unwrap_or_default(), r.stat))
            }
            other => Err(unexpected(other)),
        }
    }

    /// `get_data`, and a watcher for the next change or deletion.
    pub async fn get_data_and_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, OneshotWatcher)> {
        let path = self.server_path(path)?;
        let (tx, rx) = oneshot::channel();
        match self
            .call(
                RequestBody::GetData(GetDataRequest { path, watch: true }),
                Some(WatchReg::Data(tx)),
            )
            .await?
        {
            Some(ResponseBody::GetData(r)) => Ok((
                r.data.map(|d| d.to_vec()).unwrap_or_default(),
                r.stat,
                OneshotWatcher { rx },
            )),
            other => Err(unexpected(other)),
        }
    }

    /// Sets the data; `version` `None` matches any. Returns the new Stat.
    pub async fn set_data(
        &self,
        path: &str,
        data: &[u8],
        version_expected: Option<i32>,
    ) -> Result<Stat> {
        let path = self.server_path(path)?;
        let body = RequestBody::SetData(SetDataRequest {
            path,
            data: Some(Bytes::copy_from_slice(data)),
            version: version(version_expected),
        });
        match self.call(body, None).await? {
            Some(ResponseBody::SetData(r)) => Ok(r.stat),
            other => Err(unexpected(other)),
        }
    }

    /// The children's names, sorted.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        Ok(self.get_children2(path).await?.0)
    }

    /// The children's names (sorted) and the node's Stat.
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        let path = self.server_path(path)?;
        match self
            .call(
                RequestBody::GetChildren2(GetChildrenRequest { path, watch: false }),
                None,
            )
            .await?
        {
            Some(ResponseBody::GetChildren2(mut r)) => {
                r.children.sort();
                Ok((r.children, r.stat))
            }
            other => Err(unexpected(other)),
        }
    }

    /// `get_children`, and a watcher for the next change to the children
    /// (or the node's deletion).
    pub async fn get_children_and_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, OneshotWatcher)> {
        let path = self.server_path(path)?;
        let (tx, rx) = oneshot::channel();
        let body = RequestBody::GetChildren(GetChildrenRequest { path, watch: true });
        match self.call(body, Some(WatchReg::Child(tx))).await? {
            Some(ResponseBody::GetChildren(mut r)) => {
                r.children.sort();
                Ok((r.children, OneshotWatcher { rx }))
            }
            other => Err(unexpected(other)),
        }
    }

    /// How many nodes are below `path`.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        let path = self.server_path(path)?;
        match self
            .call(
                RequestBody::GetAllChildrenNumber(GetAllChildrenNumberRequest { path }),
                None,
            )
            .await?
        {
            Some(ResponseBody::GetAllChildrenNumber(r)) => Ok(r.total_number),
            other => Err(unexpected(other)),
        }
    }

    /// This session's ephemeral nodes whose path starts with `prefix`.
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix_path = Some(self.inner.connect.server_path(prefix));
        match self
            .call(
                RequestBody::GetEphemerals(GetEphemeralsRequest { prefix_path }),
                None,
            )
            .await?
        {
            Some(ResponseBody::GetEphemerals(r)) => {
                Ok(r.ephemerals.iter().map(|p| self.client_path(p)).collect())
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let path = self.server_path(path)?;
        match self
            .call(RequestBody::GetAcl(GetAclRequest { path }), None)
            .await?
        {
            Some(ResponseBody::GetAcl(r)) => Ok((r.acl, r.stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces the ACL; `version` is the expected aversion.
    pub async fn set_acl(
        &self,
        path: &str,
        acl: Vec<Acl>,
        version_expected: Option<i32>,
    ) -> Result<Stat> {
        let path = self.server_path(path)?;
        if acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let body = RequestBody::SetAcl(SetAclRequest {
            path,
            acl: Some(acl),
            version: version(version_expected),
        });
        match self.call(body, None).await? {
            Some(ResponseBody::SetAcl(r)) => Ok(r.stat),
            other => Err(unexpected(other)),
        }
    }

    /// Waits until the server this client is on has every write that was
    /// committed when the sync began.
    pub async fn sync(&self, path: &str) -> Result<()> {
        let path = self.server_path(path)?;
        self.call(RequestBody::Sync(SyncRequest { path }), None)
            .await?;
        Ok(())
    }

    /// Adds a credential to this connection (not re-sent after a reconnect;
    /// use the builder's `auth` for that).
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let body = RequestBody::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.to_string(),
            auth: Some(Bytes::copy_from_slice(auth)),
        });
        self.call(body, None).await?;
        Ok(())
    }

    /// The identities this connection holds.
    pub async fn whoami(&self) -> Result<Vec<ClientInfo>> {
        match self.call(RequestBody::WhoAmI, None).await? {
            Some(ResponseBody::WhoAmI(r)) => Ok(r.client_info),
            other => Err(unexpected(other)),
        }
    }

    /// Runs the operations atomically. On failure, the error of the first
    /// failed operation, with its index.
    pub async fn multi(&self, ops: Vec<Op>) -> std::result::Result<Vec<OpOutcome>, (usize, Error)> {
        let mut wire_ops = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            let built = match op {
                Op::Create {
                    path,
                    data,
                    options,
                } => self
                    .create_request(&path, &data, &options)
                    .map(MultiOp::Create),
                Op::Delete { path, version: v } => self.server_path(&path).map(|path| {
                    MultiOp::Delete(DeleteRequest {
                        path,
                        version: version(v),
                    })
                }),
                Op::SetData {
                    path,
                    data,
                    version: v,
                } => self.server_path(&path).map(|path| {
                    MultiOp::SetData(SetDataRequest {
                        path,
                        data: Some(Bytes::from(data)),
                        version: version(v),
                    })
                }),
                Op::Check { path, version } => self
                    .server_path(&path)
                    .map(|path| MultiOp::Check(CheckVersionRequest { path, version })),
            };
            wire_ops.push(built.map_err(|e| (i, e))?);
        }
        let reply = self
            .call(RequestBody::Multi(MultiRequest { ops: wire_ops }), None)
            .await;
        let results = match reply {
            Ok(Some(ResponseBody::Multi(r))) => r.results,
            Ok(other) => return Err((0, unexpected(other))),
            Err(e) => return Err((0, e)),
        };
        if let Some((i, code)) = results.iter().enumerate().find_map(|(i, r)| match r {
            OpResult::Error(code) if !code.is_ok() && *code != ErrorCode::RuntimeInconsistency => {
                Some((i, *code))
            }
            _ => None,
        }) {
            return Err((i, Error::from_code(code).unwrap_or(Error::Server(code))));
        }
        Ok(results
            .into_iter()
            .map(|r| match r {
                OpResult::Create(c) => OpOutcome::Created(self.client_path(&c.path)),
                OpResult::Create2(c) => OpOutcome::Created(self.client_path(&c.path)),
                OpResult::Delete => OpOutcome::Deleted,
                OpResult::SetData(s) => OpOutcome::DataSet(s.stat),
                _ => OpOutcome::Checked,
            })
            .collect())
    }

    /// Reads several nodes in one round trip: each entry is that read's
    /// own result (not atomic; later reads run even when one fails).
    pub async fn multi_read(&self, reads: Vec<Read>) -> Result<Vec<Result<ReadOutcome>>> {
        let mut ops = Vec::with_capacity(reads.len());
        for read in &reads {
            ops.push(match read {
                Read::Data(p) => MultiOp::GetData(GetDataRequest {
                    path: self.server_path(p)?,
                    watch: false,
                }),
                Read::Children(p) => MultiOp::GetChildren(GetChildrenRequest {
                    path: self.server_path(p)?,
                    watch: false,
                }),
            });
        }
        let results = match self
            .call(RequestBody::MultiRead(MultiRequest { ops }), None)
            .await?
        {
            Some(ResponseBody::Multi(r)) => r.results,
            other => return Err(unexpected(other)),
        };
        Ok(results
            .into_iter()
            .map(|r| match r {
                OpResult::GetData(d) => Ok(ReadOutcome::Data(
                    d.data.map(|b| b.to_vec()).unwrap_or_default(),
                    d.stat,
                )),
                OpResult::GetChildren(mut c) => {
                    c.children.sort();
                    Ok(ReadOutcome::Children(c.children))
                }
                OpResult::Error(code) => Err(Error::from_code(code).unwrap_or(Error::Server(code))),
                other => Err(Error::Protocol(format!(
                    "unexpected multiRead result {other:?}"
                ))),
            })
            .collect())
    }

    /// A persistent watch on `path` (and, if `recursive`, every node below
    /// it). Dropping the watcher removes the watch.
    pub async fn watch(&self, path: &str, recursive: bool) -> Result<PersistentWatcher> {
        let server_path = self.server_path(path)?;
        let (tx, rx) = mpsc::channel(PERSISTENT_QUEUE);
        let id = self.inner.next_watch_id.fetch_add(1, Ordering::Relaxed);
        let mode = if recursive {
            AddWatchMode::PersistentRecursive
        } else {
            AddWatchMode::Persistent
        };
        let body = RequestBody::AddWatch(AddWatchRequest {
            path: server_path.clone(),
            mode,
        });
        self.call(body, Some(WatchReg::Persistent { recursive, id, tx }))
            .await?;
        let commands = self.inner.commands.clone();
        Ok(PersistentWatcher {
            rx,
            unwatch: Some(Unwatch(Box::new(move || {
                let _ = commands.try_send(Command::Unwatch {
                    path: server_path,
                    recursive,
                    id,
                });
            }))),
        })
    }

    /// Ends the session: its ephemerals are deleted and its watches end.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Close { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}
