//! Embeds the web client that scripts/build-web-client.sh builds into web/dist/: every file
//! listed in web/dist/files.json (written by web/build.mjs with each file's route, media type,
//! caching and ETag) becomes an entry of `$OUT_DIR/files.rs`, so serving costs nothing at run time.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(serde::Deserialize)]
struct Entry {
    route: String,
    file: String,
    media_type: String,
    /// Content-hashed names: cacheable for good.
    immutable: bool,
    etag: String,
}

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = crate_dir.join("../../web/dist");
    let manifest = dist.join("files.json");
    println!("cargo:rerun-if-changed={}", manifest.display());
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|error| {
        panic!(
            "{}: {error}. The web component embeds the client built from web/: run \
             scripts/build-web-client.sh (scripts/build-components.sh does when it builds web)",
            manifest.display()
        )
    });
    let entries: Vec<Entry> = serde_json::from_str(&text).expect("web/dist/files.json is what web/build.mjs writes");
    let mut code = String::from("static FILES: &[File] = &[\n");
    for entry in &entries {
        let path = existing(&dist.join(&entry.file));
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            code,
            "    File {{ route: {:?}, body: include_bytes!({:?}), media_type: {:?}, immutable: {}, etag: {:?} }},",
            entry.route,
            path.display().to_string(),
            entry.media_type,
            entry.immutable,
            format!("\"{}\"", entry.etag),
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("files.rs");
    std::fs::write(&out, code).unwrap_or_else(|error| panic!("{}: {error}", out.display()));
}

fn existing(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|error| panic!("{}: {error}; rebuild with scripts/build-web-client.sh", path.display()))
}
