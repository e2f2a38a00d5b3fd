//! What the recipe tests share: a Zoo server with short ticks, clients on
//! it, a proxy that can freeze or cut a client's connection, and the
//! four-letter words.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zoo_client::Client;
use zoo_server::testkit::ZooServer;

/// A Zoo server whose sessions can be as short as 200 ms (and at most 2 s),
/// answering every four-letter word (the tests read `wchp` and `mntr`).
pub async fn zoo_server() -> ZooServer {
    let config =
        zoo_server::Config::parse("tickTime=100\n4lw.commands.whitelist=*\n", "test").unwrap();
    ZooServer::start(config).await
}

pub async fn client(addr: SocketAddr) -> Client {
    client_with_timeout(addr, Duration::from_secs(4)).await
}

pub async fn client_with_timeout(addr: SocketAddr, session_timeout: Duration) -> Client {
    Client::builder(&addr.to_string())
        .session_timeout(session_timeout)
        .connect()
        .await
        .unwrap()
}

/// Sends a four-letter word, returns the answer.
pub async fn four_letter(addr: SocketAddr, word: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(word.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// `wchp` as path → number of sessions watching it.
pub async fn watched_paths(addr: SocketAddr) -> std::collections::BTreeMap<String, usize> {
    let mut watched = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in four_letter(addr, "wchp").await.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(path) = &current {
                *watched.entry(path.clone()).or_insert(0) += 1;
            }
        } else if !line.is_empty() {
            current = Some(line.to_string());
        }
    }
    watched
}

/// Polls `check` every 20 ms for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of a server. `freeze` stops forwarding in both
/// directions while keeping the connections open (a partition or a paused
/// peer, as the client sees it); `cut` closes every connection.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let proxy = Proxy {
            addr,
            frozen: frozen.clone(),
            generation: generation.clone(),
        };
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let mut cut = generation.subscribe();
                let frozen = frozen.clone();
                tokio::spawn(async move {
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    tokio::select! {
                        _ = pump(ri, wo, frozen.clone()) => {}
                        _ = pump(ro, wi, frozen) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }

    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
