//! Reference data (songs, artists, users) published to the lake, so that gold can join
//! dimension tables. Deterministic from the catalog settings: publishing twice writes the same
//! bytes to the same keys.
//!
//! `reference/<table>/catalog=<catalog seed>-<songs>-<users>/part-0.parquet`, tables songs,
//! artists, users and subscriptions (each user's free/premium history).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, DEVICES, REGIONS};
use super::SimConfig;
use std::collections::BTreeMap;

use deltalake_core::kernel::DataType as DeltaType;
use deltalake_core::protocol::{DeltaOperation, SaveMode};

use crate::lake::delta::{new_add, Table, TableSpec};
use crate::lake::{Lake, LakeConfig};
use crate::Result;

fn field(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

/// (table name, its rows) for songs, artists, users and their subscription history.
pub fn reference_batches(catalog: &Catalog, catalog_seed: u64) -> Result<Vec<(&'static str, RecordBatch)>> {
    let seed = catalog_seed as i64;
    let (users, subscriptions) = users_batches(catalog, seed)?;
    Ok(vec![("songs", songs_batch(catalog, seed)?), ("artists", artists_batch(catalog, seed)?), ("users", users), ("subscriptions", subscriptions)])
}

/// One row per song.
fn songs_batch(catalog: &Catalog, seed: i64) -> Result<RecordBatch> {
    let mut b = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), Date32Builder::new(), Int64Builder::new(), Float64Builder::new(), BooleanBuilder::new(), Int64Builder::new());
    for s in &catalog.songs {
        b.0.append_value(&s.id);
        b.1.append_value(&s.name);
        b.2.append_value(&catalog.artists[s.artist].id);
        b.3.append_value(&s.album);
        b.4.append_value(s.genre);
        b.5.append_value(s.release_day as i32);
        b.6.append_value(s.duration_ms);
        b.7.append_value(s.skip_bias);
        b.8.append_value(s.new_release);
        b.9.append_value(seed);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            field("song_id", DataType::Utf8, false), field("song_name", DataType::Utf8, false),
            field("artist_id", DataType::Utf8, false), field("album", DataType::Utf8, false),
            field("genre", DataType::Utf8, false), field("release_date", DataType::Date32, false),
            field("duration_ms", DataType::Int64, false), field("skip_bias", DataType::Float64, false),
            field("is_new_release", DataType::Boolean, false), field("catalog_seed", DataType::Int64, false),
        ])),
        vec![
            Arc::new(b.0.finish()) as ArrayRef, Arc::new(b.1.finish()), Arc::new(b.2.finish()), Arc::new(b.3.finish()),
            Arc::new(b.4.finish()), Arc::new(b.5.finish()), Arc::new(b.6.finish()), Arc::new(b.7.finish()),
            Arc::new(b.8.finish()), Arc::new(b.9.finish()),
        ],
    )?)
}

/// One row per artist.
fn artists_batch(catalog: &Catalog, seed: i64) -> Result<RecordBatch> {
    let (mut id, mut name, mut genre, mut cs) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), Int64Builder::new());
    for a in &catalog.artists {
        id.append_value(&a.id);
        name.append_value(&a.name);
        genre.append_value(a.genre);
        cs.append_value(seed);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            field("artist_id", DataType::Utf8, false), field("artist_name", DataType::Utf8, false),
            field("genre", DataType::Utf8, false), field("catalog_seed", DataType::Int64, false),
        ])),
        vec![Arc::new(id.finish()) as ArrayRef, Arc::new(name.finish()), Arc::new(genre.finish()), Arc::new(cs.finish())],
    )?)
}

