//! The Kafka metadata store against a real zoo-server on loopback: brokers
//! register as ephemeral JSON nodes that go with their sessions; one multi
//! elects a controller and bumps `/controller_epoch`; a deposed controller's
//! writes are refused by the server, whether its session expired (and it
//! came back on a new one) or someone deleted `/controller` under it;
//! partition state is written with versions; ISR change notifications are
//! sequential nodes the controller takes; the metadata cache follows it all;
//! and the `kafka_cluster` example runs through its takeover.

mod support;

#[path = "../examples/kafka_cluster.rs"]
#[allow(dead_code)]
mod kafka_cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;
use tokio::task::JoinSet;
use zoo_client::{Client, SessionState};
use zoo_recipes::kafka::{
    broker_path, partition_state_path, topic_path, BrokerInfo, Controller, KafkaZk, PartitionState,
    TopicPartition, CONTROLLER, CONTROLLER_EPOCH, ISR_CHANGES, ISR_CHANGE_PREFIX,
};
use zoo_recipes::{CacheEvent, Error};

/// A broker on its own session, the layout in place.
async fn broker(client: &Client) -> KafkaZk {
    let zk = KafkaZk::new(client);
    zk.ensure_layout().await.unwrap();
    zk
}

async fn epoch_node(client: &Client) -> String {
    String::from_utf8(client.get_data(CONTROLLER_EPOCH).await.unwrap().0).unwrap()
}

/// Partitions 0 and 1 of a topic on brokers 1..=3, preferred leaders 1 and 2.
fn two_partitions() -> BTreeMap<i32, Vec<i32>> {
    BTreeMap::from([(0, vec![1, 2, 3]), (1, vec![2, 3, 1])])
}

fn partition(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        partition,
    }
}

/// Three brokers register. Each is an ephemeral `/brokers/ids/<id>` owned
/// by its session and holding Kafka's JSON; the broker epoch is the node's
/// czxid. An id held by a live session cannot be taken; the owner
/// registering again is fine. A closed session's broker vanishes at once, an
/// expired one's when the server expires it, and a broker that registers
/// again gets a higher epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_are_ephemeral_and_vanish_with_their_sessions() {
    let server = zoo_server().await;
    let proxy = Proxy::start(server.addr).await;
    let observer = client(server.addr).await;
    let c1 = client(server.addr).await;
    let c2 = client(server.addr).await;
    let c3 = client_with_timeout(proxy.addr, Duration::from_millis(1000)).await;
    let (b1, b2, b3) = (broker(&c1).await, broker(&c2).await, broker(&c3).await);

    // Phase 1: registration.
    let mut epochs = BTreeMap::new();
    for (id, zk) in [(1, &b1), (2, &b2), (3, &b3)] {
        let info = BrokerInfo::plaintext("10.0.0.1", 9090 + id);
        epochs.insert(id, zk.register_broker(id, &info).await.unwrap());
    }
    let mut ids = observer.get_children("/brokers/ids").await.unwrap();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3"]);
    let (data, stat) = observer.get_data(&broker_path(2)).await.unwrap();
    assert_eq!(stat.ephemeral_owner, c2.session_id());
    assert_eq!(stat.czxid, epochs[&2]);
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["version"], 5);
    assert_eq!(json["host"], "10.0.0.1");
    assert_eq!(json["port"], 9092);
    assert_eq!(json["endpoints"][0], "PLAINTEXT://10.0.0.1:9092");
    assert_eq!(json["jmx_port"], -1);
    assert!(json["timestamp"].as_str().unwrap().parse::<u128>().is_ok());
    let listed = KafkaZk::new(&observer).brokers().await.unwrap();
    assert_eq!(listed.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(listed[&3].info.port, 9093);
    assert_eq!(listed[&3].epoch, epochs[&3]);

    // Phase 2: an id is one session's.
    let info = BrokerInfo::plaintext("10.0.0.9", 9999);
    assert_eq!(
        b1.register_broker(2, &info).await.unwrap_err(),
        Error::Client(zoo_client::Error::NodeExists)
    );
    assert_eq!(
        b2.register_broker(2, &BrokerInfo::plaintext("10.0.0.1", 9092))
            .await
            .unwrap(),
        epochs[&2],
        "the owner's own node counts as registered"
    );

    // Phase 3: a closed session's broker goes at once.
    c1.close().await;
    assert_eq!(observer.exists(&broker_path(1)).await.unwrap(), None);

    // Phase 4: an expired session's broker goes when the server expires it.
    proxy.freeze();
    eventually("broker 3's session expires", || async {
        observer.exists(&broker_path(3)).await.unwrap().is_none()
    })
    .await;
    let listed = KafkaZk::new(&observer).brokers().await.unwrap();
    assert_eq!(listed.keys().copied().collect::<Vec<_>>(), [2]);

    // Phase 5: broker 3 restarts on a new session, with a new broker epoch.
    let c3_again = client(server.addr).await;
    let epoch = KafkaZk::new(&c3_again)
        .register_broker(3, &BrokerInfo::plaintext("10.0.0.1", 9093))
        .await
        .unwrap();
    assert!(epoch > epochs[&3], "a restarted broker is told apart");
    proxy.thaw();
}

