//! Test support shared by the workspace's integration tests (feature
//! `testkit`): an in-process Zoo server on its own temporary data directory,
//! and Apache ZooKeeper 3.8 from Debian's package, started in a fresh
//! directory on a free loopback port, the reference Zoo is compared with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback port free at the time of asking, below the kernel's range of
/// ephemeral ports. A port from that range (what binding port 0 gives) may
/// become the local end of some outgoing connection before the server that
/// is to listen on it binds it, or binds it again after a restart; tests
/// that start several servers at once lost starts that way. Another process
/// taking the port in between makes the start fail visibly. A port is
/// handed out once per process, so that the servers of one test, or of
/// tests running side by side, never draw the same one.
pub fn free_port() -> u16 {
    use rand::Rng;
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let floor = 10_000.min(ephemeral_low / 2);
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(floor..ephemeral_low.max(floor + 1));
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    given.push(port);
    port
}

/// A Zoo server running in this process on 127.0.0.1, with its data in a
/// temporary directory removed on drop; stopped when dropped.
#[derive(Debug)]
pub struct ZooServer {
    pub addr: SocketAddr,
    pub data: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ZooServer {
    /// Starts `config` with its `dataDir` replaced by a fresh directory.
    pub async fn start(mut config: crate::Config) -> ZooServer {
        let data = tempfile::tempdir().expect("a temporary data directory");
        config.data_dir = data.path().to_path_buf();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let result = crate::run(listener, config, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = result {
                tracing::error!("test server failed: {e}");
            }
        });
        ZooServer {
            addr,
            data,
            stop: Some(stop),
        }
    }
}

impl Drop for ZooServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A standalone Apache ZooKeeper; killed and its directory removed on drop.
#[derive(Debug)]
pub struct ApacheZooKeeper {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl ApacheZooKeeper {
    /// Starts one with `tickTime` and TTL nodes enabled, and waits until it
    /// answers `srvr`. Panics (failing the test) if Java or the package is
    /// missing or it does not come up within a minute.
    pub async fn start(tick_time_ms: u32) -> ApacheZooKeeper {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("zoo-apache-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime={tick_time_ms}\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\n",
                dir.join("data").display()
            ),
        )
        .expect("zoo.cfg");
        let child = Command::new("java")
            .arg("-Dzookeeper.extendedTypesEnabled=true")
            .arg("-cp")
            .arg("/etc/zookeeper/conf:/usr/share/java/zookeeper.jar")
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("java and Debian's zookeeper package (scripts/setup.sh installs it)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let zk = ApacheZooKeeper { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !srvr_answers(addr).await {
            assert!(Instant::now() < deadline, "Apache ZooKeeper did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        zk
    }
}

async fn srvr_answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if stream.write_all(b"srvr").await.is_err() {
        return false;
    }
    let mut out = String::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut out)).await;
    matches!(read, Ok(Ok(_))) && out.contains("Mode: standalone")
}

impl Drop for ApacheZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
