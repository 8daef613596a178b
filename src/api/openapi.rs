//! `GET /openapi.json` (also `/api/openapi.json`, `/v1/openapi.json`): the
//! OpenAPI 3.1 document of the `/api` surface (SPEC §11), generated from
//! the code — each handler's `#[utoipa::path]`, the wire types'
//! `ToSchema` — and built once. `tests/api/openapi.rs` fails when a route
//! of [`super::endpoints`] is missing from it; `tests/openapi/run.sh`
//! fuzzes a live server against it.
//!
//! What the handlers cannot say alone is added here, the same for every
//! operation: the `/api` prefix, the two credentials, the error body as
//! the `default` response, and operation ids unique across resources.
//! The types below document answers that the operations build as JSON
//! values; each names the function that builds it.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, PathItem, Ref, RefOr, ResponseBuilder, SecurityRequirement};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::store::agents::{Agent, AgentBrief};
use crate::store::comments::{Comment, Link};
use crate::store::projects::Project;
use crate::store::recurrences::Recurrence;
use crate::store::tasks::render::TaskView;

/// The prefix the document describes (`/v1` answers the same routes).
pub const PREFIX: &str = "/api";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Delega",
        description = "A self-hosted coordination server for teams of AI agents: agents, tasks, \
            delegation chains, context, a work queue, webhooks and a live event stream. Every \
            route is also served under `/v1`, where the one difference is the `chain` key of \
            `GET /tasks/{id}/chain` (the hop list). Errors are `{error, code, status, detail}`.",
        license(name = "MIT"),
    ),
    paths(
        super::health::get,
        get,
        super::agents::list,
        super::agents::create,
        super::agents::get,
        super::agents::update,
        super::agents::delete,
        super::agents::rotate_key,
        super::agents::me,
        super::claims::claim_next,
        super::tasks::dedup,
        super::tasks::list,
        super::tasks::create,
        super::tasks::get,
        super::tasks::update,
        super::tasks::delete,
        super::tasks::complete,
        super::tasks::uncomplete,
        super::tasks::fail,
        super::tasks::list_comments,
        super::tasks::add_comment,
        super::tasks::delete_comment,
        super::tasks::list_subtasks,
        super::tasks::add_subtask,
        super::tasks::update_subtask,
        super::tasks::delete_subtask,
        super::tasks::toggle_subtask,
        super::tasks::list_links,
        super::tasks::add_link,
        super::tasks::delete_link,
        super::tasks::add_dependencies,
        super::tasks::remove_dependency,
        super::tasks::inputs,
        super::claims::claim,
        super::claims::heartbeat,
        super::claims::set_state,
        super::claims::release,
        super::delegation::delegate,
        super::delegation::chain,
        super::delegation::children,
        super::context::get,
        super::context::patch,
        super::context::history,
        super::context::supersede,
        super::context::search,
        super::projects::list,
        super::projects::create,
        super::projects::get,
        super::projects::update,
        super::projects::delete,
        super::recurrences::list,
        super::recurrences::create,
        super::recurrences::get,
        super::recurrences::update,
        super::recurrences::delete,
        super::fleet::attention,
        super::misc::stats,
        super::misc::usage,
        super::webhooks::list,
        super::webhooks::create,
        super::webhooks::get,
        super::webhooks::update,
        super::webhooks::delete,
        super::webhooks::deliveries,
        super::webhooks::redeliver,
        super::webhooks::test,
        super::webhooks::recover,
        super::events::index,
        super::mcp::post,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Shared),
)]
struct Document;

