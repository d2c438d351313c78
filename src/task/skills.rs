//! Skills a task must have (protocol.md §16.6): `preload_skills`/`required_skills` are
//! downloaded (ETag-cached under the executor home) and extracted where the task's agent reads
//! them (`claude/skills/<name>/`, or `codex/skills/<name>/` for Codex: `TaskDirs::skills_dir`).
//! Other skill names are skipped, and the log says which.
//!
//! The plan and the archive checks are pure or synchronous and unit-tested; the HTTP calls sit
//! in [`install_required`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::fetch::{self, Download, FetchError, Fetched};
use super::payload::id_field;
use super::runner::StopSignal;

/// Per download, as Wegent's executor does.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// A skill is prompts and small scripts (the captured mermaid skill is 23 KB); these caps only
/// stop a hostile or broken archive from filling the disk.
pub const MAX_ARCHIVE_BYTES: u64 = 50_000_000;
pub const MAX_UNPACKED_BYTES: u64 = 200_000_000;
pub const MAX_ENTRIES: usize = 10_000;
const SKILL_FILE: &str = "SKILL.md";

/// What the backend says about one skill.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkillRef {
    pub skill_id: Option<i64>,
    pub namespace: Option<String>,
}

/// One skill to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredSkill {
    pub name: String,
    pub reference: SkillRef,
}

/// The skills of a task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkillPlan {
    pub required: Vec<RequiredSkill>,
    /// Other skill names: not installed on a device (names only, for the log).
    pub skipped: Vec<String>,
    /// Where a skill without a ref is looked up.
    pub team_namespace: Option<String>,
}

/// A required skill that could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("required Skill deployment failed: {name} ({reason})")]
pub struct SkillError {
    pub name: String,
    pub reason: String,
}

pub fn plan(payload: &Value) -> SkillPlan {
    let bot = payload
        .get("bot")
        .and_then(Value::as_array)
        .and_then(|b| b.first());
    // Later sources are more specific: the preload refs win.
    let mut refs: BTreeMap<String, SkillRef> = BTreeMap::new();
    for source in [
        payload.get("skill_refs"),
        bot.and_then(|b| b.get("skill_refs")),
        payload.get("preload_skill_refs"),
    ] {
        for (name, r) in source.and_then(Value::as_object).into_iter().flatten() {
            refs.insert(
                name.clone(),
                SkillRef {
                    skill_id: id_field(r, "skill_id").or_else(|| id_field(r, "id")),
                    namespace: r
                        .get("namespace")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
            );
        }
    }
    let mut required_names = names(payload.get("preload_skills"));
    required_names.extend(names(payload.get("required_skills")));
    dedup(&mut required_names);
    let mut skipped = names(payload.get("skill_names"));
    skipped.extend(names(bot.and_then(|b| b.get("skills"))));
    skipped.retain(|n| !required_names.contains(n));
    dedup(&mut skipped);
    SkillPlan {
        required: required_names
            .into_iter()
            .map(|name| RequiredSkill {
                reference: refs.get(&name).cloned().unwrap_or_default(),
                name,
            })
            .collect(),
        skipped,
        team_namespace: payload
            .get("team_namespace")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// Names from a list of strings or of `{name}` objects.
fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().or_else(|| v.get("name")?.as_str()))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn dedup(names: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
}

/// A skill name used as a directory name: one plain path component.
fn is_safe_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(Component::Normal(_)))
        && parts.next().is_none()
        && !name.contains(['\\', '\0'])
}

/// Extract `archive` into `dest` (replaced whole). The archive must hold a `SKILL.md`, at its
/// top or inside one top folder (whatever its name: it is remapped to `dest`). Entries that
/// would land outside `dest`, links, more than [`MAX_ENTRIES`] entries or more than
/// `max_unpacked` bytes are refused.
pub fn extract(archive: &Path, dest: &Path, max_unpacked: u64) -> Result<(), String> {
    let file = std::fs::File::open(archive).map_err(|e| format!("cannot read the archive: {e}"))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("the download is not a zip file: {e}"))?;
    if zip.len() > MAX_ENTRIES {
        return Err(format!("the archive has more than {MAX_ENTRIES} entries"));
    }
    let mut entries = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| format!("a broken entry: {e}"))?;
        let raw_name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        let path = entry
            .enclosed_name()
            .filter(|p| p.components().all(|c| matches!(c, Component::Normal(_))))
            .ok_or_else(|| format!("the entry `{raw_name}` points outside the skill folder"))?;
        if entry.is_symlink() {
            return Err(format!("the entry `{raw_name}` is a link"));
        }
        entries.push((i, path, entry.is_dir()));
    }
    let root = skill_root(entries.iter().filter(|e| !e.2).map(|e| e.1.as_path()))
        .ok_or_else(|| format!("the archive has no {SKILL_FILE}"))?;
    let staging = sibling(dest, ".extracting");
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
        let mut budget = max_unpacked;
        for (i, path, is_dir) in &entries {
            let Ok(relative) = path.strip_prefix(&root) else {
                continue;
            };
            if relative.as_os_str().is_empty() {
                continue;
            }
            let target = staging.join(relative);
            if *is_dir {
                std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
                continue;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let entry = zip.by_index(*i).map_err(|e| e.to_string())?;
            let mut out = std::fs::File::create(&target).map_err(|e| e.to_string())?;
            // The declared size may lie: count the bytes actually inflated.
            let copied = std::io::copy(&mut entry.take(budget + 1), &mut out)
                .map_err(|e| format!("cannot unpack {}: {e}", relative.display()))?;
            if copied > budget {
                return Err(format!(
                    "the archive unpacks to more than {max_unpacked} bytes"
                ));
            }
            budget -= copied;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&staging, dest)
        .map_err(|e| format!("cannot install into {}: {e}", dest.display()))
}

