//! What the operations centre reads (一屏统揽): the live feed of what
//! changes the screen ([`stream`]) and the counters behind the overview
//! and the monthly ranking ([`counters`]; docs/design/closed-loop.md,
//! section 5).

pub mod counters;
mod notice;
pub mod stream;

pub use notice::OpsNotice;
pub use stream::{OpsEvent, OpsEventKind, OpsStream, Resume, Subscription};
