//! Which directory a task runs in (protocol.md §16.2–16.3): a pure decision from the request,
//! the workspace root `W` and the user's home, plus the one I/O step that makes it exist.
//!
//! 1. `project_workspace_path` (trimmed): `~`/`~/…` under the user's home, absolute as is,
//!    relative under `W` (never above it);
//! 2. else, with a git URL: `W/<task_id>/<repo>`;
//! 3. else `W/<task_id>`.
//!
//! The device's private per-task state never goes here (see [`super::workspace`]).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::git::{self, GitError};
use super::runner::StopSignal;

/// The repository a task works on: what the git step clones when the directory is missing or
/// empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    pub url: String,
    /// `None`: the remote's default branch.
    pub branch: Option<String>,
}

/// The user's git account from the payload (`user.git_login`, `git_email`, `git_id`), for a
/// repo-local commit identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitIdentity {
    pub login: String,
    pub email: Option<String>,
    pub id: Option<String>,
}

/// The part of `task:execute` that locates the task's directory (protocol.md §16.1), already
/// normalized: empty strings and `0` ids are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceRequest {
    pub project_id: Option<i64>,
    pub project_workspace_path: Option<String>,
    /// `local_path`, `git`, `git_worktree`, …; informational.
    pub workspace_source: Option<String>,
    pub git: Option<GitSource>,
    /// A Wework standalone chat: the backend pins the directory we report in
    /// `response.completed` (§16.5).
    pub standalone_chat_workspace: bool,
}

/// How the working directory was chosen; decides what cleanup may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkDirKind {
    /// The payload named the folder (a project, a worktree, a pinned standalone dir): the
    /// user's, never deleted by the device.
    Project,
    /// `W/<task_id>`: the device's scratch dir.
    Scratch,
    /// `W/<task_id>/<repo>`: the device's clone of a non-project git task.
    ScratchClone,
}

/// The task's working directory and what prepares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDir {
    pub path: PathBuf,
    pub kind: WorkDirKind,
    /// Set when the task has a repository: the git step clones into `path` or reuses it.
    pub git: Option<GitSource>,
}

impl WorkDir {
    /// The device made this folder for the task and may remove it with the task.
    pub fn created_by_device(&self) -> bool {
        self.kind != WorkDirKind::Project
    }

    /// What the tray and `status` show for a running task: the project folder's name, none for
    /// a scratch dir (its name is just the task id).
    pub fn display_name(&self) -> Option<String> {
        match self.kind {
            WorkDirKind::Scratch => None,
            WorkDirKind::Project | WorkDirKind::ScratchClone => self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
        }
    }
}

/// A working directory that cannot be used; the message names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum WorkDirError {
    #[error("The project folder `{path}` starts with `~`, but this device has no home directory to expand it to; use an absolute path")]
    NoHome { path: String },
    #[error("The project folder `{path}` leads outside the device's workspace root {root}; use an absolute path or a path inside the root")]
    EscapesRoot { path: String, root: PathBuf },
    #[error(
        "The project folder {0} exists but is a file, not a folder; point the project at a folder"
    )]
    NotADirectory(PathBuf),
    #[error("Could not create the task folder {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Choose the directory (§16.3). Pure: `root` is `W`, `user_home` expands `~`.
pub fn resolve(
    req: &WorkspaceRequest,
    task_id: i64,
    root: &Path,
    user_home: Option<&Path>,
) -> Result<WorkDir, WorkDirError> {
    let git = req.git.clone();
    if let Some(raw) = req.project_workspace_path.as_deref().map(str::trim) {
        if !raw.is_empty() {
            return Ok(WorkDir {
                path: project_path(raw, root, user_home)?,
                kind: WorkDirKind::Project,
                git,
            });
        }
    }
    let scratch = root.join(task_id.to_string());
    Ok(match &git {
        Some(source) => WorkDir {
            path: scratch.join(repo_dir_name(&source.url)),
            kind: WorkDirKind::ScratchClone,
            git,
        },
        None => WorkDir {
            path: scratch,
            kind: WorkDirKind::Scratch,
            git: None,
        },
    })
}