/// Five brokers race for control of a fresh cluster: exactly one wins, at
/// controller epoch 1, and `/controller` names it. Electing again while it
/// controls fails for everyone, itself included, and leaves the epoch be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_wins_the_election_and_bumps_the_epoch() {
    let server = zoo_server().await;
    let observer = client(server.addr).await;
    broker(&observer).await;
    let mut clients = BTreeMap::new();
    for id in 1..=5 {
        clients.insert(id, client(server.addr).await);
    }
    let mut race = JoinSet::new();
    for (&id, c) in &clients {
        let zk = KafkaZk::new(c);
        race.spawn(async move { (id, zk.elect_controller(id).await.unwrap()) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = race.join_next().await {
        if let (id, Some(controller)) = joined.unwrap() {
            assert_eq!(controller.broker_id(), id);
            winners.push(controller);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one controller: {winners:?}");
    let controller = winners.pop().unwrap();
    assert_eq!(controller.epoch(), 1);
    assert_eq!(epoch_node(&observer).await, "1");
    let zk = KafkaZk::new(&observer);
    assert_eq!(zk.controller().await.unwrap(), Some(controller.broker_id()));
    assert_eq!(
        zk.controller_epoch().await.unwrap(),
        (1, controller.epoch_zk_version())
    );
    let (data, stat) = observer.get_data(CONTROLLER).await.unwrap();
    assert_eq!(
        stat.ephemeral_owner,
        clients[&controller.broker_id()].session_id()
    );
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["brokerid"], controller.broker_id());

    for (&id, c) in &clients {
        assert!(
            KafkaZk::new(c)
                .elect_controller(id)
                .await
                .unwrap()
                .is_none(),
            "broker {id} cannot take control while broker {} holds it",
            controller.broker_id()
        );
    }
    assert_eq!(epoch_node(&observer).await, "1");
}

/// Broker 1 controls at epoch 1 and its process pauses (its connection
/// freezes) until the server expires its session. `/controller` goes with
/// the session, broker 2 is elected at epoch 2. The paused controller's own
/// client now refuses to work (its session is gone); back on a new session,
/// still believing it controls at epoch 1, its writes are refused by the
/// server, and change nothing, while broker 2's go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_whose_session_expired_is_fenced() {
    let server = zoo_server().await;
    let proxy = Proxy::start(server.addr).await;
    let observer = client(server.addr).await;
    let c1 = client_with_timeout(proxy.addr, Duration::from_millis(1000)).await;
    let c2 = client(server.addr).await;
    let (b1, b2) = (broker(&c1).await, broker(&c2).await);

    // Phase 1: broker 1 controls and creates a topic.
    let old = b1.elect_controller(1).await.unwrap().expect("first in");
    assert_eq!(old.epoch(), 1);
    old.create_topic("orders", &two_partitions()).await.unwrap();
    assert!(b2.elect_controller(2).await.unwrap().is_none());

    // Phase 2: broker 1 pauses past its session; broker 2 takes over.
    proxy.freeze();
    eventually("/controller goes with the expired session", || async {
        observer.exists(CONTROLLER).await.unwrap().is_none()
    })
    .await;
    let new = b2
        .elect_controller(2)
        .await
        .unwrap()
        .expect("the seat is free");
    assert_eq!(new.epoch(), 2, "a new controller has a higher epoch");
    assert_eq!(epoch_node(&observer).await, "2");
    assert!(new.epoch_zk_version() > old.epoch_zk_version());

    // Phase 3: the paused controller wakes up. Its client learns the
    // session is gone and refuses.
    proxy.thaw();
    eventually("broker 1's client learns its session expired", || async {
        c1.state() == SessionState::Expired
    })
    .await;
    let seen = b2.partition_state("orders", 0).await.unwrap().unwrap();
    let refused = old
        .update_partition("orders", 0, &seen, 1, vec![1])
        .await
        .unwrap_err();
    assert_eq!(refused, Error::Client(zoo_client::Error::SessionExpired));

    // Phase 4: on a new session, still believing it controls at epoch 1,
    // the server refuses each of its writes.
    let c1_again = client(server.addr).await;
    let zombie = old.reattach(&c1_again);
    assert_eq!(zombie.epoch(), 1);
    let moved = Error::ControllerMoved { epoch: 1 };
    assert_eq!(
        zombie
            .update_partition("orders", 0, &seen, 1, vec![1])
            .await
            .unwrap_err(),
        moved
    );
    assert_eq!(
        zombie
            .create_topic("payments", &two_partitions())
            .await
            .unwrap_err(),
        moved
    );
    assert_eq!(zombie.clone().resign().await.unwrap_err(), moved);
    assert_eq!(
        b2.partition_state("orders", 0).await.unwrap().unwrap(),
        seen,
        "the refused update changed nothing"
    );
    assert_eq!(b2.topic("payments").await.unwrap(), None);
    assert_eq!(b2.controller().await.unwrap(), Some(2));

    // Phase 5: the new controller's writes go through.
    let updated = new
        .update_partition("orders", 0, &seen, 2, vec![2, 3])
        .await
        .unwrap();
    assert_eq!(updated.state.controller_epoch, 2);
    new.create_topic("payments", &two_partitions())
        .await
        .unwrap();
}

/// Someone deletes `/controller` while its holder's session lives on (as
/// Kafka's operators do to force an election). Broker 2 is elected at epoch
/// 2; broker 1 on its unchanged session is refused, and cannot delete its
/// successor's `/controller` by resigning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_controller_on_a_live_session_is_fenced() {
    let server = zoo_server().await;
    let admin = client(server.addr).await;
    let c1 = client(server.addr).await;
    let c2 = client(server.addr).await;
    let (b1, b2) = (broker(&c1).await, broker(&c2).await);
    let old = b1.elect_controller(1).await.unwrap().unwrap();
    old.create_topic("orders", &two_partitions()).await.unwrap();
    admin.delete(CONTROLLER, None).await.unwrap();
    let new = b2.elect_controller(2).await.unwrap().unwrap();
    assert_eq!((old.epoch(), new.epoch()), (1, 2));

    let seen = b1.partition_state("orders", 1).await.unwrap().unwrap();
    let moved = Error::ControllerMoved { epoch: 1 };
    assert_eq!(
        old.update_partition("orders", 1, &seen, 3, vec![3])
            .await
            .unwrap_err(),
        moved
    );
    assert_eq!(old.resign().await.unwrap_err(), moved);
    assert_eq!(b1.controller().await.unwrap(), Some(2));
    assert_eq!(
        b1.partition_state("orders", 1).await.unwrap().unwrap(),
        seen
    );

    // The successor resigns: fenced by its own, current, epoch, it may.
    new.resign().await.unwrap();
    assert_eq!(b1.controller().await.unwrap(), None);
}

/// The controller creates a topic: the assignment in Kafka's JSON, and per
/// partition the initial state (first replica leads, all in the ISR,
/// partition epoch 0). Updates name the partition epoch they read: a new
/// leader bumps the leader epoch, an ISR change alone does not, and an
/// update from a stale read fails with `BadVersion` and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_partition_state_are_versioned() {
    let server = zoo_server().await;
    let c = client(server.addr).await;
    let zk = broker(&c).await;
    let controller = zk.elect_controller(1).await.unwrap().unwrap();
    controller
        .create_topic("orders", &two_partitions())
        .await
        .unwrap();
    assert_eq!(zk.topics().await.unwrap(), ["orders"]);
    let assignment = zk.topic("orders").await.unwrap().unwrap();
    assert_eq!(assignment.replicas(0), Some([1, 2, 3].as_slice()));
    assert_eq!(assignment.replicas(1), Some([2, 3, 1].as_slice()));
    assert_eq!(assignment.replicas(2), None);
    let json: serde_json::Value =
        serde_json::from_slice(&c.get_data(&topic_path("orders")).await.unwrap().0).unwrap();
    assert_eq!(json["version"], 3);
    assert_eq!(json["partitions"]["1"], serde_json::json!([2, 3, 1]));
    assert_eq!(
        controller
            .create_topic("orders", &two_partitions())
            .await
            .unwrap_err(),
        Error::Client(zoo_client::Error::NodeExists)
    );

    let initial = zk.partition_state("orders", 1).await.unwrap().unwrap();
    assert_eq!(
        initial.state,
        PartitionState {
            version: 1,
            leader: 2,
            leader_epoch: 0,
            controller_epoch: 1,
            isr: vec![2, 3, 1],
        }
    );
    assert_eq!(initial.version, 0);

    // The ISR shrinks; the leader stays.
    let shrunk = controller
        .update_partition("orders", 1, &initial, 2, vec![2, 3])
        .await
        .unwrap();
    assert_eq!((shrunk.version, shrunk.state.leader_epoch), (1, 0));
    // The leader moves.
    let moved = controller
        .update_partition("orders", 1, &shrunk, 3, vec![3])
        .await
        .unwrap();
    assert_eq!((moved.version, moved.state.leader_epoch), (2, 1));
    assert_eq!(
        zk.partition_state("orders", 1).await.unwrap().unwrap(),
        moved
    );
    let raw: PartitionState = serde_json::from_slice(
        &c.get_data(&partition_state_path("orders", 1))
            .await
            .unwrap()
            .0,
    )
    .unwrap();
    assert_eq!(raw, moved.state);

    // A writer that read before those updates loses.
    assert_eq!(
        controller
            .update_partition("orders", 1, &initial, 1, vec![1])
            .await
            .unwrap_err(),
        Error::Client(zoo_client::Error::BadVersion)
    );
    assert_eq!(
        zk.partition_state("orders", 1).await.unwrap().unwrap(),
        moved
    );
    assert_eq!(zk.partition_state("orders", 7).await.unwrap(), None);
}

