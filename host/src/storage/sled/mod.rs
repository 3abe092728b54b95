//! The embedded default backend: sled, in the data dir.
//!
//! Everything lives in one sled tree, under key prefixes: `c/` cases
//! (id → JSON), `i/` items (id → JSON), `q/` queue index (department NUL
//! status NUL item id → nothing; item ids are time-ordered, so a prefix
//! scan lists a queue oldest first), `o/` open cases (scenario NUL version
//! NUL case id → nothing), `x/` access index (subject NUL seq → nothing),
//! `u/` due index (due time in ms, big endian, NUL item id → nothing; only
//! pending items not yet reported overdue),
//! `k/` idempotency keys (scenario NUL key → record),
//! `p/` places (path id → JSON), `v/` places by level (level NUL id),
//! `e/` offices by department (department NUL place), `g/` offices by
//! place (place NUL department),
//! `s/` datasets (dataset NUL key → JSON), `a/` audit entries (seq, big
//! endian → entry), `f/` failures, `r/` registry records, and `m/` meta
//! (the audit chain's head, the backfill flags).
//!
//! Writes go through one writer thread (group commit). It is the only
//! writer, so the checks a commit needs (the case's revision, the
//! idempotency key, the audit chain's head) read a state nothing else
//! changes. It takes every write waiting in its queue, checks each in turn
//! against the tree and the writes before it in the batch, and applies the
//! whole batch as one atomic sled batch: all of it lands or none of it. A
//! flusher thread then makes everything applied so far durable with one
//! flush and answers each caller, while the writer goes on with the next
//! batch. So `commit` returns `Ok` only once the write is on disk: an
//! acknowledged application survives a crash, and under load one fsync
//! covers a whole batch. Records are encoded on the caller's thread before
//! they reach the writer, which does only what must be serial; it counts
//! its writes, batches and busy time for `/metrics`.
//!
//! Files: `keys.rs` (the key prefixes and index key encodings),
//! `writer.rs` (the writer and flusher threads and their stats),
//! `backfill.rs` (indexing an older data dir once, at open), and one file
//! per store trait (`cases.rs`, `queues.rs`, `datasets.rs`, `audit.rs`,
//! `registry.rs`, `failures.rs`, `places.rs`).

mod audit;
mod backfill;
mod cases;
mod counters;
mod datasets;
mod failures;
#[cfg(test)]
mod fixtures;
mod keys;
mod places;
mod queues;
mod registry;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{GENESIS_HASH, StorageError};
use backfill::{backfill_access_index, backfill_case_indexes};
use keys::AUDIT_HEAD;
use writer::{AuditHead, Counters, Write, Writer, WriterState, flush_loop};

/// Storage on an embedded sled database.
pub struct SledStorage {
    db: Arc<sled::Db>,
    writer: Option<Writer>,
    counters: Arc<Counters>,
}

fn backend(err: sled::Error) -> StorageError {
    StorageError::Backend(err.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(|e| StorageError::Backend(format!("encode: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    })
}

impl SledStorage {
    /// Opens (or creates) the database in `dir` and starts its writer,
    /// counting months in UTC (see [`SledStorage::open_in`]).
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_in(dir, 0)
    }

    /// Opens (or creates) the database in `dir` and starts its writer; the
    /// monthly counters count months in the local time `utc_offset_minutes`
    /// east of UTC (the host's time zone). The counters of a data dir from
    /// before them are counted once, here.
    pub fn open_in(dir: &Path, utc_offset_minutes: i32) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .open()
            .map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", dir.display())))?;
        let db = Arc::new(db);
        backfill_access_index(&db)?;
        backfill_case_indexes(&db)?;
        counters::backfill_counters(&db, utc_offset_minutes)?;
        let head = match db.get(AUDIT_HEAD).map_err(backend)? {
            Some(bytes) => decode(AUDIT_HEAD, &bytes)?,
            None => AuditHead {
                seq: 0,
                hash: GENESIS_HASH.to_owned(),
            },
        };
        let (queue, inbox) = mpsc::channel();
        let (applied, to_flush) = mpsc::channel();
        let spawn_error =
            |e: std::io::Error| StorageError::Backend(format!("cannot start a writer thread: {e}"));
        let counters = Arc::new(Counters::default());
        let mut state = WriterState {
            db: db.clone(),
            head,
            counters: counters.clone(),
            utc_offset_minutes,
        };
        let writer = std::thread::Builder::new()
            .name("onething-sled-writer".into())
            .spawn(move || state.run(&inbox, &applied))
            .map_err(spawn_error)?;
        let flusher_db = db.clone();
        let flusher_counters = counters.clone();
        let flusher = std::thread::Builder::new()
            .name("onething-sled-flusher".into())
            .spawn(move || flush_loop(&flusher_db, &to_flush, &flusher_counters))
            .map_err(spawn_error)?;
        Ok(SledStorage {
            db,
            writer: Some(Writer {
                queue,
                threads: vec![writer, flusher],
            }),
            counters,
        })
    }

    /// Hands a write to the writer thread and waits until it is durable.
    async fn write(&self, write: Write) -> Result<(), StorageError> {
        let stopped = || StorageError::Backend("the storage writer has stopped".into());
        let queue = self.writer.as_ref().map(|w| &w.queue).ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        queue.send((write, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.db.get(key).map_err(backend)? {
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
            None => Ok(None),
        }
    }
}

impl Drop for SledStorage {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has handed on every
        // write it took, which ends the flusher once it has answered them;
        // joining both releases the database.
        if let Some(Writer { queue, threads }) = self.writer.take() {
            drop(queue);
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}
