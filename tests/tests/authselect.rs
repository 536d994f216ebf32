//! The authselect vendor profiles that the .rpm ships (packaging/authselect/twofold and
//! twofold-sssd, in /usr/share/authselect/vendor/): every stack they can generate, for
//! every combination of their features, asks for the code after the first factor, keeps
//! pam_faillock counting wrong passwords, and lets no fingerprint or U2F key skip the code.
//!
//! authselect is not packaged for Debian, so the test machine cannot run it. The test
//! applies authselect's documented template operators itself (`{include if EXPR}`,
//! `{exclude if EXPR}`, `{if EXPR:yes|no}`, with `"feature"`, `not`, `and`, `or` and
//! parentheses, as in authselect-profiles(5)); any other `{...}` fails the test. Each
//! generated auth stack is then checked line by line against the expected one for the
//! default selection, and run through a model of libpam's dispatch (the `[value=action]`
//! semantics of pam.conf(5)) for every result each module can return.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use twofold_tests::repo_root;

/// The profiles: on authselect's `local` profile, and on its `sssd` profile.
const PROFILES: [&str; 2] = ["twofold", "twofold-sssd"];

fn template(profile: &str, name: &str) -> String {
    let path = repo_root()
        .join("packaging/authselect")
        .join(profile)
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The PAM files of the profile whose stacks are checked.
const PAM_FILES: [&str; 4] = [
    "system-auth",
    "password-auth",
    "fingerprint-auth",
    "smartcard-auth",
];

// ---------------------------------------------------------------------------------------
// authselect's template operators

/// Evaluates an authselect feature expression: `"f"`, `not E`, `E and E`, `E or E`, `(E)`.
fn evaluate(expression: &str, features: &BTreeSet<&str>) -> bool {
    let tokens = tokenize(expression);
    let mut pos = 0;
    let value = parse_or(&tokens, &mut pos, features);
    assert_eq!(pos, tokens.len(), "trailing tokens in {expression:?}");
    value
}

fn tokenize(expression: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut rest = expression.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('"') {
            let end = after
                .find('"')
                .unwrap_or_else(|| panic!("unterminated feature in {expression:?}"));
            tokens.push(format!("\"{}", &after[..end]));
            rest = &after[end + 1..];
        } else if rest.starts_with('(') || rest.starts_with(')') {
            tokens.push(rest[..1].to_string());
            rest = &rest[1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '"')
                .unwrap_or(rest.len());
            let word = &rest[..end];
            assert!(
                ["not", "and", "or"].contains(&word),
                "unknown word {word:?} in {expression:?}"
            );
            tokens.push(word.to_string());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    tokens
}

fn parse_or(tokens: &[String], pos: &mut usize, features: &BTreeSet<&str>) -> bool {
    let mut value = parse_and(tokens, pos, features);
    while tokens.get(*pos).is_some_and(|t| t == "or") {
        *pos += 1;
        value |= parse_and(tokens, pos, features);
    }
    value
}

fn parse_and(tokens: &[String], pos: &mut usize, features: &BTreeSet<&str>) -> bool {
    let mut value = parse_not(tokens, pos, features);
    while tokens.get(*pos).is_some_and(|t| t == "and") {
        *pos += 1;
        value &= parse_not(tokens, pos, features);
    }
    value
}

fn parse_not(tokens: &[String], pos: &mut usize, features: &BTreeSet<&str>) -> bool {
    let token = tokens.get(*pos).expect("expression ends early").clone();
    *pos += 1;
    match token.as_str() {
        "not" => !parse_not(tokens, pos, features),
        "(" => {
            let value = parse_or(tokens, pos, features);
            assert_eq!(tokens.get(*pos).map(String::as_str), Some(")"));
            *pos += 1;
            value
        }
        feature => features.contains(
            feature
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("expected a feature, got {feature:?}")),
        ),
    }
}

/// One `{...}` operator of a template line.
enum Operator<'a> {
    IncludeIf(&'a str),
    ExcludeIf(&'a str),
    If(&'a str, &'a str, &'a str),
}

fn operator(body: &str) -> Operator<'_> {
    if let Some(expr) = body.strip_prefix("include if ") {
        Operator::IncludeIf(expr)
    } else if let Some(expr) = body.strip_prefix("exclude if ") {
        Operator::ExcludeIf(expr)
    } else if let Some(rest) = body.strip_prefix("if ") {
        let (expr, values) = rest
            .split_once(':')
            .unwrap_or_else(|| panic!("{{{body}}}: no ':'"));
        let (yes, no) = values.split_once('|').unwrap_or((values, ""));
        Operator::If(expr, yes, no)
    } else {
        panic!("{{{body}}}: an operator this test does not know (authselect-profiles(5))")
    }
}

/// What authselect writes for `template` with `features` selected (without its
/// "Generated by authselect" preamble): operators applied, trailing blanks trimmed.
fn render(template: &str, features: &BTreeSet<&str>) -> String {
    let mut out = Vec::new();
    'lines: for line in template.lines() {
        let mut text = String::new();
        let mut rest = line;
        while let Some(start) = rest.find('{') {
            let end = start
                + rest[start..]
                    .find('}')
                    .unwrap_or_else(|| panic!("unclosed {{ in {line:?}"));
            text.push_str(&rest[..start]);
            match operator(&rest[start + 1..end]) {
                Operator::IncludeIf(expr) if !evaluate(expr, features) => continue 'lines,
                Operator::ExcludeIf(expr) if evaluate(expr, features) => continue 'lines,
                Operator::IncludeIf(_) | Operator::ExcludeIf(_) => {}
                Operator::If(expr, yes, no) => {
                    text.push_str(if evaluate(expr, features) { yes } else { no })
                }
            }
            rest = &rest[end + 1..];
        }
        text.push_str(rest);
        out.push(text.trim_end().to_string());
    }
    out.join("\n") + "\n"
}

/// Every feature the templates name, as `authselect list-features` would list them.
fn profile_features(profile: &str) -> BTreeSet<String> {
    let mut features = BTreeSet::new();
    for file in PAM_FILES.iter().copied().chain(["REQUIREMENTS"]) {
        let text = template(profile, file);
        for operator in text.split('{').skip(1) {
            let body = operator.split('}').next().unwrap();
            for (i, part) in body.split('"').enumerate() {
                if i % 2 == 1 {
                    features.insert(part.to_string());
                }
            }
        }
    }
    features
}

// ---------------------------------------------------------------------------------------
// PAM stacks and libpam's dispatch

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    Success,
    AuthErr,
    Ignore,
    AuthinfoUnavail,
    MaxTries,
    UserUnknown,
}

