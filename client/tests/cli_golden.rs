//! zoo-cli against zkCli.sh: the same script of commands, piped into each,
//! must print the same thing.
//!
//! Phases: Apache ZooKeeper 3.8 starts; zkCli.sh runs the script in one
//! subtree and zoo-cli in another; their outputs, once the things that
//! differ between any two runs (zxids, times, session ids, the root of the
//! subtree, zkCli.sh's banner and log lines) are normalized, must be equal.
//! Then zoo-cli runs the script against an in-process zoo-server, and must
//! print what it printed against ZooKeeper. Last, one-command mode: the
//! output and exit status of a failing command, a bad flag and an unknown
//! command.
//!
//! Watch events are printed by zkCli.sh's event thread, whose timing
//! against the main thread is not fixed, so they are compared as their
//! own sequence, apart from the other lines.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use zoo_server::testkit::{ApacheZooKeeper, ZooServer};

/// Where Debian's zookeeper package installs zkCli.sh.
const DEBIAN_ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
const ZOO_CLI: &str = env!("CARGO_BIN_EXE_zoo-cli");
/// Longest a shell may take over the script before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Every kind of command, with its errors; `/g` is replaced by the run's
/// own subtree. Sequence numbers follow from the parent's child count:
/// `seq-` is /g's third child.
const SCRIPT: &str = "\
create /g
create /g/p hello
create /g/empty
get /g/empty
create -s /g/seq- one
create -s /g/seq- two
create -e /g/eph
create -e -s /g/eseq-
create -c /g/cont
create -t 60000 /g/ttl
create -c -s /g/bad
create -t 100 -e /g/bad
create -t abc /g/bad
create /g/p again
create /g/none/child
create /g/eph/kid
create g/relative
ls /g
ls -s /g
ls -R /g
ls /g/none
get -s /g/p
get /g/none
set /g/p world
set -s /g/p world2
set -v 2 /g/p w3
set -v 99 /g/p w4
stat /g/p
stat /g/none
delete /g/none
delete /g
delete -v 99 /g/p
delete -v 3 /g/p
create /g/tree
create /g/tree/a x
create /g/tree/a/b y
create /g/tree/c
deleteall /g/tree
ls /g/tree
deleteall /g/none
getAcl /g
getAcl -s /g/seq-0000000002
setAcl /g/seq-0000000002 world:anyone:r
getAcl /g/seq-0000000002
setAcl -v 99 /g/seq-0000000003 world:anyone:rw
setAcl -s /g/seq-0000000003 world:anyone:cdrwa
setAcl /g/seq-0000000003 bogus
setAcl /g/none world:anyone:r
addauth digest alice:secret
whoami
create /g/mine d auth::cdrwa
getAcl /g/mine
create /g/dig d digest:bob:Y9N9wI7aS3RXgCQB4A1t2bHf7Hk=:r,world:anyone:cd
getAcl /g/dig
create /g/sent d ip:127.0.0.1:cdrwa
getAcl /g/sent
getEphemerals /g
getAllChildrenNumber /g
getAllChildrenNumber /g/none
sync /g
create /g/w one
get -w /g/w
set /g/w two
ls -w /g/w
create /g/w/kid
stat -w /g/w/later
create /g/w/later
addWatch -m PERSISTENT /g/w
set /g/w three
set /g/w four
removewatches /g/w
set /g/w five
removewatches /g/w
printwatches off
get -w /g/w
set /g/w six
sync /g/w
ls /g/w
printwatches on
printwatches
get /g/w
history
redo 1
redo 999
ls -x /g
get
set /g/w
stat
quit
";

/// Runs `program` with `input` on its stdin; its stdout and stderr
/// interleaved as written, and its exit status.
fn run_merged(mut command: Command, input: &str) -> (String, ExitStatus) {
    let (mut reader, writer) = std::io::pipe().expect("a pipe");
    command
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(writer.try_clone().expect("a pipe end"))
        .stderr(writer);
    let mut child: Child = command.spawn().expect("the shell starts");
    // The Command holds copies of the pipe's write end: close them, so that
    // reading ends when the child exits.
    drop(command);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .expect("the script is written");
    drop(stdin);
    let (done, output) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        let _ = done.send(text);
    });
    match output.recv_timeout(RUN_TIMEOUT) {
        Ok(text) => (text, child.wait().expect("exit status")),
        Err(_) => {
            let _ = child.kill();
            panic!("the shell did not finish within {RUN_TIMEOUT:?}");
        }
    }
}

