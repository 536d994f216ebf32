use super::*;

fn page(name: &str) -> String {
    let docs = generate().unwrap();
    let doc = docs
        .iter()
        .find(|d| d.path == Path::new(MAN_DIR).join(name))
        .unwrap_or_else(|| panic!("{name} is not generated"));
    String::from_utf8(doc.content.clone()).unwrap()
}

/// The committed man pages and completions are what the generator makes now: after a
/// change of the CLI, the daemon's flags, a default or a template, run
/// `cargo xtask gen-docs` and commit the result.
#[test]
fn committed_files_are_current() {
    let problems = stale(&repo_root()).unwrap();
    assert!(
        problems.is_empty(),
        "generated docs are stale ({}); run `cargo xtask gen-docs` and commit",
        problems.join("; ")
    );
}

#[test]
fn one_page_per_subcommand() {
    let docs = generate().unwrap();
    let names: Vec<String> = docs
        .iter()
        .map(|d| d.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "twofold.1",
        "twofold-enroll.1",
        "twofold-status.1",
        "twofold-backup-codes.1",
        "twofold-backup-codes-count.1",
        "twofold-backup-codes-regenerate.1",
        "twofold-disable.1",
        "twofold-doctor.1",
        "twofoldd.8",
        "pam_twofold.8",
        "twofoldd.toml.5",
        "twofold.bash",
        "_twofold",
        "twofold.fish",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
}

#[test]
fn hidden_test_options_stay_out_of_the_docs() {
    for doc in generate().unwrap() {
        let text = String::from_utf8_lossy(&doc.content);
        for hidden in ["pam-dir", "sshd-config", "assume-ntp-synced", "pam-confdir"] {
            assert!(
                !text.contains(hidden),
                "{} mentions the hidden {hidden}",
                doc.path.display()
            );
        }
    }
}

#[test]
fn generation_is_deterministic() {
    // The environment must not leak in (e.g. TWOFOLD_BUS_ADDRESS as clap's env value).
    assert_eq!(generate().unwrap(), generate().unwrap());
    assert!(!page("twofold.1").contains("TWOFOLD_BUS_ADDRESS="));
}

/// The keys `Policy` accepts, from serde's own list of expected fields.
fn accepted_keys(toml: &str) -> Vec<String> {
    let err = twofoldd::policy::Policy::parse(toml).unwrap_err();
    let list = err
        .split("expected one of")
        .nth(1)
        .unwrap_or_else(|| panic!("no key list in {err:?}"));
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_config_key_is_documented_with_its_default() {
    let text = page("twofoldd.toml.5");
    let top = accepted_keys("no_such_key_xyz = 1\n");
    let lockout = accepted_keys("[lockout]\nno_such_key_xyz = 1\n");
    assert!(top.contains(&"totp_window".to_owned()), "{top:?}");
    assert!(lockout.contains(&"max_failures".to_owned()), "{lockout:?}");
    for key in top.iter().chain(&lockout) {
        if key == "lockout" {
            assert!(text.contains(".SS [lockout]"));
            continue;
        }
        assert!(
            text.contains(&format!(".BR {key} ")),
            "twofoldd.toml(5) does not document `{key}`"
        );
    }
    // Every key of the shipped sample is in the page too.
    let sample = fs::read_to_string(repo_root().join("packaging/twofoldd.toml")).unwrap();
    for line in sample.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some((key, _)) = line.split_once(" = ") {
            if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                assert!(text.contains(&format!(".BR {key} ")), "sample key {key}");
            }
        }
    }
    let defaults = twofoldd::policy::Policy::default();
    assert!(text.contains(&format!("(default {})", defaults.totp_window)));
}

/// Option names the module's parser matches on, read from its source.
fn module_options() -> Vec<String> {
    let source = fs::read_to_string(repo_root().join("pam_module/src/options.rs")).unwrap();
    let start = source.find("fn apply").expect("fn apply in options.rs");
    let body = &source[start..];
    let end = body.find("\n    }\n").unwrap_or(body.len());
    let mut names = Vec::new();
    for line in body[..end].lines() {
        let Some((pattern, _)) = line.split_once("=>") else {
            continue;
        };
        // `("nullok" | "debug", Some(_))`: the names before the first comma.
        let Some(keys) = pattern.trim().strip_prefix('(') else {
            continue;
        };
        let keys = keys.split(',').next().unwrap_or_default();
        for k in keys.split('|') {
            let k = k.trim().trim_matches('"');
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                names.push(k.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_module_option_is_documented() {
    let text = page("pam_twofold.8");
    let names = module_options();
    for expected in ["bus", "timeout", "failmode", "nullok", "prompt", "debug"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    for name in &names {
        assert!(
            text.contains(&format!(".BI {name}="))
                || text.contains(&format!(".B {name}\n"))
                || text.contains(&format!(".BR {name}="))
                || text.contains(&format!(".BR {name} "))
                || text.contains(&format!("{name}=\\fI")),
            "pam_twofold(8) does not document `{name}`"
        );
    }
    // The defaults come from the module's code.
    assert!(text.contains("default 5;"), "timeout default");
    assert!(text.contains("Verification code: "));
}

#[test]
fn pages_format_without_warnings() {
    if std::process::Command::new("groff")
        .arg("--version")
        .output()
        .is_err()
    {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "groff must be installed under CI (tests/run.sh installs groff-base)"
        );
        eprintln!("SKIPPED pages_format_without_warnings: groff is not installed");
        return;
    }
    for doc in generate().unwrap() {
        if !doc.path.starts_with(MAN_DIR) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("page");
        fs::write(&file, &doc.content).unwrap();
        let out = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{}: {stderr}",
            doc.path.display()
        );
    }
}

#[test]
fn bash_completion_completes_the_commands() {
    let script = Path::new(&repo_root())
        .join(COMPLETIONS_DIR)
        .join("twofold.bash");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=(twofold backup-codes re); COMP_CWORD=2; \
             _twofold twofold re backup-codes; echo \"${{COMPREPLY[@]}}\"; \
             COMP_WORDS=(twofold doctor --); COMP_CWORD=2; \
             _twofold twofold -- doctor; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("regenerate"), "{text}");
    let doctor = lines.next().unwrap_or_default();
    assert!(
        doctor.contains("--user") && doctor.contains("--json"),
        "{text}"
    );
    assert!(!doctor.contains("--pam-dir"), "{text}");
}
