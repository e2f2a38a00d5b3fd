//! `History`: the log entries a server holds in memory, above a base zxid.
//!
//! The base is the zxid of the state the entries apply on top of (a
//! snapshot's, or a compaction point). Entries strictly follow one another:
//! the next counter of the same epoch, or any zxid of a later epoch.

use std::collections::VecDeque;

use zoo_wire::peer::{Entry, Zxid};

use crate::storage::epoch_of;

/// True when `next` may follow `prev`: the next counter of its epoch, or
/// the first counter of a later epoch.
pub fn next_in_history(prev: Zxid, next: Zxid) -> bool {
    next == prev + 1 || (epoch_of(next) > epoch_of(prev) && next & 0xffff_ffff == 1)
}

#[derive(Debug)]
pub struct History<P> {
    base: Zxid,
    entries: VecDeque<Entry<P>>,
}

impl<P: Clone> History<P> {
    /// A history on top of `base`; `entries` must follow it.
    pub fn new(base: Zxid, entries: Vec<Entry<P>>) -> Self {
        let mut history = History {
            base,
            entries: VecDeque::with_capacity(entries.len()),
        };
        for entry in entries {
            assert!(history.can_append(entry.zxid), "log entries out of order");
            history.entries.push_back(entry);
        }
        history
    }

    pub fn base(&self) -> Zxid {
        self.base
    }

    /// The last zxid held, or the base.
    pub fn last(&self) -> Zxid {
        self.entries.back().map_or(self.base, |e| e.zxid)
    }

    /// True when `zxid` may be appended next: the next counter of the last
    /// entry's epoch, or the first counter of a later epoch. Nothing else, so
    /// that no history ever has a hole (ZOOKEEPER-4925).
    pub fn can_append(&self, zxid: Zxid) -> bool {
        next_in_history(self.last(), zxid)
    }

    /// Appends an entry; the caller has checked [`History::can_append`].
    pub fn push(&mut self, entry: Entry<P>) {
        assert!(self.can_append(entry.zxid), "entry does not follow the log");
        self.entries.push_back(entry);
    }

    fn index_of(&self, zxid: Zxid) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&zxid, |e| e.zxid)
    }

    /// True when `zxid` is the base or one of the entries.
    pub fn contains(&self, zxid: Zxid) -> bool {
        zxid == self.base || self.index_of(zxid).is_ok()
    }

    /// The newest point of this history below `zxid`: an entry's zxid or
    /// the base. `zxid` must be above the base.
    pub fn point_below(&self, zxid: Zxid) -> Zxid {
        debug_assert!(zxid > self.base);
        match self.index_of(zxid) {
            Ok(0) | Err(0) => self.base,
            Ok(i) | Err(i) => self.entries[i - 1].zxid,
        }
    }

    /// Clones of the entries above `after` up to `upto` inclusive.
    pub fn range(&self, after: Zxid, upto: Zxid) -> Vec<Entry<P>> {
        let start = match self.index_of(after) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.entries
            .range(start..)
            .take_while(|e| e.zxid <= upto)
            .cloned()
            .collect()
    }

    /// Drops every entry above `zxid`.
    pub fn truncate_after(&mut self, zxid: Zxid) {
        assert!(zxid >= self.base, "truncating below the base");
        while self.entries.back().is_some_and(|e| e.zxid > zxid) {
            self.entries.pop_back();
        }
    }

    /// Forgets entries up to `zxid`, which becomes the base.
    pub fn compact(&mut self, zxid: Zxid) {
        if zxid <= self.base || !self.contains(zxid) {
            return;
        }
        while self.entries.front().is_some_and(|e| e.zxid <= zxid) {
            self.entries.pop_front();
        }
        self.base = zxid;
    }

    /// Forgets everything; the history restarts at `base` (a snapshot).
    pub fn reset(&mut self, base: Zxid) {
        self.entries.clear();
        self.base = base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(zxid: Zxid) -> Entry<u32> {
        Entry {
            zxid,
            payload: zxid as u32,
        }
    }

    #[test]
    fn points_ranges_and_truncation() {
        let e2 = 2i64 << 32;
        let mut h = History::new(3, vec![entry(4), entry(5), entry(e2 | 1)]);
        assert!(!h.can_append(e2 | 5) && !h.can_append(3 << 32));
        assert_eq!(h.last(), e2 | 1);
        assert!(h.contains(3) && h.contains(5) && !h.contains(6));
        assert_eq!(h.point_below(5), 4);
        assert_eq!(h.point_below(6), 5);
        assert_eq!(h.point_below(4), 3);
        assert_eq!(h.point_below(e2 | 7), e2 | 1);
        assert_eq!(
            h.range(4, e2 | 1)
                .iter()
                .map(|e| e.zxid)
                .collect::<Vec<_>>(),
            [5, e2 | 1]
        );
        assert!(h.can_append(e2 | 2) && !h.can_append(e2 | 3) && !h.can_append(6));
        h.truncate_after(4);
        assert_eq!(h.last(), 4);
        h.compact(4);
        assert_eq!((h.base(), h.last(), h.range(4, Zxid::MAX).len()), (4, 4, 0));
        h.reset(100);
        assert_eq!(h.last(), 100);
    }
}
