//! `GET /openapi.json`: the OpenAPI 3.1 document of the `/api` surface,
//! generated from the code (SPEC §11). It must list every route of
//! `delega::api::endpoints()` — a route added without its
//! `#[utoipa::path]` fails here — and be served without credentials.

use serde_json::Value;

use crate::helpers::TestServer;

/// The document as an anonymous client reads it at `path`.
fn fetch(server: &TestServer, path: &str) -> Value {
    let r = server.anonymous().get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "GET {path} content type: {:?}",
        r.header("content-type")
    );
    r.body
}

/// Follows a local `$ref` (`#/components/schemas/Task`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            let target = doc.pointer(pointer);
            resolve(doc, target.unwrap_or_else(|| panic!("dangling $ref {r}")))
        }
        None => v,
    }
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the document");
    op
}

/// The schema of an operation's request body, resolved.
fn request_schema<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let body = resolve(doc, &operation(doc, method, path)["requestBody"]);
    resolve(doc, &body["content"]["application/json"]["schema"])
}

/// The schema of an operation's answer with `status`, resolved.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    let resp = resolve(doc, &operation(doc, method, path)["responses"][status]);
    resolve(doc, &resp["content"]["application/json"]["schema"])
}

/// Every property an object schema declares, through `allOf`.
fn properties(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut out: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(properties(doc, part));
    }
    out
}

#[test]
fn every_route_of_the_router_is_in_the_document() {
    let server = TestServer::start();
    let doc = fetch(&server, "/api/openapi.json");
    let paths = doc["paths"].as_object().expect("paths");

    let mut missing = Vec::new();
    for e in delega::api::endpoints() {
        let path = format!("/api{}", e.path);
        let method = e.method.as_str().to_ascii_lowercase();
        if !paths
            .get(&path)
            .is_some_and(|item| item[&method].is_object())
        {
            missing.push(format!("{} {path}", e.method));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without #[utoipa::path] in src/api/openapi.rs: {missing:?}"
    );

    // And nothing the router does not answer.
    let routes: Vec<(String, String)> = delega::api::endpoints()
        .iter()
        .map(|e| {
            (
                e.method.as_str().to_ascii_lowercase(),
                format!("/api{}", e.path),
            )
        })
        .collect();
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item[method].is_object() {
                assert!(
                    routes.contains(&(method.to_string(), path.clone())),
                    "the document lists {method} {path}, which the router does not answer"
                );
            }
        }
    }
}

#[test]
fn the_document_is_openapi_3_1_and_served_without_credentials_everywhere() {
    let server = TestServer::start();
    let doc = fetch(&server, "/openapi.json");
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "openapi {version}");
    assert_eq!(fetch(&server, "/api/openapi.json"), doc);
    assert_eq!(fetch(&server, "/v1/openapi.json"), doc);
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    // Operation ids are unique.
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("path item").values() {
            if let Some(id) = op["operationId"].as_str() {
                assert!(!ids.contains(&id), "operationId {id} twice");
                ids.push(id);
            }
        }
    }
}

#[test]
fn both_credentials_are_security_schemes_and_health_needs_none() {
    let server = TestServer::start();
    let doc = fetch(&server, "/openapi.json");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["agent_key"]["type"], "apiKey");
    assert_eq!(schemes["agent_key"]["in"], "header");
    assert_eq!(schemes["agent_key"]["name"], "X-Agent-Key");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let global = doc["security"].to_string();
    assert!(global.contains("agent_key") && global.contains("bearer"));
    assert_eq!(
        operation(&doc, "get", "/api/health")["security"],
        serde_json::json!([{}])
    );
}

#[test]
fn key_operations_have_request_and_response_schemas() {
    let server = TestServer::start();
    let doc = fetch(&server, "/openapi.json");

    let create = request_schema(&doc, "post", "/api/tasks");
    for field in [
        "content",
        "priority",
        "labels",
        "assigned_to_agent_id",
        "depends_on",
    ] {
        assert!(
            properties(&doc, create).contains(&field.to_string()),
            "POST /api/tasks body lacks {field}"
        );
    }
    let task = response_schema(&doc, "post", "/api/tasks", "201");
    let fields = properties(&doc, task);
    for field in [
        "id",
        "content",
        "status",
        "context",
        "metadata",
        "root_task_id",
        "delegation_depth",
        "claim_generation",
        "assigned_to_agent",
        "labels",
    ] {
        assert!(fields.contains(&field.to_string()), "Task lacks {field}");
    }

    let complete = request_schema(&doc, "post", "/api/tasks/{id}/complete");
    assert!(properties(&doc, complete).contains(&"evidence".to_string()));
    let agent = response_schema(&doc, "post", "/api/agents", "201");
    assert!(properties(&doc, agent).contains(&"api_key".to_string()));
    let claimed = response_schema(&doc, "post", "/api/tasks/claim", "200");
    assert!(properties(&doc, claimed).contains(&"task".to_string()));
    let chain = response_schema(&doc, "get", "/api/tasks/{id}/chain", "200");
    for field in ["root_id", "tasks", "events", "chain"] {
        assert!(properties(&doc, chain).contains(&field.to_string()));
    }

    // Errors: every operation answers the error body by default.
    let error = resolve(&doc, &doc["components"]["schemas"]["Error"]);
    let error_fields = properties(&doc, error);
    for field in ["error", "code", "status", "detail"] {
        assert!(
            error_fields.contains(&field.to_string()),
            "Error lacks {field}"
        );
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let default = resolve(&doc, &op["responses"]["default"]);
            assert_eq!(
                resolve(&doc, &default["content"]["application/json"]["schema"]),
                error,
                "{method} {path} has no default error response"
            );
        }
    }

    // Path parameters match the path's placeholders.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let placeholders: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().expect("path item") {
            let mut declared: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            declared.sort();
            let mut expected = placeholders.clone();
            expected.sort();
            assert_eq!(declared, expected, "{method} {path}: path parameters");
        }
    }
}
