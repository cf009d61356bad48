//! Which client a request comes from: the one place every per-address throttle asks.
//!
//! The direct peer is `spin-client-addr`, which Spin (and the local host) append after the
//! client's own headers. A client can send that header too, so a request carrying more than one
//! value is refused (400): only one of them is the platform's, and a client that forges it is
//! trying to dodge a counter or fill someone else's.
//!
//! Behind a proxy (Pushpin, a load balancer) every request arrives from the proxy's address, and
//! counting per that address would let anyone lock everyone out. So when the direct peer is a
//! trusted proxy (`trusted_proxies`), the client is the nearest address in `X-Forwarded-For`
//! that is not itself a trusted proxy. Headers from untrusted peers are ignored: a client could
//! write anything there.
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::ApiError;

const PEER_HEADER: &str = "spin-client-addr";

/// An address or a CIDR block (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix_bits: u8,
}

impl AddressRange {
    /// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`, as a dual-stack listener reports
    /// IPv4 peers) is compared as the IPv4 address.
    fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                prefix_matches(u128::from(u32::from(network)), u128::from(u32::from(address)), 32, self.prefix_bits)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                prefix_matches(u128::from(network), u128::from(address), 128, self.prefix_bits)
            }
            _ => false,
        }
    }
}

fn prefix_matches(network: u128, address: u128, width: u8, prefix_bits: u8) -> bool {
    let ignored = u32::from(width - prefix_bits);
    network.checked_shr(ignored).unwrap_or(0) == address.checked_shr(ignored).unwrap_or(0)
}

impl FromStr for AddressRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = text.split_once('/').map_or((text, None), |(address, prefix)| (address, Some(prefix)));
        let network: IpAddr = address.trim().parse().map_err(|_| format!("{text:?} is not an IP address or CIDR"))?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix_bits = match prefix {
            None => width,
            Some(bits) => {
                bits.trim().parse().ok().filter(|bits| *bits <= width).ok_or(format!("bad prefix in {text:?}"))?
            }
        };
        // IPv4 written as IPv6 (`::ffff:10.0.0.0/104`), as addresses are compared (`contains`).
        if let IpAddr::V6(mapped) = network
            && let Some(ipv4) = mapped.to_ipv4_mapped()
            && prefix_bits >= 96
        {
            return Ok(Self { network: IpAddr::V4(ipv4), prefix_bits: prefix_bits - 96 });
        }
        Ok(Self { network, prefix_bits })
    }
}

/// Parses `trusted_proxies`: comma-separated addresses or CIDR blocks, possibly empty.
pub fn parse_trusted_proxies(text: &str) -> Result<Vec<AddressRange>, String> {
    text.split(',').map(str::trim).filter(|part| !part.is_empty()).map(str::parse).collect()
}

/// Whom a per-address counter counts: an IPv4 address, or the /64 an IPv6 address belongs to.
///
/// An IPv6 subscriber is given at least a /64 (usually a /56 or a /48): counted address by
/// address, one client would have 2^64 budgets. An IPv4 address written as IPv6
/// (`::ffff:192.0.2.1`) counts as that IPv4 address, so a client has one budget however its
/// address arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNetwork(IpAddr);

impl ClientNetwork {
    const IPV6_PREFIX_BITS: u32 = 64;

    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V6(address) => match address.to_ipv4_mapped() {
                Some(mapped) => Self(IpAddr::V4(mapped)),
                None => {
                    let host_bits = 128 - Self::IPV6_PREFIX_BITS;
                    Self(IpAddr::V6(Ipv6Addr::from(u128::from(address) >> host_bits << host_bits)))
                }
            },
            IpAddr::V4(_) => Self(address),
        }
    }
}

impl fmt::Display for ClientNetwork {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(address) => write!(formatter, "{address}"),
            IpAddr::V6(network) => write!(formatter, "{network}/{}", Self::IPV6_PREFIX_BITS),
        }
    }
}

/// The client's network, for per-address counters (see [`client_address`], [`ClientNetwork`]).
pub fn client_network(
    headers: &http::HeaderMap,
    trusted_proxies: &[AddressRange],
) -> Result<Option<ClientNetwork>, ApiError> {
    Ok(client_address(headers, trusted_proxies)?.map(ClientNetwork::of))
}

