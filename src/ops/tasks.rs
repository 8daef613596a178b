//! Tasks (SPEC §5): create, read, list, update, delete, complete, reopen,
//! fail, and the duplicate check.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    emit, emit_row, require, settle_dependents, transition, transition_recording, Context,
};
use crate::domain::access::{Caller, Need, ReaderFacts};
use crate::domain::calendar::{Frequency, Series};
use crate::domain::clock;
use crate::domain::event_kind::EventKind;
use crate::domain::input::{
    self, check_len, check_non_blank, double_option, AgentRef, Id, Page, Query,
};
use crate::domain::lifecycle::{Dependencies, State, Status, Transition};
use crate::error::{Error, Result};
use crate::store::cache::Rendered;
use crate::store::claims::{self, QueueFilter};
use crate::store::context::{self, Source};
use crate::store::delegation::{self, DelegationKind};
use crate::store::tasks::list::{Filter, Listed, PageSpec};
use crate::store::tasks::{
    self, render, FieldPatch, Fields, JsonText, NewRow, Record, TaskJson, TaskRow,
};
use crate::store::{agents, comments, dependencies, projects, readers, Tx};

pub const MAX_CONTENT_CHARS: usize = 2000;
const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_LABELS: usize = 50;
const MAX_LABEL_CHARS: usize = 100;
const MAX_DEPENDENCIES: usize = 100;

/// Evidence kinds accepted on completion, and those that satisfy
/// `evidence_policy: "required"` (SPEC §5).
pub const EVIDENCE_KINDS: &[&str] = &[
    "commit",
    "pr",
    "ci_check",
    "deploy_sha",
    "artifact_url",
    "command_output",
];
const STRONG_EVIDENCE: &[&str] = &["commit", "pr", "ci_check", "deploy_sha"];

/// The fields of a task in a create, delegate or update body, as sent
/// (SPEC §5). `content` is required to create; `root_task_id` and a
/// non-zero `delegation_depth` are refused (400), as are `parent_task_id`
/// and its alias `parent_id` in an update.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct TaskInput {
    /// Required to create; not blank.
    #[schema(max_length = 2000)]
    content: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(max_length = 10000)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    project_id: Option<Option<Id>>,
    /// 1 (most urgent) to 4; default 2.
    #[schema(minimum = 1, maximum = 4)]
    priority: Option<i64>,
    /// At most 50 labels of at most 100 characters.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(max_items = 50)]
    labels: Option<Option<Vec<String>>>,
    /// `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(format = Date)]
    due_date: Option<Option<String>>,
    /// `HH:MM` or `HH:MM:SS`.
    #[serde(default, deserialize_with = "double_option")]
    due_time: Option<Option<String>>,
    /// `open`, `in_progress` or `blocked`; the other states have their own
    /// endpoints.
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assigned_to_agent_id: Option<Option<AgentRef>>,
    #[serde(default, deserialize_with = "double_option")]
    agent_id: Option<Option<AgentRef>>,
    /// By id or name, like every agent reference (SPEC §5).
    #[serde(default, deserialize_with = "double_option")]
    accountable_agent_id: Option<Option<AgentRef>>,
    /// `parent_id` is accepted as an alias (the SDK's `Task.parent_id`).
    /// Create only: makes a delegated child.
    #[serde(alias = "parent_id")]
    parent_task_id: Option<Id>,
    /// Tasks this one waits for (at most 100).
    #[schema(max_items = 100)]
    depends_on: Option<Vec<Id>>,
    /// A JSON object (or null).
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// An alias of `context`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// `"required"` or null.
    #[serde(default, deserialize_with = "double_option")]
    evidence_policy: Option<Option<String>>,
    /// Update only: `true` completes the task, `false` reopens it.
    completed: Option<bool>,
    /// Update only: the fencing token of the claim the caller holds
    /// (SPEC §10); a stale one is refused with 409 `stale_claim`.
    claim_generation: Option<i64>,
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

