//! Create modes: the `flags` of a CreateRequest (protocol section 8).

use crate::int_enum::int_enum;

int_enum! {
    /// What kind of znode a create makes.
    pub enum CreateMode {
        #[default]
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
        Container = 4,
        PersistentWithTtl = 5,
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Removed when the creating session ends.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// The server appends a 10-digit counter to the name.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Removed by the server once its last child is gone.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    /// Removed by the server when unmodified and childless for its TTL.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// The largest TTL in ms: it takes the low 40 bits of `ephemeralOwner`.
pub const MAX_TTL_MS: i64 = (1 << 40) - 1;
