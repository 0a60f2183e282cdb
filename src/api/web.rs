//! The built-in dashboard: `web/` compiled into the binary, so that `serve` needs no files and no build step. The
//! page's script is a set of ES modules (`web/js/`, entry `main.js`), served as they are from a fixed table.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../web/index.html");
const APP_CSS: &str = include_str!("../../web/app.css");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// `(name, content)` of each of `web/js/`'s files named here, compiled in.
macro_rules! modules {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../web/js/", $name)))),*]
    };
}

/// The dashboard's modules, each served at `/js/{name}`; a name not in this table is a 404. tests/web_assets.rs
/// follows the page's imports to catch a module left out.
const MODULES: &[(&str, &str)] = modules![
    "main.js",
    "api.js",
    "board.js",
    "colors.js",
    "dom.js",
    "filters.js",
    "format.js",
    "frame.js",
    "ingest.js",
    "lanes.js",
    "pulse.js",
    "session.js",
    "status.js",
    "store.js",
    "stream.js",
    "timeline.js",
    "transcript.js",
    "views.js",
    "waterfall.js",
];

/// The page (`/`), its stylesheet and one route per module. The page itself holds no data (it reads the API with
/// the user's read token), so none of these asks for one.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new()
        .route("/", get(index))
        .route("/app.css", get(app_css));
    for &(name, body) in MODULES {
        router = router.route(
            &format!("/js/{name}"),
            get(move || async move { asset(JAVASCRIPT, body) }),
        );
    }
    router
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

async fn app_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::MODULES;

    /// The table and `web/js/` hold the same files: a module added to the directory but not to the table would be
    /// a 404 for the page.
    #[test]
    fn every_module_file_is_in_the_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/js");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").file_name())
            .map(|name| name.into_string().expect("a UTF-8 file name"))
            .collect();
        files.sort();
        let mut table: Vec<String> = MODULES.iter().map(|(name, _)| name.to_string()).collect();
        table.sort();
        assert_eq!(
            table, files,
            "MODULES in src/api/web.rs and the files in web/js/"
        );
    }
}
