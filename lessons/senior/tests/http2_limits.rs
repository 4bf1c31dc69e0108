//! Claims of the chapter "HTTP/2 limits and floods". A raw `h2` client does what hyper's client
//! never does: it sends streams past the server's limit and resets streams in bursts. Every
//! check runs over an in-memory connection on a paused clock, and every loop is bounded.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http2::Builder;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::DuplexStream;

mod support {
    pub mod http2;
}
use support::http2::{Gate, PIPE, h2_error, h2_request};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/http2_rapid_reset.rs"]
mod http2_rapid_reset;
use http2_rapid_reset::open_and_reset;

const HANG: &str = "the server neither answered nor closed the connection";
const LONG: Duration = Duration::from_secs(30);

type H2Client = h2::client::SendRequest<Bytes>;
type H2Connection = h2::client::Connection<DuplexStream, Bytes>;

/// A raw h2 client on one end of a fresh pipe, and the other end for the server. The
/// handshake only writes the preface, so no server needs to exist yet.
async fn h2_client() -> (H2Client, H2Connection, DuplexStream) {
    let (client_io, server_io) = tokio::io::duplex(PIPE);
    let (client, connection) = h2::client::handshake(client_io).await.unwrap();
    (client, connection, server_io)
}

/// The server's connection task once it runs: it holds hyper's verdict on the connection.
struct Running {
    server: tokio::task::JoinHandle<hyper::Result<()>>,
}

impl Running {
    /// How the server ended the connection, or `None` while it keeps it open (the clock is
    /// virtual: the timeout fires only once nothing else can happen).
    async fn server_goaway(&mut self) -> Option<h2::Reason> {
        let ended = tokio::time::timeout(LONG, &mut self.server).await.ok()?;
        let error = ended
            .unwrap()
            .expect_err("a server that ends on its own ends with an error");
        let h2 = h2_error(&error).expect("an HTTP/2 error");
        assert!(h2.is_go_away() && h2.is_library(), "{h2:?}");
        h2.reason()
    }
}

/// Writes every frame the h2 client has queued, then starts a hyper server configured by
/// `configure` on the other end, and spawns the client's connection. The server reads the
/// whole burst before it sends anything, so the client never saw the server's SETTINGS.
async fn flush_then_serve<S>(
    mut connection: H2Connection,
    server_io: DuplexStream,
    configure: impl FnOnce(&mut Builder<TokioExecutor>),
    service: S,
) -> Running
where
    S: hyper::service::HttpService<Incoming, ResBody = Full<Bytes>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    assert!(
        futures::poll!(&mut connection).is_pending(),
        "the client connection waits for the server"
    );
    let mut builder = Builder::new(TokioExecutor::new());
    configure(&mut builder);
    let server = tokio::spawn(builder.serve_connection(TokioIo::new(server_io), service));
    tokio::spawn(connection);
    Running { server }
}

/// Sends `n` requests on `client` without waiting for any of them: `n` HEADERS frames.
fn open(client: &H2Client, n: usize) -> Vec<h2::client::ResponseFuture> {
    (0..n)
        .map(|_| {
            let (response, _) = client.clone().send_request(h2_request(), true).unwrap();
            response
        })
        .collect()
}

/// A service whose handlers hold a guard of `running` and wait for `gate`.
fn parked(
    running: &Gauge,
    gate: &Gate,
) -> impl hyper::service::HttpService<
    Incoming,
    ResBody = Full<Bytes>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Send
+ 'static {
    let (running, gate) = (running.clone(), gate.clone());
    service_fn(move |_: Request<Incoming>| {
        let (guard, gate) = (running.guard(), gate.clone());
        async move {
            gate.pass().await;
            drop(guard);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done\n"))))
        }
    })
}

/// A service that counts its calls and answers at once.
fn counting(calls: Arc<AtomicUsize>) -> impl Fn(Request<Incoming>) -> Ready + Clone {
    move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(Full::new(Bytes::from("hello\n")))))
    }
}
type Ready = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

