//! The network lab with real traffic: rate, delay, loss, outages, timeline changes, cleanup and
//! `run_command`. These need root, `ip`, `tc` and `nft`; without them each test prints
//! `skipped: <reason>` and passes, or fails where `FIELDCAST_REQUIRE_LAB` is set (CI).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fieldcast_sandbox::netlab::{self, NetLab, Profile};

fn profile(steps: &str) -> Profile {
    Profile::parse(&format!(r#"{{"name":"test","steps":{steps}}}"#), "test").unwrap()
}

fn our_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("fcl-{}-", std::process::id())))
        .map(str::to_string)
        .collect()
}

/// A TCP server on the ingest namespace's loopback that counts what arrives, exposed through
/// the lab; returns the address to dial and the receiver's (time, total bytes) samples.
fn tcp_sink(lab: &NetLab) -> (SocketAddr, thread::JoinHandle<Vec<(Instant, usize)>>) {
    let listener = lab
        .in_ingest(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .unwrap();
    let addr = lab.forward(listener.local_addr().unwrap().port()).unwrap();
    let receiver = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // A sender that vanishes without closing (a relay that keeps the connection) ends the
        // reading after 10 s of silence instead of hanging the test.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut samples = Vec::new();
        let (mut total, mut buf) = (0, vec![0; 64 << 10]);
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return samples,
                Ok(n) => {
                    total += n;
                    samples.push((Instant::now(), total));
                }
            }
        }
    });
    (addr, receiver)
}

/// Sends as fast as the lab lets from the publisher namespace to `addr` for `length`.
fn bulk_send(lab: &NetLab, addr: SocketAddr, length: Duration) {
    let mut stream = lab
        .in_publisher(|| TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
        .unwrap()
        .unwrap();
    let chunk = vec![0x5a; 16 << 10];
    let end = Instant::now() + length;
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < end {
        match stream.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("bulk send: {e}"),
        }
    }
    drop(stream);
}

/// Payload kbit/s received between `from` and `to`.
fn rate_kbit(samples: &[(Instant, usize)], from: Instant, to: Instant) -> f64 {
    let at = |t: Instant| {
        samples
            .iter()
            .take_while(|(when, _)| *when <= t)
            .last()
            .map_or(0, |(_, total)| *total)
    };
    (at(to) - at(from)) as f64 * 8.0 / 1000.0 / (to - from).as_secs_f64()
}

fn assert_near(what: &str, measured: f64, expected: f64, tolerance: f64) {
    println!("{what}: measured {measured:.1}, expected {expected:.1} ±{tolerance:.1}");
    assert!(
        (measured - expected).abs() <= tolerance,
        "{what}: measured {measured:.1}, expected {expected:.1} ±{tolerance:.1}"
    );
}

