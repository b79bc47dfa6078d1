//! Ctrl-C (or SIGTERM) during a benchmark: the first one stops the run, which then reports
//! what it measured so far and cleans up its scratch topic and schema; a second one exits at
//! once.

use tokio::sync::watch;
use transactional_messaging::shutdown;

/// Whether the user asked the run to stop; cheap to clone and to wait on.
#[derive(Debug, Clone)]
pub struct Interrupt(watch::Receiver<bool>);

impl Interrupt {
    /// Listens for SIGINT / SIGTERM from now on.
    pub fn on_signal() -> Interrupt {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            shutdown::signal().await;
            let _ = sender.send(true);
            shutdown::signal().await;
            eprintln!("interrupted again: exiting without cleaning up");
            std::process::exit(130);
        });
        Interrupt(receiver)
    }

    /// Whether the signal came.
    pub fn happened(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when the signal comes (at once if it came). Cancel-safe.
    pub async fn wait(&mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
