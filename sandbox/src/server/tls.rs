//! The API over TLS, on a port of its own. A private CA made at start signs two certificates: the
//! sandbox's own, for `localhost` and `127.0.0.1`, and one for [`WRONG_NAME`], which a handshake
//! gets while a `tls_wrong_name` fault lasts, as from a captive portal that intercepts HTTPS. A
//! client that trusts the CA then fails on the name alone.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::connection::{AbortableStream, ConnectionAbort};
use super::state::AppState;

/// The only name on the certificate a `tls_wrong_name` fault presents.
pub const WRONG_NAME: &str = "portal.fieldcast.invalid";
/// The names on the sandbox's own certificate.
const OWN_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];
/// How long a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const BACKLOG: usize = 64;
/// How far before its making the CA and certificates are valid, so that a phone whose clock is
/// weeks behind still accepts them.
const VALID_BEFORE: time::Duration = time::Duration::days(60);
/// How long after its making they stay valid.
const VALID_AFTER: time::Duration = time::Duration::days(365);

/// Why the TLS identity could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate could not be generated.
    #[error("cannot make the sandbox's TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("cannot configure TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The private CA and the server configurations for the sandbox's own name and another one.
pub struct TlsIdentity {
    ca_pem: String,
    own: Arc<ServerConfig>,
    wrong_name: Arc<ServerConfig>,
}

impl TlsIdentity {
    /// A fresh CA with its two server certificates.
    pub fn generate() -> Result<TlsIdentity, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: a client that trusts another sandbox's CA of the same name would
        // fail the signature check instead of not knowing the issuer.
        params.distinguished_name.push(
            DnType::CommonName,
            format!("FieldCast Sandbox CA {:016x}", rand::random::<u64>()),
        );
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(TlsIdentity {
            ca_pem: ca.pem(),
            own: server_config(&ca, &OWN_NAMES)?,
            wrong_name: server_config(&ca, &[WRONG_NAME])?,
        })
    }

    /// The CA's certificate (PEM), for clients to trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

fn set_validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - VALID_BEFORE;
    params.not_after = now + VALID_AFTER;
}

/// A server configuration with a new certificate for `names`, signed by `ca`.
fn server_config(
    ca: &CertifiedIssuer<'_, KeyPair>,
    names: &[&str],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|n| (*n).to_string())
            .collect::<Vec<String>>(),
    )?;
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params);
    let key = KeyPair::generate()?;
    let certificate = params.signed_by(&key, ca)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certificate.der().clone()], key)?;
    Ok(Arc::new(config))
}

/// Accepts TCP connections and hands the server those whose TLS handshake succeeded. Handshakes
/// run on their own tasks, so a slow client holds up nobody.
pub struct TlsListener {
    handshaken: mpsc::Receiver<(TlsStream<AbortableStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` (on the current tokio runtime); stops when the listener
    /// returned is dropped.
    pub fn spawn(
        listener: TcpListener,
        identity: &TlsIdentity,
        state: AppState,
    ) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (tx, handshaken) = mpsc::channel(BACKLOG);
        let own = identity.own.clone();
        let wrong_name = identity.wrong_name.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (tcp, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        log::warn!("sandbox: TLS accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let config = if state.faults.take_handshake() {
                    state.stats.fault_injected();
                    log::info!(
                        "sandbox: fault tls_wrong_name injected: {addr} gets a certificate for {WRONG_NAME}"
                    );
                    wrong_name.clone()
                } else {
                    own.clone()
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake = TlsAcceptor::from(config).accept(AbortableStream::new(tcp));
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            // The server is gone if this fails: nothing to serve then.
                            let _ = tx.send((stream, addr)).await;
                        }
                        Ok(Err(e)) => log::info!("sandbox: TLS handshake with {addr} failed: {e}"),
                        Err(_) => log::info!("sandbox: TLS handshake with {addr} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            handshaken,
            local_addr,
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<AbortableStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends once this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ConnectionAbort {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.io().get_ref().0.abort_switch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_pem_and_each_call_makes_a_new_one() {
        let a = TlsIdentity::generate().unwrap();
        let b = TlsIdentity::generate().unwrap();
        assert!(
            a.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"),
            "{}",
            a.ca_pem()
        );
        assert_ne!(a.ca_pem(), b.ca_pem());
    }
}
