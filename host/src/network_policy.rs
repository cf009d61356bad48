//! `allowed_outbound_hosts`: which scheme/host/port a component may reach, checked before the
//! host opens any Postgres, Redis or HTTP connection on its behalf. Follows Spin's rules:
//! `scheme://host[:port]`, `*` for any scheme, host or port, `*.domain` for subdomains, a port
//! range `a..b` (end exclusive), and a scheme's well-known port when none is given.

use std::ops::Range;

use anyhow::{Context, bail};
use url::Host;

#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

#[derive(Debug, Clone)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    Exact(Host),
}

#[derive(Debug, Clone)]
enum PortPattern {
    Any,
    Exact(u16),
    Range(Range<u16>),
}

impl AllowedHosts {
    /// Parses the rendered entries of one component. As in Spin, an entry that a template
    /// rendered empty (or to a bare `http://`) is skipped, so a variable can switch an optional
    /// endpoint off.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let entries = entries
            .iter()
            .filter(|entry| !matches!(entry.trim(), "" | "http://" | "https://"))
            .map(|entry| {
                AllowedHost::parse(entry).with_context(|| format!("invalid allowed_outbound_hosts entry {entry:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { entries })
    }

    /// Whether a connection to `url` is allowed. `url` may omit the scheme (e.g. `host:port`
    /// taken from a Postgres connection string); `default_scheme` is assumed then.
    pub fn allows(&self, url: &str, default_scheme: &str) -> bool {
        match OutboundUrl::parse(url, default_scheme) {
            Ok(url) => self.entries.iter().any(|entry| entry.allows(&url)),
            Err(_) => false,
        }
    }
}

impl AllowedHost {
    fn parse(entry: &str) -> anyhow::Result<Self> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("expected <scheme>://<host>[:<port>], e.g. postgres://127.0.0.1:5432");
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            bail!("must not include a path");
        }
        let (host, port) = split_host_and_port(rest);
        Ok(Self {
            port: PortPattern::parse(port, scheme)?,
            scheme: parse_scheme(scheme)?,
            host: HostPattern::parse(host)?,
        })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        self.scheme.as_ref().is_none_or(|scheme| *scheme == url.scheme)
            && self.host.allows(&url.host)
            && self.port.allows(url.port.or_else(|| well_known_port(&url.scheme)))
    }
}

/// Splits off a trailing `:port`, leaving bracketed IPv6 addresses whole.
fn split_host_and_port(authority: &str) -> (&str, &str) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) => (host, port),
        _ => (authority, ""),
    }
}

fn parse_scheme(scheme: &str) -> anyhow::Result<Option<String>> {
    if scheme == "*" {
        return Ok(None);
    }
    if scheme.is_empty() || !scheme.chars().all(char::is_alphabetic) {
        bail!("scheme {scheme:?} may contain only letters, or be *");
    }
    Ok(Some(scheme.to_owned()))
}

