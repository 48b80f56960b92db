//! Which open sockets belong to which token, so that revoking a token
//! closes its sockets at once (close code 4403).
//!
//! Revocations made through this server's API act immediately. The
//! [`poll_revocations`] task also reads recent revocations from the store,
//! which catches those made by `crowdroom token revoke` or by another
//! server process sharing the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use crate::conn::CloseSignal;
use crate::error::CloseCode;
use crate::ids::{ConnId, TokenId, now_ms};
use crate::store::Store;

/// How often the store is asked for new revocations.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Overlap between polls, so a revocation committed during a poll is not missed.
const POLL_OVERLAP_MS: i64 = 5_000;

/// Open sockets by token.
#[derive(Default)]
pub struct Sessions {
    by_token: DashMap<TokenId, HashMap<ConnId, Arc<CloseSignal>>>,
}

/// Unregisters a socket when dropped.
pub struct SessionGuard {
    sessions: Arc<Sessions>,
    token: TokenId,
    conn: ConnId,
}

impl Sessions {
    /// Registers an open socket of `token`.
    pub fn register(
        self: &Arc<Self>,
        token: &TokenId,
        conn: ConnId,
        signal: Arc<CloseSignal>,
    ) -> SessionGuard {
        self.by_token
            .entry(token.clone())
            .or_default()
            .insert(conn, signal);
        SessionGuard {
            sessions: self.clone(),
            token: token.clone(),
            conn,
        }
    }

    /// Closes every open socket of `token` with `code`; returns how many.
    pub fn close_token(&self, token: &TokenId, code: CloseCode) -> usize {
        match self.by_token.get(token) {
            Some(conns) => {
                for signal in conns.values() {
                    signal.close(code);
                }
                conns.len()
            }
            None => 0,
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Some(mut conns) = self.sessions.by_token.get_mut(&self.token) {
            conns.remove(&self.conn);
        }
        self.sessions
            .by_token
            .remove_if(&self.token, |_, conns| conns.is_empty());
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
        if sessions.by_token.is_empty() {
            since = now_ms() - POLL_OVERLAP_MS;
            continue;
        }
        let started = now_ms();
        match store.revoked_since(since).await {
            Ok(tokens) => {
                for token in tokens {
                    sessions.close_token(&token, CloseCode::TokenRevoked);
                }
                since = started - POLL_OVERLAP_MS;
            }
            Err(error) => tracing::warn!(%error, "cannot poll token revocations"),
        }
    }
}
