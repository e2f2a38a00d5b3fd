//! `Client`: a cloneable handle on one session, with one async method per
//! operation. Requests go on the wire in the order they are made.
//!
//! Paths are client paths: with a chroot in the connect string they are
//! relative to it, and the paths the client returns are too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use zoo_wire::*;

use crate::conn::{Command, SessionInfo, Settings, Task, WatchReg, PERSISTENT_QUEUE};
use crate::connect_string::ConnectString;
use crate::error::{Error, Result};
use crate::watcher::{OneshotWatcher, PersistentWatcher, SessionState, Unwatch};

/// Requests queued for the connection task before callers wait.
const COMMAND_QUEUE: usize = 1024;

/// Options for a connection, from `Client::builder`; `connect` makes the
/// client.
///
/// ```no_run
/// # async fn demo() -> zoo_client::Result<()> {
/// use std::time::Duration;
/// use zoo_client::Client;
///
/// let client = Client::builder("zk1:2181,zk2:2181,zk3:2181/app")
///     .session_timeout(Duration::from_secs(10))
///     .auth("digest", b"user:secret")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect: String,
    session_timeout: Duration,
    connection_timeout: Duration,
    auth: Vec<(String, Bytes)>,
    resume: Option<(i64, Vec<u8>)>,
    max_frame_len: usize,
    read_only: bool,
}

