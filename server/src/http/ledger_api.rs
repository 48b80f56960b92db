//! The fair-pay ledger over REST (docs/API.md): entries, their moves and
//! audit trail, bonuses, and the summary with effective hourly rates.
//! Workers see their own entries and earnings; moderators see everyone's.
//! Each move is pushed live to the worker it concerns (`ledger.updated`).
//! Auto-approval is a background pass ([`auto_approve`]), never a read's.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{AppState, Caller, JsonBody, require};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::rooms::RoomRegistry;
use crate::store::{Action, FloorReason, LedgerEntry, LedgerEvent, LedgerSummary, Payout, Store};

/// Longest reason, dispute message or bonus reason, in characters: a
/// sentence or a paragraph, kept in the entry's audit trail for good.
const MAX_REASON_CHARS: usize = 1000;
/// Longest bonus idempotency key, in characters: a UUID or a client's
/// request id is under 64; each is kept, and indexed, for good.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms/{room}/ledger", get(list))
        .route("/rooms/{room}/ledger/summary", get(summary))
        .route("/rooms/{room}/ledger/bonus", post(bonus))
        .route("/rooms/{room}/ledger/payout", post(payout))
        .route("/rooms/{room}/ledger/{entry}", get(get_entry))
        .route("/rooms/{room}/ledger/{entry}/{action}", post(act))
}

/// How often pending entries that waited out their project's
/// `auto_approve_seconds` are approved: delays are whole seconds (three
/// days by default), so a few seconds late is invisible, and a pass that
/// finds nothing due is one read.
const AUTO_APPROVE_EVERY: Duration = Duration::from_secs(5);

