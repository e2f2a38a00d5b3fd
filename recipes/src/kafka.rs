//! A Kafka-style metadata store: brokers, controller election with epoch
//! fencing, topics, partition state and ISR change notifications, in the
//! layout Kafka kept in ZooKeeper (`ZkData.scala`), so Kafka's own tools
//! read it.
//!
//! The controller is elected by one multi that creates the ephemeral
//! `/controller` and bumps `/controller_epoch` at the version just read.
//! Every controller write is then a multi that starts with a check of
//! `/controller_epoch`'s version: once another controller has been elected,
//! the version has moved and the server itself refuses the deposed
//! controller's writes (`Error::ControllerMoved`), however long it was
//! paused and whatever it still believes. Partition state is written with the
//! version read (the partition epoch), so two writers of one partition
//! conflict instead of overwriting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zoo_client::{Client, CreateOptions, Op, OpOutcome};
use zoo_wire::CreateMode;

use crate::cache::{CacheEvent, TreeCache};
use crate::error::{Error, Result};
use crate::support::{ensure_path, retry};

pub const BROKERS_IDS: &str = "/brokers/ids";
pub const BROKERS_TOPICS: &str = "/brokers/topics";
pub const CONTROLLER: &str = "/controller";
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
pub const ISR_CHANGES: &str = "/isr_change_notification";
/// The prefix of an ISR change notification's sequential node.
pub const ISR_CHANGE_PREFIX: &str = "isr_change_";

/// The persistent paths a Kafka broker creates at start.
pub const PERSISTENT_PATHS: [&str; 12] = [
    "/consumers",
    BROKERS_IDS,
    BROKERS_TOPICS,
    "/config/changes",
    "/admin/delete_topics",
    "/brokers/seqid",
    ISR_CHANGES,
    "/latest_producer_id_block",
    "/log_dir_event_notification",
    "/config/topics",
    "/config/clients",
    "/config/brokers",
];

/// The most ISR change notifications a controller takes in one call: each
/// is a node, and a long backlog is drained over several calls.
pub const MAX_NOTIFICATIONS_PER_CALL: usize = 1000;

/// `/brokers/ids/<id>`: how to reach a broker (version 5 of Kafka's
/// format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub version: i32,
    pub host: String,
    pub port: i32,
    pub endpoints: Vec<String>,
    pub jmx_port: i32,
    /// Milliseconds since the epoch, as a string, as Kafka writes it.
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// A PLAINTEXT broker at `host:port`.
    pub fn plaintext(host: &str, port: i32) -> BrokerInfo {
        BrokerInfo {
            version: 5,
            host: host.to_string(),
            port,
            endpoints: vec![format!("PLAINTEXT://{host}:{port}")],
            jmx_port: -1,
            timestamp: now_ms().to_string(),
            rack: None,
        }
    }
}

/// A registered broker: its info, and its epoch (the czxid of its node,
/// which changes with every registration, so a restarted broker is told
/// apart from its previous life).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub id: i32,
    pub info: BrokerInfo,
    pub epoch: i64,
}

/// `/controller`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerInfo {
    pub version: i32,
    pub brokerid: i32,
    pub timestamp: String,
    #[serde(rename = "kraftControllerEpoch", default = "no_kraft_epoch")]
    pub kraft_controller_epoch: i32,
}

fn no_kraft_epoch() -> i32 {
    -1
}

/// `/brokers/topics/<topic>`: replica assignment per partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    pub version: i32,
    pub partitions: BTreeMap<String, Vec<i32>>,
    #[serde(default)]
    pub adding_replicas: BTreeMap<String, Vec<i32>>,
    #[serde(default)]
    pub removing_replicas: BTreeMap<String, Vec<i32>>,
}

impl TopicAssignment {
    /// An assignment from partition number to replicas (preferred leader
    /// first).
    pub fn new(partitions: &BTreeMap<i32, Vec<i32>>) -> TopicAssignment {
        TopicAssignment {
            version: 3,
            partitions: partitions
                .iter()
                .map(|(p, replicas)| (p.to_string(), replicas.clone()))
                .collect(),
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
        }
    }

    pub fn replicas(&self, partition: i32) -> Option<&[i32]> {
        self.partitions
            .get(&partition.to_string())
            .map(Vec::as_slice)
    }
}

