//! Reservations: the ranking of a worker's candidates (on a reader) and
//! the grants, heartbeats, skips and sweeps run inside the committer's
//! batch transactions (see `store/work.rs` for the invariants they keep;
//! answers are `store/answer.rs`).

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crowdroom_work::quality::vote_accuracy;
use serde_json::Value;

use super::sql;
use super::work::{Reservation, WorkerTask};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId, now_ms};

/// An eligible task and what its expected gain is made of.
pub(super) struct Candidate {
    pub task: WorkerTask,
    pub skills: Vec<String>,
    pub tags: Vec<String>,
    /// How near completion it is, in (0, 1].
    pub need: f64,
}

/// Open tasks the worker could take, nearest to completion first (see
/// [`Store::candidate_tasks`]).
pub(super) async fn candidates(
    conn: &mut AnyConnection,
    room: &RoomId,
    worker: &UserId,
    skills: &[String],
    gold: bool,
    limit: i64,
) -> Result<Vec<Candidate>> {
    // The limit is written into the statement, not bound: SQLite marks a
    // statement whose LIMIT is a parameter to be prepared again whenever
    // that parameter is bound, which was every grant (6% of the server's
    // CPU under a crowd went to preparing this statement again).
    let inner = format!(
        "SELECT t.id, t.external_id, t.data, t.skills, t.tags, t.answered, t.overlap_target FROM tasks t \
         WHERE t.room_id = ? AND t.state = 'open' AND t.reserved + t.answered < t.overlap_target \
         AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id AND a.worker_id = ?) \
         AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.task_id = t.id AND r.worker_id = ?) \
         AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.task_id = t.id AND s.worker_id = ?) \
         AND (CASE WHEN t.gold IS NULL THEN 0 ELSE 1 END) = ? \
         ORDER BY t.answered DESC, t.id LIMIT {}",
        limit.max(0)
    );
    // One row back, not one per candidate (`sql::json_rows_sql`).
    let columns = [
        "id",
        "external_id",
        "data",
        "skills",
        "tags",
        "answered",
        "overlap_target",
    ];
    let sql = sql::placeholders(conn, sql::json_rows_sql(conn, &inner, &columns));
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(room.as_str())
        .bind(worker.as_str())
        .bind(worker.as_str())
        .bind(worker.as_str())
        .bind(i64::from(gold))
        .fetch_one(&mut *conn)
        .await?;
    let mut rows = sql::json_rows(&row)?;
    // Nearest to completion, then oldest, as the statement ordered them.
    rows.sort_by_key(|task| {
        (
            std::cmp::Reverse(task.get(5).and_then(Value::as_i64)),
            task.first().and_then(Value::as_i64),
        )
    });
    let mut found = Vec::with_capacity(rows.len());
    for task in &rows {
        let cell = |at: usize| task.get(at);
        let json = |at: usize| -> Result<Value> {
            serde_json::from_str(sql::text(cell(at))?)
                .map_err(|error| Error::Internal(format!("a stored task is not JSON: {error}")))
        };
        let needed: Vec<String> = serde_json::from_value(json(3)?).unwrap_or_default();
        if needed.iter().all(|skill| skills.contains(skill)) {
            let (answered, target) = (sql::int(cell(5))?, sql::int(cell(6))?);
            found.push(Candidate {
                task: WorkerTask {
                    id: sql::int(cell(0))?,
                    external_id: sql::text(cell(1))?.to_owned(),
                    data: json(2)?,
                },
                skills: needed,
                tags: serde_json::from_value(json(4)?).unwrap_or_default(),
                need: (answered + 1) as f64 / target.max(1) as f64,
            });
        }
    }
    Ok(found)
}

/// What the ranking weighs of a worker besides their skills.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// Estimated accuracy per skill ('' is overall), from their gold
    /// answers and agreement, as consensus weighs them.
    pub accuracy: HashMap<String, f64>,
    /// Their interests, matched against the tasks' tags.
    pub interests: Vec<String>,
}

impl Standing {
    /// From the worker's stats rows: (skill, gold correct, gold total,
    /// agree, disagree).
    pub(super) fn new(stats: &[(String, i64, i64, i64, i64)], interests: Vec<String>) -> Standing {
        let accuracy = stats
            .iter()
            .map(|(skill, correct, total, agree, disagree)| {
                (
                    skill.clone(),
                    vote_accuracy(*correct, *total, *agree, *disagree),
                )
            })
            .collect();
        Standing {
            accuracy,
            interests,
        }
    }
}

/// How much a task matching one of the worker's interests gains: a
/// secondary term, enough to order tasks of similar need, never enough to
/// pass over a task much nearer completion.
const INTEREST_BONUS: f64 = 0.2;

/// The expected gain of giving `candidate` to the worker: their estimated
/// accuracy on its skills (the mean over them; overall for a task with no
/// skills or skills they have no record in) times how much it needs an
/// answer, raised by [`INTEREST_BONUS`] when its tags meet their interests.
fn gain_with_interests(
    candidate: &Candidate,
    accuracy: &HashMap<String, f64>,
    interests: &[String],
) -> f64 {
    let base = gain(candidate, accuracy);
    if candidate.tags.iter().any(|tag| interests.contains(tag)) {
        base * (1.0 + INTEREST_BONUS)
    } else {
        base
    }
}

