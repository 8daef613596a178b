//! [`Error`] as an HTTP answer: its status, `Retry-After` when rate
//! limited, and the JSON body of SPEC §2.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError};

use crate::error::Error;

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Error::RateLimited { retry_after } = self {
            resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        resp.json(self.body())
    }
}

/// Lets a handler answer with an [`Error`] directly.
impl Responder for Error {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}