/// `/brokers/topics/<topic>/partitions/<p>/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub version: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub controller_epoch: i32,
    pub isr: Vec<i32>,
}

/// A partition state and its node's version, the partition epoch that the
/// next update must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedState {
    pub state: PartitionState,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IsrChange {
    version: i32,
    partitions: Vec<TopicPartition>,
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("metadata records serialize")
}

fn from_json<T: for<'de> Deserialize<'de>>(path: &str, data: &[u8]) -> Result<T> {
    serde_json::from_slice(data).map_err(|e| Error::bad_data(path, e))
}

pub fn broker_path(id: i32) -> String {
    format!("{BROKERS_IDS}/{id}")
}

pub fn topic_path(topic: &str) -> String {
    format!("{BROKERS_TOPICS}/{topic}")
}

pub fn partition_state_path(topic: &str, partition: i32) -> String {
    format!("{BROKERS_TOPICS}/{topic}/partitions/{partition}/state")
}

/// The metadata store, on one client (one session).
///
/// ```no_run
/// # async fn demo(client: zoo_client::Client) -> zoo_recipes::Result<()> {
/// use zoo_recipes::kafka::{BrokerInfo, KafkaZk};
///
/// let zk = KafkaZk::new(&client);
/// zk.ensure_layout().await?;
/// let epoch = zk.register_broker(1, &BrokerInfo::plaintext("10.0.0.1", 9092)).await?;
/// if let Some(controller) = zk.elect_controller(1).await? {
///     println!("broker 1 controls, epoch {} (broker epoch {epoch})", controller.epoch());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KafkaZk {
    client: Client,
}

