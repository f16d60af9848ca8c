//! A local nginx-rtmp ingest on a free loopback port, from a config written to its own temp dir.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The nginx binary and the RTMP module Debian installs.
const NGINX: &str = "/usr/sbin/nginx";
const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
/// How long the ingest may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the ingest could not be started.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// nginx or its RTMP module is not installed.
    #[error("{0} is missing: install the Debian packages nginx and libnginx-mod-rtmp")]
    NotInstalled(&'static str),
    /// Writing the config or starting the process failed.
    #[error("cannot start nginx: {0}")]
    Io(#[from] std::io::Error),
    /// nginx exited or did not listen in time; carries its error log.
    #[error("nginx did not start listening on {addr}: {log}")]
    NotListening {
        /// Where nginx was to listen.
        addr: SocketAddr,
        /// nginx's error log and stderr.
        log: String,
    },
}

/// What the sandbox's ingest adds for viewers: an HLS rendition of every stream and a
/// notification to the sandbox when a publisher starts or stops.
#[derive(Debug, Clone)]
pub struct ViewerOutput {
    /// Where nginx writes `<stream key>/index.m3u8` and its `<n>.ts` fragments.
    pub hls_dir: PathBuf,
    /// The URL nginx POSTs `call=publish` / `call=publish_done` (with `name=<stream key>`) to.
    pub notify_url: String,
}

/// A running nginx-rtmp ingest; stopped (by its PID) when dropped.
pub struct LocalIngest {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    recordings: PathBuf,
    key_check: Option<KeyCheck>,
}

impl LocalIngest {
    /// Starts nginx-rtmp on a free loopback port with application `live`, recording every
    /// published stream to `<dir>/<stream key>.flv` so what arrived can be read back.
    pub fn start() -> Result<Self, IngestError> {
        Self::launch(free_port()?, None, None, None)
    }

    /// Like [`LocalIngest::start`], and accepts only `accepted_key`: nginx asks a small HTTP
    /// endpoint (`on_publish`) about every publish, which answers `200 OK` for that key and
    /// `403 Forbidden` for any other, and nginx then closes the publisher's connection.
    pub fn start_with_key_check(accepted_key: &str) -> Result<Self, IngestError> {
        let check = KeyCheck::start(accepted_key)?;
        Self::launch(free_port()?, None, None, Some(check))
    }

    /// Starts nginx-rtmp on a given loopback port, recording into `recordings` (created if
    /// missing), e.g. to restart a crashed ingest on the port its publishers already know.
    pub fn start_at(port: u16, recordings: &Path) -> Result<Self, IngestError> {
        Self::launch(port, Some(recordings.to_path_buf()), None, None)
    }

    /// Like [`LocalIngest::start_at`], and also writes HLS for viewers and notifies the sandbox of
    /// publishers coming and going (see [`ViewerOutput`]).
    pub fn start_with_viewers(
        port: u16,
        recordings: &Path,
        viewers: &ViewerOutput,
    ) -> Result<Self, IngestError> {
        Self::launch(port, Some(recordings.to_path_buf()), Some(viewers), None)
    }

    fn launch(
        port: u16,
        recordings: Option<PathBuf>,
        viewers: Option<&ViewerOutput>,
        key_check: Option<KeyCheck>,
    ) -> Result<Self, IngestError> {
        for (path, what) in [(NGINX, "nginx"), (RTMP_MODULE, "the nginx RTMP module")] {
            if !Path::new(path).exists() {
                return Err(IngestError::NotInstalled(what));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("fieldcast-ingest-")
            .tempdir()?;
        let recordings = recordings.unwrap_or_else(|| dir.path().join("recordings"));
        std::fs::create_dir_all(&recordings)?;
        if let Some(viewers) = viewers {
            std::fs::create_dir_all(&viewers.hls_dir)?;
        }
        let conf = dir.path().join("nginx.conf");
        let on_publish = key_check.as_ref().map(KeyCheck::url);
        std::fs::write(
            &conf,
            config(
                dir.path(),
                &recordings,
                port,
                viewers,
                on_publish.as_deref(),
            ),
        )?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut ingest = LocalIngest {
            child: Some(child),
            port,
            dir,
            recordings,
            key_check,
        };
        ingest.wait_listening()?;
        Ok(ingest)
    }

    fn wait_listening(&mut self) -> Result<(), IngestError> {
        if wait_accepting(self.port, self.child.as_mut(), START_TIMEOUT) {
            return Ok(());
        }
        let mut log =
            std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
        if let Some(stderr) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = stderr.read_to_string(&mut log);
        }
        self.stop();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        Err(IngestError::NotListening { addr, log })
    }

    /// The loopback port nginx listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The publish (and play) URL for a stream key, e.g. `rtmp://127.0.0.1:PORT/live/KEY`.
    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    /// Where nginx records the stream published under `key`.
    pub fn recording(&self, key: &str) -> PathBuf {
        self.recordings.join(format!("{key}.flv"))
    }

    /// The stream keys nginx asked the key check about, in order (empty without one; see
    /// [`LocalIngest::start_with_key_check`]).
    pub fn checked_keys(&self) -> Vec<String> {
        self.key_check
            .as_ref()
            .map(|c| c.asked.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }

    /// nginx's error log, for diagnostics.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The nginx process id, e.g. to kill it in a test.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether nginx has exited (crashed or killed); reaps it, so its PID is never signalled later.
    pub fn exited(&mut self) -> bool {
        let gone = match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        };
        if gone {
            self.child = None;
        }
        gone
    }

    /// Stops nginx (SIGTERM, then SIGKILL after 3 s) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(3));
        }
    }

    /// Kills nginx at once (SIGKILL), as a crashed or vanished server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalIngest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until something accepts TCP connections on loopback `port`, for at most `timeout`;
/// false when the time runs out or `child` (the server) exits first.
pub fn wait_accepting(port: u16, mut child: Option<&mut Child>, timeout: Duration) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        let exited = child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
            .is_some();
        if exited {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A port the OS reports free on loopback.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// HLS of about 1 s fragments (nginx cuts at the first keyframe after 1 s) in a 6 s playlist, one
/// directory per stream key, and the publish notifications.
fn viewer_directives(viewers: &ViewerOutput) -> String {
    format!(
        r#"
            hls on;
            hls_path "{hls}";
            hls_nested on;
            hls_fragment 1s;
            hls_playlist_length 6s;
            on_publish {notify};
            on_publish_done {notify};"#,
        hls = viewers.hls_dir.display(),
        notify = viewers.notify_url
    )
}

fn config(
    dir: &Path,
    recordings: &Path,
    port: u16,
    viewers: Option<&ViewerOutput>,
    on_publish: Option<&str>,
) -> String {
    format!(
        r#"load_module {RTMP_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            idle_streams off;
            drop_idle_publisher 10s;
            record all;
            record_path "{recordings}";
            record_unique off;{viewers}{on_publish}
        }}
    }}
}}
"#,
        dir = dir.display(),
        recordings = recordings.display(),
        viewers = viewers.map(viewer_directives).unwrap_or_default(),
        on_publish = on_publish
            .map(|url| format!("\n            on_publish {url};"))
            .unwrap_or_default()
    )
}

