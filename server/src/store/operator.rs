//! Server operators: a role above the rooms, issued only from the command
//! line. An operator's token (`cop_…`, stored hashed like room tokens)
//! opens the operator's API only: every room's figures, and a moderator
//! token for any room, which is then an ordinary room token with its own
//! expiry and revocation.

use serde::Serialize;
use sqlx::Row;

use super::{RoomRow, Store};
use crate::auth::{NewToken, hash_token, is_operator_form};
use crate::error::{Error, Result};
use crate::ids::{self, MAX_DISPLAY_NAME_CHARS, RoomId, TokenId, UserId, now_ms};

/// An authenticated operator.
#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    pub user: UserId,
    pub display_name: String,
    pub token_id: TokenId,
    pub expires_at: Option<i64>,
}

impl Store {
    /// Issues an operator token for `user` (created if new); returns its id
    /// and the secret, shown once.
    pub async fn issue_operator_token(
        &self,
        user: &UserId,
        ttl_ms: Option<i64>,
    ) -> Result<(TokenId, String)> {
        self.ensure_user(user, user.as_str()).await?;
        let token = NewToken::operator();
        let created_at = now_ms();
        sqlx::query(
            "INSERT INTO operator_tokens (id, hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.id.0.as_str())
        .bind(&token.hash)
        .bind(user.as_str())
        .bind(created_at)
        .bind(ttl_ms.map(|ttl| created_at.saturating_add(ttl)))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok((token.id, token.secret))
    }

    /// Revokes an operator token by id.
    pub async fn revoke_operator_token(&self, id: &TokenId) -> Result<()> {
        let revoked = sqlx::query(
            "UPDATE operator_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(id.0.as_str())
        .execute(&mut *self.conn().await?)
        .await?;
        if revoked.rows_affected() == 0 {
            return Err(Error::NotFound("operator token"));
        }
        Ok(())
    }

    /// The operator behind `secret`, or why not.
    pub async fn authenticate_operator(&self, secret: &str) -> Result<Operator> {
        if !is_operator_form(secret) {
            return Err(Error::Unauthorized);
        }
        let row = sqlx::query(
            "SELECT t.id, t.user_id, t.expires_at, t.revoked_at, u.display_name \
             FROM operator_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
        )
        .bind(hash_token(secret))
        .fetch_optional(&mut *self.conn().await?)
        .await?
        .ok_or(Error::Unauthorized)?;
        let expires_at = super::access::still_valid(&row)?;
        Ok(Operator {
            user: UserId::parse(&row.try_get::<String, _>("user_id")?)?,
            display_name: ids::clip(row.try_get("display_name")?, MAX_DISPLAY_NAME_CHARS).into(),
            token_id: TokenId(row.try_get::<String, _>("id")?.into()),
            expires_at,
        })
    }

    /// Every room on the server, by id, a page at a time (after `after`).
    pub async fn all_rooms(&self, after: Option<&RoomId>, limit: i64) -> Result<Vec<RoomRow>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM rooms WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.map_or("", RoomId::as_str))
        .bind(limit.clamp(1, 200))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RoomRow {
                    id: RoomId::parse(&row.try_get::<String, _>("id")?)?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
