//! The notice listener: one connection that LISTENs, turned into [`Notice`]s.
//!
//! Channels and payloads, never sent before the data they announce is committed:
//! `agentwire_run_events` "`<seq> <run_id>`" (right after an append's commit, see `events`),
//! `agentwire_cancel` "`<run_id>`" and `agentwire_usage` "`<tenant_id>`" (inside the writing
//! transaction, delivered at its commit).
//!
//! PostgreSQL drops notifications for a connection that is gone, so the listener must know
//! when it has lost its connection: a reset or EOF shows at once, but a network partition
//! shows nothing. So every probe interval the listener sends itself a notification on a
//! channel of its own through the store's pool; if it has not come back by the next interval,
//! the connection is presumed dead. On loss the subscribers get [`Notice::Disconnected`]; the
//! listener reconnects with backoff, LISTENs again, and only then sends
//! [`Notice::Resync`], so whatever happened in between is found by re-reading. This module must
//! not interpret notices beyond parsing them.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::bounded;
use crate::notice::NoticeHub;
use crate::{Notice, StoreResult};

const RUN_EVENTS_CHANNEL: &str = "agentwire_run_events";
const CANCEL_CHANNEL: &str = "agentwire_cancel";
const USAGE_CHANNEL: &str = "agentwire_usage";

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connected listener and the channel its probes come back on.
pub(super) struct Listening {
    listener: PgListener,
    probe_channel: String,
}

/// What the listener task needs besides its connection.
pub(super) struct Context {
    pub connect: PgConnectOptions,
    /// The store's pool, through which probes are sent.
    pub pool: PgPool,
    pub notices: Arc<NoticeHub>,
    pub probe_interval: Duration,
    /// How long sending a probe may take (a busy pool may make it wait for a connection).
    pub probe_send_timeout: Duration,
    pub shutdown: watch::Receiver<bool>,
}

/// Opens the listener's own connection (outside the store's pool, which it must not starve)
/// and LISTENs on every channel.
pub(super) async fn connect(connect: &PgConnectOptions) -> StoreResult<Listening> {
    // A pool of one that never hands out a second connection: PgListener reconnects through a
    // pool, and this one is dropped with the listener.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(connect.clone().application_name("agentwire-listener"));
    let mut listener = PgListener::connect_with(&pool).await?;
    // Reconnection is ours: a fresh listener each time, so we know when notices were missed.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    let probe_channel = format!("agentwire_probe_{}", uuid::Uuid::new_v4().simple());
    listener
        .listen_all([
            RUN_EVENTS_CHANNEL,
            CANCEL_CHANNEL,
            USAGE_CHANNEL,
            probe_channel.as_str(),
        ])
        .await?;
    Ok(Listening {
        listener,
        probe_channel,
    })
}

/// The listener task: pumps notices until the store goes away, reconnecting as needed.
pub(super) async fn run(mut listening: Listening, mut context: Context) {
    loop {
        let lost = pump(&mut listening, &mut context).await;
        let Some(reason) = lost else {
            return; // shut down
        };
        tracing::warn!(%reason, "the notice listener lost its connection; reconnecting");
        context.notices.set_connected(false);
        drop(listening);
        let Some(again) = reconnect(&mut context).await else {
            return;
        };
        listening = again;
        tracing::info!("the notice listener is listening again");
        context.notices.set_connected(true);
    }
}

/// Delivers notices until the connection is lost (`Some(reason)`) or the store shuts down
/// (`None`).
async fn pump(listening: &mut Listening, context: &mut Context) -> Option<String> {
    let mut probe = tokio::time::interval_at(
        Instant::now() + context.probe_interval,
        context.probe_interval,
    );
    probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut awaiting: Option<u64> = None;
    let mut sent: u64 = 0;
    loop {
        tokio::select! {
            changed = context.shutdown.changed() => {
                if changed.is_err() || *context.shutdown.borrow() {
                    return None;
                }
            }
            received = listening.listener.try_recv() => match received {
                Ok(Some(notification)) => {
                    if notification.channel() == listening.probe_channel {
                        if awaiting.is_some_and(|n| notification.payload() == n.to_string()) {
                            awaiting = None;
                        }
                    } else {
                        deliver(&context.notices, &notification);
                    }
                }
                Ok(None) => return Some("the connection was closed".into()),
                Err(e) => return Some(e.to_string()),
            },
            _ = probe.tick() => {
                if let Some(n) = awaiting {
                    return Some(format!("probe {n} did not come back within {:?}", context.probe_interval));
                }
                sent += 1;
                let send = async {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(&listening.probe_channel)
                        .bind(sent.to_string())
                        .execute(&context.pool)
                        .await?;
                    Ok(())
                };
                match bounded(context.probe_send_timeout, send).await {
                    Ok(()) => awaiting = Some(sent),
                    // The database cannot be reached through the pool either: the listener's
                    // connection is most likely gone too, and a fresh one costs little.
                    Err(e) if e.is_retryable() => return Some(format!("probe could not be sent: {e}")),
                    Err(e) => tracing::warn!(error = %e, "the notice listener could not send its probe"),
                }
            }
        }
    }
}

/// Connects again, backing off while the database is away. `None` if the store shut down.
async fn reconnect(context: &mut Context) -> Option<Listening> {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            changed = context.shutdown.changed() => {
                if changed.is_err() || *context.shutdown.borrow() {
                    return None;
                }
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        let attempt = bounded(
            context.probe_interval.max(Duration::from_secs(1)),
            connect(&context.connect),
        )
        .await;
        match attempt {
            Ok(listening) => return Some(listening),
            Err(e) => {
                tracing::debug!(error = %e, "the notice listener cannot reconnect yet");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Turns a notification into a notice and publishes it; a payload we did not write is logged
/// and dropped.
fn deliver(notices: &NoticeHub, notification: &PgNotification) {
    match parse(notification.channel(), notification.payload()) {
        Some(notice) => notices.publish(notice),
        None => tracing::warn!(
            channel = notification.channel(),
            "ignoring a notification with an unexpected payload"
        ),
    }
}

fn parse(channel: &str, payload: &str) -> Option<Notice> {
    match channel {
        RUN_EVENTS_CHANNEL => {
            let (seq, run_id) = payload.split_once(' ')?;
            Some(Notice::RunEvents {
                run_id: run_id.to_owned(),
                seq: seq.parse().ok()?,
            })
        }
        CANCEL_CHANNEL => Some(Notice::CancelRequested {
            run_id: payload.to_owned(),
        }),
        USAGE_CHANNEL => Some(Notice::UsageChanged {
            tenant_id: payload.to_owned(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_odd_ones_are_refused() {
        assert_eq!(
            parse(RUN_EVENTS_CHANNEL, "42 run_a b"),
            Some(Notice::RunEvents {
                run_id: "run_a b".into(),
                seq: 42
            })
        );
        assert_eq!(parse(RUN_EVENTS_CHANNEL, "x run"), None);
        assert_eq!(parse(RUN_EVENTS_CHANNEL, "42"), None);
        assert_eq!(
            parse(CANCEL_CHANNEL, "run_1"),
            Some(Notice::CancelRequested {
                run_id: "run_1".into()
            })
        );
        assert_eq!(
            parse(USAGE_CHANNEL, "acme"),
            Some(Notice::UsageChanged {
                tenant_id: "acme".into()
            })
        );
        assert_eq!(parse("other", "x"), None);
    }
}
