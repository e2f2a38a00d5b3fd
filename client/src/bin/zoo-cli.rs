//! `zoo-cli`: a shell for Zoo and Apache ZooKeeper that takes zkCli.sh's
//! commands and flags and prints what zkCli.sh 3.8 prints, so that scripts
//! written for one work with the other.
//!
//! `zoo-cli -server host:port[,host:port...][/chroot] [-timeout ms] [-r]`
//! starts a shell (line editing, history, tab completion of commands and
//! znode paths) when standard input is a terminal, or reads commands from
//! standard input, one a line, when it is not. `zoo-cli -server ... cmd
//! args` runs one command and exits with its status: 0, 1 when it failed,
//! 127 for an unknown command.

#[path = "zoo_cli/mod.rs"]
mod zoo_cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match zoo_cli::Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zoo-cli: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = runtime.block_on(zoo_cli::run(options));
    // Leave at once, as zkCli.sh's System.exit does: the editor thread
    // may still be blocked reading the terminal.
    runtime.shutdown_background();
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
