//! Workloads: what the harness's processes do to the cluster, through
//! `zoo-client` and `zoo-recipes`, each operation recorded in the history.
//!
//! A worker runs processes one after another until the run's deadline. A
//! process is one session on one server (the worker's own, or the next
//! that answers); it runs operations one at a time, and retires as soon as
//! one ends indeterminate (`info`) or its session is gone, so that every
//! process is sequential, as the checkers assume. Every operation waits at
//! most `op_timeout`; one that runs out is `info`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use zoo_client::{Client, CreateOptions, SessionState};
use zoo_wire::{CreateMode, Stat};

use crate::history::{Call, Outcome, Recorder, Ret};

/// Register keys.
const REGISTER_KEYS: usize = 3;
/// Keys the watch workload writes and watches.
const WATCH_KEYS: usize = 2;
/// How long a watcher waits for its event before the wait counts as run
/// out.
const WATCH_WAIT: Duration = Duration::from_secs(5);
/// Attempts at a final read of one server before giving up on it.
const FINAL_READ_ATTEMPTS: usize = 10;

/// Which workload a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Reads, writes, compare-and-sets and sync-then-reads on a few keys.
    Register,
    /// Unique creates, then a final read of every server.
    Set,
    /// Sequential creates from many sessions.
    Sequential,
    /// A `zoo_recipes::Lock` with its fencing token.
    Lock,
    /// Sessions with an ephemeral each, ended by close or abandonment.
    Sessions,
    /// One-shot data watches while others write.
    Watch,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::Register,
        Workload::Set,
        Workload::Sequential,
        Workload::Lock,
        Workload::Sessions,
        Workload::Watch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Set => "set",
            Workload::Sequential => "sequential",
            Workload::Lock => "lock",
            Workload::Sessions => "sessions",
            Workload::Watch => "watch",
        }
    }

    pub fn parse(name: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
                format!("unknown workload {name:?}: one of {}", names.join(", "))
            })
    }

    fn root(self) -> String {
        format!("/jepsen-{}", self.name())
    }
}

/// What every process of a run shares.
#[derive(Debug)]
pub struct Env {
    pub workload: Workload,
    pub recorder: Recorder,
    /// Client addresses of the servers, by index.
    pub addrs: Vec<String>,
    pub session_timeout: Duration,
    pub op_timeout: Duration,
    /// The next set element.
    next_element: AtomicU64,
}

impl Env {
    pub fn new(
        workload: Workload,
        recorder: Recorder,
        addrs: Vec<String>,
        session_timeout: Duration,
        op_timeout: Duration,
    ) -> Env {
        Env {
            workload,
            recorder,
            addrs,
            session_timeout,
            op_timeout,
            next_element: AtomicU64::new(0),
        }
    }
}

/// One session of one worker.
struct Process {
    id: u64,
    client: Client,
    node: usize,
}

impl Process {
    /// Whether the process may go on: its last operation ended definitely
    /// and its session is still usable.
    fn alive(&self, last: Outcome) -> bool {
        last != Outcome::Info
            && !matches!(
                self.client.state(),
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
            )
    }
}

/// How a client error ends an operation: `fail` when it certainly did not
/// happen, `info` when it may have.
fn outcome_of(e: &zoo_client::Error) -> Outcome {
    match e {
        // A close answers what was in flight with Closed: those may have
        // happened.
        zoo_client::Error::Closed => Outcome::Info,
        e if e.is_definite() => Outcome::Fail,
        _ => Outcome::Info,
    }
}

fn session_of(client: &Client) -> i64 {
    client.session_id()
}