impl Ret {
    fn key(self) -> &'static str {
        match self {
            Ret::Success => "success",
            Ret::AuthErr => "auth_err",
            Ret::Ignore => "ignore",
            Ret::AuthinfoUnavail => "authinfo_unavail",
            Ret::MaxTries => "maxtries",
            Ret::UserUnknown => "user_unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    Jump(usize),
}

#[derive(Clone, Debug)]
struct Line {
    text: String,
    control: BTreeMap<String, Action>,
    module: String,
    args: Vec<String>,
}

impl Line {
    fn action(&self, ret: Ret) -> Action {
        self.control
            .get(ret.key())
            .or_else(|| self.control.get("default"))
            .copied()
            .unwrap_or(Action::Ignore)
    }

    fn is(&self, module: &str, arg: Option<&str>) -> bool {
        self.module == module && arg.is_none_or(|a| self.args.iter().any(|x| x == a))
    }
}

fn parse_action(value: &str) -> Action {
    match value {
        "ignore" => Action::Ignore,
        "ok" => Action::Ok,
        "done" => Action::Done,
        "bad" => Action::Bad,
        "die" => Action::Die,
        "reset" => Action::Reset,
        n => Action::Jump(n.parse().unwrap_or_else(|_| panic!("action {n:?}"))),
    }
}

/// pam.conf(5): the keywords, and `[value=action ...]`.
fn parse_control(control: &str) -> BTreeMap<String, Action> {
    let pairs: Vec<(String, Action)> = match control {
        "required" | "requisite" => {
            let fail = if control == "required" {
                Action::Bad
            } else {
                Action::Die
            };
            vec![
                ("success".into(), Action::Ok),
                ("new_authtok_reqd".into(), Action::Ok),
                ("ignore".into(), Action::Ignore),
                ("default".into(), fail),
            ]
        }
        "sufficient" => vec![
            ("success".into(), Action::Done),
            ("new_authtok_reqd".into(), Action::Done),
            ("default".into(), Action::Ignore),
        ],
        "optional" => vec![
            ("success".into(), Action::Ok),
            ("new_authtok_reqd".into(), Action::Ok),
            ("default".into(), Action::Ignore),
        ],
        bracketed => bracketed
            .strip_prefix('[')
            .and_then(|c| c.strip_suffix(']'))
            .unwrap_or_else(|| panic!("control {bracketed:?}"))
            .split_whitespace()
            .map(|pair| {
                let (key, value) = pair.split_once('=').expect("value=action");
                (key.to_string(), parse_action(value))
            })
            .collect(),
    };
    pairs.into_iter().collect()
}

/// The lines of one type (`auth`, `session`, ...) of a PAM file, controls parsed.
fn stack(file: &str, kind: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for raw in file.lines() {
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (first, rest) = text.split_once(char::is_whitespace).expect("type");
        if first.trim_start_matches('-') != kind {
            continue;
        }
        let rest = rest.trim_start();
        let (control, rest) = if rest.starts_with('[') {
            let end = rest.find(']').expect("]") + 1;
            (&rest[..end], &rest[end..])
        } else {
            rest.split_once(char::is_whitespace).expect("control")
        };
        let mut words = rest.split_whitespace();
        lines.push(Line {
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            control: parse_control(control),
            module: words.next().expect("module").to_string(),
            args: words.map(str::to_string).collect(),
        });
    }
    lines
}

/// The service a stack runs for: a login (sshd, sudo, su, login), or twofoldd's own
/// password check, `twofold-password`, for which the profile skips the code.
#[derive(Clone, Copy, PartialEq)]
enum Service {
    Login,
    TwofoldPassword,
}

/// What each auth module may return. A module not listed fails the test.
fn possible_results(line: &Line, service: Service) -> Vec<Ret> {
    use Ret::*;
    match line.module.as_str() {
        "pam_succeed_if.so" if line.args == ["service", "=", "twofold-password", "quiet"] => {
            match service {
                Service::Login => vec![AuthErr],
                Service::TwofoldPassword => vec![Success],
            }
        }
        // pam_env and pam_faildelay only set things up in the auth phase.
        "pam_env.so" | "pam_faildelay.so" => vec![Ignore],
        "pam_faillock.so" if line.args.iter().any(|a| a == "preauth") => vec![Success, AuthErr],
        // authfail records the failure and fails.
        "pam_faillock.so" if line.args.iter().any(|a| a == "authfail") => vec![AuthErr],
        "pam_unix.so" => vec![Success, AuthErr],
        // A user sssd does not know, or sssd down.
        "pam_sss.so" => vec![Success, AuthErr, UserUnknown, AuthinfoUnavail],
        "pam_fprintd.so" | "pam_u2f.so" => vec![Success, AuthErr, Ignore, AuthinfoUnavail],
        // Ignore: nullok and not enrolled, or failmode=safe; MaxTries: locked out.
        "pam_twofold.so" => vec![Success, AuthErr, Ignore, AuthinfoUnavail, MaxTries],
        "pam_deny.so" => vec![AuthErr],
        "pam_permit.so" => vec![Success],
        other => panic!("no model of {other} in {:?}", line.text),
    }
}

/// One pass through an auth stack: which lines ran, with what, and the stack's result.
struct Run {
    ran: Vec<(usize, Ret)>,
    success: bool,
}

/// libpam's _pam_dispatch_aux for one choice of results (`results[i]` for line i).
fn dispatch(lines: &[Line], results: &[Ret]) -> Run {
    #[derive(PartialEq)]
    enum Impression {
        Undefined,
        Positive,
        Negative,
    }
    let mut impression = Impression::Undefined;
    let mut status = Ret::AuthErr;
    let mut ran = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let ret = results[i];
        ran.push((i, ret));
        match lines[i].action(ret) {
            Action::Ignore => {}
            action @ (Action::Ok | Action::Done) => {
                let undecided = impression == Impression::Undefined
                    || (impression == Impression::Positive && status == Ret::Success);
                if undecided && ret != Ret::Ignore {
                    impression = Impression::Positive;
                    status = ret;
                }
                if action == Action::Done && impression != Impression::Negative {
                    break;
                }
            }
            action @ (Action::Bad | Action::Die) => {
                if impression != Impression::Negative {
                    impression = Impression::Negative;
                    // A success with a "bad" action still fails (PAM_PERM_DENIED).
                    status = if ret == Ret::Success {
                        Ret::AuthErr
                    } else {
                        ret
                    };
                }
                if action == Action::Die {
                    break;
                }
            }
            Action::Reset => impression = Impression::Undefined,
            Action::Jump(n) => i += n,
        }
        i += 1;
    }
    Run {
        ran,
        success: impression == Impression::Positive && status == Ret::Success,
    }
}

