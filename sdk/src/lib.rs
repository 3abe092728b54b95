//! Write onething scenario plugins in Rust.
//!
//! A scenario plugin is a WebAssembly component that the onething host calls
//! when a citizen applies and whenever something happens to one of their
//! cases. With this SDK a department implements one trait, [`Scenario`], and
//! calls one macro, [`export_scenario!`]; typed helpers read department data
//! ([`data::query`]), dispatch work ([`dispatch::submit`]) and log
//! ([`info!`] and friends). Nothing here exposes the raw WIT bindings.
//!
//! ```ignore
//! use onething_sdk::{Case, Error, Event, Field, Info, Outcome, Scenario, export_scenario};
//!
//! struct Hello;
//!
//! #[derive(serde::Deserialize)]
//! struct Form { name: String }
//!
//! impl Scenario for Hello {
//!     type Application = Form;
//!     type State = ();
//!     fn describe() -> Info {
//!         Info::new("hello", "Say hello").field(Field::text("name").required())
//!     }
//!     fn start(_case: &Case, form: Form) -> Result<Outcome<()>, Error> {
//!         Ok(Outcome::completed((), format!("hello, {}", form.name)))
//!     }
//!     fn on_event(_case: &Case, state: (), _event: Event) -> Result<Outcome<()>, Error> {
//!         Ok(Outcome::completed(state, "nothing to do"))
//!     }
//! }
//!
//! export_scenario!(Hello);
//! ```
//!
//! The bindings are those of `onething:scenario@0.2.0` (`wit/scenario.wit`):
//! a [`Case`] knows its place, subject, mode and clock ([`Case::now`]); a
//! [`WorkItem`] names the office that takes it ([`WorkItem::at_level`],
//! [`WorkItem::at_place`]); an [`Outcome`] may place the case
//! ([`Outcome::at_place`]), escalate ([`WorkItem::escalates`]) and ask the
//! office to take it by a report deadline ([`WorkItem::reports_within`],
//! 报到). What the host does not honour yet it refuses with an error that
//! says so.
//!
//! Every call runs in a fresh instance: keep what you must remember in the
//! case's state (`Scenario::State`), never in statics. Whatever a call
//! dispatches or reads is committed by the host only if the call returns
//! `Ok`.

#![deny(missing_docs)]

// The generated bindings name this crate by its path, also from inside it.
extern crate self as onething_sdk;

pub mod data;
pub mod dispatch;
pub mod evidence;
pub mod log;
mod types;

pub use types::{
    Case, Clock, Due, Error, Event, Field, FieldKind, Info, Mode, Outcome, Priority, Status,
    Target, WorkItem,
};

/// What a scenario does. Implement it and call [`export_scenario!`].
pub trait Scenario {
    /// The application form, deserialised from the applicant's JSON (the
    /// host has already checked it against [`Scenario::describe`]'s fields).
    type Application: serde::de::DeserializeOwned;
    /// The plugin's own state for a case, kept by the host between calls.
    type State: serde::Serialize + serde::de::DeserializeOwned + Default;

    /// Describes the scenario for the catalogue. Called once at load time;
    /// it may not read data or dispatch.
    fn describe() -> Info;

    /// A citizen applies. Return an outcome (`rejected` to refuse the
    /// application with a message that says why) or an error.
    fn start(case: &Case, application: Self::Application) -> Result<Outcome<Self::State>, Error>;

    /// Something happened to a case: a department finished or refused an
    /// item, an item is overdue, escalated or reported, the applicant
    /// supplied material or rated the case.
    fn on_event(
        case: &Case,
        state: Self::State,
        event: Event,
    ) -> Result<Outcome<Self::State>, Error>;
}

/// Exports a [`Scenario`] implementation as the plugin's `scenario`
/// interface. Call it once, at the top level of the plugin crate.
#[macro_export]
macro_rules! export_scenario {
    ($scenario:ty) => {
        #[doc(hidden)]
        pub struct __OnethingExport;

        impl $crate::__private::Guest for __OnethingExport {
            fn describe() -> $crate::__private::wit::Info {
                $crate::__private::describe::<$scenario>()
            }

            fn start(
                case: $crate::__private::wit::CaseInfo,
                application: ::std::string::String,
            ) -> ::std::result::Result<$crate::__private::wit::Outcome, $crate::__private::wit::Error> {
                $crate::__private::start::<$scenario>(case, application)
            }

            fn on_event(
                case: $crate::__private::wit::CaseInfo,
                event: $crate::__private::wit::CaseEvent,
            ) -> ::std::result::Result<$crate::__private::wit::Outcome, $crate::__private::wit::Error> {
                $crate::__private::on_event::<$scenario>(case, event)
            }
        }

        $crate::__private::export_plugin!(__OnethingExport with_types_in $crate::__private::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    //! What [`export_scenario!`] expands to; not for plugin authors.

    pub use crate::bindings;
    pub use crate::bindings::__export_plugin as export_plugin;
    pub use crate::bindings::exports::onething::scenario::scenario::Guest;
    pub use crate::bindings::onething::scenario::types as wit;
    pub use wit_bindgen;

    use crate::types::{Case, Event, Outcome};
    use crate::{Error, Scenario};

    /// `describe` for a scenario type.
    pub fn describe<S: Scenario>() -> wit::Info {
        S::describe().into()
    }

    /// `start` for a scenario type: parses the form, calls the author.
    pub fn start<S: Scenario>(
        case: wit::CaseInfo,
        application: String,
    ) -> Result<wit::Outcome, wit::Error> {
        let case = Case::from(case);
        let form: S::Application = serde_json::from_str(&application)
            .map_err(|e| Error::Invalid(format!("the application does not fit the form: {e}")))?;
        let outcome = S::start(&case, form)?;
        outcome_to_wit(outcome)
    }

    /// `on-event` for a scenario type: parses the state, calls the author.
    pub fn on_event<S: Scenario>(
        case: wit::CaseInfo,
        event: wit::CaseEvent,
    ) -> Result<wit::Outcome, wit::Error> {
        let case = Case::from(case);
        let state: S::State = case.state()?;
        let event = Event::try_from(event)?;
        let outcome = S::on_event(&case, state, event)?;
        outcome_to_wit(outcome)
    }

    fn outcome_to_wit<T: serde::Serialize>(
        outcome: Outcome<T>,
    ) -> Result<wit::Outcome, wit::Error> {
        Ok(outcome.into_wit()?)
    }
}

#[doc(hidden)]
pub mod bindings {
    //! The raw bindings of the `onething:scenario/plugin@0.2.0` world; plugin
    //! authors use the typed API instead.
    #![allow(missing_docs)]

    wit_bindgen::generate!({
        path: "../wit/scenario.wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "onething_sdk::__private::bindings",
        runtime_path: "onething_sdk::__private::wit_bindgen::rt",
    });
}
