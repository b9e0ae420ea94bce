//! Filled in by the connections work of issue 12.
