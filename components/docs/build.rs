//! Embeds what the `docs` component serves: the repository's openapi.yaml, the pages in static/,
//! and the UI files of the npm packages that scripts/fetch-docs-assets.sh unpacks into vendor/.
//!
//! Writes `$OUT_DIR/files.rs`, one `File` per route, each with its bytes (`include_bytes!`), media
//! type, caching and an ETag computed here, so serving a file costs nothing at run time.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How long a client may keep a file before asking again.
#[derive(Clone, Copy)]
enum Caching {
    /// Pages, their scripts and the spec change with every release: revalidate (cheap, ETag).
    Revalidate,
    /// Vendor files change only with their pinned npm versions.
    LongLived,
}

/// Route, source (relative to this crate), media type, caching.
const FILES: &[(&str, &str, &str, Caching)] = &[
    ("/openapi.yaml", "../../openapi.yaml", "application/yaml", Caching::Revalidate),
    ("/docs", "static/docs.html", "text/html; charset=utf-8", Caching::Revalidate),
    ("/docs/swagger-initializer.js", "static/swagger-initializer.js", JAVASCRIPT, Caching::Revalidate),
    ("/docs/swagger-ui.css", "vendor/swagger-ui-dist/swagger-ui.css", "text/css; charset=utf-8", Caching::LongLived),
    ("/docs/swagger-ui-bundle.js", "vendor/swagger-ui-dist/swagger-ui-bundle.js", JAVASCRIPT, Caching::LongLived),
    ("/docs/favicon-32x32.png", "vendor/swagger-ui-dist/favicon-32x32.png", "image/png", Caching::LongLived),
    ("/redoc", "static/redoc.html", "text/html; charset=utf-8", Caching::Revalidate),
    ("/redoc/redoc-initializer.js", "static/redoc-initializer.js", JAVASCRIPT, Caching::Revalidate),
    ("/redoc/redoc.standalone.js", "vendor/redoc/bundles/redoc.standalone.js", JAVASCRIPT, Caching::LongLived),
];

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut code = String::from("static FILES: &[File] = &[\n");
    for (route, source, media_type, caching) in FILES {
        let path = canonical(&crate_dir.join(source));
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let cache_control = match caching {
            Caching::Revalidate => "no-cache",
            Caching::LongLived => "public, max-age=86400",
        };
        writeln!(
            code,
            "    File {{ route: {route:?}, body: include_bytes!({:?}), media_type: {media_type:?}, \
             cache_control: {cache_control:?}, etag: \"\\\"{:016x}\\\"\" }},",
            path.display().to_string(),
            fnv1a_64(&bytes),
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("files.rs");
    std::fs::write(&out, code).unwrap_or_else(|error| panic!("{}: {error}", out.display()));
}

/// The absolute path of a file that must exist; a missing vendor file means the npm packages were
/// never fetched, which the message says how to fix.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|error| {
        panic!(
            "{}: {error}. The docs component embeds npm packages fetched at build time: run \
             scripts/fetch-docs-assets.sh (scripts/build-components.sh does when it builds docs)",
            path.display()
        )
    })
}

/// FNV-1a: a content fingerprint for ETags. Not a security measure: a collision would only keep
/// a stale copy in a client's cache.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}
