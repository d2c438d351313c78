//! Links into the Wegent web app, at `web_url` (config; by default the backend URL, where a
//! deployment whose frontend proxies `/api` serves both).

/// The page of task `task_id`, as Wegent's own device view links it
/// (`frontend/src/features/devices/components/RunningTasksList.tsx`: `/devices/chat?taskId=`).
pub fn task_page_url(web_url: &str, task_id: i64) -> String {
    let base = web_url.trim_end_matches('/');
    // A configured API base (`…/api`) is not where the pages are.
    let base = base.strip_suffix("/api").unwrap_or(base);
    format!("{base}/devices/chat?taskId={task_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_page_on_the_servers_origin() {
        assert_eq!(
            task_page_url("https://wegent.example.com", 42),
            "https://wegent.example.com/devices/chat?taskId=42"
        );
        assert_eq!(
            task_page_url("http://127.0.0.1:8000/", 7),
            "http://127.0.0.1:8000/devices/chat?taskId=7"
        );
        assert_eq!(
            task_page_url("https://w.example.com/wegent/api/", 7),
            "https://w.example.com/wegent/devices/chat?taskId=7"
        );
    }
}
