//! The work engine's REST API: the project, task import and listing, the
//! queue's counts, and members' skills (docs/API.md).
//!
//! Imports stream: JSONL (`application/x-ndjson`) line by line and a JSON
//! array element by element, inserting in batches, so a 100k-task import
//! never holds the whole set in memory.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, JsonBody, authenticate};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::ImportReport;
use crate::work::{NewTask, ProjectConfig};

/// Tasks inserted per transaction during an import.
const IMPORT_BATCH: usize = 1000;
/// Longest JSON value of one task in an import, in bytes.
const MAX_TASK_BYTES: usize = 1024 * 1024;
/// Most errors listed in an import report (the count is always complete).
const MAX_REPORTED_ERRORS: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rooms/{room}/project", get(get_project).put(put_project))
        .route("/rooms/{room}/tasks", get(list_tasks).post(import_tasks))
        .route("/rooms/{room}/queue", get(queue))
        .route("/rooms/{room}/members/{user}/skills", put(set_skills).get(get_skills))
}

fn require(allowed: bool, why: &'static str) -> Result<()> {
    if allowed { Ok(()) } else { Err(Error::Forbidden(why)) }
}

async fn get_project(State(state): State<AppState>, headers: HeaderMap, Path(room): Path<String>) -> Result<Json<ProjectConfig>> {
    let me = authenticate(&state, &headers, None, &room).await?;
    Ok(Json(state.store.project(&me.room).await?))
}

