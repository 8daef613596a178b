//! Agents: identities, roles and hashed keys.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::domain::access::{AgentIdentity, Role, READ_ALL};
use crate::domain::clock;
use crate::domain::input::AgentRef;
use crate::domain::keys;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    pub display_name: Option<String>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub role: Role,
    pub is_admin: bool,
    pub permissions: Vec<String>,
    pub active: bool,
    pub key_prefix: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_task_count: Option<i64>,
    /// Only in the create and rotate-key answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// The nested agent object of task responses and event payloads.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentBrief {
    pub id: i64,
    pub name: String,
    pub display_name: Option<String>,
}

const COLUMNS: &str = "id, name, display_name, description, role, permissions, active, \
                       key_prefix, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<Agent> {
    let role: String = r.get(4)?;
    let role = Role::parse(&role).unwrap_or(Role::Worker);
    let permissions: String = r.get(5)?;
    let display_name: Option<String> = r.get(2)?;
    Ok(Agent {
        id: r.get(0)?,
        name: r.get(1)?,
        label: display_name.clone(),
        display_name,
        description: r.get(3)?,
        role,
        is_admin: role == Role::Admin,
        permissions: serde_json::from_str(&permissions).unwrap_or_default(),
        active: r.get(6)?,
        key_prefix: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        open_task_count: None,
        api_key: None,
    })
}

impl Agent {
    pub fn brief(&self) -> AgentBrief {
        AgentBrief {
            id: self.id,
            name: self.name.clone(),
            display_name: self.display_name.clone(),
        }
    }
    pub fn identity(&self) -> AgentIdentity {
        AgentIdentity {
            id: self.id,
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            read_all: self.permissions.iter().any(|p| p == READ_ALL),
        }
    }
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM agents", [], |r| r.get(0))?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Agent>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

pub fn find(conn: &Connection, agent: &AgentRef) -> Result<Option<Agent>> {
    match agent {
        AgentRef::Id(id) => get(conn, *id),
        AgentRef::Name(name) => Ok(conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM agents WHERE name = ?1"))?
            .query_row([name], from_row)
            .optional()?),
    }
}

/// An agent named in a request body: unknown → 422 naming the field.
pub fn resolve(conn: &Connection, field: &str, agent: &AgentRef) -> Result<Agent> {
    find(conn, agent)?.ok_or_else(|| Error::validation(field, format!("no agent {agent}")))
}

/// Like [`resolve`], for assignment targets, which must be active.
pub fn resolve_active(conn: &Connection, field: &str, agent: &AgentRef) -> Result<Agent> {
    let a = resolve(conn, field, agent)?;
    if !a.active {
        return Err(Error::validation(
            field,
            format!("agent {:?} is deactivated", a.name),
        ));
    }
    Ok(a)
}

/// An agent named in the path: unknown → 404.
pub fn require(conn: &Connection, agent: &AgentRef) -> Result<Agent> {
    find(conn, agent)?.ok_or_else(|| Error::not_found(format!("no agent {agent}")))
}

pub fn brief(conn: &Connection, id: i64) -> Result<Option<AgentBrief>> {
    Ok(conn
        .prepare_cached("SELECT id, name, display_name FROM agents WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(AgentBrief {
                id: r.get(0)?,
                name: r.get(1)?,
                display_name: r.get(2)?,
            })
        })
        .optional()?)
}

pub fn open_task_count(conn: &Connection, id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM tasks WHERE assigned_to_agent_id = ?1 \
             AND status NOT IN ('completed', 'failed')",
        )?
        .query_row([id], |r| r.get(0))?)
}

pub fn list(conn: &Connection, limit: i64, offset: i64) -> Result<Vec<Agent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, (SELECT count(*) FROM tasks t WHERE t.assigned_to_agent_id = agents.id \
         AND t.status NOT IN ('completed', 'failed')) FROM agents ORDER BY id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt.query_map([limit, offset], |r| {
        let mut a = from_row(r)?;
        a.open_task_count = Some(r.get(10)?);
        Ok(a)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub struct NewAgent {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub role: Role,
    pub permissions: Vec<String>,
}

fn name_taken(conn: &Connection, name: &str, except: Option<i64>) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT id FROM agents WHERE name = ?1")?
        .query_row([name], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some_and(|id| Some(id) != except))
}

/// Creates an agent; the answer carries its key, the only time it is shown.
pub fn insert(conn: &Connection, new: NewAgent) -> Result<Agent> {
    if name_taken(conn, &new.name, None)? {
        return Err(Error::conflict(format!(
            "an agent named {:?} already exists",
            new.name
        )));
    }
    let key = keys::new_agent_key();
    let now = clock::now_string();
    conn.prepare_cached(
        "INSERT INTO agents (name, display_name, description, role, permissions, key_hash, \
         key_prefix, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        new.name,
        new.display_name,
        new.description,
        new.role.as_str(),
        serde_json::to_string(&new.permissions)?,
        keys::hash(&key),
        keys::display_prefix(&key),
        now
    ])?;
    let mut agent = get(conn, conn.last_insert_rowid())?
        .ok_or_else(|| Error::internal("agent vanished after insert"))?;
    agent.api_key = Some(key);
    Ok(agent)
}

