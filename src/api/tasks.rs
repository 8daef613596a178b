//! `/tasks` and what hangs off one task: complete/uncomplete/fail,
//! comments, subtasks, links, dependencies, inputs, duplicates.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{created, ok, path_id, query, respond_page, Json, PageBody, State};
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::domain::input::{
    self, check_len, check_non_blank, double_option, forbid, AgentRef, Id, Page, Query,
};
use crate::error::{Error, Result};
use crate::store::agents;
use crate::store::comments::{self, LINK_KINDS};
use crate::store::tasks::{
    self, Changes, Completion, Filter, Need, NewTask, EVIDENCE_KINDS, STATUSES,
};

pub const MAX_CONTENT_CHARS: usize = 2000;
const MAX_DESCRIPTION_CHARS: usize = 10_000;
const MAX_LABELS: usize = 50;
const MAX_LABEL_CHARS: usize = 100;
/// Statuses a client may set directly; the rest come from their endpoints.
const SETTABLE_STATUSES: &[&str] = &["open", "in_progress", "blocked"];

/// The fields of a task in a create, delegate or update body.
#[derive(Deserialize, Default)]
pub struct TaskInput {
    content: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    project_id: Option<Option<Id>>,
    priority: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    labels: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    due_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    due_time: Option<Option<String>>,
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assigned_to_agent_id: Option<Option<AgentRef>>,
    #[serde(default, deserialize_with = "double_option")]
    agent_id: Option<Option<AgentRef>>,
    parent_task_id: Option<Id>,
    depends_on: Option<Vec<Id>>,
    context: Option<Value>,
    metadata: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    evidence_policy: Option<Option<String>>,
    completed: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    recurring_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    recurring_interval: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    recurring_string: Option<Option<String>>,
    is_recurring: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    reminder_time: Option<Option<String>>,
}

/// `context` or its alias `metadata`, which must be an object.
pub fn context_of(
    context: Option<Value>,
    metadata: Option<Value>,
) -> Result<Option<Map<String, Value>>> {
    let (field, value) = match (context, metadata) {
        (Some(c), Some(m)) if c != m => {
            return Err(Error::validation(
                "metadata",
                "is an alias of context; send one of them",
            ))
        }
        (Some(c), _) => ("context", c),
        (None, Some(m)) => ("metadata", m),
        (None, None) => return Ok(None),
    };
    match value {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        _ => Err(Error::validation(field, "must be a JSON object")),
    }
}

fn check_date(field: &str, value: &str) -> Result<()> {
    clock::parse_date(value)
        .map(|_| ())
        .ok_or_else(|| Error::validation(field, "must be a date YYYY-MM-DD"))
}

fn check_time(value: &str) -> Result<()> {
    let parts: Vec<&str> = value.split(':').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_digit()))
        && parts[0] < "24"
        && parts[1] < "60"
        && parts.get(2).is_none_or(|s| *s < "60");
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "due_time",
            "must be a time HH:MM or HH:MM:SS",
        ))
    }
}

impl TaskInput {
    pub fn parse(body: Value) -> Result<TaskInput> {
        let t: TaskInput = input::object(body)?;
        if let Some(c) = &t.content {
            check_non_blank("content", c, MAX_CONTENT_CHARS)?;
        }
        if let Some(Some(d)) = &t.description {
            check_len("description", d, MAX_DESCRIPTION_CHARS)?;
        }
        if let Some(p) = t.priority {
            if !(1..=4).contains(&p) {
                return Err(Error::validation(
                    "priority",
                    "must be 1, 2, 3 or 4 (1 = most urgent)",
                ));
            }
        }
        if let Some(Some(labels)) = &t.labels {
            if labels.len() > MAX_LABELS {
                return Err(Error::validation("labels", "at most 50 labels"));
            }
            for l in labels {
                check_non_blank("labels", l, MAX_LABEL_CHARS)?;
            }
        }
        if let Some(Some(d)) = &t.due_date {
            check_date("due_date", d)?;
        }
        if let Some(Some(tm)) = &t.due_time {
            check_time(tm)?;
        }
        if let Some(s) = &t.status {
            if !SETTABLE_STATUSES.contains(&s.as_str()) {
                let why = if STATUSES.contains(&s.as_str()) {
                    format!("{s:?} is set by its own endpoint; set open, in_progress or blocked")
                } else {
                    "must be one of open, in_progress, blocked".to_string()
                };
                return Err(Error::validation("status", why));
            }
        }
        if let Some(Some(p)) = &t.evidence_policy {
            if p != "required" {
                return Err(Error::validation(
                    "evidence_policy",
                    "must be \"required\" or null",
                ));
            }
        }
        if let Some(Some(r)) = &t.recurring_type {
            if !["daily", "weekly", "monthly", "yearly"].contains(&r.as_str()) {
                return Err(Error::validation(
                    "recurring_type",
                    "must be daily, weekly, monthly or yearly",
                ));
            }
        }
        if let Some(Some(n)) = t.recurring_interval {
            if !(1..=1000).contains(&n) {
                return Err(Error::validation(
                    "recurring_interval",
                    "must be 1..=1000",
                ));
            }
        }
        if let Some(deps) = &t.depends_on {
            if deps.len() > 100 {
                return Err(Error::validation(
                    "depends_on",
                    "at most 100 dependencies",
                ));
            }
        }
        Ok(t)
    }

