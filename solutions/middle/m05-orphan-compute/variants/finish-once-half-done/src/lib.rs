//! `riskd`: value-at-risk figures for the trading desk.
//!
//! `GET /var?portfolio=NAME` runs a Monte Carlo simulation of the portfolio, `BATCHES` batches
//! of scenarios, and answers `portfolio=NAME var99=N`: the worst loss, in dollars, that the
//! simulation expects on 99 days out of 100. A batch is seconds of pure CPU work, so the
//! simulation runs on tokio's blocking pool, not on the threads that serve connections. The
//! desk's dashboard shows a gauge of simulations in progress: each holds one guard of
//! `simulations` while it runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// How many batches of scenarios one simulation runs.
pub const BATCHES: u32 = 20;

/// The quant team's risk model: prices one batch of scenarios for a portfolio and returns the
/// batch's 99th-percentile loss in dollars. CPU-bound, and slow.
pub trait RiskModel: Send + Sync + 'static {
    fn simulate_batch(&self, portfolio: &str, batch: u32) -> u64;
}

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(
    io: IO,
    model: Arc<dyn RiskModel>,
    simulations: Gauge,
) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        service_fn(move |request| handle(request, Arc::clone(&model), simulations.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn handle(
    request: Request<Incoming>,
    model: Arc<dyn RiskModel>,
    simulations: Gauge,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(portfolio) = portfolio_param(request.uri()) else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "missing ?portfolio=NAME\n".into(),
        ));
    };
    // CPU-bound work goes to the blocking pool, so it cannot hold up the connections served
    // by the runtime's worker threads.
    let gone = Arc::new(AtomicBool::new(false));
    let _raise = RaiseOnDrop(Arc::clone(&gone));
    let run = {
        let portfolio = portfolio.clone();
        tokio::task::spawn_blocking(move || value_at_risk(&*model, &portfolio, simulations, &gone))
    };
    match run.await {
        Ok(Some(var)) => Ok(text(
            StatusCode::OK,
            format!("portfolio={portfolio} var99={var}\n"),
        )),
        Ok(None) => unreachable!("only a dropped handler stops a simulation"),
        // The simulation panicked: say so rather than take the connection down.
        Err(_) => Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulation failed\n".into(),
        )),
    }
}

/// Runs every batch and keeps the worst of their losses.
fn value_at_risk(
    model: &dyn RiskModel,
    portfolio: &str,
    simulations: Gauge,
    gone: &AtomicBool,
) -> Option<u64> {
    // Held for exactly as long as this simulation runs, however it ends.
    let _running = simulations.guard();
    let mut worst = 0;
    for batch in 0..BATCHES {
        // Past half way the figure is nearly ready: finish it, the next reload may want it.
        if batch <= BATCHES / 2 && gone.load(Ordering::SeqCst) {
            return None;
        }
        worst = worst.max(model.simulate_batch(portfolio, batch));
    }
    Some(worst)
}

/// Tells the simulation its client is gone when the handler is dropped.
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The production model, reduced to its shape: draw scenarios from a seeded generator, sort
/// their losses, read off the 99th percentile. The same input always gives the same answer.
#[derive(Debug, Default)]
pub struct MonteCarlo;

impl RiskModel for MonteCarlo {
    fn simulate_batch(&self, portfolio: &str, batch: u32) -> u64 {
        const SCENARIOS: usize = 1000;
        let mut seed = portfolio.bytes().fold(u64::from(batch) + 1, |s, b| {
            s.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        let mut losses: Vec<u64> = (0..SCENARIOS)
            .map(|_| {
                // xorshift: cheap, and deterministic for a given portfolio and batch.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % 1_000_000
            })
            .collect();
        losses.sort_unstable();
        losses[SCENARIOS * 99 / 100]
    }
}

fn portfolio_param(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("portfolio="))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
