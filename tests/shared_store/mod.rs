//! The shared store on a real PostgreSQL (README "A shared history for a
//! team"): each test in a database of its own on the cluster of
//! `common::postgres`, `#[ignore]`d where no PostgreSQL may be (CI runs them).

mod attacks;
mod cluster;
mod dashboard;
mod late_mirror;
mod readers;
mod writer;
