//! An axum `Router` served through our own loop, with a 5 s header timeout.
//!
//! ```console
//! cargo run -p lessons-professional-axum --example axum_loop
//! curl http://127.0.0.1:3000/
//! (printf 'GET / HTTP/1.1\r\nHost: x\r\n'; sleep 10) | nc 127.0.0.1 3000   # closed after 5 s
//! ```
use std::time::Duration;

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000 with a 5 s header timeout");
    lessons_professional_axum::serve(
        listener,
        lessons_professional_axum::app(),
        Duration::from_secs(5),
    )
    .await;
    Ok(())
}
