//! Claims of the chapter "Upgrades and WebSockets": what hyper does at the 101, what graceful
//! shutdown stops seeing, and how a session registry ends what it no longer sees.

use std::convert::Infallible;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/upgrades_chat.rs"]
mod upgrades_chat;

use upgrades_chat::{Sessions, serve};

/// Generous: every wait below ends on an event long before this.
const DEADLINE: Duration = Duration::from_secs(10);

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A real server on 127.0.0.1 running the example's accept path, with its graceful shutdown.
struct Server {
    address: std::net::SocketAddr,
    sessions: Sessions,
    graceful: GracefulShutdown,
    listener: TcpListener,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server {
            address: listener.local_addr().unwrap(),
            sessions: Sessions::default(),
            graceful: GracefulShutdown::new(),
            listener,
        }
    }

    /// Connects a WebSocket client and serves its one connection.
    async fn connect(&self) -> Client {
        let url = format!("ws://{}/chat", self.address);
        let (client, accepted) = tokio::join!(tokio_tungstenite::connect_async(url), async {
            let (stream, _) = self.listener.accept().await.unwrap();
            serve(stream, self.sessions.clone(), &self.graceful);
        });
        let () = accepted;
        client.expect("the handshake succeeds").0
    }
}

/// Sends `text` and waits for its echo.
async fn round_trip(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.unwrap();
    let echoed = tokio::time::timeout(DEADLINE, client.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::text(text));
}

/// Reads until the server ends the session, answering its Close; returns the Close frame.
async fn read_until_closed(client: &mut Client) -> Option<CloseFrame> {
    let mut close = None;
    while let Some(Ok(message)) = client.next().await {
        if let Message::Close(frame) = message {
            close = frame;
        }
    }
    close
}

