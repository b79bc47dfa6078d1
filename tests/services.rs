//! The real services, run in-process with their own shutdown signal.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A service running in this test process.
pub struct RunningService {
    pub name: &'static str,
    pub http_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Runs `run` (a service's `run(shutdown)`) in a task until [`RunningService::stop`].
    pub fn spawn<F, Fut>(name: &'static str, http_addr: SocketAddr, run: F) -> RunningService
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(stopped));
        RunningService {
            name,
            http_addr,
            stop: Some(stop),
            task,
        }
    }

    /// Sends the shutdown signal and waits for a clean stop.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http_addr, path)
    }
}
