//! The call path: a call waits for one of its plugin's slots and room in
//! the host's memory budget, runs one export in a fresh store and instance
//! bounded by its memory limit and deadline, and its answer becomes an
//! outcome with its effects, or a typed failure (classified by the error's
//! type, never its message).

use std::time::{Duration, Instant};

use tracing::Instrument;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{
    Answer, WorldPre, from_wit_error, from_wit_status, to_wit_case, to_wit_event, wit,
};
use super::plugin::LoadedPlugin;
use super::state::{self, CallIdentity, Effects, HostState, Phase};
use super::{CallFailure, CallSuccess, CaseContext, CaseEvent, Outcome, PluginError};
use crate::metrics::{FailureKind, Metrics};
use crate::places::PlaceTree;

/// Raised by the epoch callback when a call's deadline has passed.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Shows a call's memory reservation on `/metrics` while it lasts, also
/// when the call's future is dropped half-way.
struct Reserved<'a> {
    metrics: &'a Metrics,
    mib: i64,
}

impl<'a> Reserved<'a> {
    fn new(metrics: &'a Metrics, mib: u32) -> Self {
        let mib = i64::from(mib);
        metrics.add_calls_memory_reserved(mib);
        Reserved { metrics, mib }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.metrics.add_calls_memory_reserved(-self.mib);
    }
}

impl LoadedPlugin {
    /// Runs `start` for a new case.
    pub async fn start(
        &self,
        case: &CaseContext,
        application: &str,
    ) -> Result<CallSuccess, CallFailure> {
        let span = tracing::info_span!(
            "plugin_call",
            call = "start",
            scenario = %self.manifest.id,
            plugin_version = %self.version,
            case_id = %case.id,
        );
        let wit_case = to_wit_case(case);
        let application = application.to_owned();
        self.call(case, async |pre, store| {
            pre.start(store, &wit_case, &application).await
        })
        .instrument(span)
        .await
    }

    /// Runs `on-event` for an existing case.
    pub async fn on_event(
        &self,
        case: &CaseContext,
        event: &CaseEvent,
    ) -> Result<CallSuccess, CallFailure> {
        let span = tracing::info_span!(
            "plugin_call",
            call = event.name(),
            scenario = %self.manifest.id,
            plugin_version = %self.version,
            case_id = %case.id,
        );
        let wit_case = to_wit_case(case);
        let wit_event = to_wit_event(event);
        if !self.pre.receives(&wit_event) {
            // The service keeps such an event on the timeline only (see
            // `receives`); a call for it is a host bug, not the plugin's.
            return Err(CallFailure {
                error: PluginError::Unavailable(format!(
                    "a plugin of world {} does not receive {} events",
                    self.pre.world(),
                    event.name()
                )),
                effects: Effects::default(),
            });
        }
        self.call(case, async |pre, store| {
            match pre.on_event(store, &wit_case, &wit_event).await {
                Some(answer) => answer,
                None => Err(wasmtime::Error::msg("event not in the plugin's world")),
            }
        })
        .instrument(span)
        .await
    }

    /// Whether this plugin's world has `event`: a 0.1.0 plugin does not
    /// receive the events its world lacks (the service keeps them on the
    /// case's timeline only).
    pub fn receives(&self, event: &CaseEvent) -> bool {
        self.pre.receives(&to_wit_event(event))
    }

