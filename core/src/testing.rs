//! Support for the workspace's tests (compiled for core's own tests, and for other crates'
//! tests through the `test-support` feature). A test that needs an outside tool asks
//! [`require_tool`]; one that needs some other condition of the machine asks [`require`].
//! Under CI (`CI=true`) an unmet need fails the test: `make setup` installs every tool a test
//! uses, so a missing one is a broken CI machine, never a pass. Elsewhere the test is skipped
//! and says so on stderr ("SKIPPED: ...").
#![allow(clippy::panic)]

use std::path::PathBuf;

/// Whether this runs under CI (`CI=true` or `CI=1`, as CI services set it).
pub fn on_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The program `name` on `PATH`, if there is one.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether the program `name` is on `PATH`: false (skip the test) when it is not, and a
/// panic (a failed test) under CI.
#[track_caller]
pub fn require_tool(name: &str) -> bool {
    require(
        find_tool(name).is_some(),
        &format!("{name} is not installed (make setup installs it)"),
    )
}

/// `met` when the test can run; otherwise false (skip: `why` on stderr) or, under CI, a panic.
#[track_caller]
pub fn require(met: bool, why: &str) -> bool {
    if met {
        return true;
    }
    let at = std::panic::Location::caller();
    if on_ci() {
        panic!("CI=true and the test at {at} cannot run: {why}");
    }
    eprintln!("SKIPPED (the test at {at} did not run): {why}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_a_made_up_name() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("lifeboat-no-such-tool-7f3a").is_none());
    }
}
