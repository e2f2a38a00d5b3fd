//! Watch notifications and the enumerations around them (protocol section 10).

use crate::field::record;
use crate::int_enum::int_enum;

int_enum! {
    /// What changed (`Watcher.Event.EventType`). Servers only send 1 to 4; the
    /// rest are made by client libraries.
    pub enum EventType {
        #[default]
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// Connection state (`Watcher.Event.KeeperState`). Servers always send
    /// SyncConnected.
    pub enum KeeperState {
        Unknown = -1,
        Disconnected = 0,
        NoSyncConnected = 1,
        #[default]
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Expired = -112,
        Closed = 7,
    }
}

int_enum! {
    /// Which watches checkWatches / removeWatches refer to.
    pub enum WatcherType {
        Children = 1,
        Data = 2,
        #[default]
        Any = 3,
        Persistent = 4,
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// The mode of addWatch.
    pub enum AddWatchMode {
        #[default]
        Persistent = 0,
        PersistentRecursive = 1,
    }
}

record! {
    /// The body of a notification (xid -1).
    pub struct WatcherEvent (min_len = 12) {
        pub event_type: EventType,
        pub state: KeeperState,
        pub path: String,
    }
}
