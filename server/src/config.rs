//! Server configuration: ZooKeeper's `zoo.cfg` syntax, and the embedded
//! default used when no file is given.
//!
//! Unknown keys and bad values are errors that name the line, so a typo never
//! silently leaves a default in place.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use thiserror::Error;
use zoo_wire::{FourLetterWord, DEFAULT_MAX_FRAME_LEN};

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Bad {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// One `server.N=host:peerPort:electionPort[:observer]` line, kept for the
/// ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
}

/// Everything the server reads from its configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The length of a tick, the unit of session expiry, in ms.
    pub tick_time_ms: u32,
    pub data_dir: PathBuf,
    /// Where the transaction log goes; `data_dir` when unset.
    pub data_log_dir: Option<PathBuf>,
    pub client_port: u16,
    pub client_port_address: IpAddr,
    /// Connections allowed from one client address; 0 means no limit.
    pub max_client_cnxns: u32,
    /// Negotiated session timeouts are clamped to this range (ms).
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// The four-letter words that are answered.
    pub four_letter_words: BTreeSet<FourLetterWord>,
    /// The largest frame accepted from a client (`jute.maxbuffer`).
    pub max_frame_len: usize,
    /// Requests admitted into the pipeline and not yet answered, across all
    /// connections; beyond it connections stop being read (backpressure).
    pub max_outstanding_requests: usize,
    /// Watches one connection may hold; further ones are refused.
    pub max_watches_per_connection: usize,
    /// Frames queued for one connection's socket; a client that lets more
    /// pile up is disconnected rather than let memory grow.
    pub max_queued_frames_per_connection: usize,
    /// TTL nodes (`zookeeper.extendedTypesEnabled`).
    pub extended_types_enabled: bool,
    /// `digest` id whose holder bypasses ACLs (`user:base64(sha1)`).
    pub super_digest: Option<String>,
    /// How often containers and TTL nodes are checked (ms).
    pub container_check_interval_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// This server's id in the ensemble: the `myid` file of `dataDir`.
    pub server_id: u64,
    /// The `server.N` lines: every member, this server included. Elections
    /// and the broadcast both travel on the quorum port.
    pub peers: Vec<PeerAddress>,
    /// Committed transactions a leader keeps in memory to bring a follower
    /// that is a little behind up to date with a DIFF instead of a snapshot
    /// (ZooKeeper's `zookeeper.commitLogCount`).
    pub commit_log_count: usize,
    /// `readonlymode.enabled`: without a quorum, serve reads to clients that
    /// allow a read-only server.
    pub read_only_enabled: bool,
    /// `peerType=observer`: this server must be an observer in `server.N`.
    pub peer_type_observer: bool,
    /// A snapshot is taken after about this many transactions (randomized
    /// between half and all of it per server, as ZooKeeper does).
    pub snap_count: u64,
    /// Snapshots kept by purging (at least 3, as ZooKeeper enforces).
    pub snap_retain_count: usize,
    /// Hours between purges; 0 disables purging.
    pub purge_interval_hours: u32,
    /// TEST ONLY, never set it on a real server: `testOnly.unsafeLocalSync`
    /// makes a follower answer `sync` from its own tree without asking the
    /// leader, so a read after a sync may miss writes completed before it.
    /// It exists so that zoo-jepsen can show its read checker catches that.
    pub test_unsafe_local_sync: bool,
    /// TEST ONLY: `testOnly.clockOffsetMs` shifts every wall-clock reading
    /// of the process (znode times, session id seeds, snapshot times) by
    /// this many ms, so that zoo-jepsen can skew one server's clock.
    pub test_clock_offset_ms: i64,
    /// TEST ONLY: `testOnly.logDelayMs` makes every log write of this
    /// server wait this long first: a slow disk on one server, so that
    /// tests can have the other servers' acknowledgements commit a write
    /// before this one has made it durable, and applied it.
    pub test_log_delay_ms: u64,
}

/// The ZooKeeper default whitelist: only `srvr` (protocol section 14.2).
fn default_four_letter_words() -> BTreeSet<FourLetterWord> {
    [FourLetterWord::Srvr].into_iter().collect()
}

