//! The README's "Locked out?" section, walked: the shipped pam-auth-update profile is
//! turned on with `pam-auth-update --enable twofold` in a private copy of /etc/pam.d
//! (and of /usr/share/pam-configs, /var/lib/pam and debconf's database, all bind-mounted
//! in a private mount namespace: the host's files stay as they are), logins go through
//! the resulting `common-auth` (pam_unix, then pam_twofold.so) with real passwords, and
//! each way back in the README names is taken.
//!
//! Not walked here, because they need a reboot or a console: rescue mode, `init=/bin/sh`,
//! and a root shell kept open (nothing to test); the SSH key login is sshd's own
//! `AuthenticationMethods publickey`, which runs no PAM auth step at all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use twofold_tests::flows;
use twofold_tests::root_only;
use twofold_tests::{
    built, json, pam, pamdriver_with_mounts, private_shadow, repo_root, totp, with_private_mounts,
    wrong_code, PamOutcome, TestEnv,
};

/// Not in a required group (see [`REQUIRED`]).
const USER: &str = "daemon";
/// In the group `bin`, required by [`required_policy`].
const REQUIRED: &str = "bin";
const PASSWORD: &str = "daemon's password";
const REQUIRED_PASSWORD: &str = "bin's password";
/// A service of the private PAM directory that includes `common-auth`, as sudo's does.
const SERVICE: &str = "locked-out-test";

/// A private PAM world for the profile of `env`'s daemon.
struct PrivatePam {
    pam_d: PathBuf,
    binds: Vec<(PathBuf, &'static str)>,
}

impl PrivatePam {
    /// Copies of the host's PAM and debconf state, the shipped profile pointing at the
    /// built module on `env`'s bus, and a shadow file with the test passwords.
    fn new(env: &TestEnv) -> PrivatePam {
        let root = env.dir.path().join("private-pam");
        std::fs::create_dir(&root).unwrap();
        let mut binds = Vec::new();
        for (name, target) in [
            ("pam.d", "/etc/pam.d"),
            ("pam-configs", "/usr/share/pam-configs"),
            ("var-lib-pam", "/var/lib/pam"),
            ("debconf", "/var/cache/debconf"),
        ] {
            let copy = root.join(name);
            let out = Command::new("cp")
                .arg("-a")
                .arg(target)
                .arg(&copy)
                .output()
                .unwrap();
            assert!(out.status.success(), "cp -a {target}: {out:?}");
            binds.push((copy, target));
        }
        let profile = std::fs::read_to_string(repo_root().join("packaging/pam-configs/twofold"))
            .unwrap()
            .replace(
                "pam_twofold.so",
                &format!(
                    "{} bus={}",
                    built("libpam_twofold.so").display(),
                    env.address
                ),
            );
        std::fs::write(root.join("pam-configs/twofold"), profile).unwrap();
        let pam_d = root.join("pam.d");
        std::fs::write(pam_d.join(SERVICE), "@include common-auth\n").unwrap();
        let shadow = private_shadow(&root, &[(USER, PASSWORD), (REQUIRED, REQUIRED_PASSWORD)]);
        binds.push((shadow, "/etc/shadow"));
        PrivatePam { pam_d, binds }
    }

    fn mounts(&self) -> Vec<(&Path, &Path)> {
        self.binds
            .iter()
            .map(|(source, target)| (source.as_path(), Path::new(*target)))
            .collect()
    }

