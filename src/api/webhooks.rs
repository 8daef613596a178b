//! `/webhooks`: registration, the delivery log, redelivery and test pings.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, ok, page_response, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::{self, check_len, double_option, Page};
use crate::domain::keys;
use crate::error::{Error, Result};
use crate::hub::is_known_kind;
use crate::store::webhooks::{self as hooks, NewWebhook, WebhookChanges};
use crate::webhooks::guard;
use crate::webhooks::sign::SignatureVersion;

#[derive(Deserialize)]
struct WebhookInput {
    url: Option<String>,
    events: Option<Vec<String>>,
    secret: Option<String>,
    signature_version: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    active: Option<bool>,
}

impl WebhookInput {
    fn parse(body: Value) -> Result<WebhookInput> {
        let w: WebhookInput = input::object(body)?;
        if let Some(events) = &w.events {
            if events.is_empty() {
                return Err(Error::validation(
                    "events",
                    "must list at least one event (or \"*\")",
                ));
            }
            if let Some(bad) = events.iter().find(|e| *e != "*" && !is_known_kind(e)) {
                return Err(Error::validation(
                    "events",
                    format!(
                        "unknown event {bad:?}; known: {}",
                        crate::hub::KINDS.join(", ")
                    ),
                ));
            }
        }
        if let Some(s) = &w.secret {
            if s.is_empty() {
                return Err(Error::validation("secret", "must not be empty"));
            }
            check_len("secret", s, 256)?;
        }
        if let Some(v) = &w.signature_version {
            SignatureVersion::parse(v)
                .ok_or_else(|| Error::validation("signature_version", "must be v1 or v2"))?;
        }
        if let Some(Some(d)) = &w.description {
            check_len("description", d, 500)?;
        }
        if let Some(u) = &w.url {
            check_len("url", u, 2000)?;
        }
        Ok(w)
    }
}

/// Checks the target's shape and where it resolves (DNS, off the workers).
async fn check_url(state: &State, url: String) -> Result<String> {
    let allow_private = state.config.allow_private_webhooks;
    web::block(move || guard::check_target(&url, allow_private).map(|u| u.to_string()))
        .await
        .map_err(|e| Error::internal(format!("url check failed: {e}")))?
        .map_err(|reason| Error::validation("url", reason))
}

async fn create(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let w = WebhookInput::parse(body)?;
    let url = w
        .url
        .clone()
        .ok_or_else(|| Error::validation("url", "is required"))?;
    let url = check_url(&state, url).await?;
    let events = w.events.clone().ok_or_else(|| {
        Error::validation("events", "is required: a list of events or [\"*\"]")
    })?;
    let generated = w.secret.is_none();
    let secret = w.secret.clone().unwrap_or_else(keys::new_webhook_secret);
    let new = NewWebhook {
        url,
        events,
        secret: secret.clone(),
        signature_version: w.signature_version.clone().unwrap_or_else(|| "v1".into()),
        description: w.description.clone().flatten(),
    };
    let mut hook = state
        .store
        .write(move |tx| hooks::insert(tx, &caller, new))
        .await?;
    // The dispatcher may be asleep, with no hook to feed until now.
    state.store.hub().wake_dispatcher();
    if generated {
        hook.secret = Some(secret);
    }
    created(&hook)
}

async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let list = state
        .store
        .read(move |conn| hooks::list(conn, &caller))
        .await?;
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let items: Vec<_> = list
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize + 1)
        .collect();
    page_response(&req, &q, page, items)
}

async fn get(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let hook = state
        .store
        .read(move |c| hooks::require(c, &caller, id))
        .await?;
    ok(&hook)
}

async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let w = WebhookInput::parse(body)?;
    let url = match w.url.clone() {
        Some(u) => Some(check_url(&state, u).await?),
        None => None,
    };
    let changes = WebhookChanges {
        url,
        events: w.events,
        secret: w.secret,
        signature_version: w.signature_version,
        description: w.description,
        active: w.active,
    };
    let hook = state
        .store
        .write(move |tx| hooks::update(tx, &caller, id, changes))
        .await?;
    // Re-enabled hooks may have deliveries waiting.
    state.store.hub().wake_dispatcher();
    ok(&hook)
}

async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    state
        .store
        .write(move |tx| hooks::delete(tx, &caller, id))
        .await?;
    ok(&json!({ "deleted": true, "id": id }))
}

async fn deliveries(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let list = state
        .store
        .read(move |c| {
            hooks::require(c, &caller, id)?;
            hooks::attempts(c, id, page.limit + 1, page.offset)
        })
        .await?;
    page_response(&req, &q, page, list)
}

async fn redeliver(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("webhook", &path.0)?;
    let did = path_id("delivery", &path.1)?;
    let queued = state
        .store
        .write(move |tx| {
            hooks::require(tx, &caller, id)?;
            hooks::redeliver(tx, &caller, id, did)
        })
        .await?;
    state.store.hub().wake_dispatcher();
    created(&queued)
}

async fn test(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("webhook", &path)?;
    let queued = state
        .store
        .write(move |tx| {
            let hook = hooks::require(tx, &caller, id)?;
            hooks::ping(tx, &caller, &hook)
        })
        .await?;
    state.store.hub().wake_dispatcher();
    ok(&queued)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/webhooks/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .route("/webhooks/{id}/deliveries", web::get().to(deliveries))
    .route(
        "/webhooks/{id}/deliveries/{did}/redeliver",
        web::post().to(redeliver),
    )
    .route("/webhooks/{id}/test", web::post().to(test));
}
