//! Wegent-compatible development server.