    /// Runs a root command as the README says, in the private namespace.
    fn root_runs(&self, program: &str, args: &[&str]) -> Output {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let out = with_private_mounts(&self.mounts(), Path::new(program), &args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("unshare (util-linux)");
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        out
    }

    /// `pam-auth-update --enable twofold` (or `--disable`), as the README says.
    fn pam_auth_update(&self, how: &str) {
        self.root_runs("pam-auth-update", &[how, "twofold"]);
    }

    /// The private `common-auth`.
    fn common_auth(&self) -> String {
        std::fs::read_to_string(self.pam_d.join("common-auth")).unwrap()
    }

    /// Adds `args` to the module's line in the private `common-auth`, as an administrator
    /// edits it.
    fn add_module_args(&self, args: &str) {
        let text = self
            .common_auth()
            .lines()
            .map(|l| {
                if !l.starts_with('#') && l.contains("libpam_twofold.so") {
                    format!("{l} {args}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect::<String>();
        std::fs::write(self.pam_d.join("common-auth"), text).unwrap();
    }

    /// One login by `user`, typing `answers` at the prompts in order (password, code).
    fn login(&self, user: &str, answers: &[&str]) -> PamOutcome {
        pamdriver_with_mounts(
            &self.mounts(),
            Path::new("/etc/pam.d"),
            SERVICE,
            user,
            answers,
        )
    }
}

/// The profile is on: password, then code.
fn profile_on(env: &TestEnv) -> PrivatePam {
    let private = PrivatePam::new(env);
    private.pam_auth_update("--enable");
    assert!(
        private.common_auth().contains("libpam_twofold.so"),
        "{}",
        private.common_auth()
    );
    private
}

#[test]
fn a_lockout_ends_with_admin_unlock() {
    root_only!();
    let (env, enrolled) = TestEnv::with_enrolled(USER);
    let private = profile_on(&env);
    let good = totp(&enrolled.secret, 0);
    let wrong = wrong_code(&enrolled.secret);
    for _ in 0..4 {
        let out = private.login(USER, &[PASSWORD, &wrong]);
        assert_eq!(out.result, pam::AUTH_ERR, "{out:?}");
    }
    let out = private.login(USER, &[PASSWORD, &wrong]);
    assert_eq!(out.result, pam::MAXTRIES, "{out:?}");
    assert!(out.texts().contains("Too many failed attempts"), "{out:?}");
    let out = private.login(USER, &[PASSWORD, &good]);
    assert_eq!(out.result, pam::MAXTRIES, "locked: {out:?}");
    let out = private.login(USER, &[PASSWORD, &enrolled.backup_codes[0]]);
    assert_eq!(
        out.result,
        pam::MAXTRIES,
        "a backup code waits too: {out:?}"
    );

    // "from any root shell `sudo twofold admin unlock USER`"
    let out = env.cli(&["admin", "unlock", USER], None, "");
    assert!(out.status.success(), "{out:?}");
    let out = private.login(USER, &[PASSWORD, &good]);
    assert_eq!(out.result, pam::SUCCESS, "{out:?}\n{}", env.log_text());
}

#[test]
fn a_lost_phone_ends_with_the_bypass_code_of_admin_reset() {
    root_only!();
    let env = TestEnv::new();
    env.enroll(USER);
    let private = profile_on(&env);
    let reset = flows::admin_reset(USER, "lost phone; ID checked", "24");
    let reset = json(&env.cli(&[&reset[..], &["--json"]].concat(), None, ""));
    let code = reset["bypass_code"].as_str().expect("a bypass code");

    let out = private.login(USER, &[PASSWORD, code]);
    assert_eq!(out.result, pam::SUCCESS, "{out:?}\n{}", env.log_text());
    assert!(out.texts().contains("twofold enroll"), "{out:?}");
    // Once: the next login finds no enrollment and says what to do.
    let again = private.login(USER, &[PASSWORD, code]);
    assert_eq!(again.result, pam::AUTH_ERR, "{again:?}");
    assert!(again.texts().contains("twofold enroll"), "{again:?}");
}

#[test]
fn a_daemon_that_is_down_is_said_and_failmode_safe_or_pam_auth_update_disable_let_in() {
    root_only!();
    let mut env = TestEnv::new();
    let enrolled = env.enroll(USER);
    let private = profile_on(&env);
    env.stop_daemon();

    // failmode=secure (the profile's default): refused, and told so.
    let out = private.login(USER, &[PASSWORD, &totp(&enrolled.secret, 0)]);
    assert_eq!(out.result, pam::AUTHINFO_UNAVAIL, "{out:?}");
    assert!(
        out.texts().contains("Contact your administrator"),
        "{out:?}"
    );
    // "`twofold status` says why"; "`twofoldd --check-config` names a broken setting".
    let out = env.cli(&["status"], None, "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not reachable"),
        "{out:?}"
    );
    let broken = env.dir.path().join("broken.toml");
    std::fs::write(&broken, "[lockout]\nmax_failurs = 5\n").unwrap();
    let out = Command::new(built("twofoldd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&broken)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("{}: line 2:", broken.display())) && said.contains("max_failurs"),
        "{said}"
    );

    // failmode=safe: the rest of the stack (the password) decides.
    private.add_module_args("failmode=safe");
    let out = private.login(USER, &[PASSWORD]);
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), 1, "the password only: {out:?}");
    let out = private.login(USER, &["not the password"]);
    assert_eq!(
        out.result,
        pam::AUTH_ERR,
        "the password still decides: {out:?}"
    );

    // `pam-auth-update --disable twofold`, from a login that runs no PAM auth step: the
    // module leaves common-auth (the edited line too) and the password alone logs in.
    private.pam_auth_update("--disable");
    assert!(
        !private.common_auth().contains("twofold"),
        "{}",
        private.common_auth()
    );
    let out = private.login(USER, &[PASSWORD]);
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), 1, "{out:?}");
}

/// `require_groups` with `enroll_grace` days and a contact, as in the README's example.
fn required_policy(grace_days: u32) -> String {
    flows::required_policy(REQUIRED, grace_days, "the help desk, extension 4242")
}

#[test]
fn nullok_and_require_groups_combine_as_the_table_says() {
    root_only!();
    let env = TestEnv::with_config(&required_policy(7));
    let private = profile_on(&env);

    // Not required, no nullok: refused, and told why.
    let out = private.login(USER, &[PASSWORD]);
    assert_eq!(out.result, pam::AUTH_ERR, "{out:?}");
    assert!(out.texts().contains("not set up"), "{out:?}");
    // Required, within enroll_grace: passes, with a reminder naming the deadline.
    let out = private.login(REQUIRED, &[REQUIRED_PASSWORD]);
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    assert!(
        out.texts().contains("twofold enroll") && out.texts().contains("UTC"),
        "{out:?}"
    );
    // Not required, nullok: passes without a code.
    private.add_module_args("nullok");
    let out = private.login(USER, &[PASSWORD]);
    assert_eq!(out.result, pam::SUCCESS, "{out:?}");
    assert_eq!(out.prompts(), 1, "{out:?}");

    // Required, after the deadline, nullok or not: refused, naming admin_contact.
    let env = TestEnv::with_config(&required_policy(0));
    let private = profile_on(&env);
    for nullok in [false, true] {
        if nullok {
            private.add_module_args("nullok");
        }
        let out = private.login(REQUIRED, &[REQUIRED_PASSWORD]);
        assert_eq!(out.result, pam::AUTH_ERR, "nullok={nullok}: {out:?}");
        assert!(
            out.texts().contains("the help desk, extension 4242"),
            "nullok={nullok}: {out:?}"
        );
    }
}