/// Runs one operation for `p`: records its invocation, awaits `run` (at
/// most the op timeout), and records how it ended; `ret` turns a success
/// into what the history keeps. Returns the outcome and the value.
async fn record<T, F>(
    env: &Env,
    p: &Process,
    call: Call,
    run: F,
    ret: impl FnOnce(&T) -> Ret,
) -> (Outcome, Option<T>, u64)
where
    F: Future<Output = zoo_client::Result<T>>,
{
    let invoked = env
        .recorder
        .invoke(p.id, session_of(&p.client), p.node, call);
    match tokio::time::timeout(env.op_timeout, run).await {
        Ok(Ok(value)) => {
            let r = ret(&value);
            let id = env.recorder.complete(invoked, Outcome::Ok, Some(r), None);
            (Outcome::Ok, Some(value), id)
        }
        Ok(Err(e)) => {
            let outcome = outcome_of(&e);
            let id = env
                .recorder
                .complete(invoked, outcome, None, Some(e.to_string()));
            (outcome, None, id)
        }
        Err(_) => {
            let id =
                env.recorder
                    .complete(invoked, Outcome::Info, None, Some("timed out".to_string()));
            (Outcome::Info, None, id)
        }
    }
}

/// A session on one server: `node`'s address only, so that the history
/// knows which server answered.
async fn connect_to(env: &Env, node: usize) -> Option<Client> {
    let connect = Client::builder(&env.addrs[node])
        .session_timeout(env.session_timeout)
        .connection_timeout(Duration::from_millis(1000))
        .connect();
    tokio::time::timeout(env.op_timeout, connect)
        .await
        .ok()?
        .ok()
}

