//! Attachments (protocol.md §16.7): a user stores a file; a device fetches it with the task
//! token, as the backend's `executor-download` answers.
mod support;

use serde_json::Value;
use support::*;
use wegent_devserver::store::User;

#[tokio::test]
async fn a_stored_file_downloads_with_the_task_token_and_only_for_its_owner() {
    let server = server().await;
    let base = server.url();
    let stored: Value = http()
        .post(format!("{base}/api/attachments?filename=notes.txt"))
        .bearer_auth(server.demo_token().unwrap())
        .header("content-type", "text/plain")
        .body("the notes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["original_filename"], "notes.txt");
    assert_eq!(stored["mime_type"], "text/plain");
    assert_eq!(stored["file_size"], 9);
    let id = stored["id"].as_i64().unwrap();
    let url = format!("{base}/api/attachments/{id}/executor-download");

    let (name, _) = server.demo_credentials().unwrap();
    let admin = User {
        id: 1,
        user_name: name,
    };
    let task_token = wegent_devserver::auth::task_token(&admin, 7, 8, &server.config().jwt_secret);
    let res = http()
        .get(&url)
        .bearer_auth(&task_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"notes.txt\""
    );
    assert_eq!(res.text().await.unwrap(), "the notes");

    let res = http().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Missing authentication credentials");

    // A token of a user that does not exist is refused; an id that does not exist is a 404.
    let stranger = User {
        id: 99,
        user_name: "nobody".into(),
    };
    let other = wegent_devserver::auth::task_token(&stranger, 7, 8, &server.config().jwt_secret);
    let res = http().get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(res.status(), 401, "an unknown user's token is refused");
    let missing = format!("{base}/api/attachments/{}/executor-download", id + 1);
    let res = http()
        .get(&missing)
        .bearer_auth(&task_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.shutdown().await;
}
