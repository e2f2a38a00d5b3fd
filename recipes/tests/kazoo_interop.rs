//! Zoo's `Lock` and kazoo's `Lock` on the same path of a zoo-server: they
//! name their contenders alike, so each waits for the other, and never do
//! both hold the lock. kazoo runs in a Python process (`kazoo_lock.py`, next
//! to this file) with Debian's python3-kazoo; set `KAZOO_PYTHON` to a Python
//! that has kazoo if neither `python3` nor `/usr/bin/python3` does.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};
use zoo_client::CreateOptions;
use zoo_recipes::Lock;
use zoo_wire::CreateMode;

/// The longest a whole kazoo run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(25);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kazoo_lock.py")
}

/// A Python interpreter that can import kazoo; fails the test if there is
/// none, since these tests exist to run against kazoo.
async fn python_with_kazoo() -> String {
    let candidates = std::env::var("KAZOO_PYTHON")
        .into_iter()
        .chain(["python3".to_string(), "/usr/bin/python3".to_string()]);
    for python in candidates {
        let imports = Command::new(&python)
            .args(["-c", "import kazoo"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if imports.is_ok_and(|status| status.success()) {
            return python;
        }
    }
    panic!("no Python with kazoo: install Debian's python3-kazoo or set KAZOO_PYTHON");
}

/// Starts `kazoo_lock.py` with `args`, its stdin and stdout piped.
async fn kazoo(args: &[&str]) -> (tokio::process::Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(python_with_kazoo().await)
        .arg("-u")
        .arg(script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let stdout = child.stdout.take().expect("piped stdout");
    (child, BufReader::new(stdout).lines())
}

/// The next line kazoo prints, within `wait`.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, wait: Duration) -> String {
    tokio::time::timeout(wait, lines.next_line())
        .await
        .expect("kazoo answers in time")
        .expect("kazoo's stdout is readable")
        .expect("kazoo is still running")
}

/// A log file both languages append to, removed at the end.
struct SharedLog(PathBuf);

impl SharedLog {
    fn create() -> SharedLog {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "zoo-kazoo-interop-{}-{nanos}.log",
            std::process::id()
        ));
        std::fs::File::create(&path).unwrap();
        SharedLog(path)
    }

    /// One small write in append mode, as the Python side does: the line
    /// lands whole.
    fn append(&self, line: &str) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.0)
            .unwrap();
        file.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
}

impl Drop for SharedLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Two kazoo threads and two Zoo tasks, each on its own session, take the
/// lock fifteen times each, all starting on one signal. Inside the lock
/// each creates the ephemeral `/critical/holder` (which fails if anyone
/// else is inside), logs its entry, increments `/critical` by an
/// unversioned read, pause and write (an increment is lost if anyone else
/// is inside), and logs its exit. Afterwards the count is exact, the log
/// alternates entry and exit of one contender at a time, and the lock
/// changed hands between the two libraries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_and_kazoo_locks_exclude_each_other() {
    const WORKERS_EACH: usize = 2;
    const ROUNDS: usize = 15;
    let server = zoo_server().await;
    let setup = client(server.addr).await;
    setup
        .create(
            "/critical",
            b"0",
            CreateOptions::new(CreateMode::Persistent),
        )
        .await
        .unwrap();
    let log = SharedLog::create();
    let log_path = log.0.to_str().expect("a UTF-8 temp path").to_string();
    let workers = WORKERS_EACH.to_string();
    let rounds = ROUNDS.to_string();
    let hosts = server.addr.to_string();
    let (mut python, mut lines) = kazoo(&[
        hosts.as_str(),
        "contend",
        "/locks/interop",
        "/critical",
        log_path.as_str(),
        workers.as_str(),
        rounds.as_str(),
    ])
    .await;
    assert_eq!(next_line(&mut lines, RUN_TIMEOUT).await, "ready");

    let log = std::sync::Arc::new(log);
    let mut zoo_workers = Vec::new();
    for worker in 0..WORKERS_EACH {
        let c = client(server.addr).await;
        let log = log.clone();
        zoo_workers.push(tokio::spawn(async move {
            let name = format!("zoo-{worker}");
            let lock = Lock::new(&c, "/locks/interop").identifier(&name);
            for _ in 0..ROUNDS {
                let guard = lock.acquire_timeout(Duration::from_secs(20)).await.unwrap();
                c.create(
                    "/critical/holder",
                    b"",
                    CreateOptions::new(CreateMode::Ephemeral),
                )
                .await
                .unwrap_or_else(|e| panic!("{name} is not alone in the lock: {e}"));
                log.append(&format!("enter {name}"));
                let (data, _) = c.get_data("/critical").await.unwrap();
                let count: usize = String::from_utf8(data).unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                c.set_data("/critical", (count + 1).to_string().as_bytes(), None)
                    .await
                    .unwrap();
                log.append(&format!("exit {name}"));
                c.delete("/critical/holder", None).await.unwrap();
                guard.release().await.unwrap();
            }
            c.close().await;
        }));
    }
    setup
        .create(
            "/critical/go",
            b"",
            CreateOptions::new(CreateMode::Persistent),
        )
        .await
        .unwrap();

    for worker in zoo_workers {
        tokio::time::timeout(RUN_TIMEOUT, worker)
            .await
            .expect("the Zoo workers finish")
            .unwrap();
    }
    let status = tokio::time::timeout(RUN_TIMEOUT, python.wait())
        .await
        .expect("kazoo finishes")
        .unwrap();
    assert!(status.success(), "kazoo's workers failed: {status}");
    assert_eq!(next_line(&mut lines, RUN_TIMEOUT).await, "done");

    let total = 2 * WORKERS_EACH * ROUNDS;
    let (count, _) = setup.get_data("/critical").await.unwrap();
    assert_eq!(
        String::from_utf8(count).unwrap(),
        total.to_string(),
        "no increment was lost"
    );
    let text = std::fs::read_to_string(&log.0).unwrap();
    let entries: Vec<&str> = text.lines().collect();
    assert_eq!(entries.len(), 2 * total, "{text}");
    let mut holders = Vec::new();
    for pair in entries.chunks(2) {
        let entered = pair[0].strip_prefix("enter ");
        let exited = pair[1].strip_prefix("exit ");
        assert!(
            entered.is_some() && entered == exited,
            "one holder at a time, but the log has {pair:?}:\n{text}"
        );
        holders.push(entered.unwrap());
    }
    for name in ["kazoo-0", "kazoo-1", "zoo-0", "zoo-1"] {
        let held = holders.iter().filter(|h| **h == name).count();
        assert_eq!(held, ROUNDS, "{name} held the lock {held} times");
    }
    let handovers = holders
        .windows(2)
        .filter(|w| w[0].starts_with("kazoo") != w[1].starts_with("kazoo"))
        .count();
    assert!(
        handovers >= 2,
        "the libraries contended, not took turns once: {holders:?}"
    );
    assert!(setup
        .get_children("/locks/interop")
        .await
        .unwrap()
        .is_empty());
}

