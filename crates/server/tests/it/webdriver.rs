//! A small WebDriver client for the browser test: chromedriver driving headless Chromium, spoken
//! to as JSON over HTTP/1.1 on loopback (the W3C WebDriver protocol), plus chromedriver's CDP
//! passthrough for device emulation and full-page screenshots.
//!
//! Hand-written rather than a crate: the test needs a dozen commands, and the WebDriver crates
//! pull in a TLS-capable HTTP stack and more that a loopback test never uses. The HTTP itself is
//! the testkit's client.
//!
//! Only for tests: every failure panics with what went wrong.

use agentwire_testkit::http::try_http_blocking;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebDriver key codes.
pub const ENTER: &str = "\u{E007}";
pub const SHIFT: &str = "\u{E008}";
/// Releases every held modifier.
pub const RELEASE: &str = "\u{E000}";

/// Where the Debian packages put the browser and its driver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The browser and driver binaries, if installed (`AGENTWIRE_CHROMIUM` / `AGENTWIRE_CHROMEDRIVER`
/// override the Debian paths).
pub fn installed() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("AGENTWIRE_CHROMIUM")
        .map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    let driver = std::env::var_os("AGENTWIRE_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from(CHROMEDRIVER), PathBuf::from);
    let missing: Vec<String> = [&chromium, &driver]
        .iter()
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok((chromium, driver))
    } else {
        Err(format!(
            "{} not found; install them with `apt-get install -y --no-install-recommends chromium chromium-driver` (.ci/run does)",
            missing.join(" and ")
        ))
    }
}

/// One chromedriver process with one browser session. Dropping it ends the session (which closes
/// the browser) and stops chromedriver.
pub struct Browser {
    addr: SocketAddr,
    session: String,
    // Dropped after the session is ended (fields drop in order): then chromedriver goes.
    _driver: DriverProcess,
    _profile: tempfile::TempDir,
}

/// The chromedriver process, stopped on drop even when the test panics half-way through starting
/// it, so no browser outlives the test.
struct DriverProcess {
    child: Child,
    addr: Option<SocketAddr>,
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        // `/shutdown` makes chromedriver close its browsers and exit; a plain kill would orphan
        // them. The answer is not awaited.
        if let Some(addr) = self.addr
            && let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        {
            let _ = stream.write_all(
                format!("GET /shutdown HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session with a
    /// fresh profile.
    pub fn launch(chromium: &Path, chromedriver: &Path) -> Browser {
        let child = Command::new(chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromedriver.display()));
        let mut driver = DriverProcess { child, addr: None };
        let stdout = driver.child.stdout.take().expect("chromedriver stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("chromedriver exited before saying its port")
                .expect("reading chromedriver output");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest
                    .trim_end_matches('.')
                    .trim()
                    .parse::<u16>()
                    .expect("chromedriver port");
            }
        };
        // Keep draining chromedriver's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        driver.addr = Some(addr);
        let profile = tempfile::TempDir::new().expect("profile dir");
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--window-size=1440,1000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium.display().to_string(),
                        "args": args,
                    },
                    "timeouts": {"script": 30_000, "pageLoad": 30_000, "implicit": 0},
                }
            }
        });
        let value = request(addr, "POST", "/session", Some(&capabilities))
            .unwrap_or_else(|err| panic!("cannot open a Chromium session: {err}"));
        let session = value["sessionId"]
            .as_str()
            .expect("sessionId in the new session answer")
            .to_owned();
        Browser {
            addr,
            session,
            _driver: driver,
            _profile: profile,
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        request(self.addr, method, &path, body)
            .unwrap_or_else(|err| panic!("WebDriver {method} {path} failed: {err}"))
    }

    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Runs `script` that calls `arguments[arguments.length - 1](value)` when done.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Polls `script` (a function body) until it returns something truthy; returns that value.
    /// Panics after `limit`, naming `what` and the last value seen.
    pub fn wait_for(&self, what: &str, script: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.execute(script, Vec::new());
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(_) | Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}; the page never got there (last value: {value})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn find(&self, css: &str) -> Element {
        let value = self.command(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        );
        Element(
            value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element matches {css}: {value}"))
                .to_owned(),
        )
    }

    pub fn click(&self, element: &Element) {
        self.command(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(&json!({})),
        );
    }

    pub fn send_keys(&self, element: &Element, text: &str) {
        self.command(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(&json!({ "text": text })),
        );
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.command(
            "POST",
            "/goog/cdp/execute",
            Some(&json!({ "cmd": cmd, "params": params })),
        )
    }

    /// Emulates a device `width` CSS pixels wide (a phone when `mobile`).
    pub fn emulate_width(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// Saves a PNG of the whole page, not just the viewport.
    pub fn screenshot_full_page(&self, path: &Path) {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(1440.0).ceil();
        let height = size["height"]
            .as_f64()
            .unwrap_or(1000.0)
            .ceil()
            .min(16_000.0);
        let shot = self.cdp(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }),
        );
        let png = STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        std::fs::write(path, png)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then `_driver` stops chromedriver.
        let _ = request(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

/// One WebDriver call: JSON over HTTP/1.1, one connection per call. Returns the answer's `value`,
/// or the WebDriver error as text.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    // An upper bound, so a wedged browser fails the test instead of hanging it.
    let response = try_http_blocking(
        addr,
        method,
        path,
        &[("Content-Type", "application/json; charset=utf-8")],
        body.as_bytes(),
        Duration::from_secs(120),
    )
    .map_err(|err| format!("chromedriver: {err}"))?;
    let answer: Value = serde_json::from_slice(&response.body)
        .map_err(|err| format!("answer is not JSON ({err}): {}", response.text()))?;
    if response.status >= 400 {
        let value = &answer["value"];
        return Err(format!(
            "HTTP {}: {} {}",
            response.status,
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or_default()
        ));
    }
    Ok(answer["value"].clone())
}
