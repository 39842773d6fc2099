//! WebSocket helpers: options for the validation suite's client ([`agentwire_check::client`]),
//! which the tests use to speak the protocol, and raw upgrades with exactly the headers a test
//! chooses, for what that client will not send (a foreign `Origin`, invalid frames).
//!
//! Frames are not interpreted here; asserting on them is the tests' job.

use agentwire_check::client::{ConnectOptions, Credentials};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};

/// A raw client socket, as `tokio_tungstenite::connect_async` gives it.
pub type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Options for the suite's client: `url` with `credentials`, offering `agentwire.v1`, giving up
/// on the whole connect after `timeout`.
pub fn connect_options(
    url: impl Into<String>,
    credentials: Credentials,
    timeout: Duration,
) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: timeout,
        ..ConnectOptions::new(url, credentials)
    }
}

/// An upgrade the server refused: its HTTP status, headers (names lower-cased) and JSON body
/// (`Null` when there is none or it is not JSON).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// Opens a socket to `url` with exactly these extra upgrade headers.
///
/// # Errors
/// The server's HTTP refusal of the upgrade.
///
/// # Panics
/// When a header cannot be put in a request, or the upgrade fails other than by an HTTP refusal
/// (the server is not there, or broke the handshake).
pub async fn raw_connect(url: &str, headers: &[(&str, &str)]) -> Result<RawSocket, Refusal> {
    let mut request = url
        .into_client_request()
        .unwrap_or_else(|err| panic!("not a WebSocket URL {url:?}: {err}"));
    for (name, value) in headers {
        let header_name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|err| panic!("bad header name {name:?}: {err}"));
        let header_value = value
            .parse()
            .unwrap_or_else(|err| panic!("bad value for header {name}: {err}"));
        request.headers_mut().insert(header_name, header_value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(Refusal {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: response
                .body()
                .as_ref()
                .and_then(|body| serde_json::from_slice(body).ok())
                .unwrap_or(Value::Null),
        }),
        Err(err) => panic!("upgrade to {url} failed: {err}"),
    }
}
