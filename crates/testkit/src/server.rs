//! [`TestServer`]: the real agentwire server, in-process on `127.0.0.1:0`, over its own
//! [`TestDatabase`], verifying HS256 tokens signed with [`crate::SECRET`] unless told otherwise.
//!
//! [`TestServerBuilder`] sets the knobs tests turn (step delay, limits, demo data, timeouts, JWT
//! settings, the node's lease); anything else is reachable through
//! [`TestServerBuilder::configure`]. Several servers may share one database
//! ([`TestServerBuilder::database`]): they are nodes of one cluster, as `agentwire serve`
//! processes on one PostgreSQL are. The server is built exactly as `agentwire serve` builds it
//! (`Engine::start`, `AppState::new`, `agentwire_server::serve`); this module must not add
//! behaviour of its own.

use crate::database::TestDatabase;
use crate::http::{HttpResponse, http};
use crate::jwt::{SECRET, token};
use crate::ws::connect_options;
use agentwire_check::client::{ClientError, ConnectOptions, Credentials, Session};
use agentwire_engine::{Engine, EngineConfig, Principal};
use agentwire_server::{AppState, JwtConfig, RateLimit, ServerConfig};
use agentwire_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`TestServer::stop`] waits for `serve` to return.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`TestServer::connect`] gives the whole connect (TCP, upgrade, first frame).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server and what it is built on. Dropping it stops nothing gracefully (the runtime's
/// end aborts it); call [`TestServer::stop`] to exercise shutdown.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    database: Arc<TestDatabase>,
    /// Set when the server speaks TLS: the CA its certificate is signed by.
    ca_pem: Option<String>,
}

/// Settings for a [`TestServer`]: the server's and the engine's defaults, with HS256 over
/// [`crate::SECRET`].
pub struct TestServerBuilder {
    server: ServerConfig,
    engine: EngineConfig,
    database: Option<Arc<TestDatabase>>,
    /// Reach the database through this URL instead of its own (a proxy a test can cut).
    database_url: Option<String>,
    store_options: StoreOptions,
    /// The CA that signed the server's TLS certificate, when it serves TLS.
    ca_pem: Option<String>,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                jwt: JwtConfig::hs256(SECRET),
                ..ServerConfig::default()
            },
            engine: EngineConfig::default(),
            database: None,
            database_url: None,
            store_options: StoreOptions::default(),
            ca_pem: None,
        }
    }
}

impl TestServerBuilder {
    /// Serves on this database instead of a fresh one: servers started on the same database
    /// are nodes of one cluster.
    pub fn database(mut self, database: &Arc<TestDatabase>) -> Self {
        self.database = Some(database.clone());
        self
    }

    /// Reaches the database through `url` (the same database, e.g. through a proxy).
    pub fn database_url(mut self, url: String) -> Self {
        self.database_url = Some(url);
        self
    }

    /// How the store connects (timeouts, pool size).
    pub fn store_options(mut self, options: StoreOptions) -> Self {
        self.store_options = options;
        self
    }

    /// This node's lease (and so how soon another node ends its runs once it stops renewing).
    pub fn node_lease(mut self, lease: Duration) -> Self {
        self.engine.node_lease = lease;
        self
    }

    /// The name this node registers under.
    pub fn node_name(mut self, name: &str) -> Self {
        self.engine.node_name = name.to_owned();
        self
    }

    /// Tenants without data of their own see the generated demo data set.
    pub fn demo_data(mut self) -> Self {
        self.engine.demo_data = true;
        self
    }

    /// Demo mode as `agentwire demo` runs it: the page signs itself in as `user_id` of
    /// `tenant_id` through `POST /api/demo/token`.
    pub fn demo_mode(mut self, user_id: &str, tenant_id: &str) -> Self {
        self.server.demo_mode = true;
        self.server.demo_principal = Some(Principal {
            user_id: user_id.into(),
            tenant_id: tenant_id.into(),
        });
        self
    }

    /// A pause before each agent step, so that a test can act while a run is going.
    pub fn step_delay(mut self, delay: Duration) -> Self {
        self.engine.step_delay = delay;
        self
    }

