//! The client against a 3-server ensemble of real `zoo-server` processes
//! on loopback: failover, and read-only servers.
//!
//! Failover: every server is killed in turn under a client connected to all
//! three; the client moves to a live one with its session, its ephemeral
//! node and its watch.
//!
//! Read-only servers (`readonlymode.enabled`, ZooKeeper's `canBeReadOnly`):
//! A server of a 3-server ensemble that has lost its quorum serves reads to
//! clients built with `read_only(true)`: their state is
//! `ConnectedReadOnly`, reads work, writes fail with `NotReadOnly`, and
//! other clients are turned away. The client moves to a server that takes
//! writes as soon as one does, with a new session (a read-only server's
//! session is its own), keeping its watches. It finds one in two ways:
//! its read-only server regains the quorum and drops it, or, while that
//! server stays cut off, another host answers the four-letter word `isro`
//! with "rw".
//!
//! The zoo-server binary is the one `cargo test --workspace` builds, next
//! to this test's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zoo_client::{Client, CreateOptions, Error, SessionState};
use zoo_server::testkit::free_port;
use zoo_wire::{CreateMode, EventType};

/// How long an election, or a client's move, may take here.
const PATIENCE: Duration = Duration::from_secs(20);

/// The zoo-server executable: `target/<profile>/zoo-server`, while this
/// test runs from `target/<profile>/deps/`. `cargo test --workspace`
/// builds it, but a run limited to `--test read_only` does not: so it must
/// exist and be newer than the server's sources, or the test fails asking
/// for a build rather than run a stale server.
fn zoo_server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .join(format!("zoo-server{}", std::env::consts::EXE_SUFFIX));
    let rebuild = "build it with `cargo test --workspace` or `cargo build --workspace`";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("no zoo-server at {} ({e}): {rebuild}", path.display()));
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sources in ["../server/src", "../wire/src"] {
        assert!(
            built >= newest_source(&manifest_dir.join(sources)),
            "{} is older than the sources in {sources}: {rebuild}",
            path.display()
        );
    }
    path
}

/// When the newest `.rs` file under `dir` was modified.
fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                newest = newest.max(std::fs::metadata(&path).unwrap().modified().unwrap());
            }
        }
    }
    newest
}

struct Member {
    client_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Three servers with read-only mode on, each in its own directory under
/// a temporary one (removed on drop, when the processes are killed).
struct Ensemble {
    dir: PathBuf,
    members: Vec<Member>,
}

impl Ensemble {
    /// Three servers; none started. With `isolate_third`, the third server
    /// and the other two are told each other's quorum and election ports
    /// wrong (ports where nothing listens): the first two form a quorum
    /// without it, and it never has one.
    fn new(name: &str, isolate_third: bool) -> Ensemble {
        let dir =
            std::env::temp_dir().join(format!("zoo-client-ensemble-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ports: Vec<[u16; 3]> = (0..3)
            .map(|_| [free_port(), free_port(), free_port()])
            .collect();
        let unreachable = [free_port(), free_port()];
        let members = (0..3)
            .map(|i| {
                let id = i + 1;
                let mut servers = String::new();
                for (j, [_, quorum, election]) in ports.iter().enumerate() {
                    let cut = isolate_third && (i == 2) != (j == 2);
                    let (quorum, election) = if cut {
                        (unreachable[0], unreachable[1])
                    } else {
                        (*quorum, *election)
                    };
                    servers.push_str(&format!("server.{}=127.0.0.1:{quorum}:{election}\n", j + 1));
                }
                let member_dir = dir.join(format!("s{id}"));
                let data = member_dir.join("data");
                std::fs::create_dir_all(&data).unwrap();
                std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
                // No four-letter-word whitelist: read-only mode adds `isro`
                // to the default one (`srvr`), as in ZooKeeper.
                std::fs::write(
                    member_dir.join("zoo.cfg"),
                    format!(
                        "tickTime=200\ninitLimit=10\nsyncLimit=5\n\
                         readonlymode.enabled=true\n\
                         dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n{servers}",
                        data.display(),
                        ports[i][0]
                    ),
                )
                .unwrap();
                Member {
                    client_port: ports[i][0],
                    dir: member_dir,
                    child: None,
                }
            })
            .collect();
        Ensemble { dir, members }
    }

    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.members[i].client_port))
    }

