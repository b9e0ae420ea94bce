//! Filled in by the store work of issue 12.