/// Every way the stack can run: the product of each line's possible results.
fn every_run(lines: &[Line], service: Service) -> Vec<(Vec<Ret>, Run)> {
    let choices: Vec<Vec<Ret>> = lines.iter().map(|l| possible_results(l, service)).collect();
    let mut runs = Vec::new();
    let mut pick = vec![0usize; lines.len()];
    loop {
        let results: Vec<Ret> = pick.iter().zip(&choices).map(|(&p, c)| c[p]).collect();
        let run = dispatch(lines, &results);
        runs.push((results, run));
        let mut k = 0;
        loop {
            if k == pick.len() {
                return runs;
            }
            pick[k] += 1;
            if pick[k] < choices[k].len() {
                break;
            }
            pick[k] = 0;
            k += 1;
        }
    }
}

/// The lines that check the password: pam_unix, and pam_sss after it.
fn password_lines(lines: &[Line]) -> Vec<usize> {
    (0..lines.len())
        .filter(|&i| lines[i].is("pam_unix.so", None) || lines[i].is("pam_sss.so", None))
        .collect()
}

/// pam_faillock must count a password that every password module refused, and never
/// one that a module accepted, nor a login that checked no password.
fn faillock_problem(password_results: &[Ret], counted: bool) -> Option<&'static str> {
    let accepted = password_results.contains(&Ret::Success);
    match (password_results.is_empty(), accepted, counted) {
        (true, _, true) => Some("a failure is counted without a password"),
        (false, true, true) => Some("a right password is counted as a failure"),
        (false, false, false) => Some("pam_faillock does not count a wrong password"),
        _ => None,
    }
}

