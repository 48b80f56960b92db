//! Which open sockets belong to which token, so that revoking a token
//! closes its sockets at once (close code 4403).
//!
//! It is also how the server's shutdown reaches every socket (1001): the
//! sockets have no cancellation token of their own (see `conn`).
//!
//! And it keeps them alive: once a second, [`keepalive`] walks every socket
//! ([`Sessions::sweep`]), closes those whose token has expired (4401) or
//! whose peer has sent nothing, not even a pong, for [`IDLE_SWEEPS`] sweeps,
//! and queues a ping to one in [`PING_EVERY`] of them (by connection id, so
//! each is pinged every 20 s and the pings spread over the interval). One
//! walk instead of a timer per socket: an idle connection holds no timer
//! (112 bytes and a timer-wheel entry each), and a socket's read resets an
//! atomic counter instead of re-arming a timer.
//!
//! The same walk is the write deadline: it counts down the write in
//! progress of each socket (armed by the socket when it takes a burst,
//! `conn::WriteDeadline`), and abandons one past its deadline, closing the
//! socket with 4008 ([`CloseSignal::write_overdue`]). That runs for sockets
//! already closing too: a socket stuck in a write never gets to its close.
//!
//! Revocations made through this server's API act immediately. The
//! [`poll_revocations`] task also reads recent revocations from the store,
//! which catches those made by `crowdroom token revoke` or by another
//! server process sharing the database.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::conn::CloseSignal;
use crate::error::CloseCode;
use crate::ids::{ConnId, TokenId, UserId, now_ms};
use crate::store::Store;

/// How often the store is asked for new revocations.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Overlap between polls, so a revocation committed during a poll is not missed.
const POLL_OVERLAP_MS: i64 = 5_000;
/// How often [`keepalive`] sweeps the sockets.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// A socket is pinged every this many sweeps (20 s): the y-websocket client
/// gives up on a server silent for 30 s, and NATs forget quiet flows.
pub const PING_EVERY: u64 = 20;
/// A peer that sends nothing (not even a pong) for this many sweeps (75 s,
/// more than three pings) is gone.
pub const IDLE_SWEEPS: u32 = 75;

/// What one sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    pub pinged: usize,
    pub expired: usize,
    pub idle: usize,
    /// Writes abandoned past their deadline.
    pub stalled: usize,
}

/// Open sockets, by connection, each with its principal (whose token it
/// was opened with). Keyed by connection, not by token: registering a
/// socket allocates nothing of its own (a map by token held a map per token
/// and two copies of the token's id, about 200 bytes per idle connection),
/// and the rare revocation scans the sockets once for all its tokens.
#[derive(Default)]
pub struct Sessions {
    by_conn: DashMap<ConnId, (Arc<Principal>, CloseSignal)>,
    /// Open sockets per user (every room's), for the cap below: one entry
    /// per user with a socket open, removed with their last socket.
    by_user: DashMap<UserId, u32>,
    /// Most sockets one user may hold open at once (0: no cap): a socket
    /// over it is closed at once with 1013 (`http::authenticate` refuses
    /// the upgrade with 429 before that, unless upgrades race).
    max_per_user: u32,
    /// Set by [`Sessions::close_all`]: a socket registered after it is
    /// closed at once.
    closing: AtomicBool,
}

/// Unregisters a socket when dropped.
pub struct SessionGuard {
    sessions: Arc<Sessions>,
    conn: ConnId,
}

impl Sessions {
    /// No socket yet; at most `max_per_user` open sockets per user (0: no cap).
    pub fn with_user_cap(max_per_user: u32) -> Self {
        Sessions {
            max_per_user,
            ..Sessions::default()
        }
    }

    /// Whether `user` may open one more socket (the check before an upgrade).
    pub fn admits(&self, user: &UserId) -> bool {
        self.max_per_user == 0
            || self
                .by_user
                .get(user)
                .is_none_or(|open| *open < self.max_per_user)
    }

