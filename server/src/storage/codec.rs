//! The bytes of the log and of snapshots: a `Txn` encoding, snapshot items,
//! and the checksummed envelope every stored value is wrapped in.
//!
//! Stored value = CRC-32C of the payload (4 bytes, big-endian) ‖ payload.
//! Payloads start with a format version, so that a later format can be read
//! next to this one.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zoo_wire::jute::{
    read_buffer, read_i32, read_i64, read_string_non_null, read_vec, write_buffer, write_string,
};
use zoo_wire::{Acl, DecodeError, ErrorCode, Record};

use crate::tree::StoredStat;
use crate::txn::{Txn, TxnOp};

/// The log entry format written by this version.
const TXN_FORMAT: u8 = 1;

/// Wraps a payload in its checksum.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.put_u32(crc32c::crc32c(payload));
    out.put_slice(payload);
    out
}

/// The payload of a sealed value, if its checksum holds.
pub fn unseal(value: &[u8]) -> Result<&[u8], String> {
    if value.len() < 4 {
        return Err(format!("{} bytes, shorter than a checksum", value.len()));
    }
    let (sum, payload) = value.split_at(4);
    let expected = u32::from_be_bytes(sum.try_into().expect("four bytes"));
    let actual = crc32c::crc32c(payload);
    if expected != actual {
        return Err(format!(
            "checksum mismatch (stored {expected:#010x}, computed {actual:#010x})"
        ));
    }
    Ok(payload)
}

/// The log key of a zxid: big-endian, so that keys sort in zxid order.
pub fn zxid_key(zxid: i64) -> [u8; 8] {
    (zxid as u64).to_be_bytes()
}

pub fn key_zxid(key: &[u8]) -> Result<i64, String> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| format!("log key of {} bytes, not 8", key.len()))?;
    Ok(u64::from_be_bytes(bytes) as i64)
}

/// Encodes a transaction (without the checksum).
pub fn encode_txn(txn: &Txn, out: &mut BytesMut) {
    out.put_u8(TXN_FORMAT);
    out.put_i64(txn.zxid);
    out.put_i64(txn.time_ms);
    out.put_i64(txn.session_id);
    out.put_i32(txn.cxid);
    encode_op(&txn.op, out);
}

fn encode_acl(acl: &[Acl], out: &mut BytesMut) {
    out.put_i32(acl.len() as i32);
    for entry in acl {
        entry.encode(out);
    }
}

fn encode_op(op: &TxnOp, out: &mut BytesMut) {
    match op {
        TxnOp::CreateSession {
            session_id,
            timeout_ms,
            password,
        } => {
            out.put_u8(1);
            out.put_i64(*session_id);
            out.put_i32(*timeout_ms);
            out.put_slice(password);
        }
        TxnOp::CloseSession { session_id } => {
            out.put_u8(2);
            out.put_i64(*session_id);
        }
        TxnOp::Create {
            path,
            data,
            acl,
            ephemeral_owner,
        } => {
            out.put_u8(3);
            write_string(out, path);
            write_buffer(out, data.as_deref());
            encode_acl(acl, out);
            out.put_i64(*ephemeral_owner);
        }
        TxnOp::Delete { path } => {
            out.put_u8(4);
            write_string(out, path);
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            out.put_u8(5);
            write_string(out, path);
            write_buffer(out, data.as_deref());
            out.put_i32(*version);
        }
        TxnOp::SetAcl { path, acl, version } => {
            out.put_u8(6);
            write_string(out, path);
            encode_acl(acl, out);
            out.put_i32(*version);
        }
        TxnOp::Check { path } => {
            out.put_u8(7);
            write_string(out, path);
        }
        TxnOp::Multi(ops) => {
            out.put_u8(8);
            out.put_i32(ops.len() as i32);
            for op in ops {
                encode_op(op, out);
            }
        }
        TxnOp::Error(code) => {
            out.put_u8(9);
            out.put_i32(code.as_i32());
        }
        TxnOp::MultiError(codes) => {
            out.put_u8(10);
            out.put_i32(codes.len() as i32);
            for code in codes {
                out.put_i32(code.as_i32());
            }
        }
    }
}

/// Decodes a transaction; every byte must be used.
pub fn decode_txn(mut input: &[u8]) -> Result<Txn, DecodeError> {
    let buf = &mut input;
    let format = read_u8(buf, "txn format")?;
    if format != TXN_FORMAT {
        return Err(invalid("txn format", format!("unknown format {format}")));
    }
    let txn = Txn {
        zxid: read_i64(buf, "zxid")?,
        time_ms: read_i64(buf, "time")?,
        session_id: read_i64(buf, "session id")?,
        cxid: read_i32(buf, "cxid")?,
        op: decode_op(buf, true)?,
    };
    if buf.has_remaining() {
        return Err(invalid(
            "txn",
            format!("{} bytes after the end", buf.remaining()),
        ));
    }
    Ok(txn)
}

fn invalid(what: &'static str, detail: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        what,
        detail: detail.into(),
    }
}

fn incomplete(what: &'static str, needed: usize, remaining: usize) -> DecodeError {
    DecodeError::Incomplete {
        what,
        needed,
        remaining,
    }
}

