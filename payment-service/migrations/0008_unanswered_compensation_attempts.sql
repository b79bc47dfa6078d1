-- An attempt whose gateway call got no answer (transient faults outlasted its retries, or the
-- answer was lost) is recorded as such, not as a refusal: it never gives the compensation up.
ALTER TABLE compensation_attempts DROP CONSTRAINT compensation_attempts_outcome_check;
ALTER TABLE compensation_attempts ADD CONSTRAINT compensation_attempts_outcome_check
    CHECK (outcome IN ('approved', 'refused', 'unanswered', 'given_up'));