/// Waits, under the deadline, until the registry holds `expected` sessions.
async fn wait_for_open(sessions: &Sessions, expected: usize) {
    tokio::time::timeout(DEADLINE, async {
        while sessions.count() != expected {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the registry never held {expected} sessions"));
}

#[test]
fn the_accept_key_is_derived_as_rfc_6455_shows() {
    // The worked example of RFC 6455, section 1.3.
    assert_eq!(
        derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[tokio::test]
async fn graceful_shutdown_completes_while_an_upgraded_session_is_still_open() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    round_trip(&mut client, "before").await;
    assert_eq!(
        server.graceful.count(),
        0,
        "the upgraded connection is no longer watched"
    );

    tokio::time::timeout(DEADLINE, server.graceful.shutdown())
        .await
        .expect("graceful shutdown does not wait for the session");

    // The session did not notice: it still echoes after the shutdown "finished".
    round_trip(&mut client, "after").await;
    assert_eq!(server.sessions.count(), 1);
}

#[tokio::test]
async fn a_plain_connection_is_watched_until_it_ends() {
    // The contrast: the same server, a request that is not an upgrade, kept alive.
    let server = Server::start().await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let (accepted, _) = server.listener.accept().await.unwrap();
    serve(accepted, server.sessions.clone(), &server.graceful);
    assert_eq!(server.graceful.count(), 1);
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut head)
        .await
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 400");
    assert_eq!(
        server.graceful.count(),
        1,
        "a keep-alive connection stays watched"
    );
}

#[tokio::test]
async fn the_registry_sends_a_close_frame_and_empties_on_shutdown() {
    let server = Server::start().await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    round_trip(&mut first, "one").await;
    round_trip(&mut second, "two").await;
    assert_eq!(server.sessions.count(), 2);

    let (all_closed, first_last, second_last) = tokio::join!(
        server.sessions.shutdown(DEADLINE),
        read_until_closed(&mut first),
        read_until_closed(&mut second)
    );
    assert!(
        all_closed,
        "every session task ended within the grace period"
    );
    assert_eq!(server.sessions.count(), 0);
    for last in [first_last, second_last] {
        assert_eq!(last.expect("a Close frame").code, CloseCode::Away);
    }
}

#[tokio::test]
async fn a_session_leaves_the_registry_when_the_client_closes_or_vanishes() {
    let server = Server::start().await;
    let mut polite = server.connect().await;
    let mut rude = server.connect().await;
    round_trip(&mut polite, "hi").await;
    round_trip(&mut rude, "hi").await;
    assert_eq!(server.sessions.count(), 2);

    polite.close(None).await.unwrap();
    wait_for_open(&server.sessions, 1).await;
    drop(rude); // no Close frame: the socket just goes away
    wait_for_open(&server.sessions, 0).await;
}

#[tokio::test]
async fn a_session_that_panics_leaves_the_registry_too() {
    let sessions = Sessions::default();
    let (started_tx, started_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    sessions.start(move |_cancel| async move {
        started_tx.send(()).unwrap();
        go_rx.await.unwrap();
        panic!("a bug in the session");
    });
    started_rx.await.unwrap();
    assert_eq!(sessions.count(), 1);
    go_tx.send(()).unwrap();
    // The tracker's `wait` returns once the panicked task is gone; the guard ran on unwind.
    assert!(sessions.shutdown(DEADLINE).await);
    assert_eq!(sessions.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_session_that_ignores_its_token_makes_shutdown_report_it() {
    let sessions = Sessions::default();
    let (_never_tx, never) = oneshot::channel::<()>();
    sessions.start(move |_cancel| async move {
        let _ = never.await; // a session that never looks at its token
    });
    assert!(!sessions.shutdown(Duration::from_secs(5)).await);
    assert_eq!(
        sessions.count(),
        1,
        "it is still running, and still registered"
    );
}

/// A handler that accepts any upgrade and reports what `hyper::upgrade::on` resolved to.
async fn upgrade_and_report(
    mut request: Request<Incoming>,
    report: tokio::sync::mpsc::UnboundedSender<Result<(), String>>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let outcome = on_upgrade.await.map(drop).map_err(|e| e.to_string());
        let _ = report.send(outcome);
    });
    let mut switching = Response::new(Empty::new());
    *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    switching
        .headers_mut()
        .insert("upgrade", "echo".parse().unwrap());
    switching
        .headers_mut()
        .insert("connection", "upgrade".parse().unwrap());
    Ok(switching)
}

/// Sends an upgrade request on `stream` and reads until the server closes it.
async fn ask_for_an_upgrade(stream: &mut TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
    stream.write_all(head).await.unwrap();
    let mut response = vec![0u8; 19];
    stream.read_exact(&mut response).await.unwrap();
    String::from_utf8(response).unwrap()
}

#[tokio::test]
async fn without_upgrades_enabled_hyper_writes_the_101_then_the_upgrade_fails() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let (report, mut outcome) = tokio::sync::mpsc::unbounded_channel();
    let service = service_fn(move |request| upgrade_and_report(request, report.clone()));
    // No `.with_upgrades()`.
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let served = tokio::spawn(connection);

    assert_eq!(ask_for_an_upgrade(&mut client).await, "HTTP/1.1 101 Switch");
    let ended = tokio::time::timeout(DEADLINE, served)
        .await
        .unwrap()
        .unwrap();
    assert!(
        ended.is_ok(),
        "the connection future ends cleanly: {ended:?}"
    );
    let error = outcome.recv().await.unwrap().unwrap_err();
    assert_eq!(error, "upgrade expected but low level API in use");
    // The connection future owned the socket and is gone: the client reads end of file.
    let mut rest = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut rest);
    tokio::time::timeout(DEADLINE, read).await.unwrap().unwrap();
}

#[tokio::test]
async fn graceful_shutdown_of_an_upgraded_http1_connection_does_not_panic() {
    // hyperium/hyper#3615, fixed by #3616: `graceful_shutdown` on an `UpgradeableConnection`
    // whose upgrade already completed unwrapped a `None` and panicked (hyper 1.2).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let (report, mut outcome) = tokio::sync::mpsc::unbounded_channel();
    let service = service_fn(move |request| upgrade_and_report(request, report.clone()));

    let server = tokio::spawn(async move {
        let mut connection = pin!(
            http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
        );
        let ended = connection.as_mut().await;
        // The upgrade happened and the future completed; a shutdown signal arrives late.
        connection.as_mut().graceful_shutdown();
        // And polling the finished future again is harmless too.
        assert!(connection.as_mut().await.is_ok());
        ended
    });

    assert_eq!(ask_for_an_upgrade(&mut client).await, "HTTP/1.1 101 Switch");
    let ended = tokio::time::timeout(DEADLINE, server).await.unwrap();
    assert!(
        matches!(ended, Ok(Ok(()))),
        "no panic, a clean end: {ended:?}"
    );
    assert_eq!(outcome.recv().await.unwrap(), Ok(()));
    // The session dropped its `Upgraded` at once: that closed the socket.
    let mut rest = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut rest);
    tokio::time::timeout(DEADLINE, read).await.unwrap().unwrap();
    assert!(
        rest.ends_with(b"\r\n\r\n"),
        "only the rest of the 101 head, then the end"
    );
}
