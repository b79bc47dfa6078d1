//! A queue several tasks take work from in batches: each takes what is waiting, up to a limit,
//! without waiting for more (a batch is never held back to fill up).

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

/// The receiving side, shared by the tasks that take from it.
pub type SharedReceiver<T> = Arc<Mutex<mpsc::UnboundedReceiver<T>>>;

/// Waits for the next item, then takes up to `max` items in all of what is waiting; `None`
/// once the queue is closed and empty.
pub async fn next_batch<T>(
    queue: &Mutex<mpsc::UnboundedReceiver<T>>,
    max: usize,
) -> Option<Vec<T>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match queue.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_takes_what_is_waiting_up_to_the_limit_then_the_queue_ends() {
        let (sender, receiver) = mpsc::unbounded_channel();
        let queue = Mutex::new(receiver);
        for i in 0..5 {
            sender.send(i).unwrap();
        }
        assert_eq!(next_batch(&queue, 3).await, Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&queue, 3).await, Some(vec![3, 4]));
        drop(sender);
        assert_eq!(next_batch(&queue, 3).await, None);
    }
}
