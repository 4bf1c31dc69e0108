//! Checks for P05: `price-edge` reaches the pricing service through one pool of connections
//! for the whole process, and a pricing service that accepts a connection and never answers
//! costs a caller the configured timeout, not forever.
//!
//! The pricing service here is a real server on loopback that counts the TCP connections it
//! accepts: connection churn is a count there, not a guess from timings.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::server::TestServer;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use p05_client_reuse::{Config, serve};
use tokio::net::TcpListener;

const HANG: &str = "a price request was never answered: is the call to the pricing service \
                    waiting for an answer that never comes, with no timeout on it?";

/// What the pricing service answers for every SKU.
const PRICE: &str = "19.99 EUR\n";

/// A pricing service on loopback that answers after `delay` and counts the connections it
/// accepted.
async fn pricing_service(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let accepts = Arc::new(AtomicUsize::new(0));
    let counted = accepts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(move |_request: Request<Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(PRICE))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, accepts)
}

/// A pricing service whose process is wedged: the kernel completes the handshake (the
/// listener's backlog, or an accept loop that still runs), and nothing ever answers.
async fn wedged_pricing_service() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

async fn start_edge(upstream: String, upstream_timeout: Duration) -> TestServer {
    let config = Config {
        upstream,
        upstream_timeout,
    };
    TestServer::start(|listener| async move {
        let _ = serve(listener, config).await;
    })
    .await
}

/// Three storefront connections each ask for two prices, one after the other, every answer
/// read to its end before the next question: the pricing service must see one connection.
///
/// This check runs the edge, the storefront and the pricing service on one thread. There a
/// connection whose answer has been read is back in the pool before the next request can
/// look for it; on several threads the pool can lose that race now and then and open a
/// second connection, and the count would be a matter of luck.
#[test]
fn sequential_requests_share_one_upstream_connection() {
    check(HANG).run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a runtime");
        runtime.block_on(async {
            let (upstream, accepts) = pricing_service(Duration::ZERO).await;
            let edge = start_edge(upstream, Duration::from_secs(5)).await;
            for storefront in 0..3 {
                let mut connection = edge.connect().await;
                for sku in ["sku-1", "sku-2"] {
                    let response = connection
                        .get(&format!("/price/{sku}"))
                        .await
                        .expect("the edge answers");
                    assert_eq!(
                        (response.status.as_u16(), response.text().as_str()),
                        (200, PRICE),
                        "storefront connection {storefront} asked for {sku}: the edge must \
                         pass the pricing service's answer on"
                    );
                }
            }
            let accepted = accepts.load(Ordering::SeqCst);
            assert_eq!(
                accepted, 1,
                "six requests, strictly one after the other, from three storefront \
                 connections: the pricing service accepted {accepted} connections, where one \
                 pool kept for the whole process reuses a single one (six: a client per \
                 request; three: a client per storefront connection)"
            );
        });
    });
}

/// The pricing service accepts the connection and never answers: the caller gets a 504 (or
/// 502) within about the configured 300 ms, not a request that hangs.
#[test]
fn wedged_upstream_answers_504_within_the_timeout() {
    check(HANG).real(|| async {
        let upstream = wedged_pricing_service().await;
        let edge = start_edge(upstream, Duration::from_millis(300)).await;
        let mut connection = edge.connect().await;
        let response = tokio::time::timeout(Duration::from_secs(3), connection.get("/price/sku-1"))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the pricing service accepted the connection and never answered, and the \
                     edge had not answered 3 s later, ten times its configured 300 ms \
                     `upstream_timeout`: the call has no total timeout (a connect timeout \
                     alone is satisfied: the connection was accepted)"
                )
            })
            .expect("the edge answers");
        let status = response.status.as_u16();
        assert!(
            status == 504 || status == 502,
            "a pricing service that never answers must cost the caller a 504 Gateway Timeout \
             (or 502), the edge answered {status} {:?}",
            response.text()
        );
    });
}

/// A pricing service that takes 200 ms, well within the configured 2 s: the price comes
/// through. A timeout is the operators' budget, not a shorter one picked in the code.
#[test]
fn slow_upstream_within_the_timeout_is_served() {
    check(HANG).real(|| async {
        let (upstream, _accepts) = pricing_service(Duration::from_millis(200)).await;
        let edge = start_edge(upstream, Duration::from_secs(2)).await;
        let mut connection = edge.connect().await;
        let response = connection
            .get("/price/sku-1")
            .await
            .expect("the edge answers");
        assert_eq!(
            (response.status.as_u16(), response.text().as_str()),
            (200, PRICE),
            "the pricing service answered in 200 ms and `upstream_timeout` is 2 s: the edge \
             must pass the price on (is the timeout shorter than the configured one?)"
        );
    });
}
