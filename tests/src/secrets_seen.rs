//! The secrets this run of the suite handled, and every line its processes logged, written to
//! `$SENDINCHAT_TEST_LOG_DIR` when it is set, so that one scan after the whole suite
//! (`scripts/scan-test-logs.sh`, a phase of `scripts/test.sh`) proves that none of them reached a
//! log: passwords, access and refresh tokens, operator tokens, idempotency keys.
//!
//! Secrets are taken where every request passes (`TestApp::request`), not where a test happens
//! to make one, so no test can use a secret the scan does not know.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// Shorter values (a deliberately bad password, "x") would match innocent log text.
const SECRET_CHARS_MIN: usize = 12;

const SECRET_HEADERS: [&str; 4] = ["authorization", "x-operator-token", "idempotency-key", "cookie"];
const SECRET_FIELDS: [&str; 5] = ["password", "current_password", "new_password", "access_token", "refresh_token"];

fn log_dir() -> Option<PathBuf> {
    std::env::var_os("SENDINCHAT_TEST_LOG_DIR").map(PathBuf::from)
}

fn append_only(path: PathBuf) -> Option<Mutex<File>> {
    OpenOptions::new().create(true).append(true).open(path).ok().map(Mutex::new)
}

fn write_line(file: &Mutex<File>, line: &str) {
    let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = writeln!(file, "{line}");
}

/// Records the secrets in a request's headers, or in a JSON or form body.
pub fn note_request(headers: &[(&str, &str)], body: Option<&[u8]>) {
    for (name, value) in headers {
        if SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            note(value.strip_prefix("Bearer ").unwrap_or(value));
        }
    }
    if let Some(body) = body {
        note_fields(&serde_json::from_slice(body).unwrap_or(Value::Null));
        for (name, value) in form_pairs(body) {
            if SECRET_FIELDS.contains(&name.as_str()) {
                note(&value);
            }
        }
    }
}

/// Records the secrets in a response body (tokens a login or refresh hands out).
pub fn note_response(body: &Value) {
    note_fields(body);
}

fn note_fields(body: &Value) {
    for field in SECRET_FIELDS {
        if let Some(value) = body[field].as_str() {
            note(value);
        }
    }
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let Ok(text) = std::str::from_utf8(body) else { return Vec::new() };
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.replace('+', " ")))
        .filter(|(_, value)| !value.contains('%'))
        .collect()
}

fn note(secret: &str) {
    static FILE: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    let secret = secret.trim();
    if secret.chars().count() < SECRET_CHARS_MIN || secret.contains('\n') {
        return;
    }
    if let Some(file) = FILE.get_or_init(|| append_only(log_dir()?.join("secrets.txt"))) {
        write_line(file, secret);
    }
}

/// The file a child process's log lines are also written to, if the scan is on.
pub(crate) fn process_log(pid: u32) -> Option<Mutex<File>> {
    append_only(log_dir()?.join(format!("process-{}-{pid}.log", std::process::id())))
}

pub(crate) fn write_process_line(file: &Mutex<File>, line: &str) {
    write_line(file, line);
}