/// Zoo holds the lock: kazoo lists Zoo's holder as the first contender,
/// cannot take the lock without waiting, and waits in line (Zoo sees it
/// there) until Zoo releases. Then kazoo holds it: Zoo cannot take it, and
/// a Zoo waiter gets it only once kazoo releases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_library_waits_for_the_others_holder() {
    let server = zoo_server().await;
    let c = client(server.addr).await;
    let lock = Lock::new(&c, "/locks/handover").identifier("zoo-holder");
    let held_by_zoo = lock.acquire().await.unwrap();
    let hosts = server.addr.to_string();
    let (mut python, mut lines) =
        kazoo(&[hosts.as_str(), "hold", "/locks/handover", "kazoo-holder"]).await;

    // Phase 1: kazoo sees Zoo's holder and waits behind it.
    let patience = Duration::from_secs(10);
    assert_eq!(
        next_line(&mut lines, patience).await,
        r#"contenders ["zoo-holder"]"#
    );
    assert_eq!(next_line(&mut lines, patience).await, "try False");
    assert_eq!(next_line(&mut lines, patience).await, "waiting");
    eventually("kazoo waits in line", || async {
        lock.contenders().await.unwrap() == ["zoo-holder", "kazoo-holder"]
    })
    .await;
    let early = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await;
    assert!(early.is_err(), "kazoo got the lock Zoo holds: {early:?}");

    // Phase 2: Zoo releases; kazoo holds, and Zoo must wait.
    held_by_zoo.release().await.unwrap();
    assert_eq!(next_line(&mut lines, patience).await, "held");
    assert!(lock.try_acquire().await.unwrap().is_none());
    assert_eq!(lock.contenders().await.unwrap(), ["kazoo-holder"]);
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire_timeout(Duration::from_secs(10)).await })
    };
    eventually("Zoo waits in line", || async {
        lock.contenders().await.unwrap() == ["kazoo-holder", "zoo-holder"]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "Zoo got the lock kazoo holds");

    // Phase 3: kazoo releases; the Zoo waiter gets the lock.
    let stdin = python.stdin.as_mut().expect("piped stdin");
    stdin.write_all(b"release\n").await.unwrap();
    stdin.flush().await.unwrap();
    assert_eq!(next_line(&mut lines, patience).await, "released");
    let guard = tokio::time::timeout(patience, waiter)
        .await
        .expect("the Zoo waiter gets the lock")
        .unwrap()
        .unwrap();
    assert_eq!(lock.contenders().await.unwrap(), ["zoo-holder"]);
    let status = tokio::time::timeout(patience, python.wait())
        .await
        .expect("kazoo exits")
        .unwrap();
    assert!(status.success(), "kazoo failed: {status}");
    guard.release().await.unwrap();
}
