//! A headless Chromium driven over W3C WebDriver: Debian's `chromium` and `chromium-driver`, a
//! new empty profile per browser, flags that keep it off the network. Never downloads a browser.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fieldcast_sandbox::ingest::{free_port, terminate};
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package chromium-driver), the same version as the browser.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long chromedriver and the browser may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A browser session; the browser and its driver are stopped (by PID) when dropped.
pub struct Browser {
    driver: Child,
    session: String,
    http: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts a headless Chromium showing pages as a phone of `width` x `height` CSS pixels would.
    /// Panics, saying what to install, when the browser or its driver is missing.
    pub fn start(width: u32, height: u32) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the viewer's test needs Debian's {package} (make deps installs it)"
            );
        }
        let port = free_port().expect("a free port for chromedriver");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::Builder::new()
            .prefix("fieldcast-chromium-")
            .tempdir()
            .expect("a profile directory");
        let http = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let mut browser = Browser {
            driver,
            session: format!("http://127.0.0.1:{port}/session"),
            http,
            _profile: profile,
        };
        browser.wait_driver(port);
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "mobileEmulation": {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1}},
            },
        }}});
        let created = browser.call("POST", "", &capabilities);
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver started no browser: {created}"));
        browser.session = format!("{}/{id}", browser.session);
        browser
    }

    fn wait_driver(&mut self, port: u16) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let exited = self.driver.try_wait().ok().flatten();
            assert!(exited.is_none(), "chromedriver exited: {exited:?}");
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command on this session; its `value`. Panics on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(body),
        };
        let reply: Value = request
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let value = reply["value"].clone();
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    /// Loads `url` and waits for the page's load event.
    pub fn open(&self, url: &str) {
        self.call("POST", "/url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            &json!({ "script": script, "args": [] }),
        )
    }

    /// Polls `script` every 100 ms until it returns something other than `null` or `false`;
    /// `None` after `timeout`.
    pub fn wait_for(&self, script: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.run(script) {
                Value::Null | Value::Bool(false) => {}
                value => return Some(value),
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call("GET", "/screenshot", &Value::Null);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("a base64 screenshot"))
            .expect("the screenshot decodes")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closes the browser; the driver goes after it.
        let _ = self.http.delete(&self.session).send();
        terminate(&mut self.driver, Duration::from_secs(3));
    }
}
