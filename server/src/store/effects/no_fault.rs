//! Time on reservations that ended unanswered through no fault of their
//! holder (`crowdroom_work::floor::no_fault_ms`), kept after the
//! reservation's row is gone so the pay floor can count it.

use crowdroom_work::queue::{Effect, Freed};
use sqlx::AnyConnection;

use super::{CHUNK, query};
use crate::error::Result;
use crate::ids::now_ms;
use crate::store::sql;

/// One reservation's no-fault time: (room, worker, task, why, ms).
pub(super) type NoFault<'a> = (&'a str, &'a str, i64, Freed, i64);

/// The no-fault time an effect carries, if any.
pub(super) fn of<'a>(room: &'a str, effect: &'a Effect) -> Option<NoFault<'a>> {
    match effect {
        Effect::ReservationDeleted {
            task,
            worker,
            why,
            no_fault_ms: Some(ms),
        } => Some((room, worker, *task, *why, *ms)),
        _ => None,
    }
}

pub(super) async fn write(conn: &mut AnyConnection, times: &[NoFault<'_>]) -> Result<()> {
    let at = now_ms();
    for chunk in times.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO no_fault_time (room_id, worker_id, task_id, why, ms, at) VALUES {}",
            sql::rows(chunk.len(), "(?, ?, ?, ?, ?, ?)", ", ")
        );
        let mut statement = query(conn, sql);
        for (room, worker, task, why, ms) in chunk {
            let why = match why {
                Freed::Expired => "capped",
                Freed::Released => "released",
                Freed::Skipped => "skipped",
            };
            statement = statement
                .bind(room.to_string())
                .bind(worker.to_string())
                .bind(*task)
                .bind(why)
                .bind((*ms).max(0))
                .bind(at);
        }
        statement.execute(&mut *conn).await?;
    }
    Ok(())
}
