//! Open connections, and which one gives way when there are too many.
//!
//! Each idle keep-alive connection holds a file descriptor, and the process
//! has a limit on them: with 1,024 and 1,100 idle clients, half the health
//! probes could not even be accepted. So the host keeps at most a cap of
//! connections open (`limits.max_connections`, lowered by
//! [`fitting_cap`] to what the process's file limit leaves once storage,
//! plugins and the listener have theirs), and at the cap it makes room.
//!
//! Invariants, and why they hold:
//! - **The table is exactly the open connections.** A connection enters it
//!   in [`Connections::admit`] before its task is spawned and leaves when
//!   its [`Admitted`] handle, owned by that task, is dropped; so the
//!   `onething_connections_open` gauge, set under the table's lock, is the
//!   number of connection tasks alive.
//! - **A connection with a request in flight is never chosen to close.**
//!   Every request holds an [`InFlight`] guard from the moment hyper hands
//!   it to the service until its response is built (or the request is
//!   dropped); only connections with none are candidates.
//! - **At the cap, a new connection costs an idle one, or is refused.** The
//!   candidate idle the longest (its last response, or its accept if it
//!   never sent a request) is asked to close and counted as evicted; if no
//!   connection is idle, the new one is closed unanswered and counted as
//!   refused. So at most the cap's number of connections are open that have
//!   not been asked to close.
//! - **Asking is graceful.** The chosen connection's task calls hyper's
//!   `graceful_shutdown`: a keep-alive connection between requests, or one
//!   that has sent nothing yet, closes at once; one whose next request has
//!   just begun to arrive answers it and then closes (hyper's header and
//!   body timeouts bound how long that takes). A connection is asked once.
//!
//! Choosing scans the table (at the cap only): a few microseconds for ten
//! thousand connections, paid only by a connection that would otherwise
//! have waited for a descriptor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use crate::metrics::Metrics;

/// File descriptors left out of the connection cap: sled's files, the
/// compile cache and blobs while plugins load, the listener, the runtime's
/// epoll and event descriptors, standard streams and logs. Sled keeps a
/// handful open and a load opens a few at a time, so 128 is room to spare.
pub const FILES_RESERVED: u64 = 128;

/// The connection cap that fits a process file limit of `file_limit`
/// (`None`: no limit): the configured cap, or the file limit less
/// [`FILES_RESERVED`] if that is lower (at least half the limit, and at
/// least one, when the limit is very small).
pub fn fitting_cap(configured: usize, file_limit: Option<u64>) -> usize {
    let Some(limit) = file_limit else {
        return configured.max(1);
    };
    let room = limit.saturating_sub(FILES_RESERVED).max(limit / 2);
    usize::try_from(room)
        .map_or(configured, |room| configured.min(room))
        .max(1)
}

