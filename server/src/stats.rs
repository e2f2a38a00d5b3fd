//! Counters behind `srvr`, `stat`, `cons` and `mntr`.

use zoo_wire::OpCode;

/// Request latency in ms: min, max, and the sum for the average.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: u64,
    pub total_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Latency {
    pub fn record(&mut self, ms: u64) {
        if self.count == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.total_ms += ms;
    }

    /// The average as ZooKeeper prints it: a Java double rounded to four
    /// places (`0.0`, `1.2345`).
    pub fn avg_text(&self) -> String {
        format!("{:?}", (self.avg() * 10000.0).round() / 10000.0)
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

/// Server-wide counters.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency: Latency,
    pub auth_failed: u64,
    /// Sizes of the frames sent to clients (`zk_*_client_response_size`).
    pub last_response_size: usize,
    pub min_response_size: usize,
    pub max_response_size: usize,
}

impl ServerStats {
    pub fn record_latency(&mut self, ms: u64) {
        self.latency.record(ms);
    }

    pub fn record_response(&mut self, size: usize) {
        if self.packets_sent == 0 || size < self.min_response_size {
            self.min_response_size = size;
        }
        self.max_response_size = self.max_response_size.max(size);
        self.last_response_size = size;
    }

    /// `srst`.
    pub fn reset(&mut self) {
        *self = ServerStats::default();
    }
}

/// Per-connection counters.
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub established_ms: i64,
    pub last_op: OpCode,
    pub last_cxid: Option<i32>,
    pub last_zxid: i64,
    pub session_timeout: i32,
    pub latency: Latency,
    /// Wall-clock ms of the last reply, and that request's latency.
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
}

impl ConnStats {
    pub fn new(established_ms: i64) -> ConnStats {
        ConnStats {
            packets_received: 0,
            packets_sent: 0,
            established_ms,
            last_op: OpCode::Notification,
            last_cxid: None,
            last_zxid: 0,
            session_timeout: 0,
            latency: Latency::default(),
            last_response_ms: 0,
            last_latency_ms: 0,
        }
    }

    pub fn record_response(&mut self, ms: u64, now_ms: i64) {
        self.latency.record(ms);
        self.last_latency_ms = ms;
        self.last_response_ms = now_ms;
    }

    /// `crst`.
    pub fn reset(&mut self) {
        self.packets_received = 0;
        self.packets_sent = 0;
        self.latency = Latency::default();
    }
}

/// `cons`'s short code for the last operation.
pub fn op_code_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::CreateSession => "SESS",
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::SetData => "SETD",
        OpCode::GetData => "GETD",
        OpCode::Exists => "EXIS",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::GetAcl => "GETA",
        OpCode::SetAcl => "SETA",
        OpCode::Sync => "SYNC",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::WhoAmI => "HOMI",
        OpCode::GetEphemerals => "GETE",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::CloseSession => "CLOS",
        OpCode::Reconfig => "RECO",
        OpCode::Auth => "AUTH",
        OpCode::Sasl => "SASL",
        OpCode::Notification | OpCode::Check | OpCode::Error => "NA",
    }
}
