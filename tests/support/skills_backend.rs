//! A skills backend (protocol.md §16.6) serving one skill, `notes-skill` (id 13), as a zip with
//! a top folder; any other id is 404.

#![allow(dead_code)]

use std::io::Write;

/// Serve `notes-skill` whose `SKILL.md` is `skill_md`; returns the backend URL.
pub async fn serve(skill_md: &'static [u8]) -> String {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("notes-skill/SKILL.md", options).unwrap();
    zip.write_all(skill_md).unwrap();
    let archive = zip.finish().unwrap().into_inner();
    let app = axum::Router::new().route(
        "/api/v1/kinds/skills/{id}/download",
        axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<i64>| {
            let archive = archive.clone();
            async move {
                use axum::response::IntoResponse;
                if id == 13 {
                    archive.into_response()
                } else {
                    axum::http::StatusCode::NOT_FOUND.into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
