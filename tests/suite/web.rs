//! The web client (issue 17): the `web` component serves the page and its files with a strict
//! Content-Security-Policy and cache headers; the client has a message for every error code of the
//! API; its logic passes its unit tests; and two people use it end to end in headless Chromium
//! (web/e2e/run.mjs, playwright-core driving Debian's Chromium) against the app under test.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use sendinchat_tests::app::TestApp;
use sendinchat_tests::processes::build::workspace_root;
use serde_json::Value;

use crate::docs::{Chromium, target_dir};

fn app() -> &'static TestApp {
    TestApp::shared()
}

fn web_dir() -> PathBuf {
    workspace_root().join("web")
}

#[test]
fn the_page_has_a_strict_policy_that_allows_the_realtime_gateway() {
    let page = app().get("/", None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let policy = page.header("content-security-policy").expect("a Content-Security-Policy").to_owned();
    let directives: Vec<&str> = policy.split("; ").collect();
    let fixed = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ];
    for directive in fixed {
        assert!(directives.contains(&directive), "{directive} missing from {policy}");
    }
    let others: Vec<&&str> = directives.iter().filter(|directive| !fixed.contains(directive)).collect();
    assert!(
        others.len() == 1 && others[0].starts_with("connect-src 'self'"),
        "nothing but the connections is left open: {policy}"
    );
    assert!(!policy.contains("unsafe"), "{policy}");
    assert!(!page.text.contains("<script>") && !page.text.contains("style="), "inline script or style in the page");
    if !TestApp::is_external() {
        // The app under test names its Pushpin as the gateway (tests/src/app: web_socket_origin).
        let gateway = app().ws_url("");
        assert!(directives.contains(&format!("connect-src 'self' {gateway}").as_str()), "{policy}");
        assert!(page.text.contains(&format!("content=\"{gateway}\"")), "the page does not name {gateway}");
    }
    let revalidated = app().request("GET", "/", &[("if-none-match", page.header("etag").unwrap())], None);
    assert_eq!(revalidated.status, 304);
}

#[test]
fn the_files_are_served_by_the_app_and_cached_for_good() {
    let page = app().get("/", None);
    let files: Vec<&str> = page.text.split('"').filter(|part| part.starts_with("/app/")).collect();
    assert_eq!(files.len(), 3, "script, styles and icon: {files:?}");
    for file in files {
        let asset = app().get(file, None);
        assert_eq!(asset.status, 200, "{file}");
        assert_eq!(asset.header("cache-control"), Some("public, max-age=31536000, immutable"), "{file}");
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"), "{file}");
    }
    let missing = app().get("/app/main-AAAAAAAA.js", None);
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    let wrong_method = app().request("POST", "/", &[], None);
    assert_eq!((wrong_method.status, wrong_method.code()), (405, "method_not_allowed"));
    // `/` is an exact route: unknown paths stay the API's JSON 404, not the page.
    let unknown = app().get("/rooms/7", None);
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
}

#[test]
fn every_error_code_of_the_api_has_a_message_for_people() {
    let spec: Value = serde_norway::from_str(&std::fs::read_to_string(workspace_root().join("openapi.yaml")).unwrap())
        .expect("openapi.yaml is YAML");
    let mut codes = BTreeSet::new();
    collect_error_codes(&spec, &mut codes);
    assert!(codes.len() > 50, "found only {codes:?}");
    let messages = std::fs::read_to_string(web_dir().join("src/errors.ts")).expect("web/src/errors.ts");
    let missing: Vec<&String> = codes.iter().filter(|code| !messages.contains(&format!("\n  {code}: '"))).collect();
    assert!(missing.is_empty(), "web/src/errors.ts has no message for {missing:?}");
}

/// Every value of every `code: {enum: [...]}` in the spec (error envelopes and WebSocket errors).
fn collect_error_codes(value: &Value, codes: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(values) = map.get("code").and_then(|code| code["enum"].as_array()) {
                codes.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            map.values().for_each(|child| collect_error_codes(child, codes));
        }
        Value::Array(items) => items.iter().for_each(|child| collect_error_codes(child, codes)),
        _ => {}
    }
}

#[test]
fn the_client_logic_passes_its_unit_tests() {
    run_node(&["unit-tests.mjs"], &[]);
}

#[test]
fn two_people_chat_and_pay_in_chromium() {
    let screenshots = target_dir().join("web-screenshots");
    let chromium = Chromium::get().binary.display().to_string();
    run_node(
        &["e2e/run.mjs"],
        &[
            ("SENDINCHAT_BASE_URL", app().url("")),
            ("SENDINCHAT_ADMIN_TOKEN", app().admin_token().to_owned()),
            ("CHROMIUM", chromium),
            ("SCREENSHOT_DIR", screenshots.display().to_string()),
        ],
    );
    eprintln!("screenshots: {}", screenshots.display());
}

/// Runs a script of web/ with Node.js, its output going straight to the test run's (the e2e
/// test prints its timings and sizes there), and fails unless it succeeds.
fn run_node(arguments: &[&str], environment: &[(&str, String)]) {
    assert!(
        web_dir().join("node_modules/.bin/esbuild").exists(),
        "web/node_modules is missing: run scripts/build-components.sh --install-only (scripts/test.sh does)"
    );
    let status = Command::new("node")
        .args(arguments)
        .current_dir(web_dir())
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .status()
        .expect("run node (Node.js 20 or later)");
    assert!(status.success(), "node {arguments:?} failed ({status}); see its output above");
}
