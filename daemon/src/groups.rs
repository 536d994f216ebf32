//! Group membership through NSS (`getgrouplist`), so that LDAP and SSSD groups count.

use std::ffi::CString;

use nix::unistd::{getgrouplist, Group, User};

/// True when `user` belongs to any of `groups` (primary or supplementary). Unknown group
/// names are skipped (and logged); an unknown user belongs to none.
pub fn member_of_any(user: &str, groups: &[String]) -> Result<bool, String> {
    let Some(account) = User::from_name(user).map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    let name = CString::new(user).map_err(|_| "user name with NUL".to_string())?;
    let gids = getgrouplist(&name, account.gid).map_err(|e| e.to_string())?;
    for group in groups {
        match Group::from_name(group) {
            Ok(Some(g)) if gids.contains(&g.gid) => return Ok(true),
            Ok(Some(_)) => {}
            Ok(None) => log::warn!("no group named {group}"),
            Err(e) => return Err(format!("group {group}: {e}")),
        }
    }
    Ok(false)
}

/// Members of `group` listed in the group database (not those having it as primary).
pub fn listed_members(group: &str) -> Vec<String> {
    Group::from_name(group)
        .ok()
        .flatten()
        .map(|g| g.mem)
        .unwrap_or_default()
}