async fn put_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    JsonBody(config): JsonBody<ProjectConfig>,
) -> Result<Json<ProjectConfig>> {
    let me = authenticate(&state, &headers, None, &room).await?;
    require(me.role.can_moderate(), "only owners and moderators configure the project")?;
    config.validate()?;
    state.store.put_project(&me.room, &config).await?;
    Ok(Json(config))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskQuery {
    state: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn list_tasks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Query(query): Query<TaskQuery>,
) -> Result<Json<Value>> {
    let me = authenticate(&state, &headers, None, &room).await?;
    // Task listings carry gold answers: never for workers.
    require(me.role.can_list_members(), "only the core team lists tasks")?;
    let tasks = state.store.tasks(&me.room, query.state.as_deref(), query.after.unwrap_or(0), query.limit.unwrap_or(100)).await?;
    let next = tasks.last().map(|task| task.id);
    Ok(Json(json!({ "tasks": tasks, "next_after": next })))
}

async fn queue(State(state): State<AppState>, headers: HeaderMap, Path(room): Path<String>) -> Result<Json<Value>> {
    let me = authenticate(&state, &headers, None, &room).await?;
    Ok(Json(json!({ "counts": state.store.queue_counts(&me.room).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Skills {
    skills: Vec<String>,
}

async fn set_skills(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((room, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<Skills>,
) -> Result<Json<Value>> {
    let me = authenticate(&state, &headers, None, &room).await?;
    require(me.role.can_moderate(), "only owners and moderators set skills")?;
    let user = UserId::parse(&user)?;
    if state.store.member_role(&me.room, &user).await?.is_none() {
        return Err(Error::NotFound("member"));
    }
    state.store.set_member_skills(&me.room, &user, &body.skills).await?;
    Ok(Json(json!({ "user": user, "skills": body.skills })))
}

async fn get_skills(State(state): State<AppState>, headers: HeaderMap, Path((room, user)): Path<(String, String)>) -> Result<Json<Value>> {
    let me = authenticate(&state, &headers, None, &room).await?;
    let user = UserId::parse(&user)?;
    require(me.user == user || me.role.can_list_members(), "only the core team sees others' skills")?;
    Ok(Json(json!({ "user": user, "skills": state.store.member_skills(&me.room, &user).await? })))
}

/// Splits a byte stream into JSON values: one per line (JSONL), or one per
/// element of a top-level array. Only brackets outside strings count.
#[derive(Default)]
struct Splitter {
    buffer: Vec<u8>,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// None until the first non-space byte says which format this is.
    array: Option<bool>,
}

impl Splitter {
    /// Feeds bytes; returns the complete values they finished.
    fn feed(&mut self, bytes: &[u8], values: &mut Vec<Vec<u8>>) -> Result<()> {
        for &byte in bytes {
            if self.array.is_none() {
                if byte.is_ascii_whitespace() {
                    continue;
                }
                self.array = Some(byte == b'[');
                if byte == b'[' {
                    continue;
                }
            }
            let array = self.array == Some(true);
            if self.in_string {
                self.buffer.push(byte);
                match (self.escaped, byte) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
            } else {
                match byte {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' if self.depth > 0 => self.depth -= 1,
                    _ => {}
                }
                let at_top = self.depth == 0;
                let separator = if array { at_top && (byte == b',' || byte == b']') } else { byte == b'\n' };
                if separator {
                    self.flush(values);
                } else {
                    self.buffer.push(byte);
                }
            }
            if self.buffer.len() > MAX_TASK_BYTES {
                return Err(Error::TooLarge("one task is over 1 MiB"));
            }
        }
        Ok(())
    }

    fn flush(&mut self, values: &mut Vec<Vec<u8>>) {
        if self.buffer.iter().any(|byte| !byte.is_ascii_whitespace()) {
            values.push(std::mem::take(&mut self.buffer));
        } else {
            self.buffer.clear();
        }
    }
}

/// Imports tasks from a JSON array or JSONL body, streaming.
async fn import_tasks(State(state): State<AppState>, headers: HeaderMap, Path(room): Path<String>, body: Body) -> Result<Response> {
    let me = authenticate(&state, &headers, None, &room).await?;
    require(me.role.can_list_members(), "only the core team imports tasks")?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if content_type.starts_with("text/csv") {
        return Err(Error::BadRequest("CSV import is not supported yet: send JSON or JSONL".into()));
    }
    let project = state.store.project(&me.room).await?;
    let mut splitter = Splitter::default();
    let mut report = ImportReport::default();
    let mut errors = Vec::new();
    let mut error_count = 0u64;
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut values = Vec::new();
    let mut index = 0u64;
    let mut stream = body.into_data_stream();
    let mut done = false;
    while !done {
        match stream.next().await {
            Some(Ok(chunk)) => splitter.feed(&chunk, &mut values)?,
            Some(Err(error)) => return Err(Error::BadRequest(format!("cannot read the body: {error}"))),
            None => {
                splitter.flush(&mut values);
                done = true;
            }
        }
        for value in values.drain(..) {
            index += 1;
            let parsed = serde_json::from_slice::<NewTask>(&value)
                .map_err(|error| Error::BadRequest(error.to_string()))
                .and_then(|task| task.validate(&project.answer_schema).map(|()| task));
            match parsed {
                Ok(task) => batch.push(task),
                Err(error) => {
                    error_count += 1;
                    if errors.len() < MAX_REPORTED_ERRORS {
                        errors.push(json!({ "task": index, "message": error.public_message() }));
                    }
                }
            }
            if batch.len() >= IMPORT_BATCH {
                add(&mut report, state.store.insert_tasks(&me.room, &batch, project.overlap_min).await?);
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        add(&mut report, state.store.insert_tasks(&me.room, &batch, project.overlap_min).await?);
    }
    if report.inserted > 0 {
        state.rooms.queue_changed(&me.room).await;
    }
    let body = json!({ "inserted": report.inserted, "duplicates": report.duplicates, "rejected": error_count, "errors": errors });
    Ok((StatusCode::OK, Json(body)).into_response())
}

fn add(total: &mut ImportReport, batch: ImportReport) {
    total.inserted += batch.inserted;
    total.duplicates += batch.duplicates;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> Vec<String> {
        let mut splitter = Splitter::default();
        let mut values = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk.as_bytes(), &mut values).unwrap_or_default();
        }
        splitter.flush(&mut values);
        values.into_iter().map(|value| String::from_utf8(value).unwrap_or_default().trim().to_owned()).collect()
    }

    #[test]
    fn splits_arrays_and_lines_across_chunks() {
        let array = split(&[" [{\"id\":\"a\",\"data\":\"x]\"},", "{\"id\":\"b\",\"data\":[1,{\"c\":\"\\\"\"}]}", "]"]);
        assert_eq!(array, [r#"{"id":"a","data":"x]"}"#, r#"{"id":"b","data":[1,{"c":"\""}]}"#]);
        let lines = split(&["{\"id\":\"a\"}\n{\"id\"", ":\"b\"}\n\n{\"id\":\"c\"}"]);
        assert_eq!(lines, [r#"{"id":"a"}"#, r#"{"id":"b"}"#, r#"{"id":"c"}"#]);
    }
}
