//! A minimal writer of MaxMind DB files (format 2.0), enough for a GeoIP "City"
//! database mapping IPv4 networks to a city and a country: the tests build their own.

/// One network of the test database.
pub struct Network {
    /// First address of the network.
    pub address: [u8; 4],
    /// Prefix length (1..=32).
    pub prefix: u8,
    /// English city name.
    pub city: String,
    /// English country name.
    pub country: String,
    /// ISO 3166 code.
    pub iso_code: String,
}

enum Value {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    assert!(size < 29, "the test writer only writes short values");
    if kind <= 7 {
        out.push((kind << 5) | size as u8);
    } else {
        out.push(size as u8);
        out.push(kind - 7);
    }
}

fn uint(out: &mut Vec<u8>, kind: u8, v: u64, width: usize) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(8);
    let used = &bytes[skip..];
    assert!(used.len() <= width);
    control(out, kind, used.len());
    out.extend_from_slice(used);
}

fn encode(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(n) => uint(out, 5, u64::from(*n), 2),
        Value::U32(n) => uint(out, 6, u64::from(*n), 4),
        Value::U64(n) => uint(out, 9, *n, 8),
        Value::Map(entries) => {
            control(out, 7, entries.len());
            for (k, v) in entries {
                encode(out, &Value::Str(k.clone()));
                encode(out, v);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(out, v);
            }
        }
    }
}

fn names(en: &str) -> Value {
    Value::Map(vec![("en".into(), Value::Str(en.into()))])
}

/// The bytes of a database holding `networks` (IPv4 tree, 24-bit records).
pub fn build(networks: &[Network]) -> Vec<u8> {
    // Data section: one record per network.
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for n in networks {
        offsets.push(data.len());
        let record = Value::Map(vec![
            (
                "city".into(),
                Value::Map(vec![("names".into(), names(&n.city))]),
            ),
            (
                "country".into(),
                Value::Map(vec![
                    ("iso_code".into(), Value::Str(n.iso_code.clone())),
                    ("names".into(), names(&n.country)),
                ]),
            ),
        ]);
        encode(&mut data, &record);
    }
    // Search tree: nodes as [left, right]; `None` = no data yet.
    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        Data(usize),
    }
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
    for (i, n) in networks.iter().enumerate() {
        let bits = u32::from_be_bytes(n.address);
        let mut node = 0;
        for depth in 0..n.prefix {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == n.prefix {
                nodes[node][bit] = Rec::Data(offsets[i]);
            } else {
                node = match nodes[node][bit] {
                    Rec::Node(next) => next,
                    _ => {
                        nodes.push([Rec::Empty, Rec::Empty]);
                        let next = nodes.len() - 1;
                        nodes[node][bit] = Rec::Node(next);
                        next
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for rec in node {
            let v = match *rec {
                Rec::Empty => count,
                Rec::Node(n) => n,
                Rec::Data(off) => count + 16 + off,
            } as u32;
            out.extend_from_slice(&v.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let meta = Value::Map(vec![
        ("binary_format_major_version".into(), Value::U16(2)),
        ("binary_format_minor_version".into(), Value::U16(0)),
        ("build_epoch".into(), Value::U64(1_700_000_000)),
        (
            "database_type".into(),
            Value::Str("Twofold-Test-City".into()),
        ),
        ("description".into(), names("twofold test database")),
        ("ip_version".into(), Value::U16(4)),
        (
            "languages".into(),
            Value::Array(vec![Value::Str("en".into())]),
        ),
        ("node_count".into(), Value::U32(count as u32)),
        ("record_size".into(), Value::U16(24)),
    ]);
    encode(&mut out, &meta);
    out
}
