//! Read-only mode (`readonlymode.enabled`): a server of an ensemble that has
//! no quorum still serves reads to clients that said they accept a
//! read-only server (`canBeReadOnly` in the connect request), as ZooKeeper
//! does. Writes are answered NOTREADONLY. New sessions made here are this
//! server's own, never replicated: they end with their connection, and
//! every read-only client is disconnected once the quorum is back, so that
//! it reconnects to a server that takes writes.

use rand::RngCore;
use tracing::info;
use zoo_wire::{ConnectRequest, ErrorCode, Request, RequestBody, ServerMessage};

use super::{accepted, Core};
use crate::watch::ConnId;

impl Core {
    /// True while this server would take read-only clients.
    pub(crate) fn read_only_mode(&self) -> bool {
        self.config.read_only_enabled && self.config.peers.len() > 1 && !self.serving()
    }

    /// A client that accepts a read-only server, while there is no quorum.
    pub(super) fn connect_read_only(&mut self, conn: ConnId, req: ConnectRequest) {
        let timeout = self.config.negotiate_timeout(req.timeout_ms);
        let now = self.now_ms();
        let (session_id, password) = if req.session_id == 0 {
            let id = self.sessions.next_id();
            let mut password = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut password);
            self.sessions.add(id, timeout, password, now);
            self.local_sessions.insert(id);
            (id, password)
        } else {
            let Some(password) = self.resume(conn, &req, Some(true)) else {
                return;
            };
            (req.session_id, password)
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.read_only = true;
        }
        self.attach(conn, session_id);
        info!(
            conn,
            session = format!("{session_id:#x}"),
            "read-only client connected"
        );
        let response = accepted(session_id, timeout, password, Some(true));
        let frame = self.encode(&response);
        self.send(conn, frame);
    }

    /// A write or a close from a read-only client.
    pub(super) fn refuse_in_read_only(&mut self, conn: ConnId, session: i64, request: Request) {
        let zxid = self.tree.last_zxid();
        if request.body == RequestBody::CloseSession {
            self.reply(
                conn,
                &ServerMessage::header_only(request.xid, zxid, ErrorCode::Ok),
            );
            if self.local_sessions.remove(&session) {
                self.sessions.remove(session);
            }
            return self.close_conn(conn);
        }
        self.reply(
            conn,
            &ServerMessage::header_only(request.xid, zxid, ErrorCode::NotReadOnly),
        );
    }

    /// The quorum is back: read-only clients go, and so do the sessions made
    /// for them.
    pub(super) fn end_read_only(&mut self) {
        let read_only: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.read_only)
            .map(|(id, _)| *id)
            .collect();
        for conn in read_only {
            self.close_conn(conn);
        }
        for id in std::mem::take(&mut self.local_sessions) {
            self.sessions.remove(id);
        }
    }
}
