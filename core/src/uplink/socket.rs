//! Keeping the kernel from hiding a slow link: rtmp2sink writes into an ordinary TCP socket,
//! whose send buffer grows to megabytes. On a 300 kbit/s link that is tens of seconds of media
//! the send window can neither see nor drop, and the socket reports it as "accepted". Limiting
//! the socket's not-yet-sent bytes (`TCP_NOTSENT_LOWAT`) leaves the backlog in the send window,
//! where it is measured and dropped by whole GOPs. A connection given up is closed with a reset,
//! so that it delivers nothing stale when the link returns. rtmp2sink does not expose its socket,
//! so the socket is found among the process's own descriptors by its remote port (Linux and
//! Android with /proc; elsewhere nothing is changed).

/// Bytes the kernel may hold unsent per live socket: about 0.1 s at 1.5 Mbit/s.
pub(crate) const UNSENT_LIMIT: u32 = 16 * 1024;

/// The TCP sockets of this process connected to an ingest port, found by their inodes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct IngestSockets {
    inodes: Vec<u64>,
}

impl IngestSockets {
    /// The established TCP sockets of this process whose remote port is `remote_port`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn find(remote_port: u16) -> Self {
        let inodes = ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .flat_map(|table| established_to(&table, remote_port))
            .collect();
        IngestSockets { inodes }
    }

    /// Elsewhere no socket is found.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn find(_remote_port: u16) -> Self {
        IngestSockets::default()
    }

    /// How many sockets were found.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inodes.len()
    }

    /// Limits each socket's unsent bytes to `bytes`; returns how many took it.
    pub fn limit_unsent(&self, bytes: u32) -> usize {
        self.for_each_fd(|fd| set_unsent_limit(fd, bytes))
    }

    /// Makes closing each socket drop what it still holds (a reset instead of a graceful close):
    /// a connection given up during an outage must not deliver stale media when the link returns,
    /// which would keep the ingest's publisher slot busy and refuse the new connection.
    pub fn abort_on_close(&self) -> usize {
        self.for_each_fd(set_linger_zero)
    }

    /// Runs `f` on the descriptor of each socket still open; returns how many succeeded.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn for_each_fd(&self, f: impl Fn(i32) -> bool) -> usize {
        if self.inodes.is_empty() {
            return 0;
        }
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return 0;
        };
        fds.flatten()
            .filter(|entry| {
                std::fs::read_link(entry.path())
                    .ok()
                    .and_then(|target| socket_inode(&target.to_string_lossy()))
                    .is_some_and(|inode| self.inodes.contains(&inode))
            })
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|fd| f(*fd))
            .count()
    }

    /// Elsewhere there is no descriptor to change.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn for_each_fd(&self, _f: impl Fn(i32) -> bool) -> usize {
        0
    }
}

/// `TCP_NOTSENT_LOWAT`: the kernel takes more from the writer only below `bytes` unsent.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_unsent_limit(fd: i32, bytes: u32) -> bool {
    let value = bytes as libc::c_int;
    // The descriptor belongs to this process and stays open while rtmp2sink uses it; the
    // option changes nothing but how much the kernel buffers.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// Elsewhere nothing is set.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_unsent_limit(_fd: i32, _bytes: u32) -> bool {
    false
}

/// `SO_LINGER` on with a zero timeout: close() resets the connection and drops unsent data.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_linger_zero(fd: i32) -> bool {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // As in `set_unsent_limit`: a descriptor of this process, only its close behaviour changes.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        ) == 0
    }
}

/// Elsewhere nothing is set.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_linger_zero(_fd: i32) -> bool {
    false
}

/// Inodes of the established sockets in a /proc/net/tcp table whose remote port is `port`.
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
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
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
    fn tunes_and_aborts_a_real_connection() {
        use std::io::Read;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let sockets = IngestSockets::find(port);
        assert_eq!(sockets.len(), 1, "the client side only");
        assert_eq!(sockets.limit_unsent(UNSENT_LIMIT), 1);
        assert_eq!(sockets.abort_on_close(), 1);
        drop(client);
        // A reset, not an orderly end of stream.
        let mut byte = [0u8; 1];
        let read = server.read(&mut byte);
        assert!(
            read.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        assert_eq!(IngestSockets::find(port).len(), 0);
    }
}
