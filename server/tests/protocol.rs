//! The server over real TCP on loopback, spoken to frame by frame: every
//! operation's reply, the error paths in ZooKeeper's check order, Stat
//! bookkeeping, sessions and their expiry, watches and their order, and bad
//! input that must leave the server serving.

mod support;

use std::time::Duration;

use bytes::Bytes;
use support::*;
use zoo_wire::*;

fn create_body(path: &str, mode: CreateMode) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"d")),
        acl: Some(Acl::open_unsafe()),
        flags: mode.as_i32(),
    }
}

/// The first zxid of epoch 1, which a new data directory's first leader
/// establishes.
const E1: i64 = 1 << 32;

#[tokio::test]
async fn crud_and_stat_bookkeeping() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;

    // A new data directory's first epoch is 1. createSession took zxid
    // E1 + 1; the first create is E1 + 2.
    assert_eq!(
        c.create("/a", b"hi", CreateMode::Persistent).await,
        Ok("/a".into())
    );
    let (data, stat) = c.get("/a", false).await.unwrap();
    assert_eq!(data.as_deref(), Some(&b"hi"[..]));
    assert_eq!(
        (
            stat.czxid,
            stat.mzxid,
            stat.pzxid,
            stat.version,
            stat.data_length
        ),
        (E1 + 2, E1 + 2, E1 + 2, 0, 2)
    );

    assert_eq!(
        c.create("/a", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NodeExists)
    );
    // The failed create still took zxid 3.
    let stat = c.set("/a", b"x", 0).await.unwrap();
    assert_eq!((stat.mzxid, stat.version), (E1 + 4, 1));
    assert_eq!(c.set("/a", b"x", 0).await, Err(ErrorCode::BadVersion));

    assert_eq!(
        c.create("/a/b", b"", CreateMode::Persistent).await,
        Ok("/a/b".into())
    );
    let a = c.stat("/a").await;
    assert_eq!((a.cversion, a.num_children, a.pzxid), (1, 1, E1 + 6));
    assert_eq!(c.delete("/a", -1).await, ErrorCode::NotEmpty);
    assert_eq!(c.delete("/a/b", 5).await, ErrorCode::BadVersion);
    assert_eq!(c.delete("/a/b", 0).await, ErrorCode::Ok);
    let a = c.stat("/a").await;
    assert_eq!(
        (a.cversion, a.num_children),
        (2, 0),
        "visible cversion counts deletes"
    );
    assert_eq!(c.get("/a/b", false).await, Err(ErrorCode::NoNode));
    assert_eq!(c.delete("/zookeeper", -1).await, ErrorCode::BadArguments);
    assert_eq!(c.delete("/nope/x", -1).await, ErrorCode::NoNode);

    // Null data stays null; empty stays empty.
    let (h, _) = c
        .call(RequestBody::Create(CreateRequest {
            path: "/null".into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags: 0,
        }))
        .await;
    assert_eq!(h.err, ErrorCode::Ok);
    assert_eq!(c.get("/null", false).await.unwrap().0, None);
    assert_eq!(c.get("/", false).await.unwrap().0, Some(Bytes::new()));

    let root = c.stat("/zookeeper").await;
    assert_eq!((root.num_children, root.cversion), (2, -2));
    let (h, body) = c
        .call(RequestBody::GetAllChildrenNumber(
            GetAllChildrenNumberRequest { path: "/".into() },
        ))
        .await;
    assert_eq!(h.err, ErrorCode::Ok);
    assert_eq!(
        body,
        Some(ResponseBody::GetAllChildrenNumber(
            GetAllChildrenNumberResponse { total_number: 5 }
        ))
    );
}

#[tokio::test]
async fn every_write_takes_a_zxid_and_replies_carry_the_last() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    let (h, _) = c
        .call(RequestBody::Exists(ExistsRequest {
            path: "/x".into(),
            watch: false,
        }))
        .await;
    assert_eq!((h.err, h.zxid), (ErrorCode::NoNode, E1 + 1));
    let (h, _) = c
        .call(RequestBody::Delete(DeleteRequest {
            path: "/x".into(),
            version: -1,
        }))
        .await;
    assert_eq!((h.err, h.zxid), (ErrorCode::NoNode, E1 + 2));
    let (h, _) = c
        .call(RequestBody::Sync(SyncRequest { path: "/x".into() }))
        .await;
    assert_eq!(h.zxid, E1 + 2, "reads take no zxid");
}

