//! The accept loop, the connection builder, the service stack and the shutdown sequence.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyDeadlineLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::admission::{RateLimitLayer, not_admitted};
use crate::config::Config;
use crate::first_bytes::FirstBytesDeadline;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::routes::{App, boxed};
use crate::upgrade::Sessions;

/// How the drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Every connection finished its requests and closed before the deadline.
    Drained,
    /// The deadline passed; this many connections were dropped mid-request.
    Forced {
        /// Connections still open at the deadline.
        connections: usize,
    },
}

/// One step of the shutdown sequence, in the order they ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The listener is closed: new connections are refused by the kernel.
    StoppedAccepting,
    /// Connections drained (or were forced) and WebSocket sessions closed.
    Drained,
    /// The trackers are closed: no new connection or session task can join.
    ClosedQueues,
    /// Background work was cancelled and has finished.
    StoppedBackground,
    /// Logs and stdout were flushed.
    Flushed,
}

/// What shutdown did, for the logs and for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Drained or forced.
    pub drain: Drain,
    /// WebSocket sessions sent a Close frame.
    pub websockets_closed: usize,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// The template: build it once, then [`Server::run`] it on a listener.
pub struct Server {
    config: Config,
    metrics: Arc<Metrics>,
    app: App,
}

impl Server {
    /// Builds the shared state (metrics, the session registry, the outbound client).
    pub fn new(config: Config) -> reqwest::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let app = App {
            metrics: Arc::clone(&metrics),
            sessions: Sessions::default(),
            outbound: Outbound::new(config.upstream.clone(), config.upstream_timeout)?,
            test_routes: config.test_routes,
        };
        Ok(Server {
            config,
            metrics,
            app,
        })
    }

    /// The gauges `GET /metrics` serves.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Serves `listener` until `shutdown` fires, then shuts down in order and reports.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) -> ShutdownReport {
        let config = &self.config;
        let connections = TaskTracker::new();
        let force = CancellationToken::new();
        let builder = connection_builder(config);

        // ANCHOR: stack
        // Outermost first. Built once: every connection gets a clone, and clones share the
        // concurrency limit's semaphore and the rate limiter's bucket.
        let app = self.app.clone();
        let service = ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    // 5xx are "failures" to TraceLayer, logged at ERROR by default: under
                    // overload that is one line per shed request, when time is shortest.
                    .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(CatchPanicLayer::new())
            .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
            .layer(RequestBodyDeadlineLayer::new(config.body_deadline))
            .map_request(boxed)
            .layer(crate::InFlightLayer::new(Arc::clone(&self.metrics)))
            .layer(TimeoutLayer::with_status_code(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                config.handler_timeout,
            ))
            .map_result(not_admitted)
            .option_layer(
                (config.rate_per_second > 0).then(|| RateLimitLayer::new(config.rate_per_second)),
            )
            .load_shed()
            .concurrency_limit(config.max_in_flight)
            .service(app);
        // ANCHOR_END: stack

        let graceful = GracefulShutdown::new();
        let background = Background::start(Arc::clone(&self.metrics));

        // ANCHOR: accept
        let limit = Arc::new(Semaphore::new(config.max_connections));
        loop {
            // The permit comes first: at the limit we stop calling accept, and the next
            // client waits in the kernel's backlog instead of holding a socket we cannot serve.
            let permit = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                permit = Arc::clone(&limit).acquire_owned() => permit.expect("never closed"),
            };
            let (stream, peer) = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning on the error.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let io = if config.no_timer {
                FirstBytesDeadline::unbounded(stream)
            } else {
                FirstBytesDeadline::new(stream, config.header_timeout)
            };
            let hyper_service = TowerToHyperService::new(service.clone());
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(io), hyper_service)
                .into_owned();
            let conn = graceful.watch(conn);
            let (open, force) = (self.metrics.connection(), force.clone());
            connections.spawn(async move {
                // Both guards live as long as the connection: the slot and the gauge.
                let (_permit, _open) = (permit, open);
                tokio::select! {
                    result = conn => if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    },
                    _ = force.cancelled() => tracing::debug!(%peer, "connection dropped at the deadline"),
                }
            });
        }
        // ANCHOR_END: accept

        // ANCHOR: shutdown
        let mut steps = vec![];
        drop(listener);
        steps.push(Step::StoppedAccepting);
        tracing::info!("shutdown: stopped accepting");

        // GracefulShutdown asks each connection to finish its requests and close; it cannot
        // see upgraded connections (they left hyper at the 101), so the registry closes those.
        let sessions = self.app.sessions.clone();
        let drained = tokio::time::timeout(config.shutdown_deadline, async {
            tokio::join!(graceful.shutdown(), sessions.close_all()).1
        })
        .await;
        let (drain, websockets_closed) = match drained {
            Ok(websockets) => (Drain::Drained, websockets),
            Err(_elapsed) => {
                let connections = self.metrics.connections_open();
                force.cancel();
                (
                    Drain::Forced { connections },
                    self.metrics.websockets_open(),
                )
            }
        };
        steps.push(Step::Drained);
        tracing::info!(?drain, websockets_closed, "shutdown: connections done");

        connections.close();
        connections.wait().await;
        steps.push(Step::ClosedQueues);

        background.stop().await;
        steps.push(Step::StoppedBackground);

        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        steps.push(Step::Flushed);
        // ANCHOR_END: shutdown
        ShutdownReport {
            drain,
            websockets_closed,
            steps,
        }
    }
}

// ANCHOR: builder
/// hyper-util's auto builder: HTTP/1 and HTTP/2 on the same port, every limit explicit.
fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .max_buf_size(config.h1_max_buf_size)
        .max_headers(config.h1_max_headers);
    builder
        .http2()
        .max_concurrent_streams(config.h2_max_concurrent_streams);
    if config.no_timer {
        // What `axum::serve` builds (tokio-rs/axum#2741): no timer, so hyper silently skips
        // its default 30 s header timeout (its warning needs hyper's unstable tracing).
        // Setting one here would panic in the connection task ("timeout
        // `header_read_timeout` set, but no timer set").
        return builder;
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(config.h2_keep_alive_interval)
        .keep_alive_timeout(config.h2_keep_alive_timeout);
    builder
}
// ANCHOR_END: builder

// ANCHOR: span
/// The span every request's logs carry; the request id is set by the layer outside this one.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), id = %id)
}
// ANCHOR_END: span

/// Background work: a periodic metrics log line, stopped by a token, awaited by a tracker.
struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    fn start(metrics: Arc<Metrics>) -> Self {
        let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
        let token = stop.clone();
        tasks.spawn(async move {
            let period = Duration::from_secs(60);
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = every.tick() => tracing::info!(
                        connections = metrics.connections_open(),
                        in_flight = metrics.requests_in_flight(),
                        "stats"
                    ),
                }
            }
        });
        tasks.close();
        Background { stop, tasks }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.tasks.wait().await;
    }
}