#[test]
fn rate_is_shaped_to_the_profile() {
    if !NetLab::available_or_skip() {
        return;
    }
    for (name, kbit) in [("good-4g", 5000.0), ("custom 1000 kbit/s", 1000.0)] {
        let p = match name {
            "good-4g" => Profile::builtin(name).unwrap(),
            _ => profile(r#"[{"at_s":0,"rate_kbit":1000}]"#),
        };
        let lab = NetLab::start(p).unwrap();
        let (addr, receiver) = tcp_sink(&lab);
        let start = Instant::now();
        bulk_send(&lab, addr, Duration::from_secs(4));
        let samples = receiver.join().unwrap();
        let measured = rate_kbit(
            &samples,
            start + Duration::from_secs(1),
            start + Duration::from_secs(4),
        );
        assert_near(&format!("{name}: TCP kbit/s"), measured, kbit, kbit * 0.25);
        // Steady, as behind a real bottleneck: no 400 ms under 60 % of the rate. A lab
        // whose veths pass TCP's 64 KB offload buffers drops them by the dozen behind the short
        // queue, and the flow stalls on retransmission timeouts.
        let at = |ms: u64| start + Duration::from_millis(ms);
        let slowest = (1_000..=3_600)
            .step_by(200)
            .map(|from| rate_kbit(&samples, at(from), at(from + 400)))
            .fold(f64::INFINITY, f64::min);
        println!("{name}: slowest 400 ms after the first second {slowest:.0} kbit/s");
        assert!(
            slowest >= kbit * 0.6,
            "{name}: a 400 ms window at {slowest:.0} kbit/s"
        );
    }
}

#[test]
fn base_delay_adds_to_the_round_trip() {
    if !NetLab::available_or_skip() {
        return;
    }
    let lab = NetLab::start(profile(r#"[{"at_s":0,"delay_ms":100}]"#)).unwrap();
    println!("shaping mode: {:?}", lab.shaping_mode());
    let listener = lab
        .in_ingest(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .unwrap();
    let addr = lab.forward(listener.local_addr().unwrap().port()).unwrap();
    let echo = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut byte = [0u8; 1];
        while let Ok(1) = stream.read(&mut byte) {
            stream.write_all(&byte).unwrap();
        }
    });
    let mut stream = lab
        .in_publisher(|| TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
        .unwrap()
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut rtts: Vec<f64> = (0..10)
        .map(|i| {
            let sent = Instant::now();
            stream.write_all(&[i]).unwrap();
            let mut back = [0u8; 1];
            stream.read_exact(&mut back).unwrap();
            assert_eq!(back[0], i);
            sent.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    drop(stream);
    echo.join().unwrap();
    rtts.sort_by(f64::total_cmp);
    println!("round trips (ms): {rtts:.1?}");
    assert_near("median RTT ms", rtts[rtts.len() / 2], 200.0, 60.0);
}

/// A UDP socket on the ingest namespace's loopback with a read timeout, and the address the
/// publisher sends to through the lab.
fn udp_server(lab: &NetLab, read_timeout: Duration) -> (UdpSocket, SocketAddr) {
    let server = lab
        .in_ingest(|| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .unwrap();
    let addr = lab.forward(server.local_addr().unwrap().port()).unwrap();
    server.set_read_timeout(Some(read_timeout)).unwrap();
    (server, addr)
}

/// Sends `count` numbered UDP datagrams through the lab, paced; returns the numbers received
/// with their arrival time after `lab.started()`.
fn udp_probe(lab: &NetLab, count: u32, every: Duration) -> Vec<(u32, Duration)> {
    let (server, addr) = udp_server(lab, Duration::from_millis(300));
    let started = lab.started();
    let sent_all = Arc::new(AtomicBool::new(false));
    let done = sent_all.clone();
    let receiver = thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        // Until a quiet read timeout after the last datagram was sent.
        loop {
            match server.recv(&mut buf) {
                Ok(n) => {
                    assert_eq!(n, 4);
                    let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
                    got.push((seq, started.elapsed()));
                }
                Err(_) if done.load(Ordering::SeqCst) => return got,
                Err(_) => {}
            }
        }
    });
    let client = lab
        .in_publisher(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .unwrap()
        .unwrap();
    let begin = Instant::now();
    for seq in 0..count {
        let _ = client.send_to(&seq.to_be_bytes(), addr);
        let next = begin + every * (seq + 1);
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    sent_all.store(true, Ordering::SeqCst);
    receiver.join().unwrap()
}

#[test]
fn random_loss_matches_the_profile() {
    if !NetLab::available_or_skip() {
        return;
    }
    for pct in [2.0, 10.0] {
        let lab = NetLab::start(profile(&format!(r#"[{{"at_s":0,"loss_pct":{pct}}}]"#))).unwrap();
        let sent = 4000;
        let got = udp_probe(&lab, sent, Duration::from_micros(250));
        let measured = 100.0 * (1.0 - got.len() as f64 / f64::from(sent));
        // 4.5 standard deviations of a binomial over `sent` samples.
        let sigma = (pct / 100.0 * (1.0 - pct / 100.0) / f64::from(sent)).sqrt() * 100.0;
        assert_near(
            &format!("UDP loss % ({sent} datagrams)"),
            measured,
            pct,
            4.5 * sigma,
        );
    }
}

#[test]
fn nothing_passes_during_an_outage_and_traffic_resumes_after() {
    if !NetLab::available_or_skip() {
        return;
    }
    let lab = NetLab::start(profile(
        r#"[{"at_s":0,"outage":false},{"at_s":1.5,"outage":true},{"at_s":3.5,"outage":false}]"#,
    ))
    .unwrap();
    let got = udp_probe(&lab, 500, Duration::from_millis(10));
    let applied = lab.applied();
    assert_eq!(applied.len(), 3, "{applied:?}");
    let (down, up) = (applied[1].applied_after, applied[2].applied_after);
    println!("outage applied at {down:?}, lifted at {up:?}");
    // Applying a change takes a few milliseconds; `applied_after` is when it was complete.
    let grace = Duration::from_millis(50);
    let during: Vec<_> = got
        .iter()
        .filter(|(_, t)| *t > down + grace && *t + grace < up)
        .collect();
    assert!(during.is_empty(), "passed during the outage: {during:?}");
    assert!(
        got.iter().any(|(_, t)| *t < down),
        "nothing before the outage"
    );
    let first_after = got
        .iter()
        .map(|(_, t)| *t)
        .find(|t| *t >= up)
        .expect("traffic after the outage");
    println!(
        "first datagram {:?} after the link returned",
        first_after - up
    );
    assert!(first_after - up < Duration::from_secs(1));
}

/// A UDP server on the ingest namespace's loopback that counts the bytes arriving, exposed
/// through the lab; returns the address to send to and the receiver's (time, total bytes)
/// samples, which end after half a second of silence.
fn udp_sink(lab: &NetLab) -> (SocketAddr, thread::JoinHandle<Vec<(Instant, usize)>>) {
    let (server, addr) = udp_server(lab, Duration::from_millis(500));
    let receiver = thread::spawn(move || {
        let mut samples = Vec::new();
        let (mut total, mut buf) = (0, vec![0; 2048]);
        while let Ok(n) = server.recv(&mut buf) {
            total += n;
            samples.push((Instant::now(), total));
        }
        samples
    });
    (addr, receiver)
}

/// Offers 6000 kbit/s of UDP payload from the publisher namespace to `addr` until `until`:
/// five 1200-byte datagrams every 8 ms.
fn udp_flood(lab: &NetLab, addr: SocketAddr, until: Instant) {
    let client = lab
        .in_publisher(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
        .unwrap()
        .unwrap();
    let datagram = [0x5a; 1200];
    let begin = Instant::now();
    let mut ticks = 0;
    while Instant::now() < until {
        for _ in 0..5 {
            // The shaper drops what exceeds its rate; the sender never waits for it.
            let _ = client.send_to(&datagram, addr);
        }
        ticks += 1;
        let next = begin + Duration::from_millis(8) * ticks;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[test]
fn timeline_changes_are_applied_on_schedule() {
    if !NetLab::available_or_skip() {
        return;
    }
    // A paced UDP flow offered above every step measures the shaper itself: what arrives is
    // what the rate limiter lets through. A TCP flow would measure its own loss recovery too,
    // which at 1000 kbit/s behind a 300 ms queue comes in bursts and stalls of 200 ms and more.
    let lab = NetLab::start(profile(
        r#"[{"at_s":0,"rate_kbit":1000},{"at_s":2.5,"rate_kbit":4000},{"at_s":5,"rate_kbit":1500}]"#,
    ))
    .unwrap();
    let (addr, receiver) = udp_sink(&lab);
    udp_flood(&lab, addr, lab.started() + Duration::from_secs(7));
    let samples = receiver.join().unwrap();
    let applied = lab.applied();
    assert_eq!(applied.len(), 3, "{applied:?}");
    for (change, planned) in applied[1..].iter().zip([2.5, 5.0]) {
        let late = change.applied_after.as_secs_f64() - planned;
        println!(
            "change planned at {planned} s applied {:.0} ms late",
            late * 1000.0
        );
        assert!((0.0..0.25).contains(&late), "applied {late} s late");
    }
    let t = |s: f64| lab.started() + Duration::from_secs_f64(s);
    // The windows after a change start half a second after it, past the queue it left.
    for (what, from, to, kbit) in [
        ("kbit/s before the step up", 0.8, 2.4, 1000.0),
        ("kbit/s after the step up", 3.0, 4.9, 4000.0),
        ("kbit/s after the step down", 5.5, 7.0, 1500.0),
    ] {
        assert_near(what, rate_kbit(&samples, t(from), t(to)), kbit, kbit * 0.25);
    }
}

#[test]
fn drop_removes_everything_even_after_a_panic() {
    if !NetLab::available_or_skip() {
        return;
    }
    let names = {
        let lab = NetLab::start(Profile::builtin("rural-3g").unwrap()).unwrap();
        let names = vec![lab.publisher_ns().to_string(), lab.ingest_ns().to_string()];
        assert!(names.iter().all(|n| our_namespaces().contains(n)));
        names
    };
    let left = our_namespaces();
    assert!(names.iter().all(|n| !left.contains(n)), "left: {left:?}");

    let child: Mutex<Option<Child>> = Mutex::new(None);
    let panicked_names: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(|| {
        let lab = NetLab::start(Profile::builtin("flaky").unwrap()).unwrap();
        *panicked_names.lock().unwrap() = vec![lab.publisher_ns().into(), lab.ingest_ns().into()];
        let mut sleep = Command::new("sleep");
        sleep.arg("60").stdin(Stdio::null());
        lab.command_in_publisher(&mut sleep).unwrap();
        *child.lock().unwrap() = Some(sleep.spawn().unwrap());
        panic!("a failing test inside the lab");
    });
    assert!(outcome.is_err());
    let left = our_namespaces();
    let names = panicked_names.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| !left.contains(n)), "left: {left:?}");
    let mut child = child.into_inner().unwrap().expect("the child was started");
    let deadline = Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the process in the lab survived it"
        );
        thread::sleep(Duration::from_millis(20));
    };
    println!("process left in the lab ended: {status}");
}

#[test]
fn cleanup_stale_removes_labs_of_dead_processes_only() {
    if !NetLab::available_or_skip() {
        return;
    }
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let stale = format!("fcl-{dead_pid}-0-pub");
    let ip = |args: &[&str]| assert!(Command::new("ip").args(args).status().unwrap().success());
    ip(&["netns", "add", &stale]);
    let lab = NetLab::start(Profile::builtin("edge").unwrap()).unwrap();
    let removed = netlab::cleanup_stale();
    assert!(removed.contains(&stale), "{removed:?}");
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.contains(&stale));
    assert!(left.contains(lab.publisher_ns()), "a live lab was removed");
}

#[test]
fn run_command_publishes_to_nginx_in_the_ingest_namespace() {
    if !NetLab::available_or_skip() {
        return;
    }
    let argv = |script: &str| vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    assert_eq!(netlab::run_command("edge", &argv("exit 7")).unwrap(), 7);
    let publish = "test -n \"$FIELDCAST_NETLAB_INGEST\" && ffmpeg -hide_banner -loglevel error \
        -re -f lavfi -i testsrc=size=320x240:rate=15 -t 3 -c:v libx264 -preset ultrafast \
        -pix_fmt yuv420p -f flv \"$FIELDCAST_NETLAB_INGEST/netlab-test\"";
    let started = Instant::now();
    assert_eq!(netlab::run_command("good-4g", &argv(publish)).unwrap(), 0);
    println!("published 3 s through good-4g in {:?}", started.elapsed());
}

#[test]
fn user_profiles_load_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.json");
    std::fs::write(
        &path,
        r#"{"name":"mine","steps":[{"at_s":0,"rate_kbit":700,"delay_ms":90}]}"#,
    )
    .unwrap();
    let p = Profile::load(path.to_str().unwrap()).unwrap();
    assert_eq!(p.conditions_at(0.0).rate_kbit, Some(700));
    assert_eq!(Profile::load("flaky").unwrap().name, "flaky");
    std::fs::write(&path, r#"{"name":"mine","steps":[{"at_s":0,"delay":90}]}"#).unwrap();
    let err = Profile::load(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("mine.json") && err.contains("delay"), "{err}");
}
