//! Live progress of a run on stderr: an indicatif bar on a terminal, a plain line every few
//! seconds otherwise (a pipe, a log file, or `--json`, whose stdout is for the result).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::report::thousands;
use super::tally::Tally;

/// How often a plain line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// The window of the current settle rate.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// Progress output of one run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_plain: Instant,
    recent: VecDeque<(Instant, usize)>,
}

impl Progress {
    /// A bar when `interactive`, else plain lines.
    pub fn new(total: usize, interactive: bool) -> Progress {
        let bar = interactive.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total as u64),
                ProgressDrawTarget::stderr_with_hz(5),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} settled · {msg}",
                )
                .expect("a valid progress template")
                .progress_chars("=> "),
            );
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            started: now,
            last_plain: now,
            recent: VecDeque::new(),
        }
    }

    /// Shows the state of `tally`; call it a few times a second.
    pub fn update(&mut self, tally: &Tally) {
        let now = Instant::now();
        self.recent.push_back((now, tally.settled_count()));
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.recent.pop_front();
        }
        let line = status_line(tally, self.rate());
        match &self.bar {
            Some(bar) => {
                bar.set_position(tally.settled_count() as u64);
                bar.set_message(line);
            }
            None if now.duration_since(self.last_plain) >= PLAIN_EVERY => {
                self.last_plain = now;
                eprintln!(
                    "bench: {:>6.1} s · {line}",
                    now.duration_since(self.started).as_secs_f64()
                );
            }
            None => {}
        }
    }

    /// Prints `text` on stderr without tearing the bar.
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the bar (the report follows).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Settled fares per second over the last few seconds.
    fn rate(&self) -> f64 {
        match (self.recent.front(), self.recent.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// `sent 2,400/10,000 · settled 2,210 · in flight 190 · 184 settled/s`
fn status_line(tally: &Tally, rate: f64) -> String {
    format!(
        "sent {}/{} · settled {} · in flight {} · {} settled/s",
        thousands(tally.sent_count() as u64),
        thousands(tally.planned() as u64),
        thousands(tally.settled_count() as u64),
        thousands(tally.in_flight() as u64),
        thousands(rate.round() as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_schema::FailureMarker;

    #[test]
    fn the_status_line_counts_sent_settled_and_in_flight() {
        let mut tally = Tally::new(&[FailureMarker::None; 2_500]);
        for i in 0..2_400 {
            tally.sent(i, None);
        }
        assert_eq!(
            status_line(&tally, 183.6),
            "sent 2,400/2,500 · settled 0 · in flight 2,400 · 184 settled/s"
        );
    }
}
