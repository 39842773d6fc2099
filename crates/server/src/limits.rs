//! Limits that keep one client from crowding out the others: message rates (token buckets, per
//! connection and per user) and caps on open WebSocket connections (in total, per user, and
//! unauthenticated ones per peer address).
//!
//! How it fits: [`Limiter`] lives in [`crate::AppState`]. The upgrade handler takes a
//! [`ConnectionPermit`] (refused past `max_connections`: HTTP 503) and, when the upgrade carries
//! credentials, a [`UserPermit`] (refused past `max_connections_per_user`: HTTP 429); a socket that
//! authenticates with a first frame takes its [`UserPermit`] then. Each socket owns a
//! [`TokenBucket`] for its own messages and shares its user's bucket through the [`UserPermit`].
//! A socket without credentials holds an [`AnonymousPermit`] (refused past
//! `max_unauthenticated_per_ip` from one address: HTTP 429) until it authenticates or closes.
//! Permits give their place back when dropped, whatever ends the socket.
//!
//! Usage uploads are capped separately: [`UploadSlots`] hands out at most `max_concurrent_uploads`
//! [`UploadPermit`]s, each held from before the body is read until the upload is stored or
//! refused (HTTP 503 past the cap, never a wait), so a burst of large uploads cannot hold all the
//! memory, the CPU pool's parsing and the database's writer at once.
//!
//! A "user" here is a principal: the same `sub` in two tenants is two users, with their own caps
//! and buckets, so one tenant's traffic never spends another tenant's allowance.
//!
//! The decisions are synchronous and take the current [`Instant`] as an argument, so they are
//! tested without sleeping. This module must not do I/O, must not hold a lock across an `.await`,
//! and must not log user input.

use crate::config::RateLimit;
use agentwire_engine::Principal;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a client is told to wait when a connection cap is reached. Connections come and go
/// quickly, so a second is a fair first back-off.
pub const CONNECTION_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a client is told to wait when every upload slot is taken: an upload of a million rows
/// takes seconds, not milliseconds.
pub const UPLOAD_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The server-wide cap on usage uploads in progress (see the module docs). Clones share the cap.
#[derive(Debug, Clone)]
pub struct UploadSlots {
    slots: Arc<tokio::sync::Semaphore>,
    capacity: usize,
}

/// One upload's place under the cap; given back when dropped.
#[derive(Debug)]
pub struct UploadPermit {
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl UploadSlots {
    /// `capacity` uploads at once (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(capacity)),
            capacity,
        }
    }

    /// A place for one upload, or `None` at once when all are taken.
    pub fn try_take(&self) -> Option<UploadPermit> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        Some(UploadPermit { _slot: slot })
    }

    /// The cap.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Uploads in progress now.
    pub fn in_use(&self) -> usize {
        self.capacity.saturating_sub(self.slots.available_permits())
    }
}

/// Idle users' buckets are swept once every this many joins, so the map stays as small as the
/// set of users active within one refill period.
const SWEEP_EVERY_JOINS: usize = 256;

/// A token bucket: `burst` tokens, refilled at `per_second`. One message takes one token.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: RateLimit, now: Instant) -> Self {
        Self {
            rate,
            tokens: f64::from(rate.burst),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(self.rate.per_second))
            .min(f64::from(self.rate.burst));
        self.updated = now;
    }

    /// Takes one token.
    ///
    /// # Errors
    /// When the bucket is empty: how long until a token is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - self.tokens;
        Err(Duration::from_secs_f64(
            missing / f64::from(self.rate.per_second),
        ))
    }

    /// Whether the bucket has refilled completely (so forgetting it loses nothing).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= f64::from(self.rate.burst)
    }
}

/// The caps and rates the [`Limiter`] enforces (copied from [`crate::ServerConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub max_unauthenticated_per_ip: usize,
    pub connection_rate: RateLimit,
    pub user_rate: RateLimit,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "the server has {limit} connections open, its limit; retry in a moment or connect to another instance"
    )]
    TooManyConnections { limit: usize },
    #[error(
        "you already have {limit} connections open, the limit per user; close one (runs keep going when a socket closes) and retry"
    )]
    TooManyUserConnections { limit: usize },
    #[error(
        "{limit} connections from your address are waiting to authenticate, the limit; authenticate them (or connect with `Authorization: Bearer <JWT>`) and retry"
    )]
    TooManyUnauthenticated { limit: usize },
}

