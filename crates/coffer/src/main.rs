//! `coffer`: run the ledger service and administer a ledger from the command line.

mod admin;
mod bench;
mod config;
mod crash;
mod demo;
#[cfg(unix)]
mod local;
mod remote;
mod statement;
mod task;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use coffer_store::Store;

#[derive(Parser, Debug)]
#[command(name = "coffer", version, about = "A multi-currency balance ledger for payment platforms")]
pub struct Cli {
    /// Data directory of the embedded store (created if missing).
    #[arg(long, global = true, env = "COFFER_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Keep the ledger in PostgreSQL instead (a URL like postgres://user@host/db, or a libpq
    /// connection string); several `coffer serve` may share one database.
    #[arg(long, global = true, env = "COFFER_DATABASE_URL", value_name = "URL")]
    database: Option<String>,
    /// Optional TOML configuration file (flags and environment variables take precedence).
    #[arg(long, global = true, env = "COFFER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// How log lines are written on stderr: `text` (default) or `json` (one object per line).
    #[arg(long, global = true, env = "COFFER_LOG_FORMAT", value_name = "FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Send operator commands (not serve, verify, migrate, backup, restore, bench) to a Coffer
    /// node through its API, with `--api-key` and that key's reach. Example:
    /// `coffer --server https://coffer.internal --api-key "$KEY" wallet list --owner <id>`.
    #[arg(long, global = true, env = "COFFER_SERVER", value_name = "URL", requires = "api_key")]
    server: Option<String>,
    /// The API key `--server` sends (`ck_....<secret>`).
    #[arg(long, global = true, env = "COFFER_API_KEY", value_name = "KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the ledger service: the HTTP API on the store, with hold expiry, until Ctrl-C/SIGTERM.
    ///
    /// Example: `coffer serve --data ./coffer-data --listen 127.0.0.1:8080`
    Serve {
        /// Address for the HTTP API (port 0 picks a free port; the address is logged).
        #[arg(long, env = "COFFER_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Recompute every balance from the journal, compare, and list each difference (exit 1 when
    /// there is one). Works while `coffer serve` runs. Example: `coffer verify --json`.
    Verify {
        /// Print one JSON object (`entries`, `lines`, `accounts`, `ok`, `differences`).
        #[arg(long)]
        json: bool,
    },
    /// Bring the ledger's schema up to this version (serve does it too) and exit.
    ///
    /// Example: `coffer migrate --database postgres://coffer@db/coffer`
    Migrate,
    /// Copy the embedded ledger to a new file while it serves (a consistent snapshot, checked
    /// with verify). Example: `coffer backup --data ./coffer-data --to ./coffer-2026-12-05.db`.
    /// PostgreSQL: use `pg_dump` (docs/OPERATIONS.md).
    Backup {
        /// The new file (never overwritten).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Make `--data DIR` (new or empty) a ledger restored from a backup file, after checking
    /// the backup with verify. Example: `coffer restore --data ./restored --from ./coffer-2026-12-05.db`.
    Restore {
        /// A file `coffer backup` wrote.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Measure durable transfers/s and in-process balance reads/s.
    ///
    /// Example: `coffer bench --data /tmp/bench --wallets 10000 --writers 1,64 --json`
    Bench(bench::Args),
    /// Operator commands: sent to the `coffer serve` holding the data directory when one does.
    #[command(flatten)]
    Operator(task::Task),
    /// Test helper: write transactions from many writers until killed, printing each acknowledged one.
    #[command(hide = true)]
    CrashWriter(crash::Args),
}

/// The command line, refused as clap refuses (exit 2) where it is inconsistent: `--api-key`
/// given without `--server` would be ignored silently (from `COFFER_API_KEY` it may be, as an
/// exported variable is meant for other commands too).
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = matches.value_source("api_key") == Some(clap::parser::ValueSource::CommandLine);
    if given && cli.server.is_none() {
        let why = "--api-key is sent only to a remote node: add --server URL (or COFFER_SERVER)";
        Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, why).exit();
    }
    cli
}

fn main() -> ExitCode {
    // clap's own message on a refusal: what is missing or unknown, the closest valid name, the
    // usage; exit code 2.
    let cli = parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
        .unwrap_or_else(|_| "coffer=info,coffer_http=info,coffer_app=info,coffer_store=info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coffer: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coffer: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// `coffer backup`: the copy's file, last journal number and what verify found, as JSON.
fn backup(cfg: &config::Config, to: &std::path::Path) -> anyhow::Result<ExitCode> {
    if cfg.database.is_some() {
        anyhow::bail!("coffer backup copies the embedded store; for PostgreSQL use pg_dump (docs/OPERATIONS.md)");
    }
    let b = coffer_store::sqlite::SqliteStore::backup_dir(&cfg.data, to)?;
    let ok = b.report.is_ok();
    let out = serde_json::json!({
        "file": to, "last_seq": b.last_seq, "entries": b.report.entries, "accounts": b.report.accounts,
        "verified": ok, "differences": b.report.problems,
    });
    println!("{out}");
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `coffer restore`: the data directory made from a checked backup, as JSON.
fn restore(cfg: &config::Config, from: &std::path::Path) -> anyhow::Result<ExitCode> {
    if cfg.database.is_some() {
        anyhow::bail!(
            "coffer restore fills an embedded data directory; for PostgreSQL use pg_restore (docs/OPERATIONS.md)"
        );
    }
    let b = coffer_store::sqlite::SqliteStore::restore_dir(from, &cfg.data)?;
    let out = serde_json::json!({
        "data": cfg.data, "from": from, "last_seq": b.last_seq, "entries": b.report.entries, "verified": true,
    });
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ").replace('\n', " ")
}

/// The command if it is an operator command (`task.rs`).
pub(crate) fn task_of(cmd: Cmd) -> Option<task::Task> {
    match cmd {
        Cmd::Operator(t) => Some(t),
        _ => None,
    }
}

/// Run an operator command: in the `coffer serve` holding the data directory when one does
/// (`local.rs`), else here on the store.
async fn operate(cfg: &config::Config, task: task::Task) -> anyhow::Result<ExitCode> {
    #[cfg(unix)]
    if cfg.database.is_none() {
        if let Some(done) = local::send(&cfg.data).await? {
            return print(done.map_err(|e| anyhow::anyhow!(e))?);
        }
    }
    let store = cfg.open().await?;
    let out = task.run(&coffer_app::Directory::new(store.clone())).await;
    store.shutdown().await;
    print(out?)
}

fn print(p: task::Printed) -> anyhow::Result<ExitCode> {
    match p {
        task::Printed::Json(v) => print_json(&v),
        task::Printed::Text(t) => print_text(&t),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let (Some(server), Some(key)) = (&cli.server, &cli.api_key) {
        let Cmd::Operator(task) = cli.command else {
            anyhow::bail!("--server sends operator commands only: run this one where the ledger is");
        };
        return print(remote::run(server, key, task).await?);
    }
    let cfg = config::Config::resolve(cli.data, cli.database, cli.config)?;
    match cli.command {
        Cmd::Serve { listen } => {
            let listen = cfg.listen(listen)?;
            serve(&cfg, listen).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { json } => {
            let report = match &cfg.database {
                Some(url) => coffer_store::postgres::PgStore::verify_url(url).await?,
                None => coffer_store::sqlite::SqliteStore::verify_dir(&cfg.data)?,
            };
            let code = if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            if json {
                let v = serde_json::json!({
                    "ledger": cfg.location(), "entries": report.entries, "lines": report.lines,
                    "accounts": report.accounts, "ok": report.is_ok(), "differences": report.problems,
                });
                println!("{v}");
                return Ok(code);
            }
            println!(
                "checked {} entries, {} lines, {} accounts in {}",
                report.entries,
                report.lines,
                report.accounts,
                cfg.location()
            );
            if report.is_ok() {
                println!("ok: every balance equals the sum of its journal and every entry balances");
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &report.problems {
                    println!("DIFFERENCE: {p}");
                }
                println!("{} difference(s)", report.problems.len());
                Ok(ExitCode::FAILURE)
            }
        }
        Cmd::Backup { to } => backup(&cfg, &to),
        Cmd::Restore { from } => restore(&cfg, &from),
        Cmd::Migrate => {
            let version = match &cfg.database {
                Some(url) => coffer_store::postgres::PgStore::migrate(url).await?,
                None => {
                    cfg.open_sqlite()?.shutdown().await;
                    coffer_store::sqlite::schema::SCHEMA_VERSION
                }
            };
            println!("schema version {version} in {}", cfg.location());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench(args) => {
            bench::run(args, &cfg).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Operator(task) => operate(&cfg, task).await,
        Cmd::CrashWriter(args) => {
            crash::run(args, &cfg).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Print text as it is (a reader that went away is not an error).
fn print_text(t: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(t.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Print a result; a reader that went away (`coffer ... | head`) is not an error.
fn print_json(v: &serde_json::Value) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", serde_json::to_string_pretty(v)?).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

async fn serve(cfg: &config::Config, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use anyhow::Context;
    let store = cfg.open().await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // Handlers are installed before anyone can know the address: a signal during start-up (while
    // keys are created) still stops the service cleanly.
    let shutdown = shutdown_signal()?;
    let mut limits = cfg.limits();
    // Each connection is a file: take the open-file limit the system allows, and keep the
    // connection limit below it (with room for the store's files and sockets).
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let room = usize::try_from(files.saturating_sub(256)).unwrap_or(usize::MAX).max(64);
    if limits.http.max_connections > room {
        tracing::warn!(files, max_connections = room, "the open-file limit caps the connections");
        limits.http.max_connections = room;
    }
    // One stop for both doors: the HTTP API and the local socket of operator commands.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let local = local_channel(cfg, &store, stopping.clone());
    tracing::info!(ledger = %cfg.location(), %addr, max_connections = limits.http.max_connections, "ledger open; listening");
    let signalled = tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let served = coffer_http::serve(listener, store.clone(), limits, stopped(stopping)).await;
    // Stopped by a signal, or the server failed: either way the sender goes, and the local
    // socket stops too.
    signalled.abort();
    #[cfg(unix)]
    if let Some(l) = local {
        l.close().await;
    }
    #[cfg(not(unix))]
    let _ = local;
    tracing::info!("stopping: in-flight requests finished; flushing queued commands");
    store.shutdown().await;
    let st = store.stats();
    tracing::info!(commits = st.commits, commands = st.commands, holds_expired = st.expired, "stopped");
    Ok(served?)
}

/// Resolves when `stop` turns true or its sender is gone.
pub(crate) async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The local socket of operator commands, on an embedded store (`local.rs`); a warning and
/// none when it cannot be made (the HTTP API serves regardless).
#[cfg(unix)]
fn local_channel(
    cfg: &config::Config,
    store: &std::sync::Arc<dyn Store>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<local::Listening> {
    if cfg.database.is_some() {
        return None;
    }
    let dir = std::sync::Arc::new(coffer_app::Directory::new(store.clone()));
    match local::listen(&cfg.data, dir, stop) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %one_line(&e), "operator commands cannot reach this server: stop it to run them");
            None
        }
    }
}

#[cfg(not(unix))]
fn local_channel(
    _: &config::Config,
    _: &std::sync::Arc<dyn Store>,
    _: tokio::sync::watch::Receiver<bool>,
) -> Option<()> {
    None
}

/// A future that resolves on SIGINT or SIGTERM; the handlers are installed when this returns.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command (not hidden) shows an example in its help, every flag and argument a line
    /// of help; and clap's own consistency checks pass.
    #[test]
    fn every_command_and_flag_is_documented() {
        let cli = super::Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cli, "coffer", &mut missing);
        assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
    }

    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str()) {
                missing.push(format!("{path} {}: no help", arg.get_id()));
            }
        }
        let subs: Vec<_> = cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help").collect();
        let text = |s: Option<&clap::builder::StyledStr>| s.map(|t| t.to_string()).unwrap_or_default();
        let help = text(cmd.get_about()) + &text(cmd.get_long_about());
        if subs.is_empty() && !help.contains("Example") {
            missing.push(format!("{path}: no example"));
        }
        if help.is_empty() {
            missing.push(format!("{path}: no description"));
        }
        for s in subs {
            walk(s, &format!("{path} {}", s.get_name()), missing);
        }
    }
}
