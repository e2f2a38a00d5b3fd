//! The session table: timeouts, passwords, and expiry in tick-sized
//! buckets, as ZooKeeper's SessionTrackerImpl does.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: i32,
    pub password: [u8; 16],
    /// The tick bucket in which it expires unless touched.
    expires_at_ms: u64,
    /// Set once a closeSession was prepared: no further requests.
    pub closing: bool,
}

/// Live sessions, and the expiry queue keyed by tick boundary.
#[derive(Debug)]
pub struct SessionTable {
    tick_ms: u64,
    sessions: HashMap<i64, Session>,
    buckets: BTreeMap<u64, HashSet<i64>>,
    next_id: i64,
}

impl SessionTable {
    /// `server_id` goes in the top byte of every session id; the next five
    /// bytes come from the clock, so ids differ across restarts.
    pub fn new(tick_ms: u32, server_id: u64, now_ms: u64) -> SessionTable {
        let base = (((now_ms as i64) << 24) as u64 >> 8) as i64 | ((server_id as i64) << 56);
        SessionTable {
            tick_ms: u64::from(tick_ms.max(1)),
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            next_id: base.max(1),
        }
    }

    /// A fresh session id, never 0.
    pub fn next_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn bucket_of(&self, deadline_ms: u64) -> u64 {
        // Round up to the next tick boundary, as ZooKeeper's ExpiryQueue does.
        (deadline_ms / self.tick_ms + 1) * self.tick_ms
    }

    /// Records a session created by a createSession, proposed (on a leader)
    /// or committed; adding a known session again renews it.
    pub fn add(&mut self, id: i64, timeout_ms: i32, password: [u8; 16], now_ms: u64) {
        if let Some(known) = self.sessions.get(&id) {
            self.unbucket(known.expires_at_ms, id);
        }
        let expires_at_ms = self.bucket_of(now_ms + timeout_ms.max(0) as u64);
        self.buckets.entry(expires_at_ms).or_default().insert(id);
        self.sessions.insert(
            id,
            Session {
                id,
                timeout_ms,
                password,
                expires_at_ms,
                closing: false,
            },
        );
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// Pushes the deadline of a live session out by its timeout; false if
    /// the session is unknown or closing.
    pub fn touch(&mut self, id: i64, now_ms: u64) -> bool {
        let Some(session) = self.sessions.get(&id).filter(|s| !s.closing) else {
            return false;
        };
        let (old_bucket, timeout_ms) = (session.expires_at_ms, session.timeout_ms);
        let new_bucket = self.bucket_of(now_ms + timeout_ms.max(0) as u64);
        if new_bucket != old_bucket {
            self.unbucket(old_bucket, id);
            self.buckets.entry(new_bucket).or_default().insert(id);
            if let Some(session) = self.sessions.get_mut(&id) {
                session.expires_at_ms = new_bucket;
            }
        }
        true
    }

    /// Takes a session out of its expiry bucket, dropping the bucket once empty.
    fn unbucket(&mut self, bucket: u64, id: i64) {
        if let Some(set) = self.buckets.get_mut(&bucket) {
            set.remove(&id);
            if set.is_empty() {
                self.buckets.remove(&bucket);
            }
        }
    }

    /// Changes a resumed session's timeout and touches it.
    pub fn set_timeout(&mut self, id: i64, timeout_ms: i32, now_ms: u64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.timeout_ms = timeout_ms;
        }
        self.touch(id, now_ms);
    }

    /// Gives every session a full timeout from now and clears `closing`: a
    /// new leader takes over sessions whose closes may never have committed.
    pub fn renew_all(&mut self, now_ms: u64) {
        let ids: Vec<i64> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.closing = false;
            }
            self.touch(id, now_ms);
        }
    }

    pub fn mark_closing(&mut self, id: i64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.closing = true;
        }
    }

    /// Forgets a session whose closeSession was applied.
    pub fn remove(&mut self, id: i64) {
        if let Some(session) = self.sessions.remove(&id) {
            self.unbucket(session.expires_at_ms, id);
        }
    }

    /// Sessions whose bucket has passed and that are not already closing;
    /// they are marked closing.
    pub fn expired(&mut self, now_ms: u64) -> Vec<i64> {
        let mut out = Vec::new();
        let due: Vec<u64> = self.buckets.range(..=now_ms).map(|(k, _)| *k).collect();
        for bucket in due {
            if let Some(ids) = self.buckets.remove(&bucket) {
                for id in ids {
                    if let Some(session) = self.sessions.get_mut(&id) {
                        if !session.closing {
                            session.closing = true;
                            out.push(id);
                        }
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_touches() {
        let mut table = SessionTable::new(100, 0, 1_000_000);
        let id = table.next_id();
        assert_ne!(id, 0);
        table.add(id, 1000, [0; 16], 0);
        assert!(table.expired(1000).is_empty(), "bucket is rounded up");
        assert!(table.touch(id, 900));
        assert!(table.expired(1100).is_empty());
        assert_eq!(table.expired(2000), vec![id]);
        assert!(!table.touch(id, 2000), "closing sessions are not revived");
        table.remove(id);
        assert!(table.get(id).is_none());
    }

    #[test]
    fn a_session_added_twice_expires_once_from_its_last_deadline() {
        let mut table = SessionTable::new(100, 0, 1_000_000);
        let id = table.next_id();
        table.add(id, 1000, [0; 16], 0);
        table.add(id, 1000, [0; 16], 500);
        assert!(table.expired(1200).is_empty(), "the first deadline is gone");
        assert_eq!(table.expired(1600), vec![id]);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn ids_carry_the_server_id() {
        let mut table = SessionTable::new(2000, 3, 123_456);
        assert_eq!(table.next_id() >> 56, 3);
    }
}
