//! Timed logins: a latency sample set, a module under test with its users and their
//! replay bookkeeping, and the 30-second step clock the logins wait on.

use std::time::Duration;

use crate::pam::Service;
use crate::totp;

/// Latency sample set.
#[derive(Default, Clone)]
pub struct Samples {
    pub ms: Vec<f64>,
    pub failures: usize,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1000.0);
    }

    pub fn pct(&self, p: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        let mut v = self.ms.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i]
    }

    pub fn p50(&self) -> f64 {
        self.pct(50.0)
    }

    pub fn p99(&self) -> f64 {
        self.pct(99.0)
    }

    /// Prints [`Self::line`].
    pub fn print(&self, name: &str) {
        println!("{}", self.line(name));
    }

    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<44} p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  >10ms {:<4} n={:<5} failed={}",
            self.p50(),
            self.p99(),
            self.pct(100.0),
            self.ms.iter().filter(|m| **m > 10.0).count(),
            self.ms.len(),
            self.failures
        )
    }
}

/// One module under test with its users' secrets and replay bookkeeping.
pub struct Module {
    pub name: &'static str,
    pub service: Service,
    pub users: Vec<(String, Vec<u8>)>,
    pub last_step: Vec<u64>,
    pub samples: Samples,
}

impl Module {
    /// A module whose users have not logged in yet.
    pub fn new(name: &'static str, service: Service, users: Vec<(String, Vec<u8>)>) -> Module {
        Module {
            name,
            service,
            last_step: vec![0; users.len()],
            users,
            samples: Samples::default(),
        }
    }

    /// Logs in every user not yet used in the current step, once.
    pub fn pass(&mut self) {
        for i in 0..self.users.len() {
            self.login_one(i);
        }
    }

    /// Logs in user `i` if not yet used in the current step.
    pub fn login_one(&mut self, i: usize) {
        let step = totp::step_now();
        if self.last_step[i] >= step {
            return;
        }
        let code = totp::code(&self.users[i].1, step);
        let (rc, took) = self.service.login(&self.users[i].0, &code);
        self.last_step[i] = step;
        if rc == 0 {
            self.samples.push(took);
        } else {
            self.samples.failures += 1;
            if self.samples.failures <= 3 {
                eprintln!("  {}: login of {} -> PAM {rc}", self.name, self.users[i].0);
            }
        }
    }

    /// `steps` passes, each 0.3 s into a new step.
    pub fn passes(&mut self, steps: usize) {
        for _ in 0..steps {
            wait_next_step(0.3);
            self.pass();
        }
    }
}

/// Sleeps until `lead` seconds into the next 30-second step.
pub fn wait_next_step(lead: f64) {
    let now = totp::now_f64();
    let next = ((now / 30.0).floor() + 1.0) * 30.0 + lead;
    std::thread::sleep(Duration::from_secs_f64(next - now));
}