fn project_path(raw: &str, root: &Path, user_home: Option<&Path>) -> Result<PathBuf, WorkDirError> {
    if raw == "~" || raw.starts_with("~/") {
        let home = user_home.ok_or_else(|| WorkDirError::NoHome {
            path: raw.to_owned(),
        })?;
        return Ok(home.join(raw[1..].trim_start_matches('/')));
    }
    let path = Path::new(raw);
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    // Relative paths come from the backend (`projects/demo`, `project3`); `..` must not lead
    // the task out of the root it resolves them against.
    let mut out = root.to_owned();
    let mut depth = 0usize;
    for part in path.components() {
        match part {
            Component::Normal(name) => {
                out.push(name);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            _ => {
                return Err(WorkDirError::EscapesRoot {
                    path: raw.to_owned(),
                    root: root.to_owned(),
                })
            }
        }
    }
    Ok(out)
}

/// `<repo>` of `W/<task_id>/<repo>`: the URL's last path segment without `.git`; a name that
/// could not be a single directory becomes `repo`.
pub fn repo_dir_name(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':', '\\']).next().unwrap_or_default();
    let name = last.strip_suffix(".git").unwrap_or(last);
    if name.is_empty() || name == "." || name == ".." || name.contains('\0') {
        "repo".to_owned()
    } else {
        name.to_owned()
    }
}

