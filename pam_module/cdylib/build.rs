//! Links the unwinder into pam_twofold.so itself (libgcc_eh, hidden by the cdylib's
//! export list) instead of depending on libgcc_s.so.1: sshd and sudo do not load
//! libgcc_s, and loading it doubled the module's load time. Panics still unwind to
//! pam-bindings' catch_unwind (`panic = "unwind"`, as ever); only the cdylib is linked so.
fn main() {
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--push-state,-Bstatic,--whole-archive,-lgcc_eh,--pop-state"
    );
}