impl LimitError {
    /// How long the client should wait before trying again.
    pub fn retry_after(&self) -> Duration {
        CONNECTION_RETRY_AFTER
    }

    /// [`Self::retry_after`] in whole milliseconds, for `retry_after_ms`.
    pub fn retry_after_ms(&self) -> u64 {
        u64::try_from(self.retry_after().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A message was refused by a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// Whose bucket was empty.
    pub scope: RateScope,
    pub retry_after: Duration,
    /// The sustained rate of that bucket, for the message.
    pub per_second: u32,
}

/// Which bucket refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateScope {
    Connection,
    User,
}

impl RateLimited {
    /// What the client is told.
    pub fn message(&self) -> String {
        let whose = match self.scope {
            RateScope::Connection => "this connection",
            RateScope::User => "your connections together",
        };
        format!(
            "too many messages: {whose} may send {} per second; this message was dropped, send it again after retry_after_ms",
            self.per_second
        )
    }

    /// `retry_after` in whole milliseconds, rounded up so that retrying then succeeds.
    pub fn retry_after_ms(&self) -> u64 {
        let micros = self.retry_after.as_micros();
        u64::try_from(micros.div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// Shared connection counts and per-user buckets.
#[derive(Debug)]
pub struct Limiter {
    settings: LimitSettings,
    open: AtomicUsize,
    users: Mutex<Users>,
    /// Unauthenticated sockets per peer address; an address leaves the map at zero.
    anonymous: Mutex<HashMap<IpAddr, usize>>,
}

/// A user within a tenant: (tenant, user).
type UserKey = (String, String);

#[derive(Debug, Default)]
struct Users {
    entries: HashMap<UserKey, UserEntry>,
    joins_since_sweep: usize,
}

#[derive(Debug)]
struct UserEntry {
    connections: usize,
    /// Kept after the user's last connection closes until it is full again, so reconnecting does
    /// not buy a fresh burst.
    bucket: Arc<Mutex<TokenBucket>>,
}

/// Locks a mutex, recovering from poisoning: every critical section here leaves the data valid
/// at every point (counters and buckets), so a panic elsewhere cannot leave it half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Limiter {
    pub fn new(settings: LimitSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            open: AtomicUsize::new(0),
            users: Mutex::new(Users::default()),
            anonymous: Mutex::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// WebSocket connections holding a [`ConnectionPermit`] now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Reserves a place for one more connection.
    ///
    /// # Errors
    /// [`LimitError::TooManyConnections`] when `max_connections` are open.
    pub fn open(self: &Arc<Self>) -> Result<ConnectionPermit, LimitError> {
        let limit = self.settings.max_connections;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| LimitError::TooManyConnections { limit })?;
        Ok(ConnectionPermit {
            limiter: self.clone(),
        })
    }

    /// Holds a place for one socket from `ip` that has not authenticated yet.
    ///
    /// # Errors
    /// [`LimitError::TooManyUnauthenticated`] when `max_unauthenticated_per_ip` such sockets from
    /// this address are open.
    pub fn anonymous(self: &Arc<Self>, ip: IpAddr) -> Result<AnonymousPermit, LimitError> {
        let limit = self.settings.max_unauthenticated_per_ip;
        let mut anonymous = lock(&self.anonymous);
        let count = anonymous.entry(ip).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                anonymous.remove(&ip);
            }
            return Err(LimitError::TooManyUnauthenticated { limit });
        }
        *count += 1;
        Ok(AnonymousPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Counts one more connection for the principal and hands out their shared bucket.
    ///
    /// # Errors
    /// [`LimitError::TooManyUserConnections`] when the user has `max_connections_per_user` open.
    pub fn join(
        self: &Arc<Self>,
        principal: &Principal,
        now: Instant,
    ) -> Result<UserPermit, LimitError> {
        let key: UserKey = (principal.tenant_id.clone(), principal.user_id.clone());
        let limit = self.settings.max_connections_per_user;
        let mut users = lock(&self.users);
        users.joins_since_sweep += 1;
        if users.joins_since_sweep >= SWEEP_EVERY_JOINS {
            users.joins_since_sweep = 0;
            users
                .entries
                .retain(|_, entry| entry.connections > 0 || !lock(&entry.bucket).is_full(now));
        }
        let rate = self.settings.user_rate;
        let entry = users
            .entries
            .entry(key.clone())
            .or_insert_with(|| UserEntry {
                connections: 0,
                bucket: Arc::new(Mutex::new(TokenBucket::new(rate, now))),
            });
        if entry.connections >= limit {
            return Err(LimitError::TooManyUserConnections { limit });
        }
        entry.connections += 1;
        Ok(UserPermit {
            limiter: self.clone(),
            key,
            bucket: entry.bucket.clone(),
        })
    }

    /// Takes one message from the principal's shared bucket without counting a connection: for
    /// a one-shot HTTP request (an AG-UI cancel), which must be limited like a socket message but
    /// holds no connection open and so must not be refused by the connection cap.
    ///
    /// # Errors
    /// When the bucket is empty.
    pub fn take_user_message(
        &self,
        principal: &Principal,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let rate = self.settings.user_rate;
        let mut users = lock(&self.users);
        let entry = users
            .entries
            .entry((principal.tenant_id.clone(), principal.user_id.clone()))
            .or_insert_with(|| UserEntry {
                connections: 0,
                bucket: Arc::new(Mutex::new(TokenBucket::new(rate, now))),
            });
        let taken = lock(&entry.bucket).try_take(now);
        taken.map_err(|retry_after| RateLimited {
            scope: RateScope::User,
            retry_after,
            per_second: rate.per_second,
        })
    }

    /// Users with at least one connection or a bucket still refilling (for tests and metrics).
    pub fn tracked_users(&self) -> usize {
        lock(&self.users).entries.len()
    }

    fn leave(&self, key: &UserKey) {
        let mut users = lock(&self.users);
        let now = Instant::now();
        if let Some(entry) = users.entries.get_mut(key) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 && lock(&entry.bucket).is_full(now) {
                users.entries.remove(key);
            }
        }
    }

    fn forget_anonymous(&self, ip: IpAddr) {
        let mut anonymous = lock(&self.anonymous);
        if let Some(count) = anonymous.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                anonymous.remove(&ip);
            }
        }
    }
}