/// Labels: at most 50 non-blank strings of at most 100 characters.
pub fn check_labels(field: &str, labels: &[String]) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(Error::validation(
            field,
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    for l in labels {
        check_non_blank(field, l, MAX_LABEL_CHARS)?;
    }
    Ok(())
}

fn parse_status(s: &str) -> Result<Status> {
    match Status::parse(s) {
        Some(st) if Status::SETTABLE.contains(&st) => Ok(st),
        Some(_) => Err(Error::validation(
            "status",
            format!("{s:?} is set by its own endpoint; set open, in_progress or blocked"),
        )),
        None => Err(Error::validation(
            "status",
            "must be one of open, in_progress, blocked",
        )),
    }
}

impl TaskInput {
    /// A create (or delegate) body: a task's place in its chain is derived
    /// from `parent_task_id`, never sent (400).
    pub fn parse_new(body: Value) -> Result<NewTask> {
        input::forbid(
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
        TaskInput::parse(body)?.into_new_task()
    }

    /// An update body: a task's place in its chain is fixed (400).
    pub fn parse_changes(body: Value) -> Result<Changes> {
        input::forbid(
            &body,
            &[
                "parent_task_id",
                "parent_id",
                "root_task_id",
                "delegation_depth",
            ],
            "a task's place in its chain is fixed; delegate to create children",
        )?;
        TaskInput::parse(body)?.into_changes()
    }

    /// Parses and validates a body (a JSON object).
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
            check_labels("labels", labels)?;
        }
        if let Some(Some(d)) = &t.due_date {
            check_date("due_date", d)?;
        }
        if let Some(Some(tm)) = &t.due_time {
            check_time(tm)?;
        }
        if let Some(s) = &t.status {
            parse_status(s)?;
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
                return Err(Error::validation("recurring_interval", "must be 1..=1000"));
            }
        }
        if let Some(deps) = &t.depends_on {
            if deps.len() > MAX_DEPENDENCIES {
                return Err(Error::validation(
                    "depends_on",
                    format!("at most {MAX_DEPENDENCIES} dependencies"),
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

    /// The fields a body sets; `None` where it says nothing.
    fn patch(&self) -> FieldPatch {
        FieldPatch {
            content: self.content.clone(),
            description: self.description.clone(),
            project_id: self.project_id.map(|p| p.map(|i| i.0)),
            priority: self.priority,
            labels: self.labels.as_ref().map(|l| {
                JsonText(serde_json::to_string(&l.clone().unwrap_or_default()).unwrap_or_default())
            }),
            due_date: self.due_date.clone(),
            due_time: self.due_time.clone(),
            evidence_policy: self.evidence_policy.clone(),
            recurring_type: self.recurring_type.clone(),
            recurring_interval: self.recurring_interval,
            recurring_string: self.recurring_string.clone(),
            is_recurring: self.is_recurring,
            reminder_time: self.reminder_time.clone(),
            // An agent reference: resolved by the operation.
            accountable_agent_id: None,
        }
    }

    /// A new task from a create (or delegate) body.
    pub fn into_new_task(self) -> Result<NewTask> {
        if self.content.is_none() {
            return Err(Error::validation("content", "is required"));
        }
        let mut fields = Fields {
            priority: 2,
            ..Fields::default()
        };
        fields.apply(self.patch());
        Ok(NewTask {
            fields,
            status: self.status.as_deref().map(parse_status).transpose()?,
            assignee: self.assignee().flatten(),
            accountable: self.accountable_agent_id.clone().flatten(),
            parent_task_id: self.parent_task_id.map(|i| i.0),
            depends_on: self
                .depends_on
                .unwrap_or_default()
                .into_iter()
                .map(|i| i.0)
                .collect(),
            context: context_of(self.context, self.metadata)?,
            recurrence_id: None,
            recurrence_anchor: None,
        })
    }

    /// The changes of an update body.
    pub fn into_changes(self) -> Result<Changes> {
        Ok(Changes {
            fields: self.patch(),
            assignee: self.assignee(),
            accountable: self.accountable_agent_id.clone(),
            status: self.status.as_deref().map(parse_status).transpose()?,
            completed: self.completed,
            claim_generation: self.claim_generation,
            context: context_of(self.context, self.metadata)?,
            depends_on: self
                .depends_on
                .map(|d| d.into_iter().map(|i| i.0).collect()),
        })
    }
}

/// A validated new task; agents are still named as sent.
#[derive(Debug, Default, Clone)]
pub struct NewTask {
    pub fields: Fields,
    pub status: Option<Status>,
    pub assignee: Option<AgentRef>,
    /// The accountable agent; by default the creator, or the parent's for
    /// a child.
    pub accountable: Option<AgentRef>,
    pub parent_task_id: Option<i64>,
    pub depends_on: Vec<i64>,
    pub context: Option<Map<String, Value>>,
    pub recurrence_id: Option<i64>,
    /// The first due date of the legacy recurring series it belongs to.
    pub recurrence_anchor: Option<String>,
}

fn check_project(tx: &Tx, project_id: Option<i64>) -> Result<()> {
    if let Some(pid) = project_id {
        if projects::brief(tx, pid)?.is_none() {
            return Err(Error::validation("project_id", format!("no project {pid}")));
        }
    }
    Ok(())
}

/// Dependencies a caller named, checked.
pub(crate) struct Named {
    /// What they mean for the waiting task's status.
    pub summary: Dependencies,
    /// Each with whether the link shares its result (the caller reads it
    /// through its own work or role, not only through its claim queue).
    pub links: Vec<(i64, bool)>,
}

/// Loads each dependency the caller names (one it cannot read is a 422
/// naming it).
pub(crate) fn named_dependencies(tx: &Tx, caller: &Caller, deps: &[i64]) -> Result<Named> {
    let mut named = Named {
        summary: Dependencies::default(),
        links: Vec::new(),
    };
    for dep in deps {
        let row = require(tx, caller, *dep, Need::Read)
            .map_err(|_| Error::validation("depends_on", format!("no task {dep} you can read")))?;
        if named.links.iter().any(|(d, _)| *d == row.id) {
            continue;
        }
        named
            .links
            .push((row.id, super::reads_beyond_queue(tx, caller, &row)?));
        if row.status() != Status::Completed {
            named.summary.unfinished.push(row.id);
            if row.status() == Status::Failed {
                named.summary.failed.push(row.id);
            }
        }
    }
    Ok(named)
}

/// Options of [`create`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// `X-Dedup-Check: true`: refuse (409) when a similar open task exists.
    pub dedup_check: bool,
    /// Why the task exists, when not a request (`recurrence`): the
    /// `reason` of its `task.created` event.
    pub reason: Option<&'static str>,
}

/// `POST /tasks`: creates a task — a root, or a delegated child when it
/// names a parent.
pub async fn create(
    ctx: &Context,
    caller: &Caller,
    new: NewTask,
    options: CreateOptions,
) -> Result<TaskJson> {
    let (caller, max) = (caller.clone(), ctx.max_context_bytes());
    ctx.store
        .write(move |tx| {
            if options.dedup_check {
                let matches = find_duplicates(tx, &caller, &new.fields.content, 0.6)?;
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
            create_in(tx, &caller, new, options.reason, max).map_err(|e| match (e, parent) {
                (Error::NotFound(_), Some(pid)) => {
                    Error::validation("parent_task_id", format!("no task {pid} you can read"))
                }
                (e, _) => e,
            })
        })
        .await
}

/// Creates a task inside a write: its row and initial state, context,
/// dependencies, the delegation record, its readers and `task.created`;
/// a parent becomes `delegated`.
pub(crate) fn create_in(
    tx: &Tx,
    caller: &Caller,
    new: NewTask,
    reason: Option<&str>,
    max_context_bytes: usize,
) -> Result<TaskJson> {
    // A parent the caller cannot read is a 404, like any unreadable task,
    // and comes before what the new task names (SPEC §2's order).
    let parent = new
        .parent_task_id
        .map(|pid| require(tx, caller, pid, Need::Assign))
        .transpose()?;
    check_project(tx, new.fields.project_id)?;
    let assignee = new
        .assignee
        .as_ref()
        .map(|a| agents::resolve_active(tx, "assigned_to_agent_id", a))
        .transpose()?;
    let deps = named_dependencies(tx, caller, &new.depends_on)?;
    if let Some(p) = &parent {
        // Refused before anything is written (a finished parent).
        p.state(&clock::now_string()).apply(
            p.id,
            Transition::DelegateChild,
            &Dependencies::default(),
        )?;
    }
    let state = State::new().apply(0, Transition::Create(new.status), &deps.summary)?;
    let mut fields = new.fields;
    fields.accountable_agent_id = match &new.accountable {
        Some(a) => Some(agents::resolve_active(tx, "accountable_agent_id", a)?.id),
        None => match &parent {
            Some(p) => p.fields.accountable_agent_id,
            None => caller.agent_id(),
        },
    };
    // A legacy recurring series remembers its first due date.
    let recurrence_anchor = new.recurrence_anchor.or_else(|| {
        fields
            .is_recurring
            .then(|| fields.due_date.clone())
            .flatten()
    });
    let row = NewRow {
        recurrence_anchor,
        fields,
        created_by: caller.agent_id(),
        assigned_to: assignee.as_ref().map(|a| a.id),
        parent: parent
            .as_ref()
            .map(|p| (p.id, p.root_task_id.unwrap_or(p.id), p.delegation_depth + 1)),
        recurrence_id: new.recurrence_id,
    };
    let id = tasks::insert(tx, &row, state)?;
    if let Some(ctx) = &new.context {
        context::write(
            tx,
            caller,
            id,
            ctx,
            Source::AgentInferred,
            None,
            max_context_bytes,
        )?;
    }
    for (dep, shared) in deps.links {
        dependencies::add(tx, id, dep, shared)?;
    }
    let kind = if parent.is_some() {
        Some(DelegationKind::Delegate)
    } else {
        assignee
            .as_ref()
            .filter(|a| Some(a.id) != caller.agent_id())
            .map(|_| DelegationKind::Assign)
    };
    if let Some(kind) = kind {
        delegation::append(
            tx,
            &delegation::NewEvent {
                task_id: id,
                kind,
                from_agent_id: caller.agent_id(),
                to_agent_id: assignee.as_ref().map(|a| a.id),
                actor_agent_id: caller.agent_id(),
                note: None,
            },
        )?;
    }
    let own = ReaderFacts {
        created_by: caller.agent_id(),
        assigned_to: row.assigned_to,
        actors: kind.and(caller.agent_id()).into_iter().collect(),
        ..Default::default()
    };
    readers::initialize(tx, id, &own, row.parent.map(|p| p.0))?;
    let created = emit(tx, caller, id, EventKind::TaskCreated, reason)?;
    if let Some(p) = &parent {
        let before = p.state(&clock::now_string());
        if transition(tx, p, Transition::DelegateChild)? != before {
            if p.claimed_by_agent_id.is_some() {
                readers::refresh(tx, p.id)?;
            }
            emit(tx, caller, p.id, EventKind::TaskUpdated, None)?;
        }
    }
    Ok(created)
}

/// `GET /tasks/{id}`: the task with its comments and links.
pub async fn get(ctx: &Context, caller: &Caller, id: i64) -> Result<String> {
    let cache = ctx.store.cache();
    ctx.store.read_blocking(|conn| {
        let generation = cache.generation();
        let row = require(conn, caller, id, Need::Read)?;
        let base = render::render_cached(conn, cache, generation, vec![row])?;
        let base = base.first().map(|r| r.json()).unwrap_or("{}");
        let comments = serde_json::to_string(&comments::list(conn, id)?)?;
        let links = serde_json::to_string(&comments::links(conn, id)?)?;
        let open = base.strip_suffix('}').unwrap_or(base);
        Ok(format!(
            "{open},\"comments\":{comments},\"links\":{links}}}"
        ))
    })
}

/// `GET /tasks` filters as sent, before agent names are resolved.
pub struct ListQuery {
    filter: Filter,
    assigned_to: Option<AgentRef>,
    created_by: Option<AgentRef>,
}

impl ListQuery {
    /// Parses the query of `GET /tasks` (SPEC §5).
    pub fn parse(q: &Query) -> Result<ListQuery> {
        let mut f = Filter::default();
        if let Some(s) = q.get("status") {
            for status in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if Status::parse(status).is_none() {
                    return Err(Error::validation(
                        "status",
                        format!("unknown status {status:?}; one of {}", Status::names()),
                    ));
                }
                f.statuses.push(status.to_string());
            }
        }
        f.completed = q.bool("completed")?;
        f.include_completed = q.bool("include_completed")?;
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
        f.labels.sort();
        f.labels.dedup();
        check_labels("labels", &f.labels)?;
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
}

/// One page of a list, already serialized: `json` is the JSON array,
/// `more` says a next page exists, `cursor` where it starts (keyset
/// pagination, when the list offers it).
pub struct PageBody {
    pub json: Vec<u8>,
    pub more: bool,
    pub cursor: Option<String>,
}

impl PageBody {
    /// `items` may hold one row more than the page (fetched to learn
    /// whether a next page exists): it is dropped.
    pub fn new<T: serde::Serialize>(page: Page, mut items: Vec<T>) -> Result<PageBody> {
        let more = items.len() as i64 > page.limit;
        items.truncate(page.limit as usize);
        Ok(PageBody {
            json: serde_json::to_vec(&items)?,
            more,
            cursor: None,
        })
    }

    /// A page of ready renderings (tasks), joined into a buffer of the
    /// exact size: a list of 1,000 tasks is a megabyte, and growing a
    /// buffer to that size copies it twice over and faults in fresh pages.
    pub fn rendered(items: Vec<Rendered>, more: bool, cursor: Option<String>) -> PageBody {
        let size = items.iter().map(|r| r.json().len() + 1).sum::<usize>() + 2;
        let mut json = Vec::with_capacity(size);
        json.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(item.json().as_bytes());
        }
        json.push(b']');
        PageBody { json, more, cursor }
    }
}

/// `GET /tasks`: one page of what the caller reads in the order of SPEC
/// §5 — or, with `claimable`, of its claim queue in claim order (priority,
/// then age; `project_id` and `labels` narrow it). Built inside the read,
/// off the async workers.
pub async fn list(
    ctx: &Context,
    caller: &Caller,
    q: ListQuery,
    page: Page,
    cursor: Option<String>,
) -> Result<PageBody> {
    let cache = ctx.store.cache().clone();
    let caller = caller.clone();
    let ListQuery {
        mut filter,
        assigned_to,
        created_by,
    } = q;
    ctx.store
        .read(move |conn| {
            let generation = cache.generation();
            if let Some(a) = &assigned_to {
                filter.assigned_to = Some(agents::resolve(conn, "assigned_to", a)?.id);
            }
            if let Some(a) = &created_by {
                filter.created_by = Some(agents::resolve(conn, "created_by", a)?.id);
            }
            let listed = if filter.claimable {
                let queue = QueueFilter {
                    agent: caller.agent_id().unwrap_or(-1),
                    project_id: filter.project_id,
                    labels: filter.labels.clone(),
                };
                let mut ids = claims::page(conn, &queue, page.limit + 1, page.offset)?;
                let more = ids.len() as i64 > page.limit;
                ids.truncate(page.limit as usize);
                Listed {
                    ids,
                    more,
                    cursor: None,
                }
            } else {
                let spec = PageSpec {
                    limit: page.limit,
                    offset: page.offset,
                    cursor,
                };
                tasks::list::list(conn, &caller, &filter, &spec)?
            };
            let items = render::render_ids(conn, &cache, generation, &listed.ids)?;
            Ok(PageBody::rendered(items, listed.more, listed.cursor))
        })
        .await
}

/// Validated changes of `PUT /tasks/{id}`; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct Changes {
    pub fields: FieldPatch,
    pub status: Option<Status>,
    pub assignee: Option<Option<AgentRef>>,
    pub accountable: Option<Option<AgentRef>>,
    pub completed: Option<bool>,
    /// The fencing token the caller names (SPEC §10), if any.
    pub claim_generation: Option<i64>,
    pub context: Option<Map<String, Value>>,
    pub depends_on: Option<Vec<i64>>,
}

impl Changes {
    /// What the change needs (see [`update_need`]).
    fn need(&self) -> Need {
        let fields = !self.fields.is_empty()
            || self.accountable.is_some()
            || self.status.is_some()
            || self.context.is_some()
            || self.depends_on.is_some();
        update_need(fields, self.assignee.is_some(), self.completed.is_some())
    }
}

/// What an update needs: an assignment alone is for those who assign
/// (coordinators too); `completed` alone is work (a claim holder may
/// complete); anything else is for those who manage the task.
fn update_need(fields: bool, assignment: bool, completed: bool) -> Need {
    match (fields, assignment, completed) {
        (false, true, false) => Need::Assign,
        (false, false, true) => Need::Work,
        _ => Need::Manage,
    }
}

/// What a key of an update body counts toward in [`update_need`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    Field,
    Assignment,
    Completed,
    Nothing,
}

/// The keys of [`TaskInput`] an update reads, what each counts toward,
/// and whether `null` is a change (fields read with `double_option`) or
/// "leave it alone" (plain options). Other keys are ignored, as serde
/// ignores them. A unit test checks this against `TaskInput` itself.
const UPDATE_KEYS: &[(&str, Counts, bool)] = &[
    ("content", Counts::Field, false),
    ("description", Counts::Field, true),
    ("project_id", Counts::Field, true),
    ("priority", Counts::Field, false),
    ("labels", Counts::Field, true),
    ("due_date", Counts::Field, true),
    ("due_time", Counts::Field, true),
    ("status", Counts::Field, false),
    ("assigned_to_agent_id", Counts::Assignment, true),
    ("agent_id", Counts::Assignment, true),
    ("accountable_agent_id", Counts::Field, true),
    ("parent_task_id", Counts::Field, false),
    ("parent_id", Counts::Field, false),
    ("depends_on", Counts::Field, false),
    ("context", Counts::Field, false),
    ("metadata", Counts::Field, false),
    ("evidence_policy", Counts::Field, true),
    ("completed", Counts::Completed, false),
    ("claim_generation", Counts::Nothing, false),
    ("recurring_type", Counts::Field, true),
    ("recurring_interval", Counts::Field, true),
    ("recurring_string", Counts::Field, true),
    ("is_recurring", Counts::Field, false),
    ("reminder_time", Counts::Field, true),
];

/// [`Changes::need`] of an update body not yet validated, by the keys it
/// sends (SPEC §2: the permission is checked before the body is).
pub fn update_need_of(body: &Value) -> Need {
    let Value::Object(map) = body else {
        return Need::Manage;
    };
    let sends = |what: Counts| {
        UPDATE_KEYS.iter().any(|(key, counts, null_changes)| {
            *counts == what && map.get(*key).is_some_and(|v| *null_changes || !v.is_null())
        })
    };
    update_need(
        sends(Counts::Field),
        sends(Counts::Assignment),
        sends(Counts::Completed),
    )
}

/// `PUT /tasks/{id}`: changes fields; emits `task.assigned` when the
/// assignee changed, `task.updated` for other changes and
/// `task.dependencies_changed` for new dependencies; `completed` behaves
/// like complete and uncomplete.
pub async fn update(ctx: &Context, caller: &Caller, id: i64, ch: Changes) -> Result<TaskJson> {
    let (caller, max) = (caller.clone(), ctx.max_context_bytes());
    ctx.store
        .write(move |tx| update_in(tx, &caller, id, ch, max))
        .await
}

fn update_in(tx: &Tx, caller: &Caller, id: i64, ch: Changes, max: usize) -> Result<TaskJson> {
    let mut t = super::require_fenced(tx, caller, id, ch.need(), ch.claim_generation)?;
    if let Some(Some(pid)) = ch.fields.project_id {
        check_project(tx, Some(pid))?;
    }
    let new_assignee = match &ch.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(a)) => Some(Some(
            agents::resolve_active(tx, "assigned_to_agent_id", a)?.id,
        )),
    };
    let mut fields = ch.fields;
    fields.accountable_agent_id = match &ch.accountable {
        None => None,
        Some(None) => Some(None),
        Some(Some(a)) => Some(Some(
            agents::resolve_active(tx, "accountable_agent_id", a)?.id,
        )),
    };
    let due_before = t.fields.due_date.clone();
    let mut other_change = t.fields.apply(fields);
    if t.fields.due_date != due_before && (t.fields.is_recurring || t.recurrence_anchor.is_some()) {
        // A legacy recurring series moved by hand goes on from its new
        // date; re-sending the same (perhaps clamped) date keeps the anchor.
        t.recurrence_anchor = t.fields.due_date.clone();
    }
    let previous_assignee = t.assigned_to_agent_id;
    let assignment_changed = matches!(new_assignee, Some(a) if a != previous_assignee);
    if let Some(a) = new_assignee {
        t.assigned_to_agent_id = a;
    }
    tasks::update_fields(tx, &t)?;
    let mut dependencies_changed = false;
    if let Some(deps) = &ch.depends_on {
        let named = named_dependencies(tx, caller, deps)?;
        let mut touched = dependencies::clear(tx, id)?;
        for (dep, shared) in named.links {
            dependencies::add(tx, id, dep, shared)?;
            touched.push(dep);
        }
        for dep in touched {
            readers::refresh(tx, dep)?;
        }
        dependencies_changed = true;
    }
    // After the dependencies: the machine sees the ones this PUT set.
    let mut unblocked = false;
    if let Some(status) = ch.status {
        if ch.completed.is_none() {
            let before = t.state(&clock::now_string());
            let after = transition(tx, &t, Transition::Put(status))?;
            other_change |= after != before;
        }
    } else if dependencies_changed && ch.completed.is_none() {
        let before = t.state(&clock::now_string());
        let after = transition(tx, &t, Transition::DependenciesChanged)?;
        unblocked = before.status == Status::Blocked && after.status != Status::Blocked;
        other_change |= after != before && !unblocked;
    }
    if let Some(ctx) = &ch.context {
        context::write(tx, caller, id, ctx, Source::AgentInferred, None, max)?;
    }
    if assignment_changed {
        delegation::append(
            tx,
            &delegation::NewEvent {
                task_id: id,
                kind: DelegationKind::Assign,
                from_agent_id: previous_assignee.or(caller.agent_id()),
                to_agent_id: t.assigned_to_agent_id,
                actor_agent_id: caller.agent_id(),
                note: None,
            },
        )?;
        readers::refresh(tx, id)?;
        emit(tx, caller, id, EventKind::TaskAssigned, None)?;
    }
    match ch.completed {
        Some(true) => return complete_in(tx, caller, id, Completion::default(), max),
        Some(false) => return reopen_in(tx, caller, id),
        None => {}
    }
    if dependencies_changed {
        emit(tx, caller, id, EventKind::TaskDependenciesChanged, None)?;
    }
    if unblocked {
        emit(tx, caller, id, EventKind::TaskUnblocked, None)?;
    }
    if other_change {
        emit(tx, caller, id, EventKind::TaskUpdated, None)
    } else if ch.context.is_some() {
        emit(tx, caller, id, EventKind::TaskContextUpdated, None)
    } else {
        tasks::json(tx, id)
    }
}