/// Adds what every operation shares (see the module's documentation).
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "agent_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Agent-Key",
                "An agent's key (`dlg_…`).",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The project token (`dlp_…`, acts as an administrator) or an agent key.",
                    ))
                    .build(),
            ),
        );
        components.responses.insert(
            "Error".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "An error: 400 malformed, 401 no or bad credentials, 403 not allowed, \
                         404 unknown, 409 conflict, 413 too large, 415 not JSON, 422 invalid \
                         (detail names the field), 429 rate limited (Retry-After).",
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Error")))
                            .build(),
                    )
                    .build(),
            ),
        );
        doc.security = Some(vec![
            SecurityRequirement::new("agent_key", Vec::<String>::new()),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);

        let paths = std::mem::take(&mut doc.paths.paths);
        let mut ids = HashSet::new();
        for (path, mut item) in paths {
            for (method, op) in operations(&mut item) {
                if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content {
                            not_null(&mut content.schema);
                        }
                    }
                }
                op.responses
                    .responses
                    .entry("default".into())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Error")));
                let tag = op
                    .tags
                    .as_ref()
                    .and_then(|t| t.first())
                    .cloned()
                    .unwrap_or_default();
                let name = op.operation_id.clone().unwrap_or_default();
                let mut id = format!("{tag}_{name}");
                if !ids.insert(id.clone()) {
                    id = format!("{id}_{method}");
                    ids.insert(id.clone());
                }
                op.operation_id = Some(id);
            }
            doc.paths.paths.insert(format!("{PREFIX}{path}"), item);
        }
    }
}

/// A body that may be omitted (`request_body = Option<T>`) is still never
/// `null` when sent: `oneOf [T, null]` becomes `T` (the body stays not
/// required).
fn not_null(schema: &mut Option<RefOr<Schema>>) {
    let Some(RefOr::T(Schema::OneOf(one))) = schema else {
        return;
    };
    let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    if one.items.len() == 2 && one.items.iter().any(is_null) {
        *schema = one.items.iter().find(|s| !is_null(s)).cloned();
    }
}

/// The operations of a path item, each with its method's name.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// The document as JSON text, built on first use.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        Document::openapi().to_json().unwrap_or_else(|e| {
            log::error!("cannot serialize the OpenAPI document: {e}");
            "{}".into()
        })
    })
}

/// Serves the document, without credentials.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object))
)]
pub async fn get() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

// ------------------------------------------------------------ answers built as JSON values

/// `GET /tasks/{id}`: the task with its comments and links
/// (`ops::tasks::get`).
#[derive(Serialize, ToSchema)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: TaskView,
    pub comments: Vec<Comment>,
    pub links: Vec<Link>,
}

/// `GET /agent/me` (`ops::agents::me`): the caller's agent fields at the
/// top level and again under `agent`; for the project token `id`,
/// `name` and `agent` are null.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub role: crate::domain::access::Role,
    pub is_admin: bool,
    pub permissions: Vec<String>,
    /// `agent_key` or `project_token`.
    pub auth: String,
    pub agent: Option<Agent>,
    pub account: Account,
}

/// The account of `GET /agent/me`.
#[derive(Serialize, ToSchema)]
pub struct Account {
    /// `self-hosted`.
    pub plan: String,
}

/// `GET /tasks/{id}/context` (`ops::context::get`).
#[derive(Serialize, ToSchema)]
pub struct ContextView {
    #[schema(value_type = Object)]
    pub context: Value,
    pub version: i64,
    /// With `?include=provenance`: who last wrote each key that has a
    /// ledger entry.
    pub provenance: Option<BTreeMap<String, Provenance>>,
}

/// Who wrote a context key (`store::context::provenance`).
#[derive(Serialize, ToSchema)]
pub struct Provenance {
    pub author_agent_id: Option<i64>,
    pub author_name: Option<String>,
    pub source: String,
    pub version: i64,
    pub created_at: String,
}

/// `POST /tasks/dedup` (`ops::tasks::dedup`).
#[derive(Serialize, ToSchema)]
pub struct Duplicates {
    pub has_duplicates: bool,
    pub matches: Vec<crate::ops::tasks::DuplicateMatch>,
}

/// `GET /fleet/attention` (`ops::fleet::attention`).
#[derive(Serialize, ToSchema)]
pub struct Attention {
    pub count: i64,
    pub buckets: AttentionBuckets,
}