#[tokio::test]
async fn create_modes_and_sequences() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    c.create("/q", b"", CreateMode::Persistent).await.unwrap();
    c.create("/q/plain", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        c.create("/q/n-", b"", CreateMode::PersistentSequential)
            .await,
        Ok("/q/n-0000000001".into())
    );
    assert_eq!(
        c.create("/q/", b"", CreateMode::EphemeralSequential).await,
        Ok("/q/0000000002".into())
    );
    let e = c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    assert_eq!(c.stat(&e).await.ephemeral_owner, c.session_id);
    assert_eq!(
        c.create("/eph/child", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NoChildrenForEphemerals)
    );

    let (h, body) = c
        .call(RequestBody::CreateContainer(create_body(
            "/box",
            CreateMode::Container,
        )))
        .await;
    assert_eq!(h.err, ErrorCode::Ok);
    let Some(ResponseBody::Create2(r)) = body else {
        panic!("{body:?}")
    };
    assert_eq!(r.stat.ephemeral_owner, 0, "containers show owner 0");

    let ttl = |ttl: i64| {
        RequestBody::CreateTtl(CreateTtlRequest {
            path: "/ttl".into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags: CreateMode::PersistentWithTtl.as_i32(),
            ttl,
        })
    };
    assert_eq!(c.err(ttl(0)).await, ErrorCode::BadArguments);
    assert_eq!(c.err(ttl(60_000)).await, ErrorCode::Ok);
    assert_eq!(c.stat("/ttl").await.ephemeral_owner, 0);
    assert_eq!(
        c.create("/bad", b"", CreateMode::Persistent).await,
        Ok("/bad".into())
    );
    let bad_flags = RequestBody::Create(CreateRequest {
        flags: 42,
        ..create_body("/f", CreateMode::Persistent)
    });
    assert_eq!(c.err(bad_flags).await, ErrorCode::BadArguments);
    // The parent is looked up before the path is validated (ZooKeeper's order).
    let bad_path = RequestBody::Create(create_body("/a//b", CreateMode::Persistent));
    assert_eq!(c.err(bad_path).await, ErrorCode::NoNode);
    let bad_path = RequestBody::Create(create_body("/.", CreateMode::Persistent));
    assert_eq!(c.err(bad_path).await, ErrorCode::BadArguments);
    let no_acl = RequestBody::Create(CreateRequest {
        acl: Some(vec![]),
        ..create_body("/n", CreateMode::Persistent)
    });
    assert_eq!(c.err(no_acl).await, ErrorCode::InvalidAcl);

    let (_, body) = c
        .call(RequestBody::GetEphemerals(GetEphemeralsRequest {
            prefix_path: Some("/q".into()),
        }))
        .await;
    assert_eq!(
        body,
        Some(ResponseBody::GetEphemerals(GetEphemeralsResponse {
            ephemerals: vec!["/q/0000000002".into()]
        }))
    );
}

#[tokio::test]
async fn ttl_requires_extended_types() {
    let mut config = test_config();
    config.extended_types_enabled = false;
    let server = TestServer::start(config).await;
    let mut c = RawClient::connect(server.addr).await;
    let body = RequestBody::CreateTtl(CreateTtlRequest {
        path: "/ttl".into(),
        data: None,
        acl: Some(Acl::open_unsafe()),
        flags: CreateMode::PersistentWithTtl.as_i32(),
        ttl: 1000,
    });
    assert_eq!(c.err(body).await, ErrorCode::Unimplemented);
}

#[tokio::test]
async fn multi_is_all_or_nothing() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    c.create("/a", b"", CreateMode::Persistent).await.unwrap();
    let ok = MultiRequest {
        ops: vec![
            MultiOp::Create(create_body("/m", CreateMode::Persistent)),
            MultiOp::Create(create_body("/m/c", CreateMode::Persistent)),
            MultiOp::SetData(SetDataRequest {
                path: "/a".into(),
                data: None,
                version: 0,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 1,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/m/c".into(),
                version: -1,
            }),
        ],
    };
    let (h, body) = c.call(RequestBody::Multi(ok)).await;
    assert_eq!(h.err, ErrorCode::Ok);
    let Some(ResponseBody::Multi(r)) = body else {
        panic!()
    };
    assert!(matches!(&r.results[0], OpResult::Create(x) if x.path == "/m"));
    assert!(matches!(&r.results[2], OpResult::SetData(s) if s.stat.version == 1));
    assert_eq!(r.results[3], OpResult::Check);
    assert_eq!(r.results[4], OpResult::Delete);
    // One zxid for the whole multi.
    assert_eq!(c.stat("/m").await.czxid, c.stat("/a").await.mzxid);

    let failing = MultiRequest {
        ops: vec![
            MultiOp::Create(create_body("/n", CreateMode::Persistent)),
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 7,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/m".into(),
                version: -1,
            }),
        ],
    };
    let (h, body) = c.call(RequestBody::Multi(failing)).await;
    assert_eq!(h.err, ErrorCode::Ok);
    assert_eq!(
        body,
        Some(ResponseBody::Multi(MultiResponse {
            results: vec![
                OpResult::Error(ErrorCode::Ok),
                OpResult::Error(ErrorCode::BadVersion),
                OpResult::Error(ErrorCode::RuntimeInconsistency),
            ]
        }))
    );
    assert_eq!(
        c.get("/n", false).await,
        Err(ErrorCode::NoNode),
        "nothing applied"
    );

    let reads = MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/a".into(),
                watch: false,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/missing".into(),
                watch: false,
            }),
        ],
    };
    let (_, body) = c.call(RequestBody::MultiRead(reads.clone())).await;
    let Some(ResponseBody::Multi(r)) = body else {
        panic!()
    };
    assert!(matches!(r.results[0], OpResult::GetData(_)));
    assert_eq!(r.results[1], OpResult::Error(ErrorCode::NoNode));
    assert_eq!(
        c.err(RequestBody::Multi(reads)).await,
        ErrorCode::MarshallingError
    );
}

