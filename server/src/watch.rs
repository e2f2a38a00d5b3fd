//! Watches: one-shot data and child watches, persistent and persistent
//! recursive watches, held per connection, and the trigger table of protocol
//! section 10.4.

use std::collections::{HashMap, HashSet};

use zoo_wire::{EventType, WatcherType};

use crate::tree::Change;

/// Identifies one client connection.
pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Data,
    Child,
    Persistent,
    Recursive,
}

const KINDS: [Kind; 4] = [Kind::Data, Kind::Child, Kind::Persistent, Kind::Recursive];

/// One notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub conn: ConnId,
    pub event: EventType,
    pub path: String,
}

/// All watches of the server.
#[derive(Debug, Default)]
pub struct WatchManager {
    tables: HashMap<Kind, HashMap<String, HashSet<ConnId>>>,
    by_conn: HashMap<ConnId, HashSet<(Kind, String)>>,
}

impl WatchManager {
    fn add(&mut self, kind: Kind, path: &str, conn: ConnId, limit: usize) -> bool {
        let mine = self.by_conn.entry(conn).or_default();
        if mine.contains(&(kind, path.to_string())) {
            return true;
        }
        if mine.len() >= limit {
            return false;
        }
        mine.insert((kind, path.to_string()));
        self.tables
            .entry(kind)
            .or_default()
            .entry(path.to_string())
            .or_default()
            .insert(conn);
        true
    }

    /// Takes `conn` out of the table entry for (`kind`, `path`), dropping
    /// the entry once empty; the per-connection index is the caller's.
    fn unlink(&mut self, kind: Kind, path: &str, conn: ConnId) -> bool {
        let Some(table) = self.tables.get_mut(&kind) else {
            return false;
        };
        let Some(set) = table.get_mut(path) else {
            return false;
        };
        let removed = set.remove(&conn);
        if set.is_empty() {
            table.remove(path);
        }
        removed
    }

    fn remove(&mut self, kind: Kind, path: &str, conn: ConnId) -> bool {
        let removed = self.unlink(kind, path, conn);
        if let Some(mine) = self.by_conn.get_mut(&conn) {
            mine.remove(&(kind, path.to_string()));
        }
        removed
    }

    fn has(&self, kind: Kind, path: &str, conn: ConnId) -> bool {
        self.tables
            .get(&kind)
            .and_then(|t| t.get(path))
            .is_some_and(|s| s.contains(&conn))
    }

    /// A data (or exists) watch; false when the connection is at its limit.
    pub fn add_data(&mut self, path: &str, conn: ConnId, limit: usize) -> bool {
        self.add(Kind::Data, path, conn, limit)
    }

    pub fn add_child(&mut self, path: &str, conn: ConnId, limit: usize) -> bool {
        self.add(Kind::Child, path, conn, limit)
    }

    pub fn add_persistent(
        &mut self,
        path: &str,
        recursive: bool,
        conn: ConnId,
        limit: usize,
    ) -> bool {
        let kind = if recursive {
            Kind::Recursive
        } else {
            Kind::Persistent
        };
        self.add(kind, path, conn, limit)
    }

