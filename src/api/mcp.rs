//! `POST /mcp` (also `/api/mcp`, `/v1/mcp`): the Model Context Protocol's
//! Streamable HTTP transport (SPEC §11). Authentication is the API's; a
//! foreign `Origin` was refused (403) before this runs (`api::csrf`).
//! Every answer is a single JSON body (the transport allows it instead of
//! a stream); notifications get 202. There is no server-initiated stream
//! and no session, so GET and DELETE answer 405 (the route table has no
//! such route).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::{RawBody, State};
use crate::domain::access::Caller;
use crate::error::Result;
use crate::mcp::{Headers, JsonRpcError, Reply};

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

#[utoipa::path(
    post,
    path = "/mcp",
    tag = "mcp",
    request_body(content = Object, content_type = "application/json", description = "A JSON-RPC 2.0 message (Model Context Protocol, Streamable HTTP)"),
    responses(
        (status = 200, description = "A JSON-RPC response (an array for a 2025-03-26 batch)", body = Value),
        (status = 202, description = "A notification, accepted"),
        (status = 400, description = "A JSON-RPC error: a malformed message, a header that contradicts the body (-32020), an unsupported version (-32022)", body = JsonRpcError)
    )
)]
pub async fn post(
    state: State,
    req: HttpRequest,
    caller: Caller,
    body: RawBody,
) -> Result<HttpResponse> {
    let headers = Headers {
        protocol_version: header(&req, "mcp-protocol-version"),
        method: header(&req, "mcp-method"),
        name: header(&req, "mcp-name"),
    };
    Ok(match state.mcp.handle(&caller, &body.0, &headers).await {
        Reply::Accepted => HttpResponse::Accepted().finish(),
        Reply::Message { status, body } => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                .content_type("application/json")
                .body(body)
        }
    })
}
