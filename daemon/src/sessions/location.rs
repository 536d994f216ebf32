//! Where a login came from: the reverse-DNS name of the remote address (bounded in
//! time, cached) and the city and country from a MaxMind-format GeoIP database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

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
    /// is waited for at most [`DNS_TIMEOUT`]); None when it has none or is too slow.
    pub fn name(&self, ip: IpAddr) -> Option<String> {
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
                let name = dns_lookup::lookup_addr(&ip).ok();
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

#[derive(Deserialize, Default)]
struct Names {
    #[serde(default)]
    names: HashMap<String, String>,
    #[serde(default)]
    iso_code: Option<String>,
}

#[derive(Deserialize, Default)]
struct CityRecord {
    #[serde(default)]
    city: Names,
    #[serde(default)]
    country: Names,
}

/// The GeoIP database named by the config, read once and read again when the path or
/// the file changes.
#[derive(Default)]
pub struct GeoIp {
    loaded: Mutex<Option<Loaded>>,
}

struct Loaded {
    path: PathBuf,
    modified: Option<std::time::SystemTime>,
    reader: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
}

impl GeoIp {
    fn reader(&self, path: &Path) -> Option<Arc<maxminddb::Reader<Vec<u8>>>> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut loaded = self.loaded.lock().ok()?;
        if let Some(l) = loaded.as_ref() {
            if l.path == path && l.modified == modified {
                return l.reader.clone();
            }
        }
        let reader = match maxminddb::Reader::open_readfile(path) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                log::error!("geoip_db {}: cannot read it: {e}", path.display());
                None
            }
        };
        *loaded = Some(Loaded {
            path: path.to_path_buf(),
            modified,
            reader: reader.clone(),
        });
        reader
    }

    /// City and country of `ip` from the database at `path`; None when unknown.
    pub fn place(&self, path: &Path, ip: IpAddr) -> Option<Place> {
        let reader = self.reader(path)?;
        let record: CityRecord = match reader.lookup(ip).and_then(|r| r.decode()) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                log::debug!("geoip lookup of {ip} failed: {e}");
                return None;
            }
        };
        let en = |n: &Names| n.names.get("en").map(|s| printable(s)).unwrap_or_default();
        let place = Place {
            city: en(&record.city),
            country: en(&record.country),
            country_code: record
                .country
                .iso_code
                .as_deref()
                .map(printable)
                .unwrap_or_default(),
        };
        (place != Place::default()).then_some(place)
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

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
