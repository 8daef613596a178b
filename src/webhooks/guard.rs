//! SSRF guard: webhook targets must be public http(s) addresses, checked at
//! registration and again at every delivery (inside the resolver, so the
//! connection goes only to an address that passed the check).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use url::Url;

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let seg = ip.segments();
    let first = seg[0];
    // Addresses that carry an IPv4 address: IPv4-compatible (::a.b.c.d)
    // and 6to4 (2002:AABB:CCDD::) are judged by that address.
    if seg[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d));
    }
    if first == 0x2002 {
        let [a, b] = seg[1].to_be_bytes();
        let [c, d] = seg[2].to_be_bytes();
        if forbidden_v4(Ipv4Addr::new(a, b, c, d)) {
            return true;
        }
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && seg[1] == 0) // Teredo tunnels
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64
}

/// Loopback, private, link-local, metadata and other non-public addresses.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// Resolves `host:port`, refusing (unless `allow_private`) when any
/// address it resolves to is not public.
pub fn resolve(host_port: &str, allow_private: bool) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = host_port.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "host resolves to no address",
        ));
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{host_port} resolves to {}, a loopback/private/link-local address",
                    bad.ip()
                ),
            ));
        }
    }
    Ok(addrs)
}

/// Checks a target URL's shape (http/https, a host, no credentials).
pub fn parse_target(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a valid URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("must use http or https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must have a host".into());
    }
    Ok(url)
}

/// Full registration check: shape, then where the host resolves now.
pub fn check_target(raw: &str, allow_private: bool) -> Result<Url, String> {
    let url = parse_target(raw)?;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let host_port = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    resolve(&host_port, allow_private).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => e.to_string(),
        _ => format!("cannot resolve {host}: {e}"),
    })?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::7f00:1",
            "2002:0a00:0001::1",
            "fec0::1",
            "2001:0:4136:e378::1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(parse_target("ftp://example.com/x").is_err());
        assert!(parse_target("http://user:pw@example.com/").is_err());
        assert!(parse_target("not a url").is_err());
        assert!(parse_target("https://example.com/hook").is_ok());
        assert!(check_target("http://127.0.0.1:9/x", false).is_err());
        assert!(check_target("http://localhost:9/x", false).is_err());
        assert!(check_target("http://127.0.0.1:9/x", true).is_ok());
    }
}
