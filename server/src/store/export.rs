//! Results export: tasks with their consensus and every answer, read a
//! page at a time so an export of any size streams in bounded memory.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::Store;
use super::quality::optional_json;
use super::work::json_column;
use crate::error::Result;
use crate::ids::RoomId;

/// One answer, as exported.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerRow {
    pub worker: String,
    pub answer: Value,
    pub lead_time_ms: i64,
    pub created_at: i64,
}

/// One task with its consensus and every answer, as exported.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow {
    pub task_id: i64,
    pub external_id: String,
    pub state: String,
    pub data: Value,
    pub gold: Option<Value>,
    pub consensus: Option<Value>,
    pub confidence: Option<f64>,
    pub method: Option<String>,
    pub answers: Vec<AnswerRow>,
}

impl Store {
    /// A page of the export: up to `limit` tasks with ids above `after`,
    /// each with its answers (two queries a page, whatever its size).
    pub async fn export_page(
        &self,
        room: &RoomId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ExportRow>> {
        let rows = sqlx::query(
            "SELECT id, external_id, state, data, gold, consensus, confidence, method FROM tasks \
             WHERE room_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(room.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            page.push(ExportRow {
                task_id: row.try_get("id")?,
                external_id: row.try_get("external_id")?,
                state: row.try_get("state")?,
                data: json_column(row, "data")?,
                gold: optional_json(row, "gold")?,
                consensus: optional_json(row, "consensus")?,
                confidence: row.try_get("confidence")?,
                method: row.try_get("method")?,
                answers: Vec::new(),
            });
        }
        let (Some(first), Some(last)) = (
            page.first().map(|row| row.task_id),
            page.last().map(|row| row.task_id),
        ) else {
            return Ok(page);
        };
        let answers = sqlx::query(
            "SELECT task_id, worker_id, answer, lead_time_ms, created_at FROM answers \
             WHERE room_id = $1 AND task_id >= $2 AND task_id <= $3 ORDER BY task_id, id",
        )
        .bind(room.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        for answer in &answers {
            let task: i64 = answer.try_get("task_id")?;
            let index = page.binary_search_by_key(&task, |row| row.task_id).ok();
            if let Some(row) = index.and_then(|index| page.get_mut(index)) {
                row.answers.push(AnswerRow {
                    worker: answer.try_get("worker_id")?,
                    answer: json_column(answer, "answer")?,
                    lead_time_ms: answer.try_get("lead_time_ms")?,
                    created_at: answer.try_get("created_at")?,
                });
            }
        }
        Ok(page)
    }
}