impl Default for Config {
    /// The embedded default: standalone on 127.0.0.1:2181, data in `./data`.
    fn default() -> Self {
        Config {
            tick_time_ms: 2000,
            data_dir: PathBuf::from("data"),
            data_log_dir: None,
            client_port: 2181,
            client_port_address: IpAddr::from([127, 0, 0, 1]),
            max_client_cnxns: 60,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            four_letter_words: default_four_letter_words(),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_outstanding_requests: 1000,
            max_watches_per_connection: 100_000,
            max_queued_frames_per_connection: 10_000,
            extended_types_enabled: false,
            super_digest: None,
            container_check_interval_ms: 60_000,
            init_limit: 10,
            sync_limit: 5,
            server_id: 0,
            peers: Vec::new(),
            commit_log_count: 500,
            read_only_enabled: false,
            peer_type_observer: false,
            snap_count: 100_000,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            test_unsafe_local_sync: false,
            test_clock_offset_ms: 0,
            test_log_delay_ms: 0,
        }
    }
}

impl Config {
    /// Reads a zoo.cfg file. Relative directories are taken as ZooKeeper
    /// does: relative to the working directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        config.read_myid()?;
        Ok(config)
    }

    /// With `server.N` lines, reads this server's id from `dataDir/myid`
    /// and checks that it names one of them.
    pub fn read_myid(&mut self) -> Result<(), ConfigError> {
        if self.peers.is_empty() {
            return Ok(());
        }
        let path = self.data_dir.join("myid");
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let id: u64 = text.trim().parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "{}: expected a server id, found {:?}",
                path.display(),
                text.trim()
            ))
        })?;
        let Some(me) = self.peers.iter().find(|p| p.id == id) else {
            return Err(ConfigError::Invalid(format!(
                "{}: server id {id} has no server.{id} line",
                path.display()
            )));
        };
        if self.peer_type_observer && !me.observer {
            return Err(ConfigError::Invalid(format!(
                "peerType=observer, but server.{id} is not marked :observer"
            )));
        }
        self.server_id = id;
        Ok(())
    }

    /// Parses zoo.cfg text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut min_timeout = None;
        let mut max_timeout = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| ConfigError::Bad {
                file: file.to_string(),
                line: index + 1,
                message,
            };
            let Some((key, value)) = line.split_once('=') else {
                return Err(bad(format!("expected key=value, found {line:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            let number = |what: &str| -> Result<u64, ConfigError> {
                value.parse::<u64>().map_err(|_| {
                    bad(format!(
                        "{what} must be a non-negative integer, found {value:?}"
                    ))
                })
            };
            match key {
                "tickTime" => config.tick_time_ms = positive(number(key)?, key).map_err(bad)?,
                "dataDir" => config.data_dir = PathBuf::from(value),
                "dataLogDir" => config.data_log_dir = Some(PathBuf::from(value)),
                "clientPort" => {
                    config.client_port = u16::try_from(number(key)?)
                        .map_err(|_| bad(format!("clientPort {value} is not a port")))?
                }
                "clientPortAddress" => {
                    config.client_port_address = value.parse().map_err(|_| {
                        bad(format!("clientPortAddress {value:?} is not an IP address"))
                    })?
                }
                "maxClientCnxns" => {
                    config.max_client_cnxns = small(number(key)?, key).map_err(bad)?
                }
                "minSessionTimeout" => min_timeout = Some(small(number(key)?, key).map_err(bad)?),
                "maxSessionTimeout" => max_timeout = Some(small(number(key)?, key).map_err(bad)?),
                "initLimit" => config.init_limit = positive(number(key)?, key).map_err(bad)?,
                "syncLimit" => config.sync_limit = positive(number(key)?, key).map_err(bad)?,
                "4lw.commands.whitelist" => {
                    config.four_letter_words = parse_whitelist(value).map_err(bad)?
                }
                "jute.maxbuffer" => {
                    let n = number(key)?;
                    if !(1024..=i32::MAX as u64).contains(&n) {
                        return Err(bad(format!("jute.maxbuffer must be 1024..={}", i32::MAX)));
                    }
                    config.max_frame_len = n as usize;
                }
                "maxOutstandingRequests" => {
                    config.max_outstanding_requests =
                        positive(number(key)?, key).map_err(bad)? as usize
                }
                "maxWatchesPerConnection" => {
                    config.max_watches_per_connection =
                        positive(number(key)?, key).map_err(bad)? as usize
                }
                "maxQueuedFramesPerConnection" => {
                    config.max_queued_frames_per_connection =
                        positive(number(key)?, key).map_err(bad)? as usize
                }
                "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                    config.extended_types_enabled = parse_bool(value).map_err(bad)?
                }
                "superDigest" | "DigestAuthenticationProvider.superDigest" => {
                    if value.split(':').count() != 2 {
                        return Err(bad("superDigest must be user:base64-sha1".into()));
                    }
                    config.super_digest = Some(value.to_string())
                }
                "znode.container.checkIntervalMs" => {
                    config.container_check_interval_ms = positive(number(key)?, key).map_err(bad)?
                }
                "commitLogCount" | "zookeeper.commitLogCount" => {
                    config.commit_log_count = number(key)?.clamp(1, 1_000_000) as usize
                }
                "snapCount" => {
                    config.snap_count = u64::from(positive(number(key)?, key).map_err(bad)?).max(2)
                }
                "autopurge.snapRetainCount" => {
                    config.snap_retain_count = (number(key)?.max(3)) as usize
                }
                "autopurge.purgeInterval" => {
                    config.purge_interval_hours = number(key)?.clamp(0, 24 * 365) as u32
                }
                // Accepted for zoo.cfg compatibility; their features come later.
                "admin.enableServer" | "standaloneEnabled" | "reconfigEnabled" => {}
                "testOnly.unsafeLocalSync" => {
                    config.test_unsafe_local_sync = parse_bool(value).map_err(bad)?
                }
                "testOnly.clockOffsetMs" => {
                    config.test_clock_offset_ms = value
                        .parse::<i64>()
                        .map_err(|_| bad(format!("not a whole number of ms: {value}")))?
                }
                "testOnly.logDelayMs" => {
                    config.test_log_delay_ms = value
                        .parse::<u64>()
                        .map_err(|_| bad(format!("not a whole number of ms: {value}")))?
                        .min(60_000)
                }
                "readonlymode.enabled" => {
                    config.read_only_enabled = parse_bool(value).map_err(bad)?
                }
                "peerType" => {
                    config.peer_type_observer = match value {
                        "observer" => true,
                        "participant" => false,
                        _ => {
                            return Err(bad(format!(
                                "peerType must be observer or participant, found {value:?}"
                            )))
                        }
                    }
                }
                _ if key.starts_with("server.") => {
                    config.peers.push(parse_peer(key, value).map_err(bad)?);
                }
                _ => return Err(bad(format!("unknown setting {key:?}"))),
            }
        }
        // Clients of a read-only server look for a read-write one with
        // `isro`, so ZooKeeper enables it with read-only mode (protocol
        // section 14.2).
        if config.read_only_enabled {
            config.four_letter_words.insert(FourLetterWord::Isro);
        }
        let tick = config.tick_time_ms;
        config.min_session_timeout_ms = min_timeout.unwrap_or(2 * tick);
        config.max_session_timeout_ms = max_timeout.unwrap_or(20 * tick);
        let mut ids: Vec<u64> = config.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid(
                "a server id appears in two server.N lines".into(),
            ));
        }
        if !config.peers.is_empty() && config.peers.iter().all(|p| p.observer) {
            return Err(ConfigError::Invalid(
                "an ensemble needs at least one voting server".into(),
            ));
        }
        if config.min_session_timeout_ms > config.max_session_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "minSessionTimeout {} is above maxSessionTimeout {}",
                config.min_session_timeout_ms, config.max_session_timeout_ms
            )));
        }
        Ok(config)
    }

    /// Clamps a client's requested timeout to the configured range.
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        let min = self.min_session_timeout_ms as i32;
        let max = self.max_session_timeout_ms as i32;
        requested_ms.clamp(min, max)
    }
}

