//! The commands that act on a ledger as its operator: the administration commands,
//! `statement` and `demo`. Each runs the same way wherever it runs: in this process on a store
//! it opens, or in the `coffer serve` that holds the data directory, reached over the local
//! channel (`local.rs`). So a command gives the same output and exit code either way.

use std::path::{Path, PathBuf};

use coffer_app::Directory;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::{self, AdminCmd, FxCmd, KeyCmd};
use crate::statement::{self, StatementArgs};

/// One operator command.
#[derive(clap::Subcommand, Debug)]
pub enum Task {
    /// Create (idempotently) a demo platform whose wallets hold the seed documents' example
    /// balances. Example: `coffer demo --credentials creds.json`.
    Demo {
        /// Also create a read-only API key for each demo merchant and write them to FILE as JSON
        /// (mode 0600; new keys each run: secrets are shown only once).
        #[arg(long, value_name = "FILE")]
        credentials: Option<PathBuf>,
    },
    /// A wallet's statement over a period (opening, movements, closing), or an owner's wallets
    /// in one currency at both ends.
    ///
    /// Example: `coffer statement --wallet <wallet-id> --from 2026-11-01 --to 2026-11-30 --tz Europe/Paris --csv`
    Statement(StatementArgs),
    #[command(flatten)]
    Admin(AdminCmd),
}

/// What a command prints on success.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Printed {
    /// A JSON value, printed pretty.
    Json(Value),
    /// Text printed as it is (a CSV statement).
    Text(String),
}

impl Task {
    /// Make the file paths the command names absolute against `cwd`, the directory of the
    /// process that named them (the server that runs it has another).
    pub fn anchor(&mut self, cwd: &Path) {
        let path = match self {
            Task::Demo { credentials } => credentials.as_mut(),
            Task::Admin(AdminCmd::Fx(FxCmd::Import { file, .. })) => Some(file),
            Task::Admin(AdminCmd::Key(KeyCmd::SetPublicKey { file, .. })) => Some(file),
            Task::Admin(_) | Task::Statement(_) => None,
        };
        if let Some(p) = path {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        }
    }

    pub async fn run(self, dir: &Directory) -> anyhow::Result<Printed> {
        match self {
            Task::Admin(cmd) => admin::run(dir, cmd).await.map(Printed::Json),
            Task::Statement(args) => statement::run(dir, args).await,
            Task::Demo { credentials } => crate::demo::run(dir, credentials.as_deref()).await.map(Printed::Json),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn task(args: &[&str]) -> Task {
        let cli = crate::Cli::try_parse_from(std::iter::once("coffer").chain(args.iter().copied())).unwrap();
        crate::task_of(cli.command).unwrap()
    }

    #[test]
    fn relative_files_are_anchored_and_absolute_ones_kept() {
        let cwd = Path::new("/home/op");
        let p = "00000000-0000-0000-0000-000000000001";
        let mut t = task(&["fx", "import", "--platform", p, "--file", "rates.csv"]);
        t.anchor(cwd);
        assert!(
            matches!(t, Task::Admin(AdminCmd::Fx(FxCmd::Import { ref file, .. })) if file == Path::new("/home/op/rates.csv"))
        );
        let mut t = task(&["demo", "--credentials", "/tmp/c.json"]);
        t.anchor(cwd);
        assert!(matches!(t, Task::Demo { credentials: Some(ref f) } if f == Path::new("/tmp/c.json")));
        let mut t = task(&["key", "set-public-key", "ck_1", "--file", "k/pub.pem"]);
        t.anchor(cwd);
        assert!(
            matches!(t, Task::Admin(AdminCmd::Key(KeyCmd::SetPublicKey { ref file, .. })) if file == Path::new("/home/op/k/pub.pem"))
        );
    }
}