impl HostPattern {
    fn parse(host: &str) -> anyhow::Result<Self> {
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" || host.ends_with(".spin.internal") {
            bail!("requests to the app itself (self, *.spin.internal) are not supported by this host");
        }
        if host.contains('/') {
            bail!("CIDR ranges are not supported by this host; list the addresses");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
            return match Host::parse(domain).with_context(|| format!("invalid wildcard host {host:?}"))? {
                Host::Domain(domain) => Ok(Self::AnySubdomain(format!(".{domain}"))),
                _ => bail!("wildcard suffix must be a domain"),
            };
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as subdomains");
        }
        Ok(Self::Exact(Host::parse(host).with_context(|| format!("invalid host {host:?}"))?))
    }

    fn allows(&self, host: &str) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::AnySubdomain(_), _) => false,
            (Self::Exact(expected), host) => host == *expected,
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> anyhow::Result<Self> {
        if port.is_empty() {
            return well_known_port(scheme)
                .map(Self::Exact)
                .with_context(|| format!("no port given and scheme {scheme:?} has no well-known port"));
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        if let Some((start, end)) = port.split_once("..") {
            let start = start.parse().with_context(|| format!("port range {port:?} contains a non-number"))?;
            let end = end.parse().with_context(|| format!("port range {port:?} contains a non-number"))?;
            return Ok(Self::Range(start..end));
        }
        Ok(Self::Exact(port.parse().with_context(|| format!("port {port:?} is not a number"))?))
    }

    fn allows(&self, port: Option<u16>) -> bool {
        match (self, port) {
            (Self::Any, _) => true,
            (Self::Exact(expected), Some(port)) => *expected == port,
            (Self::Range(range), Some(port)) => range.contains(&port),
            (_, None) => false,
        }
    }
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The scheme, host and port of a connection target.
struct OutboundUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OutboundUrl {
    fn parse(text: &str, default_scheme: &str) -> anyhow::Result<Self> {
        let text = encode_userinfo(text);
        let parsed = match url::Url::parse(&text) {
            Ok(url) if url.has_host() => url,
            _ => url::Url::parse(&format!("{default_scheme}://{text}"))?,
        };
        Ok(Self {
            scheme: parsed.scheme().to_owned(),
            host: parsed.host_str().context("no host")?.to_owned(),
            port: parsed.port(),
        })
    }
}

/// Percent-encodes the `user:password` part of a URL, so that a password containing URL
/// syntax (`/`, `#`, `?`) cannot change which host the URL names.
fn encode_userinfo(text: &str) -> String {
    let authority_start = text.find("://").map_or(0, |index| index + 3);
    let Some(at) = text[authority_start..].rfind('@').map(|index| index + authority_start) else {
        return text.to_owned();
    };
    let userinfo: String = url::form_urlencoded::byte_serialize(&text.as_bytes()[authority_start..at]).collect();
    format!("{}{userinfo}{}", &text[..authority_start], &text[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|entry| entry.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_entries_match_scheme_host_and_port() {
        let allowed = hosts(&["postgres://127.0.0.1:5432", "http://127.0.0.1:5561"]);
        assert!(allowed.allows("127.0.0.1:5432", "postgres"));
        assert!(allowed.allows("postgres://user:p%40ss@127.0.0.1:5432/db", "postgres"));
        assert!(allowed.allows("http://127.0.0.1:5561/publish/", "http"));
        assert!(!allowed.allows("127.0.0.1:5433", "postgres"));
        assert!(!allowed.allows("redis://127.0.0.1:5432", "redis"));
        assert!(!allowed.allows("http://127.0.0.2:5561/", "http"));
    }

    #[test]
    fn a_password_with_url_syntax_cannot_smuggle_another_host() {
        let allowed = hosts(&["redis://127.0.0.1:6379"]);
        assert!(allowed.allows("redis://:pa/ss@127.0.0.1:6379", "redis"));
        assert!(!allowed.allows("redis://:x@127.0.0.1:6379@evil.example:6379", "redis"));
    }

    #[test]
    fn wildcards_ranges_and_default_ports() {
        let allowed = hosts(&["*://*.example.com:*", "redis://cache", "http://10.0.0.1:8000..8010"]);
        assert!(allowed.allows("https://api.example.com/x", "https"));
        assert!(!allowed.allows("https://example.com/x", "https"));
        assert!(allowed.allows("redis://cache", "redis"));
        assert!(allowed.allows("redis://cache:6379", "redis"));
        assert!(!allowed.allows("redis://cache:6380", "redis"));
        assert!(allowed.allows("http://10.0.0.1:8009/", "http"));
        assert!(!allowed.allows("http://10.0.0.1:8010/", "http"));
    }

    #[test]
    fn empty_rendered_entries_are_skipped_and_bad_ones_rejected() {
        assert!(!hosts(&["", "http://"]).allows("http://127.0.0.1:80", "http"));
        for bad in ["127.0.0.1:5432", "postgres://h/path", "ftp://h", "http://a*b.com", "http://self"] {
            assert!(AllowedHosts::parse(&[bad.to_owned()]).is_err(), "{bad:?} should be rejected");
        }
    }
}
