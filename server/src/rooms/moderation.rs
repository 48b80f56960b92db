//! The room actor's moderation: lock, announcement, mutes, kicks, bans and
//! releasing reservations (`mod.*` on the live channel).
//!
//! A moderator action is written to the store (with its log entry) in a
//! task of its own, since the actor's loop never waits on a commit; the
//! task then sends [`RoomCommand::Moderated`] back, and the actor applies
//! the change to its live copy, replies, and tells everyone it affects.
//! So the reply and every event come only after the action is durable, and
//! the reply always comes before the events on the moderator's connection.

use std::collections::HashMap;
use std::sync::Arc;

use super::RoomCommand;
use super::actor::RoomActor;
use crate::auth::{Principal, Role};
use crate::error::{CloseCode, Error, Result};
use crate::ids::{ConnId, UserId, now_ms};
use crate::protocol::{
    self, AnnouncementSet, BanDone, Event, KickDone, LockSet, MuteSet, Op, RequestId, RoomState,
};
use crate::store::{Announcement, Mute, RoomModeration, Store};

/// Longest mute, in minutes (a week).
const MAX_MUTE_MINUTES: u32 = 7 * 24 * 60;
/// Longest announcement or reason, in characters.
const MAX_NOTE_CHARS: usize = 1000;

/// The live copy of a room's moderation state.
#[derive(Default)]
pub(super) struct ModState {
    /// Whether it was read from the store (retried until it is).
    pub loaded: bool,
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub announcement: Option<Announcement>,
    mutes: HashMap<UserId, Mute>,
}

impl ModState {
    fn from_store(stored: RoomModeration) -> Self {
        ModState {
            loaded: true,
            locked: stored.locked,
            lock_reason: stored.lock_reason,
            announcement: stored.announcement,
            mutes: stored
                .mutes
                .into_iter()
                .map(|mute| (mute.user.clone(), mute))
                .collect(),
        }
    }

    /// Until when `user` is muted, if they are now.
    pub(super) fn muted_until(&self, user: &UserId) -> Option<i64> {
        self.mutes
            .get(user)
            .map(|mute| mute.until)
            .filter(|until| *until > now_ms())
    }

    /// Whether `role` may write (chat, edit documents, take tasks) now.
    pub(super) fn may_write(&self, role: Role) -> bool {
        role.can_write() && (!self.locked || role.can_moderate())
    }

    /// Whether `principal` may chat now, and why not.
    pub(super) fn may_chat(&self, principal: &Principal) -> Result<()> {
        if !principal.role.can_write() {
            return Err(Error::Forbidden("viewers cannot chat"));
        }
        if !self.may_write(principal.role) {
            return Err(Error::Forbidden("the room is locked"));
        }
        if self.muted_until(&principal.user).is_some() {
            return Err(Error::Forbidden("you are muted"));
        }
        Ok(())
    }

    /// The room's state as `hello` carries it.
    pub(super) fn state(&self) -> RoomState<'_> {
        RoomState {
            locked: self.locked,
            lock_reason: self.lock_reason.as_deref(),
            announcement: self.announcement.as_ref(),
        }
    }
}

/// A moderator action that has been committed, to apply and announce.
#[derive(Debug)]
pub enum Moderated {
    Muted {
        user: UserId,
        mute: Option<Mute>,
        by: UserId,
    },
    Kicked {
        user: UserId,
        by: UserId,
        reason: Option<String>,
    },
    Banned {
        user: UserId,
        by: UserId,
        reason: Option<String>,
    },
    Locked {
        locked: bool,
        reason: Option<String>,
        by: UserId,
        at: i64,
    },
    Announced(Option<Announcement>),
    /// A release the actor may make: the room frees the reservation in
    /// its memory and commits that (`work.rs`).
    Release {
        user: UserId,
        by: UserId,
    },
}

/// A trimmed optional note (a reason): empty means none.
fn note(text: Option<String>) -> Result<Option<String>> {
    let text = text.map(|text| text.trim().to_owned());
    match text {
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => {
            crate::protocol::check_text(&text, MAX_NOTE_CHARS, "a reason or announcement")?;
            Ok(Some(text))
        }
        None => Ok(None),
    }
}