#[tokio::test]
async fn acls_and_digest_auth() {
    let server = TestServer::default().await;
    let mut owner = RawClient::connect(server.addr).await;
    let auth = |who: &str| {
        RequestBody::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(Bytes::copy_from_slice(who.as_bytes())),
        })
    };
    let (h, _) = owner.call(auth("bob:pw")).await;
    assert_eq!((h.xid, h.zxid, h.err), (-4, 0, ErrorCode::Ok));
    let creator = RequestBody::Create(CreateRequest {
        acl: Some(Acl::creator_all()),
        ..create_body("/sec", CreateMode::Persistent)
    });
    assert_eq!(owner.err(creator).await, ErrorCode::Ok);
    let (_, body) = owner
        .call(RequestBody::GetAcl(GetAclRequest {
            path: "/sec".into(),
        }))
        .await;
    let Some(ResponseBody::GetAcl(acl)) = body else {
        panic!()
    };
    // `auth` became the creator's digest identity.
    assert_eq!(
        acl.acl,
        vec![Acl {
            perms: Perms::ALL,
            id: Id::new("digest", zoo_server::acl::digest_id(b"bob:pw"))
        }]
    );

    let mut stranger = RawClient::connect(server.addr).await;
    assert_eq!(stranger.get("/sec", false).await, Err(ErrorCode::NoAuth));
    assert_eq!(stranger.set("/sec", b"", -1).await, Err(ErrorCode::NoAuth));
    assert_eq!(
        stranger
            .err(RequestBody::GetAcl(GetAclRequest {
                path: "/sec".into()
            }))
            .await,
        ErrorCode::NoAuth
    );
    let read_only = RequestBody::SetAcl(SetAclRequest {
        path: "/sec".into(),
        acl: Some(vec![
            Acl {
                perms: Perms::ALL,
                id: acl.acl[0].id.clone(),
            },
            Acl {
                perms: Perms::READ,
                id: Id::anyone(),
            },
        ]),
        version: 0,
    });
    let (h, body) = owner.call(read_only).await;
    assert_eq!(h.err, ErrorCode::Ok);
    assert!(matches!(body, Some(ResponseBody::SetAcl(r)) if r.stat.aversion == 1));
    // READ without ADMIN: digests are masked.
    let (_, body) = stranger
        .call(RequestBody::GetAcl(GetAclRequest {
            path: "/sec".into(),
        }))
        .await;
    let Some(ResponseBody::GetAcl(seen)) = body else {
        panic!()
    };
    assert_eq!(seen.acl[0].id.id(), "bob:x");
    assert_eq!(
        stranger.delete("/sec", -1).await,
        ErrorCode::Ok,
        "DELETE is checked on the parent"
    );

    let (_, body) = owner.call(RequestBody::WhoAmI).await;
    let Some(ResponseBody::WhoAmI(me)) = body else {
        panic!()
    };
    assert!(me
        .client_info
        .iter()
        .any(|i| i.auth_scheme == "digest" && i.user == "bob"));
    assert!(me
        .client_info
        .iter()
        .any(|i| i.auth_scheme == "ip" && i.user == "127.0.0.1"));

    // An unknown scheme fails auth and closes the connection.
    stranger
        .send(RequestBody::Auth(AuthPacket {
            auth_type: 0,
            scheme: "kerberos".into(),
            auth: None,
        }))
        .await;
    let reply = stranger.next_message().await;
    assert!(
        matches!(reply, Some(ServerMessage::Reply { header, .. }) if header.err == ErrorCode::AuthFailed)
    );
    assert!(
        stranger.next_message().await.is_none(),
        "connection closed after AUTHFAILED"
    );
}