    /// Event-log retention: finished runs older than `age` are deleted every `interval`.
    pub fn retention(mut self, age: Duration, interval: Duration) -> Self {
        self.engine.retention = Some(agentwire_engine::RetentionConfig {
            interval,
            ..agentwire_engine::RetentionConfig::new(age)
        });
        self
    }

    /// A run still going after this ends with `TIMEOUT`.
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.engine.run_timeout = timeout;
        self
    }

    /// Runs one user may have going at once.
    pub fn max_runs_per_user(mut self, runs: usize) -> Self {
        self.engine.max_concurrent_runs_per_user = runs;
        self
    }

    /// How tokens are verified (algorithm, key, issuer, audience).
    pub fn jwt(mut self, jwt: JwtConfig) -> Self {
        self.server.jwt = jwt;
        self
    }

    /// Time an unauthenticated socket gets to send `authenticate`.
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.server.auth_timeout = timeout;
        self
    }

    /// How often the server pings each socket.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.server.ping_interval = interval;
        self
    }

    /// On shutdown, the time runs get to finish.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.server.drain_timeout = timeout;
        self
    }

    /// How long a socket's outbound queue may stay full before the client is dropped.
    pub fn slow_client_timeout(mut self, timeout: Duration) -> Self {
        self.server.slow_client_timeout = timeout;
        self
    }

    /// Largest WebSocket frame a client may send.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.server.max_frame_bytes = bytes;
        self
    }

    /// Largest HTTP body.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.server.max_body_bytes = bytes;
        self
    }

    /// Rows one usage upload may carry.
    pub fn max_ingest_rows(mut self, rows: usize) -> Self {
        self.server.max_ingest_rows = rows;
        self
    }

    /// WebSocket connections open at once on the server.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.server.max_connections = connections;
        self
    }

    /// Message rates per connection and per user.
    pub fn message_rates(mut self, per_connection: RateLimit, per_user: RateLimit) -> Self {
        self.server.connection_rate = per_connection;
        self.server.user_rate = per_user;
        self
    }

    /// Browser origins allowed to call the API and open sockets cross-origin.
    pub fn cors_allow_origin(mut self, origin: &str) -> Self {
        self.server.cors_allowed_origins.push(origin.to_owned());
        self
    }

    /// Serve TLS with this certificate (signed by a [`crate::TestCa`]); URLs become `https://`
    /// and `wss://`, and [`TestServer::connect`] trusts `ca_pem`.
    ///
    /// # Panics
    /// When the certificate and key cannot be served.
    pub fn tls(mut self, cert: &crate::ServerCert, ca_pem: &str) -> Self {
        let settings = agentwire_server::TlsSettings::from_pem(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
        )
        .unwrap_or_else(|err| panic!("the test certificate cannot be served: {err}"));
        self.server.tls = Some(settings);
        self.ca_pem = Some(ca_pem.to_owned());
        self
    }

    /// Any other setting, on the configurations themselves.
    pub fn configure(mut self, tweak: impl FnOnce(&mut ServerConfig, &mut EngineConfig)) -> Self {
        tweak(&mut self.server, &mut self.engine);
        self
    }

    /// Opens a fresh [`TestDatabase`] (unless given one), builds the engine and the server on
    /// it, and starts serving on `127.0.0.1:0`.
    ///
    /// # Panics
    /// When the database cannot be opened, the engine cannot start, the settings are refused
    /// (`AppState::new`), or no port can be bound.
    pub async fn start(self) -> TestServer {
        let database = self
            .database
            .unwrap_or_else(|| Arc::new(TestDatabase::new()));
        let url = self
            .database_url
            .unwrap_or_else(|| database.url().to_owned());
        let store = agentwire_store::connect_with(&url, &self.store_options)
            .await
            .unwrap_or_else(|err| panic!("cannot open the test database {url}: {err}"));
        let engine = Engine::start(store.clone(), self.engine)
            .await
            .unwrap_or_else(|err| panic!("the test server's engine did not start: {err}"));
        let state = AppState::new(engine, self.server)
            .unwrap_or_else(|err| panic!("the test server's settings were refused: {err}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the test server");
        let addr = listener.local_addr().expect("the test server's address");
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
            store,
            shutdown: Some(tx),
            task: Some(task),
            database,
            ca_pem: self.ca_pem,
        }
    }
}

