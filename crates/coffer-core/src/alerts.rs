//! Balance alerts: a threshold on one wallet's available or posted balance. An alert fires
//! (`alert.triggered`) when a journal line takes the balance across its threshold to the
//! watched side, and clears (`alert.cleared`) when a line takes it back; a line that stays on
//! one side gives nothing. So it fires once per crossing and re-arms only after crossing back
//! (hysteresis), and, being derived from the journal lines alone, it can neither repeat nor be
//! missed. An alert applies to the entries after its position (`created_seq`) up to the one of
//! its deletion; both positions are taken so that no entry a reader has already been shown can
//! gain or lose an alert event (see `Store::put_alert`).

use serde::{Deserialize, Serialize};

use crate::model::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub platform: OwnerId,
    pub wallet: AccountId,
    pub field: AlertField,
    pub direction: AlertDirection,
    /// In the wallet's minor units.
    pub threshold: i64,
    /// The alert applies to entries after this position...
    pub created_seq: Seq,
    /// ...up to and including this one, once deleted.
    pub deleted_seq: Option<Seq>,
    pub created_at: Timestamp,
}

/// Most alerts one wallet may have at once.
pub const MAX_PER_WALLET: usize = 20;

impl Alert {
    /// Whether the alert watches entry `seq`.
    pub fn applies_to(&self, seq: Seq) -> bool {
        seq > self.created_seq && self.deleted_seq.is_none_or(|d| seq <= d)
    }

    /// The watched balance before and after `line`.
    fn values(&self, line: &Line) -> (i64, i64) {
        match self.field {
            AlertField::Posted => (line.posted_after - line.posted, line.posted_after),
            AlertField::Available => {
                let after = line.posted_after - line.held_after;
                (after - (line.posted - line.held), after)
            }
        }
    }

    /// What `line` (of this alert's wallet) does to the alert: trigger it, clear it, or nothing.
    pub fn crossing(&self, line: &Line) -> Option<EventType> {
        let (before, after) = self.values(line);
        let watched = |v: i64| match self.direction {
            AlertDirection::Below => v < self.threshold,
            AlertDirection::Above => v > self.threshold,
        };
        match (watched(before), watched(after)) {
            (false, true) => Some(EventType::AlertTriggered),
            (true, false) => Some(EventType::AlertCleared),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(field: AlertField, direction: AlertDirection, threshold: i64) -> Alert {
        Alert {
            id: AlertId(uuid::Uuid::nil()),
            platform: OwnerId(uuid::Uuid::nil()),
            wallet: AccountId(uuid::Uuid::nil()),
            field,
            direction,
            threshold,
            created_seq: 10,
            deleted_seq: Some(20),
            created_at: Timestamp(0),
        }
    }

    /// A line taking (posted, held) from `before` to `after`.
    fn line(before: (i64, i64), after: (i64, i64)) -> Line {
        Line {
            account: AccountId(uuid::Uuid::nil()),
            currency: "USD".parse().unwrap(),
            posted: after.0 - before.0,
            held: after.1 - before.1,
            incoming: 0,
            posted_after: after.0,
            held_after: after.1,
            incoming_after: 0,
        }
    }

    #[test]
    fn crossings_fire_and_clear_staying_gives_nothing() {
        use AlertDirection::*;
        use AlertField::*;
        use EventType::*;
        /// (field, direction, (posted, held) before, after, what the alert does, why).
        type Row = (AlertField, AlertDirection, (i64, i64), (i64, i64), Option<EventType>, &'static str);
        let rows: &[Row] = &[
            (Available, Below, (150, 0), (90, 0), Some(AlertTriggered), "down across 100"),
            (Available, Below, (90, 0), (150, 0), Some(AlertCleared), "back up across"),
            (Available, Below, (90, 0), (80, 0), None, "stays below"),
            (Available, Below, (150, 0), (120, 0), None, "stays above"),
            (Available, Below, (150, 0), (100, 0), None, "at the threshold is not below"),
            (Available, Below, (150, 0), (150, 60), Some(AlertTriggered), "a hold lowers available"),
            (Posted, Below, (150, 0), (150, 60), None, "a hold does not lower posted"),
            (Posted, Above, (90, 0), (101, 0), Some(AlertTriggered), "up across 100"),
            (Posted, Above, (101, 0), (100, 0), Some(AlertCleared), "back to the threshold"),
        ];
        for (field, direction, before, after, want, what) in rows {
            assert_eq!(alert(*field, *direction, 100).crossing(&line(*before, *after)), *want, "{what}");
        }
    }

    #[test]
    fn an_alert_watches_the_entries_between_its_positions() {
        let a = alert(AlertField::Posted, AlertDirection::Below, 0);
        assert_eq!([10, 11, 20, 21].map(|s| a.applies_to(s)), [false, true, true, false]);
        assert!(Alert { deleted_seq: None, ..a }.applies_to(1_000_000));
    }
}
