//! Where a login came from: the reverse-DNS name of the remote address (bounded in
//! time, cached) and the city and country from a MaxMind-format GeoIP database.

use std::collections::HashMap;
use std::net::IpAddr;
#[cfg(test)]
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest wait for one reverse lookup.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a found name is kept.
const DNS_TTL: Duration = Duration::from_secs(3600);
/// How long "no name" is kept.
const DNS_NEGATIVE_TTL: Duration = Duration::from_secs(300);
/// Lookups running at once; past that, addresses stay unnamed (a slow resolver must not
/// pile up threads).
const DNS_MAX_IN_FLIGHT: usize = 4;
/// Entries kept in the cache.
const DNS_CACHE_MAX: usize = 4096;
/// Longest name kept.
const MAX_NAME: usize = 253;

/// The reverse-DNS cache.
#[derive(Default)]
pub struct Resolver {
    cache: Mutex<HashMap<IpAddr, (Option<String>, Instant)>>,
    in_flight: Arc<AtomicUsize>,
}

impl Resolver {
    /// The name of `ip`, from the cache or from `getnameinfo` (in a helper thread that
    /// is waited for at most [`DNS_TIMEOUT`]); None when it has none or is too slow, and
    /// always without the `rdns` feature.
    pub fn name(&self, ip: IpAddr) -> Option<String> {
        if !cfg!(feature = "rdns") {
            return None;
        }
        let now = Instant::now();
        if let Some((name, at)) = self.cache.lock().ok()?.get(&ip).cloned() {
            let ttl = if name.is_some() {
                DNS_TTL
            } else {
                DNS_NEGATIVE_TTL
            };
            if now.duration_since(at) < ttl {
                return name;
            }
        }
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= DNS_MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let in_flight = self.in_flight.clone();
        let spawned = std::thread::Builder::new()
            .name("twofoldd-rdns".into())
            .spawn(move || {
                let name = lookup_addr(ip);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(name);
            });
        if spawned.is_err() {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let name = match rx.recv_timeout(DNS_TIMEOUT) {
            Ok(name) => name.and_then(clean_name),
            // Too slow: not cached, so a later login may still get a name.
            Err(_) => return None,
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= DNS_CACHE_MAX {
                cache.clear();
            }
            cache.insert(ip, (name.clone(), now));
        }
        name
    }
}

#[cfg(feature = "rdns")]
fn lookup_addr(ip: IpAddr) -> Option<String> {
    dns_lookup::lookup_addr(&ip).ok()
}

#[cfg(not(feature = "rdns"))]
fn lookup_addr(_ip: IpAddr) -> Option<String> {
    None
}

/// A DNS name as shown: printable, bounded, never just the address again.
fn clean_name(name: String) -> Option<String> {
    let name = name.trim_end_matches('.').to_string();
    if name.is_empty()
        || name.len() > MAX_NAME
        || name.parse::<IpAddr>().is_ok()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return None;
    }
    Some(name)
}

/// City and country of an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// English city name, "" when unknown.
    pub city: String,
    /// English country name, "" when unknown.
    pub country: String,
    /// ISO 3166 country code, "" when unknown.
    pub country_code: String,
}

impl Place {
    /// "City, Country", "Country" or "".
    pub fn label(&self) -> String {
        match (self.city.is_empty(), self.country.is_empty()) {
            (false, false) => format!("{}, {}", self.city, self.country),
            (true, false) => self.country.clone(),
            (false, true) => self.city.clone(),
            (true, true) => String::new(),
        }
    }
}

#[cfg(feature = "geoip")]
mod geoip;
/// Without the `geoip` feature no address has a place (`geoip_db` is warned about at start).
#[cfg(not(feature = "geoip"))]
mod geoip {
    use std::net::IpAddr;
    use std::path::Path;

    use super::Place;

    /// GeoIP support is not built in.
    #[derive(Default)]
    pub struct GeoIp {
        _none: (),
    }

    impl GeoIp {
        /// Always None.
        pub fn place(&self, _path: &Path, _ip: IpAddr) -> Option<Place> {
            None
        }
    }
}
pub use geoip::GeoIp;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(
            clean_name("host.example.".into()).as_deref(),
            Some("host.example")
        );
        assert_eq!(clean_name("127.0.0.1".into()), None);
        assert_eq!(clean_name("evil\x1b[31m".into()), None);
        assert_eq!(clean_name(String::new()), None);
    }

    #[test]
    fn loopback_resolves_quickly_and_is_cached() {
        let r = Resolver::default();
        let start = Instant::now();
        let first = r.name("127.0.0.1".parse().unwrap());
        assert!(start.elapsed() <= DNS_TIMEOUT + Duration::from_millis(500));
        let again = Instant::now();
        assert_eq!(r.name("127.0.0.1".parse().unwrap()), first);
        assert!(again.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn place_labels() {
        let p = Place {
            city: "Loopville".into(),
            country: "Testland".into(),
            country_code: "TL".into(),
        };
        assert_eq!(p.label(), "Loopville, Testland");
        assert_eq!(Place::default().label(), "");
    }

    #[test]
    fn a_missing_database_gives_no_place() {
        let g = GeoIp::default();
        assert_eq!(
            g.place(
                Path::new("/nonexistent/geo.mmdb"),
                "1.2.3.4".parse().unwrap()
            ),
            None
        );
    }
}
