//! Every limit of the host, in one place: each is one entry of the table
//! below — its doc comment (why it is what it is), its config key under
//! `[limits]`, its type and its default. The config struct
//! ([`LimitsConfig`]), its defaults ([`LimitsConfig::DEFAULT`]) and the
//! reference table in `docs/limits.md` (checked by a test) all follow from
//! that one entry, so a new limit is one edit here.
//!
//! A plugin's manifest may ask for its own memory and deadline within the
//! host's ceilings (`max_plugin_memory_mib`, `max_plugin_deadline_ms`).
//! Everything a plugin hands the host across the WIT boundary is bounded
//! by one of these (see docs/security.md, "Bounds").

use std::time::Duration;

/// One row of the limits table, for documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitDoc {
    /// The config key under `[limits]`.
    pub key: &'static str,
    /// Its value (the default, for [`LimitsConfig::DEFAULT`]).
    pub value: String,
    /// Why it is what it is.
    pub why: String,
}

macro_rules! limits {
    ($( $(#[doc = $doc:literal])+ $key:ident: $ty:ty = $default:expr $(, at_least $floor:expr)?; )+) => {
        /// The `[limits]` table of the config file. Every key is optional;
        /// each field's documentation says what it bounds and why its
        /// default is what it is.
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct LimitsConfig {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        impl LimitsConfig {
            /// Every limit at its default.
            pub const DEFAULT: LimitsConfig = LimitsConfig { $( $key: $default, )+ };

            /// Every limit with its current value and why, in declaration
            /// order.
            pub fn table(&self) -> Vec<LimitDoc> {
                vec![ $( LimitDoc {
                    key: stringify!($key),
                    value: self.$key.to_string(),
                    why: doc_text(&[$($doc),+], None $(.or(Some($floor.to_string())))?),
                }, )+ ]
            }

            /// These limits with every value below its floor raised to the
            /// floor (a zero that would stall the host: no instance slot, a
            /// timeout that fires at once). Each consumer of the limits
            /// applies this once, where it is handed them.
            pub fn floored(&self) -> LimitsConfig {
                #[allow(unused_mut)]
                let mut limits = self.clone();
                $( $( if limits.$key < $floor { limits.$key = $floor; } )? )+
                limits
            }
        }

        impl Default for LimitsConfig {
            fn default() -> Self {
                Self::DEFAULT
            }
        }
    };
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

limits! {
    // ---- plugin calls -------------------------------------------------

    /// Linear memory one plugin call may use unless its manifest says
    /// otherwise (MiB). Enough for serde_json over a large application;
    /// small enough that a thousand concurrent calls fit in memory.
    default_plugin_memory_mib: u32 = 64;
    /// The most memory any manifest may ask for (MiB). Also the pooling
    /// allocator's per-slot maximum, which must cover the largest limit.
    max_plugin_memory_mib: u32 = 512;
    /// Wall-clock time one plugin call may take unless its manifest says
    /// otherwise (ms). A scenario call does a few lookups and dispatches;
    /// two seconds is generous and still bounds an infinite loop.
    default_plugin_deadline_ms: u32 = 2_000;
    /// The longest deadline any manifest may ask for (ms).
    max_plugin_deadline_ms: u32 = 30_000;
    /// How often the engine's epoch ticker advances the epoch (ms). A
    /// running plugin yields at every tick and is stopped at the first
    /// tick past its deadline, so this is the deadline's precision.
    epoch_tick_ms: u64 = 5, at_least 1;
    /// Plugin instances that may exist at once (the pooling allocator's
    /// slots). A call beyond that is answered 503.
    max_instances: u32 = 1_000, at_least 1;
    /// Bytes of a freed instance slot that stay mapped and are reset in
    /// place for the next call. A small scenario touches about 1 MiB, so its
    /// next instance starts with no page faults; the cost is this much
    /// resident memory per warm slot.
    keep_resident_bytes: usize = 2 * MIB;
    /// Calls of one plugin that may run at once. A plugin that is slow (or
    /// spins to its deadline) holds at most this many slots, so it cannot
    /// starve the other plugins of the pool or the cores.
    max_concurrent_calls_per_plugin: u32 = 32, at_least 1;
    /// How long a call waits for one of its plugin's slots, or for room in
    /// the host's call memory budget, before it is answered 503
    /// `plugin_busy` (ms).
    plugin_queue_timeout_ms: u64 = 1_000;
    /// The memory all plugin calls in flight may reserve together (MiB):
    /// each call reserves its manifest's memory limit plus what the host may
    /// copy out of it (`max_call_effect_bytes`). Two thirds of a 24 GiB
    /// machine; a call over the budget waits up to the queue timeout.
    max_calls_memory_mib: u32 = 16 * 1024, at_least 1;
    /// Failed calls in a row (trap, timeout, out of memory, unusable or
    /// over-bound answer) after which a version takes no new cases until an
    /// operator reactivates it. Refusals by the scenario do not count.
    quarantine_after_failures: u32 = 5, at_least 1;
    /// Table elements a plugin may grow a table to. Rust components need a
    /// few hundred; this bounds a table-growing loop.
    max_table_elements: usize = 100_000;

    // ---- what a plugin hands the host, per call ----------------------

    /// Log lines one plugin call may write. Lines beyond are dropped and
    /// counted once, so a plugin cannot flood the host's logs.
    max_log_lines_per_call: u32 = 100;
    /// The longest log line a plugin may write (bytes); longer ones are cut.
    max_log_line_bytes: usize = 4 * KIB;
    /// The largest JSON a plugin may hand back as one value (its state, one
    /// payload), in bytes. Larger answers fail the call as invalid.
    max_plugin_json_bytes: usize = MIB;
    /// The bytes of everything one call asks the host to keep, together:
    /// its state, message, payloads, tasks, notifications and the records of
    /// its reads. Bounds what one application can make the host store.
    max_call_effect_bytes: usize = 2 * MIB;
    /// The longest name a plugin hands the host (bytes): dataset, record
    /// key, department, task and item ids. Real ones are a few dozen bytes.
    max_name_bytes: usize = 256;
    /// The longest purpose of a data read (bytes). It is a sentence the
    /// citizen reads in their access log.
    max_purpose_bytes: usize = KIB;
    /// The longest message for the applicant in an outcome (bytes).
    max_message_bytes: usize = 4 * KIB;
    /// The longest notification (bytes).
    max_notification_bytes: usize = 4 * KIB;
    /// Notifications one call may send.
    max_notifications_per_call: usize = 16;
    /// Work items one call may dispatch.
    max_items_per_call: usize = 64;
    /// Items one call may cancel.
    max_cancels_per_call: usize = 64;
    /// Data reads one call may make.
    max_reads_per_call: usize = 256;
    /// Denied reads and dispatches one call may attempt; the next one fails
    /// the call. A plugin probing for grants is stopped early.
    max_denied_per_call: usize = 16;
    /// The longest time limit a work item may have in working days: a
    /// year's worth (a Chinese year has about 250 working days).
    max_due_working_days: u32 = 366;
    /// The longest time limit in calendar hours: 366 days.
    max_due_hours: u32 = 366 * 24;
    /// The longest time limit in minutes: 366 days.
    max_due_minutes: u32 = 366 * 24 * 60;

    // ---- what describe() may declare ----------------------------------

    /// Fields one application form may have.
    max_form_fields: usize = 64;
    /// Choices one choice field may offer.
    max_field_choices: usize = 64;
    /// Departments one scenario may name.
    max_scenario_departments: usize = 32;
    /// The longest title, description, field description or choice in
    /// `describe()` (bytes). The catalogue is public, so its size is bounded
    /// by these together.
    max_describe_text_bytes: usize = 4 * KIB;
    /// The bytes of every string one `describe()` declares, together: its
    /// catalogue entry. The bounds above alone allow 64 fields of 64 choices
    /// of 4 KiB (16 MiB per scenario); a real form is a few KiB.
    max_describe_bytes: usize = 64 * KIB;

    // ---- HTTP ---------------------------------------------------------

    /// The largest request body the API reads (bytes). An application with
    /// attachments by reference is a few KiB; larger bodies are refused 413.
    max_body_bytes: usize = MIB;
    /// The largest plugin package the admin API takes (bytes): the
    /// registry's 64 MiB component ceiling plus manifest and signature.
    max_package_bytes: usize = 80 * MIB;
    /// The largest request head (request line and headers), in bytes; a
    /// larger one is answered 431 and the connection closed.
    max_header_bytes: usize = 64 * KIB, at_least 1024;
    /// How long a client may take to send its request headers (ms).
    header_read_timeout_ms: u64 = 10_000, at_least 1;
    /// How long a client may take to send its body once the headers are in
    /// (ms): a 1 MiB body at 35 KiB/s. A trickling client is answered 408.
    body_read_timeout_ms: u64 = 30_000, at_least 1;
    /// Connections the host keeps open at once. At the cap, a new
    /// connection closes the longest-idle keep-alive one; the cap itself is
    /// lowered to fit the process's file limit (raised to its hard limit at
    /// start) less room for storage and plugins.
    max_connections: usize = 10_000;
    /// Events the operations stream (`GET /v1/ops/stream`) keeps for a
    /// screen that reconnects with `Last-Event-ID`: minutes of a city's
    /// busiest hour. A screen further behind is told to reload (`reset`).
    ops_stream_backlog: usize = 4_096, at_least 1;
    /// Operations streams open at once. Each holds a connection for as
    /// long as the screen is open; more are answered 503.
    max_ops_streams: usize = 64, at_least 1;

    // ---- the deadline loop --------------------------------------------

    /// Items whose time ran out that the deadline loop takes per round.
    due_items_per_round: usize = 256, at_least 1;
    /// Overdue calls of one plugin the deadline loop runs at once; each
    /// plugin gets its own share, so a plugin whose on-event spins cannot
    /// delay another's overdue reports.
    overdue_calls_per_plugin: usize = 4, at_least 1;

    // ---- HTTP requests: headers, listings, bodies ---------------------

    /// The longest `Idempotency-Key` header (bytes): room for a UUID, a
    /// hash or a client's own scheme, and a bound on what is stored with
    /// the case.
    max_idempotency_key_bytes: usize = 255;
    /// The most entries one page of a listing (a department's queue, a
    /// citizen's access log) may ask for with `limit=`; a larger limit is
    /// answered 400.
    max_page_items: usize = 1_000, at_least 1;
    /// The entries of a department's queue on one page when the request
    /// gives no `limit=`.
    department_page_items: usize = 500;
    /// The entries of a citizen's access log on one page when the request
    /// gives no `limit=`.
    access_log_page_items: usize = 100;
    /// The places on one page of `GET /v1/places` when the request gives
    /// no `limit=` (a city has some 77,000 places).
    places_page_items: usize = 500;
    /// The largest place file `POST /v1/admin/places` takes (bytes): a
    /// whole city's tree (77,000 places, 8 MiB) with room to spare.
    max_places_file_bytes: usize = 64 * MIB;
    /// The largest dataset file `PUT /v1/admin/datasets/{department}/{name}`
    /// takes (bytes): some 130,000 records of 500 bytes, held in memory
    /// while they are checked. A larger dataset is imported offline (the
    /// host stopped) or with this raised.
    max_dataset_file_bytes: usize = 64 * MIB;
    /// How much of a body declared over the limit is read and thrown away
    /// (bytes), so that a client that does not wait for an early answer
    /// still sees its 413; a larger one is not read at all.
    max_drain_bytes: usize = 8 * MIB;
    /// How long such a body is read before it is dropped (ms).
    drain_timeout_ms: u64 = 5_000;

    // ---- the runtime's instance pool ----------------------------------

    /// Core wasm instances the pooling allocator reserves per plugin
    /// instance slot (`max_instances` slots): a component instantiates its
    /// own core module and those of its WASI adapter and the shims that
    /// link them, a handful for what `cargo component` builds.
    core_instances_per_instance: u32 = 8;
    /// Linear memories the pool reserves per plugin instance slot: the
    /// component's own and its WASI adapter's.
    memories_per_instance: u32 = 2;
    /// Tables the pool reserves per plugin instance slot: the indirect-call
    /// tables of the component's core modules.
    tables_per_instance: u32 = 4;
}

/// Joins a doc comment's lines into one paragraph, with the floor if the
/// limit has one.
fn doc_text(lines: &[&str], floor: Option<String>) -> String {
    let text = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    match floor {
        Some(floor) => format!("{text} A value below {floor} counts as {floor}."),
        None => text,
    }
}

impl LimitsConfig {
    /// The epoch tick as a duration (at least 1 ms).
    pub fn epoch_tick(&self) -> Duration {
        Duration::from_millis(self.floored().epoch_tick_ms)
    }

    /// The reference table of every limit and its default, as markdown
    /// (`docs/limits.md`).
    pub fn markdown() -> String {
        let mut out = String::from(
            "# Limits\n\nEvery limit of the host, generated from `host/src/limits.rs` \
             (a test checks that this file is current: `UPDATE_DOCS=1 cargo test -p \
             onething-host limits_doc` rewrites it). Each key is optional under \
             `[limits]` in the config file.\n\n| key | default | why |\n|---|---|---|\n",
        );
        for row in LimitsConfig::DEFAULT.table() {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                row.key, row.value, row.why
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_has_a_reason() {
        for row in LimitsConfig::DEFAULT.table() {
            assert!(row.why.len() > 10, "{} needs a sentence of why", row.key);
        }
    }

    #[test]
    fn a_value_below_its_floor_counts_as_the_floor_and_the_defaults_are_above() {
        assert_eq!(LimitsConfig::DEFAULT.floored(), LimitsConfig::DEFAULT);
        let zero = LimitsConfig {
            max_instances: 0,
            epoch_tick_ms: 0,
            max_header_bytes: 10,
            due_items_per_round: 0,
            max_page_items: 0,
            max_log_lines_per_call: 0,
            ..LimitsConfig::DEFAULT
        };
        let floored = zero.floored();
        assert_eq!(floored.max_instances, 1);
        assert_eq!(floored.epoch_tick(), Duration::from_millis(1));
        assert_eq!(floored.max_header_bytes, 1024);
        assert_eq!(floored.due_items_per_round, 1);
        assert_eq!(floored.max_page_items, 1);
        // A limit without a floor keeps what it was given.
        assert_eq!(floored.max_log_lines_per_call, 0);
        let why = LimitsConfig::DEFAULT
            .table()
            .into_iter()
            .find(|row| row.key == "max_header_bytes")
            .map(|row| row.why)
            .unwrap();
        assert!(why.ends_with("A value below 1024 counts as 1024."), "{why}");
    }

    #[test]
    fn limits_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/limits.md");
        let want = LimitsConfig::markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/limits.md is out of date: run UPDATE_DOCS=1 cargo test -p onething-host limits_doc"
        );
    }
}
