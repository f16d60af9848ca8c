//! The delay relay: listens on the ingest side of the lab and forwards TCP streams and UDP
//! datagrams to a server on the ingest namespace's loopback, each after the current one-way
//! delay, in both directions, keeping order. Buffers are bounded: a full TCP queue stops reading
//! (backpressure), a full UDP queue drops datagrams (as a router would).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::NetLabError;
use super::ns;

/// How often blocked relay threads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// Bytes one TCP direction may hold before it stops reading.
const TCP_QUEUE_BYTES: usize = 2 << 20;
/// Read size of TCP relaying.
const TCP_CHUNK: usize = 16 << 10;
/// Datagrams one UDP direction may hold before it drops.
const UDP_QUEUE_DATAGRAMS: usize = 4096;
/// UDP peers tracked at once; the least recently active is forgotten beyond this.
const UDP_MAX_PEERS: usize = 256;
/// How long the relay tries to reach the server for a new TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long stopping waits for connection threads to notice.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A running relay for one server port, TCP and UDP on the same relay port.
pub(crate) struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pumps: Arc<AtomicUsize>,
}

impl Relay {
    /// Listens on `listen` (an address of namespace `ns`) and forwards to `127.0.0.1:target`
    /// inside `ns`, delaying each direction by `delay_ms` as it is at the time data arrives.
    pub(crate) fn start(
        ns: &str,
        listen: IpAddr,
        target: u16,
        delay_ms: Arc<AtomicU32>,
    ) -> Result<Relay, NetLabError> {
        let (tcp, udp) = ns::run_in(ns, || bind_pair(listen))??;
        let addr = tcp.local_addr()?;
        tcp.set_nonblocking(true)?;
        udp.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let pumps = Arc::new(AtomicUsize::new(0));
        let server = SocketAddr::from((Ipv4Addr::LOCALHOST, target));
        let mut relay = Relay {
            addr,
            stop: stop.clone(),
            threads: Vec::new(),
            pumps: pumps.clone(),
        };
        let (s, d) = (stop.clone(), delay_ms.clone());
        let name = format!("netlab-tcp-{target}");
        relay.threads.push(ns::spawn_in(ns, &name, move || {
            accept_loop(tcp, server, d, s, pumps)
        })?);
        let name = format!("netlab-udp-{target}");
        relay.threads.push(ns::spawn_in(ns, &name, move || {
            udp_loop(udp, server, delay_ms, stop)
        })?);
        Ok(relay)
    }

