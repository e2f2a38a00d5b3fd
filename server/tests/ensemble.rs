//! Ensembles of real `zoo-server` processes on loopback: election,
//! replication through followers, failover when the leader is killed,
//! rejoining by DIFF and by snapshot, and no service without a quorum.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{run_ok, RawClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zoo_server::testkit::free_port;
use zoo_wire::*;

/// How long an election or a catch-up may take here.
const PATIENCE: Duration = Duration::from_secs(40);

struct Member {
    id: u64,
    client_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }
}

struct Ensemble {
    _dir: tempfile::TempDir,
    members: Vec<Member>,
}

impl Ensemble {
    /// `n` servers, the last `observers` of them observers, with `settings`
    /// added to every zoo.cfg; none started.
    fn new(n: usize, observers: usize, settings: &str) -> Ensemble {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut servers = String::new();
        for (i, (_, quorum, election)) in ports.iter().enumerate() {
            let role = if i >= n - observers { ":observer" } else { "" };
            servers.push_str(&format!(
                "server.{}=127.0.0.1:{quorum}:{election}{role}\n",
                i + 1
            ));
        }
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, _, _))| {
                let id = i as u64 + 1;
                let member_dir = dir.path().join(format!("s{id}"));
                std::fs::create_dir_all(member_dir.join("data")).unwrap();
                std::fs::write(member_dir.join("data/myid"), format!("{id}\n")).unwrap();
                std::fs::write(
                    member_dir.join("zoo.cfg"),
                    format!(
                        "tickTime=200\ninitLimit=10\nsyncLimit=5\n\
                         4lw.commands.whitelist=*\n\
                         dataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\n\
                         {settings}{servers}",
                        member_dir.join("data").display()
                    ),
                )
                .unwrap();
                Member {
                    id,
                    client_port: *client,
                    dir: member_dir,
                    child: None,
                }
            })
            .collect();
        Ensemble { _dir: dir, members }
    }

    fn start(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "server {} runs", m.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.dir.join("server.log"))
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_zoo-server"))
            .arg(m.dir.join("zoo.cfg"))
            .env("RUST_LOG", "info")
            .env_remove("ZOO_CRASH_AT")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        m.child = Some(child);
    }

    /// Adds a line to server `i`'s zoo.cfg only.
    fn append_setting(&self, i: usize, line: &str) {
        let path = self.members[i].dir.join("zoo.cfg");
        let mut cfg = std::fs::read_to_string(&path).unwrap();
        cfg.push_str(line);
        cfg.push('\n');
        std::fs::write(path, cfg).unwrap();
    }

    fn start_all(&mut self) {
        for i in 0..self.members.len() {
            self.start(i);
        }
    }

    /// kill -9.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.members[i].dir.join("server.log")).unwrap_or_default()
    }

    /// What `srvr` says of server `i`'s mode; `None` while it does not serve.
    async fn mode(&self, i: usize) -> Option<String> {
        let text = four_letter(self.members[i].addr(), "srvr").await?;
        text.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }

    /// Waits until the running servers serve, with one leader among them;
    /// returns the leader's index.
    async fn wait_for_leader(&self) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut leaders = Vec::new();
            let mut all_serve = true;
            for (i, m) in self.members.iter().enumerate() {
                if m.child.is_none() {
                    continue;
                }
                match self.mode(i).await.as_deref() {
                    Some("leader") => leaders.push(i),
                    Some("follower" | "observer") => {}
                    _ => all_serve = false,
                }
            }
            if all_serve && leaders.len() == 1 {
                return leaders[0];
            }
            assert!(
                Instant::now() < deadline,
                "no single leader with every running server serving: leaders {leaders:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| format!("--- server {} ---\n{}", i + 1, tail(&self.log(i), 40)))
            .collect()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A log line without its terminal colours.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A four-letter word's answer, or `None` if the server does not answer.
async fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(word.as_bytes()).await.ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// A session on server `i`, retrying while it does not serve.
async fn connect(ensemble: &Ensemble, i: usize) -> RawClient {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let addr = ensemble.members[i].addr();
        let attempt = async {
            TcpStream::connect(addr).await.ok()?;
            RawClient::connect_with(addr, 0, vec![0; 16], 10_000).await
        };
        if let Ok(Some(client)) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
            return client;
        }
        assert!(
            Instant::now() < deadline,
            "server {} takes no session\n{}",
            i + 1,
            ensemble.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until server `i` holds `path` (its reads are local, so a
/// follower sees a write once it has applied it); returns its data.
async fn wait_for_node(ensemble: &Ensemble, i: usize, path: &str) -> (Option<Vec<u8>>, Stat) {
    let deadline = Instant::now() + PATIENCE;
    let mut client = connect(ensemble, i).await;
    loop {
        match client.get(path, false).await {
            Ok((data, stat)) => return (data.map(|d| d.to_vec()), stat),
            Err(ErrorCode::NoNode) => {}
            Err(e) => panic!("reading {path} on server {}: {e:?}", i + 1),
        }
        assert!(
            Instant::now() < deadline,
            "server {} never shows {path}\n{}",
            i + 1,
            ensemble.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn followers_of(ensemble: &Ensemble, leader: usize) -> Vec<usize> {
    (0..ensemble.members.len())
        .filter(|&i| i != leader && ensemble.members[i].child.is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_replicate_and_survive_the_leader() {
    let mut ensemble = Ensemble::new(3, 0, "");
    ensemble.start_all();
    let leader = ensemble.wait_for_leader().await;
    let followers = followers_of(&ensemble, leader);

    // Writes through a follower are forwarded, committed and answered there.
    let mut c = connect(&ensemble, followers[0]).await;
    assert_eq!(
        c.create("/a", b"one", CreateMode::Persistent).await,
        Ok("/a".into()),
        "{}",
        ensemble.logs()
    );
    // Sequence numbers come from the leader, whichever server is asked.
    let mut d = connect(&ensemble, followers[1]).await;
    let s0 = c
        .create("/a/s-", b"", CreateMode::PersistentSequential)
        .await;
    let s1 = d
        .create("/a/s-", b"", CreateMode::PersistentSequential)
        .await;
    assert_eq!(s0, Ok("/a/s-0000000000".into()));
    assert_eq!(s1, Ok("/a/s-0000000001".into()));
    // Errors come back through the follower too.
    assert_eq!(
        d.create("/a", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NodeExists)
    );
    // sync on a follower: its next read sees what the leader had written.
    let mut at_leader = connect(&ensemble, leader).await;
    for round in 0..20 {
        let path = format!("/synced{round}");
        at_leader
            .create(&path, b"", CreateMode::Persistent)
            .await
            .unwrap();
        let (h, _) = d
            .call(RequestBody::Sync(SyncRequest { path: path.clone() }))
            .await;
        assert_eq!(h.err, ErrorCode::Ok);
        assert!(d.get(&path, false).await.is_ok(), "{path} after sync");
    }
    drop(at_leader);
    for i in 0..3 {
        let (data, stat) = wait_for_node(&ensemble, i, "/a").await;
        assert_eq!(data.as_deref(), Some(&b"one"[..]), "server {}", i + 1);
        assert_eq!(stat.czxid >> 32, 1, "the first leader's epoch");
        wait_for_node(&ensemble, i, "/a/s-0000000001").await;
    }
    drop((c, d));

    // The leader dies: the other two elect one of themselves and go on.
    ensemble.kill(leader);
    let new_leader = ensemble.wait_for_leader().await;
    assert_ne!(new_leader, leader);
    let mut c = connect(&ensemble, followers_of(&ensemble, new_leader)[0]).await;
    assert_eq!(
        c.create("/b", b"two", CreateMode::Persistent).await,
        Ok("/b".into())
    );
    let (_, b) = wait_for_node(&ensemble, new_leader, "/b").await;
    assert!(b.czxid >> 32 >= 2, "a new epoch: {:#x}", b.czxid);
    let (data, _) = wait_for_node(&ensemble, new_leader, "/a").await;
    assert_eq!(
        data.as_deref(),
        Some(&b"one"[..]),
        "committed writes survive"
    );

    // The old leader comes back as a follower and catches up.
    ensemble.start(leader);
    let after = ensemble.wait_for_leader().await;
    assert_ne!(after, leader, "the returning server does not take over");
    let (data, _) = wait_for_node(&ensemble, leader, "/b").await;
    assert_eq!(data.as_deref(), Some(&b"two"[..]));
    assert_eq!(ensemble.mode(leader).await.as_deref(), Some("follower"));
    // It was a few writes behind: the new leader sent them as a DIFF.
    let peer = format!("peer={}", leader + 1);
    let new_leader_log = ensemble.log(after);
    assert!(
        new_leader_log.lines().map(strip_ansi).any(|l| {
            l.contains("synchronizing a follower")
                && l.contains(&peer)
                && l.contains("how=\"DIFF\"")
        }),
        "{}",
        tail(&new_leader_log, 30)
    );
}

/// A leader whose disk is slow: the followers' acknowledgements commit a
/// write, and a follower answers it, before the leader has it durable and
/// applied. A `sync` on the leader must still make the next read there see
/// that write (found by zoo-jepsen's register soak, seed 2001).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_on_a_leader_with_a_slow_log_waits_for_what_followers_committed() {
    let mut ensemble = Ensemble::new(3, 0, "");
    // Server 2 gets the slow log and leads: started with server 1 only,
    // the higher id wins between equals; server 3 then joins and follows.
    ensemble.append_setting(1, "testOnly.logDelayMs=300");
    ensemble.start(0);
    ensemble.start(1);
    assert_eq!(ensemble.wait_for_leader().await, 1, "server 2 leads");
    ensemble.start(2);
    assert_eq!(ensemble.wait_for_leader().await, 1, "server 2 still leads");

    let mut writer = connect(&ensemble, 0).await;
    let mut reader = connect(&ensemble, 1).await;
    writer
        .create("/r", b"0", CreateMode::Persistent)
        .await
        .unwrap();
    for round in 1..=8 {
        let value = round.to_string();
        let written = writer.set("/r", value.as_bytes(), -1).await.unwrap();
        let (h, _) = reader
            .call(RequestBody::Sync(SyncRequest { path: "/r".into() }))
            .await;
        assert_eq!(h.err, ErrorCode::Ok);
        let (data, stat) = reader.get("/r", false).await.unwrap();
        assert_eq!(
            (data.as_deref(), stat.mzxid),
            (Some(value.as_bytes()), written.mzxid),
            "round {round}: the read after a sync on the leader"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_far_behind_is_sent_a_snapshot() {
    // Only a few committed entries are kept for DIFFs.
    let mut ensemble = Ensemble::new(3, 0, "commitLogCount=5\n");
    ensemble.start_all();
    let leader = ensemble.wait_for_leader().await;
    let behind = followers_of(&ensemble, leader)[0];
    ensemble.kill(behind);
    let mut c = connect(&ensemble, leader).await;
    for i in 0..40 {
        let path = format!("/n{i}");
        assert_eq!(
            c.create(&path, b"x", CreateMode::Persistent).await,
            Ok(path.clone())
        );
    }
    ensemble.start(behind);
    let (data, _) = wait_for_node(&ensemble, behind, "/n39").await;
    assert_eq!(data.as_deref(), Some(&b"x"[..]));
    wait_for_node(&ensemble, behind, "/n0").await;
    assert!(
        ensemble
            .log(behind)
            .contains("installing the leader's snapshot"),
        "{}",
        tail(&ensemble.log(behind), 30)
    );
    // Written after the snapshot, it arrives by the broadcast.
    c.create("/after", b"", CreateMode::Persistent)
        .await
        .unwrap();
    wait_for_node(&ensemble, behind, "/after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_serve_with_two_down_and_stop_with_three() {
    let mut ensemble = Ensemble::new(5, 0, "");
    ensemble.start_all();
    let leader = ensemble.wait_for_leader().await;
    let mntr = four_letter(ensemble.members[leader].addr(), "mntr")
        .await
        .unwrap();
    assert!(mntr.contains("zk_server_state\tleader"), "{mntr}");
    assert!(mntr.contains("zk_synced_followers\t4"), "{mntr}");
    let mut down: Vec<usize> = followers_of(&ensemble, leader);
    down.truncate(2);
    for &i in &down {
        ensemble.kill(i);
    }
    let mut c = connect(&ensemble, leader).await;
    assert_eq!(
        c.create("/q", b"", CreateMode::Persistent).await,
        Ok("/q".into())
    );
    drop(c);

    // A third one down: no quorum, and the rest stop serving.
    let third = followers_of(&ensemble, leader)[0];
    ensemble.kill(third);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut serving = Vec::new();
        for i in 0..5 {
            if ensemble.members[i].child.is_some() && ensemble.mode(i).await.is_some() {
                serving.push(i);
            }
        }
        if serving.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving without a quorum: {serving:?}\n{}",
            ensemble.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = four_letter(ensemble.members[leader].addr(), "srvr")
        .await
        .unwrap();
    assert!(text.contains("not currently serving"), "{text}");

    // One back: a quorum again, with the data.
    ensemble.start(third);
    ensemble.wait_for_leader().await;
    wait_for_node(&ensemble, third, "/q").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_follows_without_voting() {
    // Two voters and an observer: one voter down leaves no quorum, whatever
    // the observer does.
    let mut ensemble = Ensemble::new(3, 1, "");
    ensemble.start_all();
    let leader = ensemble.wait_for_leader().await;
    assert_ne!(leader, 2, "an observer never leads");
    assert_eq!(ensemble.mode(2).await.as_deref(), Some("observer"));
    let mut c = connect(&ensemble, 2).await;
    assert_eq!(
        c.create("/o", b"seen", CreateMode::Persistent).await,
        Ok("/o".into())
    );
    drop(c);
    let voter = 1 - leader;
    wait_for_node(&ensemble, voter, "/o").await;
    ensemble.kill(voter);
    let deadline = Instant::now() + PATIENCE;
    while ensemble.mode(leader).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "a leader with only an observer kept serving"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_writes_through_a_leader_failover_and_loses_nothing() {
    use std::io::{BufRead, BufReader};
    let mut ensemble = Ensemble::new(3, 0, "");
    ensemble.start_all();
    let leader = ensemble.wait_for_leader().await;
    let hosts: Vec<String> = ensemble
        .members
        .iter()
        .map(|m| m.addr().to_string())
        .collect();
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let mut writer = std::process::Command::new("/usr/bin/python3")
        .arg(std::path::Path::new(&manifest).join("tests/kazoo_failover.py"))
        .arg(hosts.join(","))
        .arg("8")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = writer.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    // Some writes, then the leader goes, then writing goes on to the end.
    while acked.len() < 20 {
        let line = lines.recv().await.expect("the writer stopped early");
        if let Some(path) = line.strip_prefix("ack ") {
            acked.push(path.to_string());
        }
    }
    ensemble.kill(leader);
    let before_kill = acked.len();
    let mut done = None;
    while let Some(line) = lines.recv().await {
        if let Some(path) = line.strip_prefix("ack ") {
            acked.push(path.to_string());
        } else if let Some(n) = line.strip_prefix("done ") {
            done = Some(n.parse::<usize>().unwrap());
        }
    }
    assert!(writer.wait().unwrap().success());
    assert_eq!(done, Some(acked.len()), "the writer finished");
    assert!(
        acked.len() > before_kill,
        "writes went on after the failover: {} before, {} in all\n{}",
        before_kill,
        acked.len(),
        ensemble.logs()
    );
    // Every acknowledged create is on both survivors, sequence numbers are
    // distinct and increasing.
    let mut sorted = acked.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted, acked,
        "acknowledged names increase and never repeat"
    );
    for i in followers_of(&ensemble, leader) {
        for path in [&acked[0], &acked[before_kill - 1], acked.last().unwrap()] {
            wait_for_node(&ensemble, i, path).await;
        }
        let mut c = connect(&ensemble, i).await;
        let children = c.children("/failover", false).await.unwrap();
        for path in &acked {
            let name = path.trim_start_matches("/failover/");
            assert!(
                children.iter().any(|c| c == name),
                "{path} acknowledged, missing on server {}",
                i + 1
            );
        }
    }
}

/// Stops server `i` with SIGSTOP and returns once every one of its threads
/// is stopped: the signal is delivered asynchronously, and a thread still
/// running could read what is sent to the server after this returns.
fn freeze(ensemble: &Ensemble, i: usize) {
    let pid = ensemble.members[i].child.as_ref().unwrap().id();
    // bash's own kill: no procps needed.
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("kill -STOP {pid}"))
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let running = tasks.filter_map(Result::ok).any(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the parenthesized command name.
            let state = stat
                .rsplit(") ")
                .next()
                .and_then(|rest| rest.chars().next());
            !matches!(state, Some('T' | 't'))
        });
        if !running {
            return;
        }
        assert!(Instant::now() < deadline, "server {} does not stop", i + 1);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_with_a_lone_proposal_truncates_it_on_return() {
    let mut ensemble = Ensemble::new(3, 0, "");
    ensemble.start_all();
    let leader = ensemble.wait_for_leader().await;
    let followers = followers_of(&ensemble, leader);
    let mut c = connect(&ensemble, leader).await;
    c.create("/before", b"", CreateMode::Persistent)
        .await
        .unwrap();
    for &f in &followers {
        wait_for_node(&ensemble, f, "/before").await;
    }

    // The followers freeze, so that the leader logs a proposal nobody else
    // reads, and dies before it could commit it. The followers die too:
    // what their sockets held unread goes with them.
    for &f in &followers {
        freeze(&ensemble, f);
    }
    c.send(RequestBody::Create(CreateRequest {
        path: "/lost".into(),
        data: None,
        acl: Some(Acl::open_unsafe()),
        flags: CreateMode::Persistent.as_i32(),
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensemble.kill(leader);
    drop(c);
    for &f in &followers {
        ensemble.kill(f);
        ensemble.start(f);
    }

    // The other two go on in a new epoch.
    let new_leader = ensemble.wait_for_leader().await;
    let mut c = connect(&ensemble, new_leader).await;
    c.create("/after", b"", CreateMode::Persistent)
        .await
        .unwrap();
    drop(c);

    // The old leader returns: its proposal is cut from its log.
    ensemble.start(leader);
    ensemble.wait_for_leader().await;
    wait_for_node(&ensemble, leader, "/after").await;
    for i in 0..3 {
        let mut c = connect(&ensemble, i).await;
        assert_eq!(
            c.get("/lost", false).await.err(),
            Some(ErrorCode::NoNode),
            "server {} holds a write that was never acknowledged\n{}",
            i + 1,
            ensemble.logs()
        );
    }
    assert!(
        ensemble
            .log(leader)
            .contains("truncating the log after the leader's history"),
        "{}",
        tail(&ensemble.log(leader), 30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_a_read_only_server_serves_reads_to_clients_that_allow_it() {
    let mut ensemble = Ensemble::new(3, 0, "readonlymode.enabled=true\n");
    ensemble.start_all();
    let leader = ensemble.wait_for_leader().await;
    let mut c = connect(&ensemble, leader).await;
    c.create("/ro", b"kept", CreateMode::Persistent)
        .await
        .unwrap();
    drop(c);
    let alone = followers_of(&ensemble, leader)[0];
    wait_for_node(&ensemble, alone, "/ro").await;
    for i in 0..3 {
        if i != alone {
            ensemble.kill(i);
        }
    }
    let deadline = Instant::now() + PATIENCE;
    while ensemble.mode(alone).await.as_deref() != Some("read-only") {
        assert!(Instant::now() < deadline, "{}", ensemble.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Clients look for a server that takes writes with `isro`.
    let isro = four_letter(ensemble.members[alone].addr(), "isro").await;
    assert_eq!(isro.as_deref(), Some("ro"));

    // A client that does not accept a read-only server is turned away.
    let plain = RawClient::connect_with(ensemble.members[alone].addr(), 0, vec![0; 16], 10_000);
    assert!(plain.await.is_none(), "a read-write client was taken");

    // kazoo with read_only=True reads, and its writes are refused.
    let kazoo_script = r#"
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
zk = KazooClient(hosts=sys.argv[1], read_only=True, timeout=10)
zk.start(timeout=20)
data, _ = zk.get("/ro")
assert data == b"kept", data
try:
    zk.create("/new", b"")
    print("write accepted")
except NotReadOnlyCallError:
    print("write refused")
zk.stop()
print("read-only ok")
"#;
    let mut command = std::process::Command::new("/usr/bin/python3");
    command
        .arg("-c")
        .arg(kazoo_script)
        .arg(ensemble.members[alone].addr().to_string());
    let stdout = run_ok(command).await;
    assert!(stdout.contains("write refused"), "{stdout}");
    assert!(stdout.contains("read-only ok"), "{stdout}");

    // A quorum again: the server takes writes.
    let back = (0..3).find(|&i| i != alone).unwrap();
    ensemble.start(back);
    ensemble.wait_for_leader().await;
    let mut c = connect(&ensemble, alone).await;
    c.create("/rw", b"", CreateMode::Persistent).await.unwrap();
    let isro = four_letter(ensemble.members[alone].addr(), "isro").await;
    assert_eq!(isro.as_deref(), Some("rw"));
    assert_eq!(
        c.get("/new", false).await.err(),
        Some(ErrorCode::NoNode),
        "the refused write stays refused"
    );
}
