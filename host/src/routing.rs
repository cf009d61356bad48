//! HTTP routing with Spin's rules.
//!
//! Spin routes with the `routefinder` crate (0.5): a route is split into segments at `/` and `.`
//! (`:name` parameters, a trailing `/...` wildcard, literals); routes are ordered so that at each
//! segment a literal beats a parameter and a parameter beats a wildcard, and the first route in
//! that order that matches the path wins. Routes that tie keep manifest order; a route repeated
//! in the manifest keeps its first position but takes the later component. This module follows
//! those rules exactly so that a request reaches the same component here as under `spin up`.

use std::cmp::Ordering;

use anyhow::{Context, bail};

use crate::logging;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Slash,
    Dot,
    Literal(String),
    Parameter(String),
    Wildcard,
}

impl Segment {
    /// How specific a segment is when two routes are compared position by position. As in
    /// routefinder, any two literals (or two parameters) are equally specific, and a separator
    /// facing a real segment loses to it.
    fn specificity(&self) -> u8 {
        match self {
            Segment::Slash | Segment::Dot => 0,
            Segment::Wildcard => 1,
            Segment::Parameter(_) => 2,
            Segment::Literal(_) => 3,
        }
    }
}

/// One routable `[[trigger.http]]` of the manifest (private routes are dropped, as Spin drops
/// them).
#[derive(Debug, Clone)]
pub struct HttpRoute {
    pub route: String,
    pub component: String,
}

/// A route as written in the manifest and as normalised for matching.
#[derive(Debug, Clone)]
struct RouteEntry {
    component: String,
    /// As written in the manifest, e.g. `/users/...`.
    raw_route: String,
    /// Normalised: leading slash added, trailing slash removed (`/` becomes empty).
    based_route: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
pub struct Router {
    /// In matching order: the first entry that matches a path is the best match.
    entries: Vec<RouteEntry>,
}

/// The outcome of routing one request path.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    pub component: String,
    pub raw_route: String,
    pub based_route: String,
    /// `:name` segments and what they matched, in route order.
    pub parameters: Vec<(String, String)>,
    /// What the trailing wildcard matched, if the route has one.
    wildcard: Option<String>,
    path_ends_with_slash: bool,
}

impl Router {
    pub fn build(routes: &[HttpRoute]) -> anyhow::Result<Self> {
        let mut entries: Vec<RouteEntry> = Vec::new();
        for route in routes {
            if let Some(existing) = entries.iter_mut().find(|entry| entry.raw_route == route.route) {
                logging::warn(format_args!(
                    "route {:?} is declared twice; component {:?} replaces {:?}",
                    route.route, route.component, existing.component
                ));
                existing.component = route.component.clone();
                continue;
            }
            entries.push(RouteEntry::parse(route).with_context(|| {
                format!("error parsing route {:?} of component {:?}", route.route, route.component)
            })?);
        }
        // A stable sort keeps manifest order among routes of equal specificity, as inserting
        // into routefinder's ordered map does.
        entries.sort_by(|a, b| compare_specificity(&a.segments, &b.segments));
        Ok(Self { entries })
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let trimmed = path.trim_matches('/');
        self.entries.iter().find_map(|entry| {
            let captures = match_segments(&entry.segments, trimmed)?;
            Some(entry.to_match(captures, path.ends_with('/')))
        })
    }

    /// `(route, component)` pairs in matching order, for the start-up listing.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|entry| (entry.raw_route.as_str(), entry.component.as_str()))
    }
}

impl RouteEntry {
    fn parse(route: &HttpRoute) -> anyhow::Result<Self> {
        let based_route = normalise(&route.route);
        let pattern = match based_route.strip_suffix("/...") {
            Some(prefix) => format!("{prefix}/*"),
            None => based_route.clone(),
        };
        Ok(Self {
            component: route.component.clone(),
            raw_route: route.route.clone(),
            based_route,
            segments: parse_segments(&pattern)?,
        })
    }