    /// The address publishers dial (TCP and UDP).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let deadline = Instant::now() + STOP_WAIT;
        while self.pumps.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A TCP listener and a UDP socket on the same free port of `ip`.
fn bind_pair(ip: IpAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    let mut last = None;
    for _ in 0..20 {
        let tcp = TcpListener::bind((ip, 0))?;
        match UdpSocket::bind(tcp.local_addr()?) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

fn accept_loop(
    listener: TcpListener,
    server: SocketAddr,
    delay_ms: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    pumps: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => {
                log::warn!("netlab relay: accept: {e}");
                std::thread::sleep(TICK);
                continue;
            }
        };
        let upstream = match TcpStream::connect_timeout(&server, CONNECT_TIMEOUT) {
            Ok(upstream) => upstream,
            Err(e) => {
                log::warn!("netlab relay: cannot reach {server}: {e}");
                continue;
            }
        };
        if let Err(e) = start_pumps(client, upstream, &delay_ms, &stop, &pumps) {
            log::warn!("netlab relay: {e}");
        }
    }
}

fn start_pumps(
    client: TcpStream,
    upstream: TcpStream,
    delay_ms: &Arc<AtomicU32>,
    stop: &Arc<AtomicBool>,
    pumps: &Arc<AtomicUsize>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    for s in [&client, &upstream] {
        s.set_nodelay(true)?;
        s.set_write_timeout(Some(TICK))?;
    }
    for (src, dst) in [
        (client.try_clone()?, upstream.try_clone()?),
        (upstream, client),
    ] {
        let (delay_ms, stop, count) = (delay_ms.clone(), stop.clone(), pumps.clone());
        count.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("netlab-pump".into())
            .spawn(move || {
                pump(&src, &dst, &delay_ms, &stop);
                count.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            pumps.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
    }
    Ok(())
}

/// Copies `src` to `dst`, each chunk held until its arrival time plus the delay. On end of
/// stream, forwards the half-close; on an error or stop, shuts both sockets down.
fn pump(src: &TcpStream, dst: &TcpStream, delay_ms: &AtomicU32, stop: &AtomicBool) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut queued = 0;
    let mut eof = false;
    let mut buf = vec![0; TCP_CHUNK];
    let failed = loop {
        if stop.load(Ordering::Relaxed) {
            break true;
        }
        let now = Instant::now();
        if queue.front().is_some_and(|(due, _)| *due <= now) {
            let (_, chunk) = queue.pop_front().expect("front exists");
            queued -= chunk.len();
            if write_all(dst, &chunk, stop).is_err() {
                break true;
            }
            continue;
        }
        let until_due = queue.front().map(|(due, _)| *due - now);
        if eof || queued >= TCP_QUEUE_BYTES {
            match until_due {
                Some(wait) => std::thread::sleep(wait.min(TICK)),
                None => break false,
            }
            continue;
        }
        // poll(2) rather than a socket read timeout, which counts in scheduler ticks.
        if !wait_readable(&[src.as_raw_fd()], until_due.unwrap_or(TICK).min(TICK)) {
            continue;
        }
        match (&*src).read(&mut buf) {
            Ok(0) => eof = true,
            Ok(n) => {
                let delay = Duration::from_millis(delay_ms.load(Ordering::Relaxed).into());
                queue.push_back((Instant::now() + delay, buf[..n].to_vec()));
                queued += n;
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break true,
        }
    };
    if failed {
        let _ = src.shutdown(Shutdown::Both);
        let _ = dst.shutdown(Shutdown::Both);
    } else {
        let _ = dst.shutdown(Shutdown::Write);
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Writes all of `data`, retrying after write timeouts until `stop` is set.
fn write_all(mut dst: &TcpStream, mut data: &[u8], stop: &AtomicBool) -> std::io::Result<()> {
    while !data.is_empty() {
        match dst.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if is_timeout(&e) && !stop.load(Ordering::Relaxed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A UDP peer of the relay and its own socket towards the server.
struct Peer {
    addr: SocketAddr,
    upstream: UdpSocket,
    last: Instant,
}

/// Datagrams waiting for their time, with the peer they come from or go to.
type DatagramQueue = VecDeque<(Instant, SocketAddr, Vec<u8>)>;

fn udp_loop(front: UdpSocket, server: SocketAddr, delay_ms: Arc<AtomicU32>, stop: Arc<AtomicBool>) {
    let mut peers: Vec<Peer> = Vec::new();
    let mut to_server = DatagramQueue::new();
    let mut to_peer = DatagramQueue::new();
    let mut buf = vec![0; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while to_server.front().is_some_and(|(due, _, _)| *due <= now) {
            let (_, from, data) = to_server.pop_front().expect("front exists");
            if let Some(peer) = peers.iter().find(|p| p.addr == from) {
                let _ = peer.upstream.send(&data);
            }
        }
        while to_peer.front().is_some_and(|(due, _, _)| *due <= now) {
            let (_, to, data) = to_peer.pop_front().expect("front exists");
            let _ = front.send_to(&data, to);
        }
        let next_due = [to_server.front(), to_peer.front()]
            .into_iter()
            .flatten()
            .map(|(due, _, _)| *due - now)
            .min();
        let fds: Vec<RawFd> = std::iter::once(front.as_raw_fd())
            .chain(peers.iter().map(|p| p.upstream.as_raw_fd()))
            .collect();
        wait_readable(&fds, next_due.unwrap_or(TICK).min(TICK));
        let delay = Duration::from_millis(delay_ms.load(Ordering::Relaxed).into());
        let due = Instant::now() + delay;
        while let Ok((n, from)) = front.recv_from(&mut buf) {
            if to_server.len() >= UDP_QUEUE_DATAGRAMS {
                continue;
            }
            match peer_for(&mut peers, from, server) {
                Ok(()) => to_server.push_back((due, from, buf[..n].to_vec())),
                Err(e) => log::warn!("netlab relay: udp socket towards {server}: {e}"),
            }
        }
        for peer in &mut peers {
            // Errors here are ICMP "port unreachable" from a server not listening: skipped.
            while let Ok(n) = peer.upstream.recv(&mut buf) {
                peer.last = Instant::now();
                if to_peer.len() < UDP_QUEUE_DATAGRAMS {
                    to_peer.push_back((due, peer.addr, buf[..n].to_vec()));
                }
            }
        }
    }
}

/// Makes sure `from` has a socket towards the server, forgetting the stalest peer when full.
fn peer_for(peers: &mut Vec<Peer>, from: SocketAddr, server: SocketAddr) -> std::io::Result<()> {
    if let Some(peer) = peers.iter_mut().find(|p| p.addr == from) {
        peer.last = Instant::now();
        return Ok(());
    }
    if peers.len() >= UDP_MAX_PEERS
        && let Some(stalest) = (0..peers.len()).min_by_key(|&i| peers[i].last)
    {
        peers.swap_remove(stalest);
    }
    let upstream = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    upstream.connect(server)?;
    upstream.set_nonblocking(true)?;
    peers.push(Peer {
        addr: from,
        upstream,
        last: Instant::now(),
    });
    Ok(())
}

/// Blocks until one of `fds` is readable (or has an error or end of stream) or `timeout`
/// passes; whether one is.
fn wait_readable(fds: &[RawFd], timeout: Duration) -> bool {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: poll(2) on a valid array of pollfd for open sockets, with its length.
    unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) > 0 }
}
