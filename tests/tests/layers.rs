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

/// pam_module/src: the hooks, the two flows, the transport, what they share, the leaves.
const PAM_MODULE: Layers = &[
    &["lib"],
    &["auth"],
    &["session"],
    &["bus", "ffi"],
    &["client"],
    &["options"],
    &["text"],
];

#[test]
fn the_cli_imports_go_one_way() {
    let graph = graph(&repo_root().join("cli/src"));
    // The reader sees the imports at all.
    assert!(graph["commands::status"].contains("bus"), "{graph:?}");
    assert!(graph["options"].contains("options::admin"), "{graph:?}");
    let found = violations(&graph, CLI);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_pam_module_imports_go_one_way() {
    let graph = graph(&repo_root().join("pam_module/src"));
    assert!(graph["auth"].contains("client"), "{graph:?}");
    assert!(graph["session"].contains("client"), "{graph:?}");
    let found = violations(&graph, PAM_MODULE);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
