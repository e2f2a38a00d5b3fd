//! Keeps a configuration value in a znode and follows its changes.
//!
//!     cargo run -p zoo-client --example watch_config -- 127.0.0.1:2181
//!
//! Set the value from another shell (`zkCli.sh set /example-config v2`) and
//! this program prints each new version; it stops after five changes.

use zoo_client::{Client, CreateOptions, Error};
use zoo_wire::CreateMode;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = Client::connect(&connect).await?;
    match client
        .create(
            "/example-config",
            b"v1",
            CreateOptions::new(CreateMode::Persistent),
        )
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => return Err(e),
    }
    for _ in 0..5 {
        let (data, stat, changed) = client.get_data_and_watch("/example-config").await?;
        eprintln!(
            "version {}: {}",
            stat.version,
            String::from_utf8_lossy(&data)
        );
        let event = changed.changed().await?;
        eprintln!("{:?} on {}", event.event_type, event.path);
    }
    client.close().await;
    Ok(())
}
