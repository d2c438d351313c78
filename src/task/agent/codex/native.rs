//! Codex's native binary behind npm's `codex` wrapper.
//!
//! npm installs `codex` as a Node script (`@openai/codex/bin/codex.js`) that finds the native
//! binary in a platform package and starts it. On Node older than 22.15 the script cannot
//! `execve` and stays as the binary's parent: per Codex turn, one more process of about 44 MB
//! and about 100 ms of Node start-up (measured with Node 20 on a 2-core Linux machine). The device
//! starts the binary itself instead, with the two variables the wrapper would have set.

use std::path::{Path, PathBuf};

/// The native binary and how the wrapper would have started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeCodex {
    pub binary: PathBuf,
    /// The variables the wrapper sets (Codex uses them for its update advice).
    pub env: Vec<(String, String)>,
}

/// The native binary behind `program` when `program` is npm's wrapper and the binary for this
/// platform is installed; `None` otherwise (then `program` runs as it is).
pub fn behind_npm_wrapper(program: &Path) -> Option<NativeCodex> {
    let (platform_package, triple) = platform()?;
    find(program, platform_package, triple)
}

/// The npm package and Rust target triple of this platform, as the wrapper names them.
fn platform() -> Option<(&'static str, &'static str)> {
    Some(match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => ("codex-linux-x64", "x86_64-unknown-linux-musl"),
        ("linux", "aarch64") => ("codex-linux-arm64", "aarch64-unknown-linux-musl"),
        ("macos", "x86_64") => ("codex-darwin-x64", "x86_64-apple-darwin"),
        ("macos", "aarch64") => ("codex-darwin-arm64", "aarch64-apple-darwin"),
        // Windows installs a `.cmd` shim, not the script: left as it is.
        _ => return None,
    })
}

fn find(program: &Path, platform_package: &str, triple: &str) -> Option<NativeCodex> {
    let script = std::fs::canonicalize(program).ok()?;
    // <node_modules>/@openai/codex/bin/codex.js
    if script.file_name()? != "codex.js" {
        return None;
    }
    let package_root = script.parent()?.parent()?;
    let scope = package_root.parent()?;
    if package_root.file_name()? != "codex" || scope.file_name()? != "@openai" {
        return None;
    }
    // Where the wrapper looks: the platform package beside it or nested in it, else its own
    // vendor folder (older releases).
    let vendor_dirs = [
        scope.join(platform_package).join("vendor"),
        package_root
            .join("node_modules/@openai")
            .join(platform_package)
            .join("vendor"),
        package_root.join("vendor"),
    ];
    let binary = vendor_dirs
        .iter()
        .map(|vendor| vendor.join(triple).join("bin").join("codex"))
        .find(|binary| binary.is_file())?;
    Some(NativeCodex {
        binary,
        env: vec![
            ("CODEX_MANAGED_BY_NPM".to_owned(), "1".to_owned()),
            (
                "CODEX_MANAGED_PACKAGE_ROOT".to_owned(),
                package_root.to_string_lossy().into_owned(),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGE: &str = "codex-linux-x64";
    const TRIPLE: &str = "x86_64-unknown-linux-musl";

    /// An npm install under `root`: `.bin/codex` → the wrapper script, and the binary at
    /// `binary_dir` (relative to `node_modules`), if any.
    fn install(root: &Path, binary_dir: Option<&str>) -> PathBuf {
        let modules = root.join("node_modules");
        let bin = modules.join("@openai/codex/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("codex.js"), "#!/usr/bin/env node\n").unwrap();
        std::fs::create_dir_all(modules.join(".bin")).unwrap();
        let link = modules.join(".bin/codex");
        #[cfg(unix)]
        std::os::unix::fs::symlink("../@openai/codex/bin/codex.js", &link).unwrap();
        if let Some(dir) = binary_dir {
            let dir = modules.join(dir).join(TRIPLE).join("bin");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("codex"), "").unwrap();
        }
        link
    }

    #[cfg(unix)]
    #[test]
    fn the_binary_is_found_where_the_wrapper_looks() {
        for vendor in [
            "@openai/codex-linux-x64/vendor",
            "@openai/codex/node_modules/@openai/codex-linux-x64/vendor",
            "@openai/codex/vendor",
        ] {
            let root = tempfile::tempdir().unwrap();
            let wrapper = install(root.path(), Some(vendor));
            let native = find(&wrapper, PACKAGE, TRIPLE).expect(vendor);
            let modules = std::fs::canonicalize(root.path().join("node_modules")).unwrap();
            assert_eq!(
                native.binary,
                modules.join(vendor).join(TRIPLE).join("bin/codex")
            );
            assert_eq!(
                native.env,
                [
                    ("CODEX_MANAGED_BY_NPM".to_owned(), "1".to_owned()),
                    (
                        "CODEX_MANAGED_PACKAGE_ROOT".to_owned(),
                        modules.join("@openai/codex").display().to_string()
                    ),
                ]
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn anything_else_runs_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        let wrapper = install(root.path(), None);
        assert_eq!(find(&wrapper, PACKAGE, TRIPLE), None, "no platform package");
        let binary = root.path().join("codex");
        std::fs::write(&binary, "").unwrap();
        assert_eq!(find(&binary, PACKAGE, TRIPLE), None, "already a binary");
        assert_eq!(find(&root.path().join("nope"), PACKAGE, TRIPLE), None);
    }
}