/// `DELETE /tasks/{id}`: the event carries the task as it was; its
/// children lose their parent (and what they inherited from it), its
/// dependents are re-evaluated.
pub async fn delete(ctx: &Context, caller: &Caller, id: i64) -> Result<()> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            require(tx, &caller, id, Need::Manage)?;
            emit(tx, &caller, id, EventKind::TaskDeleted, None)?;
            let children = tasks::child_ids(tx, id)?;
            let dependents = dependencies::dependents(tx, id)?;
            let inputs = dependencies::clear(tx, id)?;
            tasks::delete(tx, id)?;
            for task in children.into_iter().chain(inputs) {
                readers::refresh(tx, task)?;
            }
            for dependent in dependents {
                tasks::touch(tx, dependent)?;
                super::settle_dependencies(tx, &caller, dependent)?;
            }
            Ok(())
        })
        .await
}

/// The body of `POST /tasks/{id}/complete`, as sent (every field optional).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CompletionBody {
    /// Merged into the task's context (an object).
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// An alias of `context`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// What shows the work is done; checked by [`check_evidence`].
    #[schema(value_type = Option<Vec<Evidence>>, max_items = 50)]
    evidence: Option<Vec<Value>>,
    /// The fencing token of the caller's claim.
    claim_generation: Option<i64>,
}