/// The member `user` names, if the actor may act on them.
async fn target(store: &Store, actor: &Principal, user: &str) -> Result<UserId> {
    let user = UserId::parse(user)?;
    if user == actor.user {
        return Err(Error::BadRequest("you cannot moderate yourself".into()));
    }
    let role = store
        .member_role(&actor.room, &user)
        .await?
        .ok_or(Error::NotFound("member"))?;
    if !actor.role.can_moderate_member(role) {
        return Err(Error::Forbidden("your role cannot act on that member"));
    }
    Ok(user)
}

/// Performs the store side of one action.
async fn perform(store: &Store, actor: &Principal, op: Op) -> Result<Moderated> {
    let (room, by) = (&actor.room, actor.user.clone());
    match op {
        Op::ModMute {
            user,
            minutes,
            reason,
        } => {
            if !(1..=MAX_MUTE_MINUTES).contains(&minutes) {
                return Err(Error::BadRequest(format!(
                    "minutes must be 1 to {MAX_MUTE_MINUTES}"
                )));
            }
            let reason = note(reason)?;
            let user = target(store, actor, &user).await?;
            let until = now_ms() + i64::from(minutes) * 60_000;
            store
                .set_mute(room, &by, &user, Some(until), reason.as_deref())
                .await?;
            let mute = Mute {
                user: user.clone(),
                until,
                by: by.to_string(),
                reason,
            };
            Ok(Moderated::Muted {
                user,
                mute: Some(mute),
                by,
            })
        }
        Op::ModUnmute { user } => {
            let user = target(store, actor, &user).await?;
            store.set_mute(room, &by, &user, None, None).await?;
            Ok(Moderated::Muted {
                user,
                mute: None,
                by,
            })
        }
        Op::ModKick { user, reason } => {
            let reason = note(reason)?;
            let user = target(store, actor, &user).await?;
            store
                .log_moderation(room, &by, "kick", Some(user.as_str()), reason.as_deref())
                .await?;
            Ok(Moderated::Kicked { user, by, reason })
        }
        Op::ModBan { user, reason } => {
            let reason = note(reason)?;
            let user = target(store, actor, &user).await?;
            store
                .ban_member(room, &by, &user, reason.as_deref())
                .await?;
            Ok(Moderated::Banned { user, by, reason })
        }
        Op::ModLock { locked, reason } => {
            let reason = note(reason)?;
            let at = store
                .set_room_lock(room, &by, locked, reason.as_deref())
                .await?;
            Ok(Moderated::Locked {
                locked,
                reason: reason.filter(|_| locked),
                by,
                at,
            })
        }
        Op::ModAnnounce { body } => {
            let body = note(Some(body))?;
            let announcement = store.set_announcement(room, &by, body.as_deref()).await?;
            Ok(Moderated::Announced(announcement))
        }
        Op::ModRelease { user } => {
            let user = target(store, actor, &user).await?;
            Ok(Moderated::Release { user, by })
        }
        other => Err(Error::Internal(format!(
            "not a moderation request: {other:?}"
        ))),
    }
}

impl RoomActor {
    /// Reads the room's lock, announcement and mutes (at start, and again
    /// at each housekeeping tick until it succeeds).
    pub(super) async fn load_moderation(&mut self) {
        match self.context.store.room_moderation(&self.room).await {
            Ok(stored) => self.moderation = ModState::from_store(stored),
            Err(error) => {
                tracing::warn!(room_id = %self.room, %error, "cannot read the room's moderation state")
            }
        }
    }

    /// Starts a `mod.*` request: checked here, written in a task, applied
    /// when [`RoomCommand::Moderated`] comes back.
    pub(super) fn moderate(
        &mut self,
        conn: ConnId,
        principal: Arc<Principal>,
        request: RequestId,
        op: Op,
    ) -> Result<()> {
        if !principal.role.can_moderate() {
            return Err(Error::Forbidden("only owners and moderators moderate"));
        }
        let store = self.context.store.clone();
        let handle = self.handle.clone();
        self.context.tracker.spawn(async move {
            let outcome = perform(&store, &principal, op).await;
            // The room may be exiting; the moderator's socket is then closing.
            let _ = handle
                .send(RoomCommand::Moderated {
                    conn,
                    request,
                    outcome: Box::new(outcome),
                })
                .await;
        });
        Ok(())
    }