/// Brokers post ISR changes as sequential nodes; the controller takes them
/// all at once (the partitions named, each once) and deletes them, so a
/// second take finds nothing. Notifications posted to a deposed controller
/// stay for its successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isr_change_notifications_are_taken_by_the_controller() {
    let server = zoo_server().await;
    let admin = client(server.addr).await;
    let c1 = client(server.addr).await;
    let c2 = client(server.addr).await;
    let (b1, b2) = (broker(&c1).await, broker(&c2).await);
    let controller = b1.elect_controller(1).await.unwrap().unwrap();

    let first = b1
        .notify_isr_change(&[partition("orders", 0)])
        .await
        .unwrap();
    let second = b2
        .notify_isr_change(&[partition("orders", 1), partition("orders", 0)])
        .await
        .unwrap();
    let prefix = format!("{ISR_CHANGES}/{ISR_CHANGE_PREFIX}");
    assert!(first.starts_with(&prefix) && second.starts_with(&prefix));
    assert!(first < second, "sequential: {first} then {second}");
    let json: serde_json::Value =
        serde_json::from_slice(&admin.get_data(&second).await.unwrap().0).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["partitions"][0]["topic"], "orders");
    assert_eq!(json["partitions"][0]["partition"], 1);

    assert_eq!(
        controller.take_isr_changes().await.unwrap(),
        [partition("orders", 0), partition("orders", 1)]
    );
    assert!(admin.get_children(ISR_CHANGES).await.unwrap().is_empty());
    assert!(controller.take_isr_changes().await.unwrap().is_empty());

    // Control moves; a notification waits for the new controller.
    b2.notify_isr_change(&[partition("payments", 3)])
        .await
        .unwrap();
    admin.delete(CONTROLLER, None).await.unwrap();
    let successor = b2.elect_controller(2).await.unwrap().unwrap();
    assert_eq!(
        controller.take_isr_changes().await.unwrap_err(),
        Error::ControllerMoved { epoch: 1 }
    );
    assert_eq!(admin.get_children(ISR_CHANGES).await.unwrap().len(), 1);
    assert_eq!(
        successor.take_isr_changes().await.unwrap(),
        [partition("payments", 3)]
    );
}

