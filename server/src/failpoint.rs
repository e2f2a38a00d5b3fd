//! Named crash points for crash tests. With the `failpoints` feature, the
//! environment variable `ZOO_CRASH_AT=<name>[:<n>]` makes the process abort
//! (as kill -9 would stop it) the n-th time (default 1st) it reaches the
//! point `<name>`. Without the feature, `hit` compiles to nothing.

// The points: `log.before_write` (a batch taken, not yet written),
// `log.after_sync` (synced, the core not yet told), `snapshot.before_write`
// and `snapshot.after_write`.

#[cfg(feature = "failpoints")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    struct Armed {
        name: String,
        at: u64,
        count: AtomicU64,
    }

    fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var("ZOO_CRASH_AT").ok()?;
                let (name, at) = match spec.split_once(':') {
                    Some((name, n)) => (name.to_string(), n.parse().ok()?),
                    None => (spec, 1),
                };
                Some(Armed {
                    name,
                    at,
                    count: AtomicU64::new(0),
                })
            })
            .as_ref()
    }

    pub fn hit(name: &str) {
        if let Some(armed) = armed() {
            if armed.name == name && armed.count.fetch_add(1, Ordering::Relaxed) + 1 == armed.at {
                eprintln!("zoo-server: crash point {name} reached; aborting");
                std::process::abort();
            }
        }
    }
}

#[cfg(feature = "failpoints")]
pub use imp::hit;

/// Does nothing: crash points are compiled in only with `failpoints`.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