fn gain(candidate: &Candidate, accuracy: &HashMap<String, f64>) -> f64 {
    let overall = accuracy
        .get("")
        .copied()
        .unwrap_or_else(|| vote_accuracy(0, 0, 0, 0));
    let per_skill: Vec<f64> = candidate
        .skills
        .iter()
        .map(|skill| accuracy.get(skill).copied().unwrap_or(overall))
        .collect();
    let estimate = if per_skill.is_empty() {
        overall
    } else {
        per_skill.iter().sum::<f64>() / per_skill.len() as f64
    };
    estimate * candidate.need
}

/// What a worker asks the matcher for.
#[derive(Debug, Clone)]
pub struct WorkAsk {
    pub room: RoomId,
    pub worker: UserId,
    pub skills: Vec<String>,
    /// Gold tasks (onboarding or spot checks) or regular ones.
    pub gold: bool,
    pub ttl_ms: i64,
    pub cap_ms: i64,
    /// The worker's record per skill and interests (their view carries
    /// them; a newcomer's is the default).
    pub standing: Standing,
}

/// Candidates ranked per look.
const CANDIDATES: i64 = 16;

/// The tasks a worker could take, best first (reads only: run on a reader,
/// outside the write transaction, so the single writer does not spend its
/// time on the candidate search).
pub(super) async fn rank(conn: &mut AnyConnection, ask: &WorkAsk) -> Result<Vec<WorkerTask>> {
    let (accuracy, interests) = (&ask.standing.accuracy, &ask.standing.interests);
    let mut found = candidates(
        conn,
        &ask.room,
        &ask.worker,
        &ask.skills,
        ask.gold,
        CANDIDATES,
    )
    .await?;
    // Highest expected gain first; the sort is stable, so equal gains keep
    // the queue's order (nearest completion, then oldest).
    found.sort_by(|left, right| {
        gain_with_interests(right, accuracy, interests)
            .total_cmp(&gain_with_interests(left, accuracy, interests))
    });
    Ok(found.into_iter().map(|candidate| candidate.task).collect())
}

/// Deletes the expired reservations of one task and lowers its counter.
async fn drop_expired(conn: &mut AnyConnection, task: i64, now: i64) -> Result<usize> {
    let expired = sqlx::query(
        "DELETE FROM reservations WHERE task_id = $1 AND expires_at <= $2 RETURNING worker_id",
    )
    .bind(task)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    if !expired.is_empty() {
        sqlx::query("UPDATE tasks SET reserved = reserved - $1 WHERE id = $2")
            .bind(i64::try_from(expired.len()).unwrap_or(i64::MAX))
            .bind(task)
            .execute(&mut *conn)
            .await?;
    }
    Ok(expired.len())
}

