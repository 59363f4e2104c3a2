//! Configuration: flags, then environment variables (both through clap), then an optional TOML
//! file, then defaults.
//!
//! ```toml
//! data = "/var/lib/coffer"
//! # database = "postgres://coffer@db.internal/coffer"   # instead of `data`: several nodes, one ledger
//! # database_writers = 2     # batches a node commits at once on PostgreSQL (COFFER_DATABASE_WRITERS)
//! # database_readers = 2     # connections a node's reads share, pipelined (COFFER_DATABASE_READERS)
//! # database_timeout_ms = 5000  # deadline of every database call; past it: 503 (COFFER_DATABASE_TIMEOUT_MS)
//! # checkpoint_entries = 100000  # embedded store: journal entries kept in memory before the
//! #                              # derived state is written (COFFER_CHECKPOINT_ENTRIES)
//! # checkpoint_slice = 50000     # most entries one checkpoint writes while commits wait
//! #                              # (COFFER_CHECKPOINT_SLICE)
//! listen = "0.0.0.0:8080"
//! rate_limit = 1000  # HTTP requests per second per API key (bursts of twice that)
//!
//! [currencies]       # extra currencies ISO 4217 lacks, with their exponent
//! XTS1 = 2
//!
//! [fx]
//! pivot = "EUR"              # cross rates go through it (ECB rates are EUR/x)
//! max_rate_age_hours = 96    # older rates are refused as stale
//!
//! [http]
//! max_connections = 8192     # open at once (capped by the open-file limit); more wait
//! header_timeout_secs = 10   # to send a request's headers, and idle between kept-alive requests
//! body_timeout_secs = 30     # to send a request's body (408 past it)
//!
//! [webhooks]
//! allow_http = false                     # plain http:// endpoint URLs (else https only)
//! allow_private_webhook_targets = false  # private, loopback and link-local targets (tests, development)
//! disable_after_hours = 72               # an endpoint failing this long is disabled (an event says so)
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use coffer_core::{CurrencyCode, CurrencyTable};
use coffer_store::sqlite::{Options, SqliteStore};
use coffer_store::Store;
use serde::Deserialize;

