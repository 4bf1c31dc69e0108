//! A real hyper server on loopback, and a real HTTP/1 connection to it.
//!
//! Checks of kind **srv** bind `127.0.0.1:0` (the kernel picks a free port, so checks run in
//! parallel without colliding) and talk to the server over real TCP. That is the whole point
//! of the kind: keep-alive, connection counts and disconnects behave as they do in production.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{BoxFuture, TestResponse};

/// A server task running on `127.0.0.1` with a kernel-chosen port.
///
/// Dropping it aborts the server task, so a failed assertion never leaves a server behind.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and runs `serve` with the listener: use it when the code under test
    /// owns the accept loop.
    pub async fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(TcpListener) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = bind().await;
        let addr = listener.local_addr().expect("reading the bound address");
        Self::spawn(addr, Box::pin(serve(listener)))
    }

    fn spawn(addr: SocketAddr, serve: BoxFuture<'static, ()>) -> Self {
        Self {
            addr,
            task: tokio::spawn(serve),
        }
    }

    /// Serves `handler` with a plain accept loop (one task per connection, HTTP/1 and HTTP/2
    /// through hyper-util's `auto` builder): use it when only the handler is under test.
    pub async fn serve<H, Fut>(handler: H) -> Self
    where
        H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        serve_boxed(Arc::new(move |request| Box::pin(handler(request)))).await
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`, for reqwest.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Opens one new TCP connection to the server and performs the HTTP/1 handshake.
    pub fn connect(&self) -> BoxFuture<'_, H1Connection> {
        Box::pin(async move {
            let stream = TcpStream::connect(self.addr)
                .await
                .expect("connecting to the test server");
            H1Connection::handshake_boxed(Box::new(stream)).await
        })
    }

    /// Stops the server task and waits until it is gone.
    pub fn shutdown(mut self) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            self.task.abort();
            let _ = (&mut self.task).await;
        })
    }
}

/// What the code under test writes a response with.
type Handler =
    Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Full<Bytes>>> + Send + Sync>;

fn bind() -> BoxFuture<'static, TcpListener> {
    Box::pin(async {
        TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0")
    })
}

fn serve_boxed(handler: Handler) -> BoxFuture<'static, TestServer> {
    Box::pin(TestServer::start(move |listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                // A client that goes away mid-request is not the server's failure.
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1 client connection: requests on it are sent one after another on the same
/// connection, which is exactly what a keep-alive check needs (a pooled client may open a
/// second connection whenever the first is not back in its pool yet).
#[derive(Debug)]
pub struct H1Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: JoinHandle<hyper::Result<()>>,
}

/// A byte stream a client connection can run over: TCP or an in-memory duplex.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl H1Connection {
    /// Performs the HTTP/1 handshake over any byte stream: TCP or an in-memory duplex.
    pub fn handshake<IO>(io: IO) -> BoxFuture<'static, Self>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self::handshake_boxed(Box::new(io))
    }

    // One hyper client for every kind of stream, compiled here once.
    fn handshake_boxed(io: Box<dyn Io>) -> BoxFuture<'static, Self> {
        Box::pin(async move {
            let (sender, connection) = http1::handshake(TokioIo::new(io))
                .await
                .expect("HTTP/1 client handshake");
            let driver = tokio::spawn(connection);
            Self { sender, driver }
        })
    }

    /// Sends `GET path` and reads the whole response.
    pub fn get(&mut self, path: &str) -> BoxFuture<'_, hyper::Result<TestResponse>> {
        self.send(get(path))
    }

    /// Sends `request` once the connection is ready, and reads the whole response.
    pub fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> BoxFuture<'_, hyper::Result<TestResponse>> {
        Box::pin(async move {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            TestResponse::collect(response).await
        })
    }

    /// Closes the connection from the client side and waits for the client's half to finish,
    /// the way a browser tab that is closed drops its socket.
    pub fn close(self) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            drop(self.sender);
            let _ = self.driver.await;
        })
    }

    /// Drops the connection at once, without waiting: models a client that vanishes.
    pub fn abort(self) {
        self.driver.abort();
    }
}

/// A `GET path` request with a `host` header, as a real client would send it.
pub fn get(path: &str) -> Request<Full<Bytes>> {
    request("GET", path, Bytes::new())
}

/// A request with the given method, path and body, and a `host` header.
pub fn request(method: &str, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "workshop.test")
        .body(Full::new(body.into()))
        .expect("a well-formed request")
}
