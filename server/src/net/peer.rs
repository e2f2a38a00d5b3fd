//! The peer ports: how servers of one ensemble reach each other over TCP.
//!
//! Every ordered pair of servers has its own connection, dialled by the
//! sender: server A's messages to B travel on a connection A opened, B's to A
//! on one B opened. Each connection is therefore a one-way FIFO stream, which
//! is all ZAB asks of a channel; a lost connection loses what was queued on
//! it, and the quorum messages' sequence numbers make that loss visible to
//! the state machine as a broken link (see `wire::peer`).
//!
//! A dialler opens with a handshake frame (`int version`, `long id`). The
//! listener refuses peers that speak another version or are not members of
//! the ensemble, and keeps one connection per member: a newer one from the
//! same id (the peer restarted) replaces the older. Frames after the
//! handshake are [`PeerMessage`]s; one that does not decode ends the
//! connection, since the stream can no longer be trusted.
//!
//! Everything is bounded: each outgoing queue (a full queue drops the
//! message, as a lossy link would), the incoming channel (a slow state
//! machine slows the sockets), the frame length, the connections waiting for
//! a handshake, and the time a handshake may take.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, info, warn};
use zoo_wire::codec::{write_frame, FrameCodec};
use zoo_wire::peer::{PeerMessage, ServerId, PEER_PROTOCOL_VERSION};

/// How one peer transport is set up.
#[derive(Debug, Clone)]
pub struct PeerNetConfig {
    /// This server's id, sent in every handshake.
    pub id: ServerId,
    /// The other members and where they listen (`host:port`).
    pub peers: Vec<(ServerId, String)>,
    /// The longest frame accepted from a peer.
    pub max_frame_len: usize,
    /// Messages queued per peer before new ones are dropped.
    pub queue_len: usize,
    /// Messages received and not yet taken by the state machine.
    pub inbound_len: usize,
    /// How long a dial or a handshake may take.
    pub connect_timeout: Duration,
}

impl PeerNetConfig {
    pub fn new(id: ServerId, peers: Vec<(ServerId, String)>) -> Self {
        PeerNetConfig {
            id,
            peers,
            // A DIFF carries at most MAX_ENTRIES_PER_MESSAGE entries of at most
            // jute.maxbuffer each; larger messages are the sender's bug.
            max_frame_len: 64 << 20,
            queue_len: 4096,
            inbound_len: 4096,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters, for `mntr` and the tests.
#[derive(Debug, Default)]
pub struct PeerNetStats {
    /// Messages dropped because a peer's queue was full or its link broke.
    pub dropped: AtomicU64,
    /// Incoming connections refused at the handshake.
    pub refused: AtomicU64,
    /// Connections that ended on a frame that did not decode.
    pub malformed: AtomicU64,
}

/// The running transport. Dropping it stops every task.
pub struct PeerNet {
    queues: HashMap<ServerId, mpsc::Sender<Bytes>>,
    stats: Arc<PeerNetStats>,
    local_addr: SocketAddr,
    _tasks: JoinSet<()>,
}

impl std::fmt::Debug for PeerNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNet")
            .field("local_addr", &self.local_addr)
            .field("peers", &self.queues.len())
            .finish_non_exhaustive()
    }
}

/// The live inbound link of each member: its connection number and the
/// signal that tells its reader a newer link replaced it.
type LiveLinks = HashMap<ServerId, (u64, Arc<Notify>)>;

/// What arrives from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    Message(PeerMessage<Bytes>),
    /// Its connection to this server closed (and no newer one replaced
    /// it): the peer stopped, or the network between broke.
    Closed,
}

/// One event from a peer, tagged with who it is.
pub type Inbound = (ServerId, PeerEvent);

