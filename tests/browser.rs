//! Headless Chromium driven through WebDriver: Debian's `chromium` and `chromium-driver`
//! (`chromedriver`), which `scripts/test` installs. A test asks for a [`Browser`]; without
//! Chromium it is skipped with a message — except in CI (`CI` set), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::processes::free_port;

/// A headless Chromium session, and the chromedriver it runs under (killed on drop).
pub struct Browser {
    pub client: Client,
    _driver: Child,
    profile: PathBuf,
}

/// Where a program is on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// A new session in a window of `width` × `height`; `None` (the test skips, saying why)
    /// when Chromium or chromedriver is not installed and `CI` is not set.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Option<Browser>> {
        let chromium = which("chromium").or_else(|| which("chromium-browser"));
        let driver = which("chromedriver");
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let missing = "headless Chromium is not installed (Debian: apt-get install chromium chromium-driver; scripts/test installs them)";
            if std::env::var_os("CI").is_some() {
                bail!("{missing} — required in CI");
            }
            eprintln!("SKIPPED: {missing}");
            return Ok(None);
        };
        let port = free_port()?;
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_ready(&webdriver).await?;
        let profile = std::env::temp_dir().join(format!("console-chromium-{port}"));
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .context("starting a headless Chromium session through chromedriver")?;
        Ok(Some(Browser {
            client,
            _driver: driver,
            profile,
        }))
    }

    /// Runs `script` (a function body that `return`s) in the page.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Polls `script` every 200 ms until `ready` accepts its value, at most `timeout`; the
    /// last value is in the error.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        mut ready: impl FnMut(&Value) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.eval(script).await?;
            if let Some(found) = ready(&value) {
                return Ok(found);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{what}: not within {timeout:?}; the page last showed {value}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.client.screenshot().await?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Ends the session and chromedriver.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        let _ = std::fs::remove_dir_all(&self.profile);
        Ok(())
    }
}

/// Waits until the WebDriver server at `url` says it is ready.
async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(answer) = reqwest::get(format!("{url}/status")).await {
            if let Ok(status) = answer.json::<Value>().await {
                if status.pointer("/value/ready") == Some(&Value::Bool(true)) {
                    return Ok(());
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("chromedriver at {url} not ready within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
