//! Keeping the kernel from hiding a slow link: rtmp2sink writes into an ordinary TCP socket,
//! whose send buffer grows to megabytes. On a 300 kbit/s link that is tens of seconds of media
//! the send window can neither see nor drop, and the socket reports it as "accepted". The uplink
//! moves media into the connection only while the socket holds less than [`UNSENT_LIMIT`] not yet
//! sent (read with `SIOCOUTQNSD`), and sets `TCP_NOTSENT_LOWAT` to the same; rtmp2sink writes a
//! whole message at a time past that mark, so the read is what keeps the backlog in the send
//! window, where it is measured and dropped by whole GOPs. A connection given up is closed with a reset,
//! so that it delivers nothing stale when the link returns. rtmp2sink does not expose its socket,
//! so the socket is found among the process's own descriptors by its remote port (Linux and
//! Android with /proc; elsewhere nothing is changed).

/// Bytes the kernel may hold unsent per live socket: about 0.1 s at 1.5 Mbit/s.
pub(crate) const UNSENT_LIMIT: u32 = 16 * 1024;

/// The TCP sockets of this process connected to an ingest port: descriptor and inode, found
/// once; the inode tells whether the descriptor still names the same socket.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct IngestSockets {
    sockets: Vec<(i32, u64)>,
}

impl IngestSockets {
    /// The established TCP sockets of this process whose remote port is `remote_port`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn find(remote_port: u16) -> Self {
        let inodes: Vec<u64> = ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .flat_map(|table| established_to(&table, remote_port))
            .collect();
        if inodes.is_empty() {
            return IngestSockets::default();
        }
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return IngestSockets::default();
        };
        let sockets = fds
            .flatten()
            .filter_map(|entry| {
                let fd = entry.file_name().to_str()?.parse::<i32>().ok()?;
                let link = std::fs::read_link(entry.path()).ok()?;
                let inode = socket_inode(&link.to_string_lossy())?;
                inodes.contains(&inode).then_some((fd, inode))
            })
            .collect();
        IngestSockets { sockets }
    }

    /// Elsewhere no socket is found.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn find(_remote_port: u16) -> Self {
        IngestSockets::default()
    }

    /// How many sockets were found.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Limits each socket's unsent bytes to `bytes`; returns how many took it.
    pub fn limit_unsent(&self, bytes: u32) -> usize {
        self.for_each_fd(|fd| sys::set_unsent_limit(fd, bytes))
    }

    /// Caps how fast each socket sends, in kbit/s (`SO_MAX_PACING_RATE`); returns how many took
    /// it.
    pub fn limit_pacing(&self, kbps: u32) -> usize {
        let bytes_per_second = kbps.saturating_mul(125);
        self.for_each_fd(|fd| sys::set_max_pacing_rate(fd, bytes_per_second))
    }

    /// Makes closing each socket drop what it still holds (a reset instead of a graceful close):
    /// a connection given up during an outage must not deliver stale media when the link returns,
    /// which would keep the ingest's publisher slot busy and refuse the new connection.
    pub fn abort_on_close(&self) -> usize {
        self.for_each_fd(sys::set_linger_zero)
    }

    /// Bytes the kernel holds not yet sent, over the sockets still open; `None` when there is
    /// no socket to ask (none found, or not on Linux or Android).
    pub fn unsent_bytes(&self) -> Option<u64> {
        let mut total = None;
        for &(fd, inode) in &self.sockets {
            if sys::still_open(fd, inode)
                && let Some(bytes) = sys::unsent(fd)
            {
                *total.get_or_insert(0) += bytes;
            }
        }
        total
    }

    /// Runs `f` on the descriptor of each socket still open; returns how many succeeded.
    fn for_each_fd(&self, f: impl Fn(i32) -> bool) -> usize {
        self.sockets
            .iter()
            .filter(|&&(fd, inode)| sys::still_open(fd, inode) && f(fd))
            .count()
    }
}

