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
