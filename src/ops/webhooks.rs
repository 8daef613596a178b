//! Webhooks (SPEC §9): registration, the delivery log, redelivery and
//! test pings. Delivery itself is the dispatcher's (`crate::webhooks`).

use serde::Deserialize;
use serde_json::Value;

use super::Context;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::event_kind::EventKind;
use crate::domain::input::{self, check_len, double_option, Page};
use crate::domain::keys;
use crate::error::{Error, Result};
use crate::store::webhooks::{
    self as hooks, AttemptLog, NewWebhook, Since, Webhook, WebhookChanges,
};
use crate::webhooks::guard;
use crate::webhooks::sign::SignatureVersion;

/// A webhook body as sent (create and update).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct WebhookInput {
    /// Required to create; an http(s) URL that does not resolve to a
    /// private address (unless `allow_private_webhooks`).
    #[schema(max_length = 2000)]
    url: Option<String>,
    /// Event kinds, or `["*"]` (the default).
    #[schema(min_items = 1)]
    events: Option<Vec<String>>,
    /// Generated (`whsec_…`) when omitted, and returned once.
    #[schema(min_length = 1, max_length = 256)]
    secret: Option<String>,
    /// `v1` or `v2`; defaults to the dialect's (`v2` under `/api`).
    signature_version: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(max_length = 500)]
    description: Option<Option<String>>,
    active: Option<bool>,
}

