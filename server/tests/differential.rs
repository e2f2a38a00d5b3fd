//! Differential test: the same seeded random sequences of operations, from
//! several sessions, against Zoo and against Apache ZooKeeper 3.8 (Debian's
//! package, started here), comparing every reply: error code, zxid in the
//! header, data, children, ACLs, every Stat field but ctime/mtime, the
//! names of sequential nodes, and the watch events each session receives.
//!
//! Known differences left out of the comparison, each a ZooKeeper 3.8.0
//! behaviour that later releases changed: notifications carry zxid -1 there
//! (the transaction's zxid in 3.9 and in Zoo), and create2 inside a multi
//! returns a type-1 result there, so multis here use create (opcode 1).

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use support::{RawClient, TestServer};
use zoo_server::testkit::ApacheZooKeeper;
use zoo_wire::*;

const SESSIONS: usize = 3;
const OPS_PER_SEED: usize = 400;
const SEEDS: [u64; 3] = [1, 0x5eed, 20261203];

/// xorshift64*: small, seeded, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const BASE_PATHS: [&str; 8] = ["/d", "/d/a", "/d/b", "/d/a/x", "/d/b/y", "/e", "/e/f", "/c"];

fn random_acl(rng: &mut Rng) -> Vec<Acl> {
    if rng.below(6) == 0 {
        Acl::read_unsafe()
    } else {
        Acl::open_unsafe()
    }
}

fn random_data(rng: &mut Rng) -> Option<Bytes> {
    match rng.below(5) {
        0 => None,
        1 => Some(Bytes::new()),
        n => Some(Bytes::from(format!("v{}", rng.below(100 * n)))),
    }
}

fn random_create(rng: &mut Rng, paths: &[String]) -> CreateRequest {
    let flags = *rng.pick(&[0, 0, 1, 2, 3, 4]);
    let mut path = rng.pick(paths).clone();
    if flags == 2 || flags == 3 {
        path.push_str("/s-");
    }
    CreateRequest {
        path,
        data: random_data(rng),
        acl: Some(random_acl(rng)),
        flags,
    }
}

fn random_version(rng: &mut Rng) -> i32 {
    *rng.pick(&[-1, -1, 0, 1, 2])
}

fn random_op(rng: &mut Rng, paths: &[String]) -> RequestBody {
    let path = rng.pick(paths).clone();
    let watch = rng.below(2) == 0;
    match rng.below(16) {
        0..=2 => {
            let r = random_create(rng, paths);
            if r.flags == 4 {
                RequestBody::CreateContainer(r)
            } else if rng.below(2) == 0 {
                RequestBody::Create2(r)
            } else {
                RequestBody::Create(r)
            }
        }
        3 | 4 => RequestBody::Delete(DeleteRequest {
            path,
            version: random_version(rng),
        }),
        5 | 6 => RequestBody::SetData(SetDataRequest {
            path,
            data: random_data(rng),
            version: random_version(rng),
        }),
        7 => RequestBody::Exists(ExistsRequest { path, watch }),
        8 => RequestBody::GetData(GetDataRequest { path, watch }),
        9 => RequestBody::GetChildren(GetChildrenRequest { path, watch }),
        10 => RequestBody::GetChildren2(GetChildrenRequest { path, watch }),
        11 => RequestBody::GetAcl(GetAclRequest { path }),
        12 => RequestBody::SetAcl(SetAclRequest {
            path,
            acl: Some(random_acl(rng)),
            version: random_version(rng),
        }),
        13 => RequestBody::GetAllChildrenNumber(GetAllChildrenNumberRequest { path }),
        _ => {
            let ops = (0..1 + rng.below(3))
                .map(|_| match rng.below(4) {
                    0 => {
                        let mut r = random_create(rng, paths);
                        if r.flags == 4 {
                            r.flags = 0;
                        }
                        MultiOp::Create(r)
                    }
                    1 => MultiOp::Delete(DeleteRequest {
                        path: rng.pick(paths).clone(),
                        version: random_version(rng),
                    }),
                    2 => MultiOp::SetData(SetDataRequest {
                        path: rng.pick(paths).clone(),
                        data: random_data(rng),
                        version: random_version(rng),
                    }),
                    _ => MultiOp::Check(CheckVersionRequest {
                        path: rng.pick(paths).clone(),
                        version: random_version(rng),
                    }),
                })
                .collect();
            RequestBody::Multi(MultiRequest { ops })
        }
    }
}

/// Makes a reply comparable across servers: no wall-clock times, session
/// ids as the session's index, children sorted.
/// A zxid's counter within its epoch: a new Zoo data directory's first
/// leader epoch is 1, standalone ZooKeeper's is 0, and counters match.
fn counter(zxid: i64) -> i64 {
    if zxid < 0 {
        zxid
    } else {
        zxid & 0xffff_ffff
    }
}

