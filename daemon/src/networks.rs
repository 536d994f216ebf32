//! Trusted networks (`trusted_networks` in twofoldd.toml): CIDR blocks, parsed strictly,
//! and the remote host of a login matched against them only when it is a literal address.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`) whose host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `address` lies inside. An IPv4 address matches only IPv4 networks, also
    /// when written as an IPv4-mapped IPv6 address (normalise it first: [`login_address`]).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.base, address) {
            (IpAddr::V4(base), IpAddr::V4(a)) => {
                u32::from(a) & v4_mask(self.prefix) == u32::from(base)
            }
            (IpAddr::V6(base), IpAddr::V6(a)) => {
                u128::from(a) & v6_mask(self.prefix) == u128::from(base)
            }
            _ => false,
        }
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

fn v4_mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn v6_mask(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// A prefix length as written: decimal digits only, no sign, no leading zero.
fn parse_prefix(text: &str) -> Option<u8> {
    let digits_only =
        !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let Some((address, prefix)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} is not a network: write ADDRESS/PREFIX, e.g. \"10.0.0.0/8\" \
                 (\"192.0.2.7/32\" for a single address)"
            ));
        };
        let base: IpAddr = address.parse().map_err(|_| {
            format!("{text:?}: {address:?} is not an IPv4 or IPv6 address (host names cannot be trusted)")
        })?;
        let longest = if base.is_ipv4() { 32 } else { 128 };
        let prefix = parse_prefix(prefix)
            .filter(|p| *p <= longest)
            .ok_or_else(|| {
                format!("{text:?}: the prefix length must be a number from 0 to {longest}")
            })?;
        if let IpAddr::V6(v6) = base {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
                return Err(format!(
                    "{text:?} is IPv4-mapped: write it as \"{v4}/{}\"",
                    prefix - 96
                ));
            }
        }
        let network = match base {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & v4_mask(prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & v6_mask(prefix)).into()),
        };
        if network != base {
            return Err(format!(
                "{text:?} has host bits set: the network is \"{network}/{prefix}\""
            ));
        }
        Ok(Cidr { base, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        // A visitor, so that an error is raised while the value is read and carries its
        // position (the line of the bad entry, not of the key).
        struct CidrVisitor;
        impl Visitor<'_> for CidrVisitor {
            type Value = Cidr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a network such as \"10.0.0.0/8\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Cidr, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(CidrVisitor)
    }
}

/// The address of a login's remote host (`PAM_RHOST`) when it is a literal IPv4 or IPv6
/// address, IPv4-mapped IPv6 addresses as IPv4. Anything else (empty for a local login,
/// a host name, a bracketed or scoped address) is None: never trusted.
pub fn login_address(rhost: &str) -> Option<IpAddr> {
    match rhost.parse().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Cidr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn addresses_inside_and_outside() {
        // (network, rhost, whether a login from rhost is inside network)
        for (network, rhost, inside) in [
            ("10.0.0.0/8", "10.255.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.0.2.0/24", "192.0.2.255", true),
            ("192.0.2.0/24", "192.0.3.0", false),
            ("192.0.2.7/32", "192.0.2.7", true),
            ("192.0.2.7/32", "192.0.2.6", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("2001:db8::1/128", "2001:db8::1", true),
            ("::/0", "::1", true),
            ("::/0", "127.0.0.1", false),
            // A prefix that does not end on a byte boundary.
            ("192.0.2.0/25", "192.0.2.127", true),
            ("192.0.2.0/25", "192.0.2.128", false),
            ("2001:db8::/33", "2001:db8:7fff::1", true),
            ("2001:db8::/33", "2001:db8:8000::1", false),
            // IPv4-mapped addresses are IPv4 (see below).
            ("192.0.2.0/24", "::ffff:192.0.2.1", true),
            ("192.0.2.0/24", "::FFFF:c000:0201", true),
            // The IPv6 networks that contain the mapped range do not see IPv4 logins.
            ("::/0", "::ffff:192.0.2.1", false),
            // IPv4-compatible (::a.b.c.d) is not mapped: an IPv6 address.
            ("192.0.2.0/24", "::192.0.2.1", false),
        ] {
            let found = login_address(rhost).is_some_and(|a| net(network).contains(a));
            assert_eq!(found, inside, "{rhost:?} in {network}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        assert_eq!(
            login_address("::ffff:192.0.2.1"),
            login_address("192.0.2.1")
        );
    }

    #[test]
    fn only_literal_addresses_are_login_addresses() {
        for rhost in [
            "",
            "localhost",
            "host.example.org",
            "192.0.2.1.example.org",
            " 192.0.2.1",
            "192.0.2.1 ",
            "192.0.2.1\n",
            "[2001:db8::1]",
            "fe80::1%eth0",
            "192.0.2.1:22",
            "192.0.2.0/24",
            "0x7f.1",
            "127.1",
            "010.0.0.1",
            "3221225985",
        ] {
            assert_eq!(login_address(rhost), None, "{rhost:?}");
        }
        assert!(login_address("127.0.0.1").is_some());
        assert!(login_address("2001:db8::1").is_some());
    }

    #[test]
    fn networks_are_parsed_strictly() {
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("fd00::/8").to_string(), "fd00::/8");
        assert_eq!(net("2001:DB8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0").prefix(), 0);
        for (bad, says) in [
            ("10.0.0.0", "write ADDRESS/PREFIX"),
            ("10.0.0.1/8", "host bits set: the network is \"10.0.0.0/8\""),
            ("fd00::1/8", "host bits set: the network is \"fd00::/8\""),
            ("192.0.2.128/24", "\"192.0.2.0/24\""),
            ("10.0.0.0/33", "from 0 to 32"),
            ("fd00::/129", "from 0 to 128"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/-8", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/08", "prefix length"),
            ("10.0.0.0/8/8", "prefix length"),
            ("10.0.0.0/ 8", "prefix length"),
            ("10.0.0/8", "not an IPv4 or IPv6 address"),
            ("010.0.0.0/8", "not an IPv4 or IPv6 address"),
            ("intranet.example.org/8", "host names cannot be trusted"),
            ("/8", "not an IPv4 or IPv6 address"),
            ("", "write ADDRESS/PREFIX"),
            ("[2001:db8::]/32", "not an IPv4 or IPv6 address"),
            ("::ffff:10.0.0.0/104", "write it as \"10.0.0.0/8\""),
        ] {
            let e = bad.parse::<Cidr>().unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
