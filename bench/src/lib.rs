//! The measurements behind `make bench` (see `src/main.rs` and
//! `docs/PERFORMANCE.md`).

pub mod cold_start;
pub mod commit_kinds;
pub mod compression;
pub mod conditions;
pub mod cpu;
pub mod e2e;
pub mod latency;
pub mod moto;
pub mod profile;
pub mod publisher;
pub mod records;
pub mod storage;
