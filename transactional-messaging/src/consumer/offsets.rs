//! Which offsets may be committed: per partition, up to the lowest message still in flight.
//! Messages finish out of order (fares go ahead of each other); the committed offset only ever
//! covers messages that are done, so a crash redelivers every message that was not.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
struct Partition {
    /// Offsets received and not done yet, with how many times (a message may be delivered
    /// again after a rebalance while the first delivery is still in flight).
    in_flight: BTreeMap<i64, u32>,
    /// The highest offset received.
    highest: Option<i64>,
    /// The offset last reported as committable.
    stored: Option<i64>,
}

/// In-flight offsets of every partition this consumer read from.
#[derive(Debug, Default)]
pub struct Offsets {
    partitions: HashMap<(String, i32), Partition>,
}

impl Offsets {
    pub fn received(&mut self, topic: &str, partition: i32, offset: i64) {
        let state = self
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        *state.in_flight.entry(offset).or_default() += 1;
        state.highest = Some(state.highest.map_or(offset, |h| h.max(offset)));
    }

    /// The message at `offset` is done. Returns the partition's new committable offset (the
    /// next message to read after a restart) when it moved.
    pub fn done(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let state = self.partitions.get_mut(&(topic.to_owned(), partition))?;
        if let Some(count) = state.in_flight.get_mut(&offset) {
            *count -= 1;
            if *count == 0 {
                state.in_flight.remove(&offset);
            }
        }
        let committable = match state.in_flight.keys().next() {
            Some(lowest) => *lowest,
            None => state.highest? + 1,
        };
        if state.stored.is_some_and(|stored| stored >= committable) {
            return None;
        }
        state.stored = Some(committable);
        Some(committable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_up_to_the_lowest_message_in_flight() {
        let mut offsets = Offsets::default();
        for offset in 10..14 {
            offsets.received("t", 0, offset);
        }
        assert_eq!(offsets.done("t", 0, 12), Some(10), "10 is still in flight");
        assert_eq!(offsets.done("t", 0, 11), None, "nothing moved");
        assert_eq!(
            offsets.done("t", 0, 10),
            Some(13),
            "13 is the lowest in flight"
        );
        assert_eq!(
            offsets.done("t", 0, 13),
            Some(14),
            "all done: the next to read"
        );
        assert_eq!(offsets.done("u", 0, 1), None, "a partition never read");
    }

    #[test]
    fn a_message_delivered_twice_is_done_when_both_are() {
        let mut offsets = Offsets::default();
        offsets.received("t", 1, 5);
        offsets.received("t", 1, 6);
        offsets.received("t", 1, 5);
        assert_eq!(offsets.done("t", 1, 6), Some(5));
        assert_eq!(
            offsets.done("t", 1, 5),
            None,
            "its second delivery is in flight"
        );
        assert_eq!(offsets.done("t", 1, 5), Some(7));
    }
}