/// One run, for checking: what a line returned if it ran.
struct Checked<'a> {
    lines: &'a [Line],
    run: Run,
}

impl Checked<'_> {
    fn ran(&self, i: usize) -> Option<Ret> {
        self.run.ran.iter().find(|(j, _)| *j == i).map(|(_, r)| *r)
    }

    fn results_of(&self, lines: &[usize]) -> Vec<Ret> {
        lines.iter().filter_map(|&i| self.ran(i)).collect()
    }

    fn describe(&self) -> String {
        self.run
            .ran
            .iter()
            .map(|(i, r)| format!("{} -> {:?}", self.lines[*i].module, r))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Everything wrong with an auth stack run for a login, as sentences (empty: nothing).
fn auth_stack_problems(lines: &[Line]) -> Vec<String> {
    let mut problems = BTreeSet::new();
    let Some(twofold) = lines.iter().position(|l| l.is("pam_twofold.so", None)) else {
        if lines.iter().any(|l| l.is("pam_permit.so", None)) {
            problems.insert("no pam_twofold.so, and a pam_permit.so".to_string());
        }
        return problems.into_iter().collect();
    };
    for line in lines {
        let skips = line
            .control
            .values()
            .any(|a| matches!(a, Action::Done | Action::Reset));
        if skips {
            problems.insert(format!(
                "{:?}: a done (sufficient) or reset action ends or resets the stack",
                line.text
            ));
        }
    }
    let first_factors: Vec<usize> = (0..twofold)
        .filter(|&i| {
            ["pam_unix.so", "pam_sss.so", "pam_fprintd.so", "pam_u2f.so"]
                .iter()
                .any(|m| lines[i].is(m, None))
        })
        .collect();
    let preauth = lines
        .iter()
        .position(|l| l.is("pam_faillock.so", Some("preauth")));
    let authfail = lines
        .iter()
        .position(|l| l.is("pam_faillock.so", Some("authfail")));
    let passwords = password_lines(lines);
    for (results, run) in every_run(lines, Service::Login) {
        let run = Checked { lines, run };
        let factor_ok = run.results_of(&first_factors).contains(&Ret::Success);
        if run.run.success {
            if !matches!(run.ran(twofold), Some(Ret::Success | Ret::Ignore)) {
                problems.insert(format!("a login without the code: {}", run.describe()));
            }
            if !factor_ok {
                problems.insert(format!(
                    "a login without a first factor: {}",
                    run.describe()
                ));
            }
            if preauth.is_some_and(|p| results[p] != Ret::Success) {
                problems.insert(format!("a locked account logs in: {}", run.describe()));
            }
            for (i, line) in lines.iter().enumerate().skip(twofold + 1) {
                // Ignore: nouserok, for users with no key.
                let passed = matches!(run.ran(i), Some(Ret::Success | Ret::Ignore));
                if line.is("pam_u2f.so", None) && !passed {
                    problems.insert(format!(
                        "a login without the U2F key after the code: {}",
                        run.describe()
                    ));
                }
            }
        }
        if run.ran(twofold).is_some() && !factor_ok {
            problems.insert(format!(
                "the code is asked for without a first factor: {}",
                run.describe()
            ));
        }
        if preauth.is_some() {
            let counted = authfail.is_some_and(|a| run.ran(a).is_some());
            if let Some(problem) = faillock_problem(&run.results_of(&passwords), counted) {
                problems.insert(format!("{problem}: {}", run.describe()));
            }
        }
    }
    problems.into_iter().collect()
}

/// Everything wrong with an auth stack run for `twofold-password`: the code must never
/// be asked for, and the password alone must decide, counted by faillock as for logins.
fn password_check_problems(lines: &[Line]) -> Vec<String> {
    let mut problems = BTreeSet::new();
    let position = |module: &str, arg: Option<&str>| lines.iter().position(|l| l.is(module, arg));
    let twofold = position("pam_twofold.so", None);
    let preauth = position("pam_faillock.so", Some("preauth"));
    let authfail = position("pam_faillock.so", Some("authfail"));
    let passwords = password_lines(lines);
    for (results, run) in every_run(lines, Service::TwofoldPassword) {
        let run = Checked { lines, run };
        if twofold.is_some_and(|t| run.ran(t).is_some()) {
            problems.insert(format!("the code is asked for: {}", run.describe()));
        }
        let unlocked = preauth.is_none_or(|p| results[p] == Ret::Success);
        let password_ok = run.results_of(&passwords).contains(&Ret::Success);
        if run.run.success != (password_ok && unlocked) {
            problems.insert(format!("the password does not decide: {}", run.describe()));
        }
        if preauth.is_some() {
            let counted = authfail.is_some_and(|a| run.ran(a).is_some());
            if let Some(problem) = faillock_problem(&run.results_of(&passwords), counted) {
                problems.insert(format!("{problem}: {}", run.describe()));
            }
        }
    }
    problems.into_iter().collect()
}

/// Every subset of `features`.
fn subsets(features: &[&str]) -> Vec<BTreeSet<String>> {
    (0..1usize << features.len())
        .map(|mask| {
            features
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, f)| f.to_string())
                .collect()
        })
        .collect()
}

