//! `zoo-server [zoo.cfg]`: a standalone server on the embedded default
//! configuration, or on a ZooKeeper-style configuration file (standalone,
//! or one member of an ensemble with `server.N` lines and `myid`).
//! `zoo-server inspect DATADIR [log [FROM [N]] | snapshot [ZXID]]`: what a
//! data directory holds.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use tracing::{error, info};
use zoo_server::Config;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("inspect") {
        return inspect(&args[1..]);
    }
    let config = match args.as_slice() {
        [] => Config::default(),
        [path] if path != "-h" && path != "--help" => match Config::from_file(Path::new(path)) {
            Ok(config) => config,
            Err(e) => {
                error!("{e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: zoo-server [zoo.cfg] | zoo-server inspect DATADIR [log [FROM [N]] | snapshot [ZXID]]");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = SocketAddr::new(config.client_port_address, config.client_port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                error!(%addr, "cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mode = if config.peers.len() > 1 {
            format!("server {} of {}", config.server_id, config.peers.len())
        } else {
            "standalone".to_string()
        };
        info!(%addr, data_dir = %config.data_dir.display(), %mode, "zoo-server starting");
        match zoo_server::run(listener, config, shutdown_signal()).await {
            Ok(()) => {
                info!("zoo-server stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!("zoo-server cannot go on: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn inspect(args: &[String]) -> ExitCode {
    use std::io::Write;
    let Some((dir, rest)) = args.split_first() else {
        eprintln!("usage: zoo-server inspect DATADIR [log [FROM [N]] | snapshot [ZXID]]");
        return ExitCode::from(2);
    };
    let what = match zoo_server::inspect::Inspect::parse(rest) {
        Ok(what) => what,
        Err(e) => {
            eprintln!("zoo-server inspect: {e}");
            return ExitCode::from(2);
        }
    };
    match zoo_server::inspect::inspect(Path::new(dir), &what) {
        Ok(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zoo-server inspect: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
