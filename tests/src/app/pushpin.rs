//! A private Pushpin in front of the app under test, from the project's own configuration
//! (deploy/pushpin/*.in) rendered into a temporary folder.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::host::build::workspace_root;
use crate::host::free_port;
use crate::host::process::WatchedChild;

/// Tests put whole rooms' worth of deliveries through one instance; Debian's default of 2500
/// deliveries per second would throttle the 50-client test.
const TEST_MESSAGE_RATE: &str = "100000";

pub struct PushpinProcess {
    process: WatchedChild,
    client_port: u16,
    folder: PathBuf,
}

impl PushpinProcess {
    /// Starts Pushpin routing every path to the app on `app_port`, with its publish endpoint on
    /// `publish_port` and `sig_key` for Grip-Sig; returns once both ports answer.
    pub fn start(app_port: u16, publish_port: u16, sig_key: &str) -> anyhow::Result<Self> {
        let client_port = free_port()?;
        let folder = std::env::temp_dir().join(format!("sendinchat-pushpin-{}", super::unique_suffix()));
        let (run_dir, log_dir) = (folder.join("run"), folder.join("log"));
        std::fs::create_dir_all(&run_dir)?;
        std::fs::create_dir_all(&log_dir)?;
        let template = |name: &str| std::fs::read_to_string(workspace_root().join("deploy/pushpin").join(name));
        let routes_file = folder.join("routes");
        std::fs::write(&routes_file, template("routes.in")?.replace("@APP_PORT@", &app_port.to_string()))?;
        let config = template("pushpin.conf.in")?
            .replace("@RUN_DIR@", &run_dir.display().to_string())
            .replace("@LOG_DIR@", &log_dir.display().to_string())
            .replace("@HTTP_PORT@", &client_port.to_string())
            .replace("@PUBLISH_PORT@", &publish_port.to_string())
            .replace("@SIG_KEY@", sig_key)
            .replace("@ROUTES_FILE@", &routes_file.display().to_string())
            .replace("@MESSAGE_RATE@", TEST_MESSAGE_RATE);
        let config_file = folder.join("pushpin.conf");
        std::fs::write(&config_file, config)?;
        let (process, _lines) =
            WatchedChild::spawn("pushpin", &[format!("--config={}", config_file.display())], &[], &[])
                .context("starting pushpin (Debian package pushpin)")?;
        let pushpin = Self { process, client_port, folder };
        pushpin.wait_for_port(client_port)?;
        pushpin.wait_for_port(publish_port)?;
        Ok(pushpin)
    }

    /// Pushpin's own output and its proxy's log, for diagnosing a failed test.
    pub fn log(&self) -> String {
        let proxy_log = std::fs::read_to_string(self.folder.join("log/pushpin-proxy.log")).unwrap_or_default();
        format!("{}\n--- pushpin-proxy.log ---\n{proxy_log}", self.process.log())
    }

    pub fn ws_base_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.client_port)
    }

    fn wait_for_port(&self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("pushpin did not listen on {port}; log:\n{}", self.process.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for PushpinProcess {
    fn drop(&mut self) {
        let _ = self.process.terminate(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
