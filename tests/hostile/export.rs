//! Filled in by the export work of issue 12.
