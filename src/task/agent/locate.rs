//! Finding an agent's CLI: the configured path, else `PATH`, else the places installers put it
//! (an app started from a desktop session, like the tray, often gets a shorter `PATH` than the
//! user's shell).

use std::path::{Path, PathBuf};

/// An agent's executable and where to look for it.
pub(crate) struct Cli<'a> {
    /// The executable's name (`claude`, `codex`).
    pub name: &'static str,
    /// The agent's product name, for messages.
    pub product: &'static str,
    /// How to install it or point the device at it.
    pub install_hint: &'a str,
    /// Directories below the user's home tried after `PATH` (e.g. `.local/bin`).
    pub home_dirs: &'a [&'a str],
}

impl Cli<'_> {
    /// The configured path if it is a file, else the first match on `PATH` and the usual
    /// places. `Err`: what to tell the user.
    pub fn find(&self, configured: Option<&Path>) -> Result<PathBuf, String> {
        if let Some(path) = configured {
            return if path.is_file() {
                Ok(path.to_owned())
            } else {
                Err(format!(
                    "{} CLI not found at the configured path {}. {}",
                    self.product,
                    path.display(),
                    self.install_hint
                ))
            };
        }
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        let names = self.file_names();
        std::env::split_paths(&path_var)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .chain(self.usual_locations())
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "{} CLI (`{}`) was not found on PATH. {}",
                    self.product, self.name, self.install_hint
                )
            })
    }

    fn file_names(&self) -> Vec<String> {
        if cfg!(windows) {
            vec![
                format!("{}.exe", self.name),
                format!("{}.cmd", self.name),
                self.name.to_owned(),
            ]
        } else {
            vec![self.name.to_owned()]
        }
    }

    fn usual_locations(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(home) = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")) {
            let home = PathBuf::from(home);
            dirs.extend(self.home_dirs.iter().map(|d| home.join(d)));
        }
        dirs.push(PathBuf::from("/usr/local/bin"));
        dirs.push(PathBuf::from("/opt/homebrew/bin"));
        let name = if cfg!(windows) {
            format!("{}.exe", self.name)
        } else {
            self.name.to_owned()
        };
        dirs.into_iter().map(|d| d.join(&name)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLI: Cli<'static> = Cli {
        name: "no-such-agent-cli",
        product: "Some Agent",
        install_hint: "Install it with `npm install -g some-agent`",
        home_dirs: &[".local/bin"],
    };

    #[test]
    fn a_missing_cli_names_the_path_and_the_install_command() {
        let err = CLI.find(Some(Path::new("/nonexistent/x"))).unwrap_err();
        assert_eq!(
            err,
            "Some Agent CLI not found at the configured path /nonexistent/x. Install it with `npm install -g some-agent`"
        );
        let err = CLI.find(None).unwrap_err();
        assert!(err.starts_with("Some Agent CLI (`no-such-agent-cli`) was not found on PATH."));
    }

    #[test]
    fn a_configured_file_is_used_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent");
        std::fs::write(&file, "").unwrap();
        assert_eq!(CLI.find(Some(&file)).unwrap(), file);
    }
}
