//! Four-letter words: the text ZooKeeper's admin commands print
//! (protocol section 14.3).

use std::fmt::Write;
use std::net::SocketAddr;

use zoo_wire::FourLetterWord;

use crate::core::Core;
use crate::stats::op_code_name;
use crate::zab::Role;

/// What `srvr`, `stat` and `mntr` say while the server has no quorum.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The version Zoo reports: the ZooKeeper release it matches, then its own.
pub fn version_line() -> String {
    format!(
        "3.8.4-zoo-{}, built on {}",
        env!("CARGO_PKG_VERSION"),
        "an unrecorded date"
    )
}

fn socket_text(addr: &SocketAddr) -> String {
    format!("/{}:{}", addr.ip(), addr.port())
}

impl Core {
    pub(crate) fn four_letter(
        &mut self,
        word: FourLetterWord,
        arg: Option<i64>,
        remote: SocketAddr,
    ) -> String {
        if !self.config.four_letter_words.contains(&word) {
            return format!(
                "{} is not executed because it is not in the whitelist.\n",
                word.name()
            );
        }
        match word {
            FourLetterWord::Ruok => "imok".to_string(),
            FourLetterWord::Srvr => self.srvr(None),
            FourLetterWord::Stat => self.srvr(Some(remote)),
            FourLetterWord::Mntr => self.mntr(),
            FourLetterWord::Conf => self.conf(),
            FourLetterWord::Cons => self.cons(remote),
            FourLetterWord::Envi => envi(),
            FourLetterWord::Wchs => self.wchs(),
            FourLetterWord::Wchc => self.wchc(),
            FourLetterWord::Wchp => self.wchp(),
            FourLetterWord::Dump => self.dump(),
            // Clients of a read-only server ask this to find one that
            // takes writes; "null" while this one serves no one.
            FourLetterWord::Isro => if self.serving() {
                "rw"
            } else if self.read_only_mode() {
                "ro"
            } else {
                "null"
            }
            .to_string(),
            FourLetterWord::Crst => {
                for c in self.conns.values_mut() {
                    c.stats.reset();
                }
                "Connection stats reset.\n".to_string()
            }
            FourLetterWord::Srst => {
                self.stats.reset();
                "Server stats reset.\n".to_string()
            }
            FourLetterWord::Dirs => "datadir_size: 0\nlogdir_size: 0\n".to_string(),
            FourLetterWord::Gtmk => self.trace_mask.to_string(),
            FourLetterWord::Stmk => {
                if let Some(mask) = arg {
                    self.trace_mask = mask;
                }
                self.trace_mask.to_string()
            }
            FourLetterWord::Hash => "Digest computation is not enabled.\n".to_string(),
        }
    }

