//! Checking the audit log: every entry must hash to what it says, and link
//! to the entry before it. `onething audit verify` runs this over a data
//! dir and names the first entry that does not hold.

use crate::storage::{GENESIS_HASH, Storage, StorageError};

/// How many entries are read at a time.
const PAGE: usize = 1_000;

/// A chain that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// How many entries were checked.
    pub entries: u64,
    /// The hash of the last entry (the genesis hash for an empty log).
    pub head: String,
}

/// Why the chain does not hold, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An entry is not what its hash says, or does not link to the one
    /// before it.
    #[error("audit chain broken at entry {seq}: {reason}")]
    Broken {
        /// The first entry that does not hold.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The log could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Walks the whole audit log from its first entry.
pub async fn verify(storage: &dyn Storage) -> Result<Verified, VerifyError> {
    let mut expected_seq = 1u64;
    let mut prev = GENESIS_HASH.to_owned();
    loop {
        let page = storage.audit_entries(expected_seq, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for entry in page {
            let broken = |reason: String| VerifyError::Broken {
                seq: expected_seq,
                reason,
            };
            if entry.seq != expected_seq {
                return Err(broken(format!(
                    "entry {expected_seq} is missing (next stored entry is {})",
                    entry.seq
                )));
            }
            if entry.prev_hash != prev {
                return Err(broken(
                    "it does not link to the entry before it (prev_hash differs)".into(),
                ));
            }
            if entry.hash != entry.expected_hash() {
                return Err(broken(
                    "its content does not match its hash (altered after it was written)".into(),
                ));
            }
            prev = entry.hash;
            expected_seq += 1;
        }
    }
    Ok(Verified {
        entries: expected_seq - 1,
        head: prev,
    })
}
