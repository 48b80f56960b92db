//! Streaming task import: a JSON array element by element, JSONL line by
//! line, and CSV record by record (the csv crate on a blocking thread, fed
//! from the body stream), inserted in batches with the import's limits
//! checked on the way. Apart from the export because the two share no code:
//! this side parses and bounds untrusted input, the export only pages
//! through the store.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use crowdroom_work::project::NewTask;
use crowdroom_work::schema::AnswerSchema;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{Error, Result};
use crate::http::{AppState, Caller, HttpLimits, require};
use crate::ids::RoomId;
use crate::store::{ImportReport, Store};

/// Tasks inserted per transaction during an import.
const IMPORT_BATCH: usize = 1000;
/// Longest record of one task in an import (a JSON value, a JSONL line or
/// a CSV record), in bytes: a task is a text or an item to label, not a
/// corpus; the importer holds one record at a time.
pub const MAX_TASK_BYTES: usize = 1024 * 1024;
/// Most errors listed in an import report (the count is always complete).
const MAX_REPORTED_ERRORS: usize = 100;
/// Parsed CSV tasks in flight between the parsing thread and the inserter.
const CSV_CHANNEL: usize = 2 * IMPORT_BATCH;

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
    /// Values finished so far (the one being read is the next).
    finished: u64,
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
                let separator = if array {
                    at_top && (byte == b',' || byte == b']')
                } else {
                    byte == b'\n'
                };
                if separator {
                    self.flush(values);
                } else {
                    self.buffer.push(byte);
                }
            }
            if self.buffer.len() > MAX_TASK_BYTES {
                return Err(Error::ImportTooLarge(format!(
                    "task {} of the import is over {} bytes",
                    self.finished.saturating_add(1),
                    MAX_TASK_BYTES
                )));
            }
        }
        Ok(())
    }

    fn flush(&mut self, values: &mut Vec<Vec<u8>>) {
        if self.buffer.iter().any(|byte| !byte.is_ascii_whitespace()) {
            self.finished = self.finished.saturating_add(1);
            values.push(std::mem::take(&mut self.buffer));
        } else {
            self.buffer.clear();
        }
    }
}

/// Collects an import: batches valid tasks into the store, counts the rest.
struct Importer<'a> {
    store: &'a Store,
    room: &'a RoomId,
    schema: &'a AnswerSchema,
    overlap: u32,
    batch: Vec<NewTask>,
    report: ImportReport,
    errors: Vec<RejectedTask>,
    rejected: u64,
    position: u64,
    /// Most tasks this import may carry.
    max_tasks: u64,
}

impl Importer<'_> {
    /// Takes the next task (or the reason it could not be read).
    async fn take(&mut self, task: Result<NewTask>) -> Result<()> {
        // Over a limit, the import stops; other errors reject one task.
        if let Err(Error::ImportTooLarge(why)) = task {
            return Err(Error::ImportTooLarge(why));
        }
        self.position = self.position.saturating_add(1);
        if self.position > self.max_tasks {
            return Err(Error::ImportTooLarge(format!(
                "task {} is over the limit of {} tasks per import (the tasks before it \
                 may have been stored: send the rest as another import)",
                self.position, self.max_tasks
            )));
        }
        match task.and_then(|task| {
            task.validate(self.schema)
                .map(|()| task)
                .map_err(Error::from)
        }) {
            Ok(task) => self.batch.push(task),
            Err(error) => {
                self.rejected += 1;
                if self.errors.len() < MAX_REPORTED_ERRORS {
                    self.errors.push(RejectedTask {
                        task: self.position,
                        message: error.public_message(),
                    });
                }
            }
        }
        if self.batch.len() >= IMPORT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.batch.is_empty() {
            let inserted = self
                .store
                .insert_tasks(self.room, &self.batch, self.overlap)
                .await?;
            self.report.inserted += inserted.inserted;
            self.report.duplicates += inserted.duplicates;
            self.batch.clear();
        }
        Ok(())
    }
}