pub const DEFAULT_DATA: &str = "./coffer-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data: Option<PathBuf>,
    database: Option<String>,
    /// Batches a node commits at once on PostgreSQL.
    database_writers: Option<usize>,
    /// Connections a node's reads share on PostgreSQL.
    database_readers: Option<usize>,
    /// Deadline of every database call, in milliseconds.
    database_timeout_ms: Option<u64>,
    /// Embedded store: journal entries after the last checkpoint that trigger the next one.
    checkpoint_entries: Option<usize>,
    /// Embedded store: most entries one checkpoint transaction writes.
    checkpoint_slice: Option<usize>,
    listen: Option<String>,
    /// Sustained HTTP requests per second per API key (bursts of twice that).
    rate_limit: Option<u32>,
    #[serde(default)]
    currencies: BTreeMap<String, u8>,
    #[serde(default)]
    fx: FxFile,
    #[serde(default)]
    http: HttpFile,
    #[serde(default)]
    webhooks: WebhooksFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFile {
    #[serde(default)]
    allow_http: bool,
    #[serde(default)]
    allow_private_webhook_targets: bool,
    disable_after_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FxFile {
    pivot: Option<String>,
    max_rate_age_hours: Option<u32>,
}

#[derive(Debug)]
pub struct Config {
    pub data: PathBuf,
    /// A PostgreSQL connection string or URL: when set, the ledger lives there, not in `data`.
    pub database: Option<String>,
    database_writers: Option<usize>,
    database_readers: Option<usize>,
    database_timeout: Option<Duration>,
    checkpoint_entries: Option<usize>,
    checkpoint_slice: Option<usize>,
    listen: Option<String>,
    rate_limit: Option<u32>,
    pub currencies: CurrencyTable,
    fx: coffer_http::FxSettings,
    http: coffer_http::edge::HttpLimits,
    webhooks: coffer_app::webhooks::Policy,
}

impl Config {
    pub fn resolve(data: Option<PathBuf>, database: Option<String>, file: Option<PathBuf>) -> anyhow::Result<Self> {
        let f = match &file {
            Some(p) => load(p)?,
            None => File::default(),
        };
        let mut extras = Vec::new();
        for (code, exp) in f.currencies {
            let c: CurrencyCode = code.parse().with_context(|| format!("config [currencies] {code}"))?;
            if exp > coffer_core::money::MAX_EXPONENT {
                bail!("config [currencies] {code}: exponent {exp} is above {}", coffer_core::money::MAX_EXPONENT);
            }
            extras.push((c, exp));
        }
        let mut fx = coffer_http::FxSettings::default();
        if let Some(p) = &f.fx.pivot {
            fx.pivot = p.parse().with_context(|| format!("config [fx] pivot {p:?}"))?;
        }
        if let Some(h) = f.fx.max_rate_age_hours {
            if h == 0 {
                bail!("config [fx] max_rate_age_hours must be at least 1");
            }
            fx.max_rate_age = std::time::Duration::from_secs(u64::from(h) * 3600);
        }
        let http = http_limits(&f.http)?;
        let database_timeout =
            std::env::var("COFFER_DATABASE_TIMEOUT_MS")
                .ok()
                .map(|v| v.parse().with_context(|| format!("COFFER_DATABASE_TIMEOUT_MS={v:?}")))
                .transpose()?
                .or(f.database_timeout_ms)
                .map(|ms| {
                    if ms == 0 {
                        bail!("database_timeout_ms must be at least 1")
                    } else {
                        Ok(Duration::from_millis(ms))
                    }
                })
                .transpose()?;
        Ok(Config {
            data: data.or(f.data).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
            database: database.or(f.database).filter(|d| !d.is_empty()),
            database_writers: count("COFFER_DATABASE_WRITERS", f.database_writers)?,
            database_readers: count("COFFER_DATABASE_READERS", f.database_readers)?,
            database_timeout,
            checkpoint_entries: count("COFFER_CHECKPOINT_ENTRIES", f.checkpoint_entries)?,
            checkpoint_slice: count("COFFER_CHECKPOINT_SLICE", f.checkpoint_slice)?,
            listen: f.listen,
            rate_limit: f.rate_limit,
            currencies: CurrencyTable::with_extras(extras),
            fx,
            http,
            webhooks: coffer_app::webhooks::Policy {
                allow_http: f.webhooks.allow_http,
                allow_private_targets: f.webhooks.allow_private_webhook_targets,
                disable_after: match f.webhooks.disable_after_hours {
                    Some(0) => bail!("config [webhooks] disable_after_hours must be at least 1"),
                    Some(h) => Duration::from_secs(h.saturating_mul(3600)),
                    None => coffer_app::webhooks::Policy::default().disable_after,
                },
            },
        })
    }

    pub fn listen(&self, flag: Option<String>) -> anyhow::Result<SocketAddr> {
        let s = flag.or_else(|| self.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.into());
        s.parse().with_context(|| format!("--listen {s:?} is not an address like 127.0.0.1:8080"))
    }

    pub fn limits(&self) -> coffer_http::Limits {
        let d = coffer_http::Limits {
            fx: self.fx,
            http: self.http,
            webhooks: self.webhooks,
            ..coffer_http::Limits::default()
        };
        match self.rate_limit.and_then(std::num::NonZeroU32::new) {
            Some(r) => coffer_http::Limits {
                requests_per_second: r,
                burst: r.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1)),
                ..d
            },
            None => d,
        }
    }

    pub fn store_options(&self) -> Options {
        let d = Options::default();
        Options {
            currencies: self.currencies.clone(),
            checkpoint_entries: self.checkpoint_entries.unwrap_or(d.checkpoint_entries),
            checkpoint_slice: self.checkpoint_slice.unwrap_or(d.checkpoint_slice),
            ..d
        }
    }

    /// Open the embedded store in the data directory.
    pub fn open_sqlite(&self) -> anyhow::Result<SqliteStore> {
        Ok(SqliteStore::open(&self.data, self.store_options())?)
    }

    /// Open the configured store: PostgreSQL when a database is set, else the data directory.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match &self.database {
            Some(url) => Arc::new(coffer_store::postgres::PgStore::open(url, self.pg_options()).await?),
            None => Arc::new(self.open_sqlite()?),
        })
    }

    pub fn pg_options(&self) -> coffer_store::postgres::Options {
        let d = coffer_store::postgres::Options::default();
        coffer_store::postgres::Options {
            currencies: self.currencies.clone(),
            writers: self.database_writers.unwrap_or(d.writers),
            readers: self.database_readers.unwrap_or(d.readers),
            timeout: self.database_timeout.unwrap_or(d.timeout),
            ..d
        }
    }

    /// Where the ledger is, for messages (a database URL without its password).
    pub fn location(&self) -> String {
        match &self.database {
            Some(url) => redact(url),
            None => self.data.display().to_string(),
        }
    }
}

/// A count from the environment variable `var` (which wins), else from the file; zero is unset.
fn count(var: &str, file: Option<usize>) -> anyhow::Result<Option<usize>> {
    let env = std::env::var(var).ok().map(|v| v.parse().with_context(|| format!("{var}={v:?}"))).transpose()?;
    Ok(env.or(file).filter(|n| *n > 0))
}

fn http_limits(f: &HttpFile) -> anyhow::Result<coffer_http::edge::HttpLimits> {
    let mut h = coffer_http::edge::HttpLimits::default();
    let positive = |name: &str, v: u64| if v == 0 { bail!("config [http] {name} must be at least 1") } else { Ok(v) };
    if let Some(n) = f.max_connections {
        h.max_connections = positive("max_connections", n as u64)? as usize;
    }
    if let Some(s) = f.header_timeout_secs {
        h.header_timeout = Duration::from_secs(positive("header_timeout_secs", s)?);
    }
    if let Some(s) = f.body_timeout_secs {
        h.body_timeout = Duration::from_secs(positive("body_timeout_secs", s)?);
    }
    Ok(h)
}

fn load(p: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read config {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("config {}", p.display()))
}

/// A connection string or URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        if let Some((auth, _)) = rest.split_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return url.replacen(auth, &format!("{user}:***"), 1);
            }
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}
