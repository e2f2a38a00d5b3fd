//! The peer protocol: what servers of one ensemble say to each other.
//!
//! Two kinds of message travel between peers. Election notifications
//! ([`Notification`]) are self-contained: each carries the sender's whole
//! vote, so they survive loss, duplication and reordering. Quorum messages
//! ([`QuorumMessage`]) belong to one follower–leader link and carry a
//! sequence number on it, so that a receiver sees a FIFO stream and treats a
//! gap as a broken link (ZAB's correctness rests on FIFO channels).
//!
//! Encoding, inside a frame of the client protocol's kind (a 4-byte length
//! then the body): `int version`, `int kind`, then the fields as jute
//! primitives. Payloads (encoded transactions) are jute buffers. Decoding
//! checks every field: versions, kinds, zxids and epochs in range, entries in
//! strictly increasing zxid order, counts within [`MAX_ENTRIES_PER_MESSAGE`].

use bytes::{Buf, BufMut, Bytes};

use crate::data::Id;
use crate::error::{DecodeError, DecodeResult};
use crate::jute::{
    read_bool, read_buffer_non_null, read_i32, read_i64, write_bool, write_buffer, Record,
};

/// The protocol version this build speaks; a peer with another is refused.
pub const PEER_PROTOCOL_VERSION: i32 = 1;

/// The most log entries one message carries, so that a long DIFF is sent as
/// many bounded frames instead of one huge one.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1000;

/// A server's id: the `N` of `server.N` and the content of `myid`.
pub type ServerId = u64;

/// A transaction id: `epoch << 32 | counter`.
pub type Zxid = i64;

/// What a server is doing, as it tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

/// A vote for a leader. Votes order by `(epoch, zxid, leader)`: the candidate
/// with the newest established epoch, then the longest history, then the
/// highest id wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vote {
    /// The candidate's currentEpoch.
    pub epoch: i64,
    /// The candidate's last logged zxid.
    pub zxid: Zxid,
    /// The candidate; 0 is "no candidate" (an observer's vote).
    pub leader: ServerId,
}

/// An election notification: the sender's round, state and vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    pub round: u64,
    pub state: PeerState,
    pub vote: Vote,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<P> {
    pub zxid: Zxid,
    pub payload: P,
}

/// A message of one follower–leader link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMessage<P> {
    /// Chosen by the follower when it starts following; every message of the
    /// link carries it, so messages of an older link are recognised.
    pub link: u64,
    /// 0, 1, 2… per direction of the link.
    pub seq: u64,
    pub body: QuorumBody<P>,
}

/// The phases' messages, in the order ZAB uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumBody<P> {
    /// Follower → leader, first on a link: the follower's acceptedEpoch.
    FollowerInfo {
        accepted_epoch: i64,
        observer: bool,
    },
    /// Leader → follower: the epoch the leader proposes to establish.
    LeaderInfo {
        epoch: i64,
    },
    /// Follower → leader: the epoch is accepted (and durable); here is the
    /// follower's currentEpoch and last logged zxid.
    AckEpoch {
        current_epoch: i64,
        last_zxid: Zxid,
    },
    /// Leader → follower: append these entries (a DIFF, in pieces).
    Diff {
        entries: Vec<Entry<P>>,
    },
    /// Leader → follower: drop every entry above `zxid`.
    Trunc {
        zxid: Zxid,
    },
    /// Leader → follower: replace your state with the leader's at `zxid`;
    /// the state itself travels beside this message (the runtime's part).
    Snap {
        zxid: Zxid,
    },
    /// Leader → follower: your history now equals mine up to `zxid`; adopt
    /// `epoch` as currentEpoch.
    NewLeader {
        epoch: i64,
        zxid: Zxid,
    },
    /// Follower → leader: history and currentEpoch are durable.
    AckNewLeader {
        epoch: i64,
    },
    /// Leader → follower: everything up to `commit` is committed; serve.
    UpToDate {
        commit: Zxid,
    },
    Proposal {
        entry: Entry<P>,
    },
    /// Follower → leader: every entry up to `zxid` is durable here.
    Ack {
        zxid: Zxid,
    },
    Commit {
        zxid: Zxid,
    },
    /// Both ways: the link is alive.
    Ping,
}

/// The most sessions one [`LearnerMessage::Touch`] carries.
pub const MAX_SESSIONS_PER_TOUCH: usize = 10_000;

