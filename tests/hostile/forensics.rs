//! Filled in by the forensics work of issue 12.
