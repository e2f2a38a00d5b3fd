//! Real ZooKeeper clients against Zoo: kazoo (Debian's python3-kazoo) with
//! its recipes, and zkCli.sh from Debian's zookeeper package. Both are
//! installed by scripts/setup.sh; a missing one fails the test.

mod support;

use std::process::Command;

use support::TestServer;

/// ZooKeeper's usual tickTime: sessions of up to 40 s, so that a loaded
/// machine does not time out the clients' sessions mid-test.
async fn server() -> TestServer {
    TestServer::start(zoo_server::Config::parse("tickTime=2000\n", "clients").unwrap()).await
}

const DEBIAN_PYTHON: &str = "/usr/bin/python3";
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

async fn run(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("client runs"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_crud_watches_transactions_acls_and_recipes() {
    let server = server().await;
    let mut cmd = Command::new(DEBIAN_PYTHON);
    // Read at run time: test binaries are shared between clones that use one
    // CARGO_TARGET_DIR, so a path baked in at compile time may be another clone's.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    cmd.arg(std::path::Path::new(&manifest).join("tests/kazoo_suite.py"))
        .arg(server.addr.to_string());
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kazoo suite failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

/// One zkCli.sh command against the server; returns what it printed
/// (zkCli.sh writes some results, such as `Created`, to stderr).
async fn zkcli(server: &TestServer, args: &[&str]) -> String {
    let mut cmd = Command::new(ZKCLI);
    cmd.arg("-server").arg(server.addr.to_string()).args(args);
    let out = run(cmd).await;
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_commands() {
    let server = server().await;
    let out = zkcli(&server, &["create", "/cli", "hello"]).await;
    assert!(out.contains("Created /cli"), "{out}");
    let out = zkcli(&server, &["get", "/cli"]).await;
    assert!(out.lines().any(|l| l == "hello"), "{out}");
    let out = zkcli(&server, &["create", "-s", "-e", "/cli/s", "x"]).await;
    assert!(out.contains("Created /cli/s0000000000"), "{out}");
    let out = zkcli(&server, &["set", "/cli", "world"]).await;
    assert!(!out.contains("Exception"), "{out}");
    // A new data directory's first leader epoch is 1: zxids 0x1_0000000n.
    let out = zkcli(&server, &["stat", "/cli"]).await;
    assert!(
        out.contains("dataVersion = 1") && out.contains("cZxid = 0x100000002"),
        "{out}"
    );
    let out = zkcli(&server, &["ls", "/"]).await;
    assert!(out.contains("[cli, zookeeper]"), "{out}");
    let out = zkcli(&server, &["get", "/missing"]).await;
    assert!(out.contains("Node does not exist: /missing"), "{out}");
    let out = zkcli(&server, &["deleteall", "/cli"]).await;
    assert!(!out.contains("Exception"), "{out}");
    let out = zkcli(&server, &["ls", "/"]).await;
    assert!(out.contains("[zookeeper]"), "{out}");
}