    fn to_match(&self, captures: Captures, path_ends_with_slash: bool) -> RouteMatch {
        let names = self.segments.iter().filter_map(|segment| match segment {
            Segment::Parameter(name) => Some(name.clone()),
            _ => None,
        });
        RouteMatch {
            component: self.component.clone(),
            raw_route: self.raw_route.clone(),
            based_route: self.based_route.clone(),
            parameters: names.zip(captures.parameters).collect(),
            wildcard: captures.wildcard,
            path_ends_with_slash,
        }
    }
}

impl RouteMatch {
    /// The `spin-path-info` value: the part of the path the wildcard matched, with a leading
    /// slash, and the request's trailing slash kept.
    pub fn path_info(&self) -> String {
        match (&self.wildcard, self.path_ends_with_slash) {
            (None, _) => String::new(),
            (Some(matched), false) if matched.is_empty() => String::new(),
            (Some(matched), true) if matched.is_empty() => "/".to_owned(),
            (Some(matched), false) => format!("/{matched}"),
            (Some(matched), true) => format!("/{matched}/"),
        }
    }

    /// The `spin-component-route` value: the raw route without its `/...` suffix.
    pub fn raw_route_prefix(&self) -> &str {
        self.raw_route.strip_suffix("/...").unwrap_or(&self.raw_route)
    }
}

/// Adds a leading slash and removes a trailing one, as Spin does before routing.
fn normalise(route: &str) -> String {
    let absolute = if route.starts_with('/') { route.to_owned() } else { format!("/{route}") };
    absolute.strip_suffix('/').map(str::to_owned).unwrap_or(absolute)
}

fn parse_segments(pattern: &str) -> anyhow::Result<Vec<Segment>> {
    let trimmed = pattern.trim_matches('/');
    let mut segments: Vec<Segment> = Vec::new();
    let mut separator = None;
    let mut rest = trimmed;
    loop {
        let end = rest.find(['.', '/']).unwrap_or(rest.len());
        let section = &rest[..end];
        if separator == Some('.') {
            match segments.last_mut() {
                Some(Segment::Literal(literal)) => literal.push('.'),
                _ => segments.push(Segment::Dot),
            }
        }
        if let Some(segment) = parse_section(section)? {
            if separator == Some('/') {
                segments.push(Segment::Slash);
            }
            segments.push(segment);
        }
        if end == rest.len() {
            break;
        }
        separator = rest[end..].chars().next();
        rest = &rest[end + 1..];
    }
    if segments.iter().rev().skip(1).any(|segment| *segment == Segment::Wildcard) {
        bail!("a wildcard may only end a route");
    }
    Ok(segments)
}

fn parse_section(section: &str) -> anyhow::Result<Option<Segment>> {
    Ok(match section {
        "" => None,
        "*" => Some(Segment::Wildcard),
        ":" => bail!("params must be named"),
        _ if section.starts_with('*') => {
            bail!("since there can only be one wildcard, it doesn't need a name. replace `{section}` with `*`")
        }
        _ => match section.strip_prefix(':') {
            Some(name) => Some(Segment::Parameter(name.to_owned())),
            None => Some(Segment::Literal(section.to_owned())),
        },
    })
}

/// Orders the more specific route first: the first position where the segments differ in
/// specificity decides; then more dots; then, for a route that is a prefix of the other, the
/// shorter one.
fn compare_specificity(a: &[Segment], b: &[Segment]) -> Ordering {
    let dots = |segments: &[Segment]| segments.iter().filter(|s| **s == Segment::Dot).count();
    a.iter()
        .zip(b)
        .map(|(a, b)| b.specificity().cmp(&a.specificity()))
        .find(|ordering| ordering.is_ne())
        .unwrap_or_else(|| dots(b).cmp(&dots(a)).then(a.len().cmp(&b.len())))
}

#[derive(Default)]
struct Captures {
    parameters: Vec<String>,
    wildcard: Option<String>,
}

