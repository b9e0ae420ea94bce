//! Filled in by the targets work of issue 12.
