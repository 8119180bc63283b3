//! The local runner: the three functions wired together as AWS wires them,
//! running their real handler code against local servers.
//!
//! This first part holds the event sources' delivery rules, as state
//! machines without I/O, so that they can be tested exactly.

pub mod stream_source;
pub mod template;
