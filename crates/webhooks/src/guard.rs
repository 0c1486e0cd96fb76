//! The SSRF guard: which URLs an endpoint may have, and which addresses a
//! delivery may connect to.
//!
//! * Only `https`, unless [`Safety::allow_http`] (`TANDEM_WEBHOOKS_ALLOW_HTTP=1`,
//!   for development).
//! * No credentials in the URL, and a host is required.
//! * A host that is an address literal (or `localhost`) must not be a
//!   loopback, private, link-local, unique-local, multicast, unspecified,
//!   shared (carrier-grade NAT), broadcast or reserved address (IPv4
//!   addresses mapped into IPv6 are judged as IPv4), unless
//!   [`Safety::allow_private`] (`TANDEM_WEBHOOKS_ALLOW_PRIVATE=1`). That is
//!   checked when an endpoint is created or updated ([`Safety::check_url`]).
//! * Host names are resolved again at every delivery and refused if any
//!   address they resolve to is such an address; the HTTP client resolves
//!   through [`GuardedResolver`], which applies the same rule and hands the
//!   connector exactly the addresses it checked, so a name cannot be
//!   re-bound between the check and the connection (DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use thiserror::Error;
use url::{Host, Url};

/// What the deployment allows endpoints to reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Safety {
    /// Plain `http` URLs (development only).
    pub allow_http: bool,
    /// Loopback, private and link-local addresses (development, or a
    /// receiver inside the same network on purpose).
    pub allow_private: bool,
}

/// Why a URL or an address is refused. The messages never repeat the URL.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("url is not an absolute URL")]
    NotAUrl,
    #[error("url must use https")]
    NotHttps,
    #[error("url must not carry a user name or password")]
    Credentials,
    #[error("url must name a host")]
    NoHost,
    #[error("url must not point to a loopback, private, link-local or otherwise internal address")]
    Internal,
    #[error("url's host name did not resolve")]
    Unresolved,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim() == "1")
}

impl Safety {
    /// From `TANDEM_WEBHOOKS_ALLOW_HTTP` and `TANDEM_WEBHOOKS_ALLOW_PRIVATE`
    /// (each allows when set to `1`).
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            allow_http: env_flag("TANDEM_WEBHOOKS_ALLOW_HTTP"),
            allow_private: env_flag("TANDEM_WEBHOOKS_ALLOW_PRIVATE"),
        }
    }

    /// Checks an endpoint URL without resolving it.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw).map_err(|_| Refusal::NotAUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refusal::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        match url.host() {
            None => return Err(Refusal::NoHost),
            Some(Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d.is_empty() {
                    return Err(Refusal::NoHost);
                }
                if !self.allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                    return Err(Refusal::Internal);
                }
            }
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
        }
        Ok(url)
    }

    /// Refuses an internal address unless allowed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if !self.allow_private && is_internal(ip) { Err(Refusal::Internal) } else { Ok(()) }
    }

    /// Resolves the host of `url` and checks every address (a literal is
    /// checked as it is). For the check at every delivery.
    pub async fn check_resolved(&self, url: &Url) -> Result<(), Refusal> {
        match url.host() {
            None => Err(Refusal::NoHost),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(d)) => {
                let port = url.port_or_known_default().unwrap_or(443);
                resolve_checked(self.allow_private, d, port).await.map(|_| ())
            }
        }
    }
}

async fn resolve_checked(allow_private: bool, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(|_| Refusal::Unresolved)?.collect();
    if addrs.is_empty() {
        return Err(Refusal::Unresolved);
    }
    if !allow_private && addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(Refusal::Internal);
    }
    Ok(addrs)
}

/// Whether `ip` is an address a webhook must not reach by default.
#[must_use]
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        // "This network" 0.0.0.0/8.
        || o[0] == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        // IETF protocol assignments, 192.0.0.0/24.
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        // Benchmarking, 198.18.0.0/15.
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || o[0] >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let s = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (s[0] & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the deprecated site-local fec0::/10.
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // IPv4-compatible (deprecated) ::a.b.c.d, and NAT64 64:ff9b::/96,
        // judged by the IPv4 address they carry.
        || (s[..6] == [0, 0, 0, 0, 0, 0])
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0]
            && internal_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)))
}

/// The HTTP client's resolver: resolves with the system's resolver, refuses
/// a name any of whose addresses is internal (unless allowed), and returns
/// exactly the addresses it checked for the connector to use.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// The resolver for `safety`.
    #[must_use]
    pub fn new(safety: Safety) -> Self {
        Self { allow_private: safety.allow_private }
    }
}

/// The error the resolver gives for a refused name, found again in the
/// source chain of the client's error.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct Refused(pub Refusal);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            // The port is the connector's; 0 here, replaced by it.
            let addrs = resolve_checked(allow_private, name.as_str(), 0)
                .await
                .map_err(|r| Box::new(Refused(r)) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Safety {
        Safety::default()
    }

    #[test]
    fn internal_literals_are_refused() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[ff02::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://localhost/",
            "https://api.localhost/",
        ] {
            assert_eq!(strict().check_url(url), Err(Refusal::Internal), "{url}");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        for url in ["https://93.184.216.34/", "https://[2606:2800:220:1::]/", "https://hooks.example.com/x?y=1"] {
            assert!(strict().check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn http_and_private_addresses_only_when_allowed() {
        assert_eq!(strict().check_url("http://hooks.example.com/"), Err(Refusal::NotHttps));
        assert_eq!(strict().check_url("ftp://hooks.example.com/"), Err(Refusal::NotHttps));
        let dev = Safety { allow_http: true, allow_private: true };
        assert!(dev.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert_eq!(strict().check_url("https://user:pw@hooks.example.com/"), Err(Refusal::Credentials));
        assert_eq!(strict().check_url("not a url"), Err(Refusal::NotAUrl));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_delivery() {
        let url = Url::parse("https://localhost:9/").expect("url");
        assert_eq!(strict().check_resolved(&url).await, Err(Refusal::Internal));
        let dev = Safety { allow_http: true, allow_private: true };
        assert_eq!(dev.check_resolved(&url).await, Ok(()));
    }
}