/// Imports tasks from a JSON array, JSONL or CSV (`text/csv`) body.
pub async fn import_tasks(
    State(state): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    require(
        me.role.can_list_members(),
        "only the core team imports tasks",
    )?;
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/csv"));
    let project = state.store.project(&me.room).await?;
    let mut importer = Importer {
        store: &state.store,
        room: &me.room,
        schema: &project.answer_schema,
        overlap: project.overlap_min,
        batch: Vec::with_capacity(IMPORT_BATCH),
        report: ImportReport::default(),
        errors: Vec::new(),
        rejected: 0,
        position: 0,
        max_tasks: state.http.max_import_tasks,
    };
    if csv {
        import_csv(body, &mut importer, &state.http).await?;
    } else {
        import_json(body, &mut importer, &state.http).await?;
    }
    importer.flush().await?;
    if importer.report.inserted > 0 {
        state.rooms.queue_changed(&me.room).await;
    }
    Ok(Json(ImportResult {
        inserted: importer.report.inserted,
        duplicates: importer.report.duplicates,
        rejected: importer.rejected,
        errors: importer.errors,
    })
    .into_response())
}

/// The reply to an import: what was stored, skipped and rejected.
#[derive(Debug, Serialize)]
struct ImportResult {
    inserted: u64,
    /// Tasks whose id was already in the room (skipped).
    duplicates: u64,
    rejected: u64,
    /// The first rejected tasks, by their place in the body (1-based).
    errors: Vec<RejectedTask>,
}

/// One rejected task of an import, and why.
#[derive(Debug, Serialize)]
struct RejectedTask {
    task: u64,
    message: String,
}

/// The error of an import whose body is over its byte limit.
fn import_over_bytes(limits: &HttpLimits, record: u64) -> Error {
    Error::ImportTooLarge(format!(
        "the import is over {} bytes, in task {record}",
        limits.max_import_bytes
    ))
}

async fn import_json(body: Body, importer: &mut Importer<'_>, limits: &HttpLimits) -> Result<()> {
    let mut splitter = Splitter::default();
    let mut values = Vec::new();
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    loop {
        let done = match stream.next().await {
            Some(Ok(chunk)) => {
                received = received.saturating_add(chunk.len() as u64);
                if received > limits.max_import_bytes {
                    return Err(import_over_bytes(
                        limits,
                        splitter.finished.saturating_add(1),
                    ));
                }
                splitter.feed(&chunk, &mut values)?;
                false
            }
            Some(Err(error)) => {
                return Err(Error::BadRequest(format!("cannot read the body: {error}")));
            }
            None => {
                splitter.flush(&mut values);
                true
            }
        };
        for value in values.drain(..) {
            let task = serde_json::from_slice::<NewTask>(&value)
                .map_err(|error| Error::BadRequest(error.to_string()));
            importer.take(task).await?;
        }
        if done {
            return Ok(());
        }
    }
}

/// CSV: a header row with `id`; optional `gold` (JSON, or else the text) and
/// `skills` (separated by `;`); a `data` column holding JSON is the task's
/// data, and otherwise every other column becomes a field of it.
///
/// The csv crate holds a whole record in memory, however long: the parser
/// reads through [`Bounded`], which fails the read once the record being
/// parsed (or the whole body) is over its limit.
async fn import_csv(body: Body, importer: &mut Importer<'_>, limits: &HttpLimits) -> Result<()> {
    let reader = StreamReader::new(body.into_data_stream().map_err(io::Error::other));
    let (sender, mut receiver) = mpsc::channel::<Result<NewTask>>(CSV_CHANNEL);
    let max_bytes = limits.max_import_bytes;
    let parser = tokio::task::spawn_blocking(move || {
        let record_start = Rc::new(Cell::new(0u64));
        let bounded = Bounded {
            inner: SyncIoBridge::new(reader),
            read: 0,
            record_start: record_start.clone(),
            max_bytes,
        };
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(bounded);
        let headers = match csv.headers() {
            Ok(headers) => headers.clone(),
            Err(error) => return Err(Error::BadRequest(format!("CSV header: {error}"))),
        };
        if !headers.iter().any(|name| name == "id") {
            return Err(Error::BadRequest(
                "the CSV header needs an `id` column".into(),
            ));
        }
        // Records are numbered from 1 after the header, as tasks are.
        let mut number = 0u64;
        let mut record = csv::StringRecord::new();
        loop {
            record_start.set(csv.position().byte());
            number = number.saturating_add(1);
            let task = match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => Ok(csv_task(&headers, &record)),
                Err(error) => match over_limit(&error) {
                    Some(Limit::Record) => Err(Error::ImportTooLarge(format!(
                        "CSV record {number} (line {}) is over {MAX_TASK_BYTES} bytes",
                        csv.position().line().saturating_add(1)
                    ))),
                    Some(Limit::Import) => Err(Error::ImportTooLarge(format!(
                        "the import is over {max_bytes} bytes, in CSV record {number}"
                    ))),
                    None => Err(Error::BadRequest(format!("CSV: {error}"))),
                },
            };
            let stop = matches!(task, Err(Error::ImportTooLarge(_)));
            if sender.blocking_send(task).is_err() || stop {
                break; // the importer stopped (a store error or a limit); it reports why
            }
        }
        Ok(())
    });
    while let Some(task) = receiver.recv().await {
        importer.take(task).await?;
    }
    parser
        .await
        .map_err(|error| Error::Internal(format!("CSV parser: {error}")))?
}

