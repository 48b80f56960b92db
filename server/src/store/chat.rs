//! Chat history: one row per message; edits and deletions update the row
//! (a deleted message keeps its row so moderators can see what was removed).

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};

/// One chat message as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub id: i64,
    pub user: UserId,
    pub body: String,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<UserId>,
}

impl ChatMessage {
    /// The message as seen by a moderator (whole) or anyone else (redacted).
    pub fn seen_by(self, moderator: bool) -> Self {
        if moderator { self } else { self.redacted() }
    }

    /// The message as a non-moderator sees it: a deleted message keeps its
    /// place in history, without its body or who deleted it.
    pub fn redacted(mut self) -> Self {
        if self.deleted_at.is_some() {
            self.body = String::new();
            self.deleted_by = None;
        }
        self
    }
}

/// Most messages one history page returns.
pub const MAX_HISTORY_PAGE: i64 = 200;

const COLUMNS: &str = "id, user_id, body, created_at, edited_at, deleted_at, deleted_by";

fn message(row: &AnyRow) -> Result<ChatMessage> {
    Ok(ChatMessage {
        id: row.try_get("id")?,
        user: UserId::parse(&row.try_get::<String, _>("user_id")?)?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        edited_at: row.try_get("edited_at")?,
        deleted_at: row.try_get("deleted_at")?,
        deleted_by: row
            .try_get::<Option<String>, _>("deleted_by")?
            .map(|user| UserId::parse(&user))
            .transpose()?,
    })
}

impl Store {
    /// A page of history, oldest first: up to `limit` messages with ids below
    /// `before` (or the newest ones without it).
    pub async fn chat_history(
        &self,
        room: &RoomId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ChatMessage>> {
        self.read_chat_history(room, before, limit).await
    }

    async fn read_chat_history(
        &self,
        room: &RoomId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ChatMessage>> {
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        let sql = format!(
            "SELECT {COLUMNS} FROM chat_messages WHERE room_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.as_str())
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut messages = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }
}

/// Inserts a message inside a batch transaction.
pub(super) async fn post(
    conn: &mut AnyConnection,
    room: &RoomId,
    user: &UserId,
    body: &str,
    at: i64,
) -> Result<ChatMessage> {
    let sql = format!(
        "INSERT INTO chat_messages (room_id, user_id, body, created_at) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(room.as_str())
        .bind(user.as_str())
        .bind(body)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?;
    message(&row)
}

/// Edits the author's own live message.
pub(super) async fn edit(
    conn: &mut AnyConnection,
    room: &RoomId,
    id: i64,
    author: &UserId,
    body: &str,
    at: i64,
) -> Result<ChatMessage> {
    let sql = format!(
        "UPDATE chat_messages SET body = $1, edited_at = $2 \
         WHERE id = $3 AND room_id = $4 AND user_id = $5 AND deleted_at IS NULL RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(body)
        .bind(at)
        .bind(id)
        .bind(room.as_str())
        .bind(author.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => message(&row),
        None => Err(missing_or_foreign(conn, room, id).await?),
    }
}

/// Deletes a message: the author's own, or any with `any_author` (moderators).
pub(super) async fn delete(
    conn: &mut AnyConnection,
    room: &RoomId,
    id: i64,
    by: &UserId,
    any_author: bool,
    at: i64,
) -> Result<ChatMessage> {
    let sql = format!(
        "UPDATE chat_messages SET deleted_at = $1, deleted_by = $2 \
         WHERE id = $3 AND room_id = $4 AND deleted_at IS NULL AND ($5 = 1 OR user_id = $2) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(at)
        .bind(by.as_str())
        .bind(id)
        .bind(room.as_str())
        .bind(i64::from(any_author))
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => message(&row),
        None => Err(missing_or_foreign(conn, room, id).await?),
    }
}

/// Why an edit or delete matched nothing: the message is gone, or not yours.
async fn missing_or_foreign(conn: &mut AnyConnection, room: &RoomId, id: i64) -> Result<Error> {
    let row = sqlx::query("SELECT deleted_at FROM chat_messages WHERE id = $1 AND room_id = $2")
        .bind(id)
        .bind(room.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) if row.try_get::<Option<i64>, _>("deleted_at")?.is_none() => {
            Error::Forbidden("only the author may change this message")
        }
        _ => Error::NotFound("message"),
    })
}