impl WebhookInput {
    pub fn parse(body: Value) -> Result<WebhookInput> {
        let w: WebhookInput = input::object(body)?;
        if let Some(events) = &w.events {
            if events.is_empty() {
                return Err(Error::validation(
                    "events",
                    "must list at least one event (or \"*\")",
                ));
            }
            if let Some(bad) = events
                .iter()
                .find(|e| *e != "*" && EventKind::parse(e).is_none())
            {
                return Err(Error::validation(
                    "events",
                    format!("unknown event {bad:?}; known: {}", EventKind::names()),
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

/// Checks the target's shape and where it resolves (DNS, off the async
/// workers): no SSRF to loopback, private or link-local addresses unless
/// `allow_private_webhooks`.
async fn check_url(ctx: &Context, url: String) -> Result<String> {
    let allow_private = ctx.config.allow_private_webhooks;
    tokio::task::spawn_blocking(move || {
        guard::check_target(&url, allow_private).map(|u| u.to_string())
    })
    .await
    .map_err(|e| Error::internal(format!("url check failed: {e}")))?
    .map_err(|reason| Error::validation("url", reason))
}

/// `POST /webhooks`: 201; a generated secret is returned this once.
///
/// Defaults (SPEC §9): `events` omitted means `["*"]` (the SDK's
/// `webhooks.create(url)` sends none); the secret is generated as
/// `whsec_` + base64 of 32 random bytes; `signature_version` is
/// `default_version`, which the transport picks — `v2` for the SDK's
/// `/api` (what its `verify_webhook` checks), `v1` for the tutorial's
/// `/v1`.
pub async fn create(
    ctx: &Context,
    caller: &Caller,
    w: WebhookInput,
    default_version: SignatureVersion,
) -> Result<Webhook> {
    let url = w
        .url
        .clone()
        .ok_or_else(|| Error::validation("url", "is required"))?;
    let url = check_url(ctx, url).await?;
    let events = w.events.clone().unwrap_or_else(|| vec!["*".into()]);
    let generated = w.secret.is_none();
    let secret = w.secret.clone().unwrap_or_else(keys::new_webhook_secret);
    let new = NewWebhook {
        url,
        events,
        secret: secret.clone(),
        signature_version: w
            .signature_version
            .clone()
            .unwrap_or_else(|| default_version.as_str().into()),
        description: w.description.clone().flatten(),
    };
    let caller = caller.clone();
    let mut hook = ctx
        .store
        .write(move |tx| hooks::insert(tx, &caller, new))
        .await?;
    // The dispatcher may be asleep, with no hook to feed until now.
    ctx.store.hub().wake_dispatcher();
    if generated {
        hook.secret = Some(secret);
    }
    Ok(hook)
}

/// The hooks a caller manages (admins all, others their own).
pub async fn list(ctx: &Context, caller: &Caller, page: Page) -> Result<Vec<Webhook>> {
    let caller = caller.clone();
    let all = ctx
        .store
        .read(move |conn| hooks::list(conn, &caller))
        .await?;
    Ok(all
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize + 1)
        .collect())
}

pub async fn get(ctx: &Context, caller: &Caller, id: i64) -> Result<Webhook> {
    let caller = caller.clone();
    ctx.store
        .read(move |c| hooks::require(c, &caller, id))
        .await
}

pub async fn update(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    w: Result<WebhookInput>,
) -> Result<Webhook> {
    // SPEC §2's order of checks: the hook's 404/403, then the body's 422
    // (and the URL's, which resolves its host).
    let reader = caller.clone();
    ctx.store
        .read(move |conn| hooks::require(conn, &reader, id).map(|_| ()))
        .await?;
    let w = w?;
    let url = match w.url.clone() {
        Some(u) => Some(check_url(ctx, u).await?),
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
    let caller = caller.clone();
    let hook = ctx
        .store
        .write(move |tx| hooks::update(tx, &caller, id, changes))
        .await?;
    // Re-enabled hooks may have deliveries waiting.
    ctx.store.hub().wake_dispatcher();
    Ok(hook)
}

pub async fn delete(ctx: &Context, caller: &Caller, id: i64) -> Result<()> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| hooks::delete(tx, &caller, id))
        .await
}

/// `GET /webhooks/{id}/deliveries`: every attempt, newest first.
pub async fn deliveries(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    page: Page,
) -> Result<Vec<AttemptLog>> {
    let caller = caller.clone();
    ctx.store
        .read(move |c| {
            hooks::require(c, &caller, id)?;
            hooks::attempts(c, id, page.limit + 1, page.offset)
        })
        .await
}

/// `POST /webhooks/{id}/deliveries/{did}/redeliver`: sends again exactly
/// what the delivery log's row `did` delivered, as a new delivery (a log
/// id never stands for an event id).
pub async fn redeliver(ctx: &Context, caller: &Caller, id: i64, did: i64) -> Result<Value> {
    let caller = caller.clone();
    let queued = ctx
        .store
        .write(move |tx| {
            hooks::require(tx, &caller, id)?;
            hooks::redeliver(tx, &caller, id, did)
        })
        .await?;
    ctx.store.hub().wake_dispatcher();
    Ok(queued)
}

/// `POST /webhooks/{id}/test`: a `webhook.test` ping to this hook alone.
pub async fn test(ctx: &Context, caller: &Caller, id: i64) -> Result<Value> {
    let caller = caller.clone();
    let queued = ctx
        .store
        .write(move |tx| {
            let hook = hooks::require(tx, &caller, id)?;
            hooks::ping(tx, &caller, &hook)
        })
        .await?;
    ctx.store.hub().wake_dispatcher();
    Ok(queued)
}

/// The body of `POST /webhooks/{id}/recover`, as [`parse_since`] reads
/// it. Only the OpenAPI document uses this type.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RecoverBody {
    /// An event id (a number or numeric string) or an RFC 3339 time.
    #[schema(value_type = crate::domain::input::Id)]
    since: String,
}

/// `{"since": <event id or RFC 3339 time>}`, the body of `recover`.
pub fn parse_since(body: Value) -> Result<Since> {
    let bad = || Error::validation("since", "must be an event id or an RFC 3339 time");
    let since = match body {
        Value::Object(mut m) => m.remove("since"),
        _ => return Err(Error::validation("body", "must be a JSON object")),
    };
    match since {
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Since::EventId)
            .ok_or_else(bad),
        Some(Value::String(s)) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Since::EventId(n)),
            _ => clock::parse_timestamp(&s)
                .map(|t| Since::Time(clock::format(t)))
                .ok_or_else(bad),
        },
        None => Err(Error::validation(
            "since",
            "is required: an event id or an RFC 3339 time",
        )),
        Some(_) => Err(bad()),
    }
}

/// `POST /webhooks/{id}/recover {since}`: re-sends, in order and as new
/// deliveries, every event since then that the hook would have received
/// (its kinds, what its owner reads) — what it missed while it was
/// disabled or failing (SPEC §9). At most [`hooks::RECOVER_LIMIT`] per
/// call: `{queued, after_event_id, through_event_id, more}` says where it
/// stopped, and `since: through_event_id` goes on. The log is searched
/// with a read; only the copies are written.
pub async fn recover(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    since: Result<Since>,
) -> Result<Value> {
    let reader = caller.clone();
    let (after, missed, more) = ctx
        .store
        .read(move |conn| {
            // SPEC §2's order of checks: the hook's 404/403, then the body.
            hooks::require(conn, &reader, id)?;
            hooks::missed(conn, id, &since?, hooks::RECOVER_LIMIT)
        })
        .await?;
    let through = missed.last().map_or(after, |m| m.event_id);
    let queued = missed.len();
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            hooks::require(tx, &caller, id)?;
            hooks::resend(tx, &caller, id, &missed)
        })
        .await?;
    ctx.store.hub().wake_dispatcher();
    Ok(serde_json::json!({
        "webhook_id": id,
        "queued": queued,
        "after_event_id": after,
        "through_event_id": through,
        "more": more,
    }))
}
