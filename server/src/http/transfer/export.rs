//! Streaming result export: every task with its consensus and answers,
//! page by page, as JSON, JSONL or CSV. Apart from the import because the
//! two share no code: the export only reads the store and encodes pages.

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{AppState, Caller, require};
use crate::store::ExportRow;

/// Tasks read per page of an export.
const EXPORT_PAGE: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    Jsonl,
    Csv,
}

/// Streams every task with its consensus and answers, page by page.
pub async fn export(
    State(state): State<AppState>,
    Caller(me): Caller,
    Query(query): Query<ExportQuery>,
) -> Result<Response> {
    require(
        me.role.can_list_members(),
        "only the core team exports results",
    )?;
    let (format, content_type) = match query.format.as_deref().unwrap_or("jsonl") {
        "json" => (Format::Json, "application/json"),
        "jsonl" => (Format::Jsonl, "application/x-ndjson"),
        "csv" => (Format::Csv, "text/csv; charset=utf-8"),
        other => {
            return Err(Error::BadRequest(format!(
                "unknown format {other:?}: json, jsonl or csv"
            )));
        }
    };
    // A read: the batch consensus it carries is as of the room's last
    // background run or `POST /consensus` (running it here wrote on every
    // export, and a looping exporter held the store's writer).
    let store = state.store.clone();
    let room = me.room.clone();
    // State: (the last task id sent, pages sent, finished).
    let pages = stream::unfold((0i64, 0u64, false), move |(after, sent, finished)| {
        let (store, room) = (store.clone(), room.clone());
        async move {
            if finished {
                return None;
            }
            let page = match store.export_page(&room, after, EXPORT_PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(room_id = %room, %error, "export failed mid-stream");
                    return Some((
                        Err(io::Error::other(error.to_string())),
                        (after, sent, true),
                    ));
                }
            };
            let last = page.last().map(|row| row.task_id);
            let bytes = encode(format, &page, sent == 0, last.is_none());
            match last {
                Some(last) => Some((bytes, (last, sent + 1, false))),
                None => Some((bytes, (after, sent + 1, true))),
            }
        }
    });
    let mut response = Body::from_stream(pages).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Encodes one page; the first page opens a JSON array or writes the CSV
/// header, and the empty last page closes the array.
fn encode(format: Format, page: &[ExportRow], first: bool, last: bool) -> io::Result<Bytes> {
    let mut out = Vec::new();
    match format {
        Format::Json => {
            if first {
                out.push(b'[');
            }
            for (index, row) in page.iter().enumerate() {
                if !(first && index == 0) {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, row)?;
            }
            if last {
                out.push(b']');
            }
        }
        Format::Jsonl => {
            for row in page {
                serde_json::to_writer(&mut out, row)?;
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut out);
            if first {
                writer.write_record([
                    "task_id",
                    "external_id",
                    "state",
                    "consensus",
                    "confidence",
                    "method",
                    "answer_count",
                    "answers",
                    "data",
                    "gold",
                ])?;
            }
            for row in page {
                let json = |value: &Option<Value>| {
                    value.as_ref().map(Value::to_string).unwrap_or_default()
                };
                writer.write_record([
                    row.task_id.to_string(),
                    row.external_id.clone(),
                    row.state.clone(),
                    json(&row.consensus),
                    row.confidence
                        .map(|confidence| confidence.to_string())
                        .unwrap_or_default(),
                    row.method.clone().unwrap_or_default(),
                    row.answers.len().to_string(),
                    serde_json::to_string(&row.answers)?,
                    row.data.to_string(),
                    json(&row.gold),
                ])?;
            }
            writer.flush()?;
        }
    }
    Ok(Bytes::from(out))
}