fn read_u8(buf: &mut &[u8], what: &'static str) -> Result<u8, DecodeError> {
    if buf.has_remaining() {
        Ok(buf.get_u8())
    } else {
        Err(incomplete(what, 1, 0))
    }
}

fn read_password(buf: &mut &[u8]) -> Result<[u8; 16], DecodeError> {
    if buf.remaining() < 16 {
        return Err(incomplete("password", 16, buf.remaining()));
    }
    let mut password = [0u8; 16];
    buf.copy_to_slice(&mut password);
    Ok(password)
}

fn read_acl(buf: &mut &[u8]) -> Result<Vec<Acl>, DecodeError> {
    Ok(read_vec(buf, "acl", Acl::MIN_LEN, Acl::decode)?.unwrap_or_default())
}

fn read_codes(buf: &mut &[u8]) -> Result<Vec<ErrorCode>, DecodeError> {
    Ok(read_vec(buf, "codes", 4, |b| {
        read_i32(b, "code").map(ErrorCode::from_i32)
    })?
    .unwrap_or_default())
}

fn decode_op(buf: &mut &[u8], top_level: bool) -> Result<TxnOp, DecodeError> {
    let tag = read_u8(buf, "txn op")?;
    Ok(match tag {
        1 => {
            let session_id = read_i64(buf, "session id")?;
            let timeout_ms = read_i32(buf, "timeout")?;
            let password = read_password(buf)?;
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                password,
            }
        }
        2 => TxnOp::CloseSession {
            session_id: read_i64(buf, "session id")?,
        },
        3 => TxnOp::Create {
            path: read_string_non_null(buf, "path")?,
            data: read_buffer(buf, "data")?,
            acl: read_acl(buf)?,
            ephemeral_owner: read_i64(buf, "owner")?,
        },
        4 => TxnOp::Delete {
            path: read_string_non_null(buf, "path")?,
        },
        5 => TxnOp::SetData {
            path: read_string_non_null(buf, "path")?,
            data: read_buffer(buf, "data")?,
            version: read_i32(buf, "version")?,
        },
        6 => TxnOp::SetAcl {
            path: read_string_non_null(buf, "path")?,
            acl: read_acl(buf)?,
            version: read_i32(buf, "version")?,
        },
        7 => TxnOp::Check {
            path: read_string_non_null(buf, "path")?,
        },
        8 if top_level => {
            let ops = read_vec(buf, "multi", 1, |b| decode_op(b, false))?.unwrap_or_default();
            TxnOp::Multi(ops)
        }
        9 => TxnOp::Error(ErrorCode::from_i32(read_i32(buf, "code")?)),
        10 => TxnOp::MultiError(read_codes(buf)?),
        other => {
            return Err(invalid(
                "txn op",
                format!("unknown or misplaced op tag {other}"),
            ))
        }
    })
}

/// A node as a snapshot stores it: everything but the children, which are
/// rebuilt from the paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub path: String,
    pub data: Option<Bytes>,
    pub acl: Vec<Acl>,
    pub stat: StoredStat,
}

/// A live session as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: i64,
    pub timeout_ms: i32,
    pub password: [u8; 16],
}

/// One entry of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotItem {
    Node(NodeRecord),
    Session(SessionRecord),
}

pub fn encode_node(
    path: &str,
    data: Option<&[u8]>,
    acl: &[Acl],
    stat: &StoredStat,
    out: &mut BytesMut,
) {
    out.put_u8(1);
    write_string(out, path);
    write_buffer(out, data);
    encode_acl(acl, out);
    for v in [stat.czxid, stat.mzxid, stat.ctime, stat.mtime] {
        out.put_i64(v);
    }
    for v in [stat.version, stat.cversion, stat.aversion] {
        out.put_i32(v);
    }
    out.put_i64(stat.ephemeral_owner);
    out.put_i64(stat.pzxid);
}

pub fn encode_session(session: &SessionRecord, out: &mut BytesMut) {
    out.put_u8(2);
    out.put_i64(session.id);
    out.put_i32(session.timeout_ms);
    out.put_slice(&session.password);
}

