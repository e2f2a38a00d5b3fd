//! Operation codes (`ZooDefs.OpCode`).

use crate::int_enum::int_enum;

int_enum! {
    /// The `type` field of a RequestHeader, and of a MultiHeader inside a multi.
    pub enum OpCode {
        #[default]
        Notification = 0,
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetAcl = 6,
        SetAcl = 7,
        GetChildren = 8,
        Sync = 9,
        Ping = 11,
        GetChildren2 = 12,
        Check = 13,
        Multi = 14,
        Create2 = 15,
        Reconfig = 16,
        CheckWatches = 17,
        RemoveWatches = 18,
        CreateContainer = 19,
        DeleteContainer = 20,
        CreateTtl = 21,
        MultiRead = 22,
        Auth = 100,
        SetWatches = 101,
        Sasl = 102,
        GetEphemerals = 103,
        GetAllChildrenNumber = 104,
        SetWatches2 = 105,
        AddWatch = 106,
        WhoAmI = 107,
        CreateSession = -10,
        CloseSession = -11,
        Error = -1,
    }
}

impl OpCode {
    /// Whether the Java server accepts this opcode as a top-level request
    /// (`Request.isValid`). Any other value is answered with UNIMPLEMENTED and
    /// the connection is closed (protocol section 5.7). `Auth` and `Sasl` are
    /// handled before that check and so are accepted too.
    pub fn is_valid_request(self) -> bool {
        !matches!(
            self,
            OpCode::Notification | OpCode::Check | OpCode::Error | OpCode::CreateSession
        )
    }

    /// Whether the operation changes the tree or the sessions (and so takes a zxid).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }
}

/// Special xids (protocol section 5.2).
pub mod xid {
    /// A watch notification, server to client.
    pub const NOTIFICATION: i32 = -1;
    /// A ping, both ways.
    pub const PING: i32 = -2;
    /// An AuthPacket and its reply.
    pub const AUTH: i32 = -4;
    /// SetWatches as the C client sends it.
    pub const SET_WATCHES: i32 = -8;
}
