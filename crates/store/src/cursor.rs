//! A position in the global order of the log.
//!
//! The global order is `(transaction_id, position)`, not `position` alone:
//! positions are handed out at insert time, so a transaction holding a lower
//! position may commit after one holding a higher position, and a reader that
//! had moved past the higher one would skip it. Ordered by transaction first
//! and read only below the event writers' horizon (see [`crate::store`]), nothing can
//! ever appear behind a cursor.
//!
//! Clients see a cursor as an opaque string, `"<transaction_id>-<position>"`.
//! Parsing is strict (digits only, no signs or spaces, no overflow) so that a
//! tampered cursor is refused with [`StoreError::InvalidCursor`] instead of
//! silently resuming somewhere else.

use std::fmt;
use std::str::FromStr;

use crate::error::StoreError;

/// A point in the global order; reading "after" it returns every event that
/// sorts strictly later.
///
/// Ordering derives from the field order: by `transaction_id`, then
/// `position`, which is exactly the log's global order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    /// The writing transaction's xid8 (64-bit, epoch-extended).
    pub transaction_id: u64,
    /// The event's position (identity) within the table.
    pub position: i64,
}

impl Cursor {
    /// Before every event: reading after it starts at the beginning of the log.
    pub const START: Cursor = Cursor { transaction_id: 0, position: 0 };

    /// A cursor at the given point.
    pub const fn new(transaction_id: u64, position: i64) -> Self {
        Cursor { transaction_id, position }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.transaction_id, self.position)
    }
}

impl FromStr for Cursor {
    type Err = StoreError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| StoreError::InvalidCursor { input: truncate(input), reason };
        let (transaction, position) =
            input.split_once('-').ok_or_else(|| invalid("expected <transaction>-<position>"))?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(transaction) || !digits(position) {
            return Err(invalid("expected two unsigned decimal numbers"));
        }
        let transaction_id = transaction.parse::<u64>().map_err(|_| invalid("transaction id out of range"))?;
        let position = position.parse::<i64>().map_err(|_| invalid("position out of range"))?;
        Ok(Cursor { transaction_id, position })
    }
}

/// Bounds what an error message echoes back of an untrusted string.
fn truncate(input: &str) -> String {
    const MAX: usize = 64;
    match input.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &input[..end]),
        None => input.to_owned(),
    }
}

/// Parses the text form of an `xid8` column (selected as `::text`, because
/// sqlx has no decoder for `xid8`).
pub(crate) fn parse_xid8(text: &str) -> Option<u64> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for cursor in [Cursor::START, Cursor::new(738, 1), Cursor::new(u64::MAX, i64::MAX)] {
            let parsed: Cursor = cursor.to_string().parse().expect("own cursor parses");
            assert_eq!(parsed, cursor);
        }
    }

    #[test]
    fn orders_by_transaction_then_position() {
        assert!(Cursor::new(1, 99) < Cursor::new(2, 1));
        assert!(Cursor::new(2, 1) < Cursor::new(2, 2));
        assert!(Cursor::START < Cursor::new(0, 1));
    }
}
