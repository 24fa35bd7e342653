//! HTTPS for the sandbox bank, with the mutual TLS real banks ask of their clients (OBIE
//! transport certificates, eIDAS QWACs under NextGenPSD2). On first start it makes a CA, a
//! server certificate for the hosts it answers on and a client certificate for the operator,
//! all under DIR/tls (private keys owner-only), and keeps them across restarts: the
//! operator's connector trusts `ca.pem` and presents `client.pem` with `client-key.pem`. A
//! client without a certificate the CA signed is refused during the handshake.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use super::SandboxError;

pub const TLS_DIR_NAME: &str = "tls";
pub const CA_FILE: &str = "ca.pem";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";
pub const CLIENT_CERT_FILE: &str = "client.pem";
pub const CLIENT_KEY_FILE: &str = "client-key.pem";

/// Handshakes in progress at most, and how long one may take: a client that connects and
/// says nothing holds a slot only that long.
const HANDSHAKES_MAX: usize = 256;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the HTTP server to take them.
const ACCEPTED_QUEUE_MAX: usize = 64;

/// The server's TLS settings: the certificates in `data_dir/tls` (made on first start, for
/// `localhost`, 127.0.0.1, ::1 and `host`), client certificates required.
pub fn server_config(
    data_dir: &Path,
    host: &str,
    client_id: &str,
) -> Result<Arc<rustls::ServerConfig>, SandboxError> {
    let dir = data_dir.join(TLS_DIR_NAME);
    if !dir.join(CA_FILE).exists() {
        make_certificates(&dir, host, client_id)?;
    }
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| SandboxError::io(&path, e))
    };
    let bad =
        |what: &str, e: &dyn std::fmt::Display| SandboxError::Config(format!("tls {what}: {e}"));
    let ca = CertificateDer::from_pem_slice(&read(CA_FILE)?).map_err(|e| bad(CA_FILE, &e))?;
    let server = CertificateDer::from_pem_slice(&read(SERVER_CERT_FILE)?)
        .map_err(|e| bad(SERVER_CERT_FILE, &e))?;
    let key = PrivateKeyDer::from_pem_slice(&read(SERVER_KEY_FILE)?)
        .map_err(|e| bad(SERVER_KEY_FILE, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).map_err(|e| bad(CA_FILE, &e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| bad("client verifier", &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocol versions", &e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server, ca], key)
        .map_err(|e| bad("server certificate", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn make_certificates(dir: &Path, host: &str, client_id: &str) -> Result<(), SandboxError> {
    let bad = |e: rcgen::Error| SandboxError::Config(format!("tls certificates: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| SandboxError::io(dir, e))?;
    let ca_key = KeyPair::generate().map_err(bad)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
    ca.distinguished_name
        .push(DnType::CommonName, "Croupier sandbox bank CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(bad)?;
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !hosts.iter().any(|known| known == host) {
        hosts.push(host.to_string());
    }
    let server_key = KeyPair::generate().map_err(bad)?;
    let mut server = CertificateParams::new(hosts).map_err(bad)?;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(bad)?;
    let client_key = KeyPair::generate().map_err(bad)?;
    let mut client = CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
    client
        .distinguished_name
        .push(DnType::CommonName, client_id);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .map_err(bad)?;
    // Keys first and the CA last: a start interrupted midway makes them all again.
    write(
        &dir.join(SERVER_KEY_FILE),
        &server_key.serialize_pem(),
        true,
    )?;
    write(
        &dir.join(CLIENT_KEY_FILE),
        &client_key.serialize_pem(),
        true,
    )?;
    write(&dir.join(SERVER_CERT_FILE), &server_cert.pem(), false)?;
    write(&dir.join(CLIENT_CERT_FILE), &client_cert.pem(), false)?;
    write(&dir.join(CA_FILE), &ca_cert.pem(), false)
}

fn write(path: &PathBuf, text: &str, secret: bool) -> Result<(), SandboxError> {
    let mode = if secret { 0o600 } else { 0o644 };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
    written.map_err(|e| SandboxError::io(path, e))
}

/// A listener that hands the HTTP server connections whose TLS handshake finished; each
/// handshake runs on its own task, so a slow client never holds up the others.
pub struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, accepted) = tokio::sync::mpsc::channel(ACCEPTED_QUEUE_MAX);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX));
        tokio::spawn(async move {
            while !sender.is_closed() {
                let Ok((tcp, peer)) = listener.accept().await else {
                    // Out of descriptors and the like: breathe, then accept again.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept task ended (its runtime is going away): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
