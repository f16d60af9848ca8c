//! Keeping the kernel from hiding a slow link. A TCP socket's send buffer grows to megabytes: on
//! a 300 kbit/s link that is tens of seconds of media the send window can neither see nor drop.
//! The publisher owns its socket, so every control acts on that one descriptor and nothing else
//! in the process:
//! - `TCP_NOTSENT_LOWAT` (Linux, Android, Darwin) makes the socket report itself writable only
//!   while it holds less than [`UNSENT_LIMIT`] not yet sent;
//! - the unsent bytes are read with `SIOCOUTQNSD` (Linux, Android) or `SO_NWRITE` (Darwin), and the
//!   publisher writes at most [`WRITE_CHUNK`] at a time, only below the limit, so the kernel never
//!   holds more than the limit plus one chunk;
//! - `SO_MAX_PACING_RATE` (Linux, Android) caps how fast TCP sends;
//! - a connection given up is closed with a reset (`SO_LINGER` 0), so that it delivers nothing
//!   stale when the link returns.

use std::os::fd::{AsRawFd, RawFd};

/// Bytes the kernel may hold unsent on the live socket: about 0.1 s at 1.5 Mbit/s.
pub(crate) const UNSENT_LIMIT: u32 = 16 * 1024;
/// The most the publisher hands the kernel in one write.
pub(crate) const WRITE_CHUNK: usize = 4096;

/// The controls of one TCP socket, by its descriptor (borrowed: the socket outlives it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketControl {
    fd: RawFd,
}

impl SocketControl {
    /// The controls of `socket`.
    pub fn of(socket: &impl AsRawFd) -> Self {
        SocketControl {
            fd: socket.as_raw_fd(),
        }
    }

    /// Limits the unsent bytes at which the socket still reports itself writable; false where
    /// the system has no such option.
    pub fn limit_unsent(self, bytes: u32) -> bool {
        sys::set_unsent_limit(self.fd, bytes)
    }

    /// Caps how fast the socket sends, in kbit/s (0 lifts the cap); false where the system
    /// cannot pace a socket.
    pub fn limit_pacing(self, kbps: u32) -> bool {
        let bytes_per_second = if kbps == 0 {
            u32::MAX
        } else {
            kbps.saturating_mul(125)
        };
        sys::set_max_pacing_rate(self.fd, bytes_per_second)
    }

    /// Makes closing the socket drop what it still holds (a reset instead of a graceful close):
    /// a connection given up during an outage must not deliver stale media when the link
    /// returns, which would keep the ingest's publisher slot busy and refuse the new connection.
    pub fn abort_on_close(self) -> bool {
        sys::set_linger_zero(self.fd)
    }

    /// Bytes the kernel holds not yet sent; `None` where the system cannot tell.
    pub fn unsent_bytes(self) -> Option<u64> {
        sys::unsent(self.fd)
    }

    /// Bytes the peer has received since the connection opened: the acknowledged bytes
    /// (`tcpi_bytes_acked` of `TCP_INFO`) and the segments it acknowledged selectively beyond a
    /// hole (`tcpi_sacked` full segments). Unlike the acknowledged bytes alone, it does not jump
    /// when a retransmission fills a hole. `None` off Linux and Android.
    pub fn delivered_bytes(self) -> Option<u64> {
        sys::delivered(self.fd)
    }
}

/// `SO_MAX_PACING_RATE` in the generic socket ABI (x86, ARM, AArch64, RISC-V: every Android
/// ABI); the libc crate does not define it, and other ABIs number it differently.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
))]
const SO_MAX_PACING_RATE: Option<libc::c_int> = Some(47);
#[cfg(not(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
)))]
const SO_MAX_PACING_RATE: Option<libc::c_int> = None;

/// `TCP_NOTSENT_LOWAT`: Linux and Android (in the libc crate) and Darwin (`netinet/tcp.h`,
/// 0x201, not in the libc crate).
#[cfg(any(target_os = "linux", target_os = "android"))]
const TCP_NOTSENT_LOWAT: libc::c_int = libc::TCP_NOTSENT_LOWAT;
#[cfg(any(target_os = "macos", target_os = "ios"))]
const TCP_NOTSENT_LOWAT: libc::c_int = 0x201;

/// The socket calls. Each one reads or changes nothing but the socket's buffering, pacing or
/// close behaviour.
mod sys {
    use super::*;

