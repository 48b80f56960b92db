//! Reads of the live paths, a batch at a time: many callers, one statement.
//!
//! In WAL mode a SQLite connection drops its page cache at the start of
//! every read transaction that follows another connection's commit, and
//! with the file mapped it unmaps the file too and faults its pages back
//! in. Under a crowd the committer commits every few milliseconds, so
//! nearly every read started cold: a profile of 5,000 workers put a
//! quarter of the SQLite threads' time in `munmap` and page faults, and
//! another eighth in the thread hand-offs of one statement per read. The
//! reads that every grant, answer and queue push make (a worker's view,
//! a room's counts, whether a room has expired reservations) are small
//! and many, so here the callers waiting for one kind of read share one
//! statement: one read transaction, one pooled connection and one round
//! trip for the batch.
//!
//! No task of its own: the first caller to find no batch running starts
//! one on the store's thread (so a cancelled caller cannot stop it), and
//! that batch takes whatever has queued meanwhile, again and again, until
//! nothing waits. While one batch reads, the next gathers.
//!
//! A batch never waits for company, so batches grow only with load: at
//! 5,000 crowd workers a view statement served about two callers. Most of
//! the saving came from where the statements run (`hot.rs`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::{Backend, Store};
use crate::error::{Error, Result};

/// Most distinct keys in one statement.
const MAX_KEYS: usize = 256;

/// What one batch read returns: a value for each key it was given.
pub(super) type Found<K, V> = Pin<Box<dyn Future<Output = Result<HashMap<K, V>>> + Send>>;

/// The read of one kind: every key's value, in one statement.
pub(super) type ReadFn<K, V> = fn(Store, Vec<K>) -> Found<K, V>;

/// Callers waiting for one kind of read, and whether a batch is running.
pub(super) struct Batcher<K, V> {
    read: ReadFn<K, V>,
    queue: Mutex<Queue<K, V>>,
}

struct Queue<K, V> {
    running: bool,
    waiting: Vec<(K, oneshot::Sender<Result<V>>)>,
}

impl<K, V> Batcher<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(super) fn new(read: ReadFn<K, V>) -> Arc<Batcher<K, V>> {
        Arc::new(Batcher {
            read,
            queue: Mutex::new(Queue {
                running: false,
                waiting: Vec::new(),
            }),
        })
    }

    /// The value of `key`, read in the next batch.
    pub(super) async fn get(self: &Arc<Self>, store: &Store, key: K) -> Result<V> {
        let (reply, value) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push((key, reply));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            let batcher = self.clone();
            store.runtime().spawn(batcher.run(store.clone()));
        }
        value
            .await
            .map_err(|_| Error::Internal("a batch read ended without a reply".into()))?
    }

    fn lock(&self) -> MutexGuard<'_, Queue<K, V>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads batches until nothing waits.
    async fn run(self: Arc<Self>, store: Store) {
        // Should a read panic, the guard still clears `running` and drops
        // the waiting replies (their callers fail rather than hang).
        let _guard = Running(&self);
        loop {
            let asks = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    queue.running = false;
                    return;
                }
                take_batch(&mut queue.waiting)
            };
            let keys = distinct(&asks);
            match (self.read)(store.clone(), keys).await {
                Ok(found) => {
                    for (key, reply) in asks {
                        let value = found.get(&key).cloned().ok_or_else(|| {
                            Error::Internal("a batch read returned no row for a key".into())
                        });
                        // The caller may have gone; nothing to tell then.
                        let _ = reply.send(value);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, reads = asks.len(), "batch read failed");
                    for (_, reply) in asks {
                        let _ = reply.send(Err(Error::Internal(format!("batch read: {error}"))));
                    }
                }
            }
        }
    }
}

/// The table `k (room_id)` of the JSON array of room ids bound as `$1`.
pub(super) fn rooms_from(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(SELECT j.value AS room_id FROM json_each($1) j) k",
        Backend::Postgres => {
            "(SELECT j.value AS room_id FROM json_array_elements_text(CAST($1 AS JSON)) j) k"
        }
    }
}

/// Keys as the JSON array that [`rooms_from`] or [`pairs_from`] unpacks.
fn keys_json(keys: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(keys)
        .map_err(|error| Error::Internal(format!("batch keys do not encode: {error}")))
}

impl Store {
    /// Runs a batched read on a hot connection (`hot.rs`): `sql` takes the
    /// keys as one JSON array (`$1`, see [`rooms_from`] and [`pairs_from`])
    /// and the time now (`$2`).
    pub(super) async fn read_keys(
        &self,
        sql: String,
        keys: &impl serde::Serialize,
    ) -> Result<Vec<sqlx::any::AnyRow>> {
        let mut conn = self.hot().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(keys_json(keys)?)
            .bind(crate::ids::now_ms())
            .fetch_all(&mut *conn)
            .await;
        conn.checked(rows)
    }
}

/// The keys asked for, each once.
fn distinct<K: Eq + Hash + Clone, R>(asks: &[(K, R)]) -> Vec<K> {
    let mut seen = HashSet::with_capacity(asks.len());
    asks.iter()
        .filter(|(key, _)| seen.insert(key))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The oldest waiters up to [`MAX_KEYS`] of them (a key asked twice counts
/// twice here, which only makes a batch smaller).
fn take_batch<T>(waiting: &mut Vec<T>) -> Vec<T> {
    if waiting.len() <= MAX_KEYS {
        std::mem::take(waiting)
    } else {
        waiting.drain(..MAX_KEYS).collect()
    }
}

/// Clears `running` when a batch loop ends by a panic.
struct Running<'a, K, V>(&'a Batcher<K, V>);

impl<K, V> Drop for Running<'_, K, V> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.running = false;
            queue.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use futures_util::future::join_all;

    use super::{Batcher, Found};
    use crate::error::Error;
    use crate::store::Store;

    /// Doubles each key; fails a batch holding 13, and leaves 7 out.
    fn double(_store: Store, keys: Vec<u32>) -> Found<u32, u32> {
        Box::pin(async move {
            if keys.contains(&13) {
                return Err(Error::Internal("thirteen".into()));
            }
            Ok(keys
                .into_iter()
                .filter(|&key| key != 7)
                .map(|key| (key, key * 2))
                .collect::<HashMap<_, _>>())
        })
    }

    #[tokio::test]
    async fn each_caller_gets_its_key_and_a_failed_batch_does_not_stick() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let batcher = Batcher::new(double);
        // Many at once, some keys asked twice: every caller its own value.
        let keys: Vec<u32> = (0..600)
            .map(|at| at % 300)
            .filter(|&key| key != 7 && key != 13)
            .collect();
        let values = join_all(keys.iter().map(|&key| batcher.get(&store, key))).await;
        for (key, value) in keys.iter().zip(values) {
            assert_eq!(value.unwrap(), key * 2);
        }
        // A key the read has no row for is an error for that caller only.
        let (missing, present) = tokio::join!(batcher.get(&store, 7), batcher.get(&store, 8));
        assert!(matches!(missing, Err(Error::Internal(_))));
        assert_eq!(present.unwrap(), 16);
        // A failed batch fails its callers, and the next batch runs.
        assert!(batcher.get(&store, 13).await.is_err());
        assert_eq!(batcher.get(&store, 5).await.unwrap(), 10);
    }
}
