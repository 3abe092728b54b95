//! The operations screen's live feed (`GET /v1/ops/stream`): what changes
//! the screen, as numbered events, with a bounded backlog so that a screen
//! that reconnects with `Last-Event-ID` misses nothing still in it.
//!
//! - **Ids** are `BOOT-SEQ`: `BOOT` is the host's start time in ms (so an
//!   id of an earlier run is told apart), `SEQ` counts from 1. A resume
//!   from an id of this run that is still in the backlog replays every
//!   later event, in order, then goes on live; any other id (older than the
//!   backlog, of another run, or ahead of the host) starts with a `reset`:
//!   the screen reloads the overview, then follows live.
//! - **Published after the commit** of what it tells: an event is a notice
//!   for screens, not a record (the case and the audit log are); a host
//!   that stops loses its backlog, and a screen resuming across the restart
//!   gets `reset`.
//! - **Bounded**: the backlog holds the last `capacity` events; a screen
//!   that falls further behind than that gets `reset` and goes on from
//!   now. Publishing never waits for a screen.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

/// What happened, as the stream's `event:` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpsEventKind {
    /// A case was opened (an application or a device's event).
    CaseCreated,
    /// An item's time ran out at its department's top office.
    ItemOverdue,
    /// An item moved one level up.
    ItemEscalated,
    /// A rating of 1 or 2.
    RatingBad,
    /// A whistle was raised.
    Whistle,
    /// An area was switched into emergency mode.
    EmergencyOn,
    /// An area's emergency mode ended.
    EmergencyOff,
    /// Not a change: the screen missed events and must reload.
    Reset,
}

impl OpsEventKind {
    /// The name on the stream's `event:` line.
    pub fn as_str(self) -> &'static str {
        match self {
            OpsEventKind::CaseCreated => "case-created",
            OpsEventKind::ItemOverdue => "item-overdue",
            OpsEventKind::ItemEscalated => "item-escalated",
            OpsEventKind::RatingBad => "rating-bad",
            OpsEventKind::Whistle => "whistle",
            OpsEventKind::EmergencyOn => "emergency-on",
            OpsEventKind::EmergencyOff => "emergency-off",
            OpsEventKind::Reset => "reset",
        }
    }
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsEvent {
    /// Its number in this run (the `SEQ` of its id).
    pub seq: u64,
    /// What happened.
    pub kind: OpsEventKind,
    /// The place it happened at, if any: a screen that follows a subtree
    /// gets the events at places in it.
    pub place: Option<String>,
    /// What the screen shows, as JSON (the `data:` line).
    pub data: Value,
}

impl OpsEvent {
    /// Whether a screen following `under` (none: everything) gets it.
    pub fn is_under(&self, under: Option<&str>) -> bool {
        let Some(under) = under else { return true };
        match &self.place {
            Some(place) => crate::service::at_or_below(place, under),
            None => false,
        }
    }
}

/// Where a resuming screen starts.
#[derive(Debug)]
pub enum Resume {
    /// Replay these (in order), then follow live from after the last one.
    Replay(Vec<OpsEvent>),
    /// The id is not in the backlog: send `reset`, then follow live.
    Reset,
}

/// A screen's subscription: its start and the live events after it.
#[derive(Debug)]
pub struct Subscription {
    /// What to send first.
    pub resume: Resume,
    /// The last seq the start covers: live events up to it are skipped.
    pub after: u64,
    /// The live events.
    pub live: broadcast::Receiver<OpsEvent>,
}

/// Why a `Last-Event-ID` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Last-Event-ID {0:?} is not an id of this stream (BOOT-SEQ, two numbers)")]
pub struct BadEventId(pub String);

struct Backlog {
    next_seq: u64,
    events: VecDeque<OpsEvent>,
}