    fn kinds_of(watcher_type: WatcherType) -> &'static [Kind] {
        match watcher_type {
            WatcherType::Children => &[Kind::Child],
            WatcherType::Data => &[Kind::Data],
            WatcherType::Persistent => &[Kind::Persistent],
            WatcherType::PersistentRecursive => &[Kind::Recursive],
            WatcherType::Any => &KINDS,
        }
    }

    /// checkWatches: whether a matching watch exists (nothing is removed).
    pub fn check(&self, path: &str, watcher_type: WatcherType, conn: ConnId) -> bool {
        Self::kinds_of(watcher_type)
            .iter()
            .any(|k| self.has(*k, path, conn))
    }

    /// removeWatches: removes the matching watches; false if there were none.
    pub fn remove_matching(&mut self, path: &str, watcher_type: WatcherType, conn: ConnId) -> bool {
        let mut any = false;
        for kind in Self::kinds_of(watcher_type) {
            any |= self.remove(*kind, path, conn);
        }
        any
    }

    /// Drops every watch of a closed connection.
    pub fn remove_connection(&mut self, conn: ConnId) {
        if let Some(mine) = self.by_conn.remove(&conn) {
            for (kind, path) in mine {
                self.unlink(kind, &path, conn);
            }
        }
    }

    /// Takes the one-shot watches of `kind` on `path`, and adds each to `out`.
    fn take(&mut self, kind: Kind, path: &str, out: &mut Vec<ConnId>) {
        if let Some(set) = self.tables.get_mut(&kind).and_then(|t| t.remove(path)) {
            for conn in set {
                if let Some(mine) = self.by_conn.get_mut(&conn) {
                    mine.remove(&(kind, path.to_string()));
                }
                out.push(conn);
            }
        }
    }

    fn persistent_on(&self, kind: Kind, path: &str, out: &mut Vec<ConnId>) {
        if let Some(set) = self.tables.get(&kind).and_then(|t| t.get(path)) {
            out.extend(set.iter().copied());
        }
    }

    /// Recursive watches on `path` or any ancestor.
    fn recursive_over(&self, path: &str, out: &mut Vec<ConnId>) {
        let Some(table) = self.tables.get(&Kind::Recursive) else {
            return;
        };
        if table.is_empty() {
            return;
        }
        let mut current = path;
        loop {
            if let Some(set) = table.get(current) {
                out.extend(set.iter().copied());
            }
            match zoo_wire::path::parent(current) {
                Some(p) => current = p,
                None => break,
            }
        }
    }

    /// The notifications one change causes, at most one per connection.
    pub fn trigger(&mut self, change: &Change, fired: &mut Vec<Fired>) {
        let mut conns = Vec::new();
        let (event, path) = match change {
            Change::Created(p) => {
                self.take(Kind::Data, p, &mut conns);
                self.persistent_on(Kind::Persistent, p, &mut conns);
                self.recursive_over(p, &mut conns);
                (EventType::NodeCreated, p)
            }
            Change::Deleted(p, _) => {
                self.take(Kind::Data, p, &mut conns);
                self.take(Kind::Child, p, &mut conns);
                self.persistent_on(Kind::Persistent, p, &mut conns);
                self.recursive_over(p, &mut conns);
                (EventType::NodeDeleted, p)
            }
            Change::DataChanged(p) => {
                self.take(Kind::Data, p, &mut conns);
                self.persistent_on(Kind::Persistent, p, &mut conns);
                self.recursive_over(p, &mut conns);
                (EventType::NodeDataChanged, p)
            }
            Change::ChildrenChanged(p) => {
                self.take(Kind::Child, p, &mut conns);
                self.persistent_on(Kind::Persistent, p, &mut conns);
                (EventType::NodeChildrenChanged, p)
            }
        };
        conns.sort_unstable();
        conns.dedup();
        fired.extend(conns.into_iter().map(|conn| Fired {
            conn,
            event,
            path: path.clone(),
        }));
    }

    /// Data-watch view for `wchs`/`wchc`/`wchp`: ZooKeeper's data table holds
    /// one-shot data watches, persistent and recursive ones.
    pub fn data_watches(&self) -> Vec<(&String, ConnId)> {
        let mut out = Vec::new();
        for kind in [Kind::Data, Kind::Persistent, Kind::Recursive] {
            if let Some(table) = self.tables.get(&kind) {
                for (path, set) in table {
                    out.extend(set.iter().map(|c| (path, *c)));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Data plus child watches, as `mntr`'s `zk_watch_count` counts them.
    pub fn count(&self) -> usize {
        self.tables
            .values()
            .flat_map(|t| t.values())
            .map(HashSet::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 100;

    fn fire(w: &mut WatchManager, change: Change) -> Vec<(ConnId, EventType)> {
        let mut fired = Vec::new();
        w.trigger(&change, &mut fired);
        fired.into_iter().map(|f| (f.conn, f.event)).collect()
    }

    #[test]
    fn one_shot_watches_fire_once() {
        let mut w = WatchManager::default();
        w.add_data("/a", 1, LIMIT);
        w.add_child("/a", 2, LIMIT);
        assert_eq!(
            fire(&mut w, Change::DataChanged("/a".into())),
            vec![(1, EventType::NodeDataChanged)]
        );
        assert_eq!(fire(&mut w, Change::DataChanged("/a".into())), vec![]);
        assert_eq!(
            fire(&mut w, Change::ChildrenChanged("/a".into())),
            vec![(2, EventType::NodeChildrenChanged)]
        );
    }

    #[test]
    fn delete_notifies_each_connection_once() {
        let mut w = WatchManager::default();
        w.add_data("/a", 1, LIMIT);
        w.add_child("/a", 1, LIMIT);
        w.add_persistent("/", true, 1, LIMIT);
        assert_eq!(
            fire(&mut w, Change::Deleted("/a".into(), Vec::new().into())),
            vec![(1, EventType::NodeDeleted)]
        );
        // The recursive watch stays.
        assert_eq!(
            fire(&mut w, Change::Created("/b/c".into())),
            vec![(1, EventType::NodeCreated)]
        );
    }

    #[test]
    fn recursive_watches_never_see_child_events() {
        let mut w = WatchManager::default();
        w.add_persistent("/a", true, 1, LIMIT);
        w.add_persistent("/a", false, 2, LIMIT);
        assert_eq!(
            fire(&mut w, Change::ChildrenChanged("/a".into())),
            vec![(2, EventType::NodeChildrenChanged)]
        );
    }

    #[test]
    fn limits_and_removal() {
        let mut w = WatchManager::default();
        assert!(w.add_data("/a", 1, 1));
        assert!(w.add_data("/a", 1, 1), "the same watch again is free");
        assert!(!w.add_data("/b", 1, 1));
        assert!(w.check("/a", WatcherType::Any, 1));
        assert!(w.check("/a", WatcherType::Data, 1));
        assert!(!w.check("/a", WatcherType::Children, 1));
        assert!(w.remove_matching("/a", WatcherType::Data, 1));
        assert!(!w.remove_matching("/a", WatcherType::Data, 1));
        w.add_data("/c", 3, LIMIT);
        w.remove_connection(3);
        assert_eq!(w.count(), 0);
    }
}
