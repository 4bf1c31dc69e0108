//! HTTPS with rustls through tokio-rustls: a handshake timeout before hyper starts, ALPN
//! choosing HTTP/2 or HTTP/1.1, and a connection limit that a silent client cannot hold for ever.
//!
//! ```console
//! cargo run -p lessons-professional --example tls_server
//! curl --cacert /tmp/workshop-tls/cert.pem https://localhost:3443/        # HTTP/2, ALPN h2
//! curl --http1.1 --cacert /tmp/workshop-tls/cert.pem https://localhost:3443/
//! nc localhost 3443      # sends no ClientHello: closed after the 10 s handshake timeout
//! ```
use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// The timeouts of one TLS connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte the server waits for (the ClientHello) to the end of the handshake;
    /// `None` leaves the handshake unbounded, which is the bug this chapter is about.
    pub handshake: Option<Duration>,
    /// hyper's HTTP/1 header timeout, which starts only once the handshake is done.
    pub header: Duration,
}

// ANCHOR: config
/// The server's TLS configuration: rustls with the ring provider, one certificate, and ALPN
/// offering HTTP/2 first and HTTP/1.1 as the fallback.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, BoxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
// ANCHOR_END: config

/// Answers with the HTTP version the request came in on.
async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = format!("hello over {:?}\n", request.version());
    Ok(Response::new(Full::new(Bytes::from(text))))
}

// ANCHOR: connection
/// Serves one accepted connection: the TLS handshake under its own deadline, then hyper.
pub async fn serve_tls<IO>(
    acceptor: TlsAcceptor,
    io: IO,
    timeouts: Timeouts,
) -> Result<(), BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The handshake is I/O before hyper exists: no hyper timer or timeout covers it.
    let tls = match timeouts.handshake {
        Some(limit) => tokio::time::timeout(limit, acceptor.accept(io))
            .await
            .map_err(|_| "TLS handshake timed out")??,
        None => acceptor.accept(io).await?,
    };
    // ALPN has already chosen the protocol: tell the auto builder, so that it skips its own
    // detection read (which has no timer) and the header timeout covers the first byte.
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    builder
        .serve_connection(TokioIo::new(tls), service_fn(hello))
        .await
}
// ANCHOR_END: connection

// ANCHOR: accept_loop
/// Accepts connections for ever, at most `limit` at a time. The permit is taken before
/// `accept` and the handshake runs in the connection's task, never in this loop.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, limit: usize, timeouts: Timeouts) {
    let permits = Arc::new(Semaphore::new(limit));
    loop {
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit; // held until the connection ends, handshake included
            if let Err(error) = serve_tls(acceptor, stream, timeouts).await {
                tracing::info!(%peer, "connection ended: {error}");
            }
        });
    }
}
// ANCHOR_END: accept_loop

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    // A self-signed certificate for `localhost`, written where curl's --cacert can read it.
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    std::fs::create_dir_all("/tmp/workshop-tls")?;
    std::fs::write("/tmp/workshop-tls/cert.pem", certified.cert.pem())?;
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = server_config(vec![certified.cert.der().clone()], key)?;
    let listener = TcpListener::bind("127.0.0.1:3443").await?;
    tracing::info!("listening on https://localhost:3443 (certificate in /tmp/workshop-tls)");
    let timeouts = Timeouts {
        handshake: Some(Duration::from_secs(10)),
        header: Duration::from_secs(5),
    };
    serve(listener, TlsAcceptor::from(config), 1024, timeouts).await;
    Ok(())
}