async fn zkcli(addr: SocketAddr, args: &[&str], input: String) -> (String, ExitStatus) {
    let mut command = Command::new(DEBIAN_ZKCLI);
    command.arg("-server").arg(addr.to_string()).args(args);
    tokio::task::spawn_blocking(move || run_merged(command, &input))
        .await
        .unwrap()
}

async fn zoo_cli(addr: SocketAddr, args: &[&str], input: String) -> (String, ExitStatus) {
    let mut command = Command::new(ZOO_CLI);
    command.arg("-server").arg(addr.to_string()).args(args);
    tokio::task::spawn_blocking(move || run_merged(command, &input))
        .await
        .unwrap()
}

/// A run's output with what may differ between runs replaced: the lines
/// other than watch events, and the watch events in order.
#[derive(Debug, PartialEq, Eq)]
struct Normalized {
    lines: Vec<String>,
    events: Vec<String>,
}

/// Lines of the main thread that may come inside one of zkCli.sh's event
/// blocks (see `normalize`).
const MAX_INTERLEAVED: usize = 3;

fn normalize(output: &str, root: &str) -> Normalized {
    let noise = [
        "Connecting to ",
        "Welcome to ",
        "JLine support is ",
        "SLF4J:",
    ];
    let mut raw: Vec<String> = output
        .lines()
        .filter(|l| !noise.iter().any(|n| l.starts_with(n)))
        // log4j lines: `2026-12-04 05:07:40,123 [myid:] - INFO ...`
        .filter(|l| {
            !(l.len() > 4 && l[..4].bytes().all(|b| b.is_ascii_digit()) && l[4..].starts_with('-'))
        })
        .map(|l| normalize_line(&l.replace(root, "/g")))
        .collect();
    let mut lines = Vec::new();
    let mut events = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        // printMessage: an empty line, WATCHER::, an empty line, the event.
        // zkCli.sh prints events from another thread, in two writes: a
        // line the main thread prints may come between WATCHER:: and the
        // event. Such lines stay in order among the others.
        if raw[i].is_empty() && raw.get(i + 1).is_some_and(|l| l == "WATCHER::") {
            let window = i + 2..(i + 2 + MAX_INTERLEAVED + 2).min(raw.len());
            let event = window
                .clone()
                .find(|&k| raw[k].starts_with("WatchedEvent "));
            if let Some(k) = event {
                if let Some(blank) = raw[i + 2..k].iter().position(String::is_empty) {
                    for (n, line) in raw[i + 2..k].iter_mut().enumerate() {
                        if n != blank {
                            lines.push(std::mem::take(line));
                        }
                    }
                    events.push(std::mem::take(&mut raw[k]));
                    i = k + 1;
                    continue;
                }
            }
        }
        lines.push(std::mem::take(&mut raw[i]));
        i += 1;
    }
    // whoami lists a connection's identities from a set (ZooKeeper keeps
    // them in a ConcurrentHashMap's key set): their order is no one's
    // choice.
    let mut at = 0;
    while let Some(start) = lines[at..].iter().position(|l| l == "Auth scheme: User") {
        let first = at + start + 1;
        let count = lines[first..]
            .iter()
            .take_while(|l| {
                l.split_once(": ")
                    .is_some_and(|(s, _)| s.bytes().all(|b| b.is_ascii_lowercase()))
            })
            .count();
        lines[first..first + count].sort();
        at = first + count;
    }
    Normalized { lines, events }
}

#[test]
fn an_event_block_split_by_a_line_of_the_main_thread_is_still_an_event() {
    let event = "WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/g/w";
    let clean = format!("[]\n\nWATCHER::\n\n{event}\nCreated /g/w/kid\n");
    let split = format!("[]\n\nWATCHER::\nCreated /g/w/kid\n\n{event}\n");
    let split_later = format!("[]\n\nWATCHER::\n\nCreated /g/w/kid\n{event}\n");
    let expected = Normalized {
        lines: vec!["[]".into(), "Created /g/w/kid".into()],
        events: vec![event.into()],
    };
    for output in [clean, split, split_later] {
        assert_eq!(normalize(&output, "/g"), expected, "{output:?}");
    }
    // Without its event line it is no event block: every line stays.
    let broken = normalize("\nWATCHER::\n\nCreated /g/x\n", "/g");
    assert_eq!(broken.lines, ["", "WATCHER::", "", "Created /g/x"]);
    assert!(broken.events.is_empty());
}

