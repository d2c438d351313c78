use super::*;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A zip with `(name, content)` entries, deflated.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn extract_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<(), String>) {
    extract_capped(bytes, MAX_UNPACKED_BYTES)
}

fn extract_capped(bytes: &[u8], cap: u64) -> (tempfile::TempDir, Result<(), String>) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.zip");
    std::fs::write(&archive, bytes).unwrap();
    let result = extract(&archive, &dir.path().join("skills/s"), cap);
    (dir, result)
}

#[test]
fn plan_takes_required_names_with_refs_and_lists_the_rest() {
    let raw = include_str!("../../../tests/fixtures/task-execute.sample.json");
    let mut payload: Value = serde_json::from_str(raw).unwrap();
    payload["skill_names"] = json!(["mermaid-diagram", "browser"]);
    payload["bot"][0]["skills"] = json!(["browser", "subscription-manager"]);
    payload["bot"][0]["skill_refs"] = json!({"browser": {"skill_id": 9, "namespace": "default"}});
    payload["preload_skills"] = json!(["browser"]);
    payload["required_skills"] = json!([{"name": "local-only"}, "browser"]);
    payload["team_namespace"] = "team-ns".into();
    let plan = plan(&payload);
    assert_eq!(
        plan.required,
        [
            RequiredSkill {
                name: "browser".into(),
                reference: SkillRef {
                    skill_id: Some(9),
                    namespace: Some("default".into())
                }
            },
            RequiredSkill {
                name: "local-only".into(),
                reference: SkillRef::default()
            },
        ]
    );
    assert_eq!(plan.skipped, ["mermaid-diagram", "subscription-manager"]);
    assert_eq!(plan.team_namespace.as_deref(), Some("team-ns"));
}

#[test]
fn a_top_folder_is_remapped_and_files_land_in_the_skill_dir() {
    let (dir, result) = extract_bytes(&zip_of(&[
        ("other-name/SKILL.md", b"# skill"),
        ("other-name/tools/run.py", b"print(1)"),
    ]));
    result.unwrap();
    let skill = dir.path().join("skills/s");
    assert_eq!(
        std::fs::read_to_string(skill.join("SKILL.md")).unwrap(),
        "# skill"
    );
    assert!(skill.join("tools/run.py").is_file());
    assert!(!dir.path().join("skills/s.extracting").exists());
}

#[test]
fn archives_without_skill_md_or_with_escaping_paths_are_refused() {
    let (_d, r) = extract_bytes(&zip_of(&[("README.md", b"x")]));
    assert!(r.unwrap_err().contains("no SKILL.md"));
    let (d, r) = extract_bytes(&zip_of(&[("SKILL.md", b"x"), ("../evil.sh", b"x")]));
    assert!(r.unwrap_err().contains("`../evil.sh` points outside"));
    assert!(!d.path().join("evil.sh").exists() && !d.path().join("skills/s").exists());
    let (_d, r) = extract_bytes(b"not a zip");
    assert!(r.unwrap_err().contains("not a zip"));
}

#[test]
fn a_zip_bomb_stops_at_the_unpacked_cap() {
    // 5 MB of zeros deflates to a few KB; the cap is 1 MB.
    let zeros = vec![0u8; 5_000_000];
    let bytes = zip_of(&[("SKILL.md", b"x"), ("big.bin", &zeros)]);
    assert!(bytes.len() < 100_000);
    let (d, r) = extract_capped(&bytes, 1_000_000);
    assert!(
        r.unwrap_err().contains("more than 1000000 bytes"),
        "refused"
    );
    assert!(!d.path().join("skills/s").exists());
    assert!(!d.path().join("skills/s.extracting").exists());
}