impl ClientBuilder {
    /// Requested session timeout; the server clamps it to its
    /// `minSessionTimeout`..`maxSessionTimeout` (default 30 s).
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }

    /// How long `connect` keeps trying the servers before
    /// `Error::Timeout` (default 15 s). Each attempt at one server may take
    /// this divided by the number of servers.
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

    /// Resumes an existing session instead of creating one (the id and
    /// password of another client's session: `Client::session_id`,
    /// `Client::session_password`). `connect` fails with
    /// `Error::SessionExpired` if it is gone.
    pub fn resume(mut self, session_id: i64, password: &[u8]) -> Self {
        self.resume = Some((session_id, password.to_vec()));
        self
    }

    /// Accepts a read-only server: ZooKeeper's `canBeReadOnly` (default
    /// false). A server with `readonlymode.enabled` that is cut off from
    /// its quorum still serves reads, to clients that accept it; others it
    /// turns away. On such a server the state is
    /// `SessionState::ConnectedReadOnly`, reads work (and may be stale),
    /// and writes fail with `Error::NotReadOnly`. Meanwhile the client asks
    /// the connect string's other hosts (`isro`, every few seconds) whether
    /// they take writes, and moves to the first that does, with a new
    /// session, as Java's client does.
    ///
    /// ```no_run
    /// # async fn demo() -> zoo_client::Result<()> {
    /// use zoo_client::{Client, SessionState};
    ///
    /// let client = Client::builder("zk1:2181,zk2:2181,zk3:2181")
    ///     .read_only(true)
    ///     .connect()
    ///     .await?;
    /// let (config, _stat) = client.get_data("/config").await?;
    /// if client.state() == SessionState::ConnectedReadOnly {
    ///     // `config` may be stale, and writes fail with Error::NotReadOnly.
    /// }
    /// # Ok(()) }
    /// ```
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// Connects and waits for the session. Fails with `Error::Timeout`
    /// when no server gives one within the connection timeout,
    /// `Error::BadArguments` or `Error::InvalidPath` for a bad connect
    /// string, `Error::AuthFailed` when a credential is refused, and
    /// `Error::SessionExpired` when the session to resume is gone.
    pub async fn connect(self) -> Result<Client> {
        let connect = ConnectString::parse(&self.connect)?;
        let settings = Settings {
            connect: connect.clone(),
            session_timeout: self.session_timeout,
            connection_timeout: self.connection_timeout,
            auth: self.auth,
            resume: self.resume,
            max_frame_len: self.max_frame_len,
            read_only: self.read_only,
        };
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (state_tx, state_rx) = watch::channel(SessionState::Connecting);
        let (session_tx, session_rx) = watch::channel(SessionInfo::default());
        let (connected_tx, connected_rx) = oneshot::channel();
        tokio::spawn(Task::new(settings, rx, state_tx, session_tx).run(connected_tx));
        connected_rx.await.map_err(|_| Error::Closed)??;
        Ok(Client {
            inner: Arc::new(Inner {
                commands: tx,
                state: state_rx,
                session: session_rx,
                connect,
                next_watch_id: AtomicU64::new(1),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<SessionState>,
    session: watch::Receiver<SessionInfo>,
    connect: ConnectString,
    next_watch_id: AtomicU64,
}

/// A handle on one session. Clones share it.
///
/// Requests go on the wire, and are answered, in the order they are made
/// (ZooKeeper's FIFO client order), from one clone or several. When the
/// connection drops, the client reconnects to the next server, resumes the
/// session and re-registers its watches; requests in flight fail with
/// `Error::ConnectionLoss`, which means they may or may not have happened.
///
/// ```no_run
/// # async fn demo() -> zoo_client::Result<()> {
/// use zoo_client::{Client, CreateOptions};
/// use zoo_wire::CreateMode;
///
/// let client = Client::connect("127.0.0.1:2181").await?;
/// client.create("/app", b"", CreateOptions::new(CreateMode::Persistent)).await?;
/// let children = client.get_children("/").await?;
/// assert!(children.contains(&"app".to_string()));
/// client.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// How to create a node: its mode, its ACL, and for the TTL modes its
/// time to live.
///
/// ```
/// use zoo_client::CreateOptions;
/// use zoo_wire::{Acl, CreateMode};
///
/// let ephemeral = CreateOptions::new(CreateMode::Ephemeral);
/// let readable = CreateOptions::new(CreateMode::Persistent).acl(Acl::read_unsafe());
/// let expiring = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(60_000);
/// # let _ = (ephemeral, readable, expiring);
/// ```
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Persistent, ephemeral, sequential, container or TTL.
    pub mode: CreateMode,
    /// Who may do what with the node; must not be empty.
    pub acl: Vec<Acl>,
    /// For the TTL modes (required there), in ms: the node is deleted once
    /// it has had no children and no change for this long.
    pub ttl_ms: Option<i64>,
}

impl CreateOptions {
    /// A mode with `OPEN_ACL_UNSAFE` (everything for everyone).
    pub fn new(mode: CreateMode) -> CreateOptions {
        CreateOptions {
            mode,
            acl: Acl::open_unsafe(),
            ttl_ms: None,
        }
    }

    /// Replaces the ACL.
    pub fn acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = acl;
        self
    }

    /// Sets the time to live, in ms, for the TTL modes.
    pub fn ttl(mut self, ttl_ms: i64) -> Self {
        self.ttl_ms = Some(ttl_ms);
        self
    }
}

/// One operation of a `multi`, with client paths. A `version` of `None`
/// matches any version.
#[derive(Debug, Clone)]
pub enum Op {
    /// Creates a node, as `Client::create`.
    Create {
        /// The node's path (a prefix, for the sequential modes).
        path: String,
        /// Its data.
        data: Vec<u8>,
        /// Its mode and ACL.
        options: CreateOptions,
    },
    /// Deletes a node, as `Client::delete`.
    Delete {
        /// The node's path.
        path: String,
        /// The data version it must have.
        version: Option<i32>,
    },
    /// Sets a node's data, as `Client::set_data`.
    SetData {
        /// The node's path.
        path: String,
        /// The new data.
        data: Vec<u8>,
        /// The data version it must have.
        version: Option<i32>,
    },
    /// Fails the multi unless the node has this data version.
    Check {
        /// The node's path.
        path: String,
        /// The data version it must have.
        version: i32,
    },
}

/// One read of a `multi_read`, by client path.
#[derive(Debug, Clone)]
pub enum Read {
    /// The node's data and Stat, as `Client::get_data`.
    Data(String),
    /// The node's children, as `Client::get_children`.
    Children(String),
}

/// The outcome of one read of a `multi_read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The node's data (a null buffer reads as empty) and Stat.
    Data(Vec<u8>, Stat),
    /// The children's names, sorted.
    Children(Vec<String>),
}

/// The outcome of one operation of a successful multi, in the order of
/// the operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// `Op::Create`: the node's actual path (with any sequence suffix).
    Created(String),
    /// `Op::Delete`.
    Deleted,
    /// `Op::SetData`: the node's new Stat.
    DataSet(Stat),
    /// `Op::Check`.
    Checked,
}

