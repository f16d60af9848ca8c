//! The live connection's byte stream: a TCP socket the publisher opens itself, with TLS (rustls)
//! on top for `rtmps://`. Non-blocking throughout: connecting waits in the uplink's [`Waker`],
//! so that stopping the session never waits for a connect to time out.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::socket::{SocketControl, UNSENT_LIMIT};
use super::supervisor::LinkFailure;
use super::tls;
use super::waker::Waker;
use crate::error::IngestCause;

/// An open byte stream to the ingest.
pub(crate) struct Link {
    socket: TcpStream,
    tls: Option<Box<ClientConnection>>,
    /// Bytes written to the socket (TLS records included).
    sent: u64,
}

/// What reading found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Bytes (possibly none, when only TLS records arrived).
    Bytes,
    /// The server closed the connection.
    Closed,
}

impl Link {
    /// Connects to `host:port` before `deadline`, trying each address the name resolves to;
    /// TLS (checked against `tls`'s roots for `host`) when given. `stopped` ends the attempt.
    pub fn connect(
        host: &str,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
        waker: &Waker,
        deadline: Instant,
        stopped: &dyn Fn() -> bool,
    ) -> Result<Link, LinkFailure> {
        let addresses: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| LinkFailure {
                cause: IngestCause::Unreachable,
                reason: format!("cannot resolve {host}: {e}"),
            })?
            .collect();
        let mut last = LinkFailure {
            cause: IngestCause::Unreachable,
            reason: format!("{host} has no address"),
        };
        for address in addresses {
            match connect_one(address, waker, deadline, stopped) {
                Ok(socket) => {
                    let tls = match &tls {
                        Some(config) => Some(Box::new(tls_session(config, host)?)),
                        None => None,
                    };
                    return Ok(Link {
                        socket,
                        tls,
                        sent: 0,
                    });
                }
                Err(failure) => {
                    log::debug!("connecting to {address}: {}", failure.reason);
                    let timed_out = failure.reason.contains("no answer");
                    last = failure;
                    if timed_out || stopped() {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// The socket's descriptor, to wait on.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The socket's controls.
    pub fn control(&self) -> SocketControl {
        SocketControl::of(&self.socket)
    }

    /// Bytes written to the socket so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// True while TLS records wait to be written.
    pub fn tls_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes waiting TLS records; true when none is left.
    pub fn flush(&mut self) -> Result<bool, LinkFailure> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(true);
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.socket) {
                Ok(n) => self.sent += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(io_failure(&e)),
            }
        }
        Ok(true)
    }

    /// Hands up to `data.len()` bytes to the network; returns how many were taken (0 when the
    /// socket is full).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, LinkFailure> {
        if self.tls.is_some() {
            if !self.flush()? {
                return Ok(0);
            }
            let tls = self.tls.as_mut().expect("checked");
            let taken = tls.writer().write(data).map_err(|e| io_failure(&e))?;
            self.flush()?;
            return Ok(taken);
        }
        match self.socket.write(data) {
            Ok(n) => {
                self.sent += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(io_failure(&e)),
        }
    }

    /// Reads what has arrived into `into` (plain bytes, after TLS).
    pub fn read(&mut self, into: &mut Vec<u8>) -> Result<Received, LinkFailure> {
        let mut buffer = [0u8; 16 * 1024];
        let Some(tls) = self.tls.as_mut() else {
            loop {
                match self.socket.read(&mut buffer) {
                    Ok(0) => return Ok(Received::Closed),
                    Ok(n) => into.extend_from_slice(&buffer[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Received::Bytes),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_failure(&e)),
                }
            }
        };
        let mut closed = false;
        loop {
            match tls.read_tls(&mut self.socket) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure(&e)),
            }
            let state = tls.process_new_packets().map_err(|e| {
                // Send the alert that says why, if the socket takes it.
                let _ = tls.write_tls(&mut self.socket);
                tls_failure(&e)
            })?;
            if state.plaintext_bytes_to_read() > 0 {
                let mut plain = vec![0u8; state.plaintext_bytes_to_read()];
                tls.reader()
                    .read_exact(&mut plain)
                    .map_err(|e| io_failure(&e))?;
                into.extend_from_slice(&plain);
            }
            if state.peer_has_closed() {
                closed = true;
                break;
            }
        }
        self.flush()?;
        Ok(if closed {
            Received::Closed
        } else {
            Received::Bytes
        })
    }

    /// Closes the sending side in order (the server sees the end of the stream).
    pub fn shutdown(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let _ = self.flush();
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }
}

/// Connects one address without blocking the thread.
fn connect_one(
    address: SocketAddr,
    waker: &Waker,
    deadline: Instant,
    stopped: &dyn Fn() -> bool,
) -> Result<TcpStream, LinkFailure> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(|e| io_failure(&e))?;
    socket.set_nonblocking(true).map_err(|e| io_failure(&e))?;
    // Small audio messages go out at once rather than waiting for the previous ones' ACK.
    let _ = socket.set_tcp_nodelay(true);
    let control = SocketControl::of(&socket);
    control.limit_unsent(UNSENT_LIMIT);
    match socket.connect(&SockAddr::from(address)) {
        Ok(()) => return Ok(socket.into()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(io_failure(&e)),
    }
    loop {
        if stopped() {
            return Err(LinkFailure {
                cause: IngestCause::Other,
                reason: "stopped while connecting".into(),
            });
        }
        if Instant::now() >= deadline {
            return Err(LinkFailure {
                cause: IngestCause::Unreachable,
                reason: format!("no answer from {address}"),
            });
        }
        let ready = waker.wait(Some((socket.as_raw_fd(), true)), Some(deadline));
        if ready.writable || ready.failed {
            return match socket.take_error() {
                Ok(None) => Ok(socket.into()),
                Ok(Some(e)) | Err(e) => Err(io_failure(&e)),
            };
        }
    }
}

fn tls_session(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<ClientConnection, LinkFailure> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| LinkFailure {
        cause: IngestCause::Tls(crate::error::TlsFailure::NameMismatch),
        reason: format!("`{host}` is not a name TLS can check: {e}"),
    })?;
    ClientConnection::new(config.clone(), name).map_err(|e| tls_failure(&e))
}

/// A socket error, typed.
pub(crate) fn io_failure(error: &std::io::Error) -> LinkFailure {
    let cause = match error.kind() {
        ErrorKind::ConnectionRefused => IngestCause::Refused,
        ErrorKind::TimedOut | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            IngestCause::Unreachable
        }
        _ => IngestCause::Broken,
    };
    LinkFailure {
        cause,
        reason: error.to_string(),
    }
}

fn tls_failure(error: &rustls::Error) -> LinkFailure {
    LinkFailure {
        cause: IngestCause::Tls(tls::failure_of(error)),
        reason: format!("TLS: {error}"),
    }
}