/// The most identities a forwarded request carries (a connection's limit).
pub const MAX_AUTH_IDS: usize = 64;

/// What a follower and its leader say beside ZAB, on the same link: the
/// client traffic a follower forwards and the state a SNAP carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerMessage {
    /// Follower → leader: a client's write, to prepare and propose. `request`
    /// is the client's frame payload (header and body); `auth` the identities
    /// its connection holds, against which ACLs are checked.
    Request {
        session: i64,
        auth: Vec<Id>,
        request: Bytes,
    },
    /// Follower → leader: a client connected there asks for a new session.
    CreateSession {
        session: i64,
        timeout_ms: i32,
        password: [u8; 16],
    },
    /// Follower → leader: sessions with client activity since the last one.
    Touch { sessions: Vec<i64> },
    /// Follower → leader: a client's `sync`; answered with [`LearnerMessage::Synced`].
    Sync { session: i64, cxid: i32 },
    /// Leader → follower: the follower may answer that `sync` once it has
    /// applied `zxid`, the last the leader had proposed when it was asked.
    Synced { session: i64, cxid: i32, zxid: Zxid },
    /// Leader → follower: one piece, in order, of the state sent with a SNAP
    /// for `zxid`; `last` ends it.
    SnapshotChunk {
        zxid: Zxid,
        index: u32,
        last: bool,
        data: Bytes,
    },
}

/// Everything one peer sends another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage<P> {
    Notification(Notification),
    Quorum(QuorumMessage<P>),
    /// Not part of ZAB: handled by the runtime around it.
    Learner(LearnerMessage),
}

impl<P> PeerMessage<P> {
    /// The same message with every entry's payload converted by `f`; the
    /// first failure is returned.
    pub fn try_map<Q, E>(self, mut f: impl FnMut(P) -> Result<Q, E>) -> Result<PeerMessage<Q>, E> {
        let mut entry = |e: Entry<P>| {
            Ok(Entry {
                zxid: e.zxid,
                payload: f(e.payload)?,
            })
        };
        Ok(match self {
            PeerMessage::Notification(n) => PeerMessage::Notification(n),
            PeerMessage::Learner(m) => PeerMessage::Learner(m),
            PeerMessage::Quorum(QuorumMessage { link, seq, body }) => {
                let body = match body {
                    QuorumBody::Diff { entries } => QuorumBody::Diff {
                        entries: entries
                            .into_iter()
                            .map(&mut entry)
                            .collect::<Result<_, E>>()?,
                    },
                    QuorumBody::Proposal { entry: e } => QuorumBody::Proposal { entry: entry(e)? },
                    QuorumBody::FollowerInfo {
                        accepted_epoch,
                        observer,
                    } => QuorumBody::FollowerInfo {
                        accepted_epoch,
                        observer,
                    },
                    QuorumBody::LeaderInfo { epoch } => QuorumBody::LeaderInfo { epoch },
                    QuorumBody::AckEpoch {
                        current_epoch,
                        last_zxid,
                    } => QuorumBody::AckEpoch {
                        current_epoch,
                        last_zxid,
                    },
                    QuorumBody::Trunc { zxid } => QuorumBody::Trunc { zxid },
                    QuorumBody::Snap { zxid } => QuorumBody::Snap { zxid },
                    QuorumBody::NewLeader { epoch, zxid } => QuorumBody::NewLeader { epoch, zxid },
                    QuorumBody::AckNewLeader { epoch } => QuorumBody::AckNewLeader { epoch },
                    QuorumBody::UpToDate { commit } => QuorumBody::UpToDate { commit },
                    QuorumBody::Ack { zxid } => QuorumBody::Ack { zxid },
                    QuorumBody::Commit { zxid } => QuorumBody::Commit { zxid },
                    QuorumBody::Ping => QuorumBody::Ping,
                };
                PeerMessage::Quorum(QuorumMessage { link, seq, body })
            }
        })
    }
}

impl<P> QuorumBody<P> {
    /// A short name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            QuorumBody::FollowerInfo { .. } => "FOLLOWERINFO",
            QuorumBody::LeaderInfo { .. } => "LEADERINFO",
            QuorumBody::AckEpoch { .. } => "ACKEPOCH",
            QuorumBody::Diff { .. } => "DIFF",
            QuorumBody::Trunc { .. } => "TRUNC",
            QuorumBody::Snap { .. } => "SNAP",
            QuorumBody::NewLeader { .. } => "NEWLEADER",
            QuorumBody::AckNewLeader { .. } => "ACKNEWLEADER",
            QuorumBody::UpToDate { .. } => "UPTODATE",
            QuorumBody::Proposal { .. } => "PROPOSAL",
            QuorumBody::Ack { .. } => "ACK",
            QuorumBody::Commit { .. } => "COMMIT",
            QuorumBody::Ping => "PING",
        }
    }
}

