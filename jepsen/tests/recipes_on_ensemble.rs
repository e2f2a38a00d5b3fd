//! The recipes on a 3-server ensemble, with the server their holder talks
//! to cut off from the other two: the holder of a lock, a leadership and
//! Kafka's controller seat learns it may have lost them (suspension) before
//! anyone on the majority side takes them over; the successors get higher
//! fencing tokens and epochs; and once the network heals, the old holder's
//! fenced writes are refused.

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use zoo_client::{Client, CreateOptions, Op, SessionState};
use zoo_jepsen::cluster::{Cluster, ClusterOptions};
use zoo_recipes::kafka::{BrokerInfo, KafkaZk};
use zoo_recipes::{Error, LeaderElection, Lock, Loss};
use zoo_wire::CreateMode;

const PATIENCE: Duration = Duration::from_secs(30);

async fn client(addrs: &[String], session_timeout: Duration) -> Client {
    Client::builder(&addrs.join(","))
        .session_timeout(session_timeout)
        .connect()
        .await
        .expect("a session")
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {PATIENCE:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_cut_off_with_their_server_lose_before_successors_act() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(ClusterOptions {
        nodes: 3,
        server_bin: support::server_bin(),
        dir: dir.path().to_path_buf(),
        tick_ms: 200,
        extra_config: "minSessionTimeout=400\n".to_string(),
    })
    .await
    .unwrap();
    let leader = cluster.wait_healthy(PATIENCE).await.unwrap();
    // The old holder talks to one follower only; the majority side is the
    // other two servers, the leader among them.
    let cut = (leader + 1) % 3;
    let addrs = cluster.client_addrs();
    let majority: Vec<String> = (0..3)
        .filter(|&i| i != cut)
        .map(|i| addrs[i].clone())
        .collect();
    let old = client(&addrs[cut..=cut], Duration::from_millis(2000)).await;
    let new = client(&majority, Duration::from_secs(10)).await;

    // The old client holds all three.
    let leadership = LeaderElection::new(&old, "/election")
        .identifier("old")
        .campaign()
        .await
        .unwrap();
    let guard = Lock::new(&old, "/lock")
        .identifier("old")
        .acquire()
        .await
        .unwrap();
    let old_broker = KafkaZk::new(&old);
    old_broker.ensure_layout().await.unwrap();
    old_broker
        .register_broker(1, &BrokerInfo::plaintext("127.0.0.1", 9092))
        .await
        .unwrap();
    let controller = old_broker
        .elect_controller(1)
        .await
        .unwrap()
        .expect("first");
    let partitions: BTreeMap<i32, Vec<i32>> = [(0, vec![1, 2])].into_iter().collect();
    controller
        .create_topic("orders", &partitions)
        .await
        .unwrap();

    // The new client waits in line for the lock and the leadership.
    let next_leader = {
        let new = new.clone();
        tokio::spawn(async move {
            let l = LeaderElection::new(&new, "/election")
                .identifier("new")
                .campaign()
                .await
                .unwrap();
            (Instant::now(), l)
        })
    };
    let next_holder = {
        let new = new.clone();
        tokio::spawn(async move {
            let g = Lock::new(&new, "/lock")
                .identifier("new")
                .acquire()
                .await
                .unwrap();
            (Instant::now(), g)
        })
    };

    // Cut the old client's server off: it loses its quorum and drops its
    // clients; the majority expires the old session.
    cluster.partition(&[vec![cut], (0..3).filter(|&i| i != cut).collect()]);
    let lost_leadership = within("leadership lost", leadership.lost()).await;
    let leadership_lost_at = Instant::now();
    let lost_lock = within("lock lost", guard.lost()).await;
    let lock_lost_at = Instant::now();
    assert_eq!(lost_leadership, Loss::Suspended);
    assert_eq!(lost_lock, Loss::Suspended);

    let (led_at, new_leadership) = within("the next leader", next_leader).await.unwrap();
    assert!(
        leadership_lost_at < led_at,
        "the new leader led before the old one knew it had lost"
    );
    assert!(new_leadership.fencing_token() > leadership.fencing_token());
    let (held_at, new_guard) = within("the next holder", next_holder).await.unwrap();
    assert!(lock_lost_at < held_at, "two holders at once");
    assert!(new_guard.fencing_token() > guard.fencing_token());

    let new_broker = KafkaZk::new(&new);
    let new_controller = within("the next controller", async {
        loop {
            if let Some(c) = new_broker.elect_controller(2).await.unwrap() {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(new_controller.epoch() > controller.epoch());

    // Heal: the old client hears its session expired.
    cluster.heal_network();
    within("the old client learns of the expiry", async {
        while old.state() != SessionState::Expired {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    cluster.wait_healthy(PATIENCE).await.unwrap();

    // On a new session on the same server, the old holder's fenced writes
    // are all refused.
    let again = client(&addrs[cut..=cut], Duration::from_secs(10)).await;
    let resource = again
        .create("/resource", b"", CreateOptions::new(CreateMode::Persistent))
        .await
        .map(|(p, _)| p)
        .unwrap();
    let write = |data: &[u8]| Op::SetData {
        path: resource.clone(),
        data: data.to_vec(),
        version: None,
    };
    assert!(
        again
            .multi(vec![guard.check_op(), write(b"old lock holder")])
            .await
            .is_err(),
        "a write fenced by the lost lock went through"
    );
    assert!(
        again
            .multi(vec![leadership.check_op(), write(b"old leader")])
            .await
            .is_err(),
        "a write fenced by the lost leadership went through"
    );
    let zombie = controller.reattach(&again);
    let seen = new_broker
        .partition_state("orders", 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        zombie
            .update_partition("orders", 0, &seen, 1, vec![1])
            .await
            .unwrap_err(),
        Error::ControllerMoved { epoch: 1 }
    );
    // The successors' fenced writes go through.
    new.multi(vec![new_guard.check_op(), write(b"new lock holder")])
        .await
        .unwrap();
    new_controller
        .update_partition("orders", 0, &seen, 2, vec![2])
        .await
        .unwrap();
    let (data, _) = again.get_data(&resource).await.unwrap();
    assert_eq!(data, b"new lock holder");
    cluster.stop();
}
