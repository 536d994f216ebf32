//! What pam_twofold.so is made of: it is loaded into every sshd and sudo, so it links
//! only libpam and libc (the unwinder is inside, not libgcc_s), and none of the
//! daemon's machinery (no async runtime, no D-Bus connection code, no SQLite, no Argon2).
//! zbus's wire format (`zbus::wire`, the zvariant crate before zbus 6) is the module's
//! marshaller, so of zbus only its D-Bus layer is ruled out.

use std::process::Command;

use twofold_tests::built;

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} (binutils) is needed: {e}"));
    assert!(out.status.success(), "{name} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_module_needs_only_libpam_and_libc() {
    let module = built("libpam_twofold.so");
    let dynamic = tool("readelf", &["-d", module.to_str().unwrap()]);
    let mut needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    needed.sort_unstable();
    assert_eq!(
        needed,
        ["ld-linux-x86-64.so.2", "libc.so.6", "libpam.so.0"],
        "{dynamic}"
    );
}

#[test]
fn the_module_links_none_of_the_daemons_machinery() {
    // The debug build keeps its symbol table (the release build is stripped).
    let module = built("libpam_twofold.so");
    let symbols = tool("nm", &["--demangle", module.to_str().unwrap()]);
    assert!(symbols.lines().count() > 1000, "no symbol table to check");
    // A workspace build unifies zbus's features, so the module's zbus has its D-Bus layer
    // compiled in; only what `zbus::Error` holds may be linked (its drop and Display),
    // never a connection, proxy, object server or runtime.
    let machinery = [
        "tokio::",
        "zruntime::",
        "zbus::connection::",
        "zbus::proxy::",
        "zbus::object_server::",
        "zbus::runtime::",
        "rusqlite::",
        "argon2::",
        "async_io::",
    ];
    for crate_name in machinery {
        let found: Vec<&str> = symbols
            .lines()
            .filter(|l| l.contains(crate_name))
            .take(3)
            .collect();
        assert!(found.is_empty(), "{crate_name} in the module: {found:?}");
    }
    // Nor does it export more than the PAM hooks.
    let exported = tool("nm", &["-D", "--defined-only", module.to_str().unwrap()]);
    for line in exported.lines() {
        let name = line.split_whitespace().last().unwrap_or_default();
        assert!(name.starts_with("pam_sm_"), "exported {name}");
    }
}

#[test]
fn the_shipped_module_is_linked_with_lto() {
    // Cargo builds no crate with LTO that is also an rlib: the shared object is a crate
    // of its own (pam_module/cdylib) so that the release profile's LTO applies, which
    // more than halves the relocations every sshd and sudo pays to load the module.
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(twofold_tests::repo_root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{out:?}");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let module = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pam_twofold")
        .expect("the pam_twofold package");
    let kinds: Vec<&serde_json::Value> = module["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] != serde_json::json!(["custom-build"]))
        .flat_map(|t| t["crate_types"].as_array().unwrap())
        .collect();
    assert_eq!(kinds, ["cdylib"], "{}", module["targets"]);
    let manifest = std::fs::read_to_string(twofold_tests::repo_root().join("Cargo.toml")).unwrap();
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("[profile.release]");
    assert!(release.contains("lto = \"fat\""), "{release}");
}