#[tokio::test]
async fn super_digest_bypasses_acls() {
    let mut config = test_config();
    config.super_digest = Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into());
    let server = TestServer::start(config).await;
    let mut c = RawClient::connect(server.addr).await;
    let locked = RequestBody::Create(CreateRequest {
        acl: Some(vec![Acl {
            perms: Perms::ALL,
            id: Id::new("digest", "nobody:abc="),
        }]),
        ..create_body("/locked", CreateMode::Persistent)
    });
    assert_eq!(c.err(locked).await, ErrorCode::Ok);
    assert_eq!(c.get("/locked", false).await, Err(ErrorCode::NoAuth));
    let auth = RequestBody::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Some(Bytes::from_static(b"super:test")),
    });
    assert_eq!(c.err(auth).await, ErrorCode::Ok);
    assert!(c.get("/locked", false).await.is_ok());
}

#[tokio::test]
async fn watches_fire_once_and_before_the_reply() {
    let server = TestServer::default().await;
    let mut watcher = RawClient::connect(server.addr).await;
    let mut writer = RawClient::connect(server.addr).await;
    writer
        .create("/w", b"", CreateMode::Persistent)
        .await
        .unwrap();

    watcher.get("/w", true).await.unwrap();
    watcher.children("/w", true).await.unwrap();
    let (h, _) = watcher
        .call(RequestBody::Exists(ExistsRequest {
            path: "/new".into(),
            watch: true,
        }))
        .await;
    assert_eq!(
        h.err,
        ErrorCode::NoNode,
        "the exists watch is set on a missing node"
    );

    writer.set("/w", b"1", -1).await.unwrap();
    writer
        .create("/w/c", b"", CreateMode::Persistent)
        .await
        .unwrap();
    writer
        .create("/new", b"", CreateMode::Persistent)
        .await
        .unwrap();
    writer.set("/w", b"2", -1).await.unwrap(); // the data watch is spent
    watcher.wait_events(3).await;
    let got: Vec<_> = watcher
        .events
        .iter()
        .map(|(_, e)| (e.event_type, e.path.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (EventType::NodeDataChanged, "/w".into()),
            (EventType::NodeChildrenChanged, "/w".into()),
            (EventType::NodeCreated, "/new".into()),
        ]
    );
    let zxids: Vec<i64> = watcher.events.iter().map(|(z, _)| *z).collect();
    assert!(
        zxids.windows(2).all(|w| w[0] < w[1]),
        "notifications in zxid order: {zxids:?}"
    );

    // A client that changes what it watches sees the event before its reply.
    watcher.events.clear();
    watcher.get("/w", true).await.unwrap();
    let xid = watcher
        .send(RequestBody::Delete(DeleteRequest {
            path: "/w/c".into(),
            version: -1,
        }))
        .await;
    let first = watcher.next_message().await.unwrap();
    assert!(matches!(first, ServerMessage::Reply { header, .. } if header.xid == xid));
    watcher.get("/w", true).await.unwrap();
    writer.delete("/w/c", -1).await; // already gone: no event
    let xid = watcher
        .send(RequestBody::SetData(SetDataRequest {
            path: "/w".into(),
            data: None,
            version: -1,
        }))
        .await;
    match watcher.next_message().await.unwrap() {
        ServerMessage::Notification { event, .. } => {
            assert_eq!(event.event_type, EventType::NodeDataChanged)
        }
        other => panic!("expected the notification first, got {other:?}"),
    }
    assert!(
        matches!(watcher.next_message().await.unwrap(), ServerMessage::Reply { header, .. } if header.xid == xid)
    );
}

#[tokio::test]
async fn persistent_and_recursive_watches() {
    let server = TestServer::default().await;
    let mut watcher = RawClient::connect(server.addr).await;
    let mut writer = RawClient::connect(server.addr).await;
    let add = |path: &str, mode| {
        RequestBody::AddWatch(AddWatchRequest {
            path: path.into(),
            mode,
        })
    };
    let (h, body) = watcher.call(add("/p", AddWatchMode::Persistent)).await;
    assert_eq!(h.err, ErrorCode::Ok);
    assert_eq!(
        body,
        Some(ResponseBody::AddWatch(ErrorResponse { err: ErrorCode::Ok }))
    );
    watcher
        .call(add("/r", AddWatchMode::PersistentRecursive))
        .await;

    writer
        .create("/p", b"", CreateMode::Persistent)
        .await
        .unwrap();
    writer.set("/p", b"x", -1).await.unwrap();
    writer.set("/p", b"y", -1).await.unwrap();
    writer
        .create("/p/c", b"", CreateMode::Persistent)
        .await
        .unwrap();
    writer
        .create("/r", b"", CreateMode::Persistent)
        .await
        .unwrap();
    writer
        .create("/r/a", b"", CreateMode::Persistent)
        .await
        .unwrap();
    writer
        .create("/r/a/b", b"", CreateMode::Persistent)
        .await
        .unwrap();
    watcher.wait_events(7).await;
    let got: Vec<_> = watcher.seen();
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/p"),
            (EventType::NodeDataChanged, "/p"),
            (EventType::NodeDataChanged, "/p"),
            (EventType::NodeChildrenChanged, "/p"),
            (EventType::NodeCreated, "/r"),
            (EventType::NodeCreated, "/r/a"),
            (EventType::NodeCreated, "/r/a/b"),
        ]
    );
    let check = |t| {
        RequestBody::CheckWatches(WatchesRequest {
            path: "/p".into(),
            watcher_type: t,
        })
    };
    assert_eq!(
        watcher.err(check(WatcherType::Persistent)).await,
        ErrorCode::Ok
    );
    assert_eq!(
        watcher.err(check(WatcherType::Children)).await,
        ErrorCode::NoWatcher
    );
    let remove = RequestBody::RemoveWatches(WatchesRequest {
        path: "/p".into(),
        watcher_type: WatcherType::Any,
    });
    assert_eq!(watcher.err(remove.clone()).await, ErrorCode::Ok);
    assert_eq!(watcher.err(remove).await, ErrorCode::NoWatcher);
}

