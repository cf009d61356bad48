//! The request as Spin hands it to a component: an absolute URI and the `spin-*` headers.
//!
//! As in Spin, the client's own headers come first and the `spin-*` headers are appended, the
//! `Connection` header is removed, and a header value that is not UTF-8 fails the request
//! (Spin fails it too; the host answers 400 where Spin would answer 500).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Uri, header};

use crate::routing::RouteMatch;

/// Rewrites `uri` and `headers` in place for the component that `route` selected.
pub fn prepare(uri: &mut Uri, headers: &mut HeaderMap, route: &RouteMatch, client: SocketAddr) -> anyhow::Result<()> {
    headers.remove(header::CONNECTION);
    // UTF-8, not just visible ASCII (`HeaderValue::to_str`): Spin passes `×ø` through.
    if let Some((name, _)) = headers.iter().find(|(_, value)| std::str::from_utf8(value.as_bytes()).is_err()) {
        bail!("header {name} is not valid UTF-8");
    }
    *uri = absolute_uri(uri, headers)?;
    let host =
        headers.get(header::HOST).and_then(|host| std::str::from_utf8(host.as_bytes()).ok()).unwrap_or("localhost");
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let full_url = format!("http://{host}{path_and_query}");
    let mut spin_headers = vec![
        ("spin-path-info".to_owned(), route.path_info()),
        ("spin-full-url".to_owned(), full_url),
        ("spin-matched-route".to_owned(), route.based_route.clone()),
        ("spin-base-path".to_owned(), "/".to_owned()),
        ("spin-raw-component-route".to_owned(), route.raw_route.clone()),
        ("spin-component-route".to_owned(), route.raw_route_prefix().to_owned()),
        ("spin-client-addr".to_owned(), client.to_string()),
    ];
    for (name, value) in &route.parameters {
        // Spin builds SPIN_PATH_MATCH_<NAME> and turns `_` into `-`, so `:room_id` becomes
        // `spin-path-match-room-id`.
        let name = format!("spin-path-match-{}", name.to_ascii_lowercase().replace('_', "-"));
        spin_headers.push((name, value.clone()));
    }
    for (name, value) in spin_headers {
        // Like Spin, a header that cannot be represented is left out rather than failing.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    Ok(())
}

/// The request URI with scheme and authority, the authority taken from the `Host` header (which
/// must agree with an absolute request target).
fn absolute_uri(uri: &Uri, headers: &HeaderMap) -> anyhow::Result<Uri> {
    let from_header = headers
        .get(header::HOST)
        .map(|host| -> anyhow::Result<Authority> {
            let host = host.to_str().context("'Host' header is not valid UTF-8")?;
            host.parse().context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let mut parts = uri.clone().into_parts();
    let authority = match (from_header, parts.authority.take()) {
        (None, None) => bail!("no 'Host' header present in request"),
        (Some(authority), None) | (None, Some(authority)) => authority,
        (Some(from_header), Some(from_uri)) if from_header != from_uri => {
            bail!("authority in 'Host' header does not match authority in URI")
        }
        (Some(authority), Some(_)) => authority,
    };
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some("/".parse().expect("static path"));
    }
    Ok(Uri::from_parts(parts)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{HttpRoute, Router};

    fn prepared(route: &str, uri: &str) -> (Uri, HeaderMap) {
        let router = Router::build(&[HttpRoute { route: route.to_owned(), component: "probe".to_owned() }]).unwrap();
        let mut uri: Uri = uri.parse().unwrap();
        let matched = router.route(uri.path()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.test:3000"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        prepare(&mut uri, &mut headers, &matched, "127.0.0.1:4444".parse().unwrap()).unwrap();
        (uri, headers)
    }

    #[test]
    fn wildcard_route_headers_match_spin() {
        let (uri, headers) = prepared("/chat/...", "/chat/rooms/7?x=1");
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(uri.to_string(), "http://example.test:3000/chat/rooms/7?x=1");
        assert_eq!(header("spin-full-url"), "http://example.test:3000/chat/rooms/7?x=1");
        assert_eq!(header("spin-path-info"), "/rooms/7");
        assert_eq!(header("spin-matched-route"), "/chat/...");
        assert_eq!(header("spin-raw-component-route"), "/chat/...");
        assert_eq!(header("spin-component-route"), "/chat");
        assert_eq!(header("spin-base-path"), "/");
        assert_eq!(header("spin-client-addr"), "127.0.0.1:4444");
        assert!(headers.get(header::CONNECTION).is_none());
    }

    #[test]
    fn named_segments_become_path_match_headers() {
        let (_, headers) = prepared("/rooms/:room_id", "/rooms/42");
        assert_eq!(headers.get("spin-path-match-room-id").unwrap(), "42");
        assert_eq!(headers.get("spin-path-info").unwrap(), "");
    }
}
