//! A TCP relay on loopback whose connections can be cut: a publisher losing its network, as the
//! ingest sees it (the connection closes), without root or network namespaces. What publishers
//! send through it can also be capped in rate: a slow uplink.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running relay; stopped (every connection closed) when dropped.
pub struct Relay {
    port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    cut: AtomicBool,
    /// Cap on what clients send toward the target, kbit/s; 0: none.
    upstream_kbit: AtomicU32,
    connections: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn close_all(&self) {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        for stream in connections.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Relay {
    /// Relays connections to a free loopback port on to `target`.
    pub fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("the relay binds");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("the relay's address").port();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(&listener, target, &accepting));
        Relay {
            port,
            shared,
            thread: Some(thread),
        }
    }

    /// The loopback port to connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every relayed connection and closes new ones at once, until [`Relay::restore`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Caps what clients send toward the target at `kbit` kbit/s from now on (`None`: no cap),
    /// on every connection. The relay then reads from the client only as fast as the cap, so
    /// the client's socket fills as it would on a slow uplink.
    pub fn limit_upstream(&self, kbit: Option<u32>) {
        self.shared
            .upstream_kbit
            .store(kbit.unwrap_or(0), Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.close_all();
    }
}

fn accept_loop(listener: &TcpListener, target: SocketAddr, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) if !shared.cut.load(Ordering::SeqCst) => {
                if let Err(e) = relay(client, target, shared) {
                    eprintln!("relay: cannot relay a connection to {target}: {e}");
                }
            }
            Ok((refused, _)) => drop(refused),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => eprintln!("relay: accept failed: {e}"),
        }
    }
}

/// Pumps both directions on their own threads; each ends when its source closes.
fn relay(client: TcpStream, target: SocketAddr, shared: &Arc<Shared>) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(target)?;
    let (up_from, up_to) = (client.try_clone()?, server.try_clone()?);
    let capped = shared.clone();
    std::thread::spawn(move || pump_capped(up_from, up_to, &capped));
    let (down_from, down_to) = (server.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || pump(down_from, down_to));
    let mut connections = shared.connections.lock().unwrap_or_else(|p| p.into_inner());
    connections.extend([client, server]);
    Ok(())
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Like [`pump`], pausing after each chunk for as long as it takes at the upstream cap.
fn pump_capped(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut chunk = [0u8; 4096];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&chunk[..n]).is_err() {
            break;
        }
        let kbit = shared.upstream_kbit.load(Ordering::SeqCst);
        if kbit > 0 {
            std::thread::sleep(Duration::from_secs_f64(
                n as f64 * 8.0 / (f64::from(kbit) * 1000.0),
            ));
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