fn as_refs(set: &BTreeSet<String>) -> BTreeSet<&str> {
    set.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------
// The tests

/// The auth stack of system-auth and password-auth for `with-faillock`, line by line.
fn expected_auth(profile: &str) -> Vec<&'static str> {
    let mut lines = vec![
        "auth required pam_env.so",
        "auth required pam_faildelay.so delay=2000000",
        "auth required pam_faillock.so preauth silent",
    ];
    if profile == "twofold-sssd" {
        lines.extend([
            "auth [success=2 default=ignore] pam_unix.so nullok",
            "auth [success=1 default=ignore] pam_sss.so use_first_pass",
        ]);
    } else {
        lines.push("auth [success=1 default=ignore] pam_unix.so nullok");
    }
    lines.extend([
        "auth [default=die] pam_faillock.so authfail",
        "auth required pam_permit.so",
        "auth [success=1 default=ignore] pam_succeed_if.so service = twofold-password quiet",
        "auth required pam_twofold.so",
    ]);
    lines
}

fn texts(lines: Vec<Line>) -> Vec<String> {
    lines.into_iter().map(|l| l.text).collect()
}

#[test]
fn default_selection_gives_the_expected_stacks_line_by_line() {
    let features: BTreeSet<&str> = ["with-faillock"].into();
    for profile in PROFILES {
        for file in ["system-auth", "password-auth"] {
            let out = render(&template(profile, file), &features);
            let auth = texts(stack(&out, "auth"));
            assert_eq!(auth, expected_auth(profile), "{profile}/{file}:\n{out}");
            let account = texts(stack(&out, "account"));
            assert_eq!(
                account[..2],
                [
                    "account required pam_faillock.so",
                    "account required pam_unix.so"
                ],
                "{profile}/{file}"
            );
            // The session is recorded for logins, not for cron, atd or `systemd --user`.
            let session = texts(stack(&out, "session"));
            assert_eq!(
                session[session.len() - 2..],
                [
                    "session [success=1 default=ignore] pam_succeed_if.so service in crond:atd:systemd-user quiet use_uid",
                    "session optional pam_twofold.so"
                ],
                "{profile}/{file}"
            );
            assert!(
                !out.contains('{') && !out.contains('}'),
                "an operator left in {profile}/{file}:\n{out}"
            );
        }
        // with-twofold-nullok: not enrolled users pass while everyone enrolls.
        let nullok: BTreeSet<&str> = ["with-faillock", "with-twofold-nullok"].into();
        let out = render(&template(profile, "system-auth"), &nullok);
        assert!(out.lines().any(|l| l.split_whitespace().eq([
            "auth",
            "required",
            "pam_twofold.so",
            "nullok"
        ])));
        // Fingerprint and U2F stand in for the password only: each jumps to the code.
        let all: BTreeSet<&str> = ["with-faillock", "with-fingerprint", "with-pam-u2f"].into();
        let auth = texts(stack(
            &render(&template(profile, "system-auth"), &all),
            "auth",
        ));
        let extra = usize::from(profile == "twofold-sssd");
        assert_eq!(
            auth[3..5],
            [
                format!("auth [success={} default=ignore] pam_fprintd.so", 3 + extra),
                format!(
                    "auth [success={} default=ignore] pam_u2f.so cue nouserok",
                    2 + extra
                ),
            ],
            "{profile}"
        );
    }
}

