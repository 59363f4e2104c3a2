//! Backups of the embedded store taken while it serves, checked before they are trusted, and
//! restored into a new data directory.

use std::fs::File;
use std::path::Path;

use coffer_core::verify::Report;
use coffer_core::Seq;

use super::{open_read_only, rows, schema, verify, SqliteStore, DB_FILE};
use crate::StoreError;

/// A checked backup: its last journal number and what `verify` found.
#[derive(Debug)]
pub struct Backup {
    pub last_seq: Seq,
    pub report: Report,
}

impl SqliteStore {
    /// Copy the ledger in `dir` to the new file `to` while a server may be writing to it: one
    /// read transaction's snapshot (`VACUUM INTO`: consistent, compact, taken beside the writer
    /// under WAL), then checked with `verify` before it is declared good. The copy holds every
    /// commit made before the snapshot began (and possibly some later ones not yet
    /// acknowledged); it opens like any data directory's `coffer.db`.
    pub fn backup_dir(dir: &Path, to: &Path) -> Result<Backup, StoreError> {
        let db = dir.join(DB_FILE);
        if !db.exists() {
            return Err(StoreError::Open(format!("{} holds no Coffer ledger ({DB_FILE} is missing)", dir.display())));
        }
        if to.exists() {
            return Err(StoreError::Open(format!("{} exists: a backup never overwrites a file", to.display())));
        }
        let conn = open_read_only(&db)?;
        schema::check_readable(&conn)?;
        let target = to.to_str().ok_or_else(|| StoreError::Open(format!("{}: not UTF-8", to.display())))?;
        conn.execute("VACUUM INTO ?1", [target])?;
        drop(conn);
        Self::check_backup(to)
    }

    /// Check a backup file: a Coffer ledger this build can read, whose balances equal its
    /// journal (`verify`); its last journal number with the report.
    pub fn check_backup(file: &Path) -> Result<Backup, StoreError> {
        let conn = open_read_only(file)?;
        schema::check_readable(&conn)?;
        let last = rows::counters(&conn)?.next_seq.saturating_sub(1);
        Ok(Backup { last_seq: last, report: verify(&conn)? })
    }

    /// Make `dir` a data directory holding the backup `from`, after checking it: refused when
    /// `dir` already holds a ledger or the backup does not verify.
    pub fn restore_dir(from: &Path, dir: &Path) -> Result<Backup, StoreError> {
        if dir.join(DB_FILE).exists() {
            return Err(StoreError::Open(format!(
                "{} already holds a ledger: restore into a new directory",
                dir.display()
            )));
        }
        let checked = Self::check_backup(from)?;
        if !checked.report.is_ok() {
            return Err(StoreError::Open(format!(
                "{} does not verify ({} difference(s)); nothing restored",
                from.display(),
                checked.report.problems.len()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
        let part = dir.join(format!("{DB_FILE}.restoring"));
        let io = |e: std::io::Error| StoreError::Open(format!("{}: {e}", part.display()));
        std::fs::copy(from, &part).map_err(io)?;
        File::open(&part).and_then(|f| f.sync_all()).map_err(io)?;
        std::fs::rename(&part, dir.join(DB_FILE)).map_err(io)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(checked)
    }
}