/// Grants `worker` a reservation of `task` if a slot is free; None if not.
pub(super) async fn grant(
    conn: &mut AnyConnection,
    room: &RoomId,
    task: i64,
    worker: &UserId,
    ttl_ms: i64,
    cap_ms: i64,
) -> Result<Option<Reservation>> {
    let now = now_ms();
    // The common case takes the slot at once; only a task that looks full
    // is checked for expired reservations (which free their slots), then
    // tried again.
    let mut taken = take_slot(conn, room, task, worker).await?;
    if !taken && drop_expired(conn, task, now).await? > 0 {
        taken = take_slot(conn, room, task, worker).await?;
    }
    if !taken {
        return Ok(None);
    }
    let reservation = Reservation {
        task_id: task,
        created_at: now,
        expires_at: now.saturating_add(ttl_ms.min(cap_ms)),
        cap_at: now.saturating_add(cap_ms),
    };
    sqlx::query(
        "INSERT INTO reservations (task_id, worker_id, room_id, created_at, expires_at, cap_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(task)
    .bind(worker.as_str())
    .bind(room.as_str())
    .bind(reservation.created_at)
    .bind(reservation.expires_at)
    .bind(reservation.cap_at)
    .execute(&mut *conn)
    .await?;
    Ok(Some(reservation))
}

/// Counts one more reservation on the task if it is open, has a free slot,
/// and the worker has neither answered nor reserved it.
async fn take_slot(
    conn: &mut AnyConnection,
    room: &RoomId,
    task: i64,
    worker: &UserId,
) -> Result<bool> {
    let taken = sqlx::query(
        "UPDATE tasks SET reserved = reserved + 1 WHERE id = $1 AND room_id = $2 AND state = 'open' \
         AND reserved + answered < overlap_target \
         AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = $1 AND a.worker_id = $3) \
         AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.task_id = $1 AND r.worker_id = $3)",
    )
    .bind(task)
    .bind(room.as_str())
    .bind(worker.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Extends live reservations, a run of heartbeats in one statement: each
/// (room, task, worker, ttl) by its ttl from now, up to the reservation's
/// cap. Returns each one's new expiry, or `NotFound` for a reservation that
/// is not live (or not in that room).
pub(super) async fn heartbeats(
    conn: &mut AnyConnection,
    beats: &[(&RoomId, i64, &UserId, i64)],
) -> Result<Vec<Result<i64>>> {
    if beats.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    // VALUES columns are column1, column2, ... on both databases.
    let sql = format!(
        "UPDATE reservations SET expires_at = CASE WHEN cap_at < d.column3 THEN cap_at ELSE d.column3 END \
         FROM (VALUES {}) AS d WHERE reservations.task_id = d.column1 \
         AND reservations.worker_id = d.column2 AND reservations.room_id = d.column4 \
         AND reservations.expires_at > ? \
         RETURNING task_id, worker_id, room_id, expires_at",
        super::sql::rows(beats.len(), "(?, ?, ?, ?)", ", ")
    );
    let sql = super::sql::placeholders(conn, sql);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (room, task, worker, ttl_ms) in beats {
        query = query
            .bind(*task)
            .bind(worker.as_str())
            .bind(now.saturating_add(*ttl_ms))
            .bind(room.as_str());
    }
    let mut extended: HashMap<(i64, String, String), i64> = HashMap::with_capacity(beats.len());
    for row in query.bind(now).fetch_all(&mut *conn).await? {
        extended.insert(
            (
                row.try_get("task_id")?,
                row.try_get("worker_id")?,
                row.try_get("room_id")?,
            ),
            row.try_get("expires_at")?,
        );
    }
    Ok(beats
        .iter()
        .map(|(room, task, worker, _)| {
            extended
                .get(&(*task, worker.as_str().to_owned(), room.as_str().to_owned()))
                .copied()
                .ok_or(Error::NotFound("live reservation"))
        })
        .collect())
}

/// Gives a reservation of the room back; the task is not offered to the
/// worker again.
pub(super) async fn skip(
    conn: &mut AnyConnection,
    room: &RoomId,
    task: i64,
    worker: &UserId,
) -> Result<()> {
    let released = sqlx::query(
        "DELETE FROM reservations WHERE task_id = $1 AND worker_id = $2 AND room_id = $3 \
         RETURNING task_id",
    )
    .bind(task)
    .bind(worker.as_str())
    .bind(room.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if released.is_none() {
        return Err(Error::NotFound("reservation"));
    }
    sqlx::query("UPDATE tasks SET reserved = reserved - 1 WHERE id = $1")
        .bind(task)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO skips (task_id, worker_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(task)
        .bind(worker.as_str())
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes the room's expired reservations; returns (task, worker) of each.
pub(super) async fn sweep(conn: &mut AnyConnection, room: &RoomId) -> Result<Vec<(i64, UserId)>> {
    let rows = sqlx::query("DELETE FROM reservations WHERE room_id = $1 AND expires_at <= $2 RETURNING task_id, worker_id")
        .bind(room.as_str())
        .bind(now_ms())
        .fetch_all(&mut *conn)
        .await?;
    let mut expired = Vec::with_capacity(rows.len());
    for row in &rows {
        expired.push((
            row.try_get::<i64, _>("task_id")?,
            UserId::parse(&row.try_get::<String, _>("worker_id")?)?,
        ));
    }
    let mut tasks: Vec<i64> = expired.iter().map(|(task, _)| *task).collect();
    tasks.sort_unstable();
    for chunk in tasks.chunk_by(|a, b| a == b) {
        let Some(task) = chunk.first() else { continue };
        sqlx::query("UPDATE tasks SET reserved = reserved - $1 WHERE id = $2")
            .bind(i64::try_from(chunk.len()).unwrap_or(i64::MAX))
            .bind(*task)
            .execute(&mut *conn)
            .await?;
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn candidate(id: i64, skills: &[&str], need: f64) -> Candidate {
        Candidate {
            task: WorkerTask {
                id,
                external_id: id.to_string(),
                data: Value::Null,
            },
            skills: skills.iter().map(|skill| (*skill).to_owned()).collect(),
            tags: vec!["legal".to_owned()],
            need,
        }
    }

    #[test]
    fn expected_gain_weighs_skill_accuracy_against_need() {
        let accuracy: HashMap<String, f64> = [
            ("".to_owned(), 0.7),
            ("de".to_owned(), 0.9),
            ("fr".to_owned(), 0.3),
        ]
        .into();
        let german = candidate(1, &["de"], 0.5);
        let french = candidate(2, &["fr"], 0.6);
        let plain = candidate(3, &[], 0.6);
        assert!(
            gain(&german, &accuracy) > gain(&french, &accuracy),
            "a weaker skill loses despite more need"
        );
        assert!(
            (gain(&plain, &accuracy) - 0.42).abs() < 1e-12,
            "no skills: overall accuracy"
        );
        let unknown = candidate(4, &["ja"], 1.0);
        assert!(
            (gain(&unknown, &accuracy) - 0.7).abs() < 1e-12,
            "no record in a skill: overall accuracy"
        );
        assert!(
            (gain(&unknown, &HashMap::new()) - 2.0 / 3.0).abs() < 1e-12,
            "a newcomer: the prior"
        );
    }
}
