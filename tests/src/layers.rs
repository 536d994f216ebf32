//! The layering of a crate's modules, checked on its source: imports go one way (down
//! a table of layers, which each crate's `lib.rs` shows), and no module imports,
//! directly or through others, a module that imports it. `tests/tests/layers.rs` holds
//! the tables of the CLI and of the PAM module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top-level modules from the program down to the leaves; a module may import only
/// modules of its own row or a row below.
pub type Layers<'a> = &'a [&'a [&'a str]];

/// Module path (`""` for the crate root, `commands::doctor`) to the module paths it names
/// outside its tests: through `crate::` and `super::`, and the children it declares.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module path of a file under `src`: `lib.rs` → `""`, `options/mod.rs` → `options`.
fn module_path(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn sources(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).expect("the source directory is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, src, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            // A binary's few lines, and test modules in files of their own (they may
            // reach anywhere).
            && !path.ends_with("main.rs")
            && !path.ends_with("tests.rs")
        {
            let text = fs::read_to_string(&path).expect("a source file");
            // Test modules may reach anywhere.
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
            out.insert(module_path(path.strip_prefix(src).unwrap()), code);
        }
    }
}

/// The longest known module path that `segments` starts with.
fn resolve(segments: &[&str], known: &BTreeMap<String, String>) -> Option<String> {
    (0..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|path| known.contains_key(path))
}

/// The imports of every module of the crate whose sources are in `src`.
pub fn graph(src: &Path) -> Graph {
    let mut files = BTreeMap::new();
    sources(src, src, &mut files);
    let mut graph = Graph::new();
    for (module, code) in &files {
        let mut uses = BTreeSet::new();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent(module))] {
            for (i, _) in code.match_indices(prefix) {
                let rest = &code[i + prefix.len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut segments: Vec<&str> = base.split("::").filter(|s| !s.is_empty()).collect();
                segments.extend(path.split("::").filter(|s| !s.is_empty()));
                if let Some(target) = resolve(&segments, &files) {
                    uses.insert(target);
                }
            }
        }
        // A parent uses the children it declares.
        for child in files.keys() {
            if !child.is_empty() && parent(child) == *module {
                uses.insert(child.clone());
            }
        }
        uses.remove(module);
        graph.insert(module.clone(), uses);
    }
    graph
}

/// The name shown for a module: `lib` for the crate root.
fn shown(module: &str) -> &str {
    if module.is_empty() {
        "lib"
    } else {
        module
    }
}

fn parent(module: &str) -> String {
    module.rsplit_once("::").map_or("", |(p, _)| p).to_owned()
}

fn layer(layers: Layers, module: &str) -> Option<usize> {
    let top = module
        .split("::")
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or("lib");
    layers.iter().position(|row| row.contains(&top))
}

/// Every import that goes up a layer, and every cycle, as readable lines.
pub fn violations(graph: &Graph, layers: Layers) -> Vec<String> {
    let mut found = Vec::new();
    for (module, uses) in graph {
        let Some(own) = layer(layers, module) else {
            found.push(format!("{} is in no layer", shown(module)));
            continue;
        };
        for used in uses {
            if layer(layers, used).is_some_and(|l| l < own) {
                found.push(format!(
                    "{} imports {}, a layer above it",
                    shown(module),
                    shown(used)
                ));
            }
        }
    }
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        if let Some(cycle) = cycle_from(graph, start, &mut vec![start.clone()], &mut seen) {
            let names: Vec<&str> = cycle.iter().map(|m| shown(m)).collect();
            found.push(format!("import cycle: {}", names.join(" -> ")));
        }
    }
    found
}

/// A path from `path`'s last module back to `start`, if there is one; `seen` holds the
/// modules already searched from.
fn cycle_from(
    graph: &Graph,
    start: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let last = path.last().unwrap().clone();
    for next in &graph[&last] {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(next.clone());
            return Some(cycle);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(cycle) = cycle_from(graph, start, path, seen) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}