/// The client's address, or None when the platform did not say who the peer is; 400 when the
/// request carries a `spin-client-addr` of its own.
fn client_address(headers: &http::HeaderMap, trusted_proxies: &[AddressRange]) -> Result<Option<IpAddr>, ApiError> {
    let Some(peer) = platform_peer(headers)? else { return Ok(None) };
    let is_trusted = |address: IpAddr| trusted_proxies.iter().any(|range| range.contains(address));
    if !is_trusted(peer) {
        return Ok(Some(peer));
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .collect();
    // Nearest hop first: the right end of the list was written by the proxy closest to us. A hop
    // that names no address (`unknown`, an obfuscated name) ends the walk: what lies left of it
    // came from further out, where a client could have written it. The client is then counted as
    // the trusted proxy that wrote that hop.
    let mut nearest_trusted = peer;
    for hop in hops.into_iter().rev() {
        let Some(address) = hop_address(hop) else { break };
        if !is_trusted(address) {
            return Ok(Some(address));
        }
        nearest_trusted = address;
    }
    Ok(Some(nearest_trusted))
}

/// The address of one `X-Forwarded-For` hop: an address, or an address with a port (some proxies
/// append the client's port).
fn hop_address(hop: &str) -> Option<IpAddr> {
    let address = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|hop| hop.ip()))?;
    Some(address.to_canonical())
}

/// The peer's address as the platform wrote it: the only `spin-client-addr` value.
fn platform_peer(headers: &http::HeaderMap) -> Result<Option<IpAddr>, ApiError> {
    let mut values = headers.get_all(PEER_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(PEER_HEADER) {
            Err(ApiError::bad_request(
                "forged_client_address",
                "spin-client-addr is set by the platform, not by clients",
            ))
        } else {
            Ok(None)
        };
    };
    Ok(value.to_str().ok().and_then(|value| value.parse::<SocketAddr>().ok()).map(|peer| peer.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(peer: &str, forwarded: Option<&str>) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("spin-client-addr", peer.parse().unwrap());
        if let Some(forwarded) = forwarded {
            headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8").unwrap();
        let address =
            |peer, forwarded| client_address(&headers(peer, forwarded), &trusted).unwrap().unwrap().to_string();
        assert_eq!(address("203.0.113.9:5000", Some("198.51.100.1")), "203.0.113.9", "untrusted peer: header ignored");
        assert_eq!(address("127.0.0.1:5000", Some("198.51.100.1")), "198.51.100.1");
        assert_eq!(
            address("127.0.0.1:5000", Some("6.6.6.6, 198.51.100.1, 10.1.2.3")),
            "198.51.100.1",
            "nearest untrusted"
        );
        assert_eq!(address("10.9.9.9:5000", None), "10.9.9.9", "no header: the proxy itself");
        assert_eq!(address("127.0.0.1:5000", Some("not an address")), "127.0.0.1");
        assert_eq!(address("127.0.0.1:5000", Some("6.6.6.6, unknown")), "127.0.0.1", "the walk ends at a non-address");
        assert_eq!(address("127.0.0.1:5000", Some("6.6.6.6, 10.1.2.3, unknown")), "127.0.0.1");
        assert_eq!(
            address("127.0.0.1:5000", Some("6.6.6.6, unknown, 10.1.2.3")),
            "10.1.2.3",
            "the proxy that wrote it"
        );
        assert_eq!(address("127.0.0.1:5000", Some("6.6.6.6, 198.51.100.1:4711")), "198.51.100.1", "with a port");
        assert_eq!(address("[::ffff:127.0.0.1]:5000", Some("198.51.100.1")), "198.51.100.1", "a mapped peer");
        assert_eq!(address("[::1]:5000", Some("198.51.100.1")), "::1", "::1 is not in the trusted list");
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64_and_a_mapped_ipv4_as_itself() {
        let network = |address: &str| ClientNetwork::of(address.parse().unwrap()).to_string();
        assert_eq!(network("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(network("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_eq!(network("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(network("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(network("192.0.2.1"), "192.0.2.1");
    }

    #[test]
    fn only_the_platform_names_the_peer() {
        let mut forged = headers("6.6.6.6:1", None);
        forged.append("spin-client-addr", "203.0.113.9:5000".parse().unwrap());
        assert_eq!(client_address(&forged, &[]).unwrap_err().code, "forged_client_address");
        assert_eq!(client_address(&http::HeaderMap::new(), &[]).unwrap(), None, "not under a platform");
        assert_eq!(client_address(&headers("garbage", None), &[]).unwrap(), None);
    }

    #[test]
    fn trusted_proxy_lists_parse_addresses_and_blocks() {
        assert_eq!(parse_trusted_proxies("").unwrap(), vec![]);
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxies("proxy.internal").is_err());
        let v6 = parse_trusted_proxies("fd00::/8").unwrap();
        assert!(v6[0].contains("fd12::1".parse().unwrap()));
        assert!(!v6[0].contains("fe80::1".parse().unwrap()));
        assert!(parse_trusted_proxies("0.0.0.0/0").unwrap()[0].contains("8.8.8.8".parse().unwrap()));
        let v4 = parse_trusted_proxies("10.0.0.0/8").unwrap();
        assert!(v4[0].contains("::ffff:10.1.2.3".parse().unwrap()), "an IPv4 address written as IPv6");
        let mapped = parse_trusted_proxies("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped[0].contains("10.1.2.3".parse().unwrap()), "an IPv4 range written as IPv6");
        assert!(mapped[0].contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!mapped[0].contains("11.1.2.3".parse().unwrap()));
    }
}