/// A metadata cache on another session follows, by watches alone, brokers
/// coming and going, the controller, topics and partition state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_cache_follows_the_cluster() {
    let server = zoo_server().await;
    let reader = client(server.addr).await;
    let c1 = client(server.addr).await;
    let c2 = client(server.addr).await;
    let (b1, b2) = (broker(&c1).await, broker(&c2).await);
    let cache = zoo_recipes::kafka::MetadataCache::start(&reader)
        .await
        .unwrap();
    let mut broker_events = cache.broker_events();
    let mut controller_events = cache.controller_events();
    assert!(cache.brokers().is_empty());
    assert_eq!(cache.controller(), None);

    // Brokers join.
    let epoch1 = b1
        .register_broker(1, &BrokerInfo::plaintext("10.0.0.1", 9091))
        .await
        .unwrap();
    let created = tokio::time::timeout(Duration::from_secs(5), broker_events.recv())
        .await
        .expect("a broker event")
        .unwrap();
    assert_eq!(created, CacheEvent::Created(broker_path(1)));
    assert_eq!(cache.brokers()[&1].epoch, epoch1);
    assert_eq!(cache.brokers()[&1].info.port, 9091);
    b2.register_broker(2, &BrokerInfo::plaintext("10.0.0.2", 9092))
        .await
        .unwrap();
    eventually("the cache sees broker 2", || async {
        cache.brokers().keys().copied().collect::<Vec<_>>() == [1, 2]
    })
    .await;

    // A controller is elected and creates a topic.
    let controller: Controller = b1.elect_controller(1).await.unwrap().unwrap();
    let created = tokio::time::timeout(Duration::from_secs(5), controller_events.recv())
        .await
        .expect("a controller event")
        .unwrap();
    assert_eq!(created, CacheEvent::Created(CONTROLLER.to_string()));
    assert_eq!(cache.controller(), Some(1));
    controller
        .create_topic("orders", &two_partitions())
        .await
        .unwrap();
    eventually("the cache sees the topic's partitions", || async {
        cache.topics() == ["orders"] && cache.partition_state("orders", 1).is_some()
    })
    .await;
    let cached = cache.partition_state("orders", 0).unwrap();
    assert_eq!(
        cached,
        b2.partition_state("orders", 0).await.unwrap().unwrap()
    );

    // The partition changes.
    let updated = controller
        .update_partition("orders", 0, &cached, 2, vec![2])
        .await
        .unwrap();
    eventually("the cache sees the new partition state", || async {
        cache.partition_state("orders", 0).as_ref() == Some(&updated)
    })
    .await;

    // The controller's broker goes away; broker 2 takes over.
    c1.close().await;
    eventually("the cache sees broker 1 and the controller go", || async {
        cache.brokers().keys().copied().collect::<Vec<_>>() == [2] && cache.controller().is_none()
    })
    .await;
    b2.elect_controller(2).await.unwrap().unwrap();
    eventually("the cache sees the new controller", || async {
        cache.controller() == Some(2)
    })
    .await;
}

