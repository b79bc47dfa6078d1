//! Batch workers: a few ready messages of distinct fares, processed in one transaction — the
//! inbox check, the handler, the inbox records, the dead letters, the outbox — then handed on:
//! done (to the dispatcher), or waiting for a call made outside any transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events_schema::{Event, EventId};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Consumed, Consuming, Disposition, HandleError, Handler, Input, Messages, Progress};
use crate::commit_signal::CommitSignal;
use crate::crash_point::{self, CrashPoint};
use crate::database::OwnConnection;
use crate::dead_letter;
use crate::inbox::{self, Delivery, InboxRecord, Incoming};
use crate::metrics::{MessageKind, Metrics};
use crate::outbox::{self, OutboxMessage};
use crate::readiness::Readiness;
use crate::relay::Handoff;
use crate::retry::Backoff;
use crate::trace;
use crate::work_queue::{next_batch, SharedReceiver};

/// A message on its way through the service.
#[derive(Debug)]
pub struct Work<C, A> {
    pub message: Consumed,
    /// The fare whose queue it is in.
    pub fare: String,
    pub what: What<C, A>,
    /// Its series in the metrics.
    pub kind: Option<MessageKind>,
    /// When the dispatcher received it.
    pub received: Instant,
    /// Its `process` span (none when tracing is off): the parent of the events it causes, of
    /// its gateway call, and of the compensation it may start.
    pub span: trace::Span,
}

/// What is left to do with it.
#[derive(Debug)]
pub enum What<C, A> {
    /// Write its dead letter, with this reason.
    DeadLetter(String),
    /// Give it to the handler as received; its request goes by this event id.
    Raw(EventId),
    /// Check the inbox, then give it to the handler.
    Event(Box<Event>),
    /// Give the handler the answer to the call it asked for.
    Answered {
        event: Option<Box<Event>>,
        call: C,
        answer: A,
    },
}

/// A message is done: the dispatcher releases its fare and its offset.
#[derive(Debug)]
pub struct Completion {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub fare: String,
    pub disposition: Disposition,
    pub kind: Option<MessageKind>,
    pub received: Instant,
}

/// What one worker needs; cloned for each.
pub struct Worker<H: Handler> {
    pub pool: PgPool,
    pub handler: Arc<H>,
    pub consuming: Consuming,
    pub relay: Handoff,
    pub committed: CommitSignal,
    /// Told when batches fail and succeed again: a database that keeps refusing the work
    /// (down, read-only, out of space) makes the service not ready.
    pub readiness: Readiness,
    pub metrics: Metrics,
    pub ready: mpsc::UnboundedSender<Work<H::Call, H::Answer>>,
    pub done: mpsc::UnboundedSender<Completion>,
}

impl<H: Handler> Clone for Worker<H> {
    fn clone(&self) -> Self {
        Worker {
            pool: self.pool.clone(),
            handler: self.handler.clone(),
            consuming: self.consuming.clone(),
            relay: self.relay.clone(),
            committed: self.committed.clone(),
            readiness: self.readiness.clone(),
            metrics: self.metrics.clone(),
            ready: self.ready.clone(),
            done: self.done.clone(),
        }
    }
}

type Queue<H> = SharedReceiver<Work<<H as Handler>::Call, <H as Handler>::Answer>>;

/// Takes batches off the ready queue until it closes.
pub async fn run_worker<H: Handler>(worker: Worker<H>, queue: Queue<H>) {
    let mut connection = OwnConnection::like(&worker.pool);
    loop {
        let Some(batch) = next_batch(&queue, worker.consuming.max_batch).await else {
            connection.close().await;
            return;
        };
        worker.process(&mut connection, batch).await;
    }
}

/// A batch's outcome once committed.
struct Committed<C> {
    progress: Vec<Progress<C>>,
    rows: Vec<outbox::OutboxRow>,
}

