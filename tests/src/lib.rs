//! Helpers for the multi-process integration tests under `tests/tests/`.