fn version(v: Option<i32>) -> i32 {
    v.unwrap_or(-1)
}

fn unexpected(body: Option<ResponseBody>) -> Error {
    Error::Protocol(format!("unexpected reply body {body:?}"))
}

impl Client {
    /// Connects to `h1:2181,h2:2181/chroot` with default options, and
    /// waits for the session (see `ClientBuilder::connect` for the errors).
    ///
    /// ```no_run
    /// # async fn demo() -> zoo_client::Result<()> {
    /// let client = zoo_client::Client::connect("zk1:2181,zk2:2181/app").await?;
    /// println!("session {:#x}", client.session_id());
    /// # Ok(()) }
    /// ```
    pub async fn connect(connect: &str) -> Result<Client> {
        Client::builder(connect).connect().await
    }

    /// Options for a connection to `connect` (`h1:2181,h2:2181/chroot`):
    /// a session timeout of 30 s, a connection timeout of 15 s, no
    /// credentials, a new session, no read-only servers.
    pub fn builder(connect: &str) -> ClientBuilder {
        ClientBuilder {
            connect: connect.to_string(),
            session_timeout: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(15),
            auth: Vec::new(),
            resume: None,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            read_only: false,
        }
    }

    /// The session's id (ZooKeeper prints it in hex, `{:#x}`). It stays
    /// the same for the client's life, except that a session from a
    /// read-only server is replaced by a read-write server's (see
    /// `SessionState::ConnectedReadOnly`).
    pub fn session_id(&self) -> i64 {
        self.inner.session.borrow().id
    }

    /// The session's password, to resume it from another client
    /// (`ClientBuilder::resume`).
    pub fn session_password(&self) -> Vec<u8> {
        self.inner.session.borrow().password.clone()
    }

