//! Rooms, users, memberships and tokens: who may enter which room as what.
//!
//! A token carries the role it grants. Changing a member's role updates the
//! membership and every live token of that member in the room in one
//! transaction, so the token row is always the truth at authentication.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use crate::auth::{NewToken, Principal, Role, hash_token};
use crate::error::{Error, Result};
use crate::ids::{self, MAX_DISPLAY_NAME_CHARS, RoomId, TokenId, UserId, now_ms};

/// A room as listed by the API.
#[derive(Debug, Clone, Serialize)]
pub struct RoomRow {
    pub id: RoomId,
    pub name: String,
    pub created_at: i64,
}

/// A member of a room.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    pub user: UserId,
    pub display_name: String,
    pub role: Role,
    pub since: i64,
}

/// A token as listed to moderators (never the secret or its hash).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub id: TokenId,
    pub user: UserId,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn parse_role(raw: &str) -> Result<Role> {
    raw.parse()
        .map_err(|_| Error::Internal(format!("stored role {raw:?} is unknown")))
}

/// A token's id, from `row`'s `id` column.
fn token_id(row: &AnyRow) -> Result<TokenId> {
    Ok(TokenId(row.try_get::<&str, _>("id")?.into()))
}

fn room_row(row: &AnyRow) -> Result<RoomRow> {
    Ok(RoomRow {
        id: RoomId::parse(&row.try_get::<String, _>("id")?)?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Creates a room. Fails with `Conflict` if the id is taken, and with
    /// `BadRequest` for a name over [`ids::MAX_ROOM_NAME_CHARS`] (every way
    /// to create a room, the API, the CLI and the demo, comes here).
    pub async fn create_room(&self, id: &RoomId, name: &str) -> Result<RoomRow> {
        let name = ids::room_name(name)?;
        let created_at = now_ms();
        sqlx::query("INSERT INTO rooms (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(name)
            .bind(created_at)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    Error::Conflict("room")
                } else {
                    error.into()
                }
            })?;
        Ok(RoomRow {
            id: id.clone(),
            name: name.to_owned(),
            created_at,
        })
    }

    pub async fn room(&self, id: &RoomId) -> Result<Option<RoomRow>> {
        let row = sqlx::query("SELECT id, name, created_at FROM rooms WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(room_row).transpose()
    }

    pub async fn room_exists(&self, id: &RoomId) -> Result<bool> {
        Ok(self.room(id).await?.is_some())
    }

    /// Creates a user if missing; returns whether it was created. The
    /// display name is validated here, whoever asks (an invite, the CLI's
    /// `user create`, the demo): at most [`MAX_DISPLAY_NAME_CHARS`].
    pub async fn ensure_user(&self, id: &UserId, display_name: &str) -> Result<bool> {
        let display_name = ids::display_name(display_name)?;
        let result = sqlx::query(
            "INSERT INTO users (id, display_name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(display_name)
        .bind(now_ms())
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn user_exists(&self, id: &UserId) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM users WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.is_some())
    }

    /// Sets a member's role (adding the membership if new) and brings the
    /// member's live tokens in this room to the same role.
    pub async fn set_member_role(&self, room: &RoomId, user: &UserId, role: Role) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(room.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE tokens SET role = $1 WHERE room_id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(role.as_str())
            .bind(room.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a member and revokes their tokens in the room. Returns the revoked token ids.
    pub async fn remove_member(&self, room: &RoomId, user: &UserId) -> Result<Vec<TokenId>> {
        let mut tx = self.begin_write().await?;
        let revoked = remove_member_in(&mut tx, room, user, now_ms()).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// A member's role in a room, if they are a member.
    pub async fn member_role(&self, room: &RoomId, user: &UserId) -> Result<Option<Role>> {
        let row = sqlx::query("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
            .bind(room.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| parse_role(&row.try_get::<String, _>("role")?))
            .transpose()
    }

    pub async fn members(&self, room: &RoomId) -> Result<Vec<MemberRow>> {
        let rows = sqlx::query(
            "SELECT m.user_id, u.display_name, m.role, m.created_at FROM members m \
             JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 ORDER BY m.created_at, m.user_id",
        )
        .bind(room.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MemberRow {
                    user: UserId::parse(&row.try_get::<String, _>("user_id")?)?,
                    display_name: ids::clip(row.try_get("display_name")?, MAX_DISPLAY_NAME_CHARS)
                        .to_owned(),
                    role: parse_role(&row.try_get::<String, _>("role")?)?,
                    since: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Issues a token for `user` in `room` with `role`, making them a member
    /// with that role. `ttl_ms` of `None` never expires.
    pub async fn issue_token(
        &self,
        room: &RoomId,
        user: &UserId,
        role: Role,
        ttl_ms: Option<i64>,
    ) -> Result<(TokenRow, String)> {
        if !self.room_exists(room).await? {
            return Err(Error::NotFound("room"));
        }
        if !self.user_exists(user).await? {
            return Err(Error::NotFound("user"));
        }
        self.set_member_role(room, user, role).await?;
        let token = NewToken::generate();
        let created_at = now_ms();
        let expires_at = ttl_ms.map(|ttl| created_at.saturating_add(ttl));
        sqlx::query(
            "INSERT INTO tokens (id, hash, room_id, user_id, role, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id.0.as_str())
        .bind(&token.hash)
        .bind(room.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(created_at)
        .bind(expires_at)
        .execute(&mut *self.conn().await?)
        .await?;
        let row = TokenRow {
            id: token.id,
            user: user.clone(),
            role,
            created_at,
            expires_at,
            revoked_at: None,
        };
        Ok((row, token.secret))
    }

    /// Revokes a token. With `room`, only a token of that room. Returns the
    /// room the token belonged to.
    pub async fn revoke_token(&self, id: &TokenId, room: Option<&RoomId>) -> Result<RoomId> {
        let row = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND ($3 IS NULL OR room_id = $3) RETURNING room_id",
        )
        .bind(now_ms())
        .bind(id.0.as_str())
        .bind(room.map(RoomId::as_str))
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        match row {
            Some(row) => Ok(RoomId::parse(&row.try_get::<String, _>("room_id")?)?),
            None => Err(Error::NotFound("token")),
        }
    }

    /// Finds a token by its secret (for `token revoke --token`).
    pub async fn token_id_of_secret(&self, secret: &str) -> Result<TokenId> {
        let row = sqlx::query("SELECT id FROM tokens WHERE hash = $1")
            .bind(hash_token(secret))
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        match row {
            Some(row) => token_id(&row),
            None => Err(Error::NotFound("token")),
        }
    }

    pub async fn tokens(&self, room: &RoomId) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query(
            "SELECT id, user_id, role, created_at, expires_at, revoked_at FROM tokens \
             WHERE room_id = $1 ORDER BY created_at, id",
        )
        .bind(room.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenRow {
                    id: token_id(row)?,
                    user: UserId::parse(&row.try_get::<String, _>("user_id")?)?,
                    role: parse_role(&row.try_get::<String, _>("role")?)?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Resolves a bearer secret to who it is, checking expiry and revocation.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal> {
        self.read_principal(secret).await
    }

    async fn read_principal(&self, secret: &str) -> Result<Principal> {
        let row = sqlx::query(
            "SELECT t.id, t.room_id, t.user_id, t.role, t.expires_at, t.revoked_at, u.display_name \
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
        )
        .bind(hash_token(secret))
        .fetch_optional(&mut *self.conn().await?)
        .await?
        .ok_or(Error::Unauthorized)?;
        let expires_at = still_valid(&row)?;
        Ok(Principal {
            user: UserId::parse(&row.try_get::<String, _>("user_id")?)?,
            // Clipped: a name stored before the limit existed must not
            // reach every joiner's `hello`.
            display_name: ids::clip(row.try_get("display_name")?, MAX_DISPLAY_NAME_CHARS).into(),
            room: RoomId::parse(&row.try_get::<String, _>("room_id")?)?,
            role: parse_role(&row.try_get::<String, _>("role")?)?,
            token_id: token_id(&row)?,
            expires_at,
        })
    }

    /// Tokens revoked at or after `since_ms` (the revocation poller's feed,
    /// which also catches revocations made by the CLI or another process).
    pub async fn revoked_since(&self, since_ms: i64) -> Result<Vec<TokenId>> {
        let rows = sqlx::query("SELECT id FROM tokens WHERE revoked_at >= $1")
            .bind(since_ms)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(token_id).collect()
    }
}

/// A token row's expiry, if it is neither revoked nor expired (room and
/// operator tokens alike: columns `revoked_at`, `expires_at`).
pub(super) fn still_valid(row: &sqlx::any::AnyRow) -> Result<Option<i64>> {
    if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
        return Err(Error::TokenRevoked);
    }
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    if expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(Error::TokenExpired);
    }
    Ok(expires_at)
}

/// Removes a member and revokes their tokens inside a write transaction.
pub(super) async fn remove_member_in(
    conn: &mut sqlx::AnyConnection,
    room: &RoomId,
    user: &UserId,
    at: i64,
) -> Result<Vec<TokenId>> {
    let removed = sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
        .bind(room.as_str())
        .bind(user.as_str())
        .execute(&mut *conn)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(Error::NotFound("member"));
    }
    let rows = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE room_id = $2 AND user_id = $3 AND revoked_at IS NULL RETURNING id",
    )
    .bind(at)
    .bind(room.as_str())
    .bind(user.as_str())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(token_id).collect()
}
