//! TLS for the local ingest: a private test CA with a certificate for `localhost`, and a TLS
//! terminator (stunnel) in front of nginx-rtmp, so that `rtmps://` can be published to it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fieldcast_core::{SessionConfig, StreamProfile};
use fieldcast_sandbox::ingest::{free_port, terminate, wait_accepting};

/// Where Debian's stunnel4 package installs stunnel, under either of its names.
const STUNNEL: [&str; 2] = ["/usr/bin/stunnel4", "/usr/bin/stunnel"];
/// How long stunnel may take to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A small (270p) session to `url`, trusting `ca_pem` on top of the system's roots when given.
pub fn session_config(url: String, ca_pem: Option<String>) -> SessionConfig {
    let builder = SessionConfig::builder(url).profile(StreamProfile::P270);
    match ca_pem {
        Some(pem) => builder.ingest_ca_pem(pem),
        None => builder,
    }
    .build()
    .unwrap()
}

/// A private certificate authority made with the `openssl` command line in its own temp dir,
/// and a server certificate it signed for the DNS name `localhost` only (no IP address: a
/// connection to `127.0.0.1` does not match it).
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a fresh CA and its `localhost` server certificate; panics if `openssl` fails.
    pub fn new() -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("fieldcast-ca-")
            .tempdir()
            .expect("a temp dir for the CA");
        let ca = TestCa { dir };
        ca.make();
        ca
    }

    fn make(&self) {
        let dir = self.dir.path();
        // A name of its own: a verifier takes a CA with the issuer's name for the issuer, and
        // another CA of the same name would fail the signature check instead of being unknown.
        let unique = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let subject = format!("/CN=FieldCast Test CA {unique}");
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost\n",
        )
        .expect("the server certificate's extensions are written");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
    }

    /// The CA's certificate (PEM), to trust with `SessionConfigBuilder::ingest_ca_pem`.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_path()).expect("the CA certificate is readable")
    }

    /// The CA's certificate file (PEM), e.g. for `openssl s_client -CAfile` or ffmpeg's
    /// `-ca_file`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (PEM) for `localhost`, signed by this CA.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server certificate's private key (PEM).
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The certificate (PEM) of another fresh CA, which signed nothing the front presents.
    pub fn unrelated_ca_pem() -> String {
        TestCa::new().ca_pem()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// Runs `openssl args` in `dir`, panicking with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): run `make deps`"));
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// stunnel terminating TLS on a free loopback port (`127.0.0.1`) with a [`TestCa`]'s `localhost`
/// certificate, and forwarding the plain connection to a local port (the ingest's). Stopped by
/// its PID when dropped.
pub struct TlsFront {
    /// The loopback port TLS clients connect to.
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl TlsFront {
    /// Starts stunnel in front of `127.0.0.1:backend_port` and waits until it accepts
    /// connections. Panics if stunnel is not installed or does not start.
    pub fn start(ca: &TestCa, backend_port: u16) -> TlsFront {
        let Some(stunnel) = STUNNEL.iter().find(|p| Path::new(p).exists()) else {
            panic!("stunnel is not installed (Debian package stunnel4): run `make deps`");
        };
        let mut last_log = String::new();
        // The port is free when asked for, but another process may take it before stunnel binds.
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("fieldcast-tls-front-")
                .tempdir()
                .expect("a temp dir for stunnel");
            let port = free_port().expect("a free loopback port");
            let conf = dir.path().join("stunnel.conf");
            std::fs::write(&conf, stunnel_config(dir.path(), ca, port, backend_port))
                .expect("the stunnel config is written");
            let child = Command::new(stunnel)
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {stunnel}: {e}"));
            let mut front = TlsFront {
                port,
                child: Some(child),
                dir,
            };
            match front.wait_listening() {
                Ok(()) => return front,
                Err(log) => last_log = log,
            }
        }
        panic!("stunnel did not start listening: {last_log}");
    }

    /// Waits until stunnel accepts connections; its log when it exits or times out instead.
    fn wait_listening(&mut self) -> Result<(), String> {
        if wait_accepting(self.port, self.child.as_mut(), START_TIMEOUT) {
            return Ok(());
        }
        let mut log = self.log();
        if let Some(stderr) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = stderr.read_to_string(&mut log);
        }
        Err(log)
    }

    /// stunnel's log, for diagnostics.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stunnel.log")).unwrap_or_default()
    }

    /// Stops stunnel (SIGTERM, then SIGKILL after 3 s) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(3));
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stunnel_config(dir: &Path, ca: &TestCa, port: u16, backend_port: u16) -> String {
    format!(
        "foreground = yes
pid = {dir}/stunnel.pid
output = {dir}/stunnel.log
debug = info
syslog = no

[rtmps]
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{backend_port}
cert = {cert}
key = {key}
sslVersionMin = TLSv1.2
",
        dir = dir.display(),
        cert = ca.server_cert_path().display(),
        key = ca.server_key_path().display(),
    )
}