    /// Applies a committed action: reply first, then the events.
    pub(super) async fn moderated(
        &mut self,
        conn: ConnId,
        request: &RequestId,
        outcome: Result<Moderated>,
    ) {
        let moderated = match outcome {
            Ok(moderated) => moderated,
            Err(error) => {
                self.live
                    .reply(conn, protocol::error_reply(request, &error));
                return;
            }
        };
        match moderated {
            Moderated::Muted { user, mute, by } => {
                let until = mute.as_ref().map(|mute| mute.until);
                let reason = mute.as_ref().and_then(|mute| mute.reason.clone());
                match mute {
                    Some(mute) => self.moderation.mutes.insert(user.clone(), mute),
                    None => self.moderation.mutes.remove(&user),
                };
                self.live.set_muted(&user, until);
                self.live.reply(
                    conn,
                    protocol::ok_reply(request, &MuteSet { user: &user, until }),
                );
                let event = Event::MemberMuted {
                    user: &user,
                    until,
                    by: &by,
                    reason: reason.as_deref(),
                };
                self.live.broadcast_all(&event.frame());
            }
            Moderated::Kicked { user, by, reason } => {
                let connections = self.live.connections_of(&user) + self.doc_connections_of(&user);
                self.live.reply(
                    conn,
                    protocol::ok_reply(
                        request,
                        &KickDone {
                            user: &user,
                            connections,
                        },
                    ),
                );
                let event = Event::YouKicked {
                    by: &by,
                    reason: reason.as_deref(),
                };
                self.live.send_to_user(&user, &event.frame());
                self.disconnect(&user, CloseCode::Kicked);
            }
            Moderated::Banned { user, by, reason } => {
                self.live
                    .reply(conn, protocol::ok_reply(request, &BanDone { user: &user }));
                let event = Event::YouBanned {
                    by: &by,
                    reason: reason.as_deref(),
                };
                self.live.send_to_user(&user, &event.frame());
                self.disconnect(&user, CloseCode::TokenRevoked);
            }
            Moderated::Locked {
                locked,
                reason,
                by,
                at,
            } => {
                self.moderation.locked = locked;
                self.moderation.lock_reason = reason.clone();
                self.live
                    .reply(conn, protocol::ok_reply(request, &LockSet { locked }));
                let event = Event::RoomLocked {
                    locked,
                    reason: reason.as_deref(),
                    by: &by,
                    at,
                };
                self.live.broadcast_all(&event.frame());
            }
            Moderated::Announced(announcement) => {
                self.moderation.announcement = announcement.clone();
                let announcement = announcement.as_ref();
                self.live.reply(
                    conn,
                    protocol::ok_reply(request, &AnnouncementSet { announcement }),
                );
                self.live
                    .broadcast_all(&Event::RoomAnnouncement(announcement).frame());
            }
            Moderated::Release { user, by } => {
                self.release(conn, request.clone(), user, by).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_trimmed_and_bounded() {
        assert_eq!(note(None).ok(), Some(None));
        assert_eq!(note(Some("  ".into())).ok(), Some(None));
        assert_eq!(
            note(Some(" spam ".into())).ok(),
            Some(Some("spam".to_owned()))
        );
        assert!(note(Some("x".repeat(MAX_NOTE_CHARS + 1))).is_err());
        assert!(note(Some("a\u{0}b".into())).is_err());
        assert!(note(Some("two\nlines".into())).is_ok());
    }

    #[test]
    fn a_lock_stops_everyone_but_moderators() {
        let mut state = ModState {
            locked: true,
            ..ModState::default()
        };
        assert!(state.may_write(Role::Owner));
        assert!(state.may_write(Role::Moderator));
        assert!(!state.may_write(Role::Core));
        assert!(!state.may_write(Role::Worker));
        state.locked = false;
        assert!(state.may_write(Role::Worker));
        assert!(!state.may_write(Role::Viewer));
    }

    #[test]
    fn mutes_end_on_time() {
        let user = UserId::parse("wes").ok();
        let Some(user) = user else {
            panic!("valid user id");
        };
        let mut state = ModState::default();
        state.mutes.insert(
            user.clone(),
            Mute {
                user: user.clone(),
                until: now_ms() - 1,
                by: "mo".into(),
                reason: None,
            },
        );
        assert_eq!(state.muted_until(&user), None);
        let until = now_ms() + 60_000;
        if let Some(mute) = state.mutes.get_mut(&user) {
            mute.until = until;
        }
        assert_eq!(state.muted_until(&user), Some(until));
    }
}