#[test]
fn an_h2_client_that_sends_past_the_limit_gets_refused_stream() {
    check(HANG).paused(|| async {
        let (running, gate) = (Gauge::new(), Gate::closed());
        let (client, connection, server_io) = h2_client().await;
        let mut responses = open(&client, 3);
        let limit_two = |b: &mut Builder<TokioExecutor>| {
            b.max_concurrent_streams(2);
        };
        flush_then_serve(connection, server_io, limit_two, parked(&running, &gate)).await;
        // Virtual time: a third stream that was let in would wait for the gate for ever.
        let third = tokio::time::timeout(LONG, responses.pop().unwrap())
            .await
            .expect("the third stream should have been refused at once");
        let reason = third.expect_err("the third stream is refused").reason();
        assert_eq!(reason, Some(h2::Reason::REFUSED_STREAM));
        assert!(running.reaches_started(2, LONG).await);
        assert_eq!(
            running.started(),
            2,
            "the refused stream never reached the service"
        );
        gate.open();
        for response in responses {
            assert_eq!(response.await.expect("answered").status(), 200);
        }
    });
}

/// One stream allowed, `1 + extra` sent: the reason of the server's GOAWAY, if it sent one.
async fn refusals(extra: usize, max_local_error_resets: usize) -> Option<h2::Reason> {
    let (running, gate) = (Gauge::new(), Gate::closed());
    let (client, connection, server_io) = h2_client().await;
    let mut responses = open(&client, 1 + extra);
    let configure = |b: &mut Builder<TokioExecutor>| {
        b.max_concurrent_streams(1)
            .max_local_error_reset_streams(max_local_error_resets);
    };
    let mut connection =
        flush_then_serve(connection, server_io, configure, parked(&running, &gate)).await;
    let goaway = connection.server_goaway().await;
    if goaway.is_none() {
        // Still up: the first stream is being served, and its answer comes once let go.
        assert_eq!(running.started(), 1);
        gate.open();
        let first = responses.remove(0).await.expect("answered");
        assert_eq!(first.status(), 200);
    }
    goaway
}

#[test]
fn refused_streams_count_toward_max_local_error_reset_streams() {
    check(HANG).paused(|| async {
        assert_eq!(
            refusals(2, 2).await,
            None,
            "two refusals are within a limit of 2"
        );
        assert_eq!(
            refusals(3, 2).await,
            Some(h2::Reason::ENHANCE_YOUR_CALM),
            "the third refusal is past the limit"
        );
    });
}

/// A burst of `n` streams opened and reset, then one ordinary request, against a server with
/// `limit` (h2's default of 20 if `None`): the ordinary request's status, or the reason of the
/// server's GOAWAY. The ordinary request rides in the same burst, so the client never writes
/// to a connection the server may have closed.
async fn rapid_reset(
    n: usize,
    limit: Option<usize>,
    calls: &Arc<AtomicUsize>,
) -> Result<u16, h2::Reason> {
    let (client, connection, server_io) = h2_client().await;
    open_and_reset(&client, n);
    let ordinary = open(&client, 1).pop().unwrap();
    let configure = |b: &mut Builder<TokioExecutor>| {
        b.max_pending_accept_reset_streams(limit);
    };
    let mut connection = flush_then_serve(
        connection,
        server_io,
        configure,
        service_fn(counting(calls.clone())),
    )
    .await;
    match ordinary.await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(_) => Err(connection
            .server_goaway()
            .await
            .expect("the server ended it")),
    }
}

#[test]
fn twenty_streams_reset_before_accept_are_tolerated_and_still_reach_the_service() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(rapid_reset(20, None, &calls).await, Ok(200));
        // hyper accepted the 20 reset streams and called the service for each, then the one
        // ordinary request.
        assert_eq!(calls.load(Ordering::SeqCst), 21);
    });
}

#[test]
fn the_twenty_first_gets_goaway_enhance_your_calm_before_any_call() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicUsize::new(0));
        let verdict = rapid_reset(21, None, &calls).await;
        assert_eq!(verdict, Err(h2::Reason::ENHANCE_YOUR_CALM));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn max_pending_accept_reset_streams_moves_the_limit() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(rapid_reset(5, Some(5), &calls).await, Ok(200));
        let verdict = rapid_reset(6, Some(5), &calls).await;
        assert_eq!(verdict, Err(h2::Reason::ENHANCE_YOUR_CALM));
        assert_eq!(rapid_reset(21, Some(50), &calls).await, Ok(200));
    });
}

