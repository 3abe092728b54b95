//! What the operations centre reads (一屏统揽): the live feed of what
//! changes the screen ([`stream`]). The overview's counters and the
//! monthly ranking follow (docs/design/closed-loop.md, section 5).

mod notice;
pub mod stream;

pub use notice::OpsNotice;
pub use stream::{OpsEvent, OpsEventKind, OpsStream, Resume, Subscription};