impl KafkaZk {
    pub fn new(client: &Client) -> KafkaZk {
        KafkaZk {
            client: client.clone(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the persistent paths a broker expects.
    pub async fn ensure_layout(&self) -> Result<()> {
        for path in PERSISTENT_PATHS {
            ensure_path(&self.client, path).await?;
        }
        Ok(())
    }

    /// Registers broker `id` as an ephemeral node and returns its broker
    /// epoch. Kafka's checked ephemeral: a node left by this session's own
    /// earlier create (whose reply was lost) counts as registered; one held
    /// by another live session is `NodeExists`.
    pub async fn register_broker(&self, id: i32, info: &BrokerInfo) -> Result<i64> {
        let path = broker_path(id);
        let data = to_json(info);
        let options = CreateOptions::new(CreateMode::Ephemeral);
        match self.client.create(&path, &data, options).await {
            Ok((_, stat)) => Ok(stat.czxid),
            Err(e) if e.is_retryable() || e == zoo_client::Error::NodeExists => {
                crate::support::reconnected(&self.client).await?;
                match retry(&self.client, || self.client.exists(&path)).await? {
                    Some(stat) if stat.ephemeral_owner == self.client.session_id() => {
                        Ok(stat.czxid)
                    }
                    Some(_) => Err(zoo_client::Error::NodeExists.into()),
                    // Our create never landed: try once more, afresh.
                    None => {
                        let options = CreateOptions::new(CreateMode::Ephemeral);
                        let (_, stat) = retry(&self.client, || {
                            self.client.create(&path, &data, options.clone())
                        })
                        .await?;
                        Ok(stat.czxid)
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The registered brokers, by id.
    pub async fn brokers(&self) -> Result<BTreeMap<i32, Broker>> {
        let ids = retry(&self.client, || self.client.get_children(BROKERS_IDS)).await?;
        let mut brokers = BTreeMap::new();
        for name in ids {
            let Ok(id) = name.parse::<i32>() else {
                continue;
            };
            let path = broker_path(id);
            match retry(&self.client, || self.client.get_data(&path)).await {
                Ok((data, stat)) => {
                    let info = from_json(&path, &data)?;
                    brokers.insert(
                        id,
                        Broker {
                            id,
                            info,
                            epoch: stat.czxid,
                        },
                    );
                }
                Err(Error::Client(zoo_client::Error::NoNode)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(brokers)
    }

    /// The broker that is controller now, if any.
    pub async fn controller(&self) -> Result<Option<i32>> {
        match retry(&self.client, || self.client.get_data(CONTROLLER)).await {
            Ok((data, _)) => Ok(Some(
                from_json::<ControllerInfo>(CONTROLLER, &data)?.brokerid,
            )),
            Err(Error::Client(zoo_client::Error::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The controller epoch and the version of its node, creating it at
    /// epoch 0 on first use.
    pub async fn controller_epoch(&self) -> Result<(i32, i32)> {
        loop {
            match retry(&self.client, || self.client.get_data(CONTROLLER_EPOCH)).await {
                Ok((data, stat)) => {
                    let epoch = std::str::from_utf8(&data)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| Error::bad_data(CONTROLLER_EPOCH, "not an integer"))?;
                    return Ok((epoch, stat.version));
                }
                Err(Error::Client(zoo_client::Error::NoNode)) => {
                    let options = CreateOptions::new(CreateMode::Persistent);
                    match retry(&self.client, || {
                        self.client.create(CONTROLLER_EPOCH, b"0", options.clone())
                    })
                    .await
                    {
                        Ok(_) | Err(Error::Client(zoo_client::Error::NodeExists)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Tries to become controller as broker `broker_id`: creates
    /// `/controller` and bumps `/controller_epoch` in one multi. `None` if
    /// another broker is controller (or won the race).
    pub async fn elect_controller(&self, broker_id: i32) -> Result<Option<Controller>> {
        let (epoch, version) = self.controller_epoch().await?;
        let new_epoch = epoch + 1;
        let info = ControllerInfo {
            version: 2,
            brokerid: broker_id,
            timestamp: now_ms().to_string(),
            kraft_controller_epoch: -1,
        };
        let ops = vec![
            Op::Create {
                path: CONTROLLER.to_string(),
                data: to_json(&info),
                options: CreateOptions::new(CreateMode::Ephemeral),
            },
            Op::SetData {
                path: CONTROLLER_EPOCH.to_string(),
                data: new_epoch.to_string().into_bytes(),
                version: Some(version),
            },
        ];
        match self.client.multi(ops).await {
            Ok(outcomes) => {
                let Some(OpOutcome::DataSet(stat)) = outcomes.get(1) else {
                    return Err(zoo_client::Error::Protocol(format!(
                        "multi answered {outcomes:?}"
                    ))
                    .into());
                };
                Ok(Some(self.controller_at(broker_id, new_epoch, stat.version)))
            }
            Err((_, zoo_client::Error::NodeExists | zoo_client::Error::BadVersion)) => {
                // Someone else won, unless it was us with a lost reply.
                self.recheck_election(broker_id, new_epoch).await
            }
            Err((_, e)) if e.is_retryable() => {
                crate::support::reconnected(&self.client).await?;
                self.recheck_election(broker_id, new_epoch).await
            }
            Err((_, e)) => Err(e.into()),
        }
    }

    /// After a multi whose outcome is unknown or lost: are we the
    /// controller at `epoch`?
    async fn recheck_election(&self, broker_id: i32, epoch: i32) -> Result<Option<Controller>> {
        let owner = match retry(&self.client, || self.client.exists(CONTROLLER)).await? {
            Some(stat) => stat.ephemeral_owner,
            None => return Ok(None),
        };
        if owner != self.client.session_id() {
            return Ok(None);
        }
        let (now, version) = self.controller_epoch().await?;
        Ok((now == epoch).then(|| self.controller_at(broker_id, epoch, version)))
    }

    fn controller_at(&self, broker_id: i32, epoch: i32, epoch_zk_version: i32) -> Controller {
        Controller {
            zk: self.clone(),
            broker_id,
            epoch,
            epoch_zk_version,
        }
    }

    /// A topic's replica assignment.
    pub async fn topic(&self, topic: &str) -> Result<Option<TopicAssignment>> {
        let path = topic_path(topic);
        match retry(&self.client, || self.client.get_data(&path)).await {
            Ok((data, _)) => Ok(Some(from_json(&path, &data)?)),
            Err(Error::Client(zoo_client::Error::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn topics(&self) -> Result<Vec<String>> {
        retry(&self.client, || self.client.get_children(BROKERS_TOPICS)).await
    }

    /// A partition's state and its partition epoch.
    pub async fn partition_state(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<VersionedState>> {
        let path = partition_state_path(topic, partition);
        match retry(&self.client, || self.client.get_data(&path)).await {
            Ok((data, stat)) => Ok(Some(VersionedState {
                state: from_json(&path, &data)?,
                version: stat.version,
            })),
            Err(Error::Client(zoo_client::Error::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What a broker does when a partition's ISR changed: a sequential
    /// notification for the controller. Returns the node's path.
    pub async fn notify_isr_change(&self, partitions: &[TopicPartition]) -> Result<String> {
        let change = IsrChange {
            version: 1,
            partitions: partitions.to_vec(),
        };
        let path = format!("{ISR_CHANGES}/{ISR_CHANGE_PREFIX}");
        let (created, _) = self
            .client
            .create(
                &path,
                &to_json(&change),
                CreateOptions::new(CreateMode::PersistentSequential),
            )
            .await?;
        Ok(created)
    }
}

/// The elected controller: every write it makes is fenced by its epoch.
#[derive(Debug, Clone)]
pub struct Controller {
    zk: KafkaZk,
    broker_id: i32,
    epoch: i32,
    epoch_zk_version: i32,
}

impl Controller {
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The version of `/controller_epoch` this controller's writes require.
    pub fn epoch_zk_version(&self) -> i32 {
        self.epoch_zk_version
    }

    /// The same controller, believing what it believed, on another session:
    /// what a controller process is after a pause long enough for its
    /// session to expire, when its client has reconnected with a new one.
    /// Its writes must fail, and do.
    pub fn reattach(self, client: &Client) -> Controller {
        Controller {
            zk: KafkaZk::new(client),
            ..self
        }
    }

    /// Runs `ops` after a check that no controller was elected since this
    /// one (Kafka's `wrapRequestWithControllerEpochCheck`).
    pub async fn fenced(&self, ops: Vec<Op>) -> Result<Vec<OpOutcome>> {
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(Op::Check {
            path: CONTROLLER_EPOCH.to_string(),
            version: self.epoch_zk_version,
        });
        all.extend(ops);
        match self.zk.client.multi(all).await {
            Ok(mut outcomes) => {
                outcomes.remove(0);
                Ok(outcomes)
            }
            Err((0, zoo_client::Error::BadVersion | zoo_client::Error::NoNode)) => {
                Err(Error::ControllerMoved { epoch: self.epoch })
            }
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Creates a topic with its assignment and, for every partition, the
    /// initial state: the first replica leads, all replicas in the ISR.
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: &BTreeMap<i32, Vec<i32>>,
    ) -> Result<()> {
        let assignment = TopicAssignment::new(partitions);
        let persistent = CreateOptions::new(CreateMode::Persistent);
        let mut ops = vec![
            Op::Create {
                path: topic_path(topic),
                data: to_json(&assignment),
                options: persistent.clone(),
            },
            Op::Create {
                path: format!("{}/partitions", topic_path(topic)),
                data: Vec::new(),
                options: persistent.clone(),
            },
        ];
        for (partition, replicas) in partitions {
            let state = PartitionState {
                version: 1,
                leader: replicas.first().copied().unwrap_or(-1),
                leader_epoch: 0,
                controller_epoch: self.epoch,
                isr: replicas.clone(),
            };
            ops.push(Op::Create {
                path: format!("{}/partitions/{partition}", topic_path(topic)),
                data: Vec::new(),
                options: persistent.clone(),
            });
            ops.push(Op::Create {
                path: partition_state_path(topic, *partition),
                data: to_json(&state),
                options: persistent.clone(),
            });
        }
        self.fenced(ops).await.map(|_| ())
    }

    /// Writes a partition's new leader and ISR, conditional on the partition
    /// epoch read (`seen.version`); bumps the leader epoch when the leader
    /// changes. Returns the new versioned state. `BadVersion` if someone
    /// updated the partition since it was read.
    pub async fn update_partition(
        &self,
        topic: &str,
        partition: i32,
        seen: &VersionedState,
        leader: i32,
        isr: Vec<i32>,
    ) -> Result<VersionedState> {
        let state = PartitionState {
            version: 1,
            leader,
            leader_epoch: seen.state.leader_epoch + i32::from(leader != seen.state.leader),
            controller_epoch: self.epoch,
            isr,
        };
        let ops = vec![Op::SetData {
            path: partition_state_path(topic, partition),
            data: to_json(&state),
            version: Some(seen.version),
        }];
        match self.fenced(ops).await?.first() {
            Some(OpOutcome::DataSet(stat)) => Ok(VersionedState {
                state,
                version: stat.version,
            }),
            other => Err(zoo_client::Error::Protocol(format!("multi answered {other:?}")).into()),
        }
    }

    /// Takes the pending ISR change notifications (oldest first, at most
    /// `MAX_NOTIFICATIONS_PER_CALL`): reads them, deletes them under the
    /// fence, returns the partitions they name.
    pub async fn take_isr_changes(&self) -> Result<Vec<TopicPartition>> {
        let client = &self.zk.client;
        let mut names = retry(client, || client.get_children(ISR_CHANGES)).await?;
        names.retain(|n| n.starts_with(ISR_CHANGE_PREFIX));
        names.sort();
        names.truncate(MAX_NOTIFICATIONS_PER_CALL);
        let mut changed = Vec::new();
        let mut deletes = Vec::new();
        for name in names {
            let path = format!("{ISR_CHANGES}/{name}");
            match retry(client, || client.get_data(&path)).await {
                Ok((data, _)) => {
                    let change: IsrChange = from_json(&path, &data)?;
                    changed.extend(change.partitions);
                    deletes.push(Op::Delete {
                        path,
                        version: None,
                    });
                }
                Err(Error::Client(zoo_client::Error::NoNode)) => {}
                Err(e) => return Err(e),
            }
        }
        if !deletes.is_empty() {
            self.fenced(deletes).await?;
        }
        changed.sort();
        changed.dedup();
        Ok(changed)
    }

    /// Gives up control: deletes `/controller` (fenced, so a deposed
    /// controller cannot remove its successor's node).
    pub async fn resign(self) -> Result<()> {
        let ops = vec![Op::Delete {
            path: CONTROLLER.to_string(),
            version: None,
        }];
        self.fenced(ops).await.map(|_| ())
    }
}

/// A local copy of the brokers, topics and partition states, and of who
/// controls, kept current by watches (tree caches on `/brokers` and
/// `/controller`).
#[derive(Debug)]
pub struct MetadataCache {
    brokers: TreeCache,
    controller: TreeCache,
}

impl MetadataCache {
    pub async fn start(client: &Client) -> Result<MetadataCache> {
        Ok(MetadataCache {
            brokers: TreeCache::start(client, "/brokers").await?,
            controller: TreeCache::start(client, CONTROLLER).await?,
        })
    }

    /// The live brokers, by id, with their epochs.
    pub fn brokers(&self) -> BTreeMap<i32, Broker> {
        self.brokers
            .children(BROKERS_IDS)
            .into_iter()
            .filter_map(|name| {
                let id: i32 = name.parse().ok()?;
                let node = self.brokers.get(&broker_path(id))?;
                let info = serde_json::from_slice(&node.data).ok()?;
                Some((
                    id,
                    Broker {
                        id,
                        info,
                        epoch: node.stat.czxid,
                    },
                ))
            })
            .collect()
    }

    pub fn topics(&self) -> Vec<String> {
        self.brokers.children(BROKERS_TOPICS)
    }

    pub fn partition_state(&self, topic: &str, partition: i32) -> Option<VersionedState> {
        let node = self.brokers.get(&partition_state_path(topic, partition))?;
        Some(VersionedState {
            state: serde_json::from_slice(&node.data).ok()?,
            version: node.stat.version,
        })
    }

    pub fn controller(&self) -> Option<i32> {
        let node = self.controller.get(CONTROLLER)?;
        serde_json::from_slice::<ControllerInfo>(&node.data)
            .ok()
            .map(|c| c.brokerid)
    }

    /// Changes under `/brokers`.
    pub fn broker_events(&self) -> tokio::sync::broadcast::Receiver<CacheEvent> {
        self.brokers.events()
    }

    /// Changes of `/controller`.
    pub fn controller_events(&self) -> tokio::sync::broadcast::Receiver<CacheEvent> {
        self.controller.events()
    }
}