    fn assignee(&self) -> Option<Option<AgentRef>> {
        self.assigned_to_agent_id
            .clone()
            .or_else(|| self.agent_id.clone())
    }

    /// A new task from a create (or delegate) body.
    pub fn into_new_task(self) -> Result<NewTask> {
        let content = self
            .content
            .clone()
            .ok_or_else(|| Error::validation("content", "is required"))?;
        let assignee = self.assignee().flatten();
        Ok(NewTask {
            content,
            description: self.description.flatten(),
            project_id: self.project_id.flatten().map(|i| i.0),
            priority: self.priority.unwrap_or(2),
            labels: self.labels.flatten().unwrap_or_default(),
            due_date: self.due_date.flatten(),
            due_time: self.due_time.flatten(),
            status: self.status,
            assignee,
            parent_task_id: self.parent_task_id.map(|i| i.0),
            depends_on: self
                .depends_on
                .unwrap_or_default()
                .into_iter()
                .map(|i| i.0)
                .collect(),
            context: context_of(self.context, self.metadata)?,
            evidence_policy: self.evidence_policy.flatten(),
            recurrence_id: None,
            recurring_type: self.recurring_type.flatten(),
            recurring_interval: self.recurring_interval.flatten(),
            recurring_string: self.recurring_string.flatten(),
            is_recurring: self.is_recurring.unwrap_or(false),
            reminder_time: self.reminder_time.flatten(),
        })
    }

    fn into_changes(self) -> Result<Changes> {
        Ok(Changes {
            assignee: self.assignee(),
            content: self.content,
            description: self.description,
            project_id: self.project_id.map(|p| p.map(|i| i.0)),
            priority: self.priority,
            labels: self.labels.map(Option::unwrap_or_default),
            due_date: self.due_date,
            due_time: self.due_time,
            status: self.status,
            completed: self.completed,
            context: context_of(self.context, self.metadata)?,
            evidence_policy: self.evidence_policy,
            depends_on: self
                .depends_on
                .map(|d| d.into_iter().map(|i| i.0).collect()),
            recurring_type: self.recurring_type,
            recurring_interval: self.recurring_interval,
            recurring_string: self.recurring_string,
            is_recurring: self.is_recurring,
            reminder_time: self.reminder_time,
        })
    }
}

// ---------------------------------------------------------------- list

/// `GET /tasks` filters as sent, before agent names are resolved.
struct ListQuery {
    filter: Filter,
    assigned_to: Option<AgentRef>,
    created_by: Option<AgentRef>,
}