impl<H: Handler> Worker<H> {
    /// Processes `batch` until its outcome is committed: retries retryable failures with capped
    /// backoff; on a permanent failure, processes its messages one by one, and dead-letters the
    /// one that fails on its own.
    async fn process(&self, connection: &mut OwnConnection, batch: Vec<Work<H::Call, H::Answer>>) {
        let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.transact(connection, &batch).await;
            match connection.check(result) {
                Ok(committed) => {
                    self.readiness.batch_committed();
                    self.metrics.batch_committed(started.elapsed());
                    for work in &batch {
                        work.span.event("committed", || {
                            vec![trace::Attribute::new("batch.size", batch.len() as i64)]
                        });
                    }
                    tracing::debug!(
                        size = batch.len(),
                        ms = started.elapsed().as_millis() as u64,
                        "batch committed"
                    );
                    return self.hand_on(batch, committed);
                }
                Err(HandleError::Permanent(reason)) if batch.len() > 1 => {
                    tracing::warn!(
                        size = batch.len(),
                        reason,
                        "a batch failed for good; processing its messages one by one"
                    );
                    for work in batch {
                        Box::pin(self.process(connection, vec![work])).await;
                    }
                    return;
                }
                Err(HandleError::Permanent(reason)) => {
                    let work = batch.into_iter().next().expect("a batch of one");
                    return self.dead_letter_alone(work, &reason).await;
                }
                Err(HandleError::Retryable(error)) => {
                    self.readiness.batch_failed(&format!("{error:#}"));
                    tracing::warn!(
                        size = batch.len(),
                        attempt,
                        error = format!("{error:#}"),
                        "batch failed, retrying"
                    );
                    backoff.sleep(attempt).await;
                }
            }
        }
    }

    /// The batch's transaction.
    async fn transact(
        &self,
        connection: &mut OwnConnection,
        batch: &[Work<H::Call, H::Answer>],
    ) -> Result<Committed<H::Call>, HandleError> {
        let mut tx = connection.get().await?.begin().await?;
        let mut progress: Vec<Option<Progress<H::Call>>> = (0..batch.len()).map(|_| None).collect();
        let mut first_deliveries = vec![false; batch.len()];
        let mut messages = Messages::default();
        self.check_inbox(
            &mut tx,
            batch,
            &mut progress,
            &mut first_deliveries,
            &mut messages,
        )
        .await?;

        let mut inputs = Vec::new();
        let mut positions = Vec::new();
        for (i, work) in batch.iter().enumerate() {
            let input = match &work.what {
                What::Raw(_) => Input::Raw(&work.message),
                What::Event(event) if first_deliveries[i] => Input::Event(&work.message, event),
                What::Answered {
                    event,
                    call,
                    answer,
                } => Input::Answer {
                    message: &work.message,
                    event: event.as_deref(),
                    call,
                    answer,
                },
                What::Event(_) | What::DeadLetter(_) => continue,
            };
            inputs.push(input);
            positions.push(i);
        }
        if !inputs.is_empty() {
            let handled = self.handler.handle(&mut tx, &inputs, &mut messages).await?;
            if handled.len() != inputs.len() {
                return Err(HandleError::Permanent(format!(
                    "the handler answered {} of {} messages",
                    handled.len(),
                    inputs.len()
                )));
            }
            for (position, handled) in positions.into_iter().zip(handled) {
                progress[position] = Some(handled);
            }
        }
        drop(inputs);
        let progress: Vec<Progress<H::Call>> = progress
            .into_iter()
            .zip(batch)
            .map(|(progress, work)| match (progress, &work.what) {
                (Some(progress), _) => progress,
                (None, What::DeadLetter(reason)) => {
                    Progress::Done(Disposition::DeadLettered(reason.clone()))
                }
                (None, _) => Progress::Done(Disposition::Ignored),
            })
            .collect();

        if trace::enabled() {
            traced_by_fare(batch, &mut messages.outbox);
        }
        for (work, progress) in batch.iter().zip(&progress) {
            if let Progress::Done(Disposition::DeadLettered(reason)) = progress {
                let mut letter = self.dead_letter(&work.message, reason);
                work.span.inject(&mut letter.headers);
                messages.outbox.push(letter);
            }
        }
        messages.inbox.extend(
            batch
                .iter()
                .zip(&progress)
                .zip(&first_deliveries)
                .filter_map(|((work, progress), first)| inbox_record(work, progress, *first)),
        );
        let rows = outbox::enqueue_recording(&mut tx, &messages.inbox, messages.outbox).await?;
        crash_point::reached(CrashPoint::MidBatch);
        tx.commit().await?;
        crash_point::reached(CrashPoint::BatchCommitted);
        Ok(Committed { progress, rows })
    }

    /// The inbox check of the batch's new events: a redelivery is done (ignored), a reused
    /// `event_id` is dead-lettered, the others are first deliveries. In the same statement,
    /// what the inbox knows of its raw messages' ids, for the handler to check.
    async fn check_inbox(
        &self,
        tx: &mut PgConnection,
        batch: &[Work<H::Call, H::Answer>],
        progress: &mut [Option<Progress<H::Call>>],
        first_deliveries: &mut [bool],
        messages: &mut Messages,
    ) -> Result<(), HandleError> {
        let ids: Vec<Uuid> = batch
            .iter()
            .filter_map(|work| match &work.what {
                What::Event(event) => Some(event.event_id.as_uuid()),
                What::Raw(event_id) => Some(event_id.as_uuid()),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let known = inbox::known(tx, &ids).await?;
        for work in batch {
            if let What::Raw(event_id) = &work.what {
                if let Some(record) = known.get(&event_id.as_uuid()) {
                    messages
                        .known_raw
                        .insert(event_id.as_uuid(), record.clone());
                }
            }
        }
        for (i, work) in batch.iter().enumerate() {
            let What::Event(event) = &work.what else {
                continue;
            };
            let incoming = Incoming {
                event_id: event.event_id,
                event_type: event.event_type(),
                fare_id: &event.fare_id,
                fingerprint: event.fingerprint(),
            };
            match known
                .get(&event.event_id.as_uuid())
                .map(|k| k.delivery_of(incoming))
            {
                None => first_deliveries[i] = true,
                Some(Delivery::First | Delivery::Redelivery) => {
                    progress[i] = Some(Progress::Done(Disposition::Ignored));
                }
                Some(Delivery::Conflict(reason)) => {
                    progress[i] = Some(Progress::Done(Disposition::DeadLettered(reason)));
                }
            }
        }
        Ok(())
    }

    fn dead_letter(&self, message: &Consumed, reason: &str) -> OutboxMessage {
        let letter = dead_letter::dead_letter(
            message,
            self.consuming.dead_letters,
            self.consuming.service.name(),
            reason,
        );
        dead_letter::log(message, &letter);
        letter
    }

    /// A message that fails on its own, for good: its dead letter, in a transaction of its own.
    async fn dead_letter_alone(&self, work: Work<H::Call, H::Answer>, reason: &str) {
        let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let written: Result<Vec<outbox::OutboxRow>, sqlx::Error> = async {
                let mut tx = self.pool.begin().await?;
                let mut letter = self.dead_letter(&work.message, reason);
                work.span.inject(&mut letter.headers);
                let rows = outbox::enqueue_many(&mut tx, vec![letter]).await?;
                tx.commit().await?;
                Ok(rows)
            }
            .await;
            match written {
                Ok(rows) => {
                    self.relay.send(rows);
                    self.complete(work, Disposition::DeadLettered(reason.to_owned()));
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot write a dead letter, retrying");
                    backoff.sleep(attempt).await;
                }
            }
        }
    }

    /// After the commit: the new outbox rows to the relay, each message done or on to its call.
    fn hand_on(&self, batch: Vec<Work<H::Call, H::Answer>>, committed: Committed<H::Call>) {
        for row in &committed.rows {
            if let Some(outcome) = row.message.outcome {
                self.metrics.outcome(outcome);
            }
        }
        self.relay.send(committed.rows);
        self.committed.notify();
        for (work, progress) in batch.into_iter().zip(committed.progress) {
            match progress {
                Progress::Done(disposition) => self.complete(work, disposition),
                Progress::Call(call) => self.call(work, call),
            }
        }
    }

    fn complete(&self, work: Work<H::Call, H::Answer>, disposition: Disposition) {
        if disposition == Disposition::Processed {
            tracing::debug!(topic = %work.message.topic, offset = work.message.offset, fare = %work.fare, "processed");
        }
        end_span(&work.span, &disposition);
        let _ = self.done.send(Completion {
            topic: work.message.topic,
            partition: work.message.partition,
            offset: work.message.offset,
            fare: work.fare,
            disposition,
            kind: work.kind,
            received: work.received,
        });
    }

    /// Makes the call outside any transaction; its answer comes back as ready work.
    fn call(&self, work: Work<H::Call, H::Answer>, call: H::Call) {
        let handler = self.handler.clone();
        let ready = self.ready.clone();
        tokio::spawn(async move {
            let answer = work.span.in_scope(handler.call(&call)).await;
            crash_point::reached(CrashPoint::GatewayAnswered);
            let event = match work.what {
                What::Event(event) => Some(event),
                What::Answered { event, .. } => event,
                What::Raw(_) | What::DeadLetter(_) => None,
            };
            let _ = ready.send(Work {
                message: work.message,
                fare: work.fare,
                what: What::Answered {
                    event,
                    call,
                    answer,
                },
                kind: work.kind,
                received: work.received,
                span: work.span,
            });
        });
    }
}

