//! Imports go one way in the CLI and in the PAM module: down each crate's table of
//! layers (shown in its `lib.rs`), with no cycle.

use twofold_tests::layers::{graph, violations, Layers};
use twofold_tests::repo_root;

/// cli/src, from the program down to the leaves.
const CLI: Layers = &[
    &["lib"],
    &["commands"],
    &["bus", "prompt"],
    &["context"],
    &["options"],
    &["cli"],
    &[
        "json",
        "output",
        "error",
        "text",
        "time",
        "codes",
        "qr",
        "pam_config",
        "secret_file",
        "google_authenticator",
        "oath_usersfile",
        "pskc",
    ],
];

/// pam_module/src: the hooks, the two flows, the transport, the tests' scripted daemon,
/// what they share, the leaves.
const PAM_MODULE: Layers = &[
    &["lib"],
    &["auth"],
    &["session"],
    &["bus", "ffi"],
    &["mock"],
    &["client"],
    &["options"],
    &["text"],
];

/// The imports of the modules under `src` (from the repository root) go down `layers`;
/// `known` are imports `(module, imported)` there, to show the reader sees them at all.
fn assert_imports_go_one_way(src: &str, layers: Layers, known: &[(&str, &str)]) {
    let graph = graph(&repo_root().join(src));
    for (module, imported) in known {
        assert!(graph[*module].contains(*imported), "{graph:?}");
    }
    let found = violations(&graph, layers);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_cli_imports_go_one_way() {
    let known = [("commands::status", "bus"), ("options", "options::admin")];
    assert_imports_go_one_way("cli/src", CLI, &known);
}

#[test]
fn the_pam_module_imports_go_one_way() {
    let known = [("auth", "client"), ("session", "client")];
    assert_imports_go_one_way("pam_module/src", PAM_MODULE, &known);
}
