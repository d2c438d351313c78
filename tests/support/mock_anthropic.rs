//! The mock of the Anthropic Messages API lives in the devserver (it also serves the demo mode's
//! answers); the tests use it from there.

#![allow(unused_imports)]

pub use wegent_devserver::model_mock::*;
