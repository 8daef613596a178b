//! Callers, roles, and the one rule of who may read and change a task.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// May list agents (never with keys): coordinators, admins and
    /// `tasks.read_all` (SPEC §3).
    pub fn lists_agents(&self) -> bool {
        self.reads_all()
    }
    pub fn is_agent(&self, id: i64) -> bool {
        self.agent_id() == Some(id)
    }
}

// ---------------------------------------------------------------- tasks
//
// Who may read and change a task (SPEC §3) is decided here and nowhere
// else. The store keeps, per task, the agents who read it through their
// own work (`task_readers`, maintained with [`readers`]); every read path
// (a task by id, lists, the chain, inputs, events, recall, duplicates,
// stats, webhooks) asks that table, and every permission check asks
// [`task_access`].

/// What a caller may do with one task, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// See it: `tasks.read_all`, or a task in the caller's claim queue.
    Read,
    /// Read and comment: coordinators, and agents who read it through
    /// their own work (completed it, handed it on, or upstream of it).
    Comment,
    /// Work it under a live claim: heartbeat, state, release, complete,
    /// fail, context, comments, links — not delete it or reassign it.
    Work,
    /// Everything: its creator, its assignee, admins.
    Manage,
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Comment,
    Work,
    Manage,
    /// Assign or delegate: managers, and coordinators on any task.
    Assign,
}

impl Need {
    fn verb(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Comment => "comment on",
            Need::Work => "work on",
            Need::Manage => "modify",
            Need::Assign => "assign or delegate",
        }
    }
}

/// What the permission rule looks at, as the store found it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskFacts {
    pub id: i64,
    pub created_by: Option<i64>,
    pub assigned_to: Option<i64>,
    /// The holder of a claim whose lease has not run out.
    pub live_claimant: Option<i64>,
    /// The caller is among the task's readers (`task_readers`).
    pub reader: bool,
    /// The task is in the caller's claim queue.
    pub in_queue: bool,
}

/// The caller's access to a task, or `None` when it may not see it.
pub fn task_access(caller: &Caller, t: &TaskFacts) -> Option<Access> {
    let Some(agent) = caller.agent() else {
        return Some(Access::Manage);
    };
    let me = Some(agent.id);
    if agent.role == Role::Admin || t.created_by == me || t.assigned_to == me {
        return Some(Access::Manage);
    }
    if t.live_claimant == me {
        return Some(Access::Work);
    }
    if agent.role == Role::Coordinator || t.reader {
        return Some(Access::Comment);
    }
    if agent.read_all || t.in_queue {
        return Some(Access::Read);
    }
    None
}

/// Checks `need` against the caller's access: a task it cannot see is a
/// 404 (SPEC §3: never a 403 that confirms it exists), one it sees but may
/// not use that way a 403.
pub fn check(caller: &Caller, t: &TaskFacts, need: Need) -> Result<(), Error> {
    let not_found = || Error::not_found(format!("task {} not found", t.id));
    let access = task_access(caller, t).ok_or_else(not_found)?;
    let allowed = match need {
        Need::Read => true,
        Need::Comment => access >= Access::Comment,
        Need::Work => access >= Access::Work,
        Need::Manage => access == Access::Manage,
        Need::Assign => access == Access::Manage || caller.coordinates(),
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "you may read task {} but not {} it",
            t.id,
            need.verb()
        )))
    }
}

/// A task's own facts for [`readers`].
#[derive(Debug, Clone, Default)]
pub struct ReaderFacts {
    pub created_by: Option<i64>,
    pub assigned_to: Option<i64>,
    pub completed_by: Option<i64>,
    pub live_claimant: Option<i64>,
    /// The actors of the task's hand-offs, delegations and assignments.
    pub actors: Vec<i64>,
    /// Who reads, through their own work, a task that waits for this one
    /// on a link that shares it (the link was made by someone who reads
    /// this task through their own work or role — SPEC §8's pipelines).
    pub waiting_readers: BTreeSet<i64>,
}

/// Who reads a task, as [`readers`] derives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readers {
    /// Read it through their own work, and pass that down to its children:
    /// its creator, assignee, completer, the agents who acted on its
    /// hand-offs, and its parent's such readers.
    pub heritable: BTreeSet<i64>,
    /// Read the task itself only: its claimant (a claim never opens the
    /// subtree) and the readers of tasks that wait for its result.
    pub this_task_only: BTreeSet<i64>,
}

/// Who reads a task through their own work (SPEC §3, §8), given its
/// facts and the heritable readers of its parent. Someone moved off the
/// task by another agent is in neither set: being reassigned away ends
/// access.
pub fn readers(own: &ReaderFacts, from_parent: &BTreeSet<i64>) -> Readers {
    let mut heritable = from_parent.clone();
    heritable.extend(
        [own.created_by, own.assigned_to, own.completed_by]
            .into_iter()
            .flatten(),
    );
    heritable.extend(own.actors.iter().copied());
    let this_task_only = own
        .live_claimant
        .into_iter()
        .chain(own.waiting_readers.iter().copied())
        .filter(|a| !heritable.contains(a))
        .collect();
    Readers {
        heritable,
        this_task_only,
    }
}
