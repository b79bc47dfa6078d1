//! The scan of every table of both schemas for raw card numbers (SPEC §6.7).
//!
//! The tables and their columns are found at run time in `information_schema`, so a table or
//! column a migration adds is scanned without a change here — which is why these queries are
//! built at run time instead of being compile-checked. PostgreSQL preselects the rows holding
//! a run of 13–19 digits (`~ '[0-9]([ -]?[0-9]){12,18}'`, on `bytea` in its `escape` form,
//! which keeps digits, spaces and hyphens as they are); each value of a preselected row is
//! then checked exactly with SPEC §3's definition, `events_schema::card::has_card_number`.

use std::collections::BTreeMap;

use anyhow::Context;
use events_schema::card;
use futures::TryStreamExt;
use sqlx::{PgPool, Row};

/// The schemas the services own.
pub const SCHEMAS: [&str; 2] = ["payment", "accounting"];

/// Column types that cannot hold a run of 13–19 digits standing alone.
const SKIPPED_TYPES: [&str; 9] = [
    "uuid",
    "boolean",
    "date",
    "timestamp with time zone",
    "timestamp without time zone",
    "time with time zone",
    "time without time zone",
    "interval",
    "smallint",
];

/// A raw card number in a table.
#[derive(Debug, Clone)]
pub struct CardNumberInTable {
    /// `payment.outbox`
    pub table: String,
    pub column: String,
    /// The row's `fare_id` (or `message_key`), when the table has one.
    pub fare_id: Option<String>,
}

struct Column {
    name: String,
    is_bytes: bool,
}

/// Every raw card number in every table of [`SCHEMAS`].
pub async fn card_numbers(pool: &PgPool) -> anyhow::Result<Vec<CardNumberInTable>> {
    let mut found = Vec::new();
    for ((schema, table), columns) in scanned_columns(pool).await? {
        found.extend(
            scan_table(pool, &schema, &table, &columns)
                .await
                .with_context(|| format!("cannot scan {schema}.{table} for card numbers"))?,
        );
    }
    Ok(found)
}

/// (schema, table) → the columns worth scanning, in table order.
async fn scanned_columns(pool: &PgPool) -> anyhow::Result<BTreeMap<(String, String), Vec<Column>>> {
    let rows = sqlx::query(
        "SELECT c.table_schema::text, c.table_name::text, c.column_name::text, c.data_type::text \
         FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = ANY($1) AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_schema, c.table_name, c.ordinal_position",
    )
    .bind(SCHEMAS)
    .fetch_all(pool)
    .await
    .context("cannot list the tables of the services' schemas")?;
    let mut tables: BTreeMap<(String, String), Vec<Column>> = BTreeMap::new();
    for row in rows {
        let data_type: String = row.try_get(3)?;
        if SKIPPED_TYPES.contains(&data_type.as_str()) {
            continue;
        }
        tables
            .entry((row.try_get(0)?, row.try_get(1)?))
            .or_default()
            .push(Column {
                name: row.try_get(2)?,
                is_bytes: data_type == "bytea",
            });
    }
    Ok(tables)
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

async fn scan_table(
    pool: &PgPool,
    schema: &str,
    table: &str,
    columns: &[Column],
) -> anyhow::Result<Vec<CardNumberInTable>> {
    let identity = ["fare_id", "message_key", "customer_id"]
        .into_iter()
        .find(|name| columns.iter().any(|c| c.name == *name))
        .map_or_else(
            || "NULL::text".to_owned(),
            |name| format!("{}::text", quoted(name)),
        );
    let values: Vec<String> = columns
        .iter()
        .map(|c| {
            let name = quoted(&c.name);
            if c.is_bytes {
                name
            } else {
                format!("{name}::text")
            }
        })
        .collect();
    let sql = format!(
        "SELECT {identity}, {} FROM {}.{}",
        values.join(", "),
        quoted(schema),
        quoted(table),
    );
    let mut rows = sqlx::query(&sql).fetch(pool);
    let mut found = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let fare_id: Option<String> = row.try_get(0)?;
        for (i, column) in columns.iter().enumerate() {
            let holds_one = if column.is_bytes {
                row.try_get::<Option<Vec<u8>>, _>(i + 1)?
                    .is_some_and(|bytes| card::has_card_number(&bytes))
            } else {
                row.try_get::<Option<String>, _>(i + 1)?
                    .is_some_and(|text| card::has_card_number(text.as_bytes()))
            };
            if holds_one {
                found.push(CardNumberInTable {
                    table: format!("{schema}.{table}"),
                    column: column.name.clone(),
                    fare_id: fare_id.clone(),
                });
            }
        }
    }
    Ok(found)
}
