//! The app's one page, as this deployment serves it: the built index.html with the WebSocket
//! origin filled in, and the Content-Security-Policy that lets it reach exactly this origin (the
//! API) and that WebSocket origin.
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::OnceLock;

use bytes::Bytes;
use http::HeaderValue;
use shared::ApiError;
use shared::config::cached;

use crate::settings;

/// Where the page's placeholder stands in web/index.html.
const ORIGIN_PLACEHOLDER: &str = "@WEB_SOCKET_ORIGIN@";

/// Where browsers open chat WebSockets (the realtime gateway, Pushpin): the `web_socket_origin`
/// variable, `ws://host:port` or `wss://host:port`. Empty means the page's own origin, for
/// deployments where one proxy serves both.
#[derive(Debug, PartialEq, Eq)]
pub struct WebSocketOrigin(Option<String>);

impl FromStr for WebSocketOrigin {
    type Err = &'static str;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let origin = raw.trim().trim_end_matches('/');
        if origin.is_empty() {
            return Ok(Self(None));
        }
        let authority = origin
            .strip_prefix("ws://")
            .or_else(|| origin.strip_prefix("wss://"))
            .ok_or("expected ws://host[:port] or wss://host[:port]")?;
        // Host names, IPv4 and bracketed IPv6 addresses, and a port: nothing that could end the
        // HTML attribute or the policy directive it is written into.
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
        if authority.is_empty() || !authority.chars().all(allowed) {
            return Err("expected ws://host[:port] or wss://host[:port], without a path");
        }
        Ok(Self(Some(origin.to_owned())))
    }
}

impl fmt::Display for WebSocketOrigin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0.as_deref().unwrap_or(""))
    }
}

impl WebSocketOrigin {
    /// Scripts only from this origin (no inline script, no eval) and no HTML written by script
    /// (Trusted Types with no policy); connections to this origin (the API) and the gateway.
    fn content_security_policy(&self) -> String {
        let gateway = self.0.as_deref().map(|origin| format!(" {origin}")).unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'{gateway}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
             require-trusted-types-for 'script'; trusted-types 'none'"
        )
    }
}

pub struct Page {
    pub html: Bytes,
    /// Quoted: the built file's and the origin's fingerprint together.
    pub etag: String,
    pub security_policy: HeaderValue,
}

static PAGE: OnceLock<Page> = OnceLock::new();

/// The page for `template` (the built index.html and its ETag), made once per instance.
pub async fn load(template: &'static [u8], template_etag: &'static str) -> Result<&'static Page, ApiError> {
    cached(&PAGE, async || Ok(render(template, template_etag, &settings::load().await?.web_socket_origin))).await
}

fn render(template: &[u8], template_etag: &str, origin: &WebSocketOrigin) -> Page {
    let template = std::str::from_utf8(template).expect("web/dist/index.html is UTF-8");
    let mut hasher = DefaultHasher::new();
    (template_etag, origin.to_string()).hash(&mut hasher);
    Page {
        html: Bytes::from(template.replace(ORIGIN_PLACEHOLDER, &origin.to_string())),
        etag: format!("\"{:016x}\"", hasher.finish()),
        security_policy: HeaderValue::from_str(&origin.content_security_policy())
            .expect("a parsed origin holds only visible ASCII"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_websocket_schemes_with_a_host_and_nothing_else() {
        for good in ["ws://127.0.0.1:7999", "wss://realtime.example.com", "wss://[::1]:443/", "  ws://a-b.c "] {
            assert!(good.parse::<WebSocketOrigin>().is_ok(), "{good}");
        }
        for bad in [
            "http://example.com",
            "ws://",
            "ws://example.com/chat",
            "ws://a b",
            "ws://x; script-src *",
            "ws://x\" onload=\"",
            "wss://x,y",
        ] {
            assert!(bad.parse::<WebSocketOrigin>().is_err(), "{bad}");
        }
        assert_eq!("".parse::<WebSocketOrigin>(), Ok(WebSocketOrigin(None)));
    }

    #[test]
    fn the_policy_allows_the_gateway_and_no_inline_script() {
        let gateway: WebSocketOrigin = "ws://127.0.0.1:7999".parse().unwrap();
        let policy = gateway.content_security_policy();
        assert!(policy.contains("connect-src 'self' ws://127.0.0.1:7999;"), "{policy}");
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        let same_origin = WebSocketOrigin(None).content_security_policy();
        assert!(same_origin.contains("connect-src 'self';"), "{same_origin}");
    }

    #[test]
    fn the_page_names_the_origin_and_its_etag_changes_with_it() {
        let template = br#"<meta name="sendinchat-web-socket-origin" content="@WEB_SOCKET_ORIGIN@">"#;
        let one = render(template, "1", &"ws://a:1".parse().unwrap());
        let other = render(template, "1", &"ws://b:1".parse().unwrap());
        assert_eq!(&one.html[..], br#"<meta name="sendinchat-web-socket-origin" content="ws://a:1">"#);
        assert_ne!(one.etag, other.etag);
        assert_eq!(one.etag.len(), 18);
        assert_eq!(render(template, "1", &"ws://a:1".parse().unwrap()).etag, one.etag);
    }
}