/// One row per user, and one per subscription period of each (where it starts, then every switch).
fn users_batches(catalog: &Catalog, seed: i64) -> Result<(RecordBatch, RecordBatch)> {
    let utc_ms = crate::event::utc_timestamp();
    let mut u = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), Int32Builder::new(), StringBuilder::new(), Int64Builder::new());
    let mut sc = (StringBuilder::new(), TimestampMicrosecondBuilder::new().with_timezone("UTC"), StringBuilder::new(), Int64Builder::new());
    for user in &catalog.users {
        let r = &REGIONS[user.region];
        u.0.append_value(&user.id);
        u.1.append_value(r.country);
        u.2.append_value(r.city);
        u.3.append_value(r.timezone);
        u.4.append_value(r.utc_offset_min as i32);
        u.5.append_value(DEVICES[user.primary_device]);
        u.6.append_value(seed);
        // The subscription history: where it starts, then every switch.
        let mut premium = user.initially_premium;
        let starts = std::iter::once(super::catalog::CATALOG_EPOCH_DAY * 86_400_000);
        for (i, t) in starts.chain(user.subscription_changes.iter().copied()).enumerate() {
            if i > 0 {
                premium = !premium;
            }
            sc.0.append_value(&user.id);
            sc.1.append_value(t * 1000);
            sc.2.append_value(if premium { "premium" } else { "free" });
            sc.3.append_value(seed);
        }
    }
    let users = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            field("user_id", DataType::Utf8, false), field("country", DataType::Utf8, false),
            field("city", DataType::Utf8, false), field("timezone", DataType::Utf8, false),
            field("utc_offset_minutes", DataType::Int32, false), field("primary_device", DataType::Utf8, false),
            field("catalog_seed", DataType::Int64, false),
        ])),
        vec![
            Arc::new(u.0.finish()) as ArrayRef, Arc::new(u.1.finish()), Arc::new(u.2.finish()), Arc::new(u.3.finish()),
            Arc::new(u.4.finish()), Arc::new(u.5.finish()), Arc::new(u.6.finish()),
        ],
    )?;
    let subscriptions = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            field("user_id", DataType::Utf8, false), field("valid_from", utc_ms, false),
            field("subscription", DataType::Utf8, false), field("catalog_seed", DataType::Int64, false),
        ])),
        vec![Arc::new(sc.0.finish()) as ArrayRef, Arc::new(sc.1.finish()), Arc::new(sc.2.finish()), Arc::new(sc.3.finish())],
    )?;
    Ok((users, subscriptions))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceSummary {
    /// Per table: its lake key, rows, and whether this call published it (false: it was there).
    pub tables: Vec<PublishedTable>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedTable {
    pub table: String,
    pub catalog: String,
    pub rows: u64,
    pub published: bool,
}

/// The Delta table of a reference table: `reference/<name>`, partitioned by `catalog`.
pub fn reference_table(name: &str) -> String {
    format!("reference/{name}")
}

/// The catalog is identified by its seed and size: the same three give the same rows.
pub fn catalog_id(cfg: &SimConfig) -> String {
    format!("{}-{}-{}", cfg.catalog_seed, cfg.songs, cfg.users)
}

/// Writes the catalog's songs, artists, users and subscriptions to their Delta tables, once per
/// catalog: a txn `catalog=<id>` marks it published, so a second call (or a racing one) adds
/// nothing.
pub fn publish_reference(cfg: &SimConfig, lake_cfg: &LakeConfig) -> Result<ReferenceSummary> {
    cfg.validate()?;
    let catalog = Catalog::generate(cfg.catalog_seed, cfg.songs, cfg.users, cfg.zipf_s);
    let lake = Lake::open(lake_cfg)?;
    let rt = crate::runtime::runtime()?;
    let id = catalog_id(cfg);
    let app = format!("catalog={id}");
    let mut tables = Vec::new();
    rt.block_on(async {
        lake.check().await?;
        for (name, batch) in reference_batches(&catalog, cfg.catalog_seed)? {
            let spec = TableSpec {
                path: reference_table(name),
                schema: batch.schema(),
                partition_columns: vec![("catalog", DeltaType::STRING)],
                stats_columns: &[],
            };
            let mut table = Table::open_or_create(&lake, &spec).await?;
            let rows = batch.num_rows() as u64;
            let published = if table.txn_versions(std::slice::from_ref(&app)).await?[&app].is_some() {
                false
            } else {
                let bytes = crate::parquet::encode_parquet(&batch, &[])?;
                let path = format!("catalog={id}/part-0-{}.parquet", uuid::Uuid::new_v4().simple());
                lake.put(&format!("{}/{path}", spec.path), bytes.clone()).await?;
                let add = new_add(path, bytes.len() as u64, &[("catalog", id.clone())], serde_json::json!({"numRecords": rows}), true);
                let txns = BTreeMap::from([(app.clone(), (None, 1))]);
                let op = DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
                table.commit_if_txns(vec![add], &txns, op, None).await?.is_ok()
            };
            tables.push(PublishedTable { table: name.to_string(), catalog: id.clone(), rows, published });
        }
        Ok::<_, crate::Error>(())
    })?;
    Ok(ReferenceSummary { tables })
}