impl PeerNet {
    /// Starts accepting on `listener` and dialling every peer.
    pub fn start(
        listener: TcpListener,
        config: PeerNetConfig,
    ) -> io::Result<(PeerNet, mpsc::Receiver<Inbound>)> {
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(PeerNetStats::default());
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_len.max(1));
        let mut tasks = JoinSet::new();
        let config = Arc::new(config);
        tasks.spawn(accept_loop(
            listener,
            Arc::clone(&config),
            inbound_tx,
            Arc::clone(&stats),
        ));
        let mut queues = HashMap::new();
        for (peer, address) in &config.peers {
            if *peer == config.id {
                continue;
            }
            let (tx, rx) = mpsc::channel(config.queue_len.max(1));
            queues.insert(*peer, tx);
            tasks.spawn(dial_loop(
                *peer,
                address.clone(),
                Arc::clone(&config),
                rx,
                Arc::clone(&stats),
            ));
        }
        Ok((
            PeerNet {
                queues,
                stats,
                local_addr,
                _tasks: tasks,
            },
            inbound_rx,
        ))
    }

    /// Where this transport accepts connections.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> &PeerNetStats {
        &self.stats
    }

    /// Queues `message` for `to`. False when it was dropped: an unknown
    /// peer or a full queue. Loss is safe: ZAB treats it as a broken link.
    pub fn send(&self, to: ServerId, message: &PeerMessage<Bytes>) -> bool {
        let Some(queue) = self.queues.get(&to) else {
            return false;
        };
        let mut frame = BytesMut::new();
        write_frame(&mut frame, &Encoded(message));
        if queue.try_send(frame.freeze()).is_ok() {
            true
        } else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

struct Encoded<'a>(&'a PeerMessage<Bytes>);

impl zoo_wire::codec::Payload for Encoded<'_> {
    fn encode_payload(&self, out: &mut BytesMut) {
        self.0.encode(out);
    }
}

/// The handshake frame's payload.
fn handshake(id: ServerId) -> BytesMut {
    let mut frame = BytesMut::with_capacity(16);
    frame.put_i32(12);
    frame.put_i32(PEER_PROTOCOL_VERSION);
    frame.put_u64(id);
    frame
}

