//! `session-storm`: sessions opened and closed as fast as the server takes
//! them. `--clients` loops each connect (a session is created: a
//! transaction, logged and synced), check the session, and close it
//! (another transaction). ops = sessions opened and closed; latency = from
//! starting to connect until the close is acknowledged.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use zoo_client::{Client, Error, SessionState};

use crate::{BenchArgs, Lane, Shared};

/// Starts the loops.
pub fn spawn(args: &Arc<BenchArgs>, shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    (0..args.clients)
        .map(|_| {
            let (args, shared) = (Arc::clone(args), Arc::clone(shared));
            tokio::spawn(async move {
                let mut results = Lane::new();
                while !shared.stopped() {
                    let started = Instant::now();
                    let result = open_and_close(&args.connect).await;
                    if shared.measuring() {
                        results.record(&shared, started.elapsed(), result);
                    }
                }
                results.merge_into(&shared);
            })
        })
        .collect()
}

async fn open_and_close(connect: &str) -> Result<(), Error> {
    let c = Client::connect(connect).await?;
    if c.session_id() == 0 || c.state() != SessionState::Connected {
        let problem = format!("session {:#x} in state {:?}", c.session_id(), c.state());
        c.close().await;
        return Err(Error::Protocol(problem));
    }
    c.close().await;
    match c.state() {
        SessionState::Closed => Ok(()),
        other => Err(Error::Protocol(format!("after close: {other:?}"))),
    }
}
