//! The client port: the listener, the per-address connection limit, and one
//! task per connection (`connection.rs`); the peer ports of an ensemble
//! (`peer.rs`).

mod connection;
pub mod peer;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::Config;
use crate::core::Event;

/// Counts open connections per client address, for `maxClientCnxns`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounts {
    by_ip: Mutex<HashMap<IpAddr, u32>>,
}

/// Released when a connection ends.
pub(crate) struct CountGuard {
    counts: Arc<ConnectionCounts>,
    ip: IpAddr,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        let mut map = self.counts.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl ConnectionCounts {
    fn admit(self: &Arc<Self>, ip: IpAddr, limit: u32) -> Option<CountGuard> {
        let mut map = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(CountGuard {
            counts: Arc::clone(self),
            ip,
        })
    }
}

/// Accepts connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: Arc<Config>,
    events: mpsc::Sender<Event>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let counts = Arc::new(ConnectionCounts::default());
    let next_id = AtomicU64::new(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote): (_, SocketAddr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: wait a little, keep serving.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(guard) = counts.admit(remote.ip(), config.max_client_cnxns) else {
            warn!(%remote, limit = config.max_client_cnxns, "too many connections from this address; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection::run(
            id,
            stream,
            remote,
            Arc::clone(&config),
            events.clone(),
            guard,
        ));
    }
    info!("listener stopped");
}