fn parse_list_query(q: &Query) -> Result<ListQuery> {
    let mut f = Filter::default();
    if let Some(s) = q.get("status") {
        for status in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !STATUSES.contains(&status) {
                return Err(Error::validation(
                    "status",
                    format!("unknown status {status:?}; one of {}", STATUSES.join(", ")),
                ));
            }
            f.statuses.push(status.to_string());
        }
    }
    f.completed = q.bool("completed")?;
    f.include_completed = q.bool("include_completed")?.unwrap_or(false);
    f.project_id = q.int("project_id")?;
    if let Some(l) = q.get("label") {
        f.labels.push(l.to_string());
    }
    for l in q.all("labels") {
        f.labels.extend(
            l.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    f.priority = q.int("priority")?;
    f.search = q.get("search").map(String::from);
    match q.get("due") {
        None => {}
        Some("today") => f.due_on = Some(clock::format_date(clock::today())),
        Some("overdue") => f.overdue = true,
        Some("upcoming") => {
            f.due_after = Some(clock::format_date(clock::today() + time::Duration::days(1)))
        }
        Some(d) => {
            clock::parse_date(d).ok_or_else(|| {
                Error::validation(
                    "due",
                    "must be today, upcoming, overdue or a date YYYY-MM-DD",
                )
            })?;
            f.due_on = Some(d.to_string());
        }
    }
    for (field, slot) in [
        ("due_after", &mut f.due_after),
        ("due_before", &mut f.due_before),
    ] {
        if let Some(d) = q.get(field) {
            check_date(field, d)?;
            *slot = Some(d.to_string());
        }
    }
    f.parent_task_id = q.int("parent_task_id")?;
    f.root_task_id = q.int("root_task_id")?;
    f.claimed = q.bool("claimed")?;
    f.claimable = q.bool("claimable")?.unwrap_or(false);
    Ok(ListQuery {
        filter: f,
        assigned_to: q.get("assigned_to").map(AgentRef::parse),
        created_by: q.get("created_by").map(AgentRef::parse),
    })
}

async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let ListQuery {
        mut filter,
        assigned_to,
        created_by,
    } = parse_list_query(&q)?;
    let cache = state.store.cache().clone();
    let body = state
        .store
        .read(move |conn| {
            let generation = cache.generation();
            if let Some(a) = &assigned_to {
                filter.assigned_to = Some(agents::resolve(conn, "assigned_to", a)?.id);
            }
            if let Some(a) = &created_by {
                filter.created_by = Some(agents::resolve(conn, "created_by", a)?.id);
            }
            let ids = tasks::list(conn, &caller, &filter, page.limit, page.offset)?;
            Ok(PageBody::rendered(
                page,
                tasks::render_ids(conn, &cache, generation, &ids)?,
            ))
        })
        .await?;
    respond_page(&req, &q, page, body)
}

// ---------------------------------------------------------------- one task

async fn create(
    state: State,
    req: HttpRequest,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    forbid(
        &body,
        &["root_task_id"],
        "the root is derived from parent_task_id",
    )?;
    if body
        .get("delegation_depth")
        .is_some_and(|d| d.as_i64() != Some(0) && !d.is_null())
    {
        return Err(Error::bad_request(
            "field 'delegation_depth' cannot be set: it is derived from parent_task_id",
        ));
    }
    let new = TaskInput::parse(body)?.into_new_task()?;
    let dedup_check = req
        .headers()
        .get("x-dedup-check")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let limits = state.limits();
    let view = state
        .store
        .write(move |tx| {
            if dedup_check {
                let matches = tasks::duplicates(tx, &caller, &new.content, 0.6)?;
                if !matches.is_empty() {
                    return Err(Error::conflict_with(
                        "a similar open task already exists",
                        json!({
                            "matches": matches,
                            "hint": "reuse the existing task, or send the request without X-Dedup-Check to create it anyway",
                        }),
                    ));
                }
            }
            let parent = new.parent_task_id;
            // Here the parent is a body field: one you cannot read is a 422
            // naming it (under /delegate it is the path, and a 404).
            tasks::create(tx, &caller, new, &limits).map_err(|e| match (e, parent) {
                (Error::NotFound(_), Some(pid)) => {
                    Error::validation("parent_task_id", format!("no task {pid} you can read"))
                }
                (e, _) => e,
            })
        })
        .await?;
    created(&view)
}