/// One item of `evidence` (SPEC §5), as [`check_evidence`] accepts it.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// One of [`EVIDENCE_KINDS`].
    #[schema(schema_with = evidence_kind_schema)]
    pub kind: String,
    /// The commit, PR, check, SHA, URL or output; not blank.
    #[serde(rename = "ref")]
    #[schema(max_length = 2000)]
    pub reference: String,
    #[schema(max_length = 2000)]
    pub summary: Option<String>,
}

fn evidence_kind_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(EVIDENCE_KINDS.iter().copied()))
        .build()
}

/// What `/complete` may carry.
#[derive(Debug, Default)]
pub struct Completion {
    pub context: Option<Map<String, Value>>,
    pub evidence: Option<Vec<Value>>,
    /// The fencing token of the caller's claim, if it worked under one.
    pub claim_generation: Option<i64>,
}

impl Completion {
    /// `{context|metadata?, evidence?, claim_generation?}`.
    pub fn parse(body: Value) -> Result<Completion> {
        let b: CompletionBody = input::object(body)?;
        if let Some(e) = &b.evidence {
            check_evidence(e)?;
        }
        Ok(Completion {
            context: context_of(b.context, b.metadata)?,
            evidence: b.evidence,
            claim_generation: b.claim_generation,
        })
    }
}