/// A skills endpoint like the backend's (§16.6): lookup by name, download with an ETag,
/// 304 for a matching `If-None-Match`; every request recorded.
async fn skills_server(archive: Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::extract::{Path as UrlPath, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    type Seen = Arc<Mutex<Vec<String>>>;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/v1/kinds/skills",
            axum::routing::get(
                |State((seen, _)): State<(Seen, Vec<u8>)>, RawQuery(q): RawQuery| async move {
                    seen.lock()
                        .unwrap()
                        .push(format!("lookup {}", q.unwrap_or_default()));
                    axum::Json(json!({"items": [{"metadata": {"labels": {"id": "13"}}}]}))
                },
            ),
        )
        .route(
            "/api/v1/kinds/skills/{id}/download",
            axum::routing::get(
                |State((seen, zip)): State<(Seen, Vec<u8>)>,
                 UrlPath(id): UrlPath<i64>,
                 RawQuery(q): RawQuery,
                 headers: HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let inm = headers
                        .get("if-none-match")
                        .map(|v| v.to_str().unwrap().to_owned());
                    seen.lock().unwrap().push(format!(
                        "download {id} {} {auth:?} {inm:?}",
                        q.unwrap_or_default()
                    ));
                    if id != 13 {
                        return StatusCode::NOT_FOUND.into_response();
                    }
                    if inm.as_deref() == Some("\"sha256:v1\"") {
                        return StatusCode::NOT_MODIFIED.into_response();
                    }
                    ([("etag", "\"sha256:v1\"")], zip).into_response()
                },
            ),
        )
        .with_state((seen.clone(), archive));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn required_skills_download_once_then_reuse_the_cache_on_304() {
    let (url, seen) = skills_server(zip_of(&[
        ("mermaid/SKILL.md", b"# mermaid"),
        ("mermaid/x.py", b"1"),
    ]))
    .await;
    let home = tempfile::tempdir().unwrap();
    let http = fetch::client(&url);
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(None);
    let plan = plan(
        &json!({"preload_skills": ["mermaid-diagram"], "team_namespace": "team",
        "skill_names": ["browser"]}),
    );
    for task_id in [5, 6] {
        let skills_dir = home.path().join(format!("tasks/{task_id}/claude/skills"));
        let installer = Installer {
            http: &http,
            backend_url: &url,
            token: Some("task-tok"),
            task_id,
            cache_dir: &home.path().join("cache/skills"),
            skills_dir: &skills_dir,
        };
        install_required(&installer, &plan, &mut stop)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(skills_dir.join("mermaid-diagram/SKILL.md")).unwrap(),
            "# mermaid"
        );
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "lookup name=mermaid-diagram&namespace=team&task_id=5",
            "download 13 namespace=team&task_id=5 Some(\"Bearer task-tok\") None",
            "lookup name=mermaid-diagram&namespace=team&task_id=6",
            "download 13 namespace=team&task_id=6 Some(\"Bearer task-tok\") Some(\"\\\"sha256:v1\\\"\")",
        ]
    );
}

#[tokio::test]
async fn a_missing_required_skill_fails_with_its_name_and_status() {
    let (url, _) = skills_server(zip_of(&[("SKILL.md", b"x")])).await;
    let home = tempfile::tempdir().unwrap();
    let http = fetch::client(&url);
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(None);
    let plan = plan(&json!({"required_skills": ["gone"],
        "preload_skill_refs": {"gone": {"skill_id": 99, "namespace": "default"}}}));
    let installer = Installer {
        http: &http,
        backend_url: &url,
        token: None,
        task_id: 1,
        cache_dir: &home.path().join("cache"),
        skills_dir: &home.path().join("skills"),
    };
    let Err(InstallError::Failed(e)) = install_required(&installer, &plan, &mut stop).await else {
        panic!("expected a failure");
    };
    assert_eq!(
        e.to_string(),
        "required Skill deployment failed: gone (the server answered HTTP 404)"
    );
}

#[test]
fn skill_names_are_single_components() {
    assert!(is_safe_name("mermaid-diagram"));
    for bad in ["", "..", "a/b", "/abs", "a\\b", "."] {
        assert!(!is_safe_name(bad), "{bad}");
    }
}