/// Stops a child we spawned and have not reaped: SIGTERM by its PID, SIGKILL after `grace`,
/// then reaps it.
pub fn terminate(child: &mut std::process::Child, grace: Duration) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The HTTP endpoint nginx-rtmp's `on_publish` asks before it accepts a publish: `200 OK` for the
/// accepted stream key, `403 Forbidden` for any other. Stopped when dropped.
struct KeyCheck {
    port: u16,
    stop: Arc<AtomicBool>,
    asked: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl KeyCheck {
    fn start(accepted_key: &str) -> std::io::Result<KeyCheck> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let accepted = accepted_key.to_string();
        let thread = {
            let (stop, asked) = (stop.clone(), asked.clone());
            std::thread::Builder::new()
                .name("ingest-key-check".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        match listener.accept() {
                            Ok((stream, _)) => answer_key_check(stream, &accepted, &asked),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            Err(e) => log::warn!("key check: {e}"),
                        }
                    }
                })?
        };
        Ok(KeyCheck {
            port,
            stop,
            asked,
            thread: Some(thread),
        })
    }

    /// The URL for nginx's `on_publish`.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/publish", self.port)
    }
}

impl Drop for KeyCheck {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one notification (nginx POSTs a form with `name=<stream key>`) and answers it.
fn answer_key_check(mut stream: TcpStream, accepted: &str, asked: &Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the end of the headers and the body they announce, or the peer stops sending.
    while !request_complete(&request) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let query = text
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|target| target.split_once('?'))
        .map_or("", |(_, query)| query);
    let name = [body, query]
        .iter()
        .flat_map(|form| form.split('&'))
        .find_map(|pair| pair.strip_prefix("name="))
        .map(percent_decode)
        .unwrap_or_default();
    let status = if name == accepted {
        "200 OK"
    } else {
        "403 Forbidden"
    };
    asked.lock().unwrap_or_else(|p| p.into_inner()).push(name);
    let _ = write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// True once `request` holds the headers and as much body as their `Content-Length` says.
fn request_complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some((headers, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = headers
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

/// Decodes a form value: `+` is a space, `%XX` a byte.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
