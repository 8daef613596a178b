//! The web dashboard (SPEC §13): the files of `assets/`, embedded in the
//! binary at build time and served at `/` and `/ui/…`.
//!
//! The pages are plain ES modules (see `README.md` beside this file for
//! why); the server only hands out bytes. Each answer carries a strict
//! Content-Security-Policy (no inline script or style, connections to this
//! origin only) and an `ETag` of the embedded bytes, so a reload is a 304.
//! Everything the pages show comes from the API with the signed-in
//! credential, so the dashboard is scoped exactly like the API.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// One embedded file.
pub struct Asset {
    /// The file name in `assets/` (the directory is flat).
    pub name: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset { name: $name, bytes: include_bytes!(concat!("assets/", $name)) },)*]
    };
}

/// Every file of `assets/` (a unit test checks that none is missing).
pub const ASSETS: &[Asset] = assets![
    "index.html",
    "app.css",
    "app.js",
    "api.js",
    "stream.js",
    "session.js",
    "dom.js",
    "board.js",
    "task.js",
    "agents.js",
    "webhooks.js",
    "attention.js",
    "feed.js",
];

/// The policy of `README.md`: this origin's scripts, styles and API only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The entity tag of each asset, computed once: a SHA-256 prefix of its
/// bytes, in the order of [`ASSETS`].
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The answer for asset `index` of [`ASSETS`]: its bytes, or 304 when the
/// request's `If-None-Match` names its tag.
fn serve(req: &HttpRequest, index: usize) -> HttpResponse {
    let asset = &ASSETS[index];
    let tag = &etags()[index];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        // Weak comparison (RFC 9110 §13.1.2): a proxy that compresses may
        // hand the tag back as W/"…".
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/") == tag)
        });
    let mut resp = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, tag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if fresh {
        return resp.finish();
    }
    resp.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.name)),
    ))
    .body(asset.bytes)
}

fn find(name: &str) -> Option<usize> {
    ASSETS.iter().position(|a| a.name == name)
}

/// `GET /`, `/ui`, `/ui/`: the page.
async fn index(req: HttpRequest) -> Result<HttpResponse, Error> {
    let i = find("index.html").ok_or_else(|| Error::internal("index.html is not embedded"))?;
    Ok(serve(&req, i))
}

/// `GET /ui/{file}`: one asset; anything else is the usual JSON 404.
async fn file(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, Error> {
    match find(&name) {
        Some(i) => Ok(serve(&req, i)),
        None => Err(Error::not_found(format!("no dashboard file {name:?}"))),
    }
}

/// Registers the dashboard's routes at the root of the app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // GET and HEAD (actix sends no body for HEAD).
    for path in ["/", "/ui", "/ui/"] {
        cfg.route(path, web::get().to(index))
            .route(path, web::head().to(index));
    }
    cfg.route("/ui/{file}", web::get().to(file))
        .route("/ui/{file}", web::head().to(file));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_assets_directory_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/dashboard/assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("read the assets directory")
            .map(|e| {
                e.expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn the_first_load_stays_under_its_budget() {
        // The page, its stylesheet and the modules loaded before any view
        // is opened (the views are imported on demand); SPEC §13's budget
        // is 300 KB including the first pages of tasks.
        let first: usize = ["index.html", "app.css", "app.js", "api.js", "stream.js"]
            .iter()
            .chain(["session.js", "dom.js", "board.js"].iter())
            .filter_map(|n| find(n))
            .map(|i| ASSETS[i].bytes.len())
            .sum();
        assert!(first < 150_000, "first load is {first} bytes of assets");
    }
}
