//! Throttling of failed logins and of registrations, in Redis.
//!
//! Failures are counted per username and per client address in fixed windows that start at the
//! first failure. Once a counter passes its maximum, logins for that username (or from that
//! address) get 429 with `Retry-After` until the window ends: the real user is delayed, never
//! locked out for good, and a success clears the username's counter.
//!
//! Every attempt is counted as a failure before its password is checked, in one atomic Redis
//! call per counter, and a success takes its count back. Checking first and counting after the
//! (slow) password check would let N parallel guesses all pass the check.
//!
//! Attempts are also counted per client address whether they succeed or not, and never given
//! back: each costs a bcrypt hash, and a client logging into its own accounts in a loop would
//! otherwise take the CPU from everyone's logins.
//!
//! Counters are counted from the client's own (its address) to those it shares with others (a
//! username, the registrations of all addresses), and an attempt refused by one is not counted on
//! the next: otherwise a client past its address's budget could go on, at the price of a cheap 429,
//! spending the budgets of other people's usernames (locking them out) or of everyone's sign-ups.
//!
//! An address is a [`ClientNetwork`]: an IPv6 client counts as its /64.
//!
//! Registrations are counted per client address and in total, before the password is hashed and
//! before the database says whether the name is taken: each costs a bcrypt hash, and the 409 for a
//! taken name answers "does this user exist?". The total bounds what many addresses can do
//! together (at the price that they can use up everyone's budget for a window).
//!
//! User look-ups are counted per caller and minute, so the directory cannot be walked by id, and
//! token refreshes per client address and minute, so a client cannot fill the token table.
//!
//! When Redis is unreachable, login and password changes answer 503 (fail closed): without the
//! counters, guessing would be unthrottled. Registration, refreshes and look-ups go on
//! unthrottled (fail open, logged): a Redis outage must not stop sign-ups or chats, and bcrypt
//! still bounds each registration's cost. Everything else in `auth` keeps working without Redis.
use shared::client_address::ClientNetwork;
use shared::ids::UserId;
use shared::username::Username;
use spin_sdk::redis::Connection;

use crate::error::AuthError;
use crate::settings::{RegistrationLimits, Settings, ThrottleSettings};

pub struct LoginThrottle {
    connection: Connection,
    /// None for a login name that is not a username (it names no account to protect).
    username_key: Option<String>,
    /// Failures from the client's network.
    address_key: Option<String>,
    /// Every attempt from the client's network, successes too.
    attempts_key: Option<String>,
}

impl LoginThrottle {
    pub async fn open(
        settings: &Settings,
        username: Option<&Username>,
        client_network: Option<ClientNetwork>,
    ) -> Result<Self, AuthError> {
        let connection = shared::redis::connect(&settings.redis_url).await?;
        let prefix = &settings.redis_key_prefix;
        Ok(Self {
            connection,
            username_key: username.map(|name| format!("{prefix}:login-failures:user:{}", name.as_str())),
            address_key: client_network.map(|network| format!("{prefix}:login-failures:address:{network}")),
            attempts_key: client_network.map(|network| format!("{prefix}:login-attempts:address:{network}")),
        })
    }

    /// Counts the attempt (as a failure, until it succeeds), and refuses it when any counter is
    /// past its maximum.
    pub async fn count_attempt(&self, limits: &ThrottleSettings) -> Result<(), AuthError> {
        count_all(&self.connection, self.counters(limits), limits.window_seconds).await
    }

    /// The password was right: the username starts afresh, and the address gets its count back.
    pub async fn record_success(&self) -> Result<(), AuthError> {
        if let Some(username_key) = &self.username_key {
            self.connection.del(&[username_key.as_str()]).await?;
        }
        if let Some(address_key) = &self.address_key {
            shared::redis::uncount(&self.connection, address_key).await?;
        }
        Ok(())
    }