/// hyper's client with both of its receive windows at `connection_window`/`stream_window`
/// downloads 100 KiB on one stream without reading it, then asks for a 6-byte body on another:
/// whether the small body arrives while the big one stays unread.
async fn sibling_arrives(stream_window: u32, connection_window: u32) -> bool {
    let (client_io, server_io) = tokio::io::duplex(PIPE);
    let service = service_fn(|request: Request<Incoming>| async move {
        let body = match request.uri().path() {
            "/big" => Bytes::from(vec![b'x'; 100 * 1024]),
            _ => Bytes::from("small\n"),
        };
        Ok::<_, Infallible>(Response::new(Full::new(body)))
    });
    tokio::spawn(
        Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(server_io), service),
    );
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(stream_window)
        .initial_connection_window_size(connection_window)
        .handshake(TokioIo::new(client_io))
        .await
        .unwrap();
    tokio::spawn(connection);
    let get = |path: &'static str| {
        let mut sender = sender.clone();
        async move {
            sender.ready().await?;
            let uri = format!("http://workshop.test{path}");
            sender
                .send_request(Request::get(uri).body(Empty::<Bytes>::new()).unwrap())
                .await
        }
    };
    let big = get("/big").await.unwrap();
    let small = async { get("/small").await?.into_body().collect().await };
    // Virtual time: the timeout fires only once nothing can make progress.
    let arrived = tokio::time::timeout(LONG, small).await.is_ok();
    drop(big);
    arrived
}

#[test]
fn an_unread_download_starves_its_siblings_once_the_connection_window_is_spent() {
    check(HANG).paused(|| async {
        const KIB: u32 = 1024;
        assert!(
            !sibling_arrives(64 * KIB, 64 * KIB).await,
            "the unread body took the whole connection window"
        );
        assert!(
            sibling_arrives(64 * KIB, 128 * KIB).await,
            "a connection window larger than one stream's leaves room for siblings"
        );
    });
}

/// A hyper server with keep-alive pings every 10 s (5 s to answer) on one end of a pipe, and a
/// peer on the other that says hello and then goes silent: it never reads, so it never
/// answers a PING. `timer` decides whether the builder gets one.
async fn silent_peer(timer: bool) -> tokio::task::JoinHandle<hyper::Result<()>> {
    use tokio::io::AsyncWriteExt;
    let (mut peer, server_io) = tokio::io::duplex(PIPE);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    if timer {
        builder.timer(hyper_util::rt::TokioTimer::new());
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(
        builder.serve_connection(TokioIo::new(server_io), service_fn(counting(calls))),
    );
    // The client preface, then an empty SETTINGS frame (length 0, type 4, stream 0).
    peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    peer.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    // The peer's end must stay open: a closed pipe would end the connection on its own.
    tokio::spawn(async move {
        std::future::pending::<()>().await;
        drop(peer);
    });
    server
}

#[test]
fn keep_alive_closes_a_connection_whose_peer_stops_answering_pings() {
    check(HANG).paused(|| async {
        let start = tokio::time::Instant::now();
        let server = silent_peer(true).await;
        let ended = tokio::time::timeout(LONG * 2, server).await;
        let error = ended
            .expect("the server gave up")
            .unwrap()
            .expect_err("an error");
        assert!(error.is_timeout(), "{error:?}");
        // 10 s without a read, a PING, 5 s without its answer (virtual time).
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(15) && waited < Duration::from_secs(16),
            "{waited:?}"
        );
    });
}

#[test]
fn keep_alive_without_a_timer_panics_the_connection_task() {
    check(HANG).paused(|| async {
        let ended = silent_peer(false).await.await;
        let panic = ended
            .expect_err("the connection task panicked")
            .into_panic();
        let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
        assert_eq!(message, "You must supply a timer.");
    });
}
