//! `/projects`: every agent reads them, admins write them.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, ok, page_response, path_id, query, Json, State};
use crate::domain::access::Caller;
use crate::domain::input::{self, check_len, check_non_blank, double_option, Page};
use crate::error::{Error, Result};
use crate::store::projects::{self, ProjectFields};

#[derive(Deserialize)]
struct ProjectInput {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    emoji: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    color: Option<Option<String>>,
    sort_order: Option<i64>,
}

fn parse(body: Value) -> Result<ProjectFields> {
    let p: ProjectInput = input::object(body)?;
    if let Some(n) = &p.name {
        check_non_blank("name", n, 200)?;
    }
    if let Some(Some(e)) = &p.emoji {
        check_len("emoji", e, 32)?;
    }
    if let Some(Some(c)) = &p.color {
        check_len("color", c, 32)?;
    }
    Ok(ProjectFields {
        name: p.name,
        emoji: p.emoji,
        color: p.color,
        sort_order: p.sort_order,
    })
}

fn require_admin(caller: &Caller) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only admins create, change or delete projects",
        ))
    }
}

async fn list(state: State, req: HttpRequest, _caller: Caller) -> Result<HttpResponse> {
    let q = query(&req);
    let page = Page::from_query(&q)?;
    let list = state
        .store
        .read(move |conn| projects::list(conn, page.limit + 1, page.offset))
        .await?;
    page_response(&req, &q, page, list)
}

async fn create(state: State, caller: Caller, Json(body): Json) -> Result<HttpResponse> {
    require_admin(&caller)?;
    let fields = parse(body)?;
    if fields.name.is_none() {
        return Err(Error::validation("name", "is required"));
    }
    let project = state
        .store
        .write(move |tx| projects::insert(tx, fields))
        .await?;
    created(&project)
}

async fn get(state: State, path: web::Path<String>, _caller: Caller) -> Result<HttpResponse> {
    let id = path_id("project", &path)?;
    let project = state
        .store
        .read(move |conn| projects::get(conn, id))
        .await?;
    ok(&project)
}

async fn update(
    state: State,
    path: web::Path<String>,
    caller: Caller,
    Json(body): Json,
) -> Result<HttpResponse> {
    require_admin(&caller)?;
    let id = path_id("project", &path)?;
    let fields = parse(body)?;
    let project = state
        .store
        .write(move |tx| projects::update(tx, id, fields))
        .await?;
    ok(&project)
}

async fn delete(state: State, path: web::Path<String>, caller: Caller) -> Result<HttpResponse> {
    require_admin(&caller)?;
    let id = path_id("project", &path)?;
    state
        .store
        .write(move |tx| projects::delete(tx, id))
        .await?;
    ok(&json!({ "deleted": true, "id": id }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/projects")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/projects/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}
