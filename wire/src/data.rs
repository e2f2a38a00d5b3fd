//! Data records (`org.apache.zookeeper.data`): Id, ACL, Stat, ClientInfo,
//! and the permission bits.

use std::fmt;

use crate::field::record;

/// Permission bits of an ACL entry (`ZooDefs.Perms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub struct Perms(pub i32);

impl Perms {
    pub const READ: Perms = Perms(1);
    pub const WRITE: Perms = Perms(2);
    pub const CREATE: Perms = Perms(4);
    pub const DELETE: Perms = Perms(8);
    pub const ADMIN: Perms = Perms(16);
    pub const ALL: Perms = Perms(31);

    /// True when every bit of `other` is set here.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when at least one bit of `other` is set here.
    pub fn intersects(self, other: Perms) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl fmt::Display for Perms {
    /// zkCli.sh's letters: `cdrwa`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [
            (Perms::CREATE, 'c'),
            (Perms::DELETE, 'd'),
            (Perms::READ, 'r'),
            (Perms::WRITE, 'w'),
            (Perms::ADMIN, 'a'),
        ] {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl crate::field::Field for Perms {
    const MIN_LEN: usize = 4;
    fn write_field<B: bytes::BufMut>(&self, out: &mut B) {
        out.put_i32(self.0);
    }
    fn read_field<B: bytes::Buf>(
        input: &mut B,
        what: &'static str,
    ) -> crate::error::DecodeResult<Self> {
        crate::jute::read_i32(input, what).map(Perms)
    }
}

record! {
    /// An identity: a scheme and an id within it (`world:anyone`,
    /// `digest:user:hash`, `ip:10.0.0.0/8`). kazoo sends an empty id as null,
    /// so both fields may be null on the wire.
    pub struct Id (min_len = 8) {
        pub scheme: Option<String>,
        pub id: Option<String>,
    }
}

impl Id {
    /// An Id with both fields present.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: Some(scheme.into()),
            id: Some(id.into()),
        }
    }

    /// The scheme, null read as empty.
    pub fn scheme(&self) -> &str {
        self.scheme.as_deref().unwrap_or("")
    }

    /// The id, null read as empty.
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or("")
    }

    /// `world:anyone`.
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }
}

record! {
    /// One ACL entry: the permissions granted to an identity.
    pub struct Acl (min_len = 12) {
        pub perms: Perms,
        pub id: Id,
    }
}

impl Acl {
    /// `OPEN_ACL_UNSAFE`: everything for everyone.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::ALL,
            id: Id::anyone(),
        }]
    }

    /// `CREATOR_ALL_ACL`: everything for the identities of the creator.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::ALL,
            id: Id::new("auth", ""),
        }]
    }

    /// `READ_ACL_UNSAFE`: read for everyone.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::READ,
            id: Id::anyone(),
        }]
    }
}

record! {
    /// A znode's metadata as clients see it (68 bytes).
    pub struct Stat (min_len = 68) {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last setData (or the create).
        pub mzxid: i64,
        /// Wall-clock ms of the create.
        pub ctime: i64,
        /// Wall-clock ms of the last setData.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child version, as presented (protocol section 6.2).
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session of an ephemeral, else 0.
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        /// zxid of the last change to the children.
        pub pzxid: i64,
    }
}

impl Stat {
    /// Encoded size.
    pub const LEN: usize = 68;
}

record! {
    /// One identity of a connection, as whoAmI reports it.
    pub struct ClientInfo (min_len = 8) {
        pub auth_scheme: String,
        pub user: String,
    }
}