#[tokio::test]
async fn set_watches2_restores_persistent_watches_silently() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    let (h, _) = c
        .call(RequestBody::SetWatches2(SetWatches2 {
            relative_zxid: 0,
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec!["/r".into()],
            ..SetWatches2::default()
        }))
        .await;
    assert_eq!(h.err, ErrorCode::Ok);
    assert!(c.events.is_empty());
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    c.create("/r", b"", CreateMode::Persistent).await.unwrap();
    c.create("/r/deep", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.wait_events(3).await;
    let got: Vec<_> = c.seen();
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/p"),
            (EventType::NodeCreated, "/r"),
            (EventType::NodeCreated, "/r/deep")
        ]
    );
}

#[tokio::test]
async fn delete_container_from_a_client() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    c.create("/plain", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/plain/kid", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let dc = |p: &str| RequestBody::DeleteContainer(DeleteContainerRequest { path: p.into() });
    assert_eq!(c.err(dc("/plain")).await, ErrorCode::NotEmpty);
    assert_eq!(
        c.err(dc("/eph")).await,
        ErrorCode::BadArguments,
        "not for plain ephemerals"
    );
    assert_eq!(c.err(dc("/missing")).await, ErrorCode::NoNode);
    assert_eq!(
        c.err(dc("/plain/kid")).await,
        ErrorCode::Ok,
        "no ACL or version check"
    );
}

