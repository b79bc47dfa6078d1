//! One queue per fare: at most one message of a fare is in flight; the others wait, in the
//! order they arrived, and are released one at a time as the one before is done.

use std::collections::{HashMap, VecDeque};

/// The waiting messages of every fare with a message in flight.
#[derive(Debug)]
pub struct FareQueues<W> {
    /// Fares with a message in flight, and what waits behind it.
    busy: HashMap<String, VecDeque<W>>,
}

impl<W> Default for FareQueues<W> {
    fn default() -> Self {
        FareQueues {
            busy: HashMap::new(),
        }
    }
}

impl<W> FareQueues<W> {
    /// `work` arrives for `fare`: returned when it may go ahead now (nothing of its fare in
    /// flight), kept in line otherwise.
    pub fn admit(&mut self, fare: String, work: W) -> Option<W> {
        match self.busy.get_mut(&fare) {
            Some(waiting) => {
                waiting.push_back(work);
                None
            }
            None => {
                self.busy.insert(fare, VecDeque::new());
                Some(work)
            }
        }
    }

    /// The message in flight for `fare` is done: the next one in line, if any, goes ahead.
    pub fn finish(&mut self, fare: &str) -> Option<W> {
        let waiting = self.busy.get_mut(fare)?;
        let next = waiting.pop_front();
        if next.is_none() {
            self.busy.remove(fare);
        }
        next
    }

    /// Fares with a message in flight.
    #[cfg(test)]
    pub fn busy_fares(&self) -> usize {
        self.busy.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_fare_in_flight_the_others_in_order() {
        let mut queues = FareQueues::default();
        assert_eq!(queues.admit("a".into(), 1), Some(1));
        assert_eq!(queues.admit("a".into(), 2), None);
        assert_eq!(
            queues.admit("b".into(), 3),
            Some(3),
            "another fare goes ahead"
        );
        assert_eq!(queues.admit("a".into(), 4), None);
        assert_eq!(queues.finish("a"), Some(2));
        assert_eq!(queues.finish("a"), Some(4));
        assert_eq!(queues.finish("a"), None);
        assert_eq!(queues.busy_fares(), 1);
        assert_eq!(queues.finish("b"), None);
        assert_eq!(queues.busy_fares(), 0);
        assert_eq!(
            queues.admit("a".into(), 5),
            Some(5),
            "a fare with nothing in flight"
        );
    }
}
