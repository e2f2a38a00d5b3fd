//! A simulated Kafka cluster's metadata on a Zoo (or ZooKeeper) server.
//!
//! Three brokers register and race for control; the winner creates a topic
//! and takes an ISR change notification. Then the controller's session ends,
//! as when its process dies and the server expires the session: the other
//! brokers race again and the winner controls at a higher controller epoch.
//! Finally the old controller comes back on a new session, still believing
//! it controls, and tries to move a partition's leadership: the server
//! refuses the write, because `/controller_epoch` has moved on. The new
//! controller then makes that change itself.
//!
//! ```text
//! cargo run --example kafka_cluster -- 127.0.0.1:2181
//! ```
//!
//! The argument is a connect string (default `127.0.0.1:2181`); the paths
//! are Kafka's (`/brokers`, `/controller`, ...), so add a chroot
//! (`host:port/kafka-demo`, the node existing) to keep them apart from a
//! real Kafka's. Exits non-zero if anything goes other than described,
//! above all if the old controller's write is not refused.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::process::ExitCode;

use tokio::task::JoinSet;
use zoo_client::Client;
use zoo_recipes::kafka::{BrokerInfo, Controller, KafkaZk, TopicPartition};
use zoo_recipes::Error;

/// The simulated brokers' ids.
const BROKER_IDS: [i32; 3] = [1, 2, 3];
const TOPIC: &str = "orders";