/// One task with its comments and links: the cached rendering with the two
/// lists appended.
async fn get(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let cache = state.store.cache();
    let body = state.store.read_blocking(|conn| {
        let generation = cache.generation();
        let row = tasks::require(conn, &caller, id, Need::Read)?;
        let base = tasks::render_cached(conn, cache, generation, vec![row])?;
        let base = base.first().map(|r| r.json()).unwrap_or("{}");
        let comments = serde_json::to_string(&comments::list(conn, id)?)?;
        let links = serde_json::to_string(&comments::links(conn, id)?)?;
        let open = base.strip_suffix('}').unwrap_or(base);
        Ok(format!(
            "{open},\"comments\":{comments},\"links\":{links}}}"
        ))
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    forbid(
        &body,
        &["parent_task_id", "root_task_id", "delegation_depth"],
        "a task's place in its chain is fixed; delegate to create children",
    )?;
    let changes = TaskInput::parse(body)?.into_changes()?;
    let limits = state.limits();
    let view = state
        .store
        .write(move |tx| tasks::update(tx, &caller, id, changes, &limits))
        .await?;
    ok(&view)
}

async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    state
        .store
        .write(move |tx| tasks::delete(tx, &caller, id))
        .await?;
    ok(&json!({ "deleted": true, "id": id }))
}

#[derive(Deserialize)]
struct CompleteInput {
    context: Option<Value>,
    metadata: Option<Value>,
    evidence: Option<Vec<Value>>,
}

fn check_evidence(evidence: &[Value]) -> Result<()> {
    if evidence.len() > 50 {
        return Err(Error::validation("evidence", "at most 50 items"));
    }
    for (i, e) in evidence.iter().enumerate() {
        let field = |f: &str| format!("evidence[{i}].{f}");
        let Value::Object(map) = e else {
            return Err(Error::validation(
                format!("evidence[{i}]"),
                "must be an object {kind, ref, summary?}",
            ));
        };
        match map.get("kind").and_then(Value::as_str) {
            Some(k) if EVIDENCE_KINDS.contains(&k) => {}
            _ => {
                return Err(Error::validation(
                    field("kind"),
                    format!("must be one of {}", EVIDENCE_KINDS.join(", ")),
                ))
            }
        }
        match map.get("ref").and_then(Value::as_str) {
            Some(r) => check_non_blank(&field("ref"), r, 2000)?,
            None => return Err(Error::validation(field("ref"), "is required (a string)")),
        }
        match map.get("summary") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => check_len(&field("summary"), s, 2000)?,
            Some(_) => return Err(Error::validation(field("summary"), "must be a string")),
        }
    }
    Ok(())
}

async fn complete(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let input: CompleteInput = input::object(body)?;
    if let Some(e) = &input.evidence {
        check_evidence(e)?;
    }
    let completion = Completion {
        context: context_of(input.context, input.metadata)?,
        evidence: input.evidence,
    };
    let limits = state.limits();
    let view = state
        .store
        .write(move |tx| tasks::complete(tx, &caller, id, completion, &limits))
        .await?;
    ok(&view)
}

async fn uncomplete(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let view = state
        .store
        .write(move |tx| tasks::reopen(tx, &caller, id))
        .await?;
    ok(&view)
}

#[derive(Deserialize)]
struct FailInput {
    reason: Option<String>,
    context: Option<Value>,
    metadata: Option<Value>,
}

async fn fail(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let input: FailInput = input::object(body)?;
    if let Some(r) = &input.reason {
        check_len("reason", r, 2000)?;
    }
    let ctx = context_of(input.context, input.metadata)?;
    let limits = state.limits();
    let view = state
        .store
        .write(move |tx| tasks::fail(tx, &caller, id, input.reason, ctx, &limits))
        .await?;
    ok(&view)
}

#[derive(Deserialize)]
struct DedupInput {
    content: String,
    threshold: Option<f64>,
}

async fn dedup(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    let input: DedupInput = input::object(body)?;
    check_non_blank("content", &input.content, MAX_CONTENT_CHARS)?;
    let threshold = input.threshold.unwrap_or(0.6);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Error::validation("threshold", "must be between 0 and 1"));
    }
    let matches = state
        .store
        .read(move |conn| tasks::duplicates(conn, &caller, &input.content, threshold))
        .await?;
    ok(&json!({ "has_duplicates": !matches.is_empty(), "matches": matches }))
}

/// Answers something that hangs off a task the caller may read.
async fn task_part<T: serde::Serialize + Send + 'static>(
    state: &State,
    raw_id: &str,
    caller: Caller,
    fetch: fn(&rusqlite::Connection, i64) -> Result<T>,
) -> Result<HttpResponse> {
    let id = path_id("task", raw_id)?;
    let part = state
        .store
        .read(move |conn| {
            tasks::require(conn, &caller, id, Need::Read)?;
            fetch(conn, id)
        })
        .await?;
    ok(&part)
}

