//! City and country from a MaxMind-format GeoIP database (feature `geoip`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::Place;

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
