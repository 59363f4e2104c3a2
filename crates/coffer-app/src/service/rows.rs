//! A wallet's posted movements as the providers' transaction lists show them: one row per line
//! of the wallet that changed its posted balance, oldest first, each with what is on the other
//! side (an outside party, the platform's fees, another wallet of the same owner, ...), so that a
//! dialect can name the row's type with a fixed table (`dialect-companions.md`, section 0).
//! Holds placed or released and incoming credits created change no posted balance: no row.

use std::collections::HashMap;

use coffer_core::*;
use coffer_store::Store;

use super::statements::all_lines;
use super::AppError;
use crate::directory::Directory;

/// What is on the other side of a row, seen from its wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Other {
    System(SystemAccount),
    /// Another wallet of the same owner.
    Own(WalletType),
    /// A wallet of another owner.
    Wallet,
    /// Several kinds of accounts (general postings).
    Mixed,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub seq: Seq,
    /// The line's index in its entry.
    pub index: usize,
    pub kind: EntryKind,
    pub created_at: Timestamp,
    /// Signed change to posted.
    pub amount: i64,
    pub other: Other,
    /// Reversals: the transaction reversed, and its kind.
    pub reverses: Option<(Seq, EntryKind)>,
    /// The transaction's `description` metadata, if any.
    pub description: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Rows of incoming credits ([`with_incoming`]): the credit, with `amount` its amount.
    pub incoming: Option<IncomingId>,
}

/// Entries read at once.
const CHUNK: usize = 500;

/// The rows of `wallet` in the journal positions `(after, through]`, oldest first (at most
/// `statements::MAX_TOTALED` lines are read).
pub async fn posted(dir: &Directory, wallet: &Account, after: Seq, through: Seq) -> Result<Vec<Row>, AppError> {
    read(dir, wallet, after, through, false).await
}

/// [`posted`], and a row for each incoming credit made to the wallet (its creation: `amount`
/// is the credit's, `incoming` names it).
pub async fn with_incoming(dir: &Directory, wallet: &Account, after: Seq, through: Seq) -> Result<Vec<Row>, AppError> {
    read(dir, wallet, after, through, true).await
}

async fn read(
    dir: &Directory,
    wallet: &Account,
    after: Seq,
    through: Seq,
    incoming: bool,
) -> Result<Vec<Row>, AppError> {
    let wanted = |l: &coffer_store::HistoryItem| {
        l.line.posted != 0 || (incoming && l.kind == EntryKind::IncomingCreate && l.line.incoming != 0)
    };
    let mut seqs: Vec<Seq> =
        all_lines(dir, wallet, after, through).await?.iter().filter(|l| wanted(l)).map(|l| l.seq).collect();
    seqs.reverse();
    let mut kinds: HashMap<AccountId, Option<Account>> = HashMap::new();
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(CHUNK) {
        let entries = dir.entries_at(chunk.to_vec()).await?;
        let reversed: Vec<Seq> = entries.iter().filter_map(|e| e.reverses).collect();
        let reversed: HashMap<Seq, EntryKind> =
            dir.entries_at(reversed).await?.into_iter().map(|e| (e.seq, e.kind)).collect();
        for e in &entries {
            let credit = incoming && e.kind == EntryKind::IncomingCreate;
            let mine = |l: &Line| l.account == wallet.id && (l.posted != 0 || (credit && l.incoming != 0));
            for (index, l) in e.lines.iter().enumerate().filter(|(_, l)| mine(l)) {
                out.push(Row {
                    seq: e.seq,
                    index,
                    kind: e.kind,
                    created_at: e.created_at,
                    amount: if credit { l.incoming } else { l.posted },
                    incoming: e.incoming.filter(|_| credit),
                    other: other(dir, &mut kinds, wallet, e, l.posted).await?,
                    reverses: e.reverses.and_then(|r| reversed.get(&r).map(|k| (r, *k))),
                    description: e.metadata.get("description").cloned(),
                    metadata: e.metadata.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The other side of a line moving `amount`: the lines moving posted the other way.
async fn other(
    dir: &Directory,
    known: &mut HashMap<AccountId, Option<Account>>,
    wallet: &Account,
    e: &Entry,
    amount: i64,
) -> Result<Other, AppError> {
    let mut seen: Option<Other> = None;
    for l in e.lines.iter().filter(|l| l.account != wallet.id && l.posted != 0 && (l.posted < 0) != (amount < 0)) {
        if let std::collections::hash_map::Entry::Vacant(v) = known.entry(l.account) {
            v.insert(dir.account(l.account).await?);
        }
        let this = match known.get(&l.account).cloned().flatten() {
            Some(a) => match a.kind {
                AccountKind::System(s) => Other::System(s),
                AccountKind::Wallet(t) if a.owner == wallet.owner => Other::Own(t),
                AccountKind::Wallet(_) => Other::Wallet,
            },
            None => Other::Mixed,
        };
        seen = match seen {
            None => Some(this),
            Some(s) if s == this => Some(s),
            Some(_) => Some(Other::Mixed),
        };
    }
    Ok(seen.unwrap_or(Other::Mixed))
}