// Message kinds on the wire.
const NOTIFICATION: i32 = 1;
const FOLLOWER_INFO: i32 = 10;
const LEADER_INFO: i32 = 11;
const ACK_EPOCH: i32 = 12;
const DIFF: i32 = 13;
const TRUNC: i32 = 14;
const SNAP: i32 = 15;
const NEW_LEADER: i32 = 16;
const ACK_NEW_LEADER: i32 = 17;
const UP_TO_DATE: i32 = 18;
const PROPOSAL: i32 = 19;
const ACK: i32 = 20;
const COMMIT: i32 = 21;
const PING: i32 = 22;
const FORWARDED_REQUEST: i32 = 30;
const CREATE_SESSION: i32 = 31;
const TOUCH: i32 = 32;
const SNAPSHOT_CHUNK: i32 = 33;
const SYNC: i32 = 34;
const SYNCED: i32 = 35;

fn state_code(state: PeerState) -> i32 {
    match state {
        PeerState::Looking => 0,
        PeerState::Following => 1,
        PeerState::Leading => 2,
        PeerState::Observing => 3,
    }
}

fn read_u64<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<u64> {
    let v = read_i64(input, what)?;
    u64::try_from(v).map_err(|_| DecodeError::invalid(what, format!("negative value {v}")))
}

fn read_zxid<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<Zxid> {
    let v = read_i64(input, what)?;
    if v < 0 {
        return Err(DecodeError::invalid(what, format!("negative zxid {v:#x}")));
    }
    Ok(v)
}

/// Epochs are the upper 32 bits of a non-negative zxid.
fn read_epoch<B: Buf>(input: &mut B, what: &'static str) -> DecodeResult<i64> {
    let v = read_i64(input, what)?;
    if !(0..=i64::from(i32::MAX)).contains(&v) {
        return Err(DecodeError::invalid(
            what,
            format!("epoch {v} out of range"),
        ));
    }
    Ok(v)
}

fn write_entry<B: BufMut>(out: &mut B, entry: &Entry<Bytes>) {
    out.put_i64(entry.zxid);
    write_buffer(out, Some(&entry.payload));
}

fn read_entry<B: Buf>(input: &mut B) -> DecodeResult<Entry<Bytes>> {
    let zxid = read_zxid(input, "entry zxid")?;
    let payload = read_buffer_non_null(input, "entry payload")?;
    Ok(Entry { zxid, payload })
}

