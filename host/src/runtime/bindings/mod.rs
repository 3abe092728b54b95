//! Host-side bindings of the `onething:scenario` worlds, generated from
//! `wit/` by wasmtime's `bindgen!`: 0.2.0, the host's own (`v0_2.rs`), and
//! 0.1.0, kept running through an adapter (`v0_1.rs`). Nothing outside
//! `runtime` uses them: the runtime converts to and from the host's own
//! types at the boundary.
//!
//! A loaded plugin holds a [`WorldPre`]: its pre-instantiated component in
//! the world it was built for, chosen at load from the scenario interface
//! it exports. The call path speaks 0.2.0 types only; a 0.1.0 plugin's
//! answers are converted on the way out.

pub(super) mod v0_1;
pub(super) mod v0_2;

pub(super) use v0_2::{
    from_wit_error, from_wit_info, from_wit_status, onething, to_wit_case, to_wit_event, wit,
};

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store};

use super::state::HostState;

/// A plugin's pre-instantiated component, in its world.
pub(super) enum WorldPre {
    /// Built for `onething:scenario@0.1.0`.
    V0_1(v0_1::PluginPre<HostState>),
    /// Built for `onething:scenario@0.2.0`.
    V0_2(v0_2::PluginPre<HostState>),
}

/// A call's answer, in 0.2.0 types.
pub(super) type Answer = wasmtime::Result<Result<wit::Outcome, wit::Error>>;

/// Adds the host functions of both worlds to `linker` (WASI is added once,
/// by the caller).
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    v0_1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)
}

impl WorldPre {
    /// The world of `pre`'s component: 0.2.0 if it exports the 0.2.0
    /// scenario interface, else 0.1.0; the 0.2.0 error if neither.
    pub(super) fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        match v0_2::PluginPre::new(pre.clone()) {
            Ok(new) => Ok(WorldPre::V0_2(new)),
            Err(error) => v0_1::PluginPre::new(pre)
                .map(WorldPre::V0_1)
                .map_err(|_| error),
        }
    }

    /// The world's version, e.g. `0.2.0`.
    pub(super) fn world(&self) -> &'static str {
        match self {
            WorldPre::V0_1(_) => "0.1.0",
            WorldPre::V0_2(_) => "0.2.0",
        }
    }

    /// The engine it was compiled with.
    pub(super) fn engine(&self) -> &Engine {
        match self {
            WorldPre::V0_1(pre) => pre.engine(),
            WorldPre::V0_2(pre) => pre.engine(),
        }
    }

    /// Instantiates and calls `describe`.
    pub(super) async fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<wit::Info> {
        match self {
            WorldPre::V0_1(pre) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let info = plugin
                    .onething_scenario_scenario()
                    .call_describe(store)
                    .await?;
                Ok(v0_1::info(info))
            }
            WorldPre::V0_2(pre) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin
                    .onething_scenario_scenario()
                    .call_describe(store)
                    .await
            }
        }
    }

    /// Instantiates and calls `start`.
    #[allow(clippy::ptr_arg)] // the generated export takes `&String`
    pub(super) async fn start(
        &self,
        store: &mut Store<HostState>,
        case: &wit::CaseInfo,
        application: &String,
    ) -> Answer {
        match self {
            WorldPre::V0_1(pre) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let answer = plugin
                    .onething_scenario_scenario()
                    .call_start(store, &v0_1::case(case), application)
                    .await?;
                Ok(answer.map(v0_1::outcome).map_err(v0_1::error))
            }
            WorldPre::V0_2(pre) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin
                    .onething_scenario_scenario()
                    .call_start(store, case, application)
                    .await
            }
        }
    }

    /// Whether a plugin of this world receives `event` (a 0.1.0 plugin
    /// does not receive the events its world lacks).
    pub(super) fn receives(&self, event: &wit::CaseEvent) -> bool {
        match self {
            WorldPre::V0_1(_) => v0_1::event(event).is_some(),
            WorldPre::V0_2(_) => true,
        }
    }

    /// Instantiates and calls `on-event`; `None` when the plugin's world
    /// lacks the event (nothing is instantiated or called).
    pub(super) async fn on_event(
        &self,
        store: &mut Store<HostState>,
        case: &wit::CaseInfo,
        event: &wit::CaseEvent,
    ) -> Option<Answer> {
        match self {
            WorldPre::V0_1(pre) => {
                let event = v0_1::event(event)?;
                let answer = async {
                    let plugin = pre.instantiate_async(&mut *store).await?;
                    let answer = plugin
                        .onething_scenario_scenario()
                        .call_on_event(store, &v0_1::case(case), &event)
                        .await?;
                    Ok(answer.map(v0_1::outcome).map_err(v0_1::error))
                };
                Some(answer.await)
            }
            WorldPre::V0_2(pre) => Some(
                async {
                    let plugin = pre.instantiate_async(&mut *store).await?;
                    plugin
                        .onething_scenario_scenario()
                        .call_on_event(store, case, event)
                        .await
                }
                .await,
            ),
        }
    }
}