impl TestServer {
    /// Settings to start from: the defaults, HS256 over [`crate::SECRET`].
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// A server with the default settings.
    pub async fn start() -> TestServer {
        Self::builder().start().await
    }

    /// `ws://ADDR/ws`, or `wss://` when the server speaks TLS.
    pub fn ws_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// `http://ADDR`, or `https://` when the server speaks TLS.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA that signed the server's certificate, when it speaks TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The URL of the database the server runs on.
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// The database the server runs on, to start more nodes on it.
    pub fn database(&self) -> &Arc<TestDatabase> {
        &self.database
    }

    /// Options for the suite's client to this server's `/ws`, with a 10 s connect limit (and,
    /// over TLS, the test CA as a root).
    ///
    /// # Panics
    /// When the test CA is not a usable root.
    pub fn connect_options(&self, credentials: Credentials) -> ConnectOptions {
        let mut options = connect_options(self.ws_url(), credentials, CONNECT_TIMEOUT);
        options.tls = self.ca_pem.as_ref().map(|pem| {
            agentwire_check::tls::TlsClient::new(Some(pem.as_bytes()))
                .unwrap_or_else(|err| panic!("the test CA is not a usable root: {err}"))
        });
        options
    }

    /// Connects the suite's client with `credentials`; the refusal, if any, is the test's to judge.
    pub async fn connect(&self, credentials: Credentials) -> Result<Session, ClientError> {
        Session::connect(&self.connect_options(credentials)).await
    }

    /// A socket with `token` as a Bearer token.
    ///
    /// # Panics
    /// When the connection is refused.
    pub async fn connect_bearer(&self, token: &str) -> Session {
        self.connect(Credentials::Bearer(token.to_owned()))
            .await
            .unwrap_or_else(|err| panic!("a Bearer connection was refused: {err}"))
    }

    /// A socket for `sub` with a valid Bearer token (no scope).
    ///
    /// # Panics
    /// When the connection is refused.
    pub async fn connect_as(&self, sub: &str) -> Session {
        self.connect_bearer(&token(sub, None)).await
    }

    /// Signals shutdown and waits for `serve` to return, with what it returned.
    ///
    /// # Panics
    /// When `serve` does not return within 30 s, or its task panicked.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("the server task, taken only here");
        tokio::time::timeout(STOP_TIMEOUT, task)
            .await
            .expect("serve did not return after shutdown")
            .expect("the serve task panicked")
    }

    /// `GET path` with these headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http(self.addr, "GET", path, headers, b"").await
    }

    /// `POST path` with these headers and body.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        http(self.addr, "POST", path, headers, body).await
    }

    /// Any method.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http(self.addr, method, path, headers, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::forged_token;

    #[tokio::test]
    async fn the_builder_reaches_the_server_and_the_server_is_real() {
        let server = TestServer::builder()
            .demo_data()
            .max_frame_bytes(4096)
            .cors_allow_origin("https://app.example.com")
            .start()
            .await;
        assert_eq!(server.state.config.max_frame_bytes, 4096);
        assert_eq!(
            server.state.config.cors_allowed_origins,
            ["https://app.example.com"]
        );
        let scheme = match server.database().backend() {
            crate::TestBackend::Sqlite => "sqlite://",
            crate::TestBackend::Postgres => "postgres://",
        };
        assert!(server.database_url().starts_with(scheme));

        let health = server.get("/health", &[]).await;
        assert_eq!(health.status, 200, "{}", health.text());
        assert_eq!(health.json()["status"], "healthy");
        let session = server.connect_as("alice").await;
        assert_eq!(session.connection_info().unwrap()["user_id"], "alice");
        match server
            .connect(Credentials::Bearer(forged_token("mallory")))
            .await
        {
            Err(ClientError::Http { status, .. }) => assert_eq!(status, 401),
            other => panic!("a forged token got {:?}", other.err()),
        }
        server.stop().await.unwrap();
    }
}