/// The socket calls, on Linux and Android (rtmp2sink's descriptors belong to this process and
/// stay open while it uses them; each call changes or reads nothing but the socket's buffering,
/// pacing or close behaviour).
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys {
    /// `SO_MAX_PACING_RATE` in the generic socket ABI (x86, ARM, AArch64, RISC-V: every Android
    /// ABI); the libc crate does not define it, and other ABIs number it differently.
    #[cfg(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ))]
    const SO_MAX_PACING_RATE: Option<libc::c_int> = Some(47);
    #[cfg(not(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )))]
    const SO_MAX_PACING_RATE: Option<libc::c_int> = None;

    /// True while descriptor `fd` still names the socket with `inode` (not closed, not reused).
    // `st_ino` is narrower than u64 on some 32-bit targets.
    #[allow(clippy::useless_conversion)]
    pub fn still_open(fd: i32, inode: u64) -> bool {
        // SAFETY: fstat only fills the zeroed struct it is given; a closed descriptor fails.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        unsafe { libc::fstat(fd, &mut stat) == 0 && u64::from(stat.st_ino) == inode }
    }

    /// `SIOCOUTQNSD`: the bytes queued in the socket that TCP has not sent yet.
    pub fn unsent(fd: i32) -> Option<u64> {
        let mut bytes: libc::c_int = 0;
        // SAFETY: the ioctl writes one int into `bytes`.
        let ok = unsafe { libc::ioctl(fd, libc::SIOCOUTQNSD as _, &mut bytes) } == 0;
        ok.then(|| u64::try_from(bytes).unwrap_or(0))
    }

    /// `TCP_NOTSENT_LOWAT`: the kernel takes more from the writer only below `bytes` unsent.
    pub fn set_unsent_limit(fd: i32, bytes: u32) -> bool {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        set_option(fd, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, &value)
    }

    /// `SO_MAX_PACING_RATE`: TCP spreads what it sends at no more than `bytes_per_second`.
    pub fn set_max_pacing_rate(fd: i32, bytes_per_second: u32) -> bool {
        SO_MAX_PACING_RATE
            .is_some_and(|name| set_option(fd, libc::SOL_SOCKET, name, &bytes_per_second))
    }

    /// `SO_LINGER` on with a zero timeout: close() resets the connection and drops unsent data.
    pub fn set_linger_zero(fd: i32) -> bool {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        set_option(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger)
    }

    fn set_option<T>(fd: i32, level: libc::c_int, name: libc::c_int, value: &T) -> bool {
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

/// Elsewhere no socket is ever found, so nothing is read or changed.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod sys {
    pub fn still_open(_fd: i32, _inode: u64) -> bool {
        false
    }
    pub fn unsent(_fd: i32) -> Option<u64> {
        None
    }
    pub fn set_unsent_limit(_fd: i32, _bytes: u32) -> bool {
        false
    }
    pub fn set_max_pacing_rate(_fd: i32, _bytes_per_second: u32) -> bool {
        false
    }
    pub fn set_linger_zero(_fd: i32) -> bool {
        false
    }
}

/// Inodes of the established sockets in a /proc/net/tcp table whose remote port is `port`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn established_to(table: &str, port: u16) -> Vec<u64> {
    const ESTABLISHED: &str = "01";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote = fields.get(2)?;
            let remote_port = u16::from_str_radix(remote.rsplit(':').next()?, 16).ok()?;
            (remote_port == port && *fields.get(3)? == ESTABLISHED)
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// The inode of a `socket:[N]` descriptor link.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:8A2F 0100007F:0797 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1
   1: 0100007F:8A30 0100007F:0797 06 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:8A31 0100007F:01BB 01 00000000:00000000 00:00000000 00000000     0        0 4244 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn finds_established_sockets_by_remote_port() {
        // 0x0797 = 1943; the second row is in TIME_WAIT, the third goes to port 443.
        assert_eq!(established_to(TABLE, 1943), [4242]);
        assert_eq!(established_to(TABLE, 443), [4244]);
        assert!(established_to(TABLE, 1935).is_empty());
        assert!(established_to("", 1943).is_empty());
    }

    #[test]
    fn reads_socket_links_only() {
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("pipe:[4242]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn tunes_reads_and_aborts_a_real_connection() {
        use std::io::{Read, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let sockets = IngestSockets::find(port);
        assert_eq!(sockets.len(), 1, "the client side only");
        assert_eq!(sockets.unsent_bytes(), Some(0));
        assert_eq!(sockets.limit_unsent(UNSENT_LIMIT), 1);
        assert_eq!(sockets.limit_pacing(300), 1);
        // The server reads nothing: once its window is full, what the client writes stays unsent.
        client.set_nonblocking(true).unwrap();
        let chunk = [7u8; 64 * 1024];
        let mut written = 0usize;
        for _ in 0..1000 {
            match client.write(&chunk) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let unsent = sockets.unsent_bytes().expect("an open socket");
        assert!(
            unsent > 0 && unsent <= written as u64,
            "{unsent} unsent of {written}"
        );
        assert_eq!(sockets.abort_on_close(), 1);
        drop(client);
        assert_eq!(sockets.unsent_bytes(), None, "a closed socket is not read");
        // A reset, not an orderly end of stream (after whatever had arrived before it).
        let mut buffer = vec![0u8; 64 * 1024];
        let mut read = server.read(&mut buffer);
        for _ in 0..=written / buffer.len() + 1 {
            if !matches!(read, Ok(n) if n > 0) {
                break;
            }
            read = server.read(&mut buffer);
        }
        assert!(
            read.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        assert_eq!(IngestSockets::find(port).len(), 0);
    }
}
