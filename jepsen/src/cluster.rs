//! A cluster of real `zoo-server` processes on 127.0.0.1, each with its own
//! data directory and zoo.cfg, and every peer link through a [`LinkProxy`]
//! the harness controls: server i's zoo.cfg gives, for every other server j,
//! the address of the proxy for the link i→j, and its own real quorum port
//! for itself. Processes can be killed (SIGKILL), restarted, paused
//! (SIGSTOP) and resumed (SIGCONT); links can be blocked or delayed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use zoo_server::testkit::free_port;

use crate::proxy::{LinkProxy, LinkState};

/// How long one four-letter-word exchange may take before the server
/// counts as not answering (a paused server never answers).
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_millis(1500);

/// How a cluster is made.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub nodes: usize,
    pub server_bin: PathBuf,
    /// Where the servers' directories go (one `sN` folder each).
    pub dir: PathBuf,
    pub tick_ms: u64,
    /// zoo.cfg lines added to every server's configuration.
    pub extra_config: String,
}

/// One server.
#[derive(Debug)]
pub struct Node {
    pub id: u64,
    pub client_port: u16,
    pub quorum_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// The skew of its wall clock (`testOnly.clockOffsetMs`), 0 for none.
    clock_offset_ms: i64,
}

impl Node {
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }
}

/// The servers and the proxies between them.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// `proxies[from * n + to]`; `None` on the diagonal.
    proxies: Vec<Option<LinkProxy>>,
    options: ClusterOptions,
}

impl Cluster {
    /// Writes every server's configuration, starts the proxies and the
    /// servers; does not wait for a leader (`wait_healthy`).
    pub async fn start(options: ClusterOptions) -> Result<Cluster, String> {
        let n = options.nodes;
        if !(1..=9).contains(&n) {
            return Err(format!("{n} nodes: between 1 and 9, please"));
        }
        if !options.server_bin.is_file() {
            return Err(format!(
                "no zoo-server binary at {}",
                options.server_bin.display()
            ));
        }
        let io = |e: std::io::Error| e.to_string();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let id = i as u64 + 1;
            let dir = options.dir.join(format!("s{id}"));
            std::fs::create_dir_all(dir.join("data")).map_err(io)?;
            std::fs::write(dir.join("data/myid"), format!("{id}\n")).map_err(io)?;
            nodes.push(Node {
                id,
                client_port: free_port(),
                quorum_port: free_port(),
                dir,
                child: None,
                paused: false,
                clock_offset_ms: 0,
            });
        }
        let mut proxies = Vec::with_capacity(n * n);
        for from in 0..n {
            for (to, node) in nodes.iter().enumerate() {
                proxies.push(if from == to {
                    None
                } else {
                    let target = SocketAddr::from(([127, 0, 0, 1], node.quorum_port));
                    Some(LinkProxy::start(from, to, target).await.map_err(io)?)
                });
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            let mut cfg = format!(
                "tickTime={}\ninitLimit=10\nsyncLimit=5\n4lw.commands.whitelist=*\n\
                 dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n{}\n",
                options.tick_ms,
                node.dir.join("data").display(),
                node.client_port,
                options.extra_config.trim_end(),
            );
            for (j, other) in nodes.iter().enumerate() {
                let port = match &proxies[i * n + j] {
                    None => other.quorum_port,
                    Some(p) => p.addr().port(),
                };
                // Elections travel on the quorum port; the election port is
                // parsed for zoo.cfg compatibility only.
                let election = free_port();
                cfg.push_str(&format!("server.{}=127.0.0.1:{port}:{election}\n", j + 1));
            }
            std::fs::write(node.dir.join("zoo.cfg"), cfg).map_err(io)?;
        }
        let mut cluster = Cluster {
            nodes,
            proxies,
            options,
        };
        for i in 0..n {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn client_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.client_addr().to_string())
            .collect()
    }

    /// Starts server `i` (again), its log appended to `sN/server.log`.
    pub fn start_node(&mut self, i: usize) -> Result<(), String> {
        self.spawn(i, None)
    }

    /// Starts server `i` armed to abort at a named crash point
    /// (`ZOO_CRASH_AT=name:n`, honoured by builds with the `failpoints`
    /// feature, as the tests build it). It first stops the server if it
    /// runs.
    pub fn start_node_armed(&mut self, i: usize, crash_at: &str) -> Result<(), String> {
        self.kill_node(i);
        self.spawn(i, Some(crash_at))
    }