#[tokio::test]
async fn set_watches_restores_and_reports_missed_changes() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    c.create("/same", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/changed", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let (h, _) = c
        .call(RequestBody::Sync(SyncRequest { path: "/".into() }))
        .await;
    let seen = h.zxid;
    c.set("/changed", b"x", -1).await.unwrap();
    c.create("/appeared", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let (h, _) = c
        .call(RequestBody::SetWatches(SetWatches {
            relative_zxid: seen,
            data_watches: vec!["/same".into(), "/changed".into(), "/gone".into()],
            exist_watches: vec!["/appeared".into(), "/later".into()],
            child_watches: vec!["/same".into()],
        }))
        .await;
    assert_eq!(h.err, ErrorCode::Ok);
    let mut got: Vec<_> = c
        .events
        .iter()
        .map(|(z, e)| (*z, e.event_type, e.path.as_str()))
        .collect();
    got.sort_by_key(|(_, _, p)| p.to_string());
    assert_eq!(
        got,
        vec![
            (-1, EventType::NodeCreated, "/appeared"),
            (-1, EventType::NodeDataChanged, "/changed"),
            (-1, EventType::NodeDeleted, "/gone"),
        ]
    );
    c.events.clear();
    c.create("/later", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.set("/same", b"1", -1).await.unwrap();
    c.create("/same/kid", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.wait_events(3).await;
    let got: Vec<_> = c.seen();
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/later"),
            (EventType::NodeDataChanged, "/same"),
            (EventType::NodeChildrenChanged, "/same"),
        ]
    );
}

#[tokio::test]
async fn sessions_resume_expire_and_take_their_ephemerals() {
    let server = TestServer::default().await;
    // tickTime 100 ms: timeouts are clamped to 200..=2000 ms.
    let mut c = RawClient::connect_with(server.addr, 0, vec![0; 16], 1)
        .await
        .unwrap();
    assert_eq!(c.timeout_ms, 200);
    c.create("/e", b"", CreateMode::Ephemeral).await.unwrap();
    let (id, password) = (c.session_id, c.password.clone());

    // Resume from another connection: the old one is closed.
    let mut again = RawClient::connect_with(server.addr, id, password.clone(), 200)
        .await
        .expect("resumed");
    assert_eq!(again.session_id, id);
    assert!(
        c.next_message().await.is_none(),
        "the old connection was closed"
    );
    assert!(again.get("/e", false).await.is_ok());
    let mut wrong = password.clone();
    wrong[0] ^= 1;
    assert!(
        RawClient::connect_with(server.addr, id, wrong, 200)
            .await
            .is_none(),
        "bad password refused"
    );

    let mut observer = RawClient::connect(server.addr).await;
    observer.get("/e", true).await.unwrap();
    drop(again);
    observer.wait_events(1).await;
    assert_eq!(observer.events[0].1.event_type, EventType::NodeDeleted);
    assert_eq!(observer.get("/e", false).await, Err(ErrorCode::NoNode));
    assert!(
        RawClient::connect_with(server.addr, id, password, 200)
            .await
            .is_none(),
        "expired session refused"
    );
}

#[tokio::test]
async fn pings_keep_a_session_alive_and_close_session_ends_it() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect_with(server.addr, 0, vec![0; 16], 200)
        .await
        .unwrap();
    c.create("/alive", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(80)).await;
        c.send_raw(&[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]).await;
        match c.next_message().await.unwrap() {
            ServerMessage::Reply { header, .. } => {
                assert_eq!((header.xid, header.err), (-2, ErrorCode::Ok))
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        c.get("/alive", false).await.is_ok(),
        "640 ms of pings kept a 200 ms session"
    );
    let (h, _) = c.call(RequestBody::CloseSession).await;
    assert_eq!(h.err, ErrorCode::Ok);
    assert!(c.next_message().await.is_none());
    let mut other = RawClient::connect(server.addr).await;
    assert_eq!(other.get("/alive", false).await, Err(ErrorCode::NoNode));
}

#[tokio::test]
async fn bad_input_is_answered_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::default().await;
    let mut bystander = RawClient::connect(server.addr).await;
    bystander
        .create("/ok", b"", CreateMode::Persistent)
        .await
        .unwrap();

    // Garbage instead of a handshake, an oversized frame, a negative length,
    // and a frame cut short: each connection is closed without a reply.
    for junk in [
        &b"\x00\x00\x00\x05hello-garbage"[..],
        &b"\x00\x10\x00\x00"[..],
        &b"\xff\xff\xff\xf0"[..],
        &b"\x00\x00\x00\x30\x00\x00"[..],
        &b"wxyz"[..],
    ] {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(junk).await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out))
            .await
            .expect("closed");
        assert!(out.is_empty(), "no reply to {junk:?}");
    }

    // A malformed body: MARSHALLINGERROR, and the connection stays.
    let mut c = RawClient::connect(server.addr).await;
    c.send_raw_as(
        9,
        OpCode::GetData,
        &[0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0, 99, 1],
    )
    .await;
    match c.next_message().await.unwrap() {
        ServerMessage::Reply { header, .. } => {
            assert_eq!((header.xid, header.err), (9, ErrorCode::MarshallingError))
        }
        other => panic!("{other:?}"),
    }
    assert!(c.get("/ok", false).await.is_ok());
    // A bad path on a read is just a missing node; on a write, BADARGUMENTS.
    assert_eq!(c.get("no-slash", false).await, Err(ErrorCode::NoNode));
    assert_eq!(
        c.set("/a/../b", b"", -1).await,
        Err(ErrorCode::BadArguments)
    );
    // An unknown opcode: UNIMPLEMENTED with zxid -1, then the close.
    c.send_raw_as(5, OpCode::GetData, &[0, 0, 0, 5, 0, 0, 3, 0xe7])
        .await;
    match c.next_message().await.unwrap() {
        ServerMessage::Reply { header, .. } => {
            assert_eq!(
                (header.xid, header.zxid, header.err),
                (5, -1, ErrorCode::Unimplemented)
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(c.next_message().await.is_none());
    // A too-short frame closes without a reply.
    let mut c = RawClient::connect(server.addr).await;
    c.send_raw(&[0, 0]).await;
    assert!(c.next_message().await.is_none());

    // The bystander never noticed.
    assert!(bystander.get("/ok", false).await.is_ok());
    assert_eq!(four_letter(server.addr, "ruok").await, "imok");
}

#[tokio::test]
async fn connections_per_address_are_limited() {
    let mut config = test_config();
    config.max_client_cnxns = 2;
    let server = TestServer::start(config).await;
    let mut a = RawClient::connect(server.addr).await;
    let _b = RawClient::connect(server.addr).await;
    assert!(
        RawClient::connect_with(server.addr, 0, vec![0; 16], 1000)
            .await
            .is_none(),
        "a third connection is refused"
    );
    assert!(a.get("/", false).await.is_ok());
}

#[tokio::test]
async fn four_letter_words() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    c.create("/x", b"", CreateMode::Ephemeral).await.unwrap();
    c.get("/x", true).await.unwrap();
    let srvr = four_letter(server.addr, "srvr").await;
    assert!(srvr.starts_with("Zookeeper version: 3.8.4-zoo-"), "{srvr}");
    for line in [
        "Latency min/avg/max: ",
        "Received: ",
        "Connections: 2",
        "Zxid: 0x100000002",
        "Mode: standalone",
        "Node count: 6",
    ] {
        assert!(srvr.contains(line), "{line:?} missing from\n{srvr}");
    }
    let mntr = four_letter(server.addr, "mntr").await;
    assert!(mntr.starts_with("zk_version\t"), "{mntr}");
    let keys: Vec<&str> = mntr
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    // The keys ZooKeeper 3.6+ always prints (protocol section 14.3).
    for key in [
        "zk_version",
        "zk_server_state",
        "zk_avg_latency",
        "zk_max_latency",
        "zk_min_latency",
        "zk_packets_received",
        "zk_packets_sent",
        "zk_num_alive_connections",
        "zk_outstanding_requests",
        "zk_uptime",
        "zk_znode_count",
        "zk_watch_count",
        "zk_ephemerals_count",
        "zk_approximate_data_size",
        "zk_global_sessions",
        "zk_local_sessions",
        "zk_open_file_descriptor_count",
        "zk_max_file_descriptor_count",
        "zk_connection_drop_probability",
        "zk_last_client_response_size",
        "zk_max_client_response_size",
        "zk_min_client_response_size",
        "zk_outstanding_tls_handshake",
        "zk_auth_failed_count",
        "zk_non_mtls_remote_conn_count",
        "zk_non_mtls_local_conn_count",
    ] {
        assert!(keys.contains(&key), "{key} missing from mntr");
    }
    assert_eq!(keys[1], "zk_server_state");
    assert!(
        mntr.contains("zk_znode_count\t6\n") && mntr.contains("zk_ephemerals_count\t1\n"),
        "{mntr}"
    );
    assert!(four_letter(server.addr, "wchs")
        .await
        .starts_with("1 connections watching 1 paths\nTotal watches:1\n"));
    let dump = four_letter(server.addr, "dump").await;
    assert!(
        dump.contains(&format!("{:#x}:\n\t/x\n", c.session_id)),
        "{dump}"
    );
    assert!(four_letter(server.addr, "conf")
        .await
        .contains("tickTime=100\n"));
    assert!(four_letter(server.addr, "stat")
        .await
        .contains("Clients:\n"));
    assert_eq!(four_letter(server.addr, "isro").await, "rw");

    let server = TestServer::start(zoo_server::Config::parse("clientPort=0\n", "t").unwrap()).await;
    assert_eq!(
        four_letter(server.addr, "ruok").await,
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(
        four_letter(server.addr, "srvr")
            .await
            .contains("Mode: standalone"),
        "srvr is always on"
    );
}

#[tokio::test]
async fn containers_and_ttl_nodes_are_reaped() {
    let mut config = test_config();
    config.container_check_interval_ms = 50;
    let server = TestServer::start(config).await;
    let mut c = RawClient::connect(server.addr).await;
    let container = RequestBody::CreateContainer(create_body("/box", CreateMode::Container));
    assert_eq!(c.err(container).await, ErrorCode::Ok);
    let unused = RequestBody::CreateContainer(create_body("/unused", CreateMode::Container));
    assert_eq!(c.err(unused).await, ErrorCode::Ok);
    c.create("/box/item", b"", CreateMode::Persistent)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        c.get("/box", false).await.is_ok(),
        "a container with a child stays"
    );
    c.get("/box", true).await.unwrap();
    assert_eq!(c.delete("/box/item", -1).await, ErrorCode::Ok);
    c.wait_events(1).await;
    assert_eq!(
        c.events[0].1.event_type,
        EventType::NodeDeleted,
        "the reaper's delete fires watches"
    );
    assert_eq!(c.get("/box", false).await, Err(ErrorCode::NoNode));
    assert!(
        c.get("/unused", false).await.is_ok(),
        "a never-used container stays"
    );

    let ttl = RequestBody::CreateTtl(CreateTtlRequest {
        path: "/ttl".into(),
        data: None,
        acl: Some(Acl::open_unsafe()),
        flags: CreateMode::PersistentWithTtl.as_i32(),
        ttl: 100,
    });
    assert_eq!(c.err(ttl).await, ErrorCode::Ok);
    let deadline = std::time::Instant::now() + WAIT;
    while c.get("/ttl", false).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the TTL node outlived its TTL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_are_not_delivered_without_read() {
    let server = TestServer::default().await;
    let mut watcher = RawClient::connect(server.addr).await;
    let mut owner = RawClient::connect(server.addr).await;
    let auth = RequestBody::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Some(Bytes::from_static(b"bob:pw")),
    });
    assert_eq!(owner.err(auth).await, ErrorCode::Ok);
    let (h, _) = watcher
        .call(RequestBody::Exists(ExistsRequest {
            path: "/hidden".into(),
            watch: true,
        }))
        .await;
    assert_eq!(h.err, ErrorCode::NoNode);
    watcher
        .call(RequestBody::Exists(ExistsRequest {
            path: "/open".into(),
            watch: true,
        }))
        .await;
    let private = RequestBody::Create(CreateRequest {
        acl: Some(Acl::creator_all()),
        ..create_body("/hidden", CreateMode::Persistent)
    });
    assert_eq!(owner.err(private).await, ErrorCode::Ok);
    owner
        .create("/open", b"", CreateMode::Persistent)
        .await
        .unwrap();
    watcher.wait_exactly(1).await;
    let got = watcher.paths_seen();
    assert_eq!(
        got,
        vec!["/open"],
        "no event for the node the watcher may not read"
    );
}