/// Raises the process's soft limit on open files to its hard limit and
/// returns the soft limit in force afterwards (`None`: unlimited, or not
/// known on this platform). Logs what it did.
pub fn raise_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let before = getrlimit(Resource::Nofile);
        // An unlimited hard limit cannot be the soft one (the kernel
        // caps open files at fs.nr_open); ask for its default instead.
        let target = before.maximum.unwrap_or(1 << 20);
        if before.current.is_some_and(|current| current < target) {
            let raised = Rlimit {
                current: Some(target),
                maximum: before.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => tracing::info!(
                    from = before.current,
                    to = target,
                    "raised the open-file limit to its hard limit"
                ),
                Err(error) => tracing::warn!(
                    %error,
                    soft = before.current,
                    hard = before.maximum,
                    "could not raise the open-file limit to its hard limit"
                ),
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The open connections of one listener, and the cap on them.
pub struct Connections {
    cap: usize,
    metrics: Arc<Metrics>,
    table: Mutex<Table>,
    open: watch::Sender<usize>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// Advances at every accept and every request's end: the order of
    /// activity, so that the smallest `last_active` is the longest idle.
    clock: u64,
    entries: HashMap<u64, Entry>,
    /// Entries asked to close that have not closed yet.
    closing: usize,
}

struct Entry {
    in_flight: u32,
    last_active: u64,
    asked_to_close: bool,
    close: Arc<Notify>,
}

impl Table {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The connection idle the longest that has not been asked to close.
    fn longest_idle(&mut self) -> Option<&mut Entry> {
        self.entries
            .values_mut()
            .filter(|e| e.in_flight == 0 && !e.asked_to_close)
            .min_by_key(|e| e.last_active)
    }
}

/// What [`Connections::admit`] decided about a new connection.
pub enum Admission {
    /// Taken (possibly by asking an idle one to close).
    Admitted(Admitted),
    /// At the cap with no idle connection: close it.
    Refused,
}

impl Connections {
    /// No connections yet, at most `cap` (at least one).
    pub fn new(cap: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Connections {
            cap: cap.max(1),
            metrics,
            table: Mutex::new(Table::default()),
            open: watch::Sender::new(0),
        })
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, table: &Table) {
        let open = table.entries.len();
        self.open.send_replace(open);
        self.metrics
            .set_connections_open(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Takes a new connection: below the cap at once; at the cap by asking
    /// the longest-idle connection to close, or not at all if every
    /// connection has a request in flight.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut guard = self.lock();
        let table = &mut *guard;
        if table.entries.len().saturating_sub(table.closing) >= self.cap {
            let Some(entry) = table.longest_idle() else {
                drop(guard);
                self.metrics.count_connection_refused();
                tracing::debug!(
                    cap = self.cap,
                    "connection refused: every connection is busy"
                );
                return Admission::Refused;
            };
            entry.asked_to_close = true;
            entry.close.notify_one();
            table.closing += 1;
            self.metrics.count_connection_evicted();
            tracing::debug!(
                cap = self.cap,
                "closing the longest-idle connection for a new one"
            );
        }
        table.next_id += 1;
        let id = table.next_id;
        let last_active = table.tick();
        let close = Arc::new(Notify::new());
        table.entries.insert(
            id,
            Entry {
                in_flight: 0,
                last_active,
                asked_to_close: false,
                close: close.clone(),
            },
        );
        self.publish(table);
        Admission::Admitted(Admitted {
            tracker: Tracker {
                id,
                connections: self.clone(),
            },
            close,
        })
    }

    /// Waits until every connection has closed.
    pub async fn all_closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}

/// A connection in the table, owned by its task; dropping it takes the
/// connection out.
pub struct Admitted {
    tracker: Tracker,
    close: Arc<Notify>,
}

impl Admitted {
    /// Marks the connection's requests in flight, for its service.
    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }

    /// Resolves when the connection has been chosen to make room.
    pub async fn asked_to_close(&self) {
        self.close.notified().await;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let connections = &self.tracker.connections;
        let mut table = connections.lock();
        if table
            .entries
            .remove(&self.tracker.id)
            .is_some_and(|e| e.asked_to_close)
        {
            table.closing = table.closing.saturating_sub(1);
        }
        connections.publish(&table);
    }
}

/// Marks requests of one connection in flight.
#[derive(Clone)]
pub struct Tracker {
    id: u64,
    connections: Arc<Connections>,
}

impl Tracker {
    /// A request has begun; it is in flight until the guard is dropped.
    pub fn begin(&self) -> InFlight {
        let mut table = self.connections.lock();
        if let Some(entry) = table.entries.get_mut(&self.id) {
            entry.in_flight += 1;
        }
        InFlight {
            tracker: self.clone(),
        }
    }
}

/// A request in flight; its connection is not chosen to close meanwhile.
pub struct InFlight {
    tracker: Tracker,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut table = self.tracker.connections.lock();
        let now = table.tick();
        if let Some(entry) = table.entries.get_mut(&self.tracker.id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_active = now;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn admitted(connections: &Arc<Connections>) -> Admitted {
        match connections.admit() {
            Admission::Admitted(a) => a,
            Admission::Refused => panic!("refused"),
        }
    }

    fn was_asked(a: &Admitted) -> bool {
        let table = a.tracker.connections.lock();
        table.entries[&a.tracker.id].asked_to_close
    }

    #[test]
    fn at_the_cap_the_longest_idle_gives_way_and_a_busy_one_never_does() {
        let metrics = Arc::new(Metrics::default());
        let connections = Connections::new(3, metrics.clone());
        let first = admitted(&connections);
        let second = admitted(&connections);
        let third = admitted(&connections);
        // The first is busy; the second answered a request after the third
        // was accepted, so the third has been idle the longest.
        let _busy = first.tracker().begin();
        drop(second.tracker().begin());
        let fourth = admitted(&connections);
        assert!(!was_asked(&first) && !was_asked(&second) && was_asked(&third));
        // The third is still closing: the next one costs the second.
        let fifth = admitted(&connections);
        assert!(was_asked(&second) && !was_asked(&fourth));
        assert_eq!(connections.open(), 5);
        drop(third);
        drop(second);
        assert_eq!(connections.open(), 3);
        // All busy now: a new one is refused and nothing is asked.
        let _busy4 = fourth.tracker().begin();
        let _busy5 = fifth.tracker().begin();
        assert!(matches!(connections.admit(), Admission::Refused));
        assert!(!was_asked(&first) && !was_asked(&fourth) && !was_asked(&fifth));
        let text = metrics.render(&[], None);
        assert!(
            text.contains("onething_connections_evicted_total 2"),
            "{text}"
        );
        assert!(
            text.contains("onething_connections_refused_total 1"),
            "{text}"
        );
        assert!(text.contains("onething_connections_open 3"), "{text}");
    }

    #[test]
    fn the_cap_fits_the_file_limit() {
        assert_eq!(fitting_cap(10_000, Some(1_024)), 1_024 - 128);
        assert_eq!(fitting_cap(100, Some(1_024)), 100);
        assert_eq!(fitting_cap(10_000, Some(200)), 100);
        assert_eq!(fitting_cap(10_000, None), 10_000);
        assert_eq!(fitting_cap(10_000, Some(0)), 1);
        assert_eq!(fitting_cap(0, None), 1);
    }
}
