//! Callers and roles.

use std::sync::Arc;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Worker,
    Coordinator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Coordinator => "coordinator",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "worker" => Some(Role::Worker),
            "coordinator" => Some(Role::Coordinator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The permission that grants coordinator-level reading.
pub const READ_ALL: &str = "tasks.read_all";

/// An authenticated agent, as the auth layer caches it.
#[derive(Clone, Debug)]
pub struct AgentIdentity {
    pub id: i64,
    pub name: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub read_all: bool,
}

/// Who is making a request.
#[derive(Clone, Debug)]
pub enum Caller {
    /// The project token, or anyone in open mode: an administrator with no
    /// agent identity (actions attributed to null).
    Project,
    Agent(Arc<AgentIdentity>),
}

impl Caller {
    pub fn agent(&self) -> Option<&AgentIdentity> {
        match self {
            Caller::Project => None,
            Caller::Agent(a) => Some(a),
        }
    }
    pub fn agent_id(&self) -> Option<i64> {
        self.agent().map(|a| a.id)
    }
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Project => true,
            Caller::Agent(a) => a.role == Role::Admin,
        }
    }
    /// Admins and coordinators: comment on, assign and delegate any task.
    pub fn coordinates(&self) -> bool {
        match self {
            Caller::Project => true,
            Caller::Agent(a) => a.role != Role::Worker,
        }
    }
    /// Reads every task: coordinators, admins and `tasks.read_all`.
    pub fn reads_all(&self) -> bool {
        self.coordinates() || self.agent().is_some_and(|a| a.read_all)
    }
    pub fn is_agent(&self, id: i64) -> bool {
        self.agent_id() == Some(id)
    }
}
