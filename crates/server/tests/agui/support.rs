//! What the AG-UI tests need: a real server on `127.0.0.1:0` over SQLite in a temp dir, real
//! HS256 tokens, a plain HTTP/1.1 client, and an SSE reader that reads a streaming answer event by
//! event and keeps its raw bytes (resume must be byte-identical). Copied in part from
//! `tests/common`; to be folded into the shared test kit.
#![allow(dead_code)]

use agentwire_engine::{Engine, EngineConfig};
use agentwire_server::{AppState, JwtConfig, ServerConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The HS256 secret of every test server.
pub const SECRET: &str = "agui-integration-test-secret-0123456789";

/// How long any one read may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server whose tenants without data see the demo data set, after `tweak`.
    pub async fn start_with(
        tweak: impl FnOnce(&mut ServerConfig, &mut EngineConfig),
    ) -> TestServer {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = agentwire_store::connect(&url).await.unwrap();
        let mut config = ServerConfig {
            jwt: JwtConfig::hs256(SECRET),
            ..ServerConfig::default()
        };
        let mut engine_config = EngineConfig {
            demo_data: true,
            ..EngineConfig::default()
        };
        tweak(&mut config, &mut engine_config);
        let engine = Engine::new(store, engine_config);
        let state = AppState::new(engine, config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(agentwire_server::serve(
            listener,
            state.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        TestServer {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn start() -> TestServer {
        Self::start_with(|_, _| {}).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
            .unwrap();
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        request(self.addr, method, path, headers, body).await
    }

    /// Opens a streaming request and reads its head; the body is read with [`SseStream`].
    pub async fn stream(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> SseStream {
        stream(self.addr, method, path, headers, body).await
    }
}

/// One HTTP/1.1 request with `Connection: close`, read to the end.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = send(addr, method, path, headers, body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("HTTP answer timed out")
        .unwrap();
    let (status, headers, rest) = split_head(&raw).expect("no end of headers");
    let mut body = rest.to_vec();
    if header_is(&headers, "transfer-encoding", "chunked") {
        let mut decoder = Dechunker::default();
        body = decoder.feed(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Opens a streaming request and reads its head; the body is read with [`SseStream`].
pub async fn stream(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> SseStream {
    let mut tcp = send(addr, method, path, headers, body).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some((status, headers, rest)) = split_head(&raw) {
            let chunked = header_is(&headers, "transfer-encoding", "chunked");
            let mut stream = SseStream {
                tcp,
                status,
                headers,
                chunked,
                dechunker: Dechunker::default(),
                body: Vec::new(),
                unread: 0,
                eof: false,
            };
            let rest = rest.to_vec();
            stream.take(&rest);
            return stream;
        }
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("no answer head in time")
            .unwrap();
        assert!(n > 0, "connection closed before the answer head");
        raw.extend_from_slice(&buf[..n]);
    }
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    // Head and body in one write, as HTTP clients do: two small writes would wait on Nagle.
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.set_nodelay(true).unwrap();
    stream.write_all(&bytes).await.unwrap();
    stream
}

/// Header names (lower-cased) and values.
type Headers = Vec<(String, String)>;

fn split_head(raw: &[u8]) -> Option<(u16, Headers, &[u8])> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((status, headers, &raw[split + 4..]))
}

fn header_is(headers: &[(String, String)], name: &str, value: &str) -> bool {
    headers
        .iter()
        .any(|(n, v)| n == name && v.eq_ignore_ascii_case(value))
}

/// An incremental decoder of HTTP/1.1 chunked bodies.
#[derive(Default)]
struct Dechunker {
    pending: Vec<u8>,
    /// Bytes still to read in the current chunk, plus its CRLF.
    remaining: usize,
    done: bool,
}

impl Dechunker {
    fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.done {
                return out;
            }
            if self.remaining > 0 {
                let take = self.remaining.min(self.pending.len());
                let data_part = take.min(self.remaining.saturating_sub(2));
                out.extend_from_slice(&self.pending[..data_part]);
                self.pending.drain(..take);
                self.remaining -= take;
                if self.remaining > 0 {
                    return out;
                }
                continue;
            }
            let Some(line_end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                return out;
            };
            let size_text = String::from_utf8_lossy(&self.pending[..line_end]).into_owned();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            self.pending.drain(..line_end + 2);
            if size == 0 {
                self.done = true;
            } else {
                self.remaining = size + 2;
            }
        }
    }
}

/// An HTTP answer read to the end.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }
}

/// One Server-Sent Event as received.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub data: Value,
    /// The event's bytes, `id:` line to blank line.
    pub raw: Vec<u8>,
}

impl SseEvent {
    pub fn kind(&self) -> &str {
        self.data["type"].as_str().unwrap_or("")
    }
}

/// A streaming answer, read event by event. Dropping it closes the connection.
pub struct SseStream {
    tcp: TcpStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    chunked: bool,
    dechunker: Dechunker,
    /// Every body byte received so far.
    pub body: Vec<u8>,
    /// Where the next unread event starts in `body`.
    unread: usize,
    eof: bool,
}

impl SseStream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn take(&mut self, raw: &[u8]) {
        if self.chunked {
            let decoded = self.dechunker.feed(raw);
            self.body.extend_from_slice(&decoded);
            if self.dechunker.done {
                self.eof = true;
            }
        } else {
            self.body.extend_from_slice(raw);
        }
    }

    /// The next event (comment blocks are skipped), or `None` at the end of the body.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            while let Some(end) = self.body[self.unread..]
                .windows(2)
                .position(|w| w == b"\n\n")
            {
                let block = self.body[self.unread..self.unread + end + 2].to_vec();
                self.unread += end + 2;
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
            }
            if self.eof {
                assert_eq!(
                    self.unread,
                    self.body.len(),
                    "the body ended inside an event"
                );
                return None;
            }
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut buf))
                .await
                .expect("no event in time")
                .unwrap();
            if n == 0 {
                self.eof = true;
                continue;
            }
            let raw = buf[..n].to_vec();
            self.take(&raw);
        }
    }

    /// Every remaining event, to the end of the body.
    pub async fn rest(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            events.push(event);
        }
        events
    }

    /// Reads until an event matches, returning every event read (the match last).
    pub async fn until(&mut self, matches: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            let done = matches(&event);
            events.push(event);
            if done {
                return events;
            }
        }
        panic!(
            "the stream ended before the awaited event; got {:?}",
            events.iter().map(SseEvent::kind).collect::<Vec<_>>()
        );
    }
}