    /// `standalone`, `leader`, `follower` or `observer`, as `srvr` says it.
    pub(crate) fn mode(&self) -> &'static str {
        if self.config.peers.len() <= 1 {
            return "standalone";
        }
        if self.read_only_mode() {
            return "read-only";
        }
        match self.role {
            Role::Leading { .. } => "leader",
            Role::Following { .. } if self.is_observer() => "observer",
            Role::Following { .. } => "follower",
            Role::Looking => "looking",
        }
    }

    fn is_observer(&self) -> bool {
        self.config
            .peers
            .iter()
            .any(|p| p.id == self.config.server_id && p.observer)
    }

    /// `srvr`, or `stat` with the client list when `asking` is given.
    fn srvr(&self, asking: Option<SocketAddr>) -> String {
        if !self.serving() && !self.read_only_mode() {
            return NOT_SERVING.to_string();
        }
        let mut out = String::new();
        let l = &self.stats.latency;
        let _ = writeln!(out, "Zookeeper version: {}", version_line());
        if let Some(asking) = asking {
            out.push_str("Clients:\n");
            out.push_str(&self.client_line(&asking, None));
            for c in self.conns.values() {
                out.push_str(&self.client_line(&c.remote, Some(&c.stats)));
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "Latency min/avg/max: {}/{}/{}",
            l.min_ms,
            l.avg_text(),
            l.max_ms
        );
        let _ = writeln!(out, "Received: {}", self.stats.packets_received);
        let _ = writeln!(out, "Sent: {}", self.stats.packets_sent);
        // Counting the asking connection, as ZooKeeper does.
        let _ = writeln!(out, "Connections: {}", self.conns.len() + 1);
        let _ = writeln!(out, "Outstanding: 0");
        let _ = writeln!(out, "Zxid: {:#x}", self.tree.last_zxid());
        let _ = writeln!(out, "Mode: {}", self.mode());
        let _ = writeln!(out, "Node count: {}", self.tree.node_count());
        out
    }

    fn client_line(&self, addr: &SocketAddr, stats: Option<&crate::stats::ConnStats>) -> String {
        let (recved, sent) = stats.map_or((1, 0), |s| (s.packets_received, s.packets_sent));
        format!(
            " {}[1](queued=0,recved={recved},sent={sent})\n",
            socket_text(addr)
        )
    }

    fn cons(&self, asking: SocketAddr) -> String {
        let mut out = String::new();
        for c in self.conns.values() {
            let s = &c.stats;
            let _ = write!(
                out,
                " {}[1](queued=0,recved={},sent={}",
                socket_text(&c.remote),
                s.packets_received,
                s.packets_sent
            );
            if let Some(session) = c.session {
                let _ = write!(
                    out,
                    ",sid={session:#x},lop={},est={},to={}",
                    op_code_name(s.last_op),
                    s.established_ms,
                    s.session_timeout
                );
                if let Some(cxid) = s.last_cxid {
                    let _ = write!(out, ",lcxid={cxid:#x}");
                }
                let _ = write!(
                    out,
                    ",lzxid={:#x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                    s.last_zxid,
                    s.last_response_ms,
                    s.last_latency_ms,
                    s.latency.min_ms,
                    s.latency.avg_text(),
                    s.latency.max_ms
                );
            }
            out.push_str(")\n");
        }
        out.push_str(&self.client_line(&asking, None));
        out.push('\n');
        out
    }

    fn mntr(&self) -> String {
        if !self.serving() {
            return NOT_SERVING.to_string();
        }
        let l = &self.stats.latency;
        let mut lines: Vec<(&str, String)> = vec![
            ("version", version_line()),
            ("server_state", self.mode().into()),
            ("avg_latency", l.avg_text()),
            ("max_latency", l.max_ms.to_string()),
            ("min_latency", l.min_ms.to_string()),
            ("packets_received", self.stats.packets_received.to_string()),
            ("packets_sent", self.stats.packets_sent.to_string()),
            ("num_alive_connections", (self.conns.len() + 1).to_string()),
            (
                "outstanding_requests",
                self.outstanding_requests().to_string(),
            ),
            ("uptime", self.uptime_ms().to_string()),
            ("znode_count", self.tree.node_count().to_string()),
            ("watch_count", self.watches.count().to_string()),
            ("ephemerals_count", self.tree.ephemeral_count().to_string()),
            (
                "approximate_data_size",
                self.tree.approximate_data_size().to_string(),
            ),
            ("global_sessions", self.sessions.len().to_string()),
            ("local_sessions", "0".into()),
            ("open_file_descriptor_count", open_fds().to_string()),
            ("max_file_descriptor_count", max_fds().to_string()),
            ("connection_drop_probability", "0.0".into()),
            (
                "last_client_response_size",
                self.stats.last_response_size.to_string(),
            ),
            (
                "max_client_response_size",
                self.stats.max_response_size.to_string(),
            ),
            (
                "min_client_response_size",
                self.stats.min_response_size.to_string(),
            ),
            ("outstanding_tls_handshake", "0".into()),
            ("auth_failed_count", self.stats.auth_failed.to_string()),
            ("non_mtls_remote_conn_count", "0".into()),
            ("non_mtls_local_conn_count", "0".into()),
        ];
        // As ZooKeeper's leader adds them.
        if let Some((followers, synced)) = self.zab.follower_counts() {
            lines.push(("learners", followers.to_string()));
            lines.push(("synced_followers", synced.to_string()));
            lines.push(("pending_syncs", "0".into()));
        }
        lines
            .into_iter()
            .map(|(k, v)| format!("zk_{k}\t{v}\n"))
            .collect()
    }

    fn conf(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(out, "clientPort={}", c.client_port);
        let _ = writeln!(out, "clientPortAddress={}", c.client_port_address);
        let _ = writeln!(out, "dataDir={}", c.data_dir.display());
        let _ = writeln!(out, "dataDirSize=0");
        let _ = writeln!(
            out,
            "dataLogDir={}",
            c.data_log_dir.as_ref().unwrap_or(&c.data_dir).display()
        );
        let _ = writeln!(out, "dataLogSize=0");
        let _ = writeln!(out, "tickTime={}", c.tick_time_ms);
        let _ = writeln!(out, "maxClientCnxns={}", c.max_client_cnxns);
        let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout_ms);
        let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout_ms);
        let _ = writeln!(out, "clientPortListenBacklog=-1");
        let _ = writeln!(out, "serverId={}", c.server_id);
        out
    }

    fn wchs(&self) -> String {
        let watches = self.watches.data_watches();
        let mut conns: Vec<_> = watches.iter().map(|(_, c)| *c).collect();
        conns.sort_unstable();
        conns.dedup();
        let mut paths: Vec<_> = watches.iter().map(|(p, _)| *p).collect();
        paths.dedup();
        format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            conns.len(),
            paths.len(),
            watches.len()
        )
    }

    fn session_of(&self, conn: u64) -> i64 {
        self.conns.get(&conn).and_then(|c| c.session).unwrap_or(0)
    }

    fn wchc(&self) -> String {
        let mut by_session: std::collections::BTreeMap<i64, Vec<&String>> = Default::default();
        for (path, conn) in self.watches.data_watches() {
            by_session
                .entry(self.session_of(conn))
                .or_default()
                .push(path);
        }
        let mut out = String::new();
        for (session, paths) in by_session {
            let _ = writeln!(out, "{session:#x}");
            for p in paths {
                let _ = writeln!(out, "\t{p}");
            }
        }
        out
    }

    fn wchp(&self) -> String {
        let mut out = String::new();
        let mut last: Option<&String> = None;
        for (path, conn) in self.watches.data_watches() {
            if last != Some(path) {
                let _ = writeln!(out, "{path}");
                last = Some(path);
            }
            let _ = writeln!(out, "\t{:#x}", self.session_of(conn));
        }
        out
    }

    fn dump(&self) -> String {
        let mut out = String::from("SessionTracker dump:\n");
        let mut sessions: Vec<_> = self.sessions.iter().collect();
        sessions.sort_by_key(|s| s.id);
        let _ = writeln!(out, "Global Sessions({}):", sessions.len());
        for s in sessions {
            let _ = writeln!(out, "{:#x}\t{}ms", s.id, s.timeout_ms);
        }
        out.push_str("ephemeral nodes dump:\n");
        let mut owners: Vec<_> = self.tree.ephemerals().iter().collect();
        owners.sort_by_key(|(id, _)| **id);
        let _ = writeln!(out, "Sessions with Ephemerals ({}):", owners.len());
        for (id, paths) in owners {
            let _ = writeln!(out, "{id:#x}:");
            for p in paths {
                let _ = writeln!(out, "\t{p}");
            }
        }
        out.push_str("Connections dump:\n");
        out
    }
}

/// Open descriptors of this process, or -1 where /proc is not there.
fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd").map_or(-1, |d| d.count() as i64)
}

/// The soft limit on open descriptors, from /proc/self/limits.
fn max_fds() -> i64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(-1)
}

fn envi() -> String {
    let mut out = String::from("Environment:\n");
    let _ = writeln!(out, "zookeeper.version={}", version_line());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let _ = writeln!(out, "host.name={}", host.trim());
    let _ = writeln!(out, "os.name={}", std::env::consts::OS);
    let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(
        out,
        "user.dir={}",
        std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    out
}