/// The body of `POST /tasks/{id}/fail`, as sent (every field optional).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct FailureBody {
    /// Why it failed: the task's `failure_reason`.
    #[schema(max_length = 2000)]
    reason: Option<String>,
    /// Merged into the task's context (an object).
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// An alias of `context`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// The fencing token of the caller's claim.
    claim_generation: Option<i64>,
}

/// What `/fail` may carry.
#[derive(Debug, Default)]
pub struct Failure {
    /// ≤ 2000 characters.
    pub reason: Option<String>,
    pub context: Option<Map<String, Value>>,
    pub claim_generation: Option<i64>,
}

impl Failure {
    /// `{reason?, context|metadata?, claim_generation?}`.
    pub fn parse(body: Value) -> Result<Failure> {
        let b: FailureBody = input::object(body)?;
        if let Some(r) = &b.reason {
            input::check_len("reason", r, 2000)?;
        }
        Ok(Failure {
            context: context_of(b.context, b.metadata)?,
            reason: b.reason,
            claim_generation: b.claim_generation,
        })
    }
}

/// `POST /tasks/dedup {content, threshold?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DedupInput {
    /// Not blank.
    #[schema(max_length = 2000)]
    pub content: String,
    /// 0–1, default 0.6.
    #[schema(minimum = 0, maximum = 1)]
    pub threshold: Option<f64>,
}

