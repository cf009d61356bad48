//! A private Pushpin in front of the app under test, from the project's own configuration
//! (deploy/pushpin/*.in) rendered into a temporary folder.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::processes::build::workspace_root;
use crate::processes::process::WatchedChild;

pub struct PushpinProcess {
    process: WatchedChild,
    client_port: u16,
    publish_port: u16,
    folder: PathBuf,
}

impl PushpinProcess {
    /// Starts Pushpin on `client_port` routing every path to the app instances on `app_ports`,
    /// with its publish endpoint on `publish_port` and `sig_key` for Grip-Sig; returns once it
    /// proxies to the app.
    pub fn start(app_ports: &[u16], client_port: u16, publish_port: u16, sig_key: &str) -> anyhow::Result<Self> {
        let folder = std::env::temp_dir().join(format!("sendinchat-pushpin-{}", super::unique_suffix()));
        let (run_dir, log_dir) = (folder.join("run"), folder.join("log"));
        std::fs::create_dir_all(&run_dir)?;
        std::fs::create_dir_all(&log_dir)?;
        let template = |name: &str| std::fs::read_to_string(workspace_root().join("deploy/pushpin").join(name));
        let routes_file = folder.join("routes");
        let targets: Vec<String> = app_ports.iter().map(|port| format!("127.0.0.1:{port},over_http")).collect();
        std::fs::write(&routes_file, template("routes.in")?.replace("@APP_TARGETS@", &targets.join(" ")))?;
        let config = template("pushpin.conf.in")?
            .replace("@RUN_DIR@", &run_dir.display().to_string())
            .replace("@LOG_DIR@", &log_dir.display().to_string())
            .replace("@BIND_ADDRESS@", "127.0.0.1")
            .replace("@HTTP_PORT@", &client_port.to_string())
            .replace("@PUBLISH_PORT@", &publish_port.to_string())
            .replace("@SIG_KEY@", sig_key)
            .replace("@ROUTES_FILE@", &routes_file.display().to_string());
        let config_file = folder.join("pushpin.conf");
        std::fs::write(&config_file, config)?;
        let (process, _lines) =
            WatchedChild::spawn("pushpin", &[format!("--config={}", config_file.display())], &[], &[])
                .context("starting pushpin (Debian package pushpin)")?;
        let pushpin = Self { process, client_port, publish_port, folder };
        pushpin.wait_for_port(publish_port)?;
        pushpin.wait_until_proxying()?;
        Ok(pushpin)
    }

    /// Pushpin's own output and its proxy's log, for diagnosing a failed test.
    pub fn log(&self) -> String {
        let proxy_log = std::fs::read_to_string(self.folder.join("log/pushpin-proxy.log")).unwrap_or_default();
        format!("{}\n--- pushpin-proxy.log ---\n{proxy_log}", self.process.log())
    }

    /// zurl's log: each request Pushpin made to the app, and how it ended. Apart from `log`,
    /// since it names request URLs, which tests that search the log for secrets do not expect.
    pub fn zurl_log(&self) -> String {
        std::fs::read_to_string(self.folder.join("log/zurl.log")).unwrap_or_default()
    }

    /// The `[handler]` settings that shape delivery (rate, queue sizes), as configured.
    pub fn delivery_settings(&self) -> String {
        let config = std::fs::read_to_string(self.folder.join("pushpin.conf")).unwrap_or_default();
        let wanted = ["message_rate", "message_hwm", "message_wait", "client_maxconn", "connection_subscription_max"];
        config
            .lines()
            .filter(|line| wanted.iter().any(|key| line.starts_with(&format!("{key}="))))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The resident memory of Pushpin's processes (runner, condure, zurl, proxy, handler) in KiB.
    pub fn memory_kib(&self) -> Vec<(String, u64)> {
        self.process.memory_kib()
    }

    pub fn ws_base_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.client_port)
    }

    /// Where clients send plain HTTP: Pushpin proxies it to the app.
    pub fn http_base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The publish endpoint's base URL, as `grip_publish_urls` lists it.
    pub fn publish_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.publish_port)
    }

    /// Waits until a request goes through to the app (`GET /health`). Pushpin's ports accept
    /// connections before its internal links (proxy to zurl) are up; a WebSocket opened in
    /// between would be refused with 502.
    fn wait_until_proxying(&self) -> anyhow::Result<()> {
        let agent = crate::processes::http_client(Duration::from_secs(2));
        let url = format!("http://127.0.0.1:{}/health", self.client_port);
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent.get(&url).call().map(|response| response.status().as_u16()).ok() != Some(200) {
            if Instant::now() > deadline {
                bail!("pushpin did not proxy to the app; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
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