/// The features on auth lines of `text` (only they change its auth stack).
fn auth_features<'a>(features: &'a BTreeSet<String>, text: &str) -> Vec<&'a str> {
    features
        .iter()
        .map(String::as_str)
        .filter(|f| {
            text.lines()
                .any(|l| l.starts_with("auth") && l.contains(&format!("\"{f}\"")))
        })
        .collect()
}

/// Checks the auth stack of `profile`'s `file` under every selection of the features on
/// its auth lines: `problems_of` finds none.
fn assert_every_selection(profile: &str, file: &str, problems_of: fn(&[Line]) -> Vec<String>) {
    let text = template(profile, file);
    let features = profile_features(profile);
    for selection in subsets(&auth_features(&features, &text)) {
        let out = render(&text, &as_refs(&selection));
        let problems = problems_of(&stack(&out, "auth"));
        assert!(
            problems.is_empty(),
            "{profile}/{file} with {selection:?}:\n{out}\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn every_feature_combination_asks_for_the_code_and_keeps_faillock_counting() {
    for profile in PROFILES {
        for file in PAM_FILES {
            assert_every_selection(profile, file, auth_stack_problems);
        }
    }
}

#[test]
fn twofold_password_checks_the_password_alone() {
    // twofoldd's password check (packaging/rpm/twofold-password) includes password-auth.
    for profile in PROFILES {
        assert_every_selection(profile, "password-auth", password_check_problems);
    }
    let rpm_service =
        fs::read_to_string(repo_root().join("packaging/rpm/twofold-password")).unwrap();
    assert!(rpm_service.lines().any(|l| l.split_whitespace().eq([
        "auth",
        "include",
        "password-auth"
    ])));
}

#[test]
fn the_stack_check_rejects_the_old_readme_recipe() {
    // What the README's sed made of the local profile's system-auth (with-faillock,
    // with-fingerprint): pam_unix requisite, so a wrong password skips faillock's count;
    // fprintd sufficient, so a finger alone logs in; success=done on the code.
    let old = "\
auth required pam_env.so
auth required pam_faildelay.so delay=2000000
auth required pam_faillock.so preauth silent
auth sufficient pam_fprintd.so
auth requisite pam_unix.so nullok
auth [success=done ignore=done default=die] pam_twofold.so
auth required pam_faillock.so authfail
auth required pam_deny.so
";
    let problems = auth_stack_problems(&stack(old, "auth")).join("\n");
    for expected in [
        "a login without the code",
        "pam_faillock does not count a wrong password",
        "a done (sufficient) or reset action",
    ] {
        assert!(problems.contains(expected), "{expected}:\n{problems}");
    }
}

#[test]
fn readme_and_requirements_name_only_features_the_templates_know() {
    for profile in PROFILES {
        let features = profile_features(profile);
        let readme = template(profile, "README");
        let documented: BTreeSet<String> = readme
            .lines()
            .filter_map(|l| l.strip_suffix("::"))
            .map(str::to_string)
            .collect();
        assert_eq!(documented, features, "{profile}/README's feature list");
        // authselect shows the README's first line in `authselect list`.
        assert!(readme.lines().next().unwrap().contains("twofold"));
        // REQUIREMENTS renders for every selection (its operators are all known).
        let requirements = template(profile, "REQUIREMENTS");
        let names: Vec<&str> = features.iter().map(String::as_str).collect();
        for selection in subsets(&names).iter().take(64) {
            let out = render(&requirements, &as_refs(selection));
            assert!(out.contains("Keep a root shell open"), "{out}");
        }
    }
}