fn normalize_line(line: &str) -> String {
    for key in ["cZxid", "mZxid", "pZxid"] {
        if line.starts_with(&format!("{key} = 0x")) {
            return format!("{key} = ZXID");
        }
    }
    for key in ["ctime", "mtime"] {
        if let Some(date) = line.strip_prefix(&format!("{key} = ")) {
            assert!(java_date_shape(date), "not a Java Date: {line}");
            return format!("{key} = DATE");
        }
    }
    if line.starts_with("ephemeralOwner = 0x") && line != "ephemeralOwner = 0x0" {
        return "ephemeralOwner = SESSION".to_string();
    }
    // getEphemerals prints a Java HashSet's order, which depends on the
    // paths' hashes, not on anything the server chose.
    if let Some(list) = line.strip_prefix("[/").and_then(|l| l.strip_suffix(']')) {
        let mut paths: Vec<&str> = list.split(", /").collect();
        paths.sort_unstable();
        return format!("[/{}]", paths.join(", /"));
    }
    line.to_string()
}

/// `Fri Dec 04 05:10:11 UTC 2026`.
fn java_date_shape(date: &str) -> bool {
    let parts: Vec<&str> = date.split(' ').collect();
    parts.len() == 6
        && parts[0].len() == 3
        && parts[1].len() == 3
        && parts[2].len() == 2
        && parts[3].len() == 8
        && parts[3].matches(':').count() == 2
        && parts[4] == "UTC"
        && parts[5].len() == 4
}

fn script(root: &str) -> String {
    SCRIPT.replace("/g", root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoo_cli_prints_what_zkcli_prints() {
    let zk = ApacheZooKeeper::start(2000).await;
    let (reference, zk_status) = zkcli(zk.addr, &[], script("/zkcli")).await;
    let (ours, our_status) = zoo_cli(zk.addr, &[], script("/zoocli")).await;
    let reference = normalize(&reference, "/zkcli");
    let ours = normalize(&ours, "/zoocli");
    // The script must have run: a known line from near its end.
    assert!(
        reference.lines.iter().any(|l| l == "get [-s] [-w] path"),
        "zkCli.sh did not run the script: {reference:#?}"
    );
    assert_eq!(
        ours.lines, reference.lines,
        "zoo-cli's lines differ from zkCli.sh's"
    );
    assert_eq!(
        ours.events, reference.events,
        "zoo-cli's watch events differ from zkCli.sh's"
    );
    // Both exit with the status of the last command before quit.
    assert_eq!(our_status.code(), zk_status.code());

    let zoo = {
        let mut config = zoo_server::Config::parse("tickTime=2000\n", "test").unwrap();
        config.extended_types_enabled = true;
        ZooServer::start(config).await
    };
    let (on_zoo, zoo_status) = zoo_cli(zoo.addr, &[], script("/zoocli")).await;
    let on_zoo = normalize(&on_zoo, "/zoocli");
    assert_eq!(
        on_zoo, ours,
        "zoo-cli prints differently against zoo-server"
    );
    assert_eq!(zoo_status.code(), our_status.code());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_mode_exits_with_the_command_status() {
    let zk = ApacheZooKeeper::start(2000).await;
    // Each shell in its own subtree, `/r`.
    let cases: &[(&str, i32)] = &[
        ("create /r x", 0),
        ("get /r", 0),
        ("get /r/missing", 1),
        ("set -v 7 /r y", 1),
        ("ls -x /r", 1),
        ("get", 1),
    ];
    for (line, status) in cases {
        let zk_args: Vec<String> = line
            .replace("/r", "/zkcli-one")
            .split(' ')
            .map(String::from)
            .collect();
        let our_args: Vec<String> = line
            .replace("/r", "/zoocli-one")
            .split(' ')
            .map(String::from)
            .collect();
        let zk_args: Vec<&str> = zk_args.iter().map(String::as_str).collect();
        let our_args: Vec<&str> = our_args.iter().map(String::as_str).collect();
        let (reference, zk_status) = zkcli(zk.addr, &zk_args, String::new()).await;
        let (ours, our_status) = zoo_cli(zk.addr, &our_args, String::new()).await;
        assert_eq!(
            zk_status.code(),
            Some(*status),
            "zkCli.sh {line}: {reference}"
        );
        assert_eq!(our_status.code(), Some(*status), "zoo-cli {line}: {ours}");
        assert_eq!(
            normalize(&ours, "/zoocli-one"),
            normalize(&reference, "/zkcli-one"),
            "{line}"
        );
    }
    // The usage text lists zoo-cli's own commands, so only its last line
    // and the status are zkCli.sh's.
    let (ours, status) = zoo_cli(zk.addr, &["frobnicate", "/"], String::new()).await;
    assert_eq!(status.code(), Some(127));
    assert_eq!(
        ours.lines().last(),
        Some("Command not found: Command not found frobnicate")
    );
}
