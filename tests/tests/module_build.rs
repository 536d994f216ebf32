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
