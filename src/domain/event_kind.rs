//! The kinds of event (SPEC §9): every state change appends one of these
//! in its own transaction. Webhooks subscribe to them by name (or `"*"`).

/// One kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    TaskCreated,
    TaskUpdated,
    TaskAssigned,
    TaskDelegated,
    TaskCompleted,
    TaskFailed,
    TaskDeleted,
    TaskCommented,
    TaskCommentDeleted,
    TaskClaimed,
    TaskReleased,
    TaskStateChanged,
    TaskLinked,
    TaskUnlinked,
    TaskUnblocked,
    TaskContextUpdated,
    TaskDependenciesChanged,
    ProjectCreated,
    ProjectUpdated,
    ProjectDeleted,
    AgentCreated,
    AgentUpdated,
    AgentDeleted,
    AgentKeyRotated,
}

/// The event a webhook test sends: addressed to one hook, in no feed.
pub const PING: &str = "webhook.test";

impl EventKind {
    pub const ALL: [EventKind; 24] = [
        EventKind::TaskCreated,
        EventKind::TaskUpdated,
        EventKind::TaskAssigned,
        EventKind::TaskDelegated,
        EventKind::TaskCompleted,
        EventKind::TaskFailed,
        EventKind::TaskDeleted,
        EventKind::TaskCommented,
        EventKind::TaskCommentDeleted,
        EventKind::TaskClaimed,
        EventKind::TaskReleased,
        EventKind::TaskStateChanged,
        EventKind::TaskLinked,
        EventKind::TaskUnlinked,
        EventKind::TaskUnblocked,
        EventKind::TaskContextUpdated,
        EventKind::TaskDependenciesChanged,
        EventKind::ProjectCreated,
        EventKind::ProjectUpdated,
        EventKind::ProjectDeleted,
        EventKind::AgentCreated,
        EventKind::AgentUpdated,
        EventKind::AgentDeleted,
        EventKind::AgentKeyRotated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TaskCreated => "task.created",
            EventKind::TaskUpdated => "task.updated",
            EventKind::TaskAssigned => "task.assigned",
            EventKind::TaskDelegated => "task.delegated",
            EventKind::TaskCompleted => "task.completed",
            EventKind::TaskFailed => "task.failed",
            EventKind::TaskDeleted => "task.deleted",
            EventKind::TaskCommented => "task.commented",
            EventKind::TaskCommentDeleted => "task.comment_deleted",
            EventKind::TaskClaimed => "task.claimed",
            EventKind::TaskReleased => "task.released",
            EventKind::TaskStateChanged => "task.state_changed",
            EventKind::TaskLinked => "task.linked",
            EventKind::TaskUnlinked => "task.unlinked",
            EventKind::TaskUnblocked => "task.unblocked",
            EventKind::TaskContextUpdated => "task.context_updated",
            EventKind::TaskDependenciesChanged => "task.dependencies_changed",
            EventKind::ProjectCreated => "project.created",
            EventKind::ProjectUpdated => "project.updated",
            EventKind::ProjectDeleted => "project.deleted",
            EventKind::AgentCreated => "agent.created",
            EventKind::AgentUpdated => "agent.updated",
            EventKind::AgentDeleted => "agent.deleted",
            EventKind::AgentKeyRotated => "agent.key_rotated",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Project and agent events: shown to admins and project-wide hooks
    /// only (SPEC §9).
    pub fn is_admin_only(self) -> bool {
        !self.as_str().starts_with("task.")
    }

    /// Every name, comma-separated (for error messages).
    pub fn names() -> String {
        EventKind::ALL.map(EventKind::as_str).join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse(PING), None);
    }
}
