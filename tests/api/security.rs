//! No web page can drive a server it reaches (SPEC §2): cross-site
//! state-changing requests are refused, bodies must be JSON, and an
//! unauthenticated request learns nothing about valid bodies.

use serde_json::{json, Value};

use crate::helpers::{Auth, TestServer};

const EVIL: &str = "https://evil.example";

/// A browser's "simple" request: no preflight, `text/plain` body.
fn simple_post(
    server: &TestServer,
    auth: Auth,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> crate::helpers::Resp {
    let mut all = vec![("Content-Type", "text/plain;charset=UTF-8")];
    all.extend_from_slice(headers);
    server
        .client(auth)
        .raw("POST", path, Some(body.to_string().as_bytes()), &all)
}

#[test]
fn in_open_mode_a_cross_site_page_can_neither_register_a_hook_nor_mint_an_admin() {
    let server = TestServer::start_with(&[("DELEGA_REQUIRE_AUTH", "false")]);
    // First an agent exists, so open mode is what protects the server.
    server.create_agent(json!({"name": "someone"}));
    let hook = json!({"url": "https://evil.example/collect", "events": ["*"]});
    for headers in [
        vec![("Origin", EVIL)],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Origin", "null")],
        vec![("Origin", EVIL), ("Sec-Fetch-Site", "cross-site")],
    ] {
        let r = simple_post(&server, Auth::None, "/api/webhooks", hook.clone(), &headers);
        r.assert_error(403);
        assert_eq!(
            r.body["code"], "cross_site_request",
            "{headers:?}: {}",
            r.text
        );
        let r = simple_post(
            &server,
            Auth::None,
            "/api/agents",
            json!({"name": "pwned", "role": "admin"}),
            &headers,
        );
        r.assert_error(403);
        // Even as JSON, even with every method that changes something.
        for method in ["PUT", "PATCH", "DELETE"] {
            let r = server
                .anonymous()
                .raw(method, "/api/agents/someone", Some(b"{}"), &headers);
            r.assert_error(403);
        }
    }
    assert_eq!(
        server.admin().get("/api/webhooks").body,
        json!([]),
        "nothing stored"
    );
    let names: Vec<Value> = server
        .admin()
        .get("/api/agents")
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("someone")], "no agent minted");
    // A text/plain body without browser headers (curl) is refused too: 415.
    let r = simple_post(&server, Auth::None, "/api/webhooks", hook.clone(), &[]);
    r.assert_error(415);
    // Reads are not state changes: a cross-site GET is answered.
    let r = server.anonymous().raw(
        "GET",
        "/api/tasks",
        None,
        &[("Origin", EVIL), ("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn the_first_agent_bootstrap_refuses_a_cross_site_page() {
    let server = TestServer::start();
    let r = server.anonymous().raw(
        "POST",
        "/api/agents",
        Some(br#"{"name": "page-admin"}"#),
        &[("Origin", EVIL)],
    );
    r.assert_error(403);
    let r = server.anonymous().raw(
        "POST",
        "/api/agents",
        Some(br#"{"name": "page-admin"}"#),
        &[("Sec-Fetch-Site", "cross-site")],
    );
    r.assert_error(403);
    assert_eq!(server.admin().get("/api/agents").body, json!([]));
    // The operator's own terminal still can.
    let r = server
        .anonymous()
        .post("/api/agents", json!({"name": "first"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], "admin");
}

#[test]
fn the_servers_own_origin_and_configured_origins_are_allowed() {
    let server = TestServer::start_with(&[("DELEGA_CORS_ORIGINS", "https://dashboard.example")]);
    let own = format!("http://127.0.0.1:{}", server.port);
    for (origin, site) in [
        (own.as_str(), "same-origin"),
        ("https://dashboard.example", "cross-site"),
    ] {
        let r = server.admin().raw(
            "POST",
            "/api/tasks",
            Some(br#"{"content": "from a page the operator allows"}"#),
            &[("Origin", origin), ("Sec-Fetch-Site", site)],
        );
        assert_eq!(r.status, 201, "{origin}: {}", r.text);
    }
    let r = server.admin().raw(
        "POST",
        "/api/tasks",
        Some(br#"{"content": "x"}"#),
        &[("Origin", "https://dashboard.example.evil")],
    );
    r.assert_error(403);
}

#[test]
fn request_bodies_must_be_json() {
    let server = TestServer::start();
    let admin = server.admin();
    let body = br#"{"content": "typed"}"#;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ] {
        let r = admin.raw("POST", "/api/tasks", Some(body), &[("Content-Type", ct)]);
        r.assert_error(415);
        assert!(
            r.body["error"].as_str().unwrap().contains("JSON"),
            "{}",
            r.text
        );
    }
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ] {
        let r = admin.raw("POST", "/api/tasks", Some(body), &[("Content-Type", ct)]);
        assert_eq!(r.status, 201, "{ct}: {}", r.text);
    }
    // A body-less POST needs no type (the SDK's complete(), claim()).
    let id = crate::helpers::id_of(&admin.create_task(json!({"content": "done soon"})));
    let r = admin.raw(
        "POST",
        &format!("/api/tasks/{id}/complete"),
        None,
        &[("Content-Type", "")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        server.all_task_ids().len(),
        5,
        "only the JSON creates stored"
    );
}

#[test]
fn an_unauthenticated_request_is_refused_before_its_body_is_judged() {
    let server = TestServer::start();
    server.create_agent(json!({"name": "exists"}));
    let anon = server.anonymous();
    for body in [&b"{}"[..], b"{not json", br#"{"name": 7}"#] {
        let r = anon.raw("POST", "/api/agents", Some(body), &[]);
        r.assert_error(401);
    }
    let r = anon.raw("POST", "/api/tasks", Some(b"{}"), &[]);
    r.assert_error(401);
    let r = anon.raw("POST", "/api/webhooks", Some(b"{}"), &[]);
    r.assert_error(401);
}

#[test]
fn repeated_label_filters_are_capped_with_a_422() {
    let server = TestServer::start();
    let (w, _) = server.agent("w", "worker");
    let many: Vec<String> = (0..1000).map(|i| format!("l{i}")).collect();
    let q = many
        .iter()
        .map(|l| format!("labels={l}"))
        .collect::<Vec<_>>()
        .join("&");
    let r = w.get(&format!("/api/tasks?{q}"));
    r.assert_error(422);
    assert_eq!(r.body["detail"]["field"], "labels");
    let r = w.get(&format!("/api/tasks?labels={}", many.join(",")));
    r.assert_error(422);
    let r = w.post("/api/tasks/claim", json!({"labels": many}));
    r.assert_error(422);
    assert_eq!(r.body["detail"]["field"], "labels");
    // Fifty is fine.
    let r = w.get(&format!("/api/tasks?labels={}", many[..50].join(",")));
    assert_eq!(r.status, 200, "{}", r.text);
}
