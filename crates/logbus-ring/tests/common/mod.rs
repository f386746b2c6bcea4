#![allow(dead_code)]
//! Helpers shared by this crate's integration tests (from the workspace's
//! test-support crate).

pub use logbus_testkit::TempDir;