#[tokio::test]
async fn reserved_nodes_reconfig_and_ip_acls() {
    let server = TestServer::default().await;
    let mut c = RawClient::connect(server.addr).await;
    let (_, body) = c
        .call(RequestBody::GetAcl(GetAclRequest {
            path: "/zookeeper/config".into(),
        }))
        .await;
    let Some(ResponseBody::GetAcl(r)) = body else {
        panic!()
    };
    assert_eq!(r.acl, Acl::read_unsafe());
    assert_eq!(r.stat.aversion, -1);
    assert_eq!(
        c.set("/zookeeper/config", b"x", -1).await,
        Err(ErrorCode::NoAuth)
    );
    for special in ["/", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            c.delete(special, -1).await,
            ErrorCode::BadArguments,
            "{special}"
        );
    }
    let reconfig = RequestBody::Reconfig(ReconfigRequest {
        joining_servers: None,
        leaving_servers: None,
        new_members: Some("server.1=127.0.0.1:2888:3888".into()),
        cur_config_id: -1,
    });
    assert_eq!(c.err(reconfig).await, ErrorCode::ReconfigDisabled);

    let ip_acl = |net: &str| {
        RequestBody::Create(CreateRequest {
            acl: Some(vec![Acl {
                perms: Perms::ALL,
                id: Id::new("ip", net),
            }]),
            ..create_body(
                &format!("/ip-{}", net.replace(['/', '.'], "_")),
                CreateMode::Persistent,
            )
        })
    };
    assert_eq!(c.err(ip_acl("127.0.0.0/8")).await, ErrorCode::Ok);
    assert_eq!(c.err(ip_acl("10.1.0.0/16")).await, ErrorCode::Ok);
    assert_eq!(c.err(ip_acl("not-an-address")).await, ErrorCode::InvalidAcl);
    assert!(c.get("/ip-127_0_0_0_8", false).await.is_ok());
    assert_eq!(
        c.get("/ip-10_1_0_0_16", false).await,
        Err(ErrorCode::NoAuth)
    );
}

