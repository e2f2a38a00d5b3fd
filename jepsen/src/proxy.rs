//! A userspace TCP proxy for one directed peer link, so that partitions need
//! no root. Zoo servers dial each other on the quorum port and every ordered
//! pair of servers has its own connection (A's messages to B travel on a
//! connection A opened), so the proxy for the link A→B carries exactly what
//! A sends to B: blocking it is one-way loss, blocking both directions of a
//! pair is a partition.
//!
//! A blocked link drops its live connections and closes new ones as soon as
//! they are accepted. A delayed link holds every chunk for the delay before
//! passing it on, in order.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Chunks a delayed link may hold before it stops reading (backpressure).
const DELAY_QUEUE_CHUNKS: usize = 4096;

/// Bytes read per chunk.
const CHUNK_BYTES: usize = 64 * 1024;

/// What a link does to its traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LinkState {
    /// Connections dropped and refused.
    pub blocked: bool,
    /// Added latency in the link's direction.
    pub delay_ms: u64,
}

/// One link's proxy: listens on 127.0.0.1 and forwards to `target`.
#[derive(Debug)]
pub struct LinkProxy {
    pub from: usize,
    pub to: usize,
    listen: SocketAddr,
    state: watch::Sender<LinkState>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// Binds a loopback port for the link `from`→`to` and starts forwarding.
    pub async fn start(from: usize, to: usize, target: SocketAddr) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let listen = listener.local_addr()?;
        let (state, state_rx) = watch::channel(LinkState::default());
        let task = tokio::spawn(accept_loop(listener, target, state_rx));
        Ok(LinkProxy {
            from,
            to,
            listen,
            state,
            task,
        })
    }

    /// Where the dialling server is told the other one listens.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn set(&self, state: LinkState) {
        self.state.send_replace(state);
    }

    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, state: watch::Receiver<LinkState>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        if state.borrow().blocked {
            drop(inbound);
            continue;
        }
        connections.spawn(forward(inbound, target, state.clone()));
    }
}

/// Forwards one connection until either side closes or the link blocks.
async fn forward(inbound: TcpStream, target: SocketAddr, mut state: watch::Receiver<LinkState>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let delay = state.clone();
    let blocked = async {
        loop {
            if state.borrow_and_update().blocked {
                return;
            }
            if state.changed().await.is_err() {
                // The proxy is gone: stop forwarding too.
                return;
            }
        }
    };
    tokio::select! {
        _ = blocked => {}
        _ = pump(in_read, out_write, Some(delay)) => {}
        _ = pump(out_read, in_write, None) => {}
    }
}

/// Copies one direction; with `delay` set, each chunk waits for the link's
/// delay at the time it was read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Option<watch::Receiver<LinkState>>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(DELAY_QUEUE_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let delay_ms = delay.as_ref().map_or(0, |s| s.borrow().delay_ms);
            let due = Instant::now() + Duration::from_millis(delay_ms);
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    // When the reader ends, the writer drains what is queued, then ends.
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> Option<Duration> {
        let started = std::time::Instant::now();
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        (&buf == b"ping").then(|| started.elapsed())
    }

    #[tokio::test]
    async fn forwards_blocks_heals_and_delays() {
        let target = echo_server().await;
        let proxy = LinkProxy::start(0, 1, target).await.unwrap();
        assert!(round_trip(proxy.addr()).await.is_some(), "open link");

        // A live connection is cut when the link blocks.
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        live.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        live.read_exact(&mut one).await.unwrap();
        proxy.set(LinkState {
            blocked: true,
            delay_ms: 0,
        });
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), live.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        assert!(round_trip(proxy.addr()).await.is_none(), "blocked link");

        proxy.set(LinkState {
            blocked: false,
            delay_ms: 300,
        });
        let took = round_trip(proxy.addr()).await.expect("delayed link");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        proxy.set(LinkState::default());
        let took = round_trip(proxy.addr()).await.expect("healed link");
        assert!(took < Duration::from_millis(300), "{took:?}");
    }
}