/// The inbox record of an event that is done with (processed, or ignored at its step), first
/// delivered now or answered now.
fn inbox_record<C, A>(
    work: &Work<C, A>,
    progress: &Progress<C>,
    first_delivery: bool,
) -> Option<InboxRecord> {
    let event = match (&work.what, first_delivery) {
        (What::Event(event), true) => event,
        (
            What::Answered {
                event: Some(event), ..
            },
            _,
        ) => event,
        _ => return None,
    };
    match progress {
        Progress::Done(Disposition::Processed | Disposition::Ignored) => {
            Some(InboxRecord::of(event, &work.message))
        }
        _ => None,
    }
}

/// Gives each outgoing event the context of the message that caused it: the message of its
/// fare (its key), since a batch holds at most one message per fare.
fn traced_by_fare<C, A>(batch: &[Work<C, A>], outgoing: &mut [OutboxMessage]) {
    let spans: std::collections::HashMap<&str, &trace::Span> = batch
        .iter()
        .map(|work| (work.fare.as_str(), &work.span))
        .collect();
    for message in outgoing {
        if let Some(span) = message.key.as_deref().and_then(|key| spans.get(key)) {
            span.inject(&mut message.headers);
        }
    }
}

/// Ends a message's `process` span with what became of the message.
fn end_span(span: &trace::Span, disposition: &Disposition) {
    if !span.is_on() {
        return;
    }
    let outcome = match disposition {
        Disposition::Processed => "processed",
        Disposition::Ignored => "ignored",
        Disposition::DeadLettered(reason) => {
            span.fail(|| format!("dead-lettered: {reason}"));
            "dead_lettered"
        }
    };
    span.set(|| trace::Attribute::new(trace::attribute::DISPOSITION, outcome));
    span.end();
}
