-- The trace context of the span that processed each consumed event (W3C traceparent and
-- tracestate; NULL when tracing is off): a compensation started by an event continues the
-- fare's trace from there, however much later its attempts are made.
ALTER TABLE inbox ADD COLUMN traceparent TEXT, ADD COLUMN tracestate TEXT;