    /// `TCP_NOTSENT_LOWAT`: the socket is writable only below `bytes` unsent.
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios"
    ))]
    pub fn set_unsent_limit(fd: RawFd, bytes: u32) -> bool {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        set_option(fd, libc::IPPROTO_TCP, TCP_NOTSENT_LOWAT, &value)
    }

    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios"
    )))]
    pub fn set_unsent_limit(_fd: RawFd, _bytes: u32) -> bool {
        false
    }

    /// `SIOCOUTQNSD`: the bytes queued in the socket that TCP has not sent yet.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn unsent(fd: RawFd) -> Option<u64> {
        let mut bytes: libc::c_int = 0;
        // SAFETY: the ioctl writes one int into `bytes`.
        let ok = unsafe { libc::ioctl(fd, libc::SIOCOUTQNSD as _, &mut bytes) } == 0;
        ok.then(|| u64::try_from(bytes).unwrap_or(0))
    }

    /// `SO_NWRITE`: the bytes in the send buffer (not yet sent or not yet acknowledged).
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    pub fn unsent(fd: RawFd) -> Option<u64> {
        let mut bytes: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `bytes`.
        let ok = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_NWRITE,
                (&mut bytes as *mut libc::c_int).cast(),
                &mut len,
            )
        } == 0;
        ok.then(|| u64::try_from(bytes).unwrap_or(0))
    }

    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios"
    )))]
    pub fn unsent(_fd: RawFd) -> Option<u64> {
        None
    }

    /// The prefix of Linux's `struct tcp_info` (`linux/tcp.h`) up to `tcpi_bytes_acked`
    /// (Linux 4.1, so every Android kernel). The kernel copies as much as it has and says how
    /// much.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[repr(C)]
    #[derive(Default)]
    struct TcpInfo {
        states: [u8; 8],
        /// `tcpi_rto` to `tcpi_total_retrans`: `tcpi_snd_mss` is the third, `tcpi_sacked` the
        /// sixth.
        counters: [u32; 24],
        pacing_rates: [u64; 2],
        bytes_acked: u64,
    }

    /// The acknowledged bytes plus the selectively acknowledged segments (`TCP_INFO`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn delivered(fd: RawFd) -> Option<u64> {
        let mut info = TcpInfo::default();
        let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info`, a plain C struct.
        let ok = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut TcpInfo).cast(),
                &mut len,
            )
        } == 0;
        let (mss, sacked) = (info.counters[2], info.counters[5]);
        (ok && len as usize >= std::mem::size_of::<TcpInfo>())
            .then(|| info.bytes_acked + u64::from(sacked) * u64::from(mss))
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn delivered(_fd: RawFd) -> Option<u64> {
        None
    }

    /// `SO_MAX_PACING_RATE`: TCP spreads what it sends at no more than `bytes_per_second`.
    pub fn set_max_pacing_rate(fd: RawFd, bytes_per_second: u32) -> bool {
        SO_MAX_PACING_RATE
            .is_some_and(|name| set_option(fd, libc::SOL_SOCKET, name, &bytes_per_second))
    }

    /// `SO_LINGER` on with a zero timeout: close() resets the connection and drops unsent data.
    pub fn set_linger_zero(fd: RawFd) -> bool {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        set_option(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger)
    }

    fn set_option<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> bool {
        // SAFETY: `value` is a live `T` of the size passed; the kernel only reads it.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (value as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            ) == 0
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// The option's value on `fd`.
    fn option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`.
        let ok = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(ok, 0);
        value
    }

    /// Fills `client`'s socket until the kernel takes no more (the peer reads nothing).
    fn fill(client: &mut TcpStream) -> usize {
        client.set_nonblocking(true).unwrap();
        let chunk = [7u8; 64 * 1024];
        let mut written = 0;
        for _ in 0..1000 {
            match client.write(&chunk) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        written
    }

    /// Reads until the stream ends or fails; the last result.
    fn read_to_end(server: &mut TcpStream) -> std::io::Result<usize> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match server.read(&mut buffer) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    #[test]
    fn counts_what_the_peer_received() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut live = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let control = SocketControl::of(&live);
        let before = control.delivered_bytes().expect("TCP_INFO");
        live.write_all(&[3u8; 1_000_000]).unwrap();
        let mut got = vec![0u8; 1_000_000];
        peer.read_exact(&mut got).unwrap();
        // The acknowledgement follows the data by a round trip.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let delivered = loop {
            let delivered = control.delivered_bytes().unwrap() - before;
            if delivered >= 1_000_000 || std::time::Instant::now() > deadline {
                break delivered;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // The SYN counts as one byte.
        assert_eq!(delivered, 1_000_000);
    }

    #[test]
    fn controls_only_its_own_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Two sockets of this process to the same port: the live one and a bystander (an app's
        // HTTPS connection to the same ingest host, say).
        let mut live = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut live_peer, _) = listener.accept().unwrap();
        let mut other = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut other_peer, _) = listener.accept().unwrap();
        let other_fd = other.as_raw_fd();
        let lowat_before = option(other_fd, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT);

        let control = SocketControl::of(&live);
        assert_eq!(control.unsent_bytes(), Some(0));
        assert!(control.limit_unsent(UNSENT_LIMIT));
        assert!(control.limit_pacing(300));
        assert_eq!(
            option(live.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT),
            UNSENT_LIMIT as libc::c_int
        );
        // With the limit set, the kernel stops taking writes near it: the unsent bytes stay
        // small while the peer reads nothing.
        let written = fill(&mut live);
        let unsent = control.unsent_bytes().expect("an open socket");
        assert!(
            unsent > 0 && unsent <= written as u64,
            "{unsent} of {written}"
        );
        assert!(control.abort_on_close());
        drop(live);
        let live_end = read_to_end(&mut live_peer);
        assert!(
            live_end
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the live socket is reset: {live_end:?}"
        );

        // The bystander kept its options and closes gracefully.
        assert_eq!(
            option(other_fd, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT),
            lowat_before
        );
        let other_written = fill(&mut other);
        assert!(
            other_written > 4 * UNSENT_LIMIT as usize,
            "the bystander's buffer is not limited ({other_written} bytes taken)"
        );
        drop(other);
        assert!(
            matches!(read_to_end(&mut other_peer), Ok(0)),
            "the bystander ends with an orderly close, after all it wrote"
        );
    }
}