fn parse_block(block: &[u8]) -> Option<SseEvent> {
    let text = std::str::from_utf8(block).expect("an SSE block is UTF-8");
    let mut id = None;
    let mut data = None;
    for line in text.split('\n').filter(|line| !line.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("unexpected SSE line {line:?}"));
        match field {
            "id" => id = Some(value.to_owned()),
            "data" => {
                assert!(data.is_none(), "one data line per event: {text:?}");
                data = Some(serde_json::from_str(value).expect("data is JSON"));
            }
            other => panic!("unexpected SSE field {other:?}"),
        }
    }
    match (id, data) {
        (None, None) => None,
        (Some(id), Some(data)) => Some(SseEvent {
            id,
            data,
            raw: block.to_vec(),
        }),
        _ => panic!("an event without both id and data: {text:?}"),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A valid HS256 token for `sub`, valid for ten minutes.
pub fn token(sub: &str) -> String {
    sign(&json!({"sub": sub, "exp": now() + 600}))
}

pub fn sign(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A token signed with another secret.
pub fn forged_token(sub: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": now() + 600}),
        &EncodingKey::from_secret(b"not-the-server-secret-not-the-server"),
    )
    .unwrap()
}

/// A `RunAgentInput` with one user message.
pub fn run_input(thread_id: &str, question: &str) -> Vec<u8> {
    json!({
        "threadId": thread_id,
        "runId": "client-run-1",
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": question}],
        "tools": [],
        "context": [],
        "forwardedProps": {}
    })
    .to_string()
    .into_bytes()
}

/// Every event's raw bytes, concatenated.
pub fn raw(events: &[SseEvent]) -> Vec<u8> {
    events.iter().flat_map(|e| e.raw.iter().copied()).collect()
}

pub fn data(events: &[SseEvent]) -> Vec<Value> {
    events.iter().map(|e| e.data.clone()).collect()
}

pub fn kinds(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(SseEvent::kind).collect()
}
