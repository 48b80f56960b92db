//! Moderation: a room's lock and announcement, mutes, bans, releasing a
//! worker's reservation, and the append-only log of every moderator action.
//!
//! Each action and its log entry are one transaction, so the log never
//! misses an action that took effect nor lists one that did not. The room
//! actor keeps the live copy (lock, announcement, mutes) and loads it from
//! here when it starts.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::error::{Error, Result};
use crate::ids::{RoomId, TokenId, UserId, now_ms};

/// A room's current announcement.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Announcement {
    pub body: String,
    pub by: String,
    pub at: i64,
}

/// A member muted until `until` (ms).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mute {
    pub user: UserId,
    pub until: i64,
    pub by: String,
    pub reason: Option<String>,
}

/// Everything moderation keeps about a room.
#[derive(Debug, Clone, Default)]
pub struct RoomModeration {
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub announcement: Option<Announcement>,
    /// Mutes still running.
    pub mutes: Vec<Mute>,
}

/// One logged moderator action.
#[derive(Debug, Clone, Serialize)]
pub struct ModerationEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub at: i64,
}

async fn log(
    conn: &mut sqlx::AnyConnection,
    room: &RoomId,
    actor: &UserId,
    action: &str,
    target: Option<&str>,
    detail: Option<&str>,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO moderation_log (room_id, actor, action, target, detail, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(room.as_str())
    .bind(actor.as_str())
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The room's lock, announcement and running mutes.
    pub async fn room_moderation(&self, room: &RoomId) -> Result<RoomModeration> {
        let row = sqlx::query(
            "SELECT locked, lock_reason, announcement, announcement_by, announcement_at FROM rooms WHERE id = $1",
        )
        .bind(room.as_str())
        .fetch_optional(&mut *self.conn().await?)
        .await?
        .ok_or(Error::NotFound("room"))?;
        let announcement = match (
            row.try_get::<Option<String>, _>("announcement")?,
            row.try_get::<Option<String>, _>("announcement_by")?,
            row.try_get::<Option<i64>, _>("announcement_at")?,
        ) {
            (Some(body), Some(by), Some(at)) => Some(Announcement { body, by, at }),
            _ => None,
        };
        let rows = sqlx::query(
            "SELECT user_id, until_ms, by_user, reason FROM mutes WHERE room_id = $1 AND until_ms > $2",
        )
        .bind(room.as_str())
        .bind(now_ms())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mutes = rows
            .iter()
            .map(|row| {
                Ok(Mute {
                    user: UserId::parse(&row.try_get::<String, _>("user_id")?)?,
                    until: row.try_get("until_ms")?,
                    by: row.try_get("by_user")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RoomModeration {
            locked: row.try_get::<i64, _>("locked")? != 0,
            lock_reason: row.try_get("lock_reason")?,
            announcement,
            mutes,
        })
    }

    /// Locks or unlocks a room. Returns when it happened.
    pub async fn set_room_lock(
        &self,
        room: &RoomId,
        actor: &UserId,
        locked: bool,
        reason: Option<&str>,
    ) -> Result<i64> {
        let at = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE rooms SET locked = $1, lock_reason = $2 WHERE id = $3")
            .bind(i64::from(locked))
            .bind(reason.filter(|_| locked))
            .bind(room.as_str())
            .execute(&mut *tx)
            .await?;
        let action = if locked { "lock" } else { "unlock" };
        log(&mut tx, room, actor, action, None, reason, at).await?;
        tx.commit().await?;
        Ok(at)
    }

    /// Sets the room's announcement, or clears it with `None`.
    pub async fn set_announcement(
        &self,
        room: &RoomId,
        actor: &UserId,
        body: Option<&str>,
    ) -> Result<Option<Announcement>> {
        let at = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE rooms SET announcement = $1, announcement_by = $2, announcement_at = $3 WHERE id = $4",
        )
        .bind(body)
        .bind(body.map(|_| actor.as_str()))
        .bind(body.map(|_| at))
        .bind(room.as_str())
        .execute(&mut *tx)
        .await?;
        log(&mut tx, room, actor, "announce", None, body, at).await?;
        tx.commit().await?;
        Ok(body.map(|body| Announcement {
            body: body.to_owned(),
            by: actor.to_string(),
            at,
        }))
    }

    /// Mutes `user` until `until` (ms), or lifts their mute with `None`.
    pub async fn set_mute(
        &self,
        room: &RoomId,
        actor: &UserId,
        user: &UserId,
        until: Option<i64>,
        reason: Option<&str>,
    ) -> Result<()> {
        let at = now_ms();
        let mut tx = self.begin_write().await?;
        match until {
            Some(until) => {
                sqlx::query(
                    "INSERT INTO mutes (room_id, user_id, until_ms, by_user, reason) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (room_id, user_id) DO UPDATE SET until_ms = excluded.until_ms, \
                     by_user = excluded.by_user, reason = excluded.reason",
                )
                .bind(room.as_str())
                .bind(user.as_str())
                .bind(until)
                .bind(actor.as_str())
                .bind(reason)
                .execute(&mut *tx)
                .await?;
                log(
                    &mut tx,
                    room,
                    actor,
                    "mute",
                    Some(user.as_str()),
                    reason,
                    at,
                )
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM mutes WHERE room_id = $1 AND user_id = $2")
                    .bind(room.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?;
                log(
                    &mut tx,
                    room,
                    actor,
                    "unmute",
                    Some(user.as_str()),
                    None,
                    at,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes `user` from the room and revokes their tokens, logged as a
    /// ban. Returns the revoked token ids.
    pub async fn ban_member(
        &self,
        room: &RoomId,
        actor: &UserId,
        user: &UserId,
        reason: Option<&str>,
    ) -> Result<Vec<TokenId>> {
        let at = now_ms();
        let mut tx = self.begin_write().await?;
        let revoked = super::access::remove_member_in(&mut tx, room, user, at).await?;
        log(&mut tx, room, actor, "ban", Some(user.as_str()), reason, at).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Logs an action whose effect is not in the store (a kick, a pause
    /// made elsewhere).
    pub async fn log_moderation(
        &self,
        room: &RoomId,
        actor: &UserId,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        log(&mut conn, room, actor, action, target, detail, now_ms()).await
    }

    /// The newest `limit` logged actions, newest first.
    pub async fn moderation_log(&self, room: &RoomId, limit: i64) -> Result<Vec<ModerationEntry>> {
        let rows = sqlx::query(
            "SELECT id, actor, action, target, detail, at FROM moderation_log WHERE room_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(room.as_str())
        .bind(limit.clamp(1, 500))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ModerationEntry {
                    id: row.try_get("id")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail: row.try_get("detail")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }
}
