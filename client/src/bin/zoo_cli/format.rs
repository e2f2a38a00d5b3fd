//! How zkCli.sh 3.8 prints things: the Stat block with Java's
//! `Date.toString()` times, ACL entries as jute's CSV, error messages of
//! `CliWrapperException` and `KeeperException`, and watch events.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use zoo_client::{Error, SessionState, WatchedEvent};
use zoo_wire::{Acl, ErrorCode, EventType, Id, Perms, Stat};

/// The eleven lines of `StatPrinter.print`.
pub fn stat(stat: &Stat) -> Vec<String> {
    vec![
        format!("cZxid = 0x{:x}", stat.czxid),
        format!("ctime = {}", java_date(stat.ctime)),
        format!("mZxid = 0x{:x}", stat.mzxid),
        format!("mtime = {}", java_date(stat.mtime)),
        format!("pZxid = 0x{:x}", stat.pzxid),
        format!("cversion = {}", stat.cversion),
        format!("dataVersion = {}", stat.version),
        format!("aclVersion = {}", stat.aversion),
        format!("ephemeralOwner = 0x{:x}", stat.ephemeral_owner),
        format!("dataLength = {}", stat.data_length),
        format!("numChildren = {}", stat.num_children),
    ]
}

/// `new Date(ms).toString()`: `Fri Dec 04 05:10:11 UTC 2026`, in the
/// system's time zone as Java's default one is.
pub fn java_date(epoch_ms: i64) -> String {
    let Ok(at) = Timestamp::from_millisecond(epoch_ms) else {
        return epoch_ms.to_string();
    };
    at.to_zoned(TimeZone::system())
        .strftime("%a %b %d %H:%M:%S %Z %Y")
        .to_string()
}

/// One ACL entry as `GetAclCommand` prints it: the Id's jute `toString()`
/// (CSV, ending in a newline), then `: ` and the permission letters.
pub fn acl_entry(acl: &Acl) -> String {
    format!("{}: {}", id_csv(&acl.id), perms(acl.perms))
}

fn id_csv(id: &Id) -> String {
    format!(
        "{},{}\n",
        csv_string(id.scheme.as_deref()),
        csv_string(id.id.as_deref())
    )
}

/// jute's `Utils.toCSVString`: a leading quote, a few characters escaped.
fn csv_string(s: Option<&str>) -> String {
    let Some(s) = s else {
        return "==NULL==".to_string();
    };
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// `cdrwa`, in that order, for the bits that are set.
pub fn perms(p: Perms) -> String {
    [
        (Perms::CREATE, 'c'),
        (Perms::DELETE, 'd'),
        (Perms::READ, 'r'),
        (Perms::WRITE, 'w'),
        (Perms::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p.0 & bit.0 != 0)
    .map(|(_, letter)| *letter)
    .collect()
}

/// What `AclParser.parse` makes of `scheme:id:perms,...`, with the
/// complaints it prints (to stderr) for entries it skips or letters it
/// does not know.
pub fn parse_acl(text: &str, complaints: &mut Vec<String>) -> Vec<Acl> {
    let mut acl = Vec::new();
    for entry in text.split(',') {
        let (Some(first), Some(last)) = (entry.find(':'), entry.rfind(':')) else {
            complaints.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            complaints.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        }
        let mut bits = 0;
        for letter in entry[last + 1..].chars() {
            bits |= match letter {
                'r' => Perms::READ.0,
                'w' => Perms::WRITE.0,
                'c' => Perms::CREATE.0,
                'd' => Perms::DELETE.0,
                'a' => Perms::ADMIN.0,
                other => {
                    complaints.push(format!("Unknown perm type: {other}"));
                    0
                }
            };
        }
        acl.push(Acl {
            perms: Perms(bits),
            id: Id::new(&entry[..first], &entry[first + 1..last]),
        });
    }
    acl
}

/// The four lines `ZooKeeperMain.printMessage` makes of a watch event.
pub fn event_lines(state: &str, event_type: EventType, path: Option<&str>) -> Vec<String> {
    vec![
        String::new(),
        "WATCHER::".to_string(),
        String::new(),
        format!(
            "WatchedEvent state:{state} type:{event_type:?} path:{}",
            path.unwrap_or("null")
        ),
    ]
}

/// A node event: the session is connected when it arrives.
pub fn watched_event(event: &WatchedEvent) -> Vec<String> {
    event_lines("SyncConnected", event.event_type, Some(&event.path))
}

/// The `KeeperState` Java's default watcher reports for a session state,
/// or `None` for states it says nothing about.
pub fn keeper_state(state: SessionState) -> Option<&'static str> {
    match state {
        SessionState::Connected => Some("SyncConnected"),
        SessionState::ConnectedReadOnly => Some("ConnectedReadOnly"),
        SessionState::Disconnected => Some("Disconnected"),
        SessionState::Expired => Some("Expired"),
        SessionState::AuthFailed => Some("AuthFailed"),
        SessionState::Closed => Some("Closed"),
        _ => None,
    }
}

/// `ZooKeeper.States` as the prompt shows it.
pub fn prompt_state(state: Option<SessionState>) -> &'static str {
    match state {
        Some(SessionState::Connected) => "CONNECTED",
        Some(SessionState::ConnectedReadOnly) => "CONNECTEDREADONLY",
        Some(SessionState::Connecting | SessionState::Disconnected) => "CONNECTING",
        Some(SessionState::AuthFailed) => "AUTH_FAILED",
        _ => "CLOSED",
    }
}

