//! How both stores write an entry's lines inside the entry's row: per line the account number
//! and the six [`Values`], 7 x 8 bytes. SQLite stores them little-endian (schema v4);
//! PostgreSQL big-endian, so that SQL can read them too (`int8send` writes that order, and the
//! projector decodes it with a bit-string cast).

use coffer_core::*;

/// The values of one line: the deltas (posted, held, incoming), then the balances after.
pub type Values = [i64; 6];

/// Bytes of one encoded line.
pub const LINE_BYTES: usize = 56;

/// The byte order of each 8-byte word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Little,
    Big,
}

impl Order {
    fn put(self, out: &mut Vec<u8>, x: i64) {
        match self {
            Order::Little => out.extend_from_slice(&x.to_le_bytes()),
            Order::Big => out.extend_from_slice(&x.to_be_bytes()),
        }
    }

    fn get(self, b: &[u8]) -> i64 {
        let b: [u8; 8] = b.try_into().expect("8 bytes");
        match self {
            Order::Little => i64::from_le_bytes(b),
            Order::Big => i64::from_be_bytes(b),
        }
    }

    /// An account number as it appears at the start of an encoded line.
    pub fn number(self, no: i64) -> [u8; 8] {
        match self {
            Order::Little => no.to_le_bytes(),
            Order::Big => no.to_be_bytes(),
        }
    }
}

/// An entry's lines, `(account number, values)` each, as stored.
pub fn encode(lines: &[(i64, Values)], order: Order) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() * LINE_BYTES);
    for (no, v) in lines {
        order.put(&mut out, *no);
        v.iter().for_each(|x| order.put(&mut out, *x));
    }
    out
}

/// The inverse of [`encode`]; `None` for a malformed column.
pub fn decode(blob: &[u8], order: Order) -> Option<Vec<(i64, Values)>> {
    if !blob.len().is_multiple_of(LINE_BYTES) {
        return None;
    }
    let word = |c: &[u8], i: usize| order.get(&c[i * 8..i * 8 + 8]);
    Some(
        blob.chunks_exact(LINE_BYTES)
            .map(|c| (word(c, 0), [word(c, 1), word(c, 2), word(c, 3), word(c, 4), word(c, 5), word(c, 6)]))
            .collect(),
    )
}

/// A list of 8-byte little-endian account numbers (SQLite's `accounts` column); `None` for a
/// malformed one.
pub fn decode_accounts(blob: &[u8]) -> Option<Vec<i64>> {
    if !blob.len().is_multiple_of(8) {
        return None;
    }
    Some(blob.chunks_exact(8).map(|c| Order::Little.get(c)).collect())
}

/// A line's values in [`Values`] order.
pub fn values(l: &Line) -> Values {
    [l.posted, l.held, l.incoming, l.posted_after, l.held_after, l.incoming_after]
}

/// A line of `account` from its [`Values`].
pub fn line_of(account: AccountId, currency: CurrencyCode, v: Values) -> Line {
    Line {
        account,
        currency,
        posted: v[0],
        held: v[1],
        incoming: v[2],
        posted_after: v[3],
        held_after: v[4],
        incoming_after: v[5],
    }
}

/// Each entry's lines with their accounts' numbers, in line order, as the working set `l`
/// numbers them.
pub fn numbered(l: &Ledger, entries: &[Entry]) -> Vec<Vec<(i64, Values)>> {
    entries
        .iter()
        .map(|e| {
            e.lines
                .iter()
                .map(|ln| {
                    let no = l.account(ln.account).expect("journaled accounts are in the working set").number;
                    (no as i64, values(ln))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_in_both_orders() {
        let lines = vec![(7, [1, -2, 3, i64::MAX, i64::MIN, 0]), (9, [0; 6])];
        for o in [Order::Little, Order::Big] {
            assert_eq!(decode(&encode(&lines, o), o), Some(lines.clone()));
            assert_eq!(decode(&[0; 55], o), None);
        }
        assert_eq!(&encode(&lines, Order::Big)[..8], &7i64.to_be_bytes());
        assert_eq!(decode_accounts(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]), Some(vec![1, 2]));
    }
}
