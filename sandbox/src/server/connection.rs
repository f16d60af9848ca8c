//! Connections a handler can cut without answering, as a dropped network would.
//!
//! Every accepted TCP stream is wrapped so that, once its [`ConnectionAbort`] is triggered, reads
//! and writes fail: hyper then closes the socket without having written a byte of the response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be aborted from a handler.
pub struct AbortableListener(pub TcpListener);

/// An accepted connection with its abort switch.
pub struct AbortableStream {
    inner: TcpStream,
    abort: ConnectionAbort,
}

impl AbortableStream {
    /// Wraps an accepted TCP stream (with Nagle off: answers go out at once).
    pub fn new(inner: TcpStream) -> AbortableStream {
        let _ = inner.set_nodelay(true);
        AbortableStream {
            inner,
            abort: ConnectionAbort::default(),
        }
    }

    /// The switch that cuts this connection.
    pub fn abort_switch(&self) -> ConnectionAbort {
        self.abort.clone()
    }
}

/// The switch that cuts one connection; handlers find it as `ConnectInfo<ConnectionAbort>`.
#[derive(Clone, Default)]
pub struct ConnectionAbort(Arc<AtomicBool>);

impl ConnectionAbort {
    /// Cuts the connection: the response being prepared is never written.
    pub fn abort(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> io::Result<()> {
        if self.0.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut by a sandbox fault",
            ))
        } else {
            Ok(())
        }
    }
}

impl Listener for AbortableListener {
    type Io = AbortableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => return (AbortableStream::new(inner), addr),
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    log::warn!("sandbox: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, AbortableListener>> for ConnectionAbort {
    fn connect_info(stream: IncomingStream<'_, AbortableListener>) -> Self {
        stream.io().abort_switch()
    }
}

impl AsyncRead for AbortableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.abort.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.abort.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.abort.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.abort.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