/// Decodes the items of one snapshot chunk, in order.
pub fn decode_items(mut input: &[u8], items: &mut Vec<SnapshotItem>) -> Result<(), DecodeError> {
    let buf = &mut input;
    while buf.has_remaining() {
        let item = match read_u8(buf, "snapshot item")? {
            1 => {
                let path = read_string_non_null(buf, "path")?;
                let data = read_buffer(buf, "data")?;
                let acl = read_acl(buf)?;
                let stat = StoredStat {
                    czxid: read_i64(buf, "czxid")?,
                    mzxid: read_i64(buf, "mzxid")?,
                    ctime: read_i64(buf, "ctime")?,
                    mtime: read_i64(buf, "mtime")?,
                    version: read_i32(buf, "version")?,
                    cversion: read_i32(buf, "cversion")?,
                    aversion: read_i32(buf, "aversion")?,
                    ephemeral_owner: read_i64(buf, "ephemeralOwner")?,
                    pzxid: read_i64(buf, "pzxid")?,
                };
                SnapshotItem::Node(NodeRecord {
                    path,
                    data,
                    acl,
                    stat,
                })
            }
            2 => {
                let id = read_i64(buf, "session id")?;
                let timeout_ms = read_i32(buf, "timeout")?;
                let password = read_password(buf)?;
                SnapshotItem::Session(SessionRecord {
                    id,
                    timeout_ms,
                    password,
                })
            }
            other => {
                return Err(invalid(
                    "snapshot item",
                    format!("unknown item tag {other}"),
                ))
            }
        };
        items.push(item);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoo_wire::Id;

    fn sample_txns() -> Vec<Txn> {
        let acl = vec![Acl {
            perms: zoo_wire::Perms::ALL,
            id: Id::new("digest", "u:h"),
        }];
        let ops = vec![
            TxnOp::CreateSession {
                session_id: 7,
                timeout_ms: 4000,
                password: [9; 16],
            },
            TxnOp::CloseSession { session_id: 7 },
            TxnOp::Create {
                path: "/a".into(),
                data: None,
                acl: acl.clone(),
                ephemeral_owner: i64::MIN,
            },
            TxnOp::Create {
                path: "/b".into(),
                data: Some(Bytes::new()),
                acl: vec![],
                ephemeral_owner: 0,
            },
            TxnOp::Delete { path: "/a".into() },
            TxnOp::SetData {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"v")),
                version: 3,
            },
            TxnOp::SetAcl {
                path: "/a".into(),
                acl,
                version: -1,
            },
            TxnOp::Multi(vec![
                TxnOp::Check { path: "/a".into() },
                TxnOp::Delete { path: "/a".into() },
            ]),
            TxnOp::Error(ErrorCode::NodeExists),
            TxnOp::MultiError(vec![ErrorCode::Ok, ErrorCode::NoNode]),
        ];
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| Txn {
                zxid: (1 << 32) + i as i64,
                time_ms: 1_700_000_000_000 + i as i64,
                session_id: -5,
                cxid: i as i32,
                op,
            })
            .collect()
    }

    #[test]
    fn txns_round_trip_and_every_truncation_fails() {
        for txn in sample_txns() {
            let mut buf = BytesMut::new();
            encode_txn(&txn, &mut buf);
            assert_eq!(decode_txn(&buf).unwrap(), txn);
            for cut in 0..buf.len() {
                assert!(decode_txn(&buf[..cut]).is_err(), "{txn:?} cut at {cut}");
            }
            let mut longer = buf.to_vec();
            longer.push(0);
            assert!(decode_txn(&longer).is_err());
        }
    }

    #[test]
    fn nested_multi_is_rejected() {
        let txn = Txn {
            zxid: 1,
            time_ms: 0,
            session_id: 0,
            cxid: 0,
            op: TxnOp::Multi(vec![TxnOp::Multi(vec![])]),
        };
        let mut buf = BytesMut::new();
        encode_txn(&txn, &mut buf);
        assert!(decode_txn(&buf).is_err());
    }

    #[test]
    fn every_flipped_bit_breaks_the_seal() {
        let sealed = seal(b"some payload");
        assert_eq!(unseal(&sealed).unwrap(), b"some payload");
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[byte] ^= 1 << bit;
                assert!(unseal(&bad).is_err(), "byte {byte} bit {bit}");
            }
        }
        assert!(unseal(&[1, 2]).is_err());
    }

    #[test]
    fn keys_sort_in_zxid_order() {
        let mut zxids = [5i64, 1 << 32, 255, 256, (3 << 32) + 1, 1];
        let mut keys: Vec<_> = zxids.iter().map(|z| zxid_key(*z)).collect();
        keys.sort();
        zxids.sort();
        let back: Vec<i64> = keys.iter().map(|k| key_zxid(k).unwrap()).collect();
        assert_eq!(back, zxids);
    }

    #[test]
    fn snapshot_items_round_trip() {
        let node = NodeRecord {
            path: "/x/y".into(),
            data: Some(Bytes::from_static(b"data")),
            acl: Acl::open_unsafe(),
            stat: StoredStat {
                czxid: 1,
                mzxid: 2,
                ctime: 3,
                mtime: 4,
                version: 5,
                cversion: 6,
                aversion: 7,
                ephemeral_owner: 8,
                pzxid: 9,
            },
        };
        let session = SessionRecord {
            id: 42,
            timeout_ms: 30_000,
            password: [3; 16],
        };
        let mut buf = BytesMut::new();
        encode_node(
            &node.path,
            node.data.as_deref(),
            &node.acl,
            &node.stat,
            &mut buf,
        );
        encode_session(&session, &mut buf);
        let mut items = Vec::new();
        decode_items(&buf, &mut items).unwrap();
        assert_eq!(
            items,
            vec![SnapshotItem::Node(node), SnapshotItem::Session(session)]
        );
        for cut in 1..buf.len() {
            let mut items = Vec::new();
            if cut != buf.len() - 29 {
                assert!(decode_items(&buf[..cut], &mut items).is_err(), "cut {cut}");
            }
        }
    }
}
