//! `allowed_outbound_hosts`: which scheme/host/port a component may reach, checked before the
//! host opens any Postgres, Redis or HTTP connection on its behalf. Follows Spin's rules:
//! `scheme://host[:port]`, `*` for any scheme, host or port, `*.domain` for subdomains, a port
//! range `a..b` (end exclusive), and a scheme's well-known port when none is given.
//!
//! What is checked is the target the connecting client parsed from the guest's address (hyper's
//! URI, the Redis client's connection info, tokio-postgres' config), never a second reading of
//! the text: two parsers can disagree on where a URL's host is (`http://a/x@b`), and the check
//! must see what will be dialled.

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

    /// Whether a connection by `scheme` to `host` (a name, an IPv4 address, or an IPv6 address
    /// with or without brackets) on `port` (the scheme's well-known port when `None`) is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        let Ok(host) = Host::parse(&host) else {
            return false;
        };
        let target = Target { scheme: scheme.to_ascii_lowercase(), host, port };
        self.entries.iter().any(|entry| entry.allows(&target))
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

    fn allows(&self, target: &Target) -> bool {
        self.scheme.as_ref().is_none_or(|scheme| *scheme == target.scheme)
            && self.host.allows(&target.host)
            && self.port.allows(target.port.or_else(|| well_known_port(&target.scheme)))
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

    fn allows(&self, host: &Host) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::AnySubdomain(_), _) => false,
            (Self::Exact(expected), host) => host == expected,
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

/// The scheme, host and port a client is about to connect to.
struct Target {
    scheme: String,
    host: Host,
    port: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|entry| entry.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_entries_match_scheme_host_and_port() {
        let allowed = hosts(&["postgres://127.0.0.1:5432", "http://127.0.0.1:5561", "redis://[::1]:6379"]);
        assert!(allowed.allows("postgres", "127.0.0.1", Some(5432)));
        assert!(allowed.allows("postgres", "127.0.0.1", None), "the well-known port");
        assert!(allowed.allows("HTTP", "127.0.0.1", Some(5561)));
        assert!(allowed.allows("redis", "::1", Some(6379)), "IPv6 as a client library gives it");
        assert!(allowed.allows("redis", "[::1]", Some(6379)));
        assert!(!allowed.allows("postgres", "127.0.0.1", Some(5433)));
        assert!(!allowed.allows("redis", "127.0.0.1", Some(5432)));
        assert!(!allowed.allows("http", "127.0.0.2", Some(5561)));
        assert!(!allowed.allows("http", "localhost", Some(5561)));
        assert!(!allowed.allows("http", "127.0.0.1@evil.example", Some(5561)), "not a host");
    }

    #[test]
    fn wildcards_ranges_and_default_ports() {
        let allowed = hosts(&["*://*.example.com:*", "redis://cache", "http://10.0.0.1:8000..8010"]);
        assert!(allowed.allows("https", "api.example.com", None));
        assert!(allowed.allows("https", "API.Example.com", Some(8443)), "names compare in lower case");
        assert!(!allowed.allows("https", "example.com", None));
        assert!(allowed.allows("redis", "cache", None));
        assert!(allowed.allows("redis", "cache", Some(6379)));
        assert!(!allowed.allows("redis", "cache", Some(6380)));
        assert!(allowed.allows("http", "10.0.0.1", Some(8009)));
        assert!(!allowed.allows("http", "10.0.0.1", Some(8010)));
    }

    #[test]
    fn empty_rendered_entries_are_skipped_and_bad_ones_rejected() {
        assert!(!hosts(&["", "http://"]).allows("http", "127.0.0.1", Some(80)));
        for bad in ["127.0.0.1:5432", "postgres://h/path", "ftp://h", "http://a*b.com", "http://self"] {
            assert!(AllowedHosts::parse(&[bad.to_owned()]).is_err(), "{bad:?} should be rejected");
        }
    }
}