    fn counters<'a>(&'a self, limits: &ThrottleSettings) -> impl Iterator<Item = (&'a str, i64)> {
        let attempts = self.attempts_key.as_deref().map(|key| (key, limits.attempts_per_address_max));
        let address = self.address_key.as_deref().map(|key| (key, limits.failures_per_address_max));
        let username = self.username_key.as_deref().map(|key| (key, limits.failures_per_username_max));
        attempts.into_iter().chain(address).chain(username)
    }
}

/// Counts a registration per client address and in total; 429 past either maximum.
pub async fn count_registration(settings: &Settings, client_network: Option<ClientNetwork>) -> Result<(), AuthError> {
    let RegistrationLimits { per_address_max, total_max, window_seconds } = settings.registration_limits;
    let prefix = &settings.redis_key_prefix;
    let total = (format!("{prefix}:registrations:total"), total_max);
    let address = client_network.map(|network| (format!("{prefix}:registrations:address:{network}"), per_address_max));
    let counters: Vec<(String, i64)> = address.into_iter().chain(std::iter::once(total)).collect();
    count_failing_open(settings, &counters, window_seconds, "registration").await
}

/// Counts a user look-up (`/users/{id}`, `/users?username=`) for the caller, per minute; 429
/// past `user_lookups_per_minute`. Ids are sequential, so without a limit one account could walk
/// the whole directory; clients remember the names they fetched, so real use stays far below it.
pub async fn count_lookup(settings: &Settings, caller: UserId) -> Result<(), AuthError> {
    const WINDOW_SECONDS: u32 = 60;
    let key = format!("{}:user-lookups:{caller}", settings.redis_key_prefix);
    count_failing_open(settings, &[(key, settings.user_lookups_per_minute)], WINDOW_SECONDS, "user-lookup").await
}

/// Counts a token refresh for the client's network, per minute; 429 past
/// `token_refreshes_per_minute`. Every rotation stores a token that reuse detection must
/// recognise until it expires, so refreshing in a loop would fill the table; a page refreshes
/// once per access-token lifetime, or when it loads.
pub async fn count_refresh(settings: &Settings, client_network: Option<ClientNetwork>) -> Result<(), AuthError> {
    const WINDOW_SECONDS: u32 = 60;
    let Some(network) = client_network else { return Ok(()) };
    let key = format!("{}:token-refreshes:address:{network}", settings.redis_key_prefix);
    count_failing_open(settings, &[(key, settings.token_refreshes_per_minute)], WINDOW_SECONDS, "refresh").await
}

/// [`count_all`], except that without Redis the hit goes uncounted (logged) instead of failing.
async fn count_failing_open(
    settings: &Settings,
    counters: &[(String, i64)],
    window_seconds: u32,
    what: &str,
) -> Result<(), AuthError> {
    // A failed connection is logged (as unavailable) where it is made.
    let Ok(connection) = shared::redis::connect(&settings.redis_url).await else { return Ok(()) };
    let counters = counters.iter().map(|(key, maximum)| (key.as_str(), *maximum));
    match count_all(&connection, counters, window_seconds).await {
        Err(AuthError::Redis(error)) => {
            eprintln!("[{what}-throttle] not enforced: {error:?}");
            Ok(())
        }
        counted => counted,
    }
}

/// Counts one hit on each `(key, maximum)` in order, up to the first past its maximum: 429 with
/// that counter's wait, and the counters after it are not counted. (So `Retry-After` may be short
/// of a later counter's wait, which a retry then reports.)
async fn count_all<'a>(
    connection: &Connection,
    counters: impl Iterator<Item = (&'a str, i64)>,
    window_seconds: u32,
) -> Result<(), AuthError> {
    for (key, maximum) in counters {
        let window = shared::redis::count_in_window(connection, key, window_seconds).await?;
        if window.count > maximum {
            let retry_after_seconds = u32::try_from(window.seconds_left).unwrap_or(window_seconds);
            return Err(AuthError::Throttled { retry_after_seconds });
        }
    }
    Ok(())
}
