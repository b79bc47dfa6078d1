//! Exit codes, grep-style, so scripts can tell "no" from "could not tell":
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (for `request --wait`: the fare was collected) |
//! | 1 | a definite negative answer: unknown fare, fare not collected, topics missing, unknown dead letter, a dead letter replayed before |
//! | 2 | could not do it: invalid input, Kafka or a service unreachable, timeout, any other error |
//!
//! Errors travel as `anyhow::Error`; a [`Negative`] anywhere in the chain makes the exit code 1,
//! anything else is 2 (clap's usage errors are 2 as well).

use std::fmt;
use std::process::ExitCode;

/// Exit code for a definite negative answer.
pub const NEGATIVE: u8 = 1;
/// Exit code for "could not do it".
pub const TROUBLE: u8 = 2;

/// A definite negative answer (exit code 1), e.g. "unknown fare wr_1".
#[derive(Debug)]
pub struct Negative(pub String);

impl fmt::Display for Negative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Negative {}

/// A negative answer as an `anyhow::Error`.
pub fn negative(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Negative(message.into()))
}

/// The exit code for `error`: 1 when it carries a [`Negative`], else 2.
pub fn code_of(error: &anyhow::Error) -> u8 {
    if error
        .chain()
        .any(|cause| cause.downcast_ref::<Negative>().is_some())
    {
        NEGATIVE
    } else {
        TROUBLE
    }
}

/// Prints `error` on stderr (the message, then each cause on its own line) and returns its
/// exit code. A negative answer is printed as it is, without `error:`.
pub fn report(error: &anyhow::Error) -> ExitCode {
    for (i, line) in lines(error).iter().enumerate() {
        match i {
            0 if error.downcast_ref::<Negative>().is_some() => eprintln!("{line}"),
            0 => eprintln!("error: {line}"),
            _ => eprintln!("  caused by: {line}"),
        }
    }
    ExitCode::from(code_of(error))
}

/// The messages of `error`'s chain, leaving out a cause that only repeats the line before it
/// (Kafka errors often wrap an error with the same text).
fn lines(error: &anyhow::Error) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !lines
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            lines.push(text);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn negative_anywhere_in_the_chain_is_one() {
        assert_eq!(code_of(&negative("unknown fare wr_1")), NEGATIVE);
        let wrapped: anyhow::Result<()> = Err(negative("unknown fare wr_1"));
        let wrapped = wrapped.context("status of wr_1").unwrap_err();
        assert_eq!(code_of(&wrapped), NEGATIVE);
    }

    #[test]
    fn repeated_causes_are_left_out() {
        let error = anyhow::anyhow!("BrokerTransportFailure")
            .context("Meta data fetch error: BrokerTransportFailure")
            .context("cannot reach Kafka at localhost:9092");
        assert_eq!(
            lines(&error),
            [
                "cannot reach Kafka at localhost:9092",
                "Meta data fetch error: BrokerTransportFailure"
            ]
        );
    }

    #[test]
    fn anything_else_is_two() {
        assert_eq!(code_of(&anyhow::anyhow!("cannot reach Kafka")), TROUBLE);
    }
}
