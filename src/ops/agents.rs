//! Agents (SPEC §3, §4): identities, roles, keys. Every change appends an
//! `agent.*` event (admins only) and clears the authenticator's cache.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;
use crate::domain::access::{Caller, Role};
use crate::domain::event_kind::EventKind;
use crate::domain::input::{self, check_len, double_option, AgentRef, Page};
use crate::error::{Error, Result};
use crate::store::agents::{self, Agent, AgentChanges, NewAgent};
use crate::store::event_log::{self, Subject};
use crate::store::Tx;

/// An agent body as sent (create and update).
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct AgentInput {
    /// Required to create: a unique slug of letters, digits, `-`, `_`,
    /// `.` (not all digits).
    #[schema(max_length = 64)]
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    label: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    /// `worker` (default), `coordinator` or `admin`.
    role: Option<String>,
    /// `true` means role `admin`.
    is_admin: Option<bool>,
    /// E.g. `tasks.read_all`; at most 20.
    #[schema(max_items = 20)]
    permissions: Option<Vec<String>>,
    active: Option<bool>,
}

/// Names are slugs: they appear in URLs and may be used wherever an id is.
fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !valid {
        return Err(Error::validation(
            "name",
            "must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit",
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::validation(
            "name",
            "must not be all digits (numbers are read as agent ids)",
        ));
    }
    Ok(())
}

impl AgentInput {
    pub fn parse(body: Value) -> Result<AgentInput> {
        let input: AgentInput = input::object(body)?;
        if let Some(name) = &input.name {
            check_name(name)?;
        }
        for (field, v) in [
            ("display_name", &input.display_name),
            ("label", &input.label),
        ] {
            if let Some(Some(v)) = v {
                check_len(field, v, 200)?;
            }
        }
        if let Some(Some(d)) = &input.description {
            check_len("description", d, 2000)?;
        }
        if let Some(perms) = &input.permissions {
            if perms.len() > 20 {
                return Err(Error::validation("permissions", "at most 20 entries"));
            }
            for p in perms {
                check_len("permissions", p, 100)?;
            }
        }
        Ok(input)
    }

    fn display_name(&self) -> Option<Option<String>> {
        self.display_name.clone().or_else(|| self.label.clone())
    }

    /// The role asked for through `role` and/or the compatible `is_admin`.
    fn role(&self, current: Role) -> Result<Option<Role>> {
        let role = self
            .role
            .as_deref()
            .map(|r| {
                Role::parse(r).ok_or_else(|| {
                    Error::validation("role", "must be one of worker, coordinator, admin")
                })
            })
            .transpose()?;
        match (role, self.is_admin) {
            (Some(r), Some(a)) if (r == Role::Admin) != a => Err(Error::validation(
                "is_admin",
                "contradicts role (is_admin: true means role admin)",
            )),
            (Some(r), _) => Ok(Some(r)),
            (None, Some(true)) => Ok(Some(Role::Admin)),
            (None, Some(false)) if current == Role::Admin => Ok(Some(Role::Worker)),
            _ => Ok(None),
        }
    }

    fn touches_privileges(&self) -> bool {
        self.name.is_some()
            || self.role.is_some()
            || self.is_admin.is_some()
            || self.permissions.is_some()
            || self.active.is_some()
    }

    /// [`AgentInput::parse`] for an update by `caller`: a caller that may
    /// not change privileges hears that (403) rather than what is wrong
    /// with a body that tries to (SPEC §2: permission before validation).
    pub fn parse_update(caller: &Caller, body: Value) -> Result<AgentInput> {
        let privileged = !caller.is_admin()
            && body.as_object().is_some_and(|m| {
                PRIVILEGED
                    .iter()
                    .any(|k| m.get(*k).is_some_and(|v| !v.is_null()))
            });
        AgentInput::parse(body).map_err(|e| if privileged { privileges_refused() } else { e })
    }
}

/// The fields only admins change (`AgentInput::touches_privileges`).
const PRIVILEGED: [&str; 5] = ["name", "role", "is_admin", "permissions", "active"];

fn privileges_refused() -> Error {
    Error::forbidden("only admins change name, role, is_admin, permissions or active")
}

/// Appends `agent.*` about `agent` (never with its key).
fn announce(tx: &Tx, caller: &Caller, kind: EventKind, agent: &Agent) -> Result<()> {
    let mut subject = agent.clone();
    subject.api_key = None;
    let raw = serde_json::value::to_raw_value(&subject)?;
    event_log::record(tx, kind, Subject::Agent(&raw), None, caller, None)?;
    Ok(())
}

/// Who is creating an agent.
pub enum Creator {
    Caller(Caller),
    /// A loopback request without credentials while no agent exists: the
    /// first agent, made an admin (SPEC §3).
    Bootstrap,
}

/// Whether the first-agent bootstrap is still open (no agent exists).
pub async fn bootstrap_open(ctx: &Context) -> Result<bool> {
    Ok(ctx.store.read(agents::count).await? == 0)
}