/// Which limit a [`Bounded`] read hit.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Record,
    Import,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Record => "a record is over its limit",
            Limit::Import => "the import is over its limit",
        })
    }
}

impl std::error::Error for Limit {}

/// The limit a CSV read error reports, if it was one of [`Bounded`]'s.
fn over_limit(error: &csv::Error) -> Option<Limit> {
    match error.kind() {
        csv::ErrorKind::Io(error) => error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Limit>())
            .copied(),
        _ => None,
    }
}

/// A reader that fails once the bytes read since `record_start` (where the
/// parser says the current record began) pass [`MAX_TASK_BYTES`], or all
/// bytes read pass `max_bytes`. It reads ahead of the parser by at most the
/// csv crate's buffer, so a record is refused within that of the limit.
struct Bounded<R> {
    inner: R,
    read: u64,
    record_start: Rc<Cell<u64>>,
    max_bytes: u64,
}

impl<R: io::Read> io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let record = self.read.saturating_sub(self.record_start.get());
        if record > MAX_TASK_BYTES as u64 {
            return Err(io::Error::other(Limit::Record));
        }
        if self.read > self.max_bytes {
            return Err(io::Error::other(Limit::Import));
        }
        let read = self.inner.read(buf)?;
        self.read = self.read.saturating_add(read as u64);
        Ok(read)
    }
}

fn csv_task(headers: &csv::StringRecord, record: &csv::StringRecord) -> NewTask {
    let mut task = NewTask {
        id: String::new(),
        data: Value::Null,
        skills: Vec::new(),
        gold: None,
        tags: Vec::new(),
    };
    let mut fields = Map::new();
    for (name, value) in headers.iter().zip(record.iter()) {
        match name {
            "id" => task.id = value.to_owned(),
            "skills" => {
                task.skills = value
                    .split(';')
                    .map(str::trim)
                    .filter(|skill| !skill.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "tags" => {
                task.tags = value
                    .split(';')
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "gold" if !value.is_empty() => {
                task.gold = Some(
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned())),
                );
            }
            "gold" => {}
            "data" => match serde_json::from_str(value) {
                Ok(data) => task.data = data,
                Err(_) => {
                    fields.insert(name.to_owned(), Value::String(value.to_owned()));
                }
            },
            _ => {
                fields.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
    }
    if task.data.is_null() {
        task.data = Value::Object(fields);
    }
    task
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> Vec<String> {
        let mut splitter = Splitter::default();
        let mut values = Vec::new();
        for chunk in chunks {
            splitter
                .feed(chunk.as_bytes(), &mut values)
                .unwrap_or_default();
        }
        splitter.flush(&mut values);
        values
            .into_iter()
            .map(|value| {
                String::from_utf8(value)
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn splits_arrays_and_lines_across_chunks() {
        let array = split(&[
            " [{\"id\":\"a\",\"data\":\"x]\"},",
            "{\"id\":\"b\",\"data\":[1,{\"c\":\"\\\"\"}]}",
            "]",
        ]);
        assert_eq!(
            array,
            [
                r#"{"id":"a","data":"x]"}"#,
                r#"{"id":"b","data":[1,{"c":"\""}]}"#
            ]
        );
        let lines = split(&["{\"id\":\"a\"}\n{\"id\"", ":\"b\"}\n\n{\"id\":\"c\"}"]);
        assert_eq!(lines, [r#"{"id":"a"}"#, r#"{"id":"b"}"#, r#"{"id":"c"}"#]);
    }
}
