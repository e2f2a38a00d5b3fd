//! A test server on 127.0.0.1:0 and a raw protocol client built on zoo-wire.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use zoo_server::Config;
use zoo_wire::*;

/// A running server on a temporary data directory; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub inner: zoo_server::testkit::ZooServer,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let inner = zoo_server::testkit::ZooServer::start(config).await;
        TestServer {
            addr: inner.addr,
            inner,
        }
    }

    pub async fn default() -> TestServer {
        TestServer::start(test_config()).await
    }
}

/// The `zoo-server` binary, prepared to serve `dir/data` on 127.0.0.1:`port`
/// with `settings` (zoo.cfg lines) added; the caller picks stderr and spawns.
pub fn server_command(dir: &std::path::Path, port: u16, settings: &str) -> std::process::Command {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n{settings}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_zoo-server"));
    command
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .env_remove("ZOO_CRASH_AT")
        .stdout(std::process::Stdio::null());
    command
}

/// Waits until the server on `port` answers `srvr` with its state; fails if
/// `child` exits first or it takes more than 30 s.
pub async fn wait_up(port: u16, child: &mut std::process::Child) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
            let mut out = String::new();
            if s.write_all(b"srvr").await.is_ok()
                && s.read_to_string(&mut out).await.is_ok()
                && out.contains("Zxid")
            {
                return;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("zoo-server exited while starting: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "zoo-server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Short ticks so that expiry tests are quick; every four-letter word on.
pub fn test_config() -> Config {
    let mut config = Config::parse("tickTime=100\n4lw.commands.whitelist=*\n", "test").unwrap();
    config.extended_types_enabled = true;
    config
}

/// One connection speaking the protocol by hand.
pub struct RawClient {
    pub framed: Framed<TcpStream, FrameCodec>,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub timeout_ms: i32,
    next_xid: i32,
    pending: VecDeque<(i32, OpCode)>,
    /// Notifications received while waiting for replies.
    pub events: Vec<(i64, WatcherEvent)>,
}

pub const WAIT: Duration = Duration::from_secs(5);

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient::connect_with(addr, 0, vec![0; 16], 10_000)
            .await
            .expect("session")
    }

    /// Connects with the given session (0 for new); `None` if refused.
    pub async fn connect_with(
        addr: SocketAddr,
        session_id: i64,
        password: Vec<u8>,
        timeout_ms: i32,
    ) -> Option<RawClient> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut framed = Framed::new(stream, FrameCodec::default());
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id,
            passwd: password.into(),
            read_only: Some(false),
        };
        framed.send(&request).await.unwrap();
        let mut payload = tokio::time::timeout(WAIT, framed.next())
            .await
            .ok()??
            .ok()?;
        let response = ConnectResponse::decode(&mut payload).unwrap();
        if response.timeout_ms <= 0 {
            return None;
        }
        Some(RawClient {
            framed,
            session_id: response.session_id,
            password: response.passwd.to_vec(),
            timeout_ms: response.timeout_ms,
            next_xid: 1,
            pending: VecDeque::new(),
            events: Vec::new(),
        })
    }

    /// Sends a request; auth goes with its fixed xid -4, as clients send it.
    pub async fn send(&mut self, body: RequestBody) -> i32 {
        let op = body.opcode();
        let xid = if op == OpCode::Auth {
            zoo_wire::opcode::xid::AUTH
        } else {
            self.next_xid += 1;
            self.next_xid - 1
        };
        self.framed.send(&Request::new(xid, body)).await.unwrap();
        if xid > 0 {
            self.pending.push_back((xid, op));
        }
        xid
    }

    /// Sends hand-made payload bytes, expecting a reply with `xid`.
    pub async fn send_raw_as(&mut self, xid: i32, op: OpCode, payload: &[u8]) {
        self.framed.send(payload).await.unwrap();
        self.pending.push_back((xid, op));
    }

    pub async fn send_raw(&mut self, payload: &[u8]) {
        self.framed.send(payload).await.unwrap();
    }

    /// The next message from the server, or `None` when it closed.
    pub async fn next_message(&mut self) -> Option<ServerMessage> {
        let frame = tokio::time::timeout(WAIT, self.framed.next())
            .await
            .expect("server silent")?;
        let mut payload: BytesMut = frame.ok()?;
        let pending = self.pending.clone();
        let message = ServerMessage::decode(&mut payload, |xid| {
            pending.iter().find(|(x, _)| *x == xid).map(|(_, op)| *op)
        })
        .unwrap();
        if let ServerMessage::Reply { header, .. } = &message {
            if header.xid > 0 {
                let (expected, _) = self
                    .pending
                    .pop_front()
                    .expect("a reply with nothing pending");
                assert_eq!(header.xid, expected, "replies out of order");
            }
        }
        Some(message)
    }

    /// Sends a request and waits for its reply, keeping notifications.
    pub async fn call(&mut self, body: RequestBody) -> (ReplyHeader, Option<ResponseBody>) {
        let xid = self.send(body).await;
        loop {
            match self.next_message().await.expect("connection closed") {
                ServerMessage::Notification { zxid, event } => self.events.push((zxid, event)),
                ServerMessage::Reply { header, body } if header.xid == xid => {
                    return (header, body)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub async fn err(&mut self, body: RequestBody) -> ErrorCode {
        self.call(body).await.0.err
    }

    pub async fn create(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, ErrorCode> {
        let (h, body) = self
            .call(RequestBody::Create(CreateRequest {
                path: path.into(),
                data: Some(bytes::Bytes::copy_from_slice(data)),
                acl: Some(Acl::open_unsafe()),
                flags: mode.as_i32(),
            }))
            .await;
        match body {
            Some(ResponseBody::Create(r)) => Ok(r.path),
            _ => Err(h.err),
        }
    }

    pub async fn get(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<(Option<bytes::Bytes>, Stat), ErrorCode> {
        let (h, body) = self
            .call(RequestBody::GetData(GetDataRequest {
                path: path.into(),
                watch,
            }))
            .await;
        match body {
            Some(ResponseBody::GetData(r)) => Ok((r.data, r.stat)),
            _ => Err(h.err),
        }
    }

    pub async fn stat(&mut self, path: &str) -> Stat {
        self.get(path, false).await.expect("node exists").1
    }

    pub async fn set(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, ErrorCode> {
        let (h, body) = self
            .call(RequestBody::SetData(SetDataRequest {
                path: path.into(),
                data: Some(bytes::Bytes::copy_from_slice(data)),
                version,
            }))
            .await;
        match body {
            Some(ResponseBody::SetData(r)) => Ok(r.stat),
            _ => Err(h.err),
        }
    }

    pub async fn delete(&mut self, path: &str, version: i32) -> ErrorCode {
        self.err(RequestBody::Delete(DeleteRequest {
            path: path.into(),
            version,
        }))
        .await
    }

    pub async fn children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, ErrorCode> {
        let (h, body) = self
            .call(RequestBody::GetChildren(GetChildrenRequest {
                path: path.into(),
                watch,
            }))
            .await;
        match body {
            Some(ResponseBody::GetChildren(r)) => {
                let mut c = r.children;
                c.sort();
                Ok(c)
            }
            _ => Err(h.err),
        }
    }

    /// The notifications received so far, as (type, path).
    pub fn seen(&self) -> Vec<(EventType, &str)> {
        self.events
            .iter()
            .map(|(_, e)| (e.event_type, e.path.as_str()))
            .collect()
    }

    /// The paths of the notifications received so far.
    pub fn paths_seen(&self) -> Vec<&str> {
        self.events.iter().map(|(_, e)| e.path.as_str()).collect()
    }

    /// Waits for `n` notifications, then round-trips a request so that any
    /// further one already sent would have arrived too.
    pub async fn wait_exactly(&mut self, n: usize) {
        self.wait_events(n).await;
        self.call(RequestBody::Sync(SyncRequest { path: "/".into() }))
            .await;
    }

    /// Waits until `n` notifications have arrived.
    pub async fn wait_events(&mut self, n: usize) {
        while self.events.len() < n {
            match self
                .next_message()
                .await
                .expect("closed while waiting for events")
            {
                ServerMessage::Notification { zxid, event } => self.events.push((zxid, event)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// Sends a four-letter word and reads the whole answer.
pub async fn four_letter(addr: SocketAddr, word: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(word.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// Runs `command` to its end off the test's threads; fails the test unless
/// it succeeds, and returns what it printed.
pub async fn run_ok(mut command: std::process::Command) -> String {
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A script of this repository's `scripts/`.
pub fn script(name: &str) -> std::path::PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    std::path::Path::new(&manifest)
        .join("../scripts")
        .join(name)
}