#[derive(Default)]
pub struct AgentChanges {
    pub name: Option<String>,
    pub display_name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub role: Option<Role>,
    pub permissions: Option<Vec<String>>,
    pub active: Option<bool>,
}

pub fn update(conn: &Connection, id: i64, changes: AgentChanges) -> Result<Agent> {
    let mut agent = get(conn, id)?.ok_or_else(|| Error::not_found(format!("no agent {id}")))?;
    if let Some(name) = changes.name {
        if name_taken(conn, &name, Some(id))? {
            return Err(Error::conflict(format!(
                "an agent named {name:?} already exists"
            )));
        }
        agent.name = name;
    }
    if let Some(v) = changes.display_name {
        agent.display_name = v;
    }
    if let Some(v) = changes.description {
        agent.description = v;
    }
    if let Some(v) = changes.role {
        agent.role = v;
    }
    if let Some(v) = changes.permissions {
        agent.permissions = v;
    }
    let reactivated = changes.active == Some(true) && !agent.active;
    if let Some(v) = changes.active {
        agent.active = v;
    }
    if reactivated {
        // Its webhooks were not fed while it was inactive; like a hook
        // turned back on, they receive what happens from now on.
        super::webhooks::skip_to_now(conn, "owner_agent_id = ?1", id)?;
    }
    conn.prepare_cached(
        "UPDATE agents SET name = ?2, display_name = ?3, description = ?4, role = ?5, \
         permissions = ?6, active = ?7, updated_at = ?8 WHERE id = ?1",
    )?
    .execute(params![
        id,
        agent.name,
        agent.display_name,
        agent.description,
        agent.role.as_str(),
        serde_json::to_string(&agent.permissions)?,
        agent.active,
        clock::now_string()
    ])?;
    get(conn, id)?.ok_or_else(|| Error::internal("agent vanished after update"))
}

pub fn rotate_key(conn: &Connection, id: i64) -> Result<Agent> {
    let key = keys::new_agent_key();
    conn.execute(
        "UPDATE agents SET key_hash = ?2, key_prefix = ?3, updated_at = ?4 WHERE id = ?1",
        params![
            id,
            keys::hash(&key),
            keys::display_prefix(&key),
            clock::now_string()
        ],
    )?;
    let mut agent = get(conn, id)?.ok_or_else(|| Error::not_found(format!("no agent {id}")))?;
    agent.api_key = Some(key);
    Ok(agent)
}

/// Deletes an agent that has no open assigned tasks and holds no claims.
pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    let open = open_task_count(conn, id)?;
    if open > 0 {
        return Err(Error::conflict(format!(
            "agent {id} still has {open} open assigned task(s); reassign or finish them first"
        )));
    }
    let claims: i64 = conn.query_row(
        "SELECT count(*) FROM tasks WHERE claimed_by_agent_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if claims > 0 {
        return Err(Error::conflict(format!(
            "agent {id} holds {claims} claim(s); release them first"
        )));
    }
    super::readers::forget_agent(conn, id)?;
    conn.execute("DELETE FROM agents WHERE id = ?1", [id])?;
    Ok(())
}

/// Finds the active agent holding `key`. The lookup uses the clear display
/// prefix; the hash comparison is constant-time.
pub fn authenticate(conn: &Connection, key: &str) -> Result<Option<Arc<AgentIdentity>>> {
    if !key.starts_with(keys::AGENT_KEY_PREFIX) || key.len() < keys::DISPLAY_PREFIX_LEN {
        return Ok(None);
    }
    let hash = keys::hash(key);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, key_hash FROM agents WHERE key_prefix = ?1"
    ))?;
    let candidates = stmt.query_map([keys::display_prefix(key)], |r| {
        Ok((from_row(r)?, r.get::<_, String>(10)?))
    })?;
    for candidate in candidates {
        let (agent, stored) = candidate?;
        if keys::hashes_match(&stored, &hash) {
            return Ok(agent.active.then(|| Arc::new(agent.identity())));
        }
    }
    Ok(None)
}

/// Finds an active agent by name, for trusted-proxy authentication.
pub fn by_name_active(conn: &Connection, name: &str) -> Result<Option<Arc<AgentIdentity>>> {
    Ok(find(conn, &AgentRef::Name(name.to_string()))?
        .filter(|a| a.active)
        .map(|a| Arc::new(a.identity())))
}