/// Make the directory exist: the git step for a repository (it clones into a missing or empty
/// directory), else `mkdir -p`. A file in the way is an error that names it.
pub async fn prepare(
    dir: &WorkDir,
    identity: Option<&GitIdentity>,
    git_timeout: Duration,
    stop: &mut StopSignal,
) -> Result<(), WorkDirError> {
    if dir.path.exists() && !dir.path.is_dir() {
        return Err(WorkDirError::NotADirectory(dir.path.clone()));
    }
    let create = |path: &Path| -> Result<(), WorkDirError> {
        // The device's own scratch dirs are the user's only; a project folder keeps the
        // permissions the user gives it.
        let made = match dir.kind {
            WorkDirKind::Project => std::fs::create_dir_all(path),
            WorkDirKind::Scratch | WorkDirKind::ScratchClone => {
                super::workspace::create_private_dir(path)
            }
        };
        made.map_err(|source| WorkDirError::Create {
            path: path.to_owned(),
            source,
        })
    };
    if let Some(source) = &dir.git {
        if let (WorkDirKind::ScratchClone, Some(scratch)) = (dir.kind, dir.path.parent()) {
            create(scratch)?;
        }
        git::prepare_checkout(&dir.path, source, identity, git_timeout, stop).await?;
        return Ok(());
    }
    create(&dir.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: Option<&str>, git: Option<&str>) -> WorkspaceRequest {
        WorkspaceRequest {
            project_workspace_path: path.map(str::to_owned),
            git: git.map(|url| GitSource {
                url: url.to_owned(),
                branch: None,
            }),
            ..WorkspaceRequest::default()
        }
    }

    fn resolve_at(r: &WorkspaceRequest) -> Result<WorkDir, WorkDirError> {
        resolve(r, 7, Path::new("/w"), Some(Path::new("/home/u")))
    }

    #[test]
    fn paths_expand_home_keep_absolute_and_put_relative_under_the_root() {
        let cases = [
            ("  /abs/proj ", "/abs/proj"),
            ("~", "/home/u"),
            ("~/code/x", "/home/u/code/x"),
            ("projects/demo", "/w/projects/demo"),
            ("./project3/", "/w/project3"),
            ("a/../b", "/w/b"),
            ("~other", "/w/~other"),
        ];
        for (raw, want) in cases {
            let dir = resolve_at(&req(Some(raw), None)).unwrap();
            assert_eq!(dir.path, Path::new(want), "{raw}");
            assert_eq!(dir.kind, WorkDirKind::Project);
            assert!(!dir.created_by_device());
        }
    }

    #[test]
    fn relative_paths_may_not_leave_the_root() {
        for raw in ["..", "../x", "projects/../../etc", "a/../../b"] {
            let err = resolve_at(&req(Some(raw), None)).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, WorkDirError::EscapesRoot { .. }) && message.contains(raw),
                "{raw}: {message}"
            );
        }
        let err = resolve(&req(Some("~/x"), None), 7, Path::new("/w"), None).unwrap_err();
        assert!(err.to_string().contains("`~/x`"), "{err}");
    }

    #[test]
    fn without_a_path_the_task_gets_a_scratch_dir_or_a_clone_in_it() {
        let dir = resolve_at(&req(None, None)).unwrap();
        assert_eq!(
            (dir.path.as_path(), dir.kind),
            (Path::new("/w/7"), WorkDirKind::Scratch)
        );
        assert!(dir.created_by_device() && dir.display_name().is_none());
        let dir = resolve_at(&req(Some("   "), Some("git@host:org/tool.git"))).unwrap();
        assert_eq!(
            (dir.path.as_path(), dir.kind),
            (Path::new("/w/7/tool"), WorkDirKind::ScratchClone)
        );
        assert!(dir.created_by_device());
        assert_eq!(dir.display_name().as_deref(), Some("tool"));
    }

    #[test]
    fn repo_names_are_single_directories() {
        assert_eq!(repo_dir_name("https://h/org/demo.git/"), "demo");
        assert_eq!(repo_dir_name("git://127.0.0.1:9418/demo.git"), "demo");
        assert_eq!(repo_dir_name("git@github.com:org/x"), "x");
        assert_eq!(repo_dir_name("https://h/.."), "repo");
        assert_eq!(repo_dir_name(".git"), "repo");
    }

    /// Every payload captured from the real backend (protocol.md §16.9), resolved with
    /// `W = /w` and the user's home `/home/u`.
    #[test]
    fn the_captured_payloads_resolve_as_section_16_3_says() {
        let git = |branch: &str| {
            Some(GitSource {
                url: "git://127.0.0.1:9418/demo.git".into(),
                branch: Some(branch.into()),
            })
        };
        let myproj = "/home/u/code/myproj";
        let cases = [
            ("localpath", myproj, WorkDirKind::Project, None),
            ("followup", myproj, WorkDirKind::Project, None),
            ("attachment", myproj, WorkDirKind::Project, None),
            ("git", "/w/projects/demo", WorkDirKind::Project, git("main")),
            (
                "git-worktree",
                "/home/u/.wecode/wegent-executor/workspace/worktrees/13/demo",
                WorkDirKind::Project,
                git("main"),
            ),
            (
                "git-no-project",
                "/w/11/demo",
                WorkDirKind::ScratchClone,
                git("main"),
            ),
            (
                "standalone-turn2",
                "/home/u/scratch",
                WorkDirKind::Project,
                None,
            ),
        ];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/task-execute");
        for (name, path, kind, git) in cases {
            let raw = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
            let payload: serde_json::Value = serde_json::from_str(&raw).unwrap();
            let req = super::super::payload::parse(&payload).unwrap();
            let got = resolve(
                &req.workspace,
                req.task_id,
                Path::new("/w"),
                Some(Path::new("/home/u")),
            )
            .unwrap();
            let want = WorkDir {
                path: path.into(),
                kind,
                git,
            };
            assert_eq!(got, want, "{name}");
            assert_eq!(req.bot_id.as_deref(), Some("34"), "{name}");
            let identity = req.git_identity.as_ref().unwrap();
            assert_eq!(
                (
                    identity.login.as_str(),
                    identity.email.as_deref(),
                    identity.id.as_deref()
                ),
                (
                    "research-bot",
                    Some("research-bot@example.invalid"),
                    Some("7")
                ),
                "{name}"
            );
            assert_eq!(
                req.workspace.standalone_chat_workspace,
                name == "standalone-turn2",
                "{name}"
            );
            let project_id = req.workspace.project_id;
            match name {
                "git-no-project" | "standalone-turn2" => assert_eq!(project_id, None, "{name}"),
                _ => assert!(project_id.is_some(), "{name}"),
            }
        }
    }

    #[test]
    fn the_git_url_falls_back_to_the_workspace_copy_and_empty_means_none() {
        let parse = |v: serde_json::Value| super::super::payload::parse(&v).unwrap().workspace;
        let w = parse(
            serde_json::json!({"task_id": 1, "subtask_id": 2, "git_url": null,
            "project_workspace_path": "", "project_id": 0,
            "workspace": {"repository": {"gitUrl": "https://h/x.git", "branchName": ""}, "branch": "dev"}}),
        );
        assert_eq!(
            w.git,
            Some(GitSource {
                url: "https://h/x.git".into(),
                branch: Some("dev".into())
            })
        );
        assert_eq!((w.project_workspace_path, w.project_id), (None, None));
        let w = parse(
            serde_json::json!({"task_id": 1, "subtask_id": 2, "git_url": "",
            "workspace": {"repository": {"gitUrl": ""}}}),
        );
        assert_eq!(w.git, None);
    }

    #[tokio::test]
    async fn prepare_creates_the_folder_and_names_a_file_in_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let (_tx, mut stop) = tokio::sync::watch::channel(None);
        let dir = WorkDir {
            path: tmp.path().join("a/b"),
            kind: WorkDirKind::Project,
            git: None,
        };
        prepare(&dir, None, Duration::from_secs(5), &mut stop)
            .await
            .unwrap();
        assert!(dir.path.is_dir());
        let file = tmp.path().join("notes.txt");
        std::fs::write(&file, "x").unwrap();
        let dir = WorkDir {
            path: file.clone(),
            ..dir
        };
        let err = prepare(&dir, None, Duration::from_secs(5), &mut stop)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
    }
}