/// The folder holding `SKILL.md`: the top (empty path), or a single top folder.
fn skill_root<'a>(files: impl Iterator<Item = &'a Path>) -> Option<PathBuf> {
    let mut best: Option<PathBuf> = None;
    for path in files {
        if path.file_name().is_some_and(|n| n == SKILL_FILE) {
            let parent = path.parent().unwrap_or(Path::new("")).to_owned();
            if parent.components().count() <= 1
                && best
                    .as_ref()
                    .is_none_or(|b| parent.components().count() < b.components().count())
            {
                best = Some(parent);
            }
        }
    }
    best
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// What [`install_required`] needs.
pub struct Installer<'a> {
    pub http: &'a reqwest::Client,
    /// The device's configured backend URL.
    pub backend_url: &'a str,
    pub token: Option<&'a str>,
    pub task_id: i64,
    /// `H/cache/skills/`: archives and their ETags, shared by all tasks.
    pub cache_dir: &'a Path,
    /// The agent's skills dir in the task's private state.
    pub skills_dir: &'a Path,
}

/// Install every required skill, in order. Cancel ends it with the stop message.
pub async fn install_required(
    installer: &Installer<'_>,
    plan: &SkillPlan,
    stop: &mut StopSignal,
) -> Result<(), InstallError> {
    for skill in &plan.required {
        install_one(installer, plan, skill, stop)
            .await
            .map_err(|reason| match reason {
                FetchOr::Cancelled(message) => InstallError::Cancelled(message),
                FetchOr::Failed(reason) => InstallError::Failed(SkillError {
                    name: skill.name.clone(),
                    reason,
                }),
            })?;
        tracing::info!(task_id = installer.task_id, skill = %skill.name, "required skill installed");
    }
    Ok(())
}

#[derive(Debug)]
pub enum InstallError {
    Failed(SkillError),
    Cancelled(String),
}

enum FetchOr {
    Cancelled(String),
    Failed(String),
}

impl From<FetchError> for FetchOr {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Cancelled(m) => Self::Cancelled(m),
            other => Self::Failed(other.to_string()),
        }
    }
}

async fn install_one(
    installer: &Installer<'_>,
    plan: &SkillPlan,
    skill: &RequiredSkill,
    stop: &mut StopSignal,
) -> Result<(), FetchOr> {
    if !is_safe_name(&skill.name) {
        return Err(FetchOr::Failed("not a valid skill name".into()));
    }
    let base = installer.backend_url.trim_end_matches('/');
    let namespace = skill
        .reference
        .namespace
        .clone()
        .or_else(|| plan.team_namespace.clone())
        .unwrap_or_else(|| "default".into());
    let skill_id = match skill.reference.skill_id {
        Some(id) => id,
        None => {
            let url = url::Url::parse_with_params(
                &format!("{base}/api/v1/kinds/skills"),
                [
                    ("name", skill.name.as_str()),
                    ("namespace", namespace.as_str()),
                    ("task_id", &installer.task_id.to_string()),
                ],
            )
            .map_err(|e| FetchOr::Failed(format!("bad backend URL: {e}")))?;
            let answer = fetch::get_json(
                installer.http,
                url.as_str(),
                installer.token,
                DOWNLOAD_TIMEOUT,
                stop,
            )
            .await?;
            id_field(&answer["items"][0]["metadata"]["labels"], "id").ok_or_else(|| {
                FetchOr::Failed(format!("no skill of that name in namespace `{namespace}`"))
            })?
        }
    };
    let url = url::Url::parse_with_params(
        &format!("{base}/api/v1/kinds/skills/{skill_id}/download"),
        [
            ("namespace", namespace.as_str()),
            ("task_id", &installer.task_id.to_string()),
        ],
    )
    .map_err(|e| FetchOr::Failed(format!("bad backend URL: {e}")))?;
    let io = |e: std::io::Error| FetchOr::Failed(e.to_string());
    std::fs::create_dir_all(installer.cache_dir).map_err(io)?;
    let key = format!("{}-{skill_id}", safe_key(&namespace));
    let cached = installer.cache_dir.join(format!("{key}.zip"));
    let etag_file = installer.cache_dir.join(format!("{key}.etag"));
    let etag = cached
        .is_file()
        .then(|| std::fs::read_to_string(&etag_file).ok())
        .flatten();
    // Two tasks may fetch the same skill at once: each downloads to its own file first.
    let fresh = installer
        .cache_dir
        .join(format!("{key}.task-{}.zip", installer.task_id));
    let spec = Download {
        url: url.as_str(),
        token: installer.token,
        if_none_match: etag.as_deref().map(str::trim),
        dest: &fresh,
        max_bytes: MAX_ARCHIVE_BYTES,
        timeout: DOWNLOAD_TIMEOUT,
    };
    match fetch::download(installer.http, &spec, stop).await? {
        Fetched::NotModified => {
            tracing::debug!(skill = %skill.name, "skill archive unchanged (304); using the cache")
        }
        Fetched::Saved { etag, .. } => {
            std::fs::rename(&fresh, &cached).map_err(io)?;
            match etag {
                Some(tag) => std::fs::write(&etag_file, tag).map_err(io)?,
                None => {
                    let _ = std::fs::remove_file(&etag_file);
                }
            }
        }
    }
    std::fs::create_dir_all(installer.skills_dir).map_err(io)?;
    let dest = installer.skills_dir.join(&skill.name);
    let archive = cached.clone();
    tokio::task::spawn_blocking(move || extract(&archive, &dest, MAX_UNPACKED_BYTES))
        .await
        .map_err(|e| FetchOr::Failed(e.to_string()))?
        .map_err(FetchOr::Failed)
}

fn safe_key(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