impl PeerMessage<Bytes> {
    /// Appends the encoding (without the frame length) to `out`.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_i32(PEER_PROTOCOL_VERSION);
        match self {
            PeerMessage::Notification(n) => {
                out.put_i32(NOTIFICATION);
                out.put_i64(n.round as i64);
                out.put_i32(state_code(n.state));
                out.put_i64(n.vote.epoch);
                out.put_i64(n.vote.zxid);
                out.put_i64(n.vote.leader as i64);
            }
            PeerMessage::Quorum(m) => {
                let kind = match &m.body {
                    QuorumBody::FollowerInfo { .. } => FOLLOWER_INFO,
                    QuorumBody::LeaderInfo { .. } => LEADER_INFO,
                    QuorumBody::AckEpoch { .. } => ACK_EPOCH,
                    QuorumBody::Diff { .. } => DIFF,
                    QuorumBody::Trunc { .. } => TRUNC,
                    QuorumBody::Snap { .. } => SNAP,
                    QuorumBody::NewLeader { .. } => NEW_LEADER,
                    QuorumBody::AckNewLeader { .. } => ACK_NEW_LEADER,
                    QuorumBody::UpToDate { .. } => UP_TO_DATE,
                    QuorumBody::Proposal { .. } => PROPOSAL,
                    QuorumBody::Ack { .. } => ACK,
                    QuorumBody::Commit { .. } => COMMIT,
                    QuorumBody::Ping => PING,
                };
                out.put_i32(kind);
                out.put_i64(m.link as i64);
                out.put_i64(m.seq as i64);
                match &m.body {
                    QuorumBody::FollowerInfo {
                        accepted_epoch,
                        observer,
                    } => {
                        out.put_i64(*accepted_epoch);
                        write_bool(out, *observer);
                    }
                    QuorumBody::LeaderInfo { epoch } | QuorumBody::AckNewLeader { epoch } => {
                        out.put_i64(*epoch)
                    }
                    QuorumBody::AckEpoch {
                        current_epoch,
                        last_zxid,
                    } => {
                        out.put_i64(*current_epoch);
                        out.put_i64(*last_zxid);
                    }
                    QuorumBody::Diff { entries } => {
                        assert!(entries.len() <= MAX_ENTRIES_PER_MESSAGE, "DIFF too long");
                        out.put_i32(entries.len() as i32);
                        for entry in entries {
                            write_entry(out, entry);
                        }
                    }
                    QuorumBody::Trunc { zxid }
                    | QuorumBody::Snap { zxid }
                    | QuorumBody::Ack { zxid }
                    | QuorumBody::Commit { zxid } => out.put_i64(*zxid),
                    QuorumBody::UpToDate { commit } => out.put_i64(*commit),
                    QuorumBody::NewLeader { epoch, zxid } => {
                        out.put_i64(*epoch);
                        out.put_i64(*zxid);
                    }
                    QuorumBody::Proposal { entry } => write_entry(out, entry),
                    QuorumBody::Ping => {}
                }
            }
            PeerMessage::Learner(m) => match m {
                LearnerMessage::Request {
                    session,
                    auth,
                    request,
                } => {
                    assert!(auth.len() <= MAX_AUTH_IDS, "too many identities");
                    out.put_i32(FORWARDED_REQUEST);
                    out.put_i64(*session);
                    out.put_i32(auth.len() as i32);
                    for id in auth {
                        id.encode(out);
                    }
                    write_buffer(out, Some(request));
                }
                LearnerMessage::CreateSession {
                    session,
                    timeout_ms,
                    password,
                } => {
                    out.put_i32(CREATE_SESSION);
                    out.put_i64(*session);
                    out.put_i32(*timeout_ms);
                    out.put_slice(password);
                }
                LearnerMessage::Touch { sessions } => {
                    assert!(sessions.len() <= MAX_SESSIONS_PER_TOUCH, "touch too long");
                    out.put_i32(TOUCH);
                    out.put_i32(sessions.len() as i32);
                    for s in sessions {
                        out.put_i64(*s);
                    }
                }
                LearnerMessage::Sync { session, cxid } => {
                    out.put_i32(SYNC);
                    out.put_i64(*session);
                    out.put_i32(*cxid);
                }
                LearnerMessage::Synced {
                    session,
                    cxid,
                    zxid,
                } => {
                    out.put_i32(SYNCED);
                    out.put_i64(*session);
                    out.put_i32(*cxid);
                    out.put_i64(*zxid);
                }
                LearnerMessage::SnapshotChunk {
                    zxid,
                    index,
                    last,
                    data,
                } => {
                    out.put_i32(SNAPSHOT_CHUNK);
                    out.put_i64(*zxid);
                    out.put_i32(*index as i32);
                    write_bool(out, *last);
                    write_buffer(out, Some(data));
                }
            },
        }
    }

    /// Decodes one whole frame body; bytes left over are an error.
    pub fn decode(mut input: &[u8]) -> DecodeResult<Self> {
        let version = read_i32(&mut input, "peer protocol version")?;
        if version != PEER_PROTOCOL_VERSION {
            return Err(DecodeError::invalid(
                "peer protocol version",
                format!("version {version}, this server speaks {PEER_PROTOCOL_VERSION}"),
            ));
        }
        let kind = read_i32(&mut input, "peer message kind")?;
        let message = if kind >= FORWARDED_REQUEST {
            PeerMessage::Learner(read_learner(kind, &mut input)?)
        } else if kind == NOTIFICATION {
            let round = read_u64(&mut input, "election round")?;
            let state = match read_i32(&mut input, "peer state")? {
                0 => PeerState::Looking,
                1 => PeerState::Following,
                2 => PeerState::Leading,
                3 => PeerState::Observing,
                other => {
                    return Err(DecodeError::invalid(
                        "peer state",
                        format!("unknown {other}"),
                    ))
                }
            };
            let epoch = read_epoch(&mut input, "vote epoch")?;
            let zxid = read_zxid(&mut input, "vote zxid")?;
            let leader = read_u64(&mut input, "vote leader")?;
            PeerMessage::Notification(Notification {
                round,
                state,
                vote: Vote {
                    epoch,
                    zxid,
                    leader,
                },
            })
        } else {
            let link = read_u64(&mut input, "link")?;
            let seq = read_u64(&mut input, "sequence number")?;
            let body = match kind {
                FOLLOWER_INFO => QuorumBody::FollowerInfo {
                    accepted_epoch: read_epoch(&mut input, "accepted epoch")?,
                    observer: read_bool(&mut input, "observer")?,
                },
                LEADER_INFO => QuorumBody::LeaderInfo {
                    epoch: read_epoch(&mut input, "epoch")?,
                },
                ACK_EPOCH => QuorumBody::AckEpoch {
                    current_epoch: read_epoch(&mut input, "current epoch")?,
                    last_zxid: read_zxid(&mut input, "last zxid")?,
                },
                DIFF => {
                    let count = read_i32(&mut input, "entry count")?;
                    let count = usize::try_from(count)
                        .ok()
                        .filter(|&n| n <= MAX_ENTRIES_PER_MESSAGE)
                        .ok_or_else(|| {
                            DecodeError::invalid("entry count", format!("{count} entries"))
                        })?;
                    let mut entries: Vec<Entry<Bytes>> = Vec::with_capacity(count.min(64));
                    for _ in 0..count {
                        let entry = read_entry(&mut input)?;
                        if let Some(prev) = entries.last() {
                            if entry.zxid <= prev.zxid {
                                return Err(DecodeError::invalid(
                                    "entry zxid",
                                    format!("{:#x} after {:#x}", entry.zxid, prev.zxid),
                                ));
                            }
                        }
                        entries.push(entry);
                    }
                    QuorumBody::Diff { entries }
                }
                TRUNC => QuorumBody::Trunc {
                    zxid: read_zxid(&mut input, "zxid")?,
                },
                SNAP => QuorumBody::Snap {
                    zxid: read_zxid(&mut input, "zxid")?,
                },
                NEW_LEADER => QuorumBody::NewLeader {
                    epoch: read_epoch(&mut input, "epoch")?,
                    zxid: read_zxid(&mut input, "zxid")?,
                },
                ACK_NEW_LEADER => QuorumBody::AckNewLeader {
                    epoch: read_epoch(&mut input, "epoch")?,
                },
                UP_TO_DATE => QuorumBody::UpToDate {
                    commit: read_zxid(&mut input, "commit zxid")?,
                },
                PROPOSAL => QuorumBody::Proposal {
                    entry: read_entry(&mut input)?,
                },
                ACK => QuorumBody::Ack {
                    zxid: read_zxid(&mut input, "zxid")?,
                },
                COMMIT => QuorumBody::Commit {
                    zxid: read_zxid(&mut input, "zxid")?,
                },
                PING => QuorumBody::Ping,
                other => {
                    return Err(DecodeError::invalid(
                        "peer message kind",
                        format!("unknown {other}"),
                    ))
                }
            };
            PeerMessage::Quorum(QuorumMessage { link, seq, body })
        };
        if input.has_remaining() {
            return Err(DecodeError::invalid(
                "peer message",
                format!("{} bytes after the message", input.remaining()),
            ));
        }
        Ok(message)
    }
}

