//! `onething:scenario/log`: a plugin's log lines land in the host's
//! tracing, inside the span of the call that wrote them (which carries the
//! scenario, plugin version and case id).
//!
//! One call may write at most `limits.max_log_lines_per_call` lines, each
//! cut to `limits.max_log_line_bytes`; the rest are dropped and counted once at the
//! end of the call.

use super::bindings::onething::scenario::log::{Host, Level};
use super::state::HostState;

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) {
        if self.log_lines >= self.limits.max_log_lines_per_call {
            self.log_dropped = self.log_dropped.saturating_add(1);
            return;
        }
        self.log_lines += 1;
        let message = truncate(&message, self.limits.max_log_line_bytes);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", "{message}"),
            Level::Info => tracing::info!(target: "plugin", "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", "{message}"),
            Level::Error => tracing::error!(target: "plugin", "{message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("新生儿", 4), "新");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