    fn spawn(&mut self, i: usize, crash_at: Option<&str>) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if let Some(child) = &mut node.child {
            // A server that ended on its own (a crash point) is started
            // again; a live one is left alone.
            if !matches!(child.try_wait(), Ok(Some(_))) {
                return Ok(());
            }
            node.child = None;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("server.log"))
            .map_err(|e| e.to_string())?;
        let mut command = Command::new(&self.options.server_bin);
        command
            .arg(node.dir.join("zoo.cfg"))
            .env("RUST_LOG", "info")
            .env_remove("ZOO_CRASH_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(point) = crash_at {
            command.env("ZOO_CRASH_AT", point);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting server {}: {e}", node.id))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Restarts server `i` (kill -9, then start) with its wall clock
    /// `offset_ms` off, through the test-only `testOnly.clockOffsetMs`;
    /// 0 sets it right.
    pub fn restart_with_clock_offset(&mut self, i: usize, offset_ms: i64) -> Result<(), String> {
        const KEY: &str = "testOnly.clockOffsetMs=";
        let path = self.nodes[i].dir.join("zoo.cfg");
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let mut cfg: String = text
            .lines()
            .filter(|l| !l.starts_with(KEY))
            .map(|l| format!("{l}\n"))
            .collect();
        if offset_ms != 0 {
            cfg.push_str(&format!("{KEY}{offset_ms}\n"));
        }
        std::fs::write(&path, cfg).map_err(|e| e.to_string())?;
        self.nodes[i].clock_offset_ms = offset_ms;
        self.kill_node(i);
        self.spawn(i, None)
    }

    /// kill -9 of server `i`, if it runs.
    pub fn kill_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    pub fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].paused
    }

    fn signal(&self, i: usize, signal: &str) -> Result<(), String> {
        let Some(child) = &self.nodes[i].child else {
            return Ok(());
        };
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .map_err(|e| format!("kill {signal}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} {}: {status}", child.id()))
        }
    }

    /// SIGSTOP.
    pub fn pause_node(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].child.is_some() && !self.nodes[i].paused {
            self.signal(i, "-STOP")?;
            self.nodes[i].paused = true;
        }
        Ok(())
    }

    /// SIGCONT.
    pub fn resume_node(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].paused {
            self.signal(i, "-CONT")?;
            self.nodes[i].paused = false;
        }
        Ok(())
    }

    /// Servers whose process ended on its own: (index, exit status).
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let Some(child) = &mut node.child {
                if let Ok(Some(status)) = child.try_wait() {
                    out.push((i, status.to_string()));
                }
            }
        }
        out
    }

    /// The last `lines` lines of server `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.nodes[i].dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn link(&self, from: usize, to: usize) -> Option<&LinkProxy> {
        self.proxies[from * self.len() + to].as_ref()
    }

    pub fn set_link(&self, from: usize, to: usize, state: LinkState) {
        if let Some(p) = self.link(from, to) {
            p.set(state);
        }
    }

    /// Blocks both directions between every pair of servers not in the same
    /// group; servers in no group keep all their links.
    pub fn partition(&self, groups: &[Vec<usize>]) {
        let group_of = |i: usize| groups.iter().position(|g| g.contains(&i));
        for from in 0..self.len() {
            for to in 0..self.len() {
                if let (Some(a), Some(b)) = (group_of(from), group_of(to)) {
                    if a != b {
                        self.set_link(
                            from,
                            to,
                            LinkState {
                                blocked: true,
                                delay_ms: 0,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Blocks both directions between `a` and `b`.
    pub fn cut(&self, a: usize, b: usize) {
        let blocked = LinkState {
            blocked: true,
            delay_ms: 0,
        };
        self.set_link(a, b, blocked);
        self.set_link(b, a, blocked);
    }

    /// Every link open and without delay.
    pub fn heal_network(&self) {
        for p in self.proxies.iter().flatten() {
            p.set(LinkState::default());
        }
    }

    /// Resumes paused servers, restarts stopped ones, sets skewed clocks
    /// right (a restart) and heals the network.
    pub fn heal_all(&mut self) -> Result<(), String> {
        self.heal_network();
        for i in 0..self.len() {
            self.resume_node(i)?;
            if self.nodes[i].clock_offset_ms != 0 {
                self.restart_with_clock_offset(i, 0)?;
            }
            self.start_node(i)?;
        }
        Ok(())
    }

    /// What `srvr` says of server `i`'s mode; `None` while it does not
    /// answer or does not serve.
    pub async fn mode(&self, i: usize) -> Option<String> {
        if !self.is_running(i) || self.is_paused(i) {
            return None;
        }
        let text = four_letter(self.nodes[i].client_addr(), "srvr").await?;
        text.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// The zxid `srvr` reports for server `i`.
    pub async fn zxid(&self, i: usize) -> Option<i64> {
        let text = four_letter(self.nodes[i].client_addr(), "srvr").await?;
        let hex = text.lines().find_map(|l| l.strip_prefix("Zxid: "))?;
        i64::from_str_radix(hex.trim().trim_start_matches("0x"), 16).ok()
    }

    /// The one server that says it leads, if exactly one does.
    pub async fn leader(&self) -> Option<usize> {
        let mut leaders = Vec::new();
        for i in 0..self.len() {
            if matches!(self.mode(i).await.as_deref(), Some("leader" | "standalone")) {
                leaders.push(i);
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Waits until every server runs and serves, with exactly one leader;
    /// returns the leader, or what was wrong at the deadline.
    pub async fn wait_healthy(&self, patience: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + patience;
        loop {
            let mut modes = Vec::new();
            for i in 0..self.len() {
                modes.push(self.mode(i).await);
            }
            let leaders: Vec<usize> = (0..self.len())
                .filter(|&i| matches!(modes[i].as_deref(), Some("leader" | "standalone")))
                .collect();
            let serving = modes
                .iter()
                .all(|m| matches!(m.as_deref(), Some("leader" | "follower" | "standalone")));
            if serving && leaders.len() == 1 {
                return Ok(leaders[0]);
            }
            if Instant::now() >= deadline {
                return Err(format!("after {patience:?}, servers' modes: {modes:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// Stops every server.
    pub fn stop(&mut self) {
        for i in 0..self.len() {
            self.kill_node(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a four-letter word and reads the whole answer; `None` if the
/// server does not answer in time.
pub async fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(word.as_bytes()).await.ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(FOUR_LETTER_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}
