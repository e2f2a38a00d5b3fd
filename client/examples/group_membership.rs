//! Registers this process as an ephemeral member of a group and lists the
//! members, as a service registry would.
//!
//!     cargo run -p zoo-client --example group_membership -- 127.0.0.1:2181
//!
//! The member node disappears by itself when the process exits and its
//! session ends.

use zoo_client::{Client, CreateOptions, Error};
use zoo_wire::CreateMode;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = Client::connect(&connect).await?;
    match client
        .create("/members", b"", CreateOptions::new(CreateMode::Persistent))
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => return Err(e),
    }
    let (me, _) = client
        .create(
            "/members/m-",
            b"",
            CreateOptions::new(CreateMode::EphemeralSequential),
        )
        .await?;
    let members = client.get_children("/members").await?;
    let lowest = members.first().map(|m| format!("/members/{m}"));
    eprintln!("I am {me}; members: {members:?}; first in line: {lowest:?}");
    client.close().await;
    Ok(())
}