/// Matches a path with its surrounding slashes trimmed, as routefinder does.
fn match_segments(segments: &[Segment], mut path: &str) -> Option<Captures> {
    let mut captures = Captures::default();
    let mut iterator = segments.iter().peekable();
    while let Some(segment) = iterator.next() {
        let next = iterator.peek();
        path = match segment {
            Segment::Literal(literal) => path.strip_prefix(literal.as_str())?,
            Segment::Parameter(_) => {
                if path.is_empty() {
                    return None;
                }
                let end = match next {
                    Some(Segment::Dot) => path.find(['.', '/']).filter(|i| path[*i..].starts_with('.'))?,
                    _ => path.find('/').unwrap_or(path.len()),
                };
                captures.parameters.push(path[..end].to_owned());
                &path[end..]
            }
            Segment::Wildcard => {
                captures.wildcard = Some(path.to_owned());
                ""
            }
            Segment::Slash => match (path.strip_prefix('/'), next) {
                (Some(rest), Some(_)) => rest,
                (None, None) if path.is_empty() => path,
                (None, Some(Segment::Wildcard)) if path.is_empty() => path,
                _ => return None,
            },
            Segment::Dot => path.strip_prefix('.')?,
        };
    }
    (path.is_empty() || path == "/").then_some(captures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let routes: Vec<HttpRoute> = routes
            .iter()
            .map(|(route, component)| HttpRoute { route: route.to_string(), component: component.to_string() })
            .collect();
        Router::build(&routes).unwrap()
    }

    fn component(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|route| route.component)
    }

    #[test]
    fn exact_beats_parameter_beats_wildcard_and_longer_prefixes_win() {
        let router = router(&[
            ("/...", "catch-all"),
            ("/one/...", "one"),
            ("/one/two/...", "one-two"),
            ("/one/:name", "named"),
            ("/one/exact", "exact"),
        ]);
        assert_eq!(component(&router, "/one/two/three").as_deref(), Some("one-two"));
        assert_eq!(component(&router, "/one/exact").as_deref(), Some("exact"));
        assert_eq!(component(&router, "/one/other").as_deref(), Some("named"));
        assert_eq!(component(&router, "/one").as_deref(), Some("one"));
        assert_eq!(component(&router, "/elsewhere").as_deref(), Some("catch-all"));
    }

    #[test]
    fn unmatched_paths_and_partial_words_do_not_route() {
        let router = router(&[("/users/...", "auth"), ("/", "root")]);
        assert_eq!(component(&router, "/usersx").as_deref(), None);
        assert_eq!(component(&router, "/").as_deref(), Some("root"));
        assert_eq!(component(&router, "/other").as_deref(), None);
    }

    #[test]
    fn path_info_and_parameters_follow_spin() {
        let router = router(&[("/test/...", "wild"), ("/rooms/:room_id/messages", "named")]);
        let path_info = |path: &str| router.route(path).unwrap().path_info();
        assert_eq!(path_info("/test"), "");
        assert_eq!(path_info("/test/"), "/");
        assert_eq!(path_info("/test/hello"), "/hello");
        assert_eq!(path_info("/test/hello/"), "/hello/");
        let matched = router.route("/rooms/42/messages").unwrap();
        assert_eq!(matched.parameters, [("room_id".to_owned(), "42".to_owned())]);
        assert_eq!(matched.based_route, "/rooms/:room_id/messages");
        assert_eq!(router.route("/test/x").unwrap().raw_route_prefix(), "/test");
    }

    #[test]
    fn dots_split_segments_and_duplicates_take_the_later_component() {
        let router = router(&[("/files/:name.json", "json"), ("/a", "first"), ("/a", "second")]);
        let matched = router.route("/files/report.json").unwrap();
        assert_eq!(matched.parameters, [("name".to_owned(), "report".to_owned())]);
        assert_eq!(component(&router, "/files/report.txt"), None);
        assert_eq!(component(&router, "/a").as_deref(), Some("second"));
    }

    #[test]
    fn malformed_routes_are_rejected() {
        for route in ["/a/:", "/a/*rest", "/a/*/b"] {
            let routes = [HttpRoute { route: route.to_owned(), component: "c".to_owned() }];
            assert!(Router::build(&routes).is_err(), "{route:?} should be rejected");
        }
    }
}