/// Reads a count that must lie in `0..=max`.
fn read_count<B: Buf>(input: &mut B, what: &'static str, max: usize) -> DecodeResult<usize> {
    let count = read_i32(input, what)?;
    usize::try_from(count)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| DecodeError::invalid(what, format!("{count}, at most {max}")))
}

fn read_learner<B: Buf>(kind: i32, input: &mut B) -> DecodeResult<LearnerMessage> {
    Ok(match kind {
        FORWARDED_REQUEST => {
            let session = read_i64(input, "session id")?;
            let count = read_count(input, "identity count", MAX_AUTH_IDS)?;
            let mut auth = Vec::with_capacity(count);
            for _ in 0..count {
                auth.push(Id::decode(input)?);
            }
            let request = read_buffer_non_null(input, "forwarded request")?;
            LearnerMessage::Request {
                session,
                auth,
                request,
            }
        }
        CREATE_SESSION => {
            let session = read_i64(input, "session id")?;
            let timeout_ms = read_i32(input, "session timeout")?;
            if input.remaining() < 16 {
                return Err(DecodeError::invalid("session password", "truncated"));
            }
            let mut password = [0u8; 16];
            input.copy_to_slice(&mut password);
            LearnerMessage::CreateSession {
                session,
                timeout_ms,
                password,
            }
        }
        TOUCH => {
            let count = read_count(input, "session count", MAX_SESSIONS_PER_TOUCH)?;
            if input.remaining() < count * 8 {
                return Err(DecodeError::invalid("touched sessions", "truncated"));
            }
            let sessions = (0..count).map(|_| input.get_i64()).collect();
            LearnerMessage::Touch { sessions }
        }
        SYNC => LearnerMessage::Sync {
            session: read_i64(input, "session id")?,
            cxid: read_i32(input, "xid")?,
        },
        SYNCED => LearnerMessage::Synced {
            session: read_i64(input, "session id")?,
            cxid: read_i32(input, "xid")?,
            zxid: read_zxid(input, "zxid")?,
        },
        SNAPSHOT_CHUNK => LearnerMessage::SnapshotChunk {
            zxid: read_zxid(input, "snapshot zxid")?,
            index: read_count(input, "chunk index", i32::MAX as usize)? as u32,
            last: read_bool(input, "last chunk")?,
            data: read_buffer_non_null(input, "chunk data")?,
        },
        other => {
            return Err(DecodeError::invalid(
                "peer message kind",
                format!("unknown {other}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(message: PeerMessage<Bytes>) {
        let mut out = Vec::new();
        message.encode(&mut out);
        assert_eq!(PeerMessage::decode(&out).unwrap(), message);
        // Every strict prefix is incomplete or invalid, never a panic.
        for cut in 0..out.len() {
            assert!(PeerMessage::decode(&out[..cut]).is_err(), "prefix {cut}");
        }
    }

    fn entry(zxid: i64) -> Entry<Bytes> {
        Entry {
            zxid,
            payload: Bytes::from(vec![zxid as u8; 5]),
        }
    }

    fn quorum(body: QuorumBody<Bytes>) -> PeerMessage<Bytes> {
        PeerMessage::Quorum(QuorumMessage {
            link: 7 << 32 | 3,
            seq: 12,
            body,
        })
    }

    #[test]
    fn every_message_roundtrips() {
        roundtrip(PeerMessage::Notification(Notification {
            round: 4,
            state: PeerState::Looking,
            vote: Vote {
                epoch: 3,
                zxid: 3 << 32 | 9,
                leader: 2,
            },
        }));
        for body in [
            QuorumBody::FollowerInfo {
                accepted_epoch: 5,
                observer: true,
            },
            QuorumBody::LeaderInfo { epoch: 6 },
            QuorumBody::AckEpoch {
                current_epoch: 5,
                last_zxid: 5 << 32 | 2,
            },
            QuorumBody::Diff {
                entries: vec![entry(1), entry(2), entry(1 << 32)],
            },
            QuorumBody::Diff { entries: vec![] },
            QuorumBody::Trunc { zxid: 9 },
            QuorumBody::Snap { zxid: 10 },
            QuorumBody::NewLeader {
                epoch: 6,
                zxid: 6 << 32,
            },
            QuorumBody::AckNewLeader { epoch: 6 },
            QuorumBody::UpToDate { commit: 44 },
            QuorumBody::Proposal { entry: entry(45) },
            QuorumBody::Ack { zxid: 45 },
            QuorumBody::Commit { zxid: 45 },
            QuorumBody::Ping,
        ] {
            roundtrip(quorum(body));
        }
        for m in [
            LearnerMessage::Request {
                session: 0x1234,
                auth: vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h")],
                request: Bytes::from_static(b"\0\0\0\x01\0\0\0\x05"),
            },
            LearnerMessage::CreateSession {
                session: -7,
                timeout_ms: 30_000,
                password: [9; 16],
            },
            LearnerMessage::Touch {
                sessions: vec![1, 2, i64::MIN],
            },
            LearnerMessage::Touch { sessions: vec![] },
            LearnerMessage::Sync {
                session: 5,
                cxid: 77,
            },
            LearnerMessage::Synced {
                session: 5,
                cxid: 77,
                zxid: 2 << 32 | 4,
            },
            LearnerMessage::SnapshotChunk {
                zxid: 3 << 32 | 9,
                index: 4,
                last: true,
                data: Bytes::from_static(b"chunk"),
            },
        ] {
            roundtrip(PeerMessage::Learner(m));
        }
    }

    #[test]
    fn payloads_map_and_the_first_failure_stops() {
        let diff = quorum(QuorumBody::Diff {
            entries: vec![entry(1), entry(2)],
        });
        let lens = diff.clone().try_map(|p| Ok::<_, ()>(p.len())).unwrap();
        match lens {
            PeerMessage::Quorum(QuorumMessage {
                body: QuorumBody::Diff { entries },
                ..
            }) => assert_eq!(entries.iter().map(|e| e.zxid).collect::<Vec<_>>(), [1, 2]),
            other => panic!("{other:?}"),
        }
        let mut seen = 0;
        let failed = diff.try_map(|_| {
            seen += 1;
            Err::<(), _>("no")
        });
        assert_eq!(failed, Err("no"));
        assert_eq!(seen, 1);
    }

    fn encoded(message: &PeerMessage<Bytes>) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode(&mut out);
        out
    }

    #[test]
    fn bad_messages_are_refused() {
        let ping = encoded(&quorum(QuorumBody::Ping));
        let mut other_version = ping.clone();
        other_version[3] = 2;
        let err = PeerMessage::decode(&other_version).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");

        let mut unknown = ping.clone();
        unknown[7] = 99;
        assert!(PeerMessage::decode(&unknown).is_err());

        let mut trailing = ping;
        trailing.push(0);
        assert!(PeerMessage::decode(&trailing).is_err());

        // Entries out of order.
        let mut out = Vec::new();
        out.put_i32(PEER_PROTOCOL_VERSION);
        out.put_i32(DIFF);
        out.put_i64(1);
        out.put_i64(0);
        out.put_i32(2);
        for zxid in [5i64, 4] {
            out.put_i64(zxid);
            write_buffer(&mut out, Some(b"x"));
        }
        let err = PeerMessage::decode(&out).unwrap_err();
        assert!(err.to_string().contains("after"), "{err}");

        // Too many entries is refused before reading them.
        let mut out = Vec::new();
        out.put_i32(PEER_PROTOCOL_VERSION);
        out.put_i32(DIFF);
        out.put_i64(1);
        out.put_i64(0);
        out.put_i32(MAX_ENTRIES_PER_MESSAGE as i32 + 1);
        assert!(PeerMessage::decode(&out).is_err());

        // A negative zxid, and an epoch beyond 32 bits.
        let commit = encoded(&quorum(QuorumBody::Commit { zxid: -1 }));
        assert!(PeerMessage::decode(&commit).is_err());
        let info = encoded(&quorum(QuorumBody::LeaderInfo { epoch: 1 << 33 }));
        assert!(PeerMessage::decode(&info).is_err());

        // Learner messages: counts over their limits, truncated fields.
        let mut touch = Vec::new();
        touch.put_i32(PEER_PROTOCOL_VERSION);
        touch.put_i32(TOUCH);
        touch.put_i32(MAX_SESSIONS_PER_TOUCH as i32 + 1);
        assert!(PeerMessage::decode(&touch).is_err());
        let mut touch = Vec::new();
        touch.put_i32(PEER_PROTOCOL_VERSION);
        touch.put_i32(TOUCH);
        touch.put_i32(3);
        touch.put_i64(1);
        assert!(PeerMessage::decode(&touch).is_err());
        let create = encoded(&PeerMessage::Learner(LearnerMessage::CreateSession {
            session: 1,
            timeout_ms: 1,
            password: [0; 16],
        }));
        assert!(PeerMessage::decode(&create[..create.len() - 1]).is_err());
        let mut forwarded = Vec::new();
        forwarded.put_i32(PEER_PROTOCOL_VERSION);
        forwarded.put_i32(FORWARDED_REQUEST);
        forwarded.put_i64(1);
        forwarded.put_i32(MAX_AUTH_IDS as i32 + 1);
        assert!(PeerMessage::decode(&forwarded).is_err());
    }

    #[test]
    fn votes_order_by_epoch_then_zxid_then_id() {
        let v = |epoch, zxid, leader| Vote {
            epoch,
            zxid,
            leader,
        };
        assert!(v(2, 1, 1) > v(1, 100, 3));
        assert!(v(1, 5, 1) > v(1, 4, 3));
        assert!(v(1, 5, 3) > v(1, 5, 2));
    }
}
