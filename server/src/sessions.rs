//! Which open sockets belong to which token, so that revoking a token
//! closes its sockets at once (close code 4403).
//!
//! It is also how the server's shutdown reaches every socket (1001): the
//! sockets have no cancellation token of their own (see `conn`).
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
use crate::ids::{ConnId, TokenId, now_ms};
use crate::store::Store;

/// How often the store is asked for new revocations.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Overlap between polls, so a revocation committed during a poll is not missed.
const POLL_OVERLAP_MS: i64 = 5_000;

/// Open sockets, by connection, each with its principal (whose token it
/// was opened with). Keyed by connection, not by token: registering a
/// socket allocates nothing of its own (a map by token held a map per token
/// and two copies of the token's id, about 200 bytes per idle connection),
/// and the rare revocation scans the sockets once for all its tokens.
#[derive(Default)]
pub struct Sessions {
    by_conn: DashMap<ConnId, (Arc<Principal>, CloseSignal)>,
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
    /// Registers an open socket of `principal`'s token.
    pub fn register(
        self: &Arc<Self>,
        principal: &Arc<Principal>,
        conn: ConnId,
        signal: CloseSignal,
    ) -> SessionGuard {
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
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.by_conn.remove(&self.conn);
    }
}

/// On `shutdown`, closes every socket with 1001.
pub async fn close_on_shutdown(sessions: Arc<Sessions>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    sessions.close_all(CloseCode::GoingAway);
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
    use super::*;
    use crate::conn::{Outgoing, channel};
    use crate::metrics::{Metrics, YJS};

    fn socket(sessions: &Arc<Sessions>, token: &str) -> (SessionGuard, crate::conn::OutboundRx) {
        let (tx, rx) = channel(ConnId::next(), 4, YJS, Metrics::new());
        let principal = Arc::new(Principal {
            user: crate::ids::UserId::parse("u1").expect("a valid user id"),
            display_name: "U".into(),
            room: crate::ids::RoomId::parse("r1").expect("a valid room id"),
            role: crate::auth::Role::Worker,
            token_id: TokenId(token.into()),
            expires_at: None,
        });
        let guard = sessions.register(&principal, tx.id, rx.signal());
        (guard, rx)
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
}