/// The buckets of `GET /fleet/attention` (`store::attention::BUCKETS`).
#[derive(Serialize, ToSchema)]
pub struct AttentionBuckets {
    pub abandoned_claims: Vec<AttentionTask>,
    pub silent_holders: Vec<AttentionTask>,
    pub errored: Vec<AttentionTask>,
    pub waiting_input: Vec<AttentionTask>,
    pub overdue: Vec<AttentionTask>,
    pub looping: Vec<AttentionTask>,
    pub blocked_by_failure: Vec<AttentionTask>,
}

/// A task that needs a person, and why.
#[derive(Serialize, ToSchema)]
pub struct AttentionTask {
    #[serde(flatten)]
    pub task: TaskView,
    /// A sentence.
    pub attention_reason: String,
    pub since: Option<String>,
}

/// `GET /stats` (`store::stats::stats`).
#[derive(Serialize, ToSchema)]
pub struct Stats {
    pub total_tasks: i64,
    /// Open tasks.
    pub total: i64,
    pub pending_tasks: i64,
    pub completed_today: i64,
    pub due_today: i64,
    pub overdue: i64,
    pub upcoming: i64,
    pub total_completed: i64,
    pub completed_tasks: i64,
    pub total_agents: i64,
    pub active_agents: i64,
    /// Counts by status.
    pub by_status: BTreeMap<String, i64>,
    pub by_project: Vec<ProjectCount>,
    pub by_agent: Vec<AgentCount>,
}

/// One project of `by_project`.
#[derive(Serialize, ToSchema)]
pub struct ProjectCount {
    /// `null` for the tasks in no project.
    pub project_id: Option<i64>,
    pub project_name: Option<String>,
    pub total: i64,
    pub completed: i64,
}

/// One agent of `by_agent`.
#[derive(Serialize, ToSchema)]
pub struct AgentCount {
    pub agent_id: i64,
    /// `null` if the agent no longer exists.
    pub agent_name: Option<String>,
    pub assigned: i64,
    pub completed: i64,
}

/// `GET /usage` (`store::stats::usage`): the hosted service's quota
/// fields; self-hosted has no limits (null).
#[derive(Serialize, ToSchema)]
pub struct Usage {
    /// `self-hosted`.
    pub plan: String,
    pub task_count_month: i64,
    pub task_limit: Option<i64>,
    pub reset_date: Option<String>,
    pub agent_count: i64,
    pub agent_limit: Option<i64>,
    pub webhook_count: i64,
    pub webhook_limit: Option<i64>,
    pub project_count: i64,
    pub project_limit: Option<i64>,
    /// Null when not rate limited.
    pub rate_limit_rpm: Option<i64>,
    pub max_content_chars: i64,
}

/// A delivery queued by `redeliver` or `test` (`store::webhooks`).
#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub delivery_id: i64,
    pub event_id: i64,
    /// `pending`.
    pub state: String,
}

/// `POST /webhooks/{id}/recover` (`ops::webhooks::recover`): what was
/// queued, and where it stopped (`since: through_event_id` goes on).
#[derive(Serialize, ToSchema)]
pub struct Recovered {
    pub webhook_id: i64,
    pub queued: i64,
    pub after_event_id: i64,
    pub through_event_id: i64,
    pub more: bool,
}

/// `GET /recurrences/{id}`, with `?upcoming=N` the next N due times.
#[derive(Serialize, ToSchema)]
pub struct RecurrenceDetail {
    #[serde(flatten)]
    pub recurrence: Recurrence,
    pub upcoming: Option<Vec<String>>,
}

/// An event as `GET /events` and webhooks carry it (SPEC §9,
/// `store::event_log`): about a task, or (admins only) a project or an
/// agent.
#[derive(Serialize, ToSchema)]
pub struct EventPayload {
    /// `task.created`, `task.completed`, …
    pub event: String,
    pub event_id: i64,
    pub timestamp: String,
    pub task: Option<TaskView>,
    pub project: Option<Project>,
    pub agent_subject: Option<Agent>,
    /// Who acted; null for the project token or the server itself.
    pub agent: Option<AgentBrief>,
    /// E.g. `lease_expired`, `recurrence`, `superseded`.
    pub reason: Option<String>,
}