    /// The session timeout the server granted.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.session.borrow().timeout_ms.max(0) as u64)
    }

    /// The session's state now; `state_changes` to follow it.
    pub fn state(&self) -> SessionState {
        *self.inner.state.borrow()
    }

    /// The session's states as they change (`changed().await`, then
    /// `borrow_and_update()`). It holds the latest state only: a quick
    /// disconnect and reconnect may show as one change.
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
    ///
    /// Fails with `Error::NodeExists`, `Error::NoNode` (no parent),
    /// `Error::NoChildrenForEphemerals`, `Error::NoAuth`,
    /// `Error::InvalidAcl`, or `Error::BadArguments` (a TTL mode without a
    /// TTL).
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// use zoo_client::CreateOptions;
    /// use zoo_wire::CreateMode;
    ///
    /// let options = CreateOptions::new(CreateMode::EphemeralSequential);
    /// let (path, _stat) = client.create("/app/workers/w-", b"host-1", options).await?;
    /// assert!(path.starts_with("/app/workers/w-")); // e.g. w-0000000007
    /// # Ok(()) }
    /// ```
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        options: CreateOptions,
    ) -> Result<(String, Stat)> {
        let request = self.create_request(path, data, &options)?;
        self.send_create(request, options).await
    }

    /// `create` with a null buffer for data, as Java's `create(path, null,
    /// ...)` sends: the node then reads back as null (`get_data_nullable`),
    /// which is not the same as empty data.
    pub async fn create_null(&self, path: &str, options: CreateOptions) -> Result<(String, Stat)> {
        let mut request = self.create_request(path, b"", &options)?;
        request.data = None;
        self.send_create(request, options).await
    }

    async fn send_create(
        &self,
        request: CreateRequest,
        options: CreateOptions,
    ) -> Result<(String, Stat)> {
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

    /// Deletes a node; `version_expected` `None` matches any version.
    /// Fails with `Error::NoNode`, `Error::BadVersion`, `Error::NotEmpty`
    /// or `Error::NoAuth`.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// let (_data, stat) = client.get_data("/app/job").await?;
    /// client.delete("/app/job", Some(stat.version)).await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// if let Some(stat) = client.exists("/app").await? {
    ///     println!("/app has {} children", stat.num_children);
    /// }
    /// # Ok(()) }
    /// ```
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

    /// `exists`, and a watcher for the node's creation, change or deletion
    /// (set whether or not the node exists).
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

    /// The node's data (a null buffer reads as empty) and Stat. Fails with
    /// `Error::NoNode` or `Error::NoAuth`.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// let (data, stat) = client.get_data("/app/config").await?;
    /// println!("version {}: {}", stat.version, String::from_utf8_lossy(&data));
    /// # Ok(()) }
    /// ```
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

    /// `get_data`, and a watcher for the node's next change or deletion.
    /// The watch is set only when the read succeeds.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// loop {
    ///     let (config, _stat, watcher) = client.get_data_and_watch("/app/config").await?;
    ///     println!("config: {}", String::from_utf8_lossy(&config));
    ///     watcher.changed().await?; // then read it again
    /// }
    /// # }
    /// ```
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

    /// `get_data`, telling a null buffer (`None`) from empty data.
    pub async fn get_data_nullable(&self, path: &str) -> Result<(Option<Vec<u8>>, Stat)> {
        let path = self.server_path(path)?;
        let body = RequestBody::GetData(GetDataRequest { path, watch: false });
        match self.call(body, None).await? {
            Some(ResponseBody::GetData(r)) => Ok((r.data.map(|d| d.to_vec()), r.stat)),
            other => Err(unexpected(other)),
        }
    }

    /// `get_data_and_watch`, telling a null buffer (`None`) from empty data.
    pub async fn get_data_nullable_and_watch(
        &self,
        path: &str,
    ) -> Result<(Option<Vec<u8>>, Stat, OneshotWatcher)> {
        let path = self.server_path(path)?;
        let (tx, rx) = oneshot::channel();
        let body = RequestBody::GetData(GetDataRequest { path, watch: true });
        match self.call(body, Some(WatchReg::Data(tx))).await? {
            Some(ResponseBody::GetData(r)) => {
                Ok((r.data.map(|d| d.to_vec()), r.stat, OneshotWatcher { rx }))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Sets the data; `version_expected` `None` matches any version.
    /// Returns the new Stat. Fails with `Error::NoNode`,
    /// `Error::BadVersion` or `Error::NoAuth`.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// use zoo_client::Error;
    ///
    /// // Compare-and-set: increment a counter unless someone else did first.
    /// let (data, stat) = client.get_data("/app/counter").await?;
    /// let next: u64 = String::from_utf8_lossy(&data).parse().unwrap_or(0) + 1;
    /// match client.set_data("/app/counter", next.to_string().as_bytes(), Some(stat.version)).await {
    ///     Ok(_) => {}
    ///     Err(Error::BadVersion) => { /* lost the race: read again */ }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
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

    /// The children's names (not paths), sorted. Fails with
    /// `Error::NoNode` or `Error::NoAuth`.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// for name in client.get_children("/app/workers").await? {
    ///     println!("/app/workers/{name}");
    /// }
    /// # Ok(()) }
    /// ```
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
    /// (or the node's deletion). The watch is set only when the read
    /// succeeds.
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

    /// The node's ACL and Stat (its `aversion` is the ACL's version).
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

    /// Replaces the ACL; `version_expected` is the expected `aversion`
    /// (`None` matches any). Returns the new Stat. Fails with
    /// `Error::NoNode`, `Error::BadVersion`, `Error::NoAuth` (it needs the
    /// ADMIN permission) or `Error::InvalidAcl`.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// use zoo_wire::Acl;
    ///
    /// // Everyone may read; only this session's identities may do the rest.
    /// let mut acl = Acl::read_unsafe();
    /// acl.extend(Acl::creator_all());
    /// client.set_acl("/app/secret", acl, None).await?;
    /// # Ok(()) }
    /// ```
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
    /// committed when the sync began: a read after it sees them.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// client.sync("/app").await?;
    /// let (latest, _stat) = client.get_data("/app").await?;
    /// # let _ = latest;
    /// # Ok(()) }
    /// ```
    pub async fn sync(&self, path: &str) -> Result<()> {
        let path = self.server_path(path)?;
        self.call(RequestBody::Sync(SyncRequest { path }), None)
            .await?;
        Ok(())
    }

    /// Adds a credential to this connection, e.g. `("digest",
    /// b"user:secret")`. It is not re-sent after a reconnect: use
    /// `ClientBuilder::auth` for that. Fails with `Error::AuthFailed`.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let body = RequestBody::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.to_string(),
            auth: Some(Bytes::copy_from_slice(auth)),
        });
        self.call(body, None).await?;
        Ok(())
    }

    /// The identities this connection holds (`whoAmI`), e.g. `ip` and
    /// any `digest` added.
    pub async fn whoami(&self) -> Result<Vec<ClientInfo>> {
        match self.call(RequestBody::WhoAmI, None).await? {
            Some(ResponseBody::WhoAmI(r)) => Ok(r.client_info),
            other => Err(unexpected(other)),
        }
    }

    /// Runs the operations atomically: all of them or none. Returns each
    /// one's outcome, in order. On failure, the error of the first failed
    /// operation, with its index (index 0 for an error of the whole
    /// request, such as `Error::ConnectionLoss`).
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// use zoo_client::{CreateOptions, Op};
    /// use zoo_wire::CreateMode;
    ///
    /// // Move a job from "queued" to "running", unless someone took it.
    /// let ops = vec![
    ///     Op::Delete { path: "/queued/job-1".into(), version: Some(0) },
    ///     Op::Create {
    ///         path: "/running/job-1".into(),
    ///         data: b"worker-7".to_vec(),
    ///         options: CreateOptions::new(CreateMode::Persistent),
    ///     },
    /// ];
    /// match client.multi(ops).await {
    ///     Ok(outcomes) => assert_eq!(outcomes.len(), 2),
    ///     Err((index, error)) => println!("operation {index} failed: {error}"),
    /// }
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// use zoo_client::{Read, ReadOutcome};
    ///
    /// let reads = vec![Read::Data("/app/config".into()), Read::Children("/app/workers".into())];
    /// for result in client.multi_read(reads).await? {
    ///     match result {
    ///         Ok(ReadOutcome::Data(data, _stat)) => println!("{} bytes", data.len()),
    ///         Ok(ReadOutcome::Children(names)) => println!("{names:?}"),
    ///         Err(e) => println!("failed: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
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
    /// it): every change, until the watcher is dropped, which removes the
    /// watch. The node need not exist. A watcher that falls behind by more
    /// than 1024 events loses the newer ones.
    ///
    /// ```no_run
    /// # async fn demo(client: zoo_client::Client) -> zoo_client::Result<()> {
    /// let mut watcher = client.watch("/app", true).await?;
    /// while let Some(event) = watcher.next().await {
    ///     println!("{:?} {}", event.event_type, event.path);
    /// }
    /// # Ok(()) }
    /// ```
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

    /// Removes this session's watches of `watcher_type` on `path`, on the
    /// server and here: each watcher removed receives one last event,
    /// `DataWatchRemoved`, `ChildWatchRemoved` or `PersistentWatchRemoved`
    /// (a persistent watcher's stream then ends). `Error::NoWatcher` when
    /// the server holds no such watch.
    pub async fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        let path = self.server_path(path)?;
        let body = RequestBody::RemoveWatches(WatchesRequest { path, watcher_type });
        self.call(body, Some(WatchReg::Remove(watcher_type)))
            .await?;
        Ok(())
    }

    /// Ends the session: its ephemerals are deleted and its watches end.
    /// Every clone is closed; later calls fail with `Error::Closed`.
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