    /// Registers an open socket of `principal`'s token; one over its user's
    /// cap is closed at once with 1013.
    pub fn register(
        self: &Arc<Self>,
        principal: &Arc<Principal>,
        conn: ConnId,
        signal: CloseSignal,
    ) -> SessionGuard {
        let over_cap = {
            let mut open = self.by_user.entry(principal.user.clone()).or_insert(0);
            *open = open.saturating_add(1);
            self.max_per_user != 0 && *open > self.max_per_user
        };
        if over_cap {
            signal.close(CloseCode::TryLater);
        }
        self.by_conn
            .insert(conn, (principal.clone(), signal.clone()));
        // Checked after the insert: either `close_all` sees this socket or
        // this sees its flag (both are sequentially consistent).
        if self.closing.load(Ordering::SeqCst) {
            signal.close(CloseCode::GoingAway);
        }
        SessionGuard {
            sessions: self.clone(),
            conn,
        }
    }

    /// Closes every open socket, and any opened from now on, with `code`
    /// (the server's shutdown: 1001).
    pub fn close_all(&self, code: CloseCode) {
        self.closing.store(true, Ordering::SeqCst);
        for entry in &self.by_conn {
            entry.value().1.close(code);
        }
    }

    /// Closes every open socket of `token` with `code`; returns how many.
    pub fn close_token(&self, token: &TokenId, code: CloseCode) -> usize {
        self.close_tokens(&HashSet::from([token]), code)
    }

    /// Closes every open socket of any of `tokens` with `code`, in one pass
    /// over the sockets; returns how many.
    pub fn close_tokens(&self, tokens: &HashSet<&TokenId>, code: CloseCode) -> usize {
        let mut closed = 0;
        for entry in &self.by_conn {
            let (principal, signal) = entry.value();
            if tokens.contains(&principal.token_id) {
                signal.close(code);
                closed += 1;
            }
        }
        closed
    }

    /// The keepalive walk, the `tick`th (see the module's docs). `now_ms` is
    /// the wall clock that token expiry is stated in.
    pub fn sweep(&self, tick: u64, now_ms: i64) -> Swept {
        let mut swept = Swept::default();
        for entry in &self.by_conn {
            let (principal, signal) = entry.value();
            if signal.write_overdue() {
                swept.stalled += 1;
                continue;
            }
            if signal.is_closed() {
                continue;
            }
            if principal.expires_at.is_some_and(|at| at <= now_ms) {
                signal.close(CloseCode::TokenExpired);
                swept.expired += 1;
            } else if signal.idle_sweep() > IDLE_SWEEPS {
                signal.close(CloseCode::Normal);
                swept.idle += 1;
            } else if entry.key().0 % PING_EVERY == tick % PING_EVERY {
                signal.ping();
                swept.pinged += 1;
            }
        }
        swept
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Some((_, (principal, _))) = self.sessions.by_conn.remove(&self.conn) {
            // The count goes with the user's last socket, so the map holds
            // only users with sockets open.
            self.sessions
                .by_user
                .remove_if_mut(&principal.user, |_, open| {
                    *open = open.saturating_sub(1);
                    *open == 0
                });
        }
    }
}

/// On `shutdown`, closes every socket with 1001.
pub async fn close_on_shutdown(sessions: Arc<Sessions>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    sessions.close_all(CloseCode::GoingAway);
}

/// Sweeps the sockets once a second ([`Sessions::sweep`]), until `shutdown`.
pub async fn keepalive(sessions: Arc<Sessions>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = 0u64;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let swept = sessions.sweep(tick, now_ms());
        if swept.expired + swept.idle + swept.stalled > 0 {
            tracing::debug!(?swept, "keepalive sweep closed sockets");
        }
        tick += 1;
    }
}

