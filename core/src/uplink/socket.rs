//! Keeping the kernel from hiding a slow link: rtmp2sink writes into an ordinary TCP socket,
//! whose send buffer grows to megabytes. On a 300 kbit/s link that is tens of seconds of media
//! the send window can neither see nor drop, and the socket reports it as "accepted". Limiting
//! the socket's not-yet-sent bytes (`TCP_NOTSENT_LOWAT`) leaves the backlog in the send window,
//! where it is measured and dropped by whole GOPs. rtmp2sink does not expose its socket, so the
//! socket is found among the process's own descriptors by its remote port (Linux and Android
//! with /proc; elsewhere nothing is changed).

/// Bytes the kernel may hold unsent per live socket: about 0.1 s at 1.5 Mbit/s.
pub(crate) const UNSENT_LIMIT: u32 = 16 * 1024;

/// Limits the unsent bytes of every established TCP socket of this process connected to
/// `remote_port`; returns how many sockets were changed.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn limit_unsent(remote_port: u16, bytes: u32) -> usize {
    let inodes: Vec<u64> = ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| established_to(&table, remote_port))
        .collect();
    if inodes.is_empty() {
        return 0;
    }
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut changed = 0;
    for entry in fds.flatten() {
        let Some(inode) = std::fs::read_link(entry.path())
            .ok()
            .and_then(|target| socket_inode(&target.to_string_lossy()))
        else {
            continue;
        };
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if !inodes.contains(&inode) {
            continue;
        }
        // The descriptor belongs to this process and stays open while rtmp2sink uses it; the
        // option changes nothing but the socket's unsent-bytes threshold.
        let value = bytes as libc::c_int;
        let ok = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        } == 0;
        changed += usize::from(ok);
    }
    changed
}

/// Elsewhere the kernel's buffer is left as it is.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn limit_unsent(_remote_port: u16, _bytes: u32) -> usize {
    0
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
    fn limits_a_real_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _server = listener.accept().unwrap();
        assert!(limit_unsent(port, UNSENT_LIMIT) >= 1);
    }
}
