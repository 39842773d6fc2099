//! The WebSocket at `GET /ws`: authentication on the socket and forwarding run events.
//!
//! One connection is three kinds of task:
//! - the **reader** (`connection`): reads client frames, asks `decide` what each one means,
//!   calls the engine, and owns the connection's timers (auth timeout, protocol pings, shutdown);
//! - one **writer** (`outbox`): drains a bounded queue of outbound frames into the socket, so no
//!   other task ever waits on a slow client's TCP window;
//! - one **forwarder** per run the connection follows (`connection`): pulls the run's events from
//!   the engine and queues them. `run_accepted` is queued before the forwarder is spawned, so it
//!   always precedes the run's first event on the wire.
//!
//! The files, one job each:
//! - `upgrade`: the HTTP side, before there is a socket: origin, credentials, connection caps,
//!   subprotocol selection and the library's frame limit.
//! - `decide`: what a client frame (or a read error) means, as pure synchronous functions.
//! - `error_frames`: the `error` frames the socket sends, with their codes and messages.
//! - `outbox`: the outbound queue, the writer task, and the one way to close a socket.
//! - `connection`: the reader loop that ties them together and carries out the decisions.
//!
//! When the queue stays full for `slow_client_timeout` the client is not reading: it is
//! disconnected and its runs continue (the client can `resume` them later). When the socket closes
//! for any reason the forwarders are aborted; runs are never cancelled by a disconnect.
//!
//! Frame size: the WebSocket library is configured to accept messages a little over
//! `max_frame_bytes`, so that a frame just over our limit is read and answered with `error`
//! `PAYLOAD_TOO_LARGE` followed by close 1009. A frame over the library limit is refused by the
//! library while reading its header; we recognise that error and answer the same way (error frame,
//! then close 1009), without ever buffering the oversized payload.
//!
//! Limits (see [`crate::limits`]): the upgrade takes a place among `max_connections` (HTTP 503
//! past it) and, with credentials, among the user's `max_connections_per_user` (HTTP 429), or,
//! without, among its address's `max_unauthenticated_per_ip` (HTTP 429); a first `authenticate`
//! frame takes the user's place then and gives the address's back. A socket follows at most
//! `max_followed_runs` runs (`RATE_LIMITED` past it), and closes with `AUTH_EXPIRED` and 4401 when
//! its token expires without a fresh `authenticate`. Every data frame within the size limit takes
//! a token from the connection's bucket and the user's; without one it is dropped and answered
//! with `RATE_LIMITED` and `retry_after_ms`, before it is parsed. A text frame that is not UTF-8
//! gets `INVALID_MESSAGE` and close 1007, as RFC 6455 requires. A page of a foreign origin cannot
//! open a socket (HTTP 403).
//!
//! Nothing here may log tokens or frame contents, or block: token verification is a few
//! microseconds of CPU; everything else is awaited.

mod connection;
mod decide;
mod error_frames;
mod outbox;
mod upgrade;

pub use decide::MAX_THREAD_ID_CHARS;
pub(crate) use decide::thread_id_is_valid;
pub use outbox::{CLOSE_GOING_AWAY, CLOSE_INVALID_PAYLOAD};
pub use upgrade::upgrade;
