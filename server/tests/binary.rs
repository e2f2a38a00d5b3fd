//! The `zoo-server` binary: a zoo.cfg is read, a bad one is refused with the
//! line named, and SIGTERM stops the server cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zoo_server::testkit::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_zoo-server");

fn temp_cfg(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-bin-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("zoo.cfg");
    let text = format!("{text}dataDir={}\n", dir.join("data").display());
    std::fs::write(&path, text).unwrap();
    path
}

fn srvr(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn a_bad_configuration_is_refused_with_its_line() {
    let cfg = temp_cfg("bad", "tickTime=2000\nclientPort=abc\n");
    let out = Command::new(BIN).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zoo.cfg:2: clientPort must be a non-negative integer"),
        "{stderr}"
    );
}

#[test]
fn serves_from_a_file_and_stops_on_sigterm() {
    let port = free_port();
    let cfg = temp_cfg(
        "ok",
        &format!("tickTime=2000\nclientPort={port}\nclientPortAddress=127.0.0.1\n"),
    );
    let mut child = Command::new(BIN)
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        if let Some(text) = srvr(port) {
            break text;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.contains("Mode: standalone"), "{answer}");
    // The shell's builtin kill: no procps needed on a fresh machine.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {}", child.id()))
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
}
