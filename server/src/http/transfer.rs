//! Streaming task import and result export (docs/API.md).
//!
//! Imports stream: a JSON array element by element, JSONL line by line, and
//! CSV record by record (the csv crate on a blocking thread, fed from the
//! body stream), inserting in batches; exports page through tasks and their
//! answers. Neither holds the whole set in memory, so 100k tasks cost the
//! same memory as 1k.
//!
//! Limits (docs/API.md, "Limits"): one task's record at most
//! [`import::MAX_TASK_BYTES`], and one import at most
//! [`super::HttpLimits::max_import_tasks`] tasks and
//! [`super::HttpLimits::max_import_bytes`] bytes; past any of them the
//! import stops with 413 naming the record. Exports only read: the batch
//! consensus they carry is refreshed in the background (every
//! `batch_every` settled tasks) or by `POST /rooms/{room}/consensus`.
//!
//! The import (`transfer/import.rs`) and the export (`transfer/export.rs`)
//! share no code, only their place in the API; this file re-exports their
//! two handlers for the router.

mod export;
mod import;

pub use export::export;
pub use import::import_tasks;