/// The server's error code for a client error (connection trouble reads
/// as ConnectionLoss, as Java's client reports it).
pub fn error_code(error: &Error) -> ErrorCode {
    match error {
        Error::NoNode => ErrorCode::NoNode,
        Error::NodeExists => ErrorCode::NodeExists,
        Error::BadVersion => ErrorCode::BadVersion,
        Error::NotEmpty => ErrorCode::NotEmpty,
        Error::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
        Error::NoAuth => ErrorCode::NoAuth,
        Error::InvalidAcl => ErrorCode::InvalidAcl,
        Error::BadArguments | Error::InvalidPath(_) => ErrorCode::BadArguments,
        Error::AuthFailed => ErrorCode::AuthFailed,
        Error::NoWatcher => ErrorCode::NoWatcher,
        Error::NotReadOnly => ErrorCode::NotReadOnly,
        Error::ReconfigDisabled => ErrorCode::ReconfigDisabled,
        Error::Unimplemented => ErrorCode::Unimplemented,
        Error::MarshallingError => ErrorCode::MarshallingError,
        Error::SessionExpired | Error::Closed => ErrorCode::SessionExpired,
        Error::Server(code) => *code,
        _ => ErrorCode::ConnectionLoss,
    }
}

/// `KeeperException.getMessage()`: `KeeperErrorCode = NoNode for /p`.
pub fn keeper_exception(code: ErrorCode, path: Option<&str>) -> String {
    let text = match code {
        ErrorCode::SystemError => "SystemError",
        ErrorCode::RuntimeInconsistency => "RuntimeInconsistency",
        ErrorCode::DataInconsistency => "DataInconsistency",
        ErrorCode::ConnectionLoss => "ConnectionLoss",
        ErrorCode::MarshallingError => "MarshallingError",
        ErrorCode::Unimplemented => "Unimplemented",
        ErrorCode::OperationTimeout => "OperationTimeout",
        ErrorCode::BadArguments => "BadArguments",
        ErrorCode::NewConfigNoQuorum => "NewConfigNoQuorum",
        ErrorCode::ReconfigInProgress => "ReconfigInProgress",
        ErrorCode::ApiError => "APIError",
        ErrorCode::NoNode => "NoNode",
        ErrorCode::NoAuth => "NoAuth",
        ErrorCode::BadVersion => "BadVersion",
        ErrorCode::NoChildrenForEphemerals => "NoChildrenForEphemerals",
        ErrorCode::NodeExists => "NodeExists",
        ErrorCode::InvalidAcl => "InvalidACL",
        ErrorCode::AuthFailed => "AuthFailed",
        ErrorCode::SessionExpired => "Session expired",
        ErrorCode::NotEmpty => "Directory not empty",
        ErrorCode::SessionMoved => "Session moved",
        ErrorCode::NotReadOnly => "Not a read-only call",
        ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
        ErrorCode::NoWatcher => "No such watcher",
        ErrorCode::ReconfigDisabled => "Reconfig is disabled",
        ErrorCode::SessionClosedRequireSaslAuth => {
            "Session closed because client failed to authenticate"
        }
        ErrorCode::QuotaExceeded => "Quota has exceeded",
        ErrorCode::ThrottledOp => "Op throttled due to high load",
        other => return format!("KeeperErrorCode = Unknown error {}", other.as_i32()),
    };
    match path {
        Some(path) => format!("KeeperErrorCode = {text} for {path}"),
        None => format!("KeeperErrorCode = {text}"),
    }
}

/// `CliWrapperException`'s message for a failed operation on `path`
/// (`None` where Java's exception carries no path, printed as `null`).
pub fn failure(error: &Error, path: Option<&str>) -> String {
    if let Error::InvalidPath(message) = error {
        return message.clone();
    }
    let shown = path.unwrap_or("null");
    match error_code(error) {
        ErrorCode::NoNode => format!("Node does not exist: {shown}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {shown}"),
        ErrorCode::NodeExists => format!("Node already exists: {shown}"),
        ErrorCode::NotEmpty => format!("Node not empty: {shown}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {shown}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {shown}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {shown}"),
        ErrorCode::BadArguments => format!("Arguments are not valid : {shown}"),
        ErrorCode::BadVersion => format!("version No is not valid : {shown}"),
        ErrorCode::QuotaExceeded => format!("Quota has exceeded : {shown}"),
        code => keeper_exception(code, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_entries_print_as_zkcli_does() {
        let open = &Acl::open_unsafe()[0];
        assert_eq!(acl_entry(open), "'world,'anyone\n: cdrwa");
        let mut complaints = Vec::new();
        let parsed = parse_acl("digest:bob:x=:rw,bogus,ip:10.0.0.1:zr", &mut complaints);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].id, Id::new("digest", "bob:x="));
        assert_eq!(perms(parsed[0].perms), "rw");
        assert_eq!(perms(parsed[1].perms), "r");
        assert_eq!(
            complaints,
            [
                "bogus does not have the form scheme:id:perm",
                "Unknown perm type: z"
            ]
        );
        assert_eq!(csv_string(Some("a,b%")), "'a%2Cb%25");
    }

    #[test]
    fn messages_follow_cli_wrapper_exception() {
        assert_eq!(
            failure(&Error::NoNode, Some("/p")),
            "Node does not exist: /p"
        );
        assert_eq!(failure(&Error::InvalidAcl, None), "Acl is not valid : null");
        assert_eq!(
            failure(&Error::NoWatcher, Some("/w")),
            "KeeperErrorCode = No such watcher for /w"
        );
    }
}
