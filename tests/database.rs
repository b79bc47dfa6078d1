//! Per-test databases, provisioned with the stack's own SQL files.

use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

/// The stack's cluster-wide roles and per-database schemas, as `scripts/stack` applies them.
pub const ROLES_SQL: &str = include_str!("../scripts/postgres/roles.sql");
pub const SCHEMAS_SQL: &str = include_str!("../scripts/postgres/schemas.sql");

/// The admin URL the tests use.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        "postgres://wildrydes_admin:wildrydes_admin@localhost:5432/wildrydes".to_owned()
    })
}

/// A database of its own for one test, with schemas `payment` and `accounting`.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    admin: PgConnectOptions,
}

impl TestDatabase {
    pub async fn create(name: &str) -> anyhow::Result<TestDatabase> {
        let admin = PgConnectOptions::from_str(&admin_url()).context("DATABASE_URL")?;
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .context("cannot connect to PostgreSQL with DATABASE_URL — is it up? (scripts/stack up --infra-only)")?;
        // Roles are cluster-wide: provision them under a lock so parallel tests don't race.
        let mut tx = conn.begin().await?;
        tx.execute("SELECT pg_advisory_xact_lock(727274)").await?;
        tx.execute(ROLES_SQL).await.context("applying roles.sql")?;
        tx.commit().await?;
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await?;
        conn.close().await?;
        let database = TestDatabase {
            name: name.to_owned(),
            admin,
        };
        let mut conn = PgConnection::connect_with(&database.admin_options()).await?;
        conn.execute(SCHEMAS_SQL)
            .await
            .context("applying schemas.sql")?;
        conn.close().await?;
        Ok(database)
    }

    /// The admin URL of this database, for a child process (`fares bench`'s baseline).
    pub fn admin_url(&self) -> String {
        url_with_database(&admin_url(), &self.name)
    }

    /// Admin connection options for this database.
    pub fn admin_options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }

    /// The URL a service role uses for this database (password = role name, as provisioned).
    pub fn role_url(&self, role: &str) -> String {
        format!(
            "postgres://{role}:{role}@{}:{}/{}",
            self.admin.get_host(),
            self.admin.get_port(),
            self.name
        )
    }

    /// A pool connected as `role`, resolving names in `schema`.
    pub async fn role_pool(&self, role: &str, schema: &str) -> anyhow::Result<PgPool> {
        let options =
            PgConnectOptions::from_str(&self.role_url(role))?.options([("search_path", schema)]);
        Ok(PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?)
    }

    /// An admin pool on this database (sees every schema), for assertions.
    pub async fn admin_pool(&self) -> anyhow::Result<PgPool> {
        Ok(PgPoolOptions::new()
            .max_connections(4)
            .connect_with(self.admin_options())
            .await?)
    }

    /// A PostgreSQL outage as the services see it: refuse new connections to this database
    /// and terminate the open ones (`false`), or let them in again (`true`).
    pub async fn set_reachable(&self, reachable: bool) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        conn.execute(
            format!(
                "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {reachable}",
                self.name
            )
            .as_str(),
        )
        .await?;
        if !reachable {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&self.name)
            .execute(&mut conn)
            .await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Terminates every connection to this database but the caller's: as a PostgreSQL restart
    /// or a failover looks to the services. Returns how many were terminated.
    pub async fn terminate_connections(&self) -> anyhow::Result<u64> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.name)
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok(terminated.into_iter().filter(|t| *t).count() as u64)
    }

    /// Makes this database read-only for new sessions (`true`) or writable again (`false`),
    /// and terminates the open ones so that every session is of the new kind.
    pub async fn set_read_only(&self, read_only: bool) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        let statement = if read_only {
            format!(
                "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
                self.name
            )
        } else {
            format!(
                "ALTER DATABASE \"{}\" RESET default_transaction_read_only",
                self.name
            )
        };
        conn.execute(statement.as_str()).await?;
        conn.close().await?;
        self.terminate_connections().await?;
        Ok(())
    }

    pub async fn drop(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str())
            .await?;
        Ok(())
    }
}

/// `url` with its database replaced by `name` (query parameters kept).
fn url_with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// Drops test databases left behind by runs that died more than an hour ago.
pub async fn sweep_stale(prefix: &str, older_than_secs: u64) -> anyhow::Result<()> {
    let admin = PgConnectOptions::from_str(&admin_url())?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{prefix}%"))
            .fetch_all(&mut conn)
            .await?;
    let now = crate::env::unix_now();
    for name in names {
        if crate::env::created_at(&name)
            .is_some_and(|created| now.saturating_sub(created) > older_than_secs)
        {
            conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            url_with_database("postgres://a:b@h:5432/wildrydes", "wr_test_1"),
            "postgres://a:b@h:5432/wr_test_1"
        );
        assert_eq!(
            url_with_database("postgres://a:b@h:5432", "x"),
            "postgres://a:b@h:5432/x"
        );
        assert_eq!(
            url_with_database("postgres://a:b@h/db?sslmode=disable", "x"),
            "postgres://a:b@h/x?sslmode=disable"
        );
    }
}
