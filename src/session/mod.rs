//! The device session: connect, register, heartbeat, reconnect. (Being written.)
