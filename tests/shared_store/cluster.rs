//! The private cluster itself: the other tests stand on it.

use crate::common::postgres::{self, NEEDS_POSTGRES};

#[test]
#[ignore = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; `apt-get install postgresql`): cargo test -- --ignored"]
fn the_private_cluster_answers_on_loopback_with_a_password_only() {
    let _ = NEEDS_POSTGRES;
    let cluster = postgres::shared();
    let db = cluster.database("cluster");
    assert_eq!(cluster.sql(&db, "SELECT 40 + 2"), "42");
    assert_eq!(
        cluster.sql(&db, "SHOW listen_addresses"),
        "127.0.0.1",
        "the cluster must never leave loopback"
    );
    let mut wrong = postgres::Cluster::detached();
    wrong.port = cluster.port;
    wrong.password = "not-the-password".into();
    assert!(
        wrong.try_sql(&db, "SELECT 1").is_err(),
        "a wrong password is refused"
    );
}

/// The shared store's tests are ignored where PostgreSQL may be missing; CI
/// runs them with `--ignored`, and a CI without PostgreSQL has skipped the
/// step that installs and starts it (`.ci/postgres`), which must not pass.
#[test]
fn under_ci_postgresql_is_there_for_the_ignored_tests() {
    let under_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if !under_ci {
        return;
    }
    assert!(
        std::env::var_os("DANUBE_HOOKS_TEST_POSTGRES").is_some() || postgres::bin_dir().is_some(),
        "CI=true but there is no PostgreSQL: .ci/run must run `.ci/postgres start` before the \
         tests, and `cargo test --tests -- --ignored` after them"
    );
}
