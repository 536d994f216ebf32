//! `pam_twofold.so`: the `pam_sm_*` hooks of [`twofold_pam`], linked as a shared object.
//! The hooks are `#[no_mangle]` items of that crate (its `ffi` module), which a cdylib
//! exports; this crate only links them (see Cargo.toml for why it is a crate of its own).
#![deny(unsafe_code)]

pub use twofold_pam::PamTwofold;