/// What the run showed: who controlled at which epoch, and how the old
/// controller's write was refused.
#[derive(Debug)]
pub struct Takeover {
    pub old_controller: i32,
    pub old_epoch: i32,
    pub new_controller: i32,
    pub new_epoch: i32,
    pub refusal: Error,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Runs the scenario against the server at `connect`, telling `say` what
/// happens, one line at a time.
pub async fn run(connect: &str, say: &mut dyn FnMut(String)) -> Result<Takeover, Failure> {
    // Phase 1: the brokers come up.
    let mut brokers: BTreeMap<i32, KafkaZk> = BTreeMap::new();
    for id in BROKER_IDS {
        let client = Client::connect(connect).await?;
        let zk = KafkaZk::new(&client);
        zk.ensure_layout().await?;
        let info = BrokerInfo::plaintext("127.0.0.1", 9090 + id);
        let broker_epoch = zk.register_broker(id, &info).await?;
        say(format!(
            "broker {id} registered at /brokers/ids/{id} ({}), broker epoch {broker_epoch}",
            info.endpoints.join(",")
        ));
        brokers.insert(id, zk);
    }

    // Phase 2: they race for control; the winner creates a topic and takes
    // a follower's ISR change notification.
    let old = elect(&brokers, say).await?;
    let old_id = old.broker_id();
    let partitions: BTreeMap<i32, Vec<i32>> = (0..3)
        .map(|p| {
            let replicas = (0..3).map(|r| BROKER_IDS[(p + r) % 3]).collect();
            (p as i32, replicas)
        })
        .collect();
    match old.create_topic(TOPIC, &partitions).await {
        Ok(()) => say(format!(
            "controller {old_id} created topic {TOPIC} with partitions {partitions:?}"
        )),
        Err(Error::Client(zoo_client::Error::NodeExists)) => {
            say(format!(
                "topic {TOPIC} exists already (from an earlier run)"
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let follower = brokers
        .iter()
        .find(|(id, _)| **id != old_id)
        .map(|(_, zk)| zk.clone())
        .expect("three brokers");
    let orders_0 = TopicPartition {
        topic: TOPIC.to_string(),
        partition: 0,
    };
    let notification = follower
        .notify_isr_change(std::slice::from_ref(&orders_0))
        .await?;
    let changed: Vec<String> = old
        .take_isr_changes()
        .await?
        .iter()
        .map(|tp| format!("{}-{}", tp.topic, tp.partition))
        .collect();
    say(format!(
        "a follower posted {notification}; controller {old_id} took ISR changes for {changed:?}"
    ));

    // Phase 3: the controller's session ends.
    let old_client = brokers
        .remove(&old_id)
        .expect("the winner")
        .client()
        .clone();
    old_client.close().await;
    let observer = brokers.values().next().expect("two brokers left");
    let live: Vec<i32> = observer.brokers().await?.into_keys().collect();
    let controller = match observer.controller().await? {
        Some(id) => format!("broker {id}"),
        None => "nobody".to_string(),
    };
    say(format!(
        "controller {old_id}'s session ended: live brokers {live:?}, /controller held by {controller}"
    ));

    // Phase 4: the others race again; the winner controls at a higher epoch.
    let new = elect(&brokers, say).await?;
    if new.epoch() <= old.epoch() {
        return Err(format!(
            "the new controller's epoch {} is not above the old {}",
            new.epoch(),
            old.epoch()
        )
        .into());
    }

    // Phase 5: the old controller returns on a new session, still believing
    // it controls at its old epoch, and tries to lead partition 0 itself.
    let zombie_client = Client::connect(connect).await?;
    let zombie = old.clone().reattach(&zombie_client);
    let seen = observer
        .partition_state(TOPIC, 0)
        .await?
        .ok_or("partition 0 has no state")?;
    let attempt = zombie
        .update_partition(TOPIC, 0, &seen, old_id, vec![old_id])
        .await;
    zombie_client.close().await;
    let refusal = match attempt {
        Err(e @ Error::ControllerMoved { .. }) => e,
        Err(e) => return Err(format!("the old controller's write failed otherwise: {e}").into()),
        Ok(state) => {
            return Err(format!("the old controller's write went through: {state:?}").into())
        }
    };
    say(format!(
        "old controller {old_id} (epoch {}) fenced: {refusal}",
        old.epoch()
    ));

    // Phase 6: the new controller moves leadership off the dead broker.
    let live_replicas: Vec<i32> = seen
        .state
        .isr
        .iter()
        .copied()
        .filter(|id| live.contains(id))
        .collect();
    let leader = *live_replicas
        .first()
        .ok_or("no live replica of partition 0")?;
    let moved = new
        .update_partition(TOPIC, 0, &seen, leader, live_replicas)
        .await?;
    say(format!(
        "controller {} (epoch {}) made broker {leader} leader of {TOPIC}-0: isr {:?}, leader epoch {}, partition epoch {}",
        new.broker_id(),
        new.epoch(),
        moved.state.isr,
        moved.state.leader_epoch,
        moved.version
    ));

    for zk in brokers.values() {
        zk.client().close().await;
    }
    Ok(Takeover {
        old_controller: old_id,
        old_epoch: old.epoch(),
        new_controller: new.broker_id(),
        new_epoch: new.epoch(),
        refusal,
    })
}

/// Every broker in `brokers` tries to become controller at once; exactly
/// one must win.
async fn elect(
    brokers: &BTreeMap<i32, KafkaZk>,
    say: &mut dyn FnMut(String),
) -> Result<Controller, Failure> {
    let mut race = JoinSet::new();
    for (&id, zk) in brokers {
        let zk = zk.clone();
        race.spawn(async move { (id, zk.elect_controller(id).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = race.join_next().await {
        let (id, outcome) = joined?;
        match outcome? {
            Some(controller) => winners.push(controller),
            None => say(format!("broker {id} lost the election")),
        }
    }
    match <[Controller; 1]>::try_from(winners) {
        Ok([controller]) => {
            say(format!(
                "broker {} is controller, controller epoch {}",
                controller.broker_id(),
                controller.epoch()
            ));
            Ok(controller)
        }
        Err(winners) => Err(format!(
            "{} brokers won the election (another controller holds /controller?)",
            winners.len()
        )
        .into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".to_string());
    println!("kafka_cluster on {connect}");
    match run(&connect, &mut |line| println!("{line}")).await {
        Ok(takeover) => {
            println!(
                "done: controller {} (epoch {}) took over from {} (epoch {})",
                takeover.new_controller,
                takeover.new_epoch,
                takeover.old_controller,
                takeover.old_epoch
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kafka_cluster: {e}");
            ExitCode::FAILURE
        }
    }
}
