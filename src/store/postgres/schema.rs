//! The shared store's tables, made and upgraded by versioned migrations.
//!
//! Everything lives in one schema, `danube_hooks`, so the tool can share a
//! database with others. `danube_hooks.schema_version` holds the version
//! the tables are at; each migration takes them one version up, inside one
//! transaction under an advisory lock, so two listeners starting together
//! migrate once. A database at a version newer than [`MIGRATIONS`] knows is
//! refused, naming both: this binary cannot know what a later one changed.

use tokio_postgres::Client;

use super::{PgError, Target};

/// The schema everything is in.
pub(crate) const SCHEMA: &str = "danube_hooks";
/// The table of deliveries, one row each.
pub(crate) const DELIVERIES: &str = "danube_hooks.deliveries";
/// The sequence ids come from: unique across every listener on the database.
pub(crate) const ID_SEQUENCE: &str = "danube_hooks.delivery_id";
/// The NOTIFY channel each committed batch is announced on (`<min id> <max
/// id>`), and each mirror's late answer kept in its row ([`mirror_note`]).
pub(crate) const CHANNEL: &str = "danube_hooks_deliveries";
/// How a note on [`CHANNEL`] that a row's mirror answer changed starts.
pub(crate) const MIRROR_NOTE: &str = "mirror ";

/// The note that mirror `index` of row `id` has its late answer.
pub(crate) fn mirror_note(id: u64, index: usize) -> String {
    format!("{MIRROR_NOTE}{id} {index}")
}

/// Key of the advisory lock migrations take (any constant; this one spells
/// "danube" in ASCII).
const MIGRATION_LOCK: i64 = 0x64_61_6e_75_62_65;

/// Each migration, in order: entry `n` takes the schema from version `n`
/// to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the deliveries. `record` is the whole SPEC §5 record as the JSON
    // line the file store writes, as text: `jsonb` would refuse a body's
    // `\u0000`, and the record is read back byte for byte. The columns
    // beside it are what queries and indexes need.
    "CREATE SEQUENCE danube_hooks.delivery_id;
     CREATE TABLE danube_hooks.deliveries (
         id bigint PRIMARY KEY,
         received_at timestamptz NOT NULL,
         listener text NOT NULL,
         event text,
         verdict text NOT NULL,
         status integer,
         attempt integer NOT NULL,
         record text NOT NULL
     );
     CREATE INDEX deliveries_received_at ON danube_hooks.deliveries (received_at);
     CREATE INDEX deliveries_listener_id ON danube_hooks.deliveries (listener, id);",
    // 2: a record stays in its row, uncompressed, up to the most a page
    // holds. By default a row past 2 KB is compressed (pglz) and moved out
    // to the TOAST table: the record of a 1 KiB body is 2.3 KB, and that
    // compression was most of the server's CPU per delivery under load.
    // Larger records are still compressed and moved out.
    "ALTER TABLE danube_hooks.deliveries SET (toast_tuple_target = 8160);",
];

/// The version this binary makes and reads.
pub(crate) fn known_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Bring the schema up to [`known_version`], creating it on first use;
/// refuse a newer one.
pub(crate) async fn migrate(client: &mut Client, target: &Target) -> Result<(), PgError> {
    let fail = |err: tokio_postgres::Error| PgError::query(target, &err);
    // CREATE SCHEMA needs CREATE on the database even when the schema
    // exists, so a least-privilege role, whose schema was made for it, only
    // asks when it is missing.
    if current_version(client, target).await?.is_none() {
        let exists = client
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&SCHEMA])
            .await
            .map_err(fail)?
            .is_some();
        if !exists {
            client
                .batch_execute("CREATE SCHEMA IF NOT EXISTS danube_hooks")
                .await
                .map_err(fail)?;
        }
    }
    let transaction = client.transaction().await.map_err(fail)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(fail)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS danube_hooks.schema_version (version integer NOT NULL)",
        )
        .await
        .map_err(fail)?;
    let found: i32 = transaction
        .query_one(VERSION, &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(fail)?;
    refuse_newer(found, target)?;
    let done = usize::try_from(found).unwrap_or(0);
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(done) {
        transaction.batch_execute(migration).await.map_err(fail)?;
        let to = from as i32 + 1;
        transaction
            .execute("DELETE FROM danube_hooks.schema_version", &[])
            .await
            .map_err(fail)?;
        transaction
            .execute(
                "INSERT INTO danube_hooks.schema_version (version) VALUES ($1)",
                &[&to],
            )
            .await
            .map_err(fail)?;
    }
    transaction.commit().await.map_err(fail)
}

/// For readers, which change nothing: the schema is there, at a version
/// this binary can read.
pub(crate) async fn check(client: &Client, target: &Target) -> Result<(), PgError> {
    match current_version(client, target).await? {
        None | Some(0) => Err(PgError::NoSchema {
            target: target.shown.clone(),
        }),
        Some(found) => refuse_newer(found, target),
    }
}

/// The schema's version, or `None` when there is no version table yet.
async fn current_version(client: &Client, target: &Target) -> Result<Option<i32>, PgError> {
    let fail = |err: tokio_postgres::Error| PgError::query(target, &err);
    let table = client
        .query_one(
            "SELECT to_regclass('danube_hooks.schema_version') IS NOT NULL",
            &[],
        )
        .await
        .map_err(fail)?;
    if !table.try_get::<_, bool>(0).map_err(fail)? {
        return Ok(None);
    }
    let found = client
        .query_one(VERSION, &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(fail)?;
    Ok(Some(found))
}

/// The schema's version: 0 when none is recorded, the highest when someone
/// left several, as an `integer` whatever the column was made.
const VERSION: &str = "SELECT coalesce(max(version), 0)::integer FROM danube_hooks.schema_version";

fn refuse_newer(found: i32, target: &Target) -> Result<(), PgError> {
    if found > known_version() {
        return Err(PgError::NewerSchema {
            target: target.shown.clone(),
            found,
            known: known_version(),
        });
    }
    Ok(())
}
