//! `/agents`, `/agents/{id}`, `/agents/{id}/rotate-key`, `/agent/me`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{is_local_bootstrap, MaybeCaller, MISSING_CREDENTIALS};
use super::{created, ok, page_response, query, Json, State};
use crate::domain::access::{Caller, Role};
use crate::domain::input::{self, check_len, double_option, AgentRef, Page};
use crate::error::{Error, Result};
use crate::store::agents::{self, Agent, AgentChanges, NewAgent};

#[derive(Deserialize, Default)]
struct AgentInput {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    label: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    role: Option<String>,
    is_admin: Option<bool>,
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
    fn parse(body: Value) -> Result<AgentInput> {
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
}

async fn create(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let input = AgentInput::parse(body)?;
    let name = input
        .name
        .clone()
        .ok_or_else(|| Error::validation("name", "is required"))?;
    let bootstrap = match &caller.0 {
        Some(c) if c.is_admin() => false,
        Some(_) => return Err(Error::forbidden("only admins create agents")),
        None if is_local_bootstrap(&req) => true,
        None => return Err(Error::unauthorized(MISSING_CREDENTIALS)),
    };
    let new = NewAgent {
        name,
        display_name: input.display_name().flatten(),
        description: input.description.clone().flatten(),
        role: if bootstrap {
            Role::Admin
        } else {
            input.role(Role::Worker)?.unwrap_or(Role::Worker)
        },
        permissions: input.permissions.clone().unwrap_or_default(),
    };
    let agent = state
        .store
        .write(move |tx| {
            // The writer runs one write at a time, so of concurrent
            // bootstrap requests exactly one sees an empty table.
            if bootstrap && agents::count(tx)? > 0 {
                return Err(Error::unauthorized(
                    "agents already exist: authenticate with an admin key or the project token",
                ));
            }
            agents::insert(tx, new)
        })
        .await?;
    created(&agent)
}

async fn list(state: State, req: HttpRequest, caller: Caller) -> Result<HttpResponse> {
    if !caller.coordinates() {
        return Err(Error::forbidden(
            "only admins and coordinators list agents",
        ));
    }
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let agents = state
        .store
        .read(move |conn| agents::list(conn, page.limit + 1, page.offset))
        .await?;
    page_response(&req, &q, page, agents)
}

fn may_view(caller: &Caller, agent: &Agent) -> bool {
    caller.coordinates() || caller.is_agent(agent.id)
}

async fn get(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    let target = AgentRef::parse(&path);
    let agent = state
        .store
        .read(move |conn| {
            let mut a = agents::require(conn, &target)?;
            a.open_task_count = Some(agents::open_task_count(conn, a.id)?);
            Ok(a)
        })
        .await?;
    if !may_view(&caller, &agent) {
        return Err(Error::forbidden("workers may only view their own agent"));
    }
    ok(&agent)
}

async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    let input = AgentInput::parse(body)?;
    let target = AgentRef::parse(&path);
    let agent = state
        .store
        .write(move |tx| {
            let current = agents::require(tx, &target)?;
            if !caller.is_admin() {
                if !caller.is_agent(current.id) {
                    return Err(Error::forbidden("only admins update other agents"));
                }
                if input.touches_privileges() {
                    return Err(Error::forbidden(
                        "only admins change name, role, is_admin, permissions or active",
                    ));
                }
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
            agents::update(tx, current.id, changes)
        })
        .await?;
    state.agents_changed();
    ok(&agent)
}

async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    if !caller.is_admin() {
        return Err(Error::forbidden("only admins delete agents"));
    }
    let target = AgentRef::parse(&path);
    let id = state
        .store
        .write(move |tx| {
            let agent = agents::require(tx, &target)?;
            if caller.is_agent(agent.id) {
                return Err(Error::conflict(
                    "you cannot delete the agent you are using",
                ));
            }
            agents::delete(tx, agent.id)?;
            Ok(agent.id)
        })
        .await?;
    state.agents_changed();
    ok(&json!({ "deleted": true, "id": id }))
}

async fn rotate_key(
    state: State,
    path: web::Path<String>,
    caller: Caller,
) -> Result<HttpResponse> {
    let target = AgentRef::parse(&path);
    let agent = state
        .store
        .write(move |tx| {
            let agent = agents::require(tx, &target)?;
            if !caller.is_admin() && !caller.is_agent(agent.id) {
                return Err(Error::forbidden("only admins rotate other agents' keys"));
            }
            agents::rotate_key(tx, agent.id)
        })
        .await?;
    state.agents_changed();
    ok(&agent)
}

async fn me(state: State, caller: Caller) -> Result<HttpResponse> {
    let account = json!({ "plan": "self-hosted" });
    let Some(id) = caller.agent_id() else {
        return ok(&json!({
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
    let agent = state
        .store
        .read(move |conn| agents::require(conn, &AgentRef::Id(id)))
        .await?;
    let mut out = serde_json::to_value(&agent)?;
    if let Value::Object(map) = &mut out {
        map.insert("agent".into(), serde_json::to_value(&agent)?);
        map.insert("account".into(), account);
        map.insert("auth".into(), json!("agent_key"));
    }
    ok(&out)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/agents")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/agents/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .route("/agents/{id}/rotate-key", web::post().to(rotate_key))
    .route("/agent/me", web::get().to(me));
}