impl DedupInput {
    pub fn parse(body: Value) -> Result<DedupInput> {
        input::object(body)
    }
}

/// Checks `evidence: [{kind, ref, summary?}]` (SPEC §5).
pub fn check_evidence(evidence: &[Value]) -> Result<()> {
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

/// `POST /tasks/{id}/complete`: status, time, attribution, claim cleared,
/// context merged, dependents settled, the next legacy occurrence created.
/// Completing a completed task changes nothing (safe to retry).
pub async fn complete(ctx: &Context, caller: &Caller, id: i64, c: Completion) -> Result<TaskJson> {
    let (caller, max) = (caller.clone(), ctx.max_context_bytes());
    ctx.store
        .write(move |tx| complete_in(tx, &caller, id, c, max))
        .await
}

pub(crate) fn complete_in(
    tx: &Tx,
    caller: &Caller,
    id: i64,
    c: Completion,
    max: usize,
) -> Result<TaskJson> {
    let t = super::require_fenced(tx, caller, id, Need::Work, c.claim_generation)?;
    if t.status() == Status::Completed {
        return tasks::json(tx, id);
    }
    if t.fields.evidence_policy.as_deref() == Some("required") {
        let strong = c.evidence.iter().flatten().any(|e| {
            e.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| STRONG_EVIDENCE.contains(&k))
        });
        if !strong {
            return Err(Error::validation(
                "evidence",
                "this task requires evidence: at least one of commit, pr, ci_check, deploy_sha",
            ));
        }
    }
    let t = hand_in(tx, caller, t, c.context.as_ref(), max)?;
    let evidence = c.evidence.as_ref().map(serde_json::to_string).transpose()?;
    let record = Record::Completion {
        by: caller.agent_id(),
        evidence: evidence.as_deref(),
    };
    let row = transition_recording(tx, &t, Transition::Complete, record)?;
    // The completer reads what it completed, what is below it and what it
    // waited for; the claimant, if any, no longer reads it through the
    // claim.
    readers::completed(tx, id)?;
    let completed = emit_row(tx, caller, row, EventKind::TaskCompleted, None)?;
    settle_dependents(tx, caller, id)?;
    if t.fields.is_recurring && t.fields.due_date.is_some() {
        spawn_next_occurrence(tx, caller, &t, max)?;
    }
    Ok(completed)
}

