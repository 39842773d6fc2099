//! Helpers for the tests that run the real `agentwire` binary: start `serve` on a free port and
//! keep reading its log, mint tokens with `agentwire token`, one-shot HTTP requests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentwire");
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `agentwire serve`, its address, and everything it writes to stderr. Killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `agentwire serve --listen 127.0.0.1:0 ARGS...` with these environment variables; waits
    /// until it listens.
    ///
    /// # Panics
    /// When the process exits or stays silent before listening; the message has its log.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("AGENTWIRE_JWT_SECRET")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        // Keep reading stderr for the process's whole life, so it never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("ws://").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(url.trim_end_matches("/ws").to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("serve did not start: {:?}", log.lock().unwrap()));
        Server { child, addr, log }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Kills the process with SIGKILL: no drain, no flush, no goodbye.
    pub fn kill_9(mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert_eq!(exit.signal(), Some(9), "{exit:?}");
    }

    /// Everything the process has logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Runs `agentwire ARGS...` to completion with these environment variables (and no inherited
/// secret); returns (exit code, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("AGENTWIRE_JWT_SECRET")
        .env_remove("AGENTWIRE_DATABASE");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `agentwire token --sub SUB --org acme` signed with `secret`.
pub fn token(sub: &str, secret: &str) -> String {
    let (code, stdout, stderr) = run(
        &["token", "--sub", sub, "--org", "acme", "--ttl", "1h"],
        &[("AGENTWIRE_JWT_SECRET", secret)],
    );
    assert_eq!(code, Some(0), "{stderr}");
    stdout.trim().to_owned()
}

/// An HTTP answer: status, lower-cased headers, body (de-chunked).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = data.split_once("\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        data = &rest[size + 2..];
    }
}