/// One of an address's `max_unauthenticated_per_ip` places; given back on drop (when the socket
/// authenticates or closes).
#[derive(Debug)]
pub struct AnonymousPermit {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Drop for AnonymousPermit {
    fn drop(&mut self) {
        self.limiter.forget_anonymous(self.ip);
    }
}

/// One place among `max_connections`; given back on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<Limiter>,
}

impl ConnectionPermit {
    /// The message-rate bucket for the connection this permit admits.
    pub fn bucket(&self, now: Instant) -> TokenBucket {
        TokenBucket::new(self.limiter.settings.connection_rate, now)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        // Saturating: a count that wrapped would refuse every later connection.
        let _ = self
            .limiter
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// One of a user's `max_connections_per_user` places, with the user's shared message bucket.
#[derive(Debug)]
pub struct UserPermit {
    limiter: Arc<Limiter>,
    key: UserKey,
    bucket: Arc<Mutex<TokenBucket>>,
}

impl UserPermit {
    pub fn user_id(&self) -> &str {
        &self.key.1
    }

    /// Takes one message from the user's bucket.
    ///
    /// # Errors
    /// When the user's connections together are over their rate.
    pub fn try_take(&self, now: Instant) -> Result<(), RateLimited> {
        lock(&self.bucket)
            .try_take(now)
            .map_err(|retry_after| RateLimited {
                scope: RateScope::User,
                retry_after,
                per_second: self.limiter.settings.user_rate.per_second,
            })
    }
}

impl Drop for UserPermit {
    fn drop(&mut self) {
        self.limiter.leave(&self.key);
    }
}

/// A connection's own rate check, then its user's.
///
/// # Errors
/// The first bucket that is empty. A message refused by the connection's bucket does not take
/// from the user's.
pub fn check_message(
    connection: &mut TokenBucket,
    connection_rate: RateLimit,
    user: Option<&UserPermit>,
    now: Instant,
) -> Result<(), RateLimited> {
    connection
        .try_take(now)
        .map_err(|retry_after| RateLimited {
            scope: RateScope::Connection,
            retry_after,
            per_second: connection_rate.per_second,
        })?;
    match user {
        Some(user) => user.try_take(now),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn upload_slots_refuse_past_the_cap_and_come_back_when_dropped() {
        let slots = super::UploadSlots::new(2);
        let first = slots.try_take().expect("first slot");
        let second = slots.try_take().expect("second slot");
        assert_eq!(slots.in_use(), 2);
        assert!(slots.try_take().is_none());
        drop(first);
        assert_eq!(slots.in_use(), 1);
        let third = slots.try_take().expect("a slot given back");
        drop((second, third));
        assert_eq!(slots.in_use(), 0);
        // A cap of zero would refuse every upload for ever: it is taken as one.
        assert_eq!(super::UploadSlots::new(0).capacity(), 1);
    }

    use super::*;

    fn rate(per_second: u32, burst: u32) -> RateLimit {
        RateLimit { per_second, burst }
    }

    fn limiter(max: usize, per_user: usize) -> Arc<Limiter> {
        Limiter::new(LimitSettings {
            max_connections: max,
            max_connections_per_user: per_user,
            max_unauthenticated_per_ip: 2,
            connection_rate: rate(10, 5),
            user_rate: rate(10, 8),
        })
    }

    /// `user` in tenant `acme`.
    fn user(name: &str) -> Principal {
        in_tenant(name, "acme")
    }

    fn in_tenant(name: &str, tenant: &str) -> Principal {
        Principal {
            user_id: name.into(),
            tenant_id: tenant.into(),
        }
    }

    #[test]
    fn the_same_sub_in_another_tenant_has_its_own_caps_and_bucket() {
        let limiter = limiter(100, 1);
        let now = Instant::now();
        let acme = limiter.join(&in_tenant("alice", "acme"), now).unwrap();
        // Another organization's alice is not refused because acme's alice is connected...
        let globex = limiter.join(&in_tenant("alice", "globex"), now).unwrap();
        // ...and does not spend acme's alice's messages.
        while globex.try_take(now).is_ok() {}
        assert!(acme.try_take(now).is_ok());
        assert_eq!(
            limiter.join(&in_tenant("alice", "acme"), now).unwrap_err(),
            LimitError::TooManyUserConnections { limit: 1 }
        );
    }

    #[test]
    fn unauthenticated_sockets_are_capped_per_address() {
        let limiter = limiter(100, 10);
        let here: IpAddr = [127, 0, 0, 1].into();
        let there: IpAddr = [127, 0, 0, 2].into();
        let first = limiter.anonymous(here).unwrap();
        let _second = limiter.anonymous(here).unwrap();
        let refused = limiter.anonymous(here).unwrap_err();
        assert_eq!(refused, LimitError::TooManyUnauthenticated { limit: 2 });
        assert!(refused.to_string().contains("authenticate"), "{refused}");
        // Another address is not affected; a place comes back when a socket authenticates.
        let _elsewhere = limiter.anonymous(there).unwrap();
        drop(first);
        let _third = limiter.anonymous(here).unwrap();
    }

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate(10, 3), start);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(start), Ok(()));
        }
        let wait = bucket.try_take(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Half a token later: still refused, and told the remaining half.
        let later = start + Duration::from_millis(50);
        let wait = bucket.try_take(later).unwrap_err();
        assert!(
            wait > Duration::from_millis(49) && wait <= Duration::from_millis(50),
            "{wait:?}"
        );
        // Waiting as told is enough.
        assert_eq!(bucket.try_take(later + wait), Ok(()));
        // A long pause refills to the burst, not beyond.
        let much_later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(much_later), Ok(()));
        }
        assert!(bucket.try_take(much_later).is_err());
    }

    #[test]
    fn a_zero_rate_means_no_limit() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(rate(0, 0), now);
        for _ in 0..10_000 {
            assert_eq!(bucket.try_take(now), Ok(()));
        }
    }

    #[test]
    fn over_a_second_at_most_burst_plus_rate_pass() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate(20, 40), start);
        let passed = (0..1000)
            .filter(|i| bucket.try_take(start + Duration::from_millis(*i)).is_ok())
            .count();
        // 40 at once, then one every 50 ms for 999 ms.
        assert_eq!(passed, 40 + 19);
    }

    #[test]
    fn retry_after_rounds_up_to_a_whole_millisecond() {
        let limited = RateLimited {
            scope: RateScope::User,
            retry_after: Duration::from_micros(1_001),
            per_second: 5,
        };
        assert_eq!(limited.retry_after_ms(), 2);
        let limited = RateLimited {
            retry_after: Duration::ZERO,
            ..limited
        };
        assert_eq!(limited.retry_after_ms(), 1);
        assert!(limited.message().contains("5 per second"));
    }

    #[test]
    fn total_connections_are_capped_and_given_back() {
        let limiter = limiter(2, 10);
        let a = limiter.open().unwrap();
        let b = limiter.open().unwrap();
        assert_eq!(
            limiter.open().unwrap_err(),
            LimitError::TooManyConnections { limit: 2 }
        );
        drop(a);
        let c = limiter.open().unwrap();
        assert_eq!(limiter.open_connections(), 2);
        drop((b, c));
        assert_eq!(limiter.open_connections(), 0);
    }

    #[test]
    fn per_user_connections_are_capped_per_user() {
        let limiter = limiter(100, 2);
        let now = Instant::now();
        let a1 = limiter.join(&user("alice"), now).unwrap();
        let _a2 = limiter.join(&user("alice"), now).unwrap();
        assert_eq!(
            limiter.join(&user("alice"), now).unwrap_err(),
            LimitError::TooManyUserConnections { limit: 2 }
        );
        // Another user is not affected.
        let _b = limiter.join(&user("bob"), now).unwrap();
        drop(a1);
        let _a3 = limiter.join(&user("alice"), now).unwrap();
    }

    #[test]
    fn a_users_connections_share_one_bucket() {
        let limiter = limiter(100, 10);
        let now = Instant::now();
        let one = limiter.join(&user("alice"), now).unwrap();
        let two = limiter.join(&user("alice"), now).unwrap();
        let bob = limiter.join(&user("bob"), now).unwrap();
        let taken = (0..20)
            .filter(|i| {
                let permit = if i % 2 == 0 { &one } else { &two };
                permit.try_take(now).is_ok()
            })
            .count();
        assert_eq!(taken, 8, "the user's burst, across both connections");
        let refused = one.try_take(now).unwrap_err();
        assert_eq!(refused.scope, RateScope::User);
        assert!(bob.try_take(now).is_ok(), "bob has his own bucket");
    }

    #[test]
    fn one_shot_requests_share_the_users_bucket_without_taking_a_connection() {
        let limiter = limiter(100, 1);
        let now = Instant::now();
        let permit = limiter.join(&user("alice"), now).unwrap();
        // The user is at the connection cap, yet a one-shot request is only rate limited.
        let taken = (0..20)
            .filter(|_| limiter.take_user_message(&user("alice"), now).is_ok())
            .count();
        assert_eq!(taken, 8, "the user's burst");
        assert_eq!(permit.try_take(now).unwrap_err().scope, RateScope::User);
        assert!(limiter.take_user_message(&user("bob"), now).is_ok());
    }

    #[test]
    fn reconnecting_does_not_refill_a_users_bucket() {
        let limiter = limiter(100, 10);
        let now = Instant::now();
        let permit = limiter.join(&user("alice"), now).unwrap();
        while permit.try_take(now).is_ok() {}
        drop(permit);
        let again = limiter.join(&user("alice"), now).unwrap();
        assert!(again.try_take(now).is_err(), "the bucket was kept");
        drop(again);
        // Once full again, an idle user's entry is forgotten by the next sweep.
        let later = now + Duration::from_secs(60);
        for i in 0..SWEEP_EVERY_JOINS {
            drop(limiter.join(&user(&format!("u{i}")), later).unwrap());
        }
        assert!(limiter.tracked_users() < SWEEP_EVERY_JOINS);
    }

    #[test]
    fn the_connection_bucket_is_checked_first_and_spares_the_users() {
        let limiter = limiter(100, 10);
        let now = Instant::now();
        let user = limiter.join(&user("alice"), now).unwrap();
        let connection_rate = rate(1, 2);
        let mut connection = TokenBucket::new(connection_rate, now);
        assert!(check_message(&mut connection, connection_rate, Some(&user), now).is_ok());
        assert!(check_message(&mut connection, connection_rate, Some(&user), now).is_ok());
        let refused =
            check_message(&mut connection, connection_rate, Some(&user), now).unwrap_err();
        assert_eq!(refused.scope, RateScope::Connection);
        // The user's bucket (burst 8) lost only the two messages that passed.
        let left = (0..10).filter(|_| user.try_take(now).is_ok()).count();
        assert_eq!(left, 6);
    }
}
