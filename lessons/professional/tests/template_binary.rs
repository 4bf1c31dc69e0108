//! The `template` binary's contract with the benchmark and attack scripts: one `listening on`
//! line on stdout, logs on stderr, exit 0 after SIGTERM, exit 2 on a bad flag.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_binary_prints_its_address_and_exits_0_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_template"))
        .args(["--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, stdout.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .expect(&line)
        .trim()
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{line:?}");

    // It serves.
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut client = harness::server::H1Connection::handshake(stream).await;
    assert_eq!(client.get("/").await.unwrap().status, hyper::StatusCode::OK);
    client.close().await;

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // Nothing else on stdout; the shutdown was logged on stderr.
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    assert!(logs.contains("SIGTERM"), "{logs}");
    assert!(logs.contains("Drained"), "{logs}");
}

#[tokio::test]
async fn a_bad_flag_is_named_and_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_template"))
        .args(["--header-timeout-ms", "soon"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(
        error.contains("--header-timeout-ms") && error.contains("soon"),
        "{error}"
    );
    assert!(output.stdout.is_empty());
}