    /// The `onething:scenario` world the component was built for, e.g.
    /// `0.1.0`.
    pub fn world(&self) -> &'static str {
        self.pre.world()
    }

    /// Calls `describe()` in a fresh instance (once, at load time).
    pub(super) async fn describe(&self) -> Result<wit::Info, CallFailure> {
        let now = chrono::Utc::now();
        let places = std::sync::Arc::default();
        let mut store = self.new_store(self.new_state(Phase::Describe, "", now, places));
        self.pre
            .describe(&mut store)
            .await
            .map_err(|e| self.failure(e, store.data_mut()))
    }

    fn new_state(
        &self,
        phase: Phase,
        case_id: &str,
        now: chrono::DateTime<chrono::Utc>,
        places: std::sync::Arc<PlaceTree>,
    ) -> HostState {
        HostState::new(
            CallIdentity {
                manifest: self.manifest.clone(),
                case_id: case_id.to_owned(),
                phase,
                metrics: self.metrics.clone(),
                places,
            },
            self.limits.clone(),
            self.datasets.clone(),
            self.items.clone(),
            self.memory_bytes,
            Instant::now() + Duration::from_millis(u64::from(self.deadline_ms)),
            now,
        )
    }

    fn new_store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // Check the deadline at every epoch tick, yielding to other tasks in
        // between so that a spinning plugin cannot hog a worker thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // tokio's own yield defers the wake-up until the runtime has
                // polled its I/O and timers, so a spinning plugin cannot
                // delay other connections or timeouts on its worker.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        store
    }

    /// Runs one export in a fresh instance and turns its answer into an
    /// outcome or a typed failure.
    async fn call<F>(&self, case: &CaseContext, export: F) -> Result<CallSuccess, CallFailure>
    where
        F: AsyncFnOnce(&WorldPre, &mut Store<HostState>) -> Answer,
    {
        // At most `max_concurrent` calls of this plugin at once, and all
        // calls in flight within the host's memory budget; both waits share
        // the queue timeout.
        let queued = Instant::now() + self.queue_timeout;
        let admitted = tokio::time::timeout_at(queued.into(), async {
            let slot = self.slots.acquire().await.ok()?;
            let memory = self
                .memory_budget
                .acquire_many(self.reserve_mib)
                .await
                .ok()?;
            Some((slot, memory))
        })
        .await;
        let _admitted = match admitted {
            Ok(Some(admitted)) => admitted,
            _ => {
                self.metrics.record_failure(FailureKind::Unavailable);
                let why = if self.slots.available_permits() == 0 {
                    format!("its {} call slots are taken", self.max_concurrent)
                } else {
                    format!(
                        "the host's memory budget for calls in flight (limits.max_calls_memory_mib) has no room for its {} MiB",
                        self.reserve_mib
                    )
                };
                return Err(CallFailure {
                    error: PluginError::Busy {
                        plugin: self.manifest.id.clone(),
                        why,
                    },
                    effects: Effects::default(),
                });
            }
        };
        let _reserved = Reserved::new(&self.host_metrics, self.reserve_mib);
        let started = Instant::now();
        let answer = self.call_inner(case, export).await;
        self.metrics.record_call(started.elapsed());
        self.note_health(&answer);
        if let Err(failure) = &answer {
            self.metrics.record_failure(match &failure.error {
                PluginError::Scenario(_) => FailureKind::Refused,
                PluginError::Timeout { .. } => FailureKind::Timeout,
                PluginError::OutOfMemory { .. } => FailureKind::Memory,
                PluginError::Trap(_) => FailureKind::Trap,
                PluginError::InvalidAnswer(_) => FailureKind::InvalidAnswer,
                PluginError::BoundExceeded(_) => FailureKind::BoundExceeded,
                PluginError::Unavailable(_) | PluginError::Busy { .. } => FailureKind::Unavailable,
            });
        }
        answer
    }

    async fn call_inner<F>(&self, case: &CaseContext, export: F) -> Result<CallSuccess, CallFailure>
    where
        F: AsyncFnOnce(&WorldPre, &mut Store<HostState>) -> Answer,
    {
        let state = self.new_state(Phase::Case, &case.id, case.now, case.places.clone());
        let mut store = self.new_store(state);
        let answer = export(&self.pre, &mut store).await;
        let state = store.data_mut();
        if state.log_dropped > 0 {
            tracing::warn!(
                dropped = state.log_dropped,
                "plugin log lines over the per-call limit were dropped"
            );
        }
        let mut effects = std::mem::take(&mut state.effects);
        if !effects.denied.is_empty() {
            // Once per call, however often it tried.
            let attempts: u32 = effects.denied.iter().map(|d| d.attempts).sum();
            let targets: Vec<&str> = effects.denied.iter().map(|d| d.target.as_str()).collect();
            tracing::warn!(attempts, ?targets, "ungranted reads or dispatches denied");
        }
        if let Some(bound) = state.poisoned.take() {
            // Whatever it answered after crossing a bound, the call fails.
            tracing::warn!(code = "plugin_bound_exceeded", %bound, "plugin call failed");
            return Err(CallFailure {
                error: PluginError::BoundExceeded(bound),
                effects,
            });
        }
        let spent = state.spent;
        match answer {
            Ok(Ok(outcome)) => match self
                .check_outcome(outcome, spent, &case.places)
                .and_then(|outcome| route(case, &outcome, &mut effects).map(|()| outcome))
            {
                Ok(outcome) => Ok(CallSuccess { outcome, effects }),
                Err(error) => Err(CallFailure { error, effects }),
            },
            Ok(Err(error)) => Err(CallFailure {
                error: PluginError::Scenario(from_wit_error(error, self.limits.max_message_bytes)),
                effects,
            }),
            Err(e) => {
                state.effects = effects;
                Err(self.failure(e, state))
            }
        }
    }

    fn check_outcome(
        &self,
        outcome: wit::Outcome,
        spent: usize,
        places: &PlaceTree,
    ) -> Result<Outcome, PluginError> {
        if let Some(place) = &outcome.place
            && places.get(place).is_none()
        {
            return Err(PluginError::Scenario(super::ScenarioError::Invalid(
                format!(
                    "the outcome sets the case's place `{}`, which is not in the place tree",
                    super::log::truncate(place, 200)
                ),
            )));
        }
        check_state(&outcome.state, self.limits.max_plugin_json_bytes)?;
        if outcome.message.len() > self.limits.max_message_bytes {
            return Err(PluginError::InvalidAnswer(format!(
                "its message is {} bytes; at most {} are allowed (limits.max_message_bytes)",
                outcome.message.len(),
                self.limits.max_message_bytes
            )));
        }
        let total = spent
            .saturating_add(state::stored_len(&outcome.state))
            .saturating_add(state::stored_len(&outcome.message).saturating_mul(2));
        let budget = self.limits.max_call_effect_bytes;
        if total > budget {
            return Err(PluginError::BoundExceeded(format!(
                "the bytes of this call's effects, state and message are {total}; at most {budget} are allowed (limits.max_call_effect_bytes)"
            )));
        }
        Ok(Outcome {
            status: from_wit_status(outcome.status),
            state: outcome.state,
            message: outcome.message,
            place: outcome.place,
        })
    }

    /// Classifies a wasmtime error by type, never by message.
    fn failure(&self, error: wasmtime::Error, state: &mut HostState) -> CallFailure {
        let effects = std::mem::take(&mut state.effects);
        let kind = if error.is::<DeadlineExceeded>() || error.root_cause().is::<DeadlineExceeded>()
        {
            PluginError::Timeout {
                deadline_ms: self.deadline_ms,
            }
        } else if state.limiter.exceeded {
            PluginError::OutOfMemory {
                limit_mib: self.memory_mib,
            }
        } else if let Some(trap) = error
            .downcast_ref::<Trap>()
            .or_else(|| error.root_cause().downcast_ref::<Trap>())
        {
            match trap {
                Trap::Interrupt => PluginError::Timeout {
                    deadline_ms: self.deadline_ms,
                },
                other => PluginError::Trap(other.to_string()),
            }
        } else {
            PluginError::Unavailable(format!("{}", error.root_cause()))
        };
        tracing::warn!(code = kind.code(), error = %kind, cause = %error.root_cause(), "plugin call failed");
        CallFailure {
            error: kind,
            effects,
        }
    }
}