/// A new process on the worker's server, or the next one that answers.
async fn open_process(env: &Env, worker: usize, deadline: Instant) -> Option<Process> {
    let n = env.addrs.len();
    let mut attempt = 0;
    while Instant::now() < deadline {
        let node = (worker + attempt) % n;
        if let Some(client) = connect_to(env, node).await {
            return Some(Process {
                id: env.recorder.new_process(),
                client,
                node,
            });
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Creates `path` and its parents as persistent nodes, on any server.
async fn ensure_path(env: &Env, path: &str) -> Result<(), String> {
    let client = any_client(env).await?;
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match client
            .create(&at, b"", CreateOptions::new(CreateMode::Persistent))
            .await
        {
            Ok(_) | Err(zoo_client::Error::NodeExists) => {}
            Err(e) => return Err(format!("creating {at}: {e}")),
        }
    }
    client.close().await;
    Ok(())
}

async fn any_client(env: &Env) -> Result<Client, String> {
    for _ in 0..FINAL_READ_ATTEMPTS {
        for node in 0..env.addrs.len() {
            if let Some(client) = connect_to(env, node).await {
                return Ok(client);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err("no server accepted a session".to_string())
}

fn register_key(i: usize) -> String {
    format!("{}/k{i}", Workload::Register.root())
}

fn watch_key(i: usize) -> String {
    format!("{}/k{i}", Workload::Watch.root())
}

fn parse_value(data: &[u8]) -> i64 {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(i64::MIN)
}

/// Makes the nodes the workload needs; for the register, each key with
/// value 0, recorded as the key's `init`.
pub async fn setup(env: &Env) -> Result<(), String> {
    let root = env.workload.root();
    ensure_path(env, &root).await?;
    let keys: Vec<String> = match env.workload {
        Workload::Register => (0..REGISTER_KEYS).map(register_key).collect(),
        Workload::Watch => (0..WATCH_KEYS).map(watch_key).collect(),
        Workload::Lock => {
            ensure_path(env, &format!("{root}/lock")).await?;
            Vec::new()
        }
        _ => Vec::new(),
    };
    if keys.is_empty() {
        return Ok(());
    }
    let client = any_client(env).await?;
    let process = env.recorder.new_process();
    for key in keys {
        let invoked = env.recorder.invoke(
            process,
            client.session_id(),
            0,
            Call::Init { key: key.clone() },
        );
        match client
            .create(&key, b"0", CreateOptions::new(CreateMode::Persistent))
            .await
        {
            Ok((_, stat)) => {
                env.recorder.complete(
                    invoked,
                    Outcome::Ok,
                    Some(Ret::Written {
                        version: stat.version,
                        mzxid: stat.mzxid,
                    }),
                    None,
                );
            }
            Err(e) => return Err(format!("creating {key}: {e}")),
        }
    }
    client.close().await;
    Ok(())
}

/// One worker: processes one after another until `deadline`.
pub async fn worker(env: Arc<Env>, worker: usize, deadline: Instant, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ (worker as u64).wrapping_mul(0x9e37_79b9));
    while Instant::now() < deadline {
        let Some(p) = open_process(&env, worker, deadline).await else {
            return;
        };
        match env.workload {
            Workload::Register => register_process(&env, &p, &mut rng, deadline).await,
            Workload::Set => set_process(&env, &p, &mut rng, deadline).await,
            Workload::Sequential => sequential_process(&env, &p, &mut rng, deadline).await,
            Workload::Lock => lock_process(&env, &p, &mut rng, deadline).await,
            Workload::Sessions => {
                session_process(&env, p, &mut rng).await;
                continue;
            }
            Workload::Watch if worker.is_multiple_of(2) => {
                watch_writer(&env, &p, &mut rng, deadline).await
            }
            Workload::Watch => watcher(&env, &p, &mut rng, deadline).await,
        }
        // The process retires: its session is abandoned, not closed, since
        // a close could still be answered for operations in flight.
        drop(p);
    }
}

async fn pause(rng: &mut StdRng, ms: std::ops::Range<u64>) {
    tokio::time::sleep(Duration::from_millis(rng.gen_range(ms))).await;
}

/// A read of `key`, after a `sync` when `sync` is set, recorded.
async fn read(env: &Env, p: &Process, key: &str, sync: bool) -> (Outcome, Option<Stat>) {
    let call = if sync {
        Call::SyncRead { key: key.into() }
    } else {
        Call::Read { key: key.into() }
    };
    let run = async {
        if sync {
            p.client.sync(key).await?;
        }
        p.client.get_data(key).await
    };
    let (outcome, got, _) = record(env, p, call, run, |(d, s)| Ret::Value {
        value: parse_value(d),
        version: s.version,
        mzxid: s.mzxid,
    })
    .await;
    (outcome, got.map(|(_, stat)| stat))
}

/// `value` written to `key`, unconditionally or expecting `version`,
/// recorded.
async fn write(
    env: &Env,
    p: &Process,
    key: &str,
    value: i64,
    version: Option<i32>,
) -> (Outcome, Option<Stat>) {
    let call = match version {
        None => Call::Write {
            key: key.into(),
            value,
        },
        Some(version) => Call::Cas {
            key: key.into(),
            version,
            value,
        },
    };
    let data = value.to_string();
    let run = p.client.set_data(key, data.as_bytes(), version);
    let (outcome, got, _) = record(env, p, call, run, |s| Ret::Written {
        version: s.version,
        mzxid: s.mzxid,
    })
    .await;
    (outcome, got)
}

async fn register_process(env: &Env, p: &Process, rng: &mut StdRng, deadline: Instant) {
    let mut versions: HashMap<String, i32> = HashMap::new();
    let mut counter = 0i64;
    while Instant::now() < deadline {
        let key = register_key(rng.gen_range(0..REGISTER_KEYS));
        counter += 1;
        let value = p.id as i64 * 1_000_000 + counter;
        let (outcome, stat) = match rng.gen_range(0..10) {
            0..=2 => read(env, p, &key, false).await,
            3 => read(env, p, &key, true).await,
            4..=6 => write(env, p, &key, value, None).await,
            _ => {
                let version = versions.get(&key).copied().unwrap_or(0);
                write(env, p, &key, value, Some(version)).await
            }
        };
        if let Some(stat) = stat {
            versions.insert(key, stat.version);
        }
        if !p.alive(outcome) {
            return;
        }
        pause(rng, 5..30).await;
    }
}

async fn set_process(env: &Env, p: &Process, rng: &mut StdRng, deadline: Instant) {
    let root = Workload::Set.root();
    while Instant::now() < deadline {
        let element = env.next_element.fetch_add(1, Ordering::Relaxed);
        let path = format!("{root}/e{element}");
        let run = p
            .client
            .create(&path, b"", CreateOptions::new(CreateMode::Persistent));
        let (outcome, _, _) = record(env, p, Call::Add { element }, run, |_| Ret::Done).await;
        if !p.alive(outcome) {
            return;
        }
        pause(rng, 2..15).await;
    }
}

async fn sequential_process(env: &Env, p: &Process, rng: &mut StdRng, deadline: Instant) {
    let prefix = format!("{}/n-", Workload::Sequential.root());
    let mut counter = 0;
    while Instant::now() < deadline {
        counter += 1;
        let tag = format!("p{}-{counter}", p.id);
        let run = p.client.create(
            &prefix,
            tag.as_bytes(),
            CreateOptions::new(CreateMode::PersistentSequential),
        );
        let call = Call::CreateSeq { tag: tag.clone() };
        let (outcome, _, _) = record(env, p, call, run, |(path, stat)| Ret::Created {
            path: path.clone(),
            czxid: stat.czxid,
        })
        .await;
        if !p.alive(outcome) {
            return;
        }
        pause(rng, 2..15).await;
    }
}

async fn lock_process(env: &Env, p: &Process, rng: &mut StdRng, deadline: Instant) {
    let dir = format!("{}/lock", Workload::Lock.root());
    let lock = zoo_recipes::Lock::new(&p.client, &dir).identifier(&format!("p{}", p.id));
    while Instant::now() < deadline {
        let invoked = env.recorder.invoke(
            p.id,
            p.client.session_id(),
            p.node,
            Call::Acquire { lock: dir.clone() },
        );
        let acquired =
            tokio::time::timeout(env.op_timeout, lock.acquire_timeout(env.op_timeout / 2)).await;
        let guard = match acquired {
            Ok(Ok(guard)) => {
                let token = guard.fencing_token();
                env.recorder
                    .complete(invoked, Outcome::Ok, Some(Ret::Fenced { token }), None);
                guard
            }
            Ok(Err(zoo_recipes::Error::Timeout)) => {
                // The waiting node is removed when the wait gives up.
                env.recorder
                    .complete(invoked, Outcome::Fail, None, Some("timed out".into()));
                continue;
            }
            Ok(Err(e)) => {
                let outcome = match &e {
                    zoo_recipes::Error::Client(c) => outcome_of(c),
                    _ => Outcome::Info,
                };
                env.recorder
                    .complete(invoked, outcome, None, Some(e.to_string()));
                if !p.alive(outcome) {
                    return;
                }
                continue;
            }
            Err(_) => {
                env.recorder
                    .complete(invoked, Outcome::Info, None, Some("timed out".into()));
                return;
            }
        };
        pause(rng, 5..50).await;
        let token = guard.fencing_token();
        let node = guard.node().to_string();
        // Was the hold kept to the end? After a sync, the node read back
        // with the same czxid means it was never deleted (a deleted
        // ephemeral never comes back with its czxid).
        let run = async {
            p.client.sync(&node).await?;
            match p.client.exists(&node).await? {
                Some(stat) if stat.czxid == token => {
                    guard.release().await.map_err(|e| match e {
                        zoo_recipes::Error::Client(c) => c,
                        _ => zoo_client::Error::ConnectionLoss,
                    })?;
                    Ok::<bool, zoo_client::Error>(true)
                }
                _ => Ok(false),
            }
        };
        let call = Call::Release {
            lock: dir.clone(),
            token,
        };
        let invoked = env
            .recorder
            .invoke(p.id, p.client.session_id(), p.node, call);
        let outcome = match tokio::time::timeout(env.op_timeout, run).await {
            Ok(Ok(true)) => {
                env.recorder
                    .complete(invoked, Outcome::Ok, Some(Ret::Done), None);
                Outcome::Ok
            }
            Ok(Ok(false)) => {
                env.recorder.complete(
                    invoked,
                    Outcome::Fail,
                    None,
                    Some("the lock was lost".into()),
                );
                Outcome::Fail
            }
            Ok(Err(e)) => {
                env.recorder
                    .complete(invoked, Outcome::Info, None, Some(e.to_string()));
                Outcome::Info
            }
            Err(_) => {
                env.recorder
                    .complete(invoked, Outcome::Info, None, Some("timed out".into()));
                Outcome::Info
            }
        };
        if !p.alive(outcome) {
            return;
        }
        pause(rng, 0..20).await;
    }
}

async fn session_process(env: &Env, p: Process, rng: &mut StdRng) {
    let session = p.client.session_id();
    let opened = env
        .recorder
        .invoke(p.id, session, p.node, Call::OpenSession);
    env.recorder.complete(
        opened,
        Outcome::Ok,
        Some(Ret::Session { id: session }),
        None,
    );
    let path = format!("{}/p{}", Workload::Sessions.root(), p.id);
    let run = p
        .client
        .create(&path, b"", CreateOptions::new(CreateMode::Ephemeral));
    let call = Call::CreateEphemeral { path: path.clone() };
    let (outcome, _, _) = record(env, &p, call, run, |(path, stat)| Ret::Created {
        path: path.clone(),
        czxid: stat.czxid,
    })
    .await;
    if outcome == Outcome::Ok {
        pause(rng, 0..100).await;
        let call = Call::CheckEphemeral { path: path.clone() };
        let (outcome, _, _) = record(env, &p, call, p.client.exists(&path), |stat| Ret::Node {
            exists: stat.is_some(),
            owner: stat.as_ref().map_or(0, |s| s.ephemeral_owner),
        })
        .await;
        if outcome == Outcome::Ok {
            pause(rng, 0..200).await;
        }
    }
    let close = outcome == Outcome::Ok && rng.gen_bool(0.5);
    let how = if close { "close" } else { "abandon" };
    let ended = env
        .recorder
        .invoke(p.id, session, p.node, Call::EndSession { how: how.into() });
    if close {
        let _ = tokio::time::timeout(env.op_timeout, p.client.close()).await;
    }
    drop(p);
    env.recorder
        .complete(ended, Outcome::Ok, Some(Ret::Done), None);
}

async fn watch_writer(env: &Env, p: &Process, rng: &mut StdRng, deadline: Instant) {
    let mut counter = 0i64;
    while Instant::now() < deadline {
        let key = watch_key(rng.gen_range(0..WATCH_KEYS));
        counter += 1;
        let value = p.id as i64 * 1_000_000 + counter;
        let (outcome, _) = write(env, p, &key, value, None).await;
        if !p.alive(outcome) {
            return;
        }
        pause(rng, 20..80).await;
    }
}

async fn watcher(env: &Env, p: &Process, rng: &mut StdRng, deadline: Instant) {
    while Instant::now() < deadline {
        let key = watch_key(rng.gen_range(0..WATCH_KEYS));
        let call = Call::WatchRead { key: key.clone() };
        let (outcome, got, registration) = record(
            env,
            p,
            call,
            p.client.get_data_and_watch(&key),
            |(d, s, _)| Ret::Value {
                value: parse_value(d),
                version: s.version,
                mzxid: s.mzxid,
            },
        )
        .await;
        let Some((_, _, watch)) = got else {
            if !p.alive(outcome) {
                return;
            }
            continue;
        };
        let call = Call::WatchEvent {
            key: key.clone(),
            registration,
        };
        let invoked = env
            .recorder
            .invoke(p.id, p.client.session_id(), p.node, call);
        let mut states = p.client.state_changes();
        let mut connected_throughout = *states.borrow_and_update() == SessionState::Connected;
        let wait_end = Instant::now() + WATCH_WAIT;
        let changed = watch.changed();
        tokio::pin!(changed);
        let event = loop {
            tokio::select! {
                event = &mut changed => break Some(event),
                _ = tokio::time::sleep_until(wait_end) => break None,
                moved = states.changed() => {
                    if moved.is_err() || *states.borrow_and_update() != SessionState::Connected {
                        connected_throughout = false;
                    }
                    if moved.is_err() {
                        // The client's task ended: nothing more will come.
                        tokio::time::sleep_until(wait_end).await;
                        break None;
                    }
                }
            }
        };
        match event {
            Some(Ok(event)) => {
                // What the session reads right after the event.
                let read = tokio::time::timeout(env.op_timeout, p.client.get_data(&key)).await;
                match read {
                    Ok(Ok((_, stat))) => {
                        let ret = Ret::Event {
                            event: format!("{:?}", event.event_type),
                            mzxid: stat.mzxid,
                        };
                        env.recorder.complete(invoked, Outcome::Ok, Some(ret), None);
                    }
                    _ => {
                        env.recorder.complete(
                            invoked,
                            Outcome::Info,
                            None,
                            Some("the read after the event failed".into()),
                        );
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                env.recorder
                    .complete(invoked, Outcome::Info, None, Some(e.to_string()));
                return;
            }
            None if connected_throughout => {
                env.recorder.complete(
                    invoked,
                    Outcome::Fail,
                    None,
                    Some("no event within the wait".into()),
                );
            }
            None => {
                env.recorder.complete(
                    invoked,
                    Outcome::Info,
                    None,
                    Some("the connection dropped during the wait".into()),
                );
                return;
            }
        }
        if !p.alive(Outcome::Ok) {
            return;
        }
        pause(rng, 0..30).await;
    }
}

/// The final reads, once the cluster is healed and quiet: each server's
/// view after a `sync`, for the workloads whose checkers need one.
pub async fn finish(env: &Env) -> Result<(), String> {
    let call = match env.workload {
        Workload::Set => Call::ReadSet,
        Workload::Sequential => Call::ReadSeq,
        Workload::Sessions => {
            // Every session has ended: let the abandoned ones expire.
            tokio::time::sleep(env.session_timeout * 2 + Duration::from_secs(1)).await;
            Call::ReadEphemerals
        }
        _ => return Ok(()),
    };
    let root = env.workload.root();
    let mut failed = Vec::new();
    for node in 0..env.addrs.len() {
        let mut done = false;
        for _ in 0..FINAL_READ_ATTEMPTS {
            if final_read(env, node, &root, call.clone()).await {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !done {
            failed.push(node + 1);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("no final read from servers {failed:?}"))
    }
}

/// One final read of `node`; whether it succeeded.
async fn final_read(env: &Env, node: usize, root: &str, call: Call) -> bool {
    let Some(client) = connect_to(env, node).await else {
        return false;
    };
    let process = env.recorder.new_process();
    let invoked = env
        .recorder
        .invoke(process, client.session_id(), node, call.clone());
    let read = async {
        client.sync(root).await?;
        let mut children = client.get_children(root).await?;
        children.sort();
        let ret = match call {
            Call::ReadSet => Ret::Elements {
                elements: children
                    .iter()
                    .filter_map(|c| c.strip_prefix('e')?.parse().ok())
                    .collect(),
            },
            Call::ReadSeq => {
                let mut nodes = Vec::with_capacity(children.len());
                for child in children {
                    let (data, _) = client.get_data(&format!("{root}/{child}")).await?;
                    nodes.push((child, String::from_utf8_lossy(&data).into_owned()));
                }
                Ret::Named { nodes }
            }
            _ => {
                let mut nodes = Vec::with_capacity(children.len());
                for child in children {
                    let path = format!("{root}/{child}");
                    if let Some(stat) = client.exists(&path).await? {
                        nodes.push((path, stat.ephemeral_owner));
                    }
                }
                Ret::Ephemerals { nodes }
            }
        };
        zoo_client::Result::Ok(ret)
    };
    let result = tokio::time::timeout(env.op_timeout * 4, read).await;
    let ok = match result {
        Ok(Ok(ret)) => {
            env.recorder.complete(invoked, Outcome::Ok, Some(ret), None);
            true
        }
        Ok(Err(e)) => {
            env.recorder
                .complete(invoked, Outcome::Fail, None, Some(e.to_string()));
            false
        }
        Err(_) => {
            env.recorder
                .complete(invoked, Outcome::Fail, None, Some("timed out".into()));
            false
        }
    };
    client.close().await;
    ok
}