// ---------------------------------------------------------------- comments

#[derive(Deserialize)]
struct CommentInput {
    content: String,
}

async fn list_comments(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    task_part(&state, &path, caller, comments::list).await
}

async fn add_comment(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let input: CommentInput = input::object(body)?;
    check_non_blank("content", &input.content, 10_000)?;
    let comment = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Comment)?;
            let c = comments::insert(tx, id, caller.agent_id(), &input.content)?;
            tasks::emit(tx, &caller, id, "task.commented", None)?;
            Ok(c)
        })
        .await?;
    created(&comment)
}

async fn delete_comment(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path.0)?;
    let cid = path_id("comment", &path.1)?;
    state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Read)?;
            let c = comments::get(tx, id, cid)?;
            if !caller.is_admin()
                && (c.author_agent_id.is_none() || c.author_agent_id != caller.agent_id())
            {
                return Err(Error::forbidden(
                    "only the author or an admin deletes a comment",
                ));
            }
            comments::delete(tx, id, cid)
        })
        .await?;
    ok(&json!({ "deleted": true, "id": cid }))
}

// ---------------------------------------------------------------- subtasks

#[derive(Deserialize)]
struct SubtaskInput {
    content: Option<String>,
    completed: Option<bool>,
    sort_order: Option<i64>,
}

impl SubtaskInput {
    fn parse(body: Value) -> Result<SubtaskInput> {
        let s: SubtaskInput = input::object(body)?;
        if let Some(c) = &s.content {
            check_non_blank("content", c, MAX_CONTENT_CHARS)?;
        }
        Ok(s)
    }
}

async fn list_subtasks(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    task_part(&state, &path, caller, comments::subtasks).await
}

async fn add_subtask(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let s = SubtaskInput::parse(body)?;
    let content = s
        .content
        .ok_or_else(|| Error::validation("content", "is required"))?;
    let sub = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            let sub = comments::insert_subtask(
                tx,
                id,
                &content,
                s.completed.unwrap_or(false),
                s.sort_order,
            )?;
            tasks::emit(tx, &caller, id, "task.updated", None)?;
            Ok(sub)
        })
        .await?;
    created(&sub)
}

/// PUT a subtask, or toggle it (`toggle` flips `completed`).
async fn change_subtask(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
    body: Option<Json>,
    toggle: bool,
) -> Result<HttpResponse> {
    let id = path_id("task", &path.0)?;
    let sid = path_id("subtask", &path.1)?;
    let s = match body {
        Some(Json(b)) => SubtaskInput::parse(b)?,
        None => SubtaskInput {
            content: None,
            completed: None,
            sort_order: None,
        },
    };
    let sub = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            let completed = if toggle {
                Some(!comments::subtask(tx, id, sid)?.completed)
            } else {
                s.completed
            };
            let sub = comments::update_subtask(
                tx,
                id,
                sid,
                s.content.as_deref(),
                completed,
                s.sort_order,
            )?;
            tasks::emit(tx, &caller, id, "task.updated", None)?;
            Ok(sub)
        })
        .await?;
    ok(&sub)
}

async fn update_subtask(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
    body: Json,
) -> Result<HttpResponse> {
    change_subtask(state, path, caller, Some(body), false).await
}

async fn toggle_subtask(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    change_subtask(state, path, caller, None, true).await
}

async fn delete_subtask(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path.0)?;
    let sid = path_id("subtask", &path.1)?;
    state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            comments::delete_subtask(tx, id, sid)?;
            tasks::emit(tx, &caller, id, "task.updated", None)?;
            Ok(())
        })
        .await?;
    ok(&json!({ "deleted": true, "id": sid }))
}

// ---------------------------------------------------------------- links

#[derive(Deserialize)]
struct LinkInput {
    kind: String,
    #[serde(rename = "ref")]
    reference: Option<String>,
    repo: Option<String>,
    url: Option<String>,
}

async fn list_links(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    task_part(&state, &path, caller, comments::links).await
}

