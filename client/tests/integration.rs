//! The client against a real zoo-server and against Apache ZooKeeper 3.8
//! (Debian's package, started here): the same suite on both, then
//! reconnects through a proxy that cuts connections, and session expiry.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use zoo_client::{Client, CreateOptions, Error, Op, OpOutcome, SessionState};
use zoo_server::testkit::{ApacheZooKeeper, ZooServer};
use zoo_wire::{Acl, CreateMode, EventType, Id, Perms};

/// A zoo-server with short ticks (sessions of 200 ms to 2 s), for the
/// reconnect and expiry tests.
async fn zoo_server() -> ZooServer {
    zoo_server_with_tick(100).await
}

async fn zoo_server_with_tick(tick_ms: u32) -> ZooServer {
    let mut config = zoo_server::Config::parse(&format!("tickTime={tick_ms}\n"), "test").unwrap();
    config.extended_types_enabled = true;
    ZooServer::start(config).await
}

const WAIT: Duration = Duration::from_secs(10);

/// Every operation, watches and multi, on whichever server `addr` is.
async fn suite(addr: SocketAddr) {
    let c = Client::connect(&addr.to_string()).await.unwrap();
    let persistent = CreateOptions::new(CreateMode::Persistent);
    let (path, stat) = c.create("/s", b"one", persistent.clone()).await.unwrap();
    assert_eq!(
        (path.as_str(), stat.version, stat.data_length),
        ("/s", 0, 3)
    );
    assert_eq!(
        c.create("/s", b"", persistent.clone()).await,
        Err(Error::NodeExists)
    );
    let (data, stat) = c.get_data("/s").await.unwrap();
    assert_eq!(data, b"one");
    assert_eq!(
        c.set_data("/s", b"two", Some(stat.version))
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        c.set_data("/s", b"x", Some(0)).await,
        Err(Error::BadVersion)
    );
    let (seq, _) = c
        .create(
            "/s/n-",
            b"",
            CreateOptions::new(CreateMode::EphemeralSequential),
        )
        .await
        .unwrap();
    assert_eq!(seq, "/s/n-0000000000");
    assert_eq!(c.get_children("/s").await.unwrap(), vec!["n-0000000000"]);
    assert_eq!(c.get_ephemerals("/s").await.unwrap(), vec![seq.clone()]);
    assert_eq!(c.get_all_children_number("/s").await.unwrap(), 1);
    assert_eq!(c.delete("/s", None).await, Err(Error::NotEmpty));
    assert!(c.exists("/missing").await.unwrap().is_none());
    c.sync("/s").await.unwrap();
    let (container, _) = c
        .create("/box", b"", CreateOptions::new(CreateMode::Container))
        .await
        .unwrap();
    assert_eq!(container, "/box");
    let (ttl, stat) = c
        .create(
            "/ttl",
            b"",
            CreateOptions::new(CreateMode::PersistentWithTtl).ttl(60_000),
        )
        .await
        .unwrap();
    assert_eq!((ttl.as_str(), stat.ephemeral_owner), ("/ttl", 0));

    // One-shot watches.
    let (_, _, data_watch) = c.get_data_and_watch("/s").await.unwrap();
    let (_, child_watch) = c.get_children_and_watch("/s").await.unwrap();
    let (none, exist_watch) = c.exists_and_watch("/later").await.unwrap();
    assert!(none.is_none());
    let other = Client::connect(&addr.to_string()).await.unwrap();
    other.set_data("/s", b"three", None).await.unwrap();
    other
        .create("/s/kid", b"", persistent.clone())
        .await
        .unwrap();
    other
        .create("/later", b"", persistent.clone())
        .await
        .unwrap();
    let e = tokio::time::timeout(WAIT, data_watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, "/s")
    );
    let e = tokio::time::timeout(WAIT, child_watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, "/s")
    );
    let e = tokio::time::timeout(WAIT, exist_watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, "/later")
    );

    // Persistent, recursive watch.
    let mut tree = c.watch("/later", true).await.unwrap();
    other
        .create("/later/a", b"", persistent.clone())
        .await
        .unwrap();
    other.set_data("/later", b"x", None).await.unwrap();
    for expected in [
        (EventType::NodeCreated, "/later/a"),
        (EventType::NodeDataChanged, "/later"),
    ] {
        let e = tokio::time::timeout(WAIT, tree.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((e.event_type, e.path.as_str()), expected);
    }
    drop(tree);

    // Multi.
    let ok = c
        .multi(vec![
            Op::Create {
                path: "/m".into(),
                data: b"1".to_vec(),
                options: persistent.clone(),
            },
            Op::Check {
                path: "/m".into(),
                version: 0,
            },
            Op::SetData {
                path: "/m".into(),
                data: b"2".to_vec(),
                version: Some(0),
            },
            Op::Delete {
                path: "/later/a".into(),
                version: None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(ok[0], OpOutcome::Created("/m".into()));
    assert!(matches!(&ok[2], OpOutcome::DataSet(s) if s.version == 1));
    let failed = c
        .multi(vec![
            Op::Create {
                path: "/n".into(),
                data: vec![],
                options: persistent.clone(),
            },
            Op::Check {
                path: "/m".into(),
                version: 0,
            },
        ])
        .await;
    assert_eq!(failed, Err((1, Error::BadVersion)));
    assert!(c.exists("/n").await.unwrap().is_none());

    // multiRead: each read on its own.
    let reads = c
        .multi_read(vec![
            zoo_client::Read::Data("/m".into()),
            zoo_client::Read::Children("/missing".into()),
            zoo_client::Read::Children("/later".into()),
        ])
        .await
        .unwrap();
    assert!(
        matches!(&reads[0], Ok(zoo_client::ReadOutcome::Data(d, s)) if d == b"2" && s.version == 1)
    );
    assert_eq!(reads[1], Err(Error::NoNode));
    assert_eq!(reads[2], Ok(zoo_client::ReadOutcome::Children(vec![])));

    // ACLs and auth.
    c.add_auth("digest", b"carol:pw").await.unwrap();
    let acl = vec![Acl {
        perms: Perms::ALL,
        id: Id::new("auth", ""),
    }];
    c.create("/mine", b"s", persistent.clone().acl(acl))
        .await
        .unwrap();
    assert_eq!(other.get_data("/mine").await, Err(Error::NoAuth));
    let (acl, _) = c.get_acl("/mine").await.unwrap();
    assert_eq!(acl[0].id.scheme(), "digest");
    assert!(c.whoami().await.unwrap().iter().any(|i| i.user == "carol"));
    c.set_acl("/mine", Acl::open_unsafe(), Some(0))
        .await
        .unwrap();
    assert_eq!(other.get_data("/mine").await.unwrap().0, b"s");

    // Closing ends the session and takes its ephemerals.
    c.close().await;
    assert_eq!(c.state(), SessionState::Closed);
    assert_eq!(c.get_data("/s").await, Err(Error::Closed));
    assert!(other.exists(&seq).await.unwrap().is_none());
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_against_zoo() {
    // Ordinary ticks: the suite's sessions must not time out on a busy machine.
    let server = zoo_server_with_tick(2000).await;
    suite(server.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_against_apache_zookeeper() {
    let zk = ApacheZooKeeper::start(2000).await;
    suite(zk.addr).await;
}

#[tokio::test]
async fn bad_input_is_refused_client_side() {
    let server = zoo_server().await;
    let addr = server.addr;
    let c = Client::connect(&addr.to_string()).await.unwrap();
    assert!(matches!(
        c.get_data("no-slash").await,
        Err(Error::InvalidPath(_))
    ));
    assert!(matches!(
        c.delete("/a/", None).await,
        Err(Error::InvalidPath(_))
    ));
    let opts = CreateOptions::new(CreateMode::Persistent).acl(vec![]);
    assert_eq!(c.create("/x", b"", opts).await, Err(Error::InvalidAcl));
    assert!(matches!(
        Client::connect("127.0.0.1:1/bad/").await,
        Err(Error::InvalidPath(_))
    ));
}

/// A TCP proxy whose connections can all be cut at once, and which can
/// refuse new ones (a partition between client and server).
struct Proxy {
    addr: SocketAddr,
    cut: Arc<Notify>,
    blocked: Arc<AtomicBool>,
}

impl Proxy {
    fn cut_all(&self) {
        self.cut.notify_waiters();
    }

    fn partition(&self, on: bool) {
        self.blocked.store(on, Ordering::SeqCst);
        if on {
            self.cut_all();
        }
    }
}

async fn proxy_to(target: SocketAddr) -> Proxy {
    let (addr, cut, blocked) = cutting_proxy(target).await;
    Proxy { addr, cut, blocked }
}

async fn cutting_proxy(target: SocketAddr) -> (SocketAddr, Arc<Notify>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(Notify::new());
    let blocked = Arc::new(AtomicBool::new(false));
    let cut_all = Arc::clone(&cut);
    let refuse = Arc::clone(&blocked);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if refuse.load(Ordering::SeqCst) {
                drop(inbound);
                continue;
            }
            let cut = Arc::clone(&cut_all);
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut.notified() => {}
                }
            });
        }
    });
    (addr, cut, blocked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_keep_the_session_its_ephemerals_and_watches() {
    let server = zoo_server().await;
    let proxy = proxy_to(server.addr).await;
    let c = Client::builder(&proxy.addr.to_string())
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let session = c.session_id();
    c.create("/eph", b"", CreateOptions::new(CreateMode::Ephemeral))
        .await
        .unwrap();
    c.create("/watched", b"", CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    let (_, _, watch) = c.get_data_and_watch("/watched").await.unwrap();
    let mut states = c.state_changes();

    proxy.cut_all();
    // The state stream keeps only the latest value: a quick reconnect may
    // show Connected again by the time the test looks, so any change after
    // the cut is the disconnect being noticed.
    tokio::time::timeout(WAIT, states.changed())
        .await
        .expect("disconnect noticed")
        .unwrap();
    tokio::time::timeout(WAIT, async {
        while *states.borrow_and_update() != SessionState::Connected {
            states.changed().await.unwrap();
        }
    })
    .await
    .expect("reconnected");

    assert_eq!(c.session_id(), session);
    let direct = Client::connect(&server.addr.to_string()).await.unwrap();
    assert_eq!(
        direct
            .exists("/eph")
            .await
            .unwrap()
            .unwrap()
            .ephemeral_owner,
        session
    );
    direct.set_data("/watched", b"new", None).await.unwrap();
    let e = tokio::time::timeout(WAIT, watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e.event_type,
        EventType::NodeDataChanged,
        "the watch survived the reconnect"
    );
    direct.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_mid_request_gives_connection_loss() {
    // A "server" that accepts the handshake bytes and then hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let started = Instant::now();
    let result = Client::builder(&addr.to_string())
        .connection_timeout(Duration::from_millis(500))
        .connect()
        .await;
    assert_eq!(result.err(), Some(Error::Timeout));
    assert!(started.elapsed() < WAIT);

    // A live session whose server goes away: in-flight calls fail with
    // ConnectionLoss rather than hang.
    let server = zoo_server().await;
    let proxy = proxy_to(server.addr).await;
    let c = Client::builder(&proxy.addr.to_string())
        .connect()
        .await
        .unwrap();
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.exists(&format!("/n{i}")).await })
        })
        .collect();
    proxy.cut_all();
    for call in calls {
        match tokio::time::timeout(WAIT, call).await.unwrap().unwrap() {
            Ok(_) | Err(Error::ConnectionLoss) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_is_reported() {
    let server = zoo_server().await;
    let proxy = proxy_to(server.addr).await;
    let c = Client::builder(&proxy.addr.to_string())
        .session_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    c.create("/gone", b"", CreateOptions::new(CreateMode::Ephemeral))
        .await
        .unwrap();
    // Resuming with a wrong password is refused.
    let mut wrong = c.session_password().to_vec();
    wrong[0] ^= 1;
    let stolen = Client::builder(&server.addr.to_string())
        .resume(c.session_id(), &wrong)
        .connection_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert_eq!(stolen.err(), Some(Error::SessionExpired));

    // Cut the client off for longer than its session lasts.
    let mut states = c.state_changes();
    proxy.partition(true);
    tokio::time::sleep(Duration::from_millis(800)).await;
    proxy.partition(false);
    tokio::time::timeout(WAIT, async {
        while *states.borrow() != SessionState::Expired {
            states.changed().await.unwrap();
        }
    })
    .await
    .expect("expiry reported");
    assert_eq!(c.get_data("/").await, Err(Error::SessionExpired));
    let other = Client::connect(&server.addr.to_string()).await.unwrap();
    assert!(
        other.exists("/gone").await.unwrap().is_none(),
        "ephemeral removed with the session"
    );
}