#[tokio::test]
async fn watches_per_connection_are_bounded() {
    let mut config = test_config();
    config.max_watches_per_connection = 2;
    let server = TestServer::start(config).await;
    let mut watcher = RawClient::connect(server.addr).await;
    let mut writer = RawClient::connect(server.addr).await;
    for p in ["/w1", "/w2", "/w3"] {
        writer.create(p, b"", CreateMode::Persistent).await.unwrap();
        watcher.get(p, true).await.unwrap();
    }
    for p in ["/w1", "/w2", "/w3"] {
        writer.set(p, b"x", -1).await.unwrap();
    }
    watcher.wait_exactly(2).await;
    let got = watcher.paths_seen();
    assert_eq!(
        got,
        vec!["/w1", "/w2"],
        "the third watch was over the limit"
    );
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected() {
    let mut config = test_config();
    config.max_queued_frames_per_connection = 4;
    let server = TestServer::start(config).await;
    let mut writer = RawClient::connect(server.addr).await;
    let big = vec![7u8; 512 * 1024];
    writer
        .create("/big", &big, CreateMode::Persistent)
        .await
        .unwrap();

    // 200 reads of 512 KiB, never read back: far more than the socket
    // buffers hold, so the server's queue for this client fills.
    let mut slow = RawClient::connect(server.addr).await;
    for _ in 0..200 {
        slow.send(RequestBody::GetData(GetDataRequest {
            path: "/big".into(),
            watch: false,
        }))
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The server stays responsive to everyone else meanwhile.
    assert_eq!(
        writer.get("/big", false).await.unwrap().1.data_length,
        512 * 1024
    );
    // The slow client gets some replies, then the end of the stream.
    let mut replies = 0;
    while let Some(message) = slow.next_message().await {
        assert!(matches!(message, ServerMessage::Reply { .. }));
        replies += 1;
    }
    assert!(
        replies < 200,
        "the connection was closed before all {replies} replies"
    );
}
