//! A self-signed certificate for `localhost` and a client that trusts it, for the TLS checks.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::super::example;

/// The server's acceptor and a client connector that trusts its certificate.
pub struct Pair {
    pub acceptor: TlsAcceptor,
    root: CertificateDer<'static>,
}

impl Pair {
    /// Makes a fresh self-signed certificate (rcgen, ECDSA P-256) and the server's config.
    pub fn new() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let root = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = example::server_config(vec![root.clone()], key).unwrap();
        Pair {
            acceptor: TlsAcceptor::from(config),
            root,
        }
    }

    /// A client that trusts the certificate and offers `alpn` (in order of preference).
    pub fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }

    /// Performs the client side of the handshake on `io`.
    pub async fn connect<IO>(&self, alpn: &[&[u8]], io: IO) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from("localhost").unwrap();
        self.connector(alpn).connect(name, io).await
    }
}