/// Reads a handshake payload: the peer's id, or why it is refused.
fn parse_handshake(mut payload: &[u8], config: &PeerNetConfig) -> Result<ServerId, String> {
    if payload.len() != 12 {
        return Err(format!("handshake of {} bytes, expected 12", payload.len()));
    }
    let version = payload.get_i32();
    if version != PEER_PROTOCOL_VERSION {
        return Err(format!(
            "peer protocol version {version}, this server speaks {PEER_PROTOCOL_VERSION}"
        ));
    }
    let id = payload.get_u64();
    if id == config.id || !config.peers.iter().any(|(p, _)| *p == id) {
        return Err(format!(
            "server id {id} is not another member of this ensemble"
        ));
    }
    Ok(id)
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<PeerNetConfig>,
    inbound: mpsc::Sender<Inbound>,
    stats: Arc<PeerNetStats>,
) {
    // Connections still in their handshake: a few per member.
    let pending = Arc::new(Semaphore::new(2 * config.peers.len() + 4));
    // The live connection of each member, so that a newer one replaces it.
    let current: Arc<Mutex<LiveLinks>> = Arc::default();
    let mut readers = JoinSet::new();
    let mut next_conn = 0u64;
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!("peer accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = readers.join_next(), if !readers.is_empty() => continue,
        };
        let Ok(permit) = Arc::clone(&pending).try_acquire_owned() else {
            warn!(%remote, "too many peer connections waiting for a handshake; closing");
            stats.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        next_conn += 1;
        let conn = next_conn;
        let (config, inbound, stats, current) = (
            Arc::clone(&config),
            inbound.clone(),
            Arc::clone(&stats),
            Arc::clone(&current),
        );
        readers.spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut frames = FramedRead::new(stream, FrameCodec::new(config.max_frame_len));
            let first = tokio::time::timeout(config.connect_timeout, frames.next()).await;
            let peer = match first {
                Ok(Some(Ok(payload))) => parse_handshake(&payload, &config),
                Ok(Some(Err(e))) => Err(format!("bad handshake frame: {e}")),
                Ok(None) => Err("closed before its handshake".to_string()),
                Err(_) => Err("no handshake in time".to_string()),
            };
            drop(permit);
            let peer = match peer {
                Ok(peer) => peer,
                Err(why) => {
                    warn!(%remote, "refused peer connection: {why}");
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let replaced = Arc::new(Notify::new());
            if let Some((_, older)) = lock(&current).insert(peer, (conn, Arc::clone(&replaced))) {
                // A newer connection from the same peer replaces the older.
                older.notify_one();
            }
            info!(%remote, peer, "peer connected");
            loop {
                let next = tokio::select! {
                    next = frames.next() => next,
                    _ = replaced.notified() => break,
                };
                let payload = match next {
                    Some(Ok(payload)) => payload,
                    Some(Err(e)) => {
                        warn!(peer, "peer stream broke: {e}");
                        stats.malformed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    None => break,
                };
                match PeerMessage::decode(&payload) {
                    Ok(message) => {
                        if inbound
                            .send((peer, PeerEvent::Message(message)))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        warn!(peer, "malformed peer message, closing the link: {e}");
                        stats.malformed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            let was_current = {
                let mut current = lock(&current);
                let was = current.get(&peer).is_some_and(|(c, _)| *c == conn);
                if was {
                    current.remove(&peer);
                }
                was
            };
            debug!(peer, "peer connection closed");
            if was_current {
                let _ = inbound.send((peer, PeerEvent::Closed)).await;
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn dial_loop(
    peer: ServerId,
    address: String,
    config: Arc<PeerNetConfig>,
    mut queue: mpsc::Receiver<Bytes>,
    stats: Arc<PeerNetStats>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let stream = match dial(&address, &config).await {
            Ok(stream) => stream,
            Err(e) => {
                debug!(peer, %address, "cannot reach peer: {e}");
                // What waited for this peer is stale by the time it is back.
                while queue.try_recv().is_ok() {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let mut frames = FramedWrite::new(stream, RawFrames);
        loop {
            let Some(frame) = queue.recv().await else {
                return; // the transport was dropped
            };
            if let Err(e) = frames.send(frame).await {
                debug!(peer, "peer link lost: {e}");
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
}

async fn dial(address: &str, config: &PeerNetConfig) -> io::Result<TcpStream> {
    let connect = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        stream.write_all(&handshake(config.id)).await?;
        Ok(stream)
    };
    tokio::time::timeout(config.connect_timeout, connect)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "dial timed out")))
}

/// Writes frames that are already length-prefixed.
struct RawFrames;

impl tokio_util::codec::Encoder<Bytes> for RawFrames {
    type Error = io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use zoo_wire::peer::{Notification, PeerState, QuorumBody, QuorumMessage, Vote};

    fn notification(round: u64) -> PeerMessage<Bytes> {
        PeerMessage::Notification(Notification {
            round,
            state: PeerState::Looking,
            vote: Vote {
                epoch: 1,
                zxid: 1 << 32,
                leader: 2,
            },
        })
    }

    /// Fails (instead of hanging) when the server keeps the stream open.
    async fn assert_closed(stream: &mut TcpStream) {
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        assert_eq!(read.expect("the server closes the stream").unwrap_or(0), 0);
    }

    async fn bind() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        (listener, addr)
    }

    /// Sends until one arrives (the dialler may not be connected yet), then
    /// returns what arrived.
    async fn first_delivery(
        net: &PeerNet,
        to: ServerId,
        inbox: &mut mpsc::Receiver<Inbound>,
    ) -> Inbound {
        for round in 0..200 {
            net.send(to, &notification(round));
            if let Ok(Some(got)) =
                tokio::time::timeout(Duration::from_millis(50), inbox.recv()).await
            {
                return got;
            }
        }
        panic!("nothing was delivered");
    }

    #[tokio::test]
    async fn messages_arrive_in_order_both_ways() {
        let (l1, a1) = bind().await;
        let (l2, a2) = bind().await;
        let members = vec![(1, a1), (2, a2)];
        let (n1, mut in1) = PeerNet::start(l1, PeerNetConfig::new(1, members.clone())).unwrap();
        let (n2, mut in2) = PeerNet::start(l2, PeerNetConfig::new(2, members)).unwrap();
        let (from, _) = first_delivery(&n1, 2, &mut in2).await;
        assert_eq!(from, 1);
        // Drain the warm-up notifications, then a numbered stream must
        // arrive whole and in order.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), in2.recv()).await {
        }
        for seq in 0..500u64 {
            let m = PeerMessage::Quorum(QuorumMessage {
                link: 1,
                seq,
                body: QuorumBody::Ack { zxid: seq as i64 },
            });
            assert!(n1.send(2, &m));
        }
        for seq in 0..500u64 {
            let (from, m) = in2.recv().await.unwrap();
            assert_eq!(from, 1);
            match m {
                PeerEvent::Message(PeerMessage::Quorum(q)) => assert_eq!(q.seq, seq),
                other => panic!("unexpected {other:?}"),
            }
        }
        let (from, _) = first_delivery(&n2, 1, &mut in1).await;
        assert_eq!(from, 2);
        assert!(!n1.send(7, &notification(0)), "unknown peers are refused");
    }

    #[tokio::test]
    async fn strangers_and_garbage_are_refused_and_members_still_get_through() {
        let (l1, a1) = bind().await;
        let (l2, a2) = bind().await;
        let members = vec![(1, a1.clone()), (2, a2)];
        let (_n1, mut in1) = PeerNet::start(l1, PeerNetConfig::new(1, members.clone())).unwrap();

        // A server that is not a member.
        let mut stranger = TcpStream::connect(&a1).await.unwrap();
        stranger.write_all(&handshake(9)).await.unwrap();
        assert_closed(&mut stranger).await;
        // Another protocol version.
        let mut old = TcpStream::connect(&a1).await.unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(12);
        frame.put_i32(PEER_PROTOCOL_VERSION + 1);
        frame.put_u64(2);
        old.write_all(&frame).await.unwrap();
        assert_closed(&mut old).await;
        // A member whose stream turns to garbage after the handshake.
        let mut broken = TcpStream::connect(&a1).await.unwrap();
        broken.write_all(&handshake(2)).await.unwrap();
        broken.write_all(&[0, 0, 0, 3, 1, 2, 3]).await.unwrap();
        assert_closed(&mut broken).await;
        // A frame above the limit.
        let mut huge = TcpStream::connect(&a1).await.unwrap();
        huge.write_all(&handshake(2)).await.unwrap();
        huge.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
        assert_closed(&mut huge).await;

        let stats = _n1.stats();
        assert_eq!(stats.refused.load(Ordering::Relaxed), 2);
        assert_eq!(stats.malformed.load(Ordering::Relaxed), 2);
        // No message was delivered; the members' broken links were reported.
        while let Ok(event) = in1.try_recv() {
            assert_eq!(event, (2, PeerEvent::Closed));
        }

        // The real member 2 still gets through.
        let (n2, _in2) = PeerNet::start(l2, PeerNetConfig::new(2, members)).unwrap();
        let (from, _) = first_delivery(&n2, 1, &mut in1).await;
        assert_eq!(from, 2);
    }

    #[tokio::test]
    async fn a_restarted_peer_is_reached_again() {
        let (l1, a1) = bind().await;
        let (l2, a2) = bind().await;
        let members = vec![(1, a1), (2, a2.clone())];
        let (n1, _in1) = PeerNet::start(l1, PeerNetConfig::new(1, members.clone())).unwrap();
        let (n2, mut in2) = PeerNet::start(l2, PeerNetConfig::new(2, members.clone())).unwrap();
        first_delivery(&n1, 2, &mut in2).await;

        // Peer 2 goes away; sends to it are lost, not queued without bound.
        drop((n2, in2));
        tokio::time::sleep(Duration::from_millis(100)).await;
        for round in 0..10_000 {
            n1.send(2, &notification(round));
        }
        assert!(n1.stats().dropped.load(Ordering::Relaxed) > 0);

        // Back on the same port: the dialler reconnects.
        let l2 = TcpListener::bind(&a2).await.unwrap();
        let (_n2, mut in2) = PeerNet::start(l2, PeerNetConfig::new(2, members)).unwrap();
        let (from, _) = first_delivery(&n1, 2, &mut in2).await;
        assert_eq!(from, 1);
    }

    #[tokio::test]
    async fn a_newer_connection_from_a_member_replaces_the_older() {
        let (l1, a1) = bind().await;
        let members = vec![(1, a1.clone()), (2, "127.0.0.1:1".to_string())];
        let (_n1, mut in1) = PeerNet::start(l1, PeerNetConfig::new(1, members)).unwrap();
        let mut older = TcpStream::connect(&a1).await.unwrap();
        older.write_all(&handshake(2)).await.unwrap();
        let mut frame = BytesMut::new();
        write_frame(&mut frame, &Encoded(&notification(41)));
        older.write_all(&frame).await.unwrap();
        // Delivered, so the older link is registered before the newer one.
        assert_eq!(
            in1.recv().await.unwrap(),
            (2, PeerEvent::Message(notification(41)))
        );
        let mut newer = TcpStream::connect(&a1).await.unwrap();
        newer.write_all(&handshake(2)).await.unwrap();
        assert_closed(&mut older).await;
        let mut frame = BytesMut::new();
        write_frame(&mut frame, &Encoded(&notification(42)));
        newer.write_all(&frame).await.unwrap();
        let (from, m) = in1.recv().await.unwrap();
        assert_eq!((from, m), (2, PeerEvent::Message(notification(42))));
        // The replaced link's end was not reported; the current one's is.
        drop(newer);
        assert_eq!(in1.recv().await.unwrap(), (2, PeerEvent::Closed));
    }
}
