//! Every limit of the host, in one place: its default, its config key and
//! why it is what it is.
//!
//! Config keys live under `[limits]` in the config file (see `config.rs`);
//! a plugin's manifest may ask for its own memory and deadline within the
//! host's ceilings.

use std::time::Duration;

/// Linear memory one plugin call may use unless its manifest says otherwise:
/// 64 MiB. Enough for serde_json over a large application; small enough that
/// a thousand concurrent calls fit in this machine's memory.
/// Manifest key: `limits.memory_mib`.
pub const DEFAULT_PLUGIN_MEMORY_MIB: u32 = 64;

/// The most memory any manifest may ask for: 512 MiB. It is also the pooling
/// allocator's per-slot maximum, which must cover the largest plugin limit.
/// Config key: `limits.max_plugin_memory_mib`.
pub const MAX_PLUGIN_MEMORY_MIB: u32 = 512;

/// Wall-clock time one plugin call may take unless its manifest says
/// otherwise: 2 s. A scenario call does a few lookups and dispatches; two
/// seconds is generous and still bounds an infinite loop.
/// Manifest key: `limits.deadline_ms`.
pub const DEFAULT_PLUGIN_DEADLINE_MS: u32 = 2_000;

/// The longest deadline any manifest may ask for: 30 s.
/// Config key: `limits.max_plugin_deadline_ms`.
pub const MAX_PLUGIN_DEADLINE_MS: u32 = 30_000;

/// How often the engine's one epoch ticker thread advances the epoch: 5 ms.
/// A running plugin yields to other tasks at every tick and is stopped at
/// the first tick past its deadline, so this is the deadline's precision.
/// Config key: `limits.epoch_tick_ms`.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How many plugin instances may exist at once (the pooling allocator's
/// slots): 1,000. A call beyond that is answered 503 `unavailable`.
/// Config key: `limits.max_instances`.
pub const MAX_INSTANCES: u32 = 1_000;

/// How much of a freed instance slot's memory stays mapped and is reset in
/// place for the next call: 2 MiB. A small scenario touches about 1 MiB
/// (mostly its shadow stack), so its next instance starts with no page
/// faults; the cost is up to this much resident memory per warm slot.
/// Config key: `limits.keep_resident_bytes`.
pub const KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;

/// How many calls of one plugin may run at once: 32. A plugin that is
/// slow (or spins until its deadline) can hold at most this many instance
/// slots, so it cannot starve the other plugins of the pool or the cores.
/// Config key: `limits.max_concurrent_calls_per_plugin`.
pub const MAX_CONCURRENT_CALLS_PER_PLUGIN: u32 = 32;

/// How long a call waits for one of its plugin's slots before it is
/// answered 503 `plugin_busy`: 1 s.
/// Config key: `limits.plugin_queue_timeout_ms`.
pub const PLUGIN_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest request head (request line and headers) the HTTP API reads:
/// 64 KiB; a larger one is answered 431 and the connection closed.
/// Config key: `limits.max_header_bytes`.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// After how many failed calls in a row (trap, timeout, out of memory,
/// unusable answer) a plugin version stops taking new cases until an
/// operator reactivates it: 5. Refusals by the scenario do not count.
/// Config key: `limits.quarantine_after_failures`.
pub const QUARANTINE_AFTER_FAILURES: u32 = 5;

/// The largest request body the HTTP API reads: 1 MiB. An application form
/// with attachments by reference is a few KiB; bodies over this are refused
/// with 413 before they are read when Content-Length says so.
/// Config key: `limits.max_body_bytes`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a client may take to send its request headers: 10 s.
/// Config key: `limits.header_read_timeout_ms`.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request body once its headers
/// are in: 30 s (a 1 MiB body at 35 KiB/s). A client that trickles a byte
/// a second is answered 408 and cut off; a package upload gets the same
/// time. Config key: `limits.body_read_timeout_ms`.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How many log lines one plugin call may write: 100. Lines beyond are
/// dropped and counted once, so a plugin cannot flood the host's logs.
/// Config key: `limits.max_log_lines_per_call`.
pub const MAX_LOG_LINES_PER_CALL: u32 = 100;

/// The longest log line a plugin may write: 4 KiB; longer ones are cut.
pub const MAX_LOG_LINE_BYTES: usize = 4 * 1024;

/// The largest JSON a plugin may hand back (state, payloads): 1 MiB. Larger
/// answers fail the call as invalid.
/// Config key: `limits.max_plugin_json_bytes`.
pub const MAX_PLUGIN_JSON_BYTES: usize = 1024 * 1024;

/// How many work items one call may dispatch: 64.
pub const MAX_ITEMS_PER_CALL: usize = 64;

/// How many data reads one call may make: 256.
pub const MAX_READS_PER_CALL: usize = 256;

/// Largest plugin package an operator may upload to `/v1/admin/plugins`:
/// 80 MiB (the registry's 64 MiB component ceiling plus the manifest and
/// the signature, with room to spare). Only the admin API takes bodies
/// this large; everything else keeps `max_body_bytes`.
/// Config key: `limits.max_package_bytes`.
pub const MAX_PACKAGE_BYTES: usize = 80 * 1024 * 1024;