/// Closes sockets of tokens revoked in the store, until `shutdown`.
pub async fn poll_revocations(store: Store, sessions: Arc<Sessions>, shutdown: CancellationToken) {
    let mut since = now_ms() - POLL_OVERLAP_MS;
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        if sessions.by_conn.is_empty() {
            since = now_ms() - POLL_OVERLAP_MS;
            continue;
        }
        let started = now_ms();
        match store.revoked_since(since).await {
            Ok(tokens) => {
                if !tokens.is_empty() {
                    sessions.close_tokens(&tokens.iter().collect(), CloseCode::TokenRevoked);
                }
                since = started - POLL_OVERLAP_MS;
            }
            Err(error) => tracing::warn!(%error, "cannot poll token revocations"),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::conn::{Outgoing, channel};
    use crate::metrics::{Metrics, YJS};

    fn socket(sessions: &Arc<Sessions>, token: &str) -> (SessionGuard, crate::conn::OutboundRx) {
        socket_expiring(sessions, token, None)
    }

    fn socket_expiring(
        sessions: &Arc<Sessions>,
        token: &str,
        expires_at: Option<i64>,
    ) -> (SessionGuard, crate::conn::OutboundRx) {
        let (tx, rx) = channel(ConnId::next(), 4, YJS, Metrics::new());
        let principal = Arc::new(Principal {
            user: crate::ids::UserId::parse("u1").expect("a valid user id"),
            display_name: "U".into(),
            room: crate::ids::RoomId::parse("r1").expect("a valid room id"),
            role: crate::auth::Role::Worker,
            token_id: TokenId(token.into()),
            expires_at,
        });
        let guard = sessions.register(&principal, tx.id, rx.signal());
        (guard, rx)
    }

    #[tokio::test]
    async fn sockets_over_the_users_cap_close_with_1013_and_free_their_place() {
        let sessions = Arc::new(Sessions::with_user_cap(2));
        let user = crate::ids::UserId::parse("u1").expect("a valid user id");
        let (_a, a) = socket(&sessions, "t1");
        assert!(sessions.admits(&user));
        let (b_guard, _b) = socket(&sessions, "t2");
        assert!(!sessions.admits(&user));
        let (c_guard, c) = socket(&sessions, "t3");
        assert!(c.signal().is_closed());
        assert_eq!(c.signal().code(), CloseCode::TryLater);
        assert!(!a.signal().is_closed());
        drop(c_guard);
        drop(b_guard);
        assert!(sessions.admits(&user));
        let (_d, d) = socket(&sessions, "t4");
        assert!(!d.signal().is_closed());
        assert_eq!(sessions.by_user.get(&user).map(|open| *open), Some(2));
    }

    #[tokio::test]
    async fn close_all_reaches_open_sockets_and_later_ones() {
        let sessions = Arc::new(Sessions::default());
        let (_a, a) = socket(&sessions, "t1");
        let (_b, b) = socket(&sessions, "t2");
        assert!(!a.signal().is_closed());
        sessions.close_all(CloseCode::GoingAway);
        for rx in [&a, &b] {
            assert!(matches!(rx.next().await, Outgoing::Closed));
            assert_eq!(rx.signal().code(), CloseCode::GoingAway);
        }
        // A socket that registers during the shutdown is closed at once.
        let (_c, c) = socket(&sessions, "t3");
        assert_eq!(c.signal().code(), CloseCode::GoingAway);
        assert!(c.signal().is_closed());
    }

    #[tokio::test]
    async fn close_token_closes_only_that_tokens_sockets_and_guards_unregister() {
        let sessions = Arc::new(Sessions::default());
        let (_a, a) = socket(&sessions, "t1");
        let (b_guard, b) = socket(&sessions, "t2");
        assert_eq!(
            sessions.close_token(&TokenId("t1".into()), CloseCode::TokenRevoked),
            1
        );
        assert_eq!(a.signal().code(), CloseCode::TokenRevoked);
        assert!(!b.signal().is_closed());
        drop(b_guard);
        assert_eq!(
            sessions.close_token(&TokenId("t2".into()), CloseCode::TokenRevoked),
            0
        );
        assert!(!b.signal().is_closed());
    }

    /// How many pings are queued for `rx` (taking everything queued).
    fn pings(rx: &crate::conn::OutboundRx) -> usize {
        rx.take()
            .iter()
            .filter(|message| matches!(message, axum::extract::ws::Message::Ping(_)))
            .count()
    }

    #[test]
    fn a_sweep_closes_expired_tokens_and_leaves_the_rest() {
        let sessions = Arc::new(Sessions::default());
        let (_a, a) = socket_expiring(&sessions, "t1", Some(1_000));
        let (_b, b) = socket_expiring(&sessions, "t2", Some(5_000));
        let (_c, c) = socket(&sessions, "t3");
        let swept = sessions.sweep(1, 1_000);
        assert_eq!(swept.expired, 1);
        assert_eq!(a.signal().code(), CloseCode::TokenExpired);
        assert!(!b.signal().is_closed() && !c.signal().is_closed());
        assert_eq!(sessions.sweep(2, 5_000).expired, 1);
        assert_eq!(b.signal().code(), CloseCode::TokenExpired);
        assert!(!c.signal().is_closed());
    }

    #[test]
    fn each_socket_is_pinged_once_every_ping_interval() {
        let sessions = Arc::new(Sessions::default());
        let sockets: Vec<_> = (0..PING_EVERY + 3)
            .map(|i| socket(&sessions, &format!("t{i}")))
            .collect();
        let mut pinged = 0;
        for tick in 0..PING_EVERY {
            // Every socket reads a pong before each sweep: none goes idle.
            for (_, rx) in &sockets {
                rx.mark_read();
            }
            pinged += sessions.sweep(tick, 0).pinged;
        }
        assert_eq!(pinged, sockets.len());
        for (_, rx) in &sockets {
            assert_eq!(pings(rx), 1, "one ping per socket per interval");
            assert!(!rx.signal().is_closed());
        }
    }

    #[tokio::test]
    async fn a_write_past_its_deadline_is_abandoned_even_on_a_closing_socket() {
        let sessions = Arc::new(Sessions::default());
        let (_stuck, stuck) = socket(&sessions, "t1");
        let (_fine, fine) = socket(&sessions, "t2");
        let deadline = crate::conn::WriteDeadline::default().base.as_secs();
        for rx in [&stuck, &fine] {
            rx.signal().ping();
            assert!(matches!(rx.next().await, Outgoing::Burst(_)));
        }
        // A kick closes the stuck socket, but its write goes on: only the
        // deadline can end it.
        stuck.signal().close(CloseCode::Kicked);
        let mut stalled = 0;
        for tick in 0..deadline {
            stalled += sessions.sweep(tick, 0).stalled;
            fine.written();
            // A sweep may queue a ping: the healthy socket writes it.
            if let Some(Outgoing::Burst(_)) = fine.next().now_or_never() {}
        }
        assert_eq!(stalled, 0, "the deadline itself is not overdue");
        assert!(!stuck.is_abandoned());
        assert_eq!(sessions.sweep(deadline, 0).stalled, 1);
        assert!(stuck.is_abandoned());
        assert!(stuck.abandoned().now_or_never().is_some());
        // The first code stays (the client hears why it was closed); the
        // write is given up all the same.
        assert_eq!(stuck.signal().code(), CloseCode::Kicked);
        assert!(!fine.is_abandoned() && !fine.signal().is_closed());
    }

    #[test]
    fn a_silent_peer_is_closed_after_the_idle_sweeps_and_a_read_resets_the_count() {
        let sessions = Arc::new(Sessions::default());
        let (_quiet, quiet) = socket(&sessions, "t1");
        let (_chatty, chatty) = socket(&sessions, "t2");
        let mut idle = 0;
        for tick in 0..u64::from(IDLE_SWEEPS) {
            chatty.mark_read();
            idle += sessions.sweep(tick, 0).idle;
            // The writer sends the pings; dropping them keeps the queue free.
            quiet.take();
            chatty.take();
        }
        assert_eq!(
            idle, 0,
            "idle for exactly IDLE_SWEEPS sweeps is not too long"
        );
        chatty.mark_read();
        assert_eq!(sessions.sweep(u64::from(IDLE_SWEEPS), 0).idle, 1);
        assert_eq!(quiet.signal().code(), CloseCode::Normal);
        assert!(quiet.signal().is_closed());
        assert!(!chatty.signal().is_closed());
    }
}
