//! What a full TLS handshake costs in CPU: both ends on one thread, over an in-memory pipe, so
//! the time measured is the cryptography and the state machines, not the network.
//!
//! ```console
//! cargo run --release -p lessons-professional --example tls_handshake_cost
//! ```
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const HANDSHAKES: u32 = 500;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone())?;
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // No session resumption: every handshake below is a full one (key exchange + signature).
    client.resumption = rustls::client::Resumption::disabled();
    let (acceptor, connector) = (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    );
    let start = Instant::now();
    for _ in 0..HANDSHAKES {
        let (client_io, server_io) = tokio::io::duplex(16 * 1024);
        let name = ServerName::try_from("localhost")?;
        let (accepted, connected) = tokio::join!(
            acceptor.accept(server_io),
            connector.connect(name, client_io)
        );
        accepted?;
        connected?;
    }
    let per = start.elapsed() / HANDSHAKES;
    tracing::info!(
        "{HANDSHAKES} full TLS 1.3 handshakes (ECDSA P-256, ring), both ends on one thread: {per:?} each"
    );
    Ok(())
}