fn normalize(body: &mut Option<ResponseBody>, sessions: &[i64]) {
    let fix = |stat: &mut Stat| {
        stat.ctime = 0;
        stat.mtime = 0;
        stat.czxid = counter(stat.czxid);
        stat.mzxid = counter(stat.mzxid);
        stat.pzxid = counter(stat.pzxid);
        if let Some(i) = sessions.iter().position(|s| *s == stat.ephemeral_owner) {
            stat.ephemeral_owner = i as i64 + 1;
        }
    };
    match body {
        Some(ResponseBody::Create2(r)) => fix(&mut r.stat),
        Some(ResponseBody::Exists(r)) => fix(&mut r.stat),
        Some(ResponseBody::GetData(r)) => fix(&mut r.stat),
        Some(ResponseBody::SetData(r)) => fix(&mut r.stat),
        Some(ResponseBody::GetAcl(r)) => fix(&mut r.stat),
        Some(ResponseBody::SetAcl(r)) => fix(&mut r.stat),
        Some(ResponseBody::GetChildren(r)) => r.children.sort(),
        Some(ResponseBody::GetChildren2(r)) => {
            r.children.sort();
            fix(&mut r.stat);
        }
        Some(ResponseBody::Multi(m)) => {
            for result in &mut m.results {
                match result {
                    OpResult::Create2(r) => fix(&mut r.stat),
                    OpResult::SetData(r) => fix(&mut r.stat),
                    OpResult::GetData(r) => fix(&mut r.stat),
                    OpResult::GetChildren(r) => r.children.sort(),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Created names to add to the path pool.
fn created(body: &Option<ResponseBody>) -> Vec<String> {
    match body {
        Some(ResponseBody::Create(r)) => vec![r.path.clone()],
        Some(ResponseBody::Create2(r)) => vec![r.path.clone()],
        Some(ResponseBody::Multi(m)) => m
            .results
            .iter()
            .filter_map(|r| match r {
                OpResult::Create(c) => Some(c.path.clone()),
                OpResult::Create2(c) => Some(c.path.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

struct Side {
    clients: Vec<RawClient>,
    sessions: Vec<i64>,
}

impl Side {
    async fn connect(addr: SocketAddr) -> Side {
        let mut clients = Vec::new();
        for _ in 0..SESSIONS {
            clients.push(
                RawClient::connect_with(addr, 0, vec![0; 16], 30_000)
                    .await
                    .unwrap(),
            );
        }
        let sessions = clients.iter().map(|c| c.session_id).collect();
        Side { clients, sessions }
    }

    /// Runs one request on session `who`, then a read on every session so
    /// that the notifications the request caused have all arrived.
    async fn step(
        &mut self,
        who: usize,
        body: RequestBody,
    ) -> (
        ReplyHeader,
        Option<ResponseBody>,
        Vec<Vec<(EventType, String)>>,
    ) {
        let (header, mut reply) = self.clients[who].call(body).await;
        normalize(&mut reply, &self.sessions);
        let mut events = Vec::new();
        for c in &mut self.clients {
            c.call(RequestBody::Exists(ExistsRequest {
                path: "/".into(),
                watch: false,
            }))
            .await;
            events.push(
                c.events
                    .drain(..)
                    .map(|(_, e)| (e.event_type, e.path))
                    .collect(),
            );
        }
        (header, reply, events)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_answers_like_apache_zookeeper() {
    let mut compared = 0usize;
    let mut errors = std::collections::BTreeMap::<i32, usize>::new();
    let mut events_compared = 0usize;
    for seed in SEEDS {
        let apache = ApacheZooKeeper::start(2000).await;
        let zoo_server =
            TestServer::start(zoo_server::Config::parse("tickTime=2000\n", "diff").unwrap()).await;
        let mut zk = Side::connect(apache.addr).await;
        let mut zoo = Side::connect(zoo_server.addr).await;
        let mut rng = Rng(seed);
        let mut paths: Vec<String> = BASE_PATHS.iter().map(|p| p.to_string()).collect();
        for i in 0..OPS_PER_SEED {
            let who = rng.below(SESSIONS);
            let body = random_op(&mut rng, &paths);
            let (zk_header, zk_reply, zk_events) = zk.step(who, body.clone()).await;
            let (zoo_header, zoo_reply, zoo_events) = zoo.step(who, body.clone()).await;
            let at = format!("seed {seed} op {i} session {who}: {body:?}");
            assert_eq!(zoo_header.err, zk_header.err, "error code at {at}");
            assert_eq!(
                counter(zoo_header.zxid),
                counter(zk_header.zxid),
                "zxid at {at}"
            );
            if zoo_header.zxid > 0 {
                assert_eq!(zoo_header.zxid >> 32, 1, "Zoo's first epoch at {at}");
            }
            assert_eq!(zoo_reply, zk_reply, "reply at {at}");
            assert_eq!(zoo_events, zk_events, "watch events after {at}");
            compared += 1;
            events_compared += zk_events.iter().map(Vec::len).sum::<usize>();
            *errors.entry(zk_header.err.as_i32()).or_default() += 1;
            for p in created(&zk_reply) {
                if paths.len() < 64 && !p.ends_with('-') {
                    paths.push(p);
                }
            }
        }
    }
    eprintln!("differential: {compared} operations compared, {events_compared} watch events, replies by code {errors:?}");
    assert!(
        errors.len() >= 5,
        "the sequences should reach several error paths: {errors:?}"
    );
    assert!(
        events_compared > 50,
        "the sequences should fire watches: {events_compared}"
    );
}