/// A legacy recurring task (`is_recurring` with a `due_date`) completed:
/// its next occurrence, on the series' calendar (SPEC §5) — counted from
/// the series' first due date, so a date clamped to a short month never
/// becomes the next one's anchor.
fn spawn_next_occurrence(tx: &Tx, caller: &Caller, t: &TaskRow, max: usize) -> Result<()> {
    let parse = |d: Option<&str>| d.and_then(|d| d.parse::<jiff::civil::Date>().ok());
    let Some(due) = parse(t.fields.due_date.as_deref()) else {
        return Ok(());
    };
    let anchor = parse(t.recurrence_anchor.as_deref()).unwrap_or(due);
    let frequency = t
        .fields
        .recurring_type
        .as_deref()
        .and_then(Frequency::parse)
        .unwrap_or(Frequency::Daily);
    let series = Series {
        frequency,
        interval: i32::try_from(t.fields.recurring_interval.unwrap_or(1).max(1)).unwrap_or(1),
        start: anchor,
        anchor_day: Some(anchor.day()),
        anchor_month: Some(anchor.month()),
        anchor_weekday: None,
    };
    // Past the end of the calendar there is no next occurrence.
    let Some(next) = series.next_after(due) else {
        return Ok(());
    };
    create_in(
        tx,
        caller,
        NewTask {
            fields: Fields {
                due_date: Some(next.to_string()),
                ..t.fields.clone()
            },
            assignee: t.assigned_to_agent_id.map(AgentRef::Id),
            recurrence_anchor: Some(anchor.to_string()),
            ..Default::default()
        },
        None,
        max,
    )?;
    Ok(())
}

/// `POST /tasks/{id}/uncomplete`: a completed or failed task opens again
/// (blocked if a dependency is unfinished).
pub async fn uncomplete(ctx: &Context, caller: &Caller, id: i64) -> Result<TaskJson> {
    let caller = caller.clone();
    ctx.store.write(move |tx| reopen_in(tx, &caller, id)).await
}

/// Merges the result a worker hands in with a completion or a failure
/// (its `context`, as the agent observed it) and returns the task as it
/// then is: the merge changes the row the transition starts from.
fn hand_in(
    tx: &Tx,
    caller: &Caller,
    task: TaskRow,
    context: Option<&Map<String, Value>>,
    max: usize,
) -> Result<TaskRow> {
    let Some(patch) = context else {
        return Ok(task);
    };
    context::write(tx, caller, task.id, patch, Source::AgentObserved, None, max)?;
    tasks::require(tx, task.id)
}

fn reopen_in(tx: &Tx, caller: &Caller, id: i64) -> Result<TaskJson> {
    let t = require(tx, caller, id, Need::Manage)?;
    let row = transition_recording(tx, &t, Transition::Reopen, Record::Reopen)?;
    readers::refresh(tx, id)?;
    let reopened = emit_row(tx, caller, row, EventKind::TaskUpdated, None)?;
    settle_dependents(tx, caller, id)?;
    Ok(reopened)
}

/// `POST /tasks/{id}/fail`: status `failed` with the reason; dependents
/// stay blocked with `dependency_failed`.
pub async fn fail(ctx: &Context, caller: &Caller, id: i64, f: Failure) -> Result<TaskJson> {
    let (caller, max) = (caller.clone(), ctx.max_context_bytes());
    let Failure {
        reason,
        context,
        claim_generation,
    } = f;
    ctx.store
        .write(move |tx| {
            let t = super::require_fenced(tx, &caller, id, Need::Work, claim_generation)?;
            t.state(&clock::now_string())
                .apply(id, Transition::Fail, &Dependencies::default())?;
            let t = hand_in(tx, &caller, t, context.as_ref(), max)?;
            let record = Record::Failure {
                reason: reason.as_deref(),
            };
            let row = transition_recording(tx, &t, Transition::Fail, record)?;
            let failed = emit_row(tx, &caller, row, EventKind::TaskFailed, reason.as_deref())?;
            settle_dependents(tx, &caller, id)?;
            Ok(failed)
        })
        .await
}

/// One match of the duplicate check.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DuplicateMatch {
    pub task_id: i64,
    pub content: String,
    pub score: f64,
}

