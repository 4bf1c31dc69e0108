//! The template as a service: `template --addr 127.0.0.1:0` (see `--help`). Prints
//! `listening on ADDR` on stdout once bound; logs go to stderr; exits 0 after a graceful
//! shutdown on SIGTERM or Ctrl-C.

use std::io::Write as _;
use std::process::ExitCode;

use lessons_professional::{Command, Drain, Server, USAGE, parse_args};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Serve(config)) => *config,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("template: {error}");
            return ExitCode::from(2);
        }
    };
    // Logs on stderr only: stdout carries the one `listening on` line scripts wait for.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    let listener = match TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("template: cannot bind {}: {error}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::new(config) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("template: cannot build the outbound client: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();

    // ANCHOR: signals
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    // ANCHOR_END: signals
    let report = server.run(listener, shutdown).await;
    match report.drain {
        Drain::Drained => tracing::info!(?report, "shut down cleanly"),
        Drain::Forced { .. } => tracing::warn!(?report, "shut down at the deadline"),
    }
    ExitCode::SUCCESS
}

// ANCHOR: signal
/// Kubernetes, systemd and Docker stop a service with SIGTERM; a terminal sends SIGINT
/// (Ctrl-C). `tokio::signal::ctrl_c` alone misses the first: the process would be killed
/// without draining.
async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    }
    shutdown.cancel();
}
// ANCHOR_END: signal