/// `POST /agents`: 201 with the key, shown this once. Admins only, or the
/// bootstrap. Concurrent bootstraps create exactly one admin.
pub async fn create(ctx: &Context, creator: Creator, input: AgentInput) -> Result<Agent> {
    let caller = match creator {
        Creator::Caller(c) if c.is_admin() => Some(c),
        Creator::Caller(_) => return Err(Error::forbidden("only admins create agents")),
        Creator::Bootstrap => None,
    };
    let name = input
        .name
        .clone()
        .ok_or_else(|| Error::validation("name", "is required"))?;
    let new = NewAgent {
        name,
        display_name: input.display_name().flatten(),
        description: input.description.clone().flatten(),
        role: match caller {
            None => Role::Admin,
            Some(_) => input.role(Role::Worker)?.unwrap_or(Role::Worker),
        },
        permissions: input.permissions.clone().unwrap_or_default(),
    };
    let agent = ctx
        .store
        .write(move |tx| {
            // The writer runs one write at a time, so of concurrent
            // bootstrap requests exactly one sees an empty table.
            if caller.is_none() && agents::count(tx)? > 0 {
                return Err(Error::unauthorized(
                    "agents already exist: authenticate with an admin key or the project token",
                ));
            }
            let agent = agents::insert(tx, new)?;
            announce(
                tx,
                caller.as_ref().unwrap_or(&Caller::Project),
                EventKind::AgentCreated,
                &agent,
            )?;
            Ok(agent)
        })
        .await?;
    ctx.agents_changed();
    Ok(agent)
}

/// `GET /agents`: admins, coordinators and `tasks.read_all` (SPEC §3),
/// each with `open_task_count`, never with keys.
pub async fn list(ctx: &Context, caller: &Caller, page: Page) -> Result<Vec<Agent>> {
    if !caller.lists_agents() {
        return Err(Error::forbidden(
            "only admins, coordinators and agents with tasks.read_all list agents",
        ));
    }
    ctx.store
        .read(move |conn| agents::list(conn, page.limit + 1, page.offset))
        .await
}

/// `GET /agents/{id}`: workers see only themselves.
pub async fn get(ctx: &Context, caller: &Caller, target: AgentRef) -> Result<Agent> {
    let agent = ctx
        .store
        .read(move |conn| {
            let mut a = agents::require(conn, &target)?;
            a.open_task_count = Some(agents::open_task_count(conn, a.id)?);
            Ok(a)
        })
        .await?;
    if !(caller.lists_agents() || caller.is_agent(agent.id)) {
        return Err(Error::forbidden("workers may only view their own agent"));
    }
    Ok(agent)
}

/// `PUT /agents/{id}`: non-admins change only their own display name and
/// description.
pub async fn update(
    ctx: &Context,
    caller: &Caller,
    target: AgentRef,
    input: Result<AgentInput>,
) -> Result<Agent> {
    let caller = caller.clone();
    let agent = ctx
        .store
        .write(move |tx| {
            // SPEC §2's order of checks: 404, 403, then the body's 422.
            let current = agents::require(tx, &target)?;
            if !caller.is_admin() && !caller.is_agent(current.id) {
                return Err(Error::forbidden("only admins update other agents"));
            }
            let input = input?;
            if !caller.is_admin() && input.touches_privileges() {
                return Err(privileges_refused());
            }
            if input.active == Some(false) && caller.is_agent(current.id) {
                return Err(Error::conflict("you cannot deactivate yourself"));
            }
            let changes = AgentChanges {
                name: input.name.clone(),
                display_name: input.display_name(),
                description: input.description.clone(),
                role: input.role(current.role)?,
                permissions: input.permissions.clone(),
                active: input.active,
            };
            let agent = agents::update(tx, current.id, changes)?;
            announce(tx, &caller, EventKind::AgentUpdated, &agent)?;
            Ok(agent)
        })
        .await?;
    ctx.agents_changed();
    Ok(agent)
}

/// `DELETE /agents/{id}`: admins; refused (409) while it has open assigned
/// tasks or holds claims, and for the caller itself.
pub async fn delete(ctx: &Context, caller: &Caller, target: AgentRef) -> Result<i64> {
    if !caller.is_admin() {
        return Err(Error::forbidden("only admins delete agents"));
    }
    let caller = caller.clone();
    let id = ctx
        .store
        .write(move |tx| {
            let agent = agents::require(tx, &target)?;
            if caller.is_agent(agent.id) {
                return Err(Error::conflict("you cannot delete the agent you are using"));
            }
            announce(tx, &caller, EventKind::AgentDeleted, &agent)?;
            agents::delete(tx, agent.id)?;
            Ok(agent.id)
        })
        .await?;
    ctx.agents_changed();
    Ok(id)
}

/// `POST /agents/{id}/rotate-key`: the new key, shown this once; the old
/// one stops working.
pub async fn rotate_key(ctx: &Context, caller: &Caller, target: AgentRef) -> Result<Agent> {
    let caller = caller.clone();
    let agent = ctx
        .store
        .write(move |tx| {
            let agent = agents::require(tx, &target)?;
            if !caller.is_admin() && !caller.is_agent(agent.id) {
                return Err(Error::forbidden("only admins rotate other agents' keys"));
            }
            let agent = agents::rotate_key(tx, agent.id)?;
            announce(tx, &caller, EventKind::AgentKeyRotated, &agent)?;
            Ok(agent)
        })
        .await?;
    ctx.agents_changed();
    Ok(agent)
}

/// `GET /agent/me`: the caller's agent at the top level and under
/// `agent`, with `account`; for the project token `agent` is null.
pub async fn me(ctx: &Context, caller: &Caller) -> Result<Value> {
    let account = json!({ "plan": "self-hosted" });
    let Some(id) = caller.agent_id() else {
        return Ok(json!({
            "id": null,
            "name": null,
            "role": "admin",
            "is_admin": true,
            "permissions": [],
            "auth": "project_token",
            "agent": null,
            "account": account,
        }));
    };
    let agent = ctx
        .store
        .read(move |conn| agents::require(conn, &AgentRef::Id(id)))
        .await?;
    let mut out = serde_json::to_value(&agent)?;
    if let Value::Object(map) = &mut out {
        map.insert("agent".into(), serde_json::to_value(&agent)?);
        map.insert("account".into(), account);
        map.insert("auth".into(), json!("agent_key"));
    }
    Ok(out)
}