/// Open tasks the caller reads whose content resembles `content` (TF-IDF
/// cosine ≥ threshold), best first. Looks at the newest 5,000.
fn find_duplicates(
    conn: &rusqlite::Connection,
    caller: &Caller,
    content: &str,
    threshold: f64,
) -> Result<Vec<DuplicateMatch>> {
    let candidates = tasks::list::open_contents(conn, caller, 5000)?;
    let docs: Vec<&str> = candidates.iter().map(|(_, c)| c.as_str()).collect();
    let scores = crate::domain::similarity::scores(content, &docs);
    let mut matches: Vec<DuplicateMatch> = candidates
        .into_iter()
        .zip(scores)
        .filter(|(_, s)| *s >= threshold)
        .map(|((task_id, content), score)| DuplicateMatch {
            task_id,
            content,
            score: (score * 1000.0).round() / 1000.0,
        })
        .collect();
    matches.sort_by(|a, b| b.score.total_cmp(&a.score));
    matches.truncate(20);
    Ok(matches)
}

/// `POST /tasks/dedup`: `{has_duplicates, matches}`.
pub async fn dedup(
    ctx: &Context,
    caller: &Caller,
    content: String,
    threshold: f64,
) -> Result<Value> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Error::validation("threshold", "must be between 0 and 1"));
    }
    check_non_blank("content", &content, MAX_CONTENT_CHARS)?;
    let caller = caller.clone();
    let matches = ctx
        .store
        .read(move |conn| find_duplicates(conn, &caller, &content, threshold))
        .await?;
    Ok(json!({ "has_duplicates": !matches.is_empty(), "matches": matches }))
}

/// Waits until task `id` is completed or failed, at most `timeout`
/// (`wait_for_task`, SPEC §11): `(finished, the task as GET shows it)`.
/// Woken by the task's own events, never by polling; a task deleted
/// meanwhile is a 404.
pub async fn wait_until_finished(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    timeout: std::time::Duration,
) -> Result<(bool, String)> {
    use super::feed::{self, Next};
    use crate::store::event_log::EventFilter;
    let filter = EventFilter {
        types: Vec::new(),
        task_id: Some(id),
    };
    // Following before the first look: a completion in between is seen.
    let mut follow = feed::follow(ctx, caller, filter, None, timeout).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let task = get(ctx, caller, id).await?;
        let status: Option<String> = serde_json::from_str::<Value>(&task)
            .ok()
            .and_then(|t| t.get("status").and_then(Value::as_str).map(String::from));
        if matches!(status.as_deref(), Some("completed" | "failed")) {
            return Ok((true, task));
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok((false, task));
        }
        match tokio::time::timeout(left, follow.next()).await {
            Ok(Some(Next::Event(_))) => continue,
            Ok(Some(Next::Idle)) => continue,
            // The server is stopping (answer now), or an agent changed
            // (follow again, then look once more).
            Ok(None) => {
                if *ctx.store.hub().closing().borrow() {
                    return Ok((false, task));
                }
                let filter = EventFilter {
                    types: Vec::new(),
                    task_id: Some(id),
                };
                follow = feed::follow(ctx, caller, filter, None, left).await?;
            }
            Err(_) => return Ok((false, get(ctx, caller, id).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A value `PUT /tasks/{id}` accepts for each key.
    fn valid(key: &str) -> Value {
        match key {
            "content" | "description" | "recurring_string" => json!("text"),
            "project_id" | "priority" | "claim_generation" | "recurring_interval" => json!(1),
            "labels" => json!(["a"]),
            "due_date" => json!("2027-01-01"),
            "due_time" | "reminder_time" => json!("09:00"),
            "status" => json!("open"),
            "assigned_to_agent_id" | "agent_id" | "accountable_agent_id" => json!("w"),
            "depends_on" => json!([1]),
            "context" | "metadata" => json!({"k": 1}),
            "evidence_policy" => json!("required"),
            "completed" | "is_recurring" => json!(true),
            "recurring_type" => json!("daily"),
            other => panic!("no valid value for {other}"),
        }
    }

    #[test]
    fn update_keys_are_the_fields_of_task_input() {
        use utoipa::PartialSchema;
        let utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(schema)) =
            TaskInput::schema()
        else {
            panic!("TaskInput is an object schema");
        };
        let mut documented: Vec<&str> = schema.properties.keys().map(String::as_str).collect();
        documented.push("parent_id"); // serde alias of parent_task_id
        documented.sort_unstable();
        let mut listed: Vec<&str> = UPDATE_KEYS.iter().map(|(k, _, _)| *k).collect();
        listed.sort_unstable();
        assert_eq!(listed, documented);
    }

    #[test]
    fn the_need_of_an_unvalidated_body_is_the_need_of_the_parsed_one() {
        // The chain fields are refused in an update (400) either way.
        let keys: Vec<&str> = UPDATE_KEYS
            .iter()
            .map(|(k, _, _)| *k)
            .filter(|k| !matches!(*k, "parent_task_id" | "parent_id"))
            .collect();
        let mut bodies = Vec::new();
        for a in &keys {
            for value in [valid(a), Value::Null] {
                bodies.push(json!({ *a: value.clone() }));
                bodies.push(json!({ *a: value, "not_a_field": 1 }));
            }
            for b in &keys {
                bodies.push(json!({ *a: valid(a), *b: valid(b) }));
                bodies.push(json!({ *a: valid(a), *b: Value::Null }));
            }
        }
        for body in bodies {
            let parsed = TaskInput::parse_changes(body.clone())
                .unwrap_or_else(|e| panic!("{body}: {e:?}"))
                .need();
            assert_eq!(update_need_of(&body), parsed, "{body}");
        }
    }
}