/// Routes the call's items on the tree the call started with, from the
/// case's place as the outcome leaves it: one item that cannot be routed
/// fails the whole call as `not-found`, naming its department and place,
/// and nothing is dispatched.
fn route(case: &CaseContext, outcome: &Outcome, effects: &mut Effects) -> Result<(), PluginError> {
    let place = outcome.place.as_deref().or(case.place.as_deref());
    for item in &mut effects.items {
        item.routed = case
            .places
            .route(&item.department, item.target.as_ref(), place)
            .map_err(|e| {
                PluginError::Scenario(super::ScenarioError::NotFound(format!(
                    "work item `{}` for department `{}` cannot be routed: {e}",
                    item.task, item.department
                )))
            })?;
    }
    Ok(())
}

/// Checks the state a plugin handed back: JSON, and not too large. (Public
/// for the fuzz targets in `fuzz/`.)
pub fn check_state(state: &str, max_bytes: usize) -> Result<(), PluginError> {
    if state.len() > max_bytes {
        return Err(PluginError::InvalidAnswer(format!(
            "its state is {} bytes; at most {max_bytes} are allowed",
            state.len()
        )));
    }
    // A full parse, not `IgnoredAny`: skipping a value accepts numbers no
    // JSON reader can hold (`1E11111111`), which the `plugin_state` fuzz
    // target found; the state must be JSON for whoever reads it next.
    serde_json::from_str::<serde_json::Value>(state)
        .map(|_| ())
        .map_err(|e| PluginError::InvalidAnswer(format!("its state is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever a plugin hands back as its state, the host answers:
        /// accepted if and only if it is JSON within the size limit.
        #[test]
        fn any_state_is_accepted_only_as_bounded_json(state in ".{0,200}", max in 0usize..300) {
            let is_json = serde_json::from_str::<serde_json::Value>(&state).is_ok();
            let accepted = check_state(&state, max).is_ok();
            proptest::prop_assert_eq!(accepted, is_json && state.len() <= max);
        }

        /// JSON-shaped states of any depth are judged the same way.
        #[test]
        fn json_states_are_accepted(value in json_value()) {
            let text = value.to_string();
            proptest::prop_assert!(check_state(&text, usize::MAX).is_ok());
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(".{0,8}", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
