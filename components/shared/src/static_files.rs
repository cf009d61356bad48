//! Files served as they are (pages, scripts, styles embedded at build time), validated by ETag:
//! a client that names the current ETag in `If-None-Match` gets 304 and no body.
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use spin_sdk::http::FullBody;

use crate::response::{Reply, complete_reply};

/// A file's bytes and how to serve them.
pub struct StaticFile<'a> {
    pub body: Bytes,
    pub media_type: &'static str,
    pub cache_control: &'static str,
    /// Quoted, as the header carries it.
    pub etag: &'a str,
}

/// 200 with the file, or 304 when `request_headers` name its ETag.
pub fn file_reply(file: StaticFile<'_>, request_headers: &HeaderMap) -> Reply {
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| etag_matches(tags, file.etag));
    let mut reply = if fresh {
        let mut reply = http::Response::new(FullBody::new(Bytes::new()));
        *reply.status_mut() = StatusCode::NOT_MODIFIED;
        reply
    } else {
        complete_reply(StatusCode::OK, file.body)
    };
    let headers = reply.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_str(file.etag).expect("ETags are visible ASCII"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(file.cache_control));
    if !fresh {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.media_type));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    reply
}

/// Whether an `If-None-Match` value (`*` or a list of possibly weak tags) names `etag`.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> StaticFile<'static> {
        StaticFile {
            body: Bytes::from_static(b"body"),
            media_type: "text/css; charset=utf-8",
            cache_control: "no-cache",
            etag: "\"00112233aabbccdd\"",
        }
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = "\"00112233aabbccdd\"";
        assert!(etag_matches(etag, etag));
        assert!(etag_matches("\"other\", W/\"00112233aabbccdd\"", etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches("\"other\"", etag));
        assert!(!etag_matches("", etag));
    }

    #[test]
    fn a_matching_etag_gets_304_without_body_and_others_get_the_file() {
        let mut headers = HeaderMap::new();
        let full = file_reply(file(), &headers);
        assert_eq!(full.status(), StatusCode::OK);
        assert_eq!(full.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(full.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"00112233aabbccdd\""));
        let revalidated = file_reply(file(), &headers);
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(revalidated.headers()[header::ETAG], "\"00112233aabbccdd\"");
        assert!(revalidated.headers().get(header::CONTENT_TYPE).is_none());
    }
}