    /// The connect string of the given servers.
    fn hosts(&self, servers: &[usize]) -> String {
        let hosts: Vec<String> = servers.iter().map(|&i| self.addr(i).to_string()).collect();
        hosts.join(",")
    }

    fn start(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "server {} runs", i + 1);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.dir.join("server.log"))
            .unwrap();
        let child = Command::new(zoo_server_binary())
            .arg(m.dir.join("zoo.cfg"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        m.child = Some(child);
    }

    /// kill -9.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The last lines of every server's log, for a failure's message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, m) in self.members.iter().enumerate() {
            let log = std::fs::read_to_string(m.dir.join("server.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            out.push_str(&format!("--- server {} ---\n{tail}\n", i + 1));
        }
        out
    }

    /// Waits until server `i` answers `isro` with `answer`.
    async fn wait_isro(&self, i: usize, answer: &str) {
        let deadline = Instant::now() + PATIENCE;
        while isro(self.addr(i)).await.as_deref() != Some(answer) {
            assert!(
                Instant::now() < deadline,
                "server {} never says {answer:?} to isro\n{}",
                i + 1,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a server answers to `isro`: "rw", "ro" or "null"; `None` if it
/// does not answer.
async fn isro(addr: SocketAddr) -> Option<String> {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"isro").await.ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// A client on `hosts` that accepts read-only servers.
async fn read_only_client(hosts: &str) -> Client {
    Client::builder(hosts)
        .read_only(true)
        .session_timeout(Duration::from_secs(4))
        .connection_timeout(PATIENCE)
        .connect()
        .await
        .unwrap()
}

/// Waits until `client`'s session is in `state`.
async fn wait_state(client: &Client, state: SessionState, ensemble: &Ensemble) {
    let mut states = client.state_changes();
    let reached = tokio::time::timeout(PATIENCE, async {
        while *states.borrow_and_update() != state {
            states.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "the client is {:?}, never {state:?}\n{}",
        client.state(),
        ensemble.logs()
    );
}

/// Reads, refused writes and a watch on a read-only server, for a client
/// connected to one.
async fn check_read_only_session(client: &Client) -> zoo_client::OneshotWatcher {
    assert_eq!(client.state(), SessionState::ConnectedReadOnly);
    assert!(client.state().is_connected());
    let persistent = CreateOptions::new(CreateMode::Persistent);
    assert_eq!(
        client.create("/refused", b"", persistent).await,
        Err(Error::NotReadOnly)
    );
    assert_eq!(
        client.exists("/refused").await,
        Ok(None),
        "the refused write did not happen"
    );
    let (_, watcher) = client.exists_and_watch("/later").await.unwrap();
    watcher
}

/// After the move: a read-write session, a new one, whose writes succeed
/// and which kept the watch set on the read-only server.
async fn check_moved(client: &Client, read_only_session: i64, watcher: zoo_client::OneshotWatcher) {
    assert_eq!(client.state(), SessionState::Connected);
    assert_ne!(
        client.session_id(),
        read_only_session,
        "a read-only server's session is its own: the move brings a new one"
    );
    let persistent = CreateOptions::new(CreateMode::Persistent);
    client.create("/later", b"", persistent).await.unwrap();
    let event = tokio::time::timeout(PATIENCE, watcher.changed())
        .await
        .expect("the watch set while read-only fires")
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeCreated, "/later")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_the_client_reads_then_moves_to_read_write_when_it_returns() {
    let mut ensemble = Ensemble::new("quorum-returns", false);
    for i in 0..3 {
        ensemble.start(i);
    }
    let all = ensemble.hosts(&[0, 1, 2]);

    // Phase 1: a write the third server holds (its client's write is
    // answered once it has applied it).
    let writer = Client::builder(&ensemble.hosts(&[2]))
        .connection_timeout(PATIENCE)
        .connect()
        .await
        .unwrap();
    let persistent = CreateOptions::new(CreateMode::Persistent);
    writer.create("/kept", b"data", persistent).await.unwrap();
    writer.close().await;

    // Phase 2: the other two stop; the third has no quorum and goes
    // read-only.
    ensemble.kill(0);
    ensemble.kill(1);
    ensemble.wait_isro(2, "ro").await;

    // Phase 3: a client that accepts read-only servers reads there.
    let client = read_only_client(&all).await;
    let (data, _) = client.get_data("/kept").await.unwrap();
    assert_eq!(data, b"data");
    let watcher = check_read_only_session(&client).await;
    let read_only_session = client.session_id();

    // A client that does not accept a read-only server gets no session.
    let plain = Client::builder(&all)
        .connection_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert_eq!(plain.err(), Some(Error::Timeout));

    // Phase 4: the others return; the read-only client moves to a server
    // that takes writes.
    ensemble.start(0);
    ensemble.start(1);
    wait_state(&client, SessionState::Connected, &ensemble).await;
    check_moved(&client, read_only_session, watcher).await;
    let (data, _) = client.get_data("/kept").await.unwrap();
    assert_eq!(data, b"data");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_a_server_that_stays_cut_off_finds_a_read_write_server_with_isro() {
    let mut ensemble = Ensemble::new("cut-off", true);

    // Phase 1: only the cut-off server runs; the client can only land
    // there, read-only.
    ensemble.start(2);
    ensemble.wait_isro(2, "ro").await;
    let client = read_only_client(&ensemble.hosts(&[0, 1, 2])).await;
    let watcher = check_read_only_session(&client).await;
    let read_only_session = client.session_id();

    // Phase 2: the other two form a quorum without it. The cut-off server
    // stays read-only and keeps the client's connection: only asking the
    // other hosts `isro` can find them.
    ensemble.start(0);
    ensemble.start(1);
    wait_state(&client, SessionState::Connected, &ensemble).await;
    assert_eq!(isro(ensemble.addr(2)).await.as_deref(), Some("ro"));
    check_moved(&client, read_only_session, watcher).await;
    client.close().await;
}

/// Each server in turn is killed (and restarted once the client has
/// settled); whenever the client's own server dies it moves to another
/// with its session: the ephemeral node stays its own and its watch fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_keeps_its_session_ephemeral_and_watch_as_each_server_dies() {
    let mut ensemble = Ensemble::new("failover", false);
    for i in 0..3 {
        ensemble.start(i);
    }
    for i in 0..3 {
        ensemble.wait_isro(i, "rw").await;
    }
    let client = Client::builder(&ensemble.hosts(&[0, 1, 2]))
        .session_timeout(Duration::from_secs(6))
        .connection_timeout(PATIENCE)
        .connect()
        .await
        .unwrap();
    let session = client.session_id();
    client
        .create("/eph", b"", CreateOptions::new(CreateMode::Ephemeral))
        .await
        .unwrap();
    client
        .create("/watched", b"", CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    let mut disconnects = 0;
    for victim in 0..3 {
        let (_, _, watch) = client.get_data_and_watch("/watched").await.unwrap();
        let mut states = client.state_changes();
        states.borrow_and_update();
        ensemble.kill(victim);
        // The client notices at once when its own server dies (the
        // connection closes), and also when its server loses the leader
        // for a moment.
        if tokio::time::timeout(Duration::from_secs(2), states.changed())
            .await
            .is_ok()
        {
            disconnects += 1;
        }
        wait_state(&client, SessionState::Connected, &ensemble).await;
        assert_eq!(client.session_id(), session, "the session changed");

        let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
        let other = Client::builder(&ensemble.hosts(&survivors))
            .connection_timeout(PATIENCE)
            .connect()
            .await
            .unwrap();
        let owner = other
            .exists("/eph")
            .await
            .unwrap()
            .map(|s| s.ephemeral_owner);
        assert_eq!(
            owner,
            Some(session),
            "the ephemeral node is not the session's"
        );
        other
            .set_data("/watched", victim.to_string().as_bytes(), None)
            .await
            .unwrap();
        let event = tokio::time::timeout(PATIENCE, watch.changed())
            .await
            .expect("the watch fires")
            .expect("a watch event");
        assert_eq!(event.event_type, EventType::NodeDataChanged);
        other.close().await;

        ensemble.start(victim);
        ensemble.wait_isro(victim, "rw").await;
    }
    // The client was on one of the three servers, so at least its own
    // server's death disconnected it.
    assert!(disconnects >= 1, "the client never lost its server");
    client.close().await;
}
