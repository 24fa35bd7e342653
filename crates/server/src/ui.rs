//! The web UI: a player page at `/`, an operator console at `/console` and their scripts and
//! styles under `/ui/{file}`. The files are compiled into the binary (`crates/server/ui/`), so
//! a node serves its own UI with no build step and no second deployment; they talk to the
//! node's public API like any other client. They are not API routes: not in the OpenAPI
//! document, and open to anonymous browsers (the pages ask for credentials themselves).

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::ApiPath;

/// The player page.
pub const ROUTE_PLAYER_PAGE: &str = "/";
/// The operator console.
pub const ROUTE_CONSOLE_PAGE: &str = "/console";
/// Scripts, styles and icons of both pages.
pub const ROUTE_UI_FILE: &str = "/ui/{file}";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("console.html", HTML),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("api.js", JS),
    asset!("bets.js", JS),
    asset!("fair.js", JS),
    asset!("player.js", JS),
    asset!("console.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// Only this origin's scripts, styles and images; the API and the live WebSocket on the same
/// host; no framing, no plugins, no inline script (the pages have none), so an injected
/// string cannot run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The routes, for any router state (the files need none).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(ROUTE_PLAYER_PAGE, get(player_page))
        .route(ROUTE_CONSOLE_PAGE, get(console_page))
        .route(ROUTE_UI_FILE, get(ui_file))
}

async fn player_page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn console_page(headers: HeaderMap) -> Response {
    serve("console.html", &headers)
}

async fn ui_file(ApiPath(name): ApiPath, headers: HeaderMap) -> Response {
    // The pages are served at their own routes; `/ui/` holds what they load.
    if name.ends_with(".html") {
        return not_found();
    }
    serve(&name, &headers)
}

fn not_found() -> Response {
    ApiError::not_found("not_found", "no such route").into_response()
}

/// Strong ETags from the content, computed once: a browser revalidates (`no-cache`) and gets
/// 304 until the node runs a binary with other files.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| format!("\"{}\"", &hex::encode(Sha256::digest(asset.body))[..32]))
            .collect()
    })
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return not_found();
    };
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, asset.body).into_response()
    };
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, asset.content_type),
        // Revalidate every time: the files change with the binary, and their names do not.
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_name_and_a_known_type() {
        for (i, asset) in ASSETS.iter().enumerate() {
            assert!(ASSETS[..i].iter().all(|a| a.name != asset.name));
            let html = asset.name.ends_with(".html");
            assert_eq!(asset.content_type == HTML, html, "{}", asset.name);
            assert_eq!(asset.content_type == JS, asset.name.ends_with(".js"));
        }
    }

    #[test]
    fn pages_load_nothing_inline() {
        // The CSP refuses inline script and style; a page relying on one would break.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".html")) {
            let text = std::str::from_utf8(asset.body).unwrap();
            assert!(!text.contains("<script>"), "{}", asset.name);
            assert!(!text.contains(" style="), "{}", asset.name);
            assert!(!text.contains("<style"), "{}", asset.name);
            let inline_handler = text.split(" on").skip(1).any(|rest| {
                let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(!inline_handler, "{}: an inline event handler", asset.name);
        }
    }
}
