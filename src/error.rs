//! The one error type of every operation, whatever the way in.
//!
//! Operations, the store and the domain return [`Error`]; it knows its
//! HTTP status, its `code` and its JSON body (`{"error", "code", "status",
//! "detail"}`, SPEC §2) but nothing about any transport: `api::error` turns
//! it into an HTTP response, and the MCP tools into an `isError` result.
//! Internal errors log their cause and show an opaque message.

use serde::Serialize;
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A state-changing request a browser sent cross-site (SPEC §2).
    #[error("{0}")]
    CrossSite(String),
    #[error("{0}")]
    NotFound(String),
    /// `code` refines the generic `conflict` (`stale_claim`,
    /// `blocked_by_dependencies`, …); `extra` keys are merged into the top
    /// level of the body (the dedup check's `matches`, the context
    /// conflict's `version`).
    #[error("{message}")]
    Conflict {
        message: String,
        code: &'static str,
        extra: Option<Map<String, Value>>,
    },
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The JSON body of every error (SPEC §2), as [`Error::body`] builds it;
/// the OpenAPI document's `Error` schema.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A human sentence.
    pub error: String,
    /// snake_case: `validation_error`, `not_found`, `stale_claim`, …
    pub code: &'static str,
    /// The HTTP status, again.
    pub status: u16,
    /// A string, or `{field, reason}` for a validation error.
    #[schema(schema_with = detail_schema)]
    pub detail: Value,
    /// A conflict's extra keys (the dedup check's `matches`, the context
    /// conflict's `version`), at the top level.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

fn detail_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("field", ObjectBuilder::new().schema_type(Type::String))
                .property("reason", ObjectBuilder::new().schema_type(Type::String))
                .required("field")
                .required("reason"),
        )
        .build()
        .into()
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Error::Unauthorized(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict {
            message: msg.into(),
            code: "conflict",
            extra: None,
        }
    }
    /// A conflict whose body carries the keys of `extra` (an object).
    pub fn conflict_with(msg: impl Into<String>, extra: Value) -> Self {
        let extra = match extra {
            Value::Object(map) => Some(map),
            _ => None,
        };
        Error::Conflict {
            message: msg.into(),
            code: "conflict",
            extra,
        }
    }
    /// The same conflict with a more precise `code`; other errors unchanged.
    pub fn coded(self, code: &'static str) -> Self {
        match self {
            Error::Conflict { message, extra, .. } => Error::Conflict {
                message,
                code,
                extra,
            },
            other => other,
        }
    }
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(anyhow::anyhow!(msg.into()))
    }

    /// The snake_case `code` of the body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::CrossSite(_) => "cross_site_request",
            Error::NotFound(_) => "not_found",
            Error::Conflict { code, .. } => code,
            Error::TooLarge(_) => "payload_too_large",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Validation { .. } => "validation_error",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status SPEC §2 gives this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) | Error::CrossSite(_) => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Conflict { .. } => 409,
            Error::TooLarge(_) => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::Validation { .. } => 422,
            Error::RateLimited { .. } => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The human sentence of the body (internal causes are logged here,
    /// never shown).
    pub fn message(&self) -> String {
        match self {
            Error::Internal(cause) => {
                log::error!("internal error: {cause:#}");
                "internal server error".to_string()
            }
            Error::Validation { field, reason } => format!("invalid field '{field}': {reason}"),
            other => other.to_string(),
        }
    }

    /// `{"error", "code", "status", "detail"}` plus a conflict's extra keys.
    pub fn body(&self) -> Value {
        let detail = match self {
            Error::Internal(_) => json!("the server failed; the error was logged"),
            Error::Validation { field, reason } => json!({ "field": field, "reason": reason }),
            other => json!(other.to_string()),
        };
        let extra = match self {
            Error::Conflict {
                extra: Some(extra), ..
            } => extra
                .iter()
                .filter(|(k, _)| !["error", "code", "status", "detail"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Map::new(),
        };
        let body = ErrorBody {
            error: self.message(),
            code: self.code(),
            status: self.status(),
            detail,
            extra,
        };
        serde_json::to_value(body).unwrap_or_else(|_| json!({ "error": "internal server error" }))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(anyhow::Error::new(e).context("database error"))
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::Unavailable(format!("database pool: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(anyhow::Error::new(e).context("json encoding"))
    }
}