async fn add_link(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let l: LinkInput = input::object(body)?;
    if !LINK_KINDS.contains(&l.kind.as_str()) {
        return Err(Error::validation(
            "kind",
            "must be one of branch, commit, pr, url",
        ));
    }
    let reference = l
        .reference
        .clone()
        .or_else(|| (l.kind == "url").then(|| l.url.clone()).flatten())
        .ok_or_else(|| Error::validation("ref", "is required"))?;
    check_non_blank("ref", &reference, 2000)?;
    for (field, v) in [("repo", &l.repo), ("url", &l.url)] {
        if let Some(v) = v {
            check_len(field, v, 2000)?;
        }
    }
    let (link, is_new) = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            let (link, is_new) = comments::insert_link(
                tx,
                id,
                &l.kind,
                l.repo.as_deref(),
                &reference,
                l.url.as_deref(),
                caller.agent_id(),
            )?;
            if is_new {
                tasks::emit(tx, &caller, id, "task.linked", None)?;
            }
            Ok((link, is_new))
        })
        .await?;
    if is_new {
        created(&link)
    } else {
        ok(&link)
    }
}

async fn delete_link(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path.0)?;
    let lid = path_id("link", &path.1)?;
    state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            comments::delete_link(tx, id, lid)
        })
        .await?;
    ok(&json!({ "deleted": true, "id": lid }))
}

// ---------------------------------------------------------------- dependencies

#[derive(Deserialize)]
struct DependencyInput {
    depends_on: Vec<Id>,
}

async fn add_dependencies(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let id = path_id("task", &path)?;
    let input: DependencyInput = input::object(body)?;
    let deps: Vec<i64> = input.depends_on.into_iter().map(|i| i.0).collect();
    if deps.is_empty() || deps.len() > 100 {
        return Err(Error::validation("depends_on", "send 1 to 100 task ids"));
    }
    let view = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            tasks::add_dependencies(tx, &caller, id, &deps)?;
            tasks::emit(tx, &caller, id, "task.updated", None)
        })
        .await?;
    ok(&view)
}

async fn remove_dependency(
    state: State,
    path: web::Path<(String, String)>,
    caller: Caller,
) -> Result<HttpResponse> {
    let id = path_id("task", &path.0)?;
    let dep = path_id("task", &path.1)?;
    let view = state
        .store
        .write(move |tx| {
            tasks::require(tx, &caller, id, Need::Mutate)?;
            tasks::remove_dependency(tx, &caller, id, dep)?;
            tasks::emit(tx, &caller, id, "task.updated", None)
        })
        .await?;
    ok(&view)
}

async fn inputs(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    task_part(&state, &path, caller, tasks::inputs).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tasks")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .route("/tasks/dedup", web::post().to(dedup))
    .service(
        web::resource("/tasks/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .route("/tasks/{id}/complete", web::post().to(complete))
    .route("/tasks/{id}/uncomplete", web::post().to(uncomplete))
    .route("/tasks/{id}/fail", web::post().to(fail))
    .service(
        web::resource("/tasks/{id}/comments")
            .route(web::get().to(list_comments))
            .route(web::post().to(add_comment)),
    )
    .route(
        "/tasks/{id}/comments/{cid}",
        web::delete().to(delete_comment),
    )
    .service(
        web::resource("/tasks/{id}/subtasks")
            .route(web::get().to(list_subtasks))
            .route(web::post().to(add_subtask)),
    )
    .service(
        web::resource("/tasks/{id}/subtasks/{sid}")
            .route(web::put().to(update_subtask))
            .route(web::patch().to(update_subtask))
            .route(web::delete().to(delete_subtask)),
    )
    .route(
        "/tasks/{id}/subtasks/{sid}/toggle",
        web::post().to(toggle_subtask),
    )
    .service(
        web::resource("/tasks/{id}/links")
            .route(web::get().to(list_links))
            .route(web::post().to(add_link)),
    )
    .route("/tasks/{id}/links/{lid}", web::delete().to(delete_link))
    .route("/tasks/{id}/dependencies", web::post().to(add_dependencies))
    .route(
        "/tasks/{id}/dependencies/{dep}",
        web::delete().to(remove_dependency),
    )
    .route("/tasks/{id}/inputs", web::get().to(inputs));
}
