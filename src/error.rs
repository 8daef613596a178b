//! The one error type of the HTTP API.
//!
//! Every handler and every store function returns `ApiError`; it renders as
//! `{"error", "code", "status", "detail"}` with the status the spec asks for.
//! Internal errors log their cause and answer with an opaque message.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// `extra` keys are merged into the top level of the body (the dedup
    /// check's `matches`, the context conflict's `version`).
    #[error("{message}")]
    Conflict {
        message: String,
        extra: Option<Map<String, Value>>,
    },
    #[error("{0}")]
    TooLarge(String),
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        ApiError::Unauthorized(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Forbidden(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::Conflict {
            message: msg.into(),
            extra: None,
        }
    }
    pub fn conflict_with(msg: impl Into<String>, extra: Value) -> Self {
        let extra = match extra {
            Value::Object(map) => Some(map),
            _ => None,
        };
        ApiError::Conflict {
            message: msg.into(),
            extra,
        }
    }
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError::Internal(anyhow::anyhow!(msg.into()))
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::Validation { .. } => "validation_error",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("database error"))
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        ApiError::Unavailable(format!("database pool: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("json encoding"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (message, detail) = match self {
            ApiError::Internal(cause) => {
                log::error!("internal error: {cause:#}");
                (
                    "internal server error".to_string(),
                    json!("the server failed; the error was logged"),
                )
            }
            ApiError::Validation { field, reason } => (
                format!("invalid field '{field}': {reason}"),
                json!({ "field": field, "reason": reason }),
            ),
            other => (other.to_string(), json!(other.to_string())),
        };
        let mut body = json!({
            "error": message,
            "code": self.code(),
            "status": status.as_u16(),
            "detail": detail,
        });
        if let (
            ApiError::Conflict {
                extra: Some(extra), ..
            },
            Value::Object(map),
        ) = (self, &mut body)
        {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
        let mut resp = HttpResponse::build(status);
        if let ApiError::RateLimited { retry_after } = self {
            resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        resp.json(body)
    }
}