fn positive(n: u64, key: &str) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{key} must be between 1 and {}", u32::MAX)),
    }
}

fn small(n: u64, key: &str) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|v| *v <= i32::MAX as u32)
        .ok_or_else(|| format!("{key} is too large"))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(format!("expected true or false, found {value:?}")),
    }
}

/// A comma-separated list of words or `*`; `srvr` is always added, as in
/// ZooKeeper.
fn parse_whitelist(value: &str) -> Result<BTreeSet<FourLetterWord>, String> {
    let mut words = default_four_letter_words();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            words.extend(FourLetterWord::ALL.iter().copied());
        } else {
            words.insert(
                FourLetterWord::from_name(item)
                    .ok_or_else(|| format!("unknown four-letter word {item:?}"))?,
            );
        }
    }
    Ok(words)
}

fn parse_peer(key: &str, value: &str) -> Result<PeerAddress, String> {
    let id: u64 = key["server.".len()..]
        .parse()
        .map_err(|_| format!("{key}: the server id must be a number"))?;
    // The id is the top byte of the session ids the server hands out.
    if !(1..=255).contains(&id) {
        return Err(format!("{key}: the server id must be between 1 and 255"));
    }
    // An optional `;clientAddress` part follows in 3.5+ syntax.
    let addr = value.split(';').next().unwrap_or_default();
    let parts: Vec<&str> = addr.split(':').collect();
    let port = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("{key}: {s:?} is not a port"))
    };
    match parts.as_slice() {
        [host, quorum, election] | [host, quorum, election, "participant"] => Ok(PeerAddress {
            id,
            host: host.to_string(),
            quorum_port: port(quorum)?,
            election_port: port(election)?,
            observer: false,
        }),
        [host, quorum, election, "observer"] => Ok(PeerAddress {
            id,
            host: host.to_string(),
            quorum_port: port(quorum)?,
            election_port: port(election)?,
            observer: true,
        }),
        _ => Err(format!(
            "{key}: expected host:quorumPort:electionPort[:observer], found {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typical_file() {
        let config = Config::parse(
            "# comment\ntickTime=1000\ndataDir=/var/zoo\nclientPort=2182\nmaxClientCnxns=10\n\
             4lw.commands.whitelist=ruok, mntr\nserver.1=127.0.0.1:2888:3888\n\
             server.2=127.0.0.1:2889:3889:observer\n",
            "zoo.cfg",
        )
        .unwrap();
        assert_eq!(config.tick_time_ms, 1000);
        assert_eq!(config.client_port, 2182);
        assert_eq!(config.min_session_timeout_ms, 2000);
        assert_eq!(config.max_session_timeout_ms, 20000);
        assert!(config.four_letter_words.contains(&FourLetterWord::Srvr));
        assert!(config.four_letter_words.contains(&FourLetterWord::Mntr));
        assert!(!config.four_letter_words.contains(&FourLetterWord::Stat));
        assert_eq!(config.peers.len(), 2);
        assert!(config.peers[1].observer);
    }

    #[test]
    fn errors_name_the_line() {
        let err = Config::parse("tickTime=2000\ntickTyme=3\n", "zoo.cfg").unwrap_err();
        assert_eq!(err.to_string(), "zoo.cfg:2: unknown setting \"tickTyme\"");
        let err = Config::parse("clientPort=99999\n", "zoo.cfg").unwrap_err();
        assert!(
            err.to_string().contains("zoo.cfg:1: clientPort 99999"),
            "{err}"
        );
        let err = Config::parse("4lw.commands.whitelist=ruok,nope\n", "c").unwrap_err();
        assert!(
            err.to_string().contains("unknown four-letter word"),
            "{err}"
        );
        assert!(Config::parse("minSessionTimeout=9000\nmaxSessionTimeout=100\n", "c").is_err());
        assert!(Config::parse("tickTime=0\n", "c").is_err());
    }

    #[test]
    fn ensemble_settings_and_myid() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "dataDir={}\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
             server.3=127.0.0.1:2890:3890:observer\nreadonlymode.enabled=true\n",
            dir.path().display()
        );
        let mut config = Config::parse(&text, "c").unwrap();
        assert!(config.read_only_enabled);
        assert!(
            config.four_letter_words.contains(&FourLetterWord::Isro),
            "read-only mode enables isro"
        );
        let err = config.read_myid().unwrap_err().to_string();
        assert!(err.contains("myid"), "a missing myid is named: {err}");
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        config.read_myid().unwrap();
        assert_eq!(config.server_id, 2);
        std::fs::write(dir.path().join("myid"), "7\n").unwrap();
        let err = config.read_myid().unwrap_err().to_string();
        assert!(err.contains("no server.7 line"), "{err}");

        // peerType=observer must agree with the server's own line.
        let mut observer = Config::parse(&format!("{text}peerType=observer\n"), "c").unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let err = observer.read_myid().unwrap_err().to_string();
        assert!(err.contains("not marked :observer"), "{err}");
        std::fs::write(dir.path().join("myid"), "3\n").unwrap();
        observer.read_myid().unwrap();

        for bad in [
            "server.0=127.0.0.1:1:2\n",
            "server.256=127.0.0.1:1:2\n",
            "server.1=127.0.0.1:1:2\nserver.1=127.0.0.1:3:4\n",
            "server.1=127.0.0.1:1:2:observer\n",
            "peerType=leader\n",
        ] {
            assert!(Config::parse(bad, "c").is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn timeouts_are_clamped() {
        let config = Config::default();
        assert_eq!(config.negotiate_timeout(100), 4000);
        assert_eq!(config.negotiate_timeout(30000), 30000);
        assert_eq!(config.negotiate_timeout(1_000_000), 40000);
    }
}
