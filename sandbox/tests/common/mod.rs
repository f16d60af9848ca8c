//! A small blocking HTTP/1.1 client over `TcpStream`, so tests see exactly what crossed the wire
//! (including connections closed without an answer), and helpers to start sandboxes.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use fieldcast_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

/// The write token of test sandboxes.
pub const TOKEN: &str = "sandbox-token";
/// The read-only token of test sandboxes.
pub const READ_ONLY: &str = "sandbox-readonly";

/// A sandbox without the RTMP ingest (fast; enough for everything but live sessions).
pub fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        ingest: false,
        ..SandboxOptions::default()
    })
    .expect("sandbox starts")
}

/// A sandbox with the supervised nginx-rtmp ingest.
pub fn sandbox_with_ingest() -> Sandbox {
    Sandbox::start(SandboxOptions::default()).expect("sandbox with ingest starts")
}

/// A response as received.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code` of an Error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    /// The `message` of an Error body.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A client for one sandbox, with a token (or none).
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    token: Option<String>,
    timeout: Duration,
}

impl Client {
    /// A client with the sandbox's write token.
    pub fn new(sandbox: &Sandbox) -> Client {
        let addr = sandbox
            .base_url()
            .trim_start_matches("http://")
            .parse()
            .expect("base URL is http://IP:PORT");
        Client {
            addr,
            token: Some(sandbox.token().to_owned()),
            timeout: Duration::from_secs(5),
        }
    }

    /// The same client with another token (`None`: no Authorization header).
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The same client giving up on a response after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            timeout,
            ..self.clone()
        }
    }

    /// Sends a request and reads the whole response; an error if the connection failed,
    /// closed without a response or timed out.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Reply> {
        let mut stream = self.connect()?;
        stream.write_all(&self.head(method, path, headers, Some(body.len())))?;
        stream.write_all(body)?;
        read_reply(&mut stream)
    }

    /// Opens a connection with this client's timeouts.
    pub fn connect(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        Ok(stream)
    }

    /// The request line and headers (with Host, Authorization, Connection: close).
    pub fn head(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        content_length: Option<usize>,
    ) -> Vec<u8> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(len) = content_length {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// A request that must get a response.
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// GET a path.
    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], b"")
    }

    /// A JSON request without extra headers.
    pub fn json(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.call(
            method,
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// POST a JSON body with an Idempotency-Key.
    pub fn post_keyed(&self, path: &str, key: &str, body: &str) -> io::Result<Reply> {
        self.send(
            "POST",
            path,
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", key),
            ],
            body.as_bytes(),
        )
    }

    /// POST a sale under its own id as the key.
    pub fn post_sale(&self, sale: &Value) -> Reply {
        let key = sale["id"].as_str().expect("sale has an id");
        self.post_keyed("/v1/sales", key, &sale.to_string())
            .unwrap_or_else(|e| panic!("POST /v1/sales: {e}"))
    }

    /// Adds a fault rule.
    pub fn fault(&self, rule: Value) {
        let reply = self.json("POST", "/v1/_sandbox/faults", &rule);
        assert_eq!(reply.status, 204, "fault rule {rule}: {reply:?}");
    }

    /// The sandbox's counters.
    pub fn stats(&self) -> Value {
        self.get("/v1/_sandbox/stats").json()
    }

    /// A product's current stock.
    pub fn stock(&self, product: &str) -> i64 {
        self.get(&format!("/v1/products/{product}")).json()["stock"]
            .as_i64()
            .expect("product has a stock")
    }
}

/// A valid sale of the seed product `orange-box` (2500 CNY per box).
pub fn sale(id: &str, quantity: i64) -> Value {
    json!({
        "id": id,
        "product_id": "orange-box",
        "quantity": quantity,
        "unit_price_minor": 2500,
        "currency": "CNY",
        "taken_at": "2025-05-01T08:30:00Z"
    })
}

/// Reads a response until the server closes the connection.
fn read_reply(stream: &mut TcpStream) -> io::Result<Reply> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> io::Result<Reply> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    if raw.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed without a response",
        ));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
