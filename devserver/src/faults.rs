//! Fault injection switches for tests (library API only; the binary never sets them).

use std::time::Duration;

/// What to do with the ack of a `device:register` or `device:heartbeat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AckFault {
    /// Behave like the real server.
    #[default]
    Normal,
    /// Process the event normally but send the ack this much later.
    Delay(Duration),
    /// Process the event normally but never send the ack.
    Withhold,
    /// Do not process the event; answer `{"error": <text>}` (e.g. "Stale device connection").
    Error(String),
}

/// A frame the devserver can push to a device to test its robustness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedFrame {
    /// `["task:execute", "garbage"]`: the payload is not an object.
    TaskExecuteNotAnObject,
    /// `["task:execute", {"prompt": "..."}]`: no task or subtask id.
    TaskExecuteMissingIds,
    /// `["task:cancel", {"task_id": "abc", "subtask_id": null}]`: ids of the wrong type.
    TaskCancelBadIds,
    /// An event with a binary attachment (a `45x-` packet), which the real server never sends.
    BinaryAttachment,
    /// `["no:such:event", {}]`: an event the device does not know.
    UnknownEvent,
}

/// The active switches.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub register_ack: AckFault,
    pub heartbeat_ack: AckFault,
    /// Refuse every connect with this CONNECT_ERROR message.
    pub refuse_connects: Option<String>,
    /// Skip the `device:sync_capabilities` call after a register (for devices that never answer it).
    pub skip_capability_sync: bool,
}
