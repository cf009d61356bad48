//! The API documentation (issue 9): the `docs` component serves the repository's openapi.yaml
//! with cache validation, and Swagger UI (/docs) and ReDoc (/redoc) render every operation of it
//! in headless Chromium, from files the app itself serves.
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sendinchat_tests::app::{TestApp, unique_suffix};
use sendinchat_tests::contract::Contract;
use sendinchat_tests::processes::build::workspace_root;

/// How long Chromium may take to load a page, run its scripts and fetch the spec. Virtual time
/// runs ahead when the page is idle, so this is a bound, not a wait.
const PAGE_BUDGET_MS: u32 = 30_000;
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(180);

fn app() -> &'static TestApp {
    TestApp::shared()
}

#[test]
fn the_spec_is_served_byte_for_byte_and_revalidated_by_etag() {
    let served = app().openapi_yaml();
    assert_eq!(served.status, 200);
    let repository = std::fs::read_to_string(workspace_root().join("openapi.yaml")).expect("openapi.yaml");
    assert!(served.text == repository, "/openapi.yaml differs from the repository's openapi.yaml");
    assert_eq!(served.header("content-type"), Some("application/yaml"));
    let etag = served.header("etag").expect("an ETag");
    let revalidated = app().request("GET", "/openapi.yaml", &[("if-none-match", etag)], None);
    assert_eq!((revalidated.status, revalidated.text.as_str()), (304, ""));
    let changed = app().request("GET", "/openapi.yaml", &[("if-none-match", "\"0000000000000000\"")], None);
    assert_eq!(changed.status, 200);
}

#[test]
fn the_pages_and_their_files_come_from_the_app_with_cache_headers() {
    for (page, html) in [("/docs", app().swagger_ui("")), ("/redoc", app().redoc(""))] {
        assert_eq!(html.status, 200, "{page}");
        assert_eq!(html.header("cache-control"), Some("no-cache"), "{page}");
        let policy = html.header("content-security-policy").unwrap_or_default();
        assert!(policy.contains("script-src 'self'"), "{page}: {policy}");
        assert!(
            !html.text.contains("http://") && !html.text.contains("https://"),
            "{page} loads nothing from elsewhere"
        );
    }
    let bundle = app().swagger_ui("/swagger-ui-bundle.js");
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.header("cache-control"), Some("public, max-age=86400"));
    assert!(bundle.text.len() > 100_000, "the whole Swagger UI bundle: {} bytes", bundle.text.len());
    let redoc = app().redoc("/redoc.standalone.js");
    assert_eq!(redoc.status, 200);
    assert!(redoc.text.len() > 100_000, "the whole ReDoc bundle: {} bytes", redoc.text.len());

    let missing = app().swagger_ui("/not-a-file.js");
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    let wrong_method = app().request("POST", "/docs", &[], None);
    assert_eq!((wrong_method.status, wrong_method.code()), (405, "method_not_allowed"));
}

#[test]
fn swagger_ui_renders_every_operation_in_headless_chromium() {
    let dom = Chromium::get().dump_dom(&app().url("/docs"));
    // Swagger UI renders each operation as `<div class="opblock ..." id="operations-<tag>-<operationId>">`.
    let shown: Vec<&str> = attribute_values(&dom, "id=\"operations-")
        .filter(|id| !id.starts_with("tag-"))
        .filter_map(|id| id.rsplit_once('-').map(|(_, operation_id)| operation_id))
        .collect();
    assert_operations_shown("Swagger UI", &shown);
    // Tall enough to show every operation below the introduction.
    Chromium::get().screenshot(&app().url("/docs"), "swagger-ui.png", 4800);
}

#[test]
fn redoc_renders_every_operation_in_headless_chromium() {
    let dom = Chromium::get().dump_dom(&app().url("/redoc"));
    // ReDoc's menu has one `data-item-id="tag/<tag>/operation/<operationId>"` item per operation.
    let shown: Vec<&str> = attribute_values(&dom, "data-item-id=\"tag/")
        .filter_map(|id| id.split_once("/operation/").map(|(_, operation_id)| operation_id))
        .collect();
    assert_operations_shown("ReDoc", &shown);
    Chromium::get().screenshot(&app().url("/redoc"), "redoc.png", 2200);
}

fn assert_operations_shown(viewer: &str, shown: &[&str]) {
    let expected = Contract::global().operation_ids();
    assert_eq!(
        shown.len(),
        Contract::global().operation_count(),
        "{viewer} shows {} operations: {shown:?}",
        shown.len()
    );
    let shown: BTreeSet<&str> = shown.iter().copied().collect();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(shown, expected, "{viewer} shows other operations than the spec declares");
}

/// The values of every attribute whose text starts with `prefix` (which ends inside the value).
fn attribute_values<'a>(dom: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> {
    dom.match_indices(prefix).filter_map(move |(at, _)| dom[at + prefix.len()..].split('"').next())
}

/// Debian's Chromium, installed by scripts/ensure-chromium.sh on first use.
pub(crate) struct Chromium {
    pub(crate) binary: PathBuf,
}

impl Chromium {
    pub(crate) fn get() -> &'static Chromium {
        static CHROMIUM: OnceLock<Chromium> = OnceLock::new();
        CHROMIUM.get_or_init(|| {
            let output = Command::new(workspace_root().join("scripts/ensure-chromium.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/ensure-chromium.sh");
            assert!(output.status.success(), "scripts/ensure-chromium.sh failed ({})", output.status);
            let binary = String::from_utf8(output.stdout).expect("a path").trim().to_owned();
            Chromium { binary: PathBuf::from(binary) }
        })
    }

    /// The DOM after the page's scripts ran.
    fn dump_dom(&self, url: &str) -> String {
        self.run(&["--dump-dom".to_owned(), url.to_owned()])
    }

    /// Saves a screenshot `height` pixels tall under the target directory and checks it is a
    /// real picture.
    fn screenshot(&self, url: &str, name: &str, height: u32) -> PathBuf {
        let folder = target_dir().join("docs-screenshots");
        std::fs::create_dir_all(&folder).expect("screenshot folder");
        let file = folder.join(name);
        let _ = std::fs::remove_file(&file);
        self.run(&[format!("--screenshot={}", file.display()), format!("--window-size=1400,{height}"), url.to_owned()]);
        let png = std::fs::read(&file).unwrap_or_else(|error| panic!("no screenshot {}: {error}", file.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", file.display());
        // A blank page compresses to a few kilobytes; rendered documentation does not.
        assert!(png.len() > 50_000, "{} is nearly empty ({} bytes)", file.display(), png.len());
        eprintln!("screenshot: {}", file.display());
        file
    }

    /// Runs headless Chromium on a fresh profile with everything that would reach the network
    /// turned off (this machine has none), and returns its standard output.
    fn run(&self, arguments: &[String]) -> String {
        let profile = std::env::temp_dir().join(format!("sendinchat-chromium-{}", unique_suffix()));
        let mut child = Command::new(&self.binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--virtual-time-budget={PAGE_BUDGET_MS}"))
            .args(arguments)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).map(|_| text)
        });
        let deadline = Instant::now() + CHROMIUM_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for chromium") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium {arguments:?} did not finish within {CHROMIUM_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = std::fs::remove_dir_all(&profile);
        assert!(status.success(), "chromium {arguments:?} failed ({status})");
        reader.join().expect("reader thread").expect("chromium's output is UTF-8")
    }
}

/// Where cargo builds: screenshots stay there for a person to look at.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}
