//! One client connection: frames in, requests to the core, frames out.
//!
//! Bytes stop here: the reader decodes each frame into a `Request` (or
//! answers a bad one as ZooKeeper does, section 5.7), and the writer drains
//! the bounded queue of encoded frames the core fills.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tracing::{debug, info};
use zoo_wire::{ClientFrame, ConnectRequest, Record, Request, RequestError, ServerCodec};

use super::CountGuard;
use crate::config::Config;
use crate::core::{Event, Outbound};

/// How long a connection may stay without a session
/// (`zookeeper.nio.sessionlessCnxnTimeout`).
const SESSIONLESS_TIMEOUT: Duration = Duration::from_secs(10);

/// Replies gathered into one socket write, at most (a larger frame is
/// written alone).
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// How long a closing connection may take to flush its last frames.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn run(
    id: u64,
    stream: TcpStream,
    remote: SocketAddr,
    config: Arc<Config>,
    events: mpsc::Sender<Event>,
    _guard: CountGuard,
) {
    let (read_half, mut write_half) = stream.into_split();
    let mut frames = FramedRead::new(read_half, ServerCodec::new(config.max_frame_len));
    let (out_tx, mut out_rx) = mpsc::channel::<Outbound>(config.max_queued_frames_per_connection);

    // The first frame: a four-letter word or a ConnectRequest.
    let first = match tokio::time::timeout(SESSIONLESS_TIMEOUT, frames.next()).await {
        Ok(Some(Ok(frame))) => frame,
        Ok(Some(Err(e))) => {
            debug!(%remote, "bad first frame: {e}");
            return;
        }
        Ok(None) | Err(_) => return,
    };
    let request = match first {
        ClientFrame::FourLetterWord(word, arg) => {
            let (reply, answer) = oneshot::channel();
            if events
                .send(Event::FourLetter {
                    word,
                    arg,
                    remote,
                    reply,
                })
                .await
                .is_ok()
            {
                if let Ok(text) = answer.await {
                    let _ = write_half.write_all(text.as_bytes()).await;
                }
            }
            let _ = write_half.shutdown().await;
            return;
        }
        ClientFrame::Frame(mut payload) => match ConnectRequest::decode(&mut payload) {
            Ok(request) => request,
            Err(e) => {
                info!(%remote, "malformed ConnectRequest, closing: {e}");
                return;
            }
        },
    };
    if events
        .send(Event::Connect {
            conn: id,
            remote,
            out: out_tx,
            request,
        })
        .await
        .is_err()
    {
        return;
    }

    // Frames that are already queued go out in one write: under pipelined
    // load that is one syscall for many replies.
    let writer = async {
        let mut batch = BytesMut::with_capacity(WRITE_BATCH_BYTES);
        let mut closing = false;
        while let Some(item) = out_rx.recv().await {
            let mut next = Some(item);
            while let Some(item) = next.take() {
                match item {
                    Outbound::Frame(bytes) => batch.extend_from_slice(&bytes),
                    Outbound::Close => {
                        closing = true;
                        break;
                    }
                }
                if batch.len() < WRITE_BATCH_BYTES {
                    next = out_rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                if write_half.write_all(&batch).await.is_err() {
                    break;
                }
                batch.clear();
            }
            if closing {
                break;
            }
        }
        let _ = write_half.shutdown().await;
    };

    let reader = async {
        while let Some(frame) = frames.next().await {
            let payload = match frame {
                Ok(ClientFrame::Frame(payload)) => payload,
                Ok(ClientFrame::FourLetterWord(..)) => break,
                Err(e) => {
                    info!(%remote, conn = id, "closing connection: {e}");
                    break;
                }
            };
            let received = Instant::now();
            let event = match Request::decode(&mut &payload[..]) {
                Ok(request) => Event::Request {
                    conn: id,
                    request,
                    received,
                },
                Err(RequestError::NoHeader(e)) => {
                    info!(%remote, conn = id, "frame too short for a request header: {e}");
                    break;
                }
                Err(RequestError::Unimplemented { header }) => {
                    info!(%remote, conn = id, opcode = header.opcode, "unimplemented opcode; closing");
                    let _ = events
                        .send(Event::Unimplemented {
                            conn: id,
                            xid: header.xid,
                        })
                        .await;
                    break;
                }
                Err(RequestError::Malformed { header, error }) => {
                    info!(%remote, conn = id, opcode = header.opcode, "malformed request: {error}");
                    Event::Malformed {
                        conn: id,
                        xid: header.xid,
                    }
                }
            };
            // Waits when the core is saturated: this connection stops being
            // read until there is room (backpressure).
            if events.send(event).await.is_err() {
                break;
            }
        }
    };

    // Whichever side ends first ends the connection. When the reader ends,
    // the writer still flushes what the core queued (a final error reply,
    // say): it stops once the core, told of the close, drops its sender.
    tokio::pin!(writer);
    tokio::select! {
        _ = &mut writer => {}
        _ = reader => {
            let _ = events.send(Event::Closed { conn: id }).await;
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, &mut writer).await;
            return;
        }
    }
    let _ = events.send(Event::Closed { conn: id }).await;
}
