//! Per-key async locks: events for one case are applied one at a time, in
//! order, and one idempotency key is resolved by one submission at a time.
//!
//! A lock exists only while someone holds or waits for it, so the map stays
//! as small as the number of cases being worked on right now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A set of async mutexes, one per key, made on demand.
#[derive(Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Holds one key's lock; releasing it removes the key when nobody waits.
pub struct KeyedGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    mutex: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits for `key`'s lock.
    pub async fn lock(&self, key: &str) -> KeyedGuard<'_> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.clone().lock_owned().await;
        KeyedGuard {
            locks: self,
            key: key.to_owned(),
            mutex,
            guard: Some(guard),
        }
    }

    /// How many keys have a lock right now.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key has a lock.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.map.lock().unwrap_or_else(|e| e.into_inner());
        self.guard.take();
        // The map's reference and ours: nobody else holds or waits.
        if Arc::strong_count(&self.mutex) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_the_map_empties() {
        let locks = Arc::new(KeyedLocks::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = locks.lock("case-1").await;
        let (l, o) = (locks.clone(), order.clone());
        let waiter = tokio::spawn(async move {
            let _g = l.lock("case-1").await;
            o.lock().unwrap_or_else(|e| e.into_inner()).push("second");
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        order
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push("first");
        drop(first);
        let _ = waiter.await;
        assert_eq!(
            *order.lock().unwrap_or_else(|e| e.into_inner()),
            vec!["first", "second"]
        );
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn different_keys_do_not_wait() {
        let locks = KeyedLocks::default();
        let _a = locks.lock("a").await;
        let b = tokio::time::timeout(Duration::from_millis(100), locks.lock("b")).await;
        assert!(b.is_ok());
    }
}