/// The hub every screen subscribes to and the service publishes on.
pub struct OpsStream {
    boot: u64,
    capacity: usize,
    backlog: Mutex<Backlog>,
    live: broadcast::Sender<OpsEvent>,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for OpsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsStream")
            .field("boot", &self.boot)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl OpsStream {
    /// A stream of this run (`boot`: the host's start in ms) keeping the
    /// last `capacity` events (at least 1).
    pub fn new(boot: u64, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (live, _) = broadcast::channel(capacity);
        OpsStream {
            boot,
            capacity,
            backlog: Mutex::new(Backlog {
                next_seq: 1,
                events: VecDeque::with_capacity(capacity.min(4096)),
            }),
            live,
            closed: watch::channel(false).0,
        }
    }

    /// The id of event `seq` of this run, as the stream writes it.
    pub fn id_of(&self, seq: u64) -> String {
        format!("{}-{seq}", self.boot)
    }

    /// Publishes an event: into the backlog and to every screen. Never
    /// waits.
    pub fn publish(&self, kind: OpsEventKind, place: Option<String>, data: Value) {
        let mut backlog = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
        let event = OpsEvent {
            seq: backlog.next_seq,
            kind,
            place,
            data,
        };
        backlog.next_seq += 1;
        if backlog.events.len() == self.capacity {
            backlog.events.pop_front();
        }
        backlog.events.push_back(event.clone());
        // Sent under the lock, so that a subscriber's backlog and its live
        // events neither overlap nor leave a gap. No receiver is fine.
        let _ = self.live.send(event);
    }

    /// Subscribes from `last_event_id` (the header, if the screen sent
    /// one): none follows live from now.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Result<Subscription, BadEventId> {
        let last = last_event_id.map(parse_id).transpose()?;
        let backlog = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.live.subscribe();
        let newest = backlog.next_seq - 1;
        let (resume, after) = match last {
            None => (Resume::Replay(Vec::new()), newest),
            Some((boot, seq)) if boot == self.boot && seq <= newest => {
                let oldest = backlog.events.front().map_or(newest + 1, |e| e.seq);
                // Resumable when the next event it needs is still held.
                if seq + 1 >= oldest {
                    let replay = backlog
                        .events
                        .iter()
                        .filter(|e| e.seq > seq)
                        .cloned()
                        .collect();
                    (Resume::Replay(replay), newest)
                } else {
                    (Resume::Reset, newest)
                }
            }
            Some(_) => (Resume::Reset, newest),
        };
        Ok(Subscription {
            resume,
            after,
            live,
        })
    }

    /// Ends every screen's stream (the host is stopping).
    pub fn close(&self) {
        let _ = self.closed.send(true);
    }

    /// Resolves once [`OpsStream::close`] was called.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// `BOOT-SEQ` as two numbers.
fn parse_id(id: &str) -> Result<(u64, u64), BadEventId> {
    let bad = || BadEventId(id.to_owned());
    let (boot, seq) = id.trim().split_once('-').ok_or_else(bad)?;
    Ok((
        boot.parse().map_err(|_| bad())?,
        seq.parse().map_err(|_| bad())?,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seqs(resume: &Resume) -> Vec<u64> {
        match resume {
            Resume::Replay(events) => events.iter().map(|e| e.seq).collect(),
            Resume::Reset => vec![u64::MAX],
        }
    }

    #[test]
    fn a_resume_replays_what_came_after_its_id_and_then_follows_live() {
        let stream = OpsStream::new(7, 3);
        for _ in 0..4 {
            stream.publish(OpsEventKind::CaseCreated, None, json!({}));
        }
        // Held: 2, 3, 4.
        let sub = stream.subscribe(Some("7-2")).unwrap();
        assert_eq!(seqs(&sub.resume), vec![3, 4]);
        assert_eq!(sub.after, 4);
        // The next one needed (2) is the oldest held: still resumable.
        assert_eq!(
            seqs(&stream.subscribe(Some("7-1")).unwrap().resume),
            [2, 3, 4]
        );
        // Up to date: nothing to replay.
        assert!(seqs(&stream.subscribe(Some("7-4")).unwrap().resume).is_empty());
        let mut live = stream.subscribe(None).unwrap();
        stream.publish(
            OpsEventKind::ItemOverdue,
            Some("cq".into()),
            json!({"x": 1}),
        );
        let event = live.live.try_recv().unwrap();
        assert_eq!((event.seq, event.kind), (5, OpsEventKind::ItemOverdue));
    }

    #[test]
    fn an_id_out_of_the_backlog_or_of_another_run_resets() {
        let stream = OpsStream::new(7, 2);
        for _ in 0..5 {
            stream.publish(OpsEventKind::CaseCreated, None, json!({}));
        }
        // Held: 4, 5; the one after 2 (3) is gone.
        assert!(matches!(
            stream.subscribe(Some("7-2")).unwrap().resume,
            Resume::Reset
        ));
        assert!(matches!(
            stream.subscribe(Some("6-4")).unwrap().resume,
            Resume::Reset
        ));
        assert!(matches!(
            stream.subscribe(Some("7-9")).unwrap().resume,
            Resume::Reset
        ));
        assert_eq!(
            stream.subscribe(Some("yesterday")).unwrap_err(),
            BadEventId("yesterday".into())
        );
        assert!(stream.subscribe(Some("7-x")).is_err());
    }

    #[test]
    fn a_screen_of_a_subtree_gets_only_the_events_in_it() {
        let at = |place: Option<&str>| OpsEvent {
            seq: 1,
            kind: OpsEventKind::Whistle,
            place: place.map(str::to_owned),
            data: json!({}),
        };
        assert!(at(Some("cq/yubei/longxi")).is_under(Some("cq/yubei")));
        assert!(at(Some("cq/yubei")).is_under(Some("cq/yubei")));
        assert!(!at(Some("cq/yubeixi")).is_under(Some("cq/yubei")));
        assert!(!at(None).is_under(Some("cq")));
        assert!(at(None).is_under(None));
    }
}