/// Approves, every [`AUTO_APPROVE_EVERY`] until `shutdown`, the entries of
/// every room that have waited out their delay (as the `system` actor).
/// Reads of the ledger write nothing: a looping reader must not contend
/// with the committer for the write lock.
pub async fn auto_approve(store: Store, rooms: RoomRegistry, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(AUTO_APPROVE_EVERY);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match store.ledger_auto_approve_due().await {
            Ok(approved) => {
                for (room, count) in approved {
                    tracing::debug!(room_id = %room, count, "ledger entries auto-approved");
                    // A loaded room holds its workers' earnings: it loads them again.
                    rooms.queue_changed(&room).await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot auto-approve ledger entries"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    worker: Option<String>,
    state: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    Caller(me): Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Entries>> {
    let worker = match (me.role.can_moderate(), query.worker) {
        (true, Some(worker)) => Some(UserId::parse(&worker)?),
        (true, None) => None,
        // Everyone else sees their own entries only.
        (false, _) => Some(me.user.clone()),
    };
    const STATES: [&str; 5] = ["pending", "approved", "rejected", "disputed", "paid"];
    if let Some(state) = &query.state
        && !STATES.contains(&state.as_str())
    {
        return Err(Error::BadRequest(format!(
            "state must be one of {}",
            STATES.join(", ")
        )));
    }
    let entries = state
        .store
        .ledger(
            &me.room,
            worker.as_ref(),
            query.state.as_deref(),
            query.before,
            query.limit.unwrap_or(100),
        )
        .await?;
    Ok(Json(Entries { entries }))
}

/// `GET /rooms/{room}/ledger`: a page of entries, newest first.
#[derive(Debug, Serialize)]
struct Entries {
    entries: Vec<LedgerEntry>,
}

async fn summary(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<LedgerSummary>> {
    let target = state.store.project(&me.room).await?.target_hourly_rate;
    let mut summary = state.store.ledger_summary(&me.room, target).await?;
    if !me.role.can_moderate() {
        summary
            .workers
            .retain(|earnings| earnings.worker == me.user.as_str());
    }
    Ok(Json(summary))
}

/// `GET /rooms/{room}/ledger/{entry}`: an entry and its audit trail.
#[derive(Debug, Serialize)]
struct EntryDetail {
    entry: LedgerEntry,
    events: Vec<LedgerEvent>,
}

async fn get_entry(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, entry)): Path<(String, i64)>,
) -> Result<Json<EntryDetail>> {
    let found = state.store.ledger_entry(&me.room, entry).await?;
    require(
        me.role.can_moderate() || found.worker == me.user.as_str(),
        "only the worker and moderators see this entry",
    )?;
    let events = state.store.ledger_events(entry).await?;
    Ok(Json(EntryDetail {
        entry: found,
        events,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
    /// On a rejection: not the worker's fault (a broken task, unclear
    /// instructions), so the pay floor still counts the answer's time.
    #[serde(default)]
    no_fault: bool,
}

async fn act(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((_, entry, action)): Path<(String, i64, String)>,
    body: axum::body::Bytes,
) -> Result<Json<LedgerEntry>> {
    let action = match action.as_str() {
        "approve" => Action::Approve,
        "reject" => Action::Reject,
        "reverse" => Action::Reverse,
        "dispute" => Action::Dispute,
        "uphold" => Action::Uphold,
        "deny" => Action::Deny,
        "pay" => Action::Pay,
        _ => return Err(Error::NotFound("ledger action")),
    };
    let found = state.store.ledger_entry(&me.room, entry).await?;
    if action == Action::Dispute {
        require(
            found.worker == me.user.as_str(),
            "only the worker disputes their own entry",
        )?;
    } else {
        require(
            me.role.can_moderate(),
            "only owners and moderators change ledger entries",
        )?;
        // Disputing is the worker's move; every other is a moderator's
        // judgement, which nobody passes on their own pay.
        require(
            found.worker != me.user.as_str(),
            "nobody moves a ledger entry of their own: another moderator does",
        )?;
    }
    // The body is optional: `{"reason": "..."}`, or nothing (or null) for approve and pay.
    let (reason, no_fault) = if body.iter().all(u8::is_ascii_whitespace) {
        (None, false)
    } else {
        let parsed = serde_json::from_slice::<Option<Reason>>(&body)
            .map_err(|error| Error::BadRequest(error.to_string()))?;
        parsed.map_or((None, false), |body| (body.reason, body.no_fault))
    };
    if no_fault && !matches!(action, Action::Reject | Action::Deny) {
        return Err(Error::BadRequest(
            "no_fault goes with a rejection (reject or deny) only".into(),
        ));
    }
    if let Some(reason) = &reason {
        check_reason(reason)?;
    }
    let moved = state
        .store
        .ledger_act(
            &me.room,
            entry,
            action,
            &me.user,
            reason.as_deref(),
            no_fault,
        )
        .await?;
    // The room's memory holds each worker's earnings: it loads them again.
    state.rooms.queue_changed(&me.room).await;
    notify(&state, &me, &moved).await;
    Ok(Json(moved))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bonus {
    worker: String,
    amount: i64,
    reason: String,
    idempotency_key: String,
}

async fn bonus(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<Bonus>,
) -> Result<Response> {
    require(
        me.role.can_moderate(),
        "only owners and moderators grant bonuses",
    )?;
    check_reason(&body.reason)?;
    crate::protocol::check_text(
        &body.idempotency_key,
        MAX_IDEMPOTENCY_KEY_CHARS,
        "an idempotency key",
    )?;
    let worker = UserId::parse(&body.worker)?;
    require(
        worker != me.user,
        "nobody grants themselves a bonus: another moderator does",
    )?;
    if state.store.member_role(&me.room, &worker).await?.is_none() {
        return Err(Error::NotFound("member"));
    }
    let (entry, created) = state
        .store
        .ledger_bonus(
            &me.room,
            &worker,
            body.amount,
            &body.reason,
            &body.idempotency_key,
            &me.user,
        )
        .await?;
    if created {
        state.rooms.queue_changed(&me.room).await;
        notify(&state, &me, &entry).await;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(BonusGranted { entry, created })).into_response())
}

/// `POST /rooms/{room}/ledger/bonus`: the entry, and whether this call made
/// it (false when the idempotency key was seen before).
#[derive(Debug, Serialize)]
struct BonusGranted {
    entry: LedgerEntry,
    created: bool,
}

/// Refuses a reason over [`MAX_REASON_CHARS`] or holding control characters.
fn check_reason(reason: &str) -> Result<()> {
    crate::protocol::check_text(reason, MAX_REASON_CHARS, "a reason")
}

/// Tells the worker, live, that one of their entries moved.
async fn notify(state: &AppState, me: &Principal, entry: &LedgerEntry) {
    if let Ok(worker) = UserId::parse(&entry.worker) {
        state
            .rooms
            .notify_user(
                &me.room,
                &worker,
                crate::protocol::Event::LedgerUpdated(entry).frame(),
            )
            .await;
    }
}

/// `POST /rooms/{room}/ledger/payout`: a pay floor check, then every
/// approved entry but the caller's own paid, top-ups included; answers
/// what each worker was paid (the payout CSV's lines).
async fn payout(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Payout>> {
    require(me.role.can_moderate(), "only owners and moderators pay")?;
    let target = state.store.project(&me.room).await?.target_hourly_rate;
    let payout = state.store.payout(&me.room, &me.user, target).await?;
    // The room's memory holds each worker's earnings: it loads them again
    // (and pushes each worker their own).
    state.rooms.queue_changed(&me.room).await;
    Ok(Json(payout))
}

/// How often the rooms are checked for a daily pay floor check: a day is
/// long, and a pass that finds nothing due is one read.
const FLOOR_EVERY: Duration = Duration::from_secs(600);

/// Runs, every [`FLOOR_EVERY`] until `shutdown`, the pay floor check of
/// every room whose oldest unchecked work is a day old (`store/floor.rs`),
/// as the `system` actor: the floor holds even in a room nobody pays.
pub async fn daily_floor(store: Store, rooms: RoomRegistry, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(FLOOR_EVERY);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let due = match store.pay_floor_due(crate::ids::now_ms()).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot find the rooms due a pay floor check");
                continue;
            }
        };
        for (room, target) in due {
            match store
                .pay_floor(&room, FloorReason::Daily, "system", target)
                .await
            {
                Ok(run) if !run.top_ups.is_empty() => {
                    tracing::info!(room_id = %room, top_ups = run.top_ups.len(), "pay floor top-ups booked");
                    rooms.queue_changed(&room).await;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(room_id = %room, %error, "pay floor check failed"),
            }
        }
    }
}