/// The example's scenario, run in this process against a fresh server:
/// the takeover raises the epoch and the old controller is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_cluster_example_scenario() {
    let server = zoo_server().await;
    let mut lines = Vec::new();
    let takeover = kafka_cluster::run(&server.addr.to_string(), &mut |line| lines.push(line))
        .await
        .unwrap_or_else(|e| panic!("the scenario failed: {e}"));
    assert!(takeover.new_epoch > takeover.old_epoch, "{takeover:?}");
    assert_ne!(takeover.new_controller, takeover.old_controller);
    assert_eq!(
        takeover.refusal,
        Error::ControllerMoved {
            epoch: takeover.old_epoch
        }
    );
    let transcript = lines.join("\n");
    for expected in [
        r#"took ISR changes for ["orders-0"]"#,
        "/controller held by nobody",
    ] {
        assert!(transcript.contains(expected), "{expected}:\n{transcript}");
    }
    assert!(
        transcript.contains(&format!(
            "old controller {} (epoch {}) fenced",
            takeover.old_controller, takeover.old_epoch
        )),
        "{transcript}"
    );
    // Everything the example's sessions held went with them.
    let observer = client(server.addr).await;
    assert!(observer
        .get_children("/brokers/ids")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(observer.exists(CONTROLLER).await.unwrap(), None);
}

/// The built example binary, run against a fresh server, exits 0 and prints
/// the fencing line. `cargo test --workspace` builds examples next to the
/// test executables (`target/<profile>/examples`); a run limited to `--test
/// kafka` does not, and may find an older build (the scenario test above
/// runs the example's current code in-process either way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_cluster_example_binary_runs() {
    let test_exe = std::env::current_exe().unwrap();
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let example = profile_dir
        .join("examples")
        .join(format!("kafka_cluster{}", std::env::consts::EXE_SUFFIX));
    assert!(
        example.is_file(),
        "no example binary at {}: build it with `cargo test --workspace` or \
         `cargo build --workspace --examples`",
        example.display()
    );

    let server = zoo_server().await;
    let run = tokio::process::Command::new(&example)
        .arg(server.addr.to_string())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the example finishes within 20 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the example failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("old controller ") && l.contains("fenced: the controller moved")),
        "no fencing line:\n{stdout}"
    );
}
