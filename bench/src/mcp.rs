//! `mcp`: the built-in MCP against REST, the same operation in the same
//! run (issue 11): `tools/call get_task` against `GET /api/tasks/{id}`,
//! `tools/call create_task` against `POST /api/tasks`, and the latency of
//! `tools/list`. Requests use the handshake era's default revision (no
//! routing headers needed); the dispatch is the same for both eras.

use anyhow::{bail, Result};
use rand::Rng;

use super::queue::sample;
use super::{
    create_agent, create_task, duration_of, parallel, run_raw, run_raw_load, summarize, Args,
    Client, Load, RawRequest, Report, SEED_TASKS,
};

/// One `tools/call` body.
fn tool_call(n: u64, tool: &str, arguments: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
    )
}

/// `tools/call` in a loop, each answer checked to be a successful result.
fn tool_load(base: &str, key: &str, args: &Args, make: impl Fn(u64) -> String) -> Result<Load> {
    run_raw(
        base,
        args.connections,
        1,
        duration_of(args),
        async |c, n| {
            let body = make(n);
            let status = c[0].send("POST", "/mcp", key, Some(&body)).await?;
            c[0].expect(status, 200, "POST", "/mcp")?;
            let answer = c[0].body();
            let ok = br#""isError":false"#;
            if !answer.windows(ok.len()).any(|w| w == ok) {
                bail!("tool call failed: {}", String::from_utf8_lossy(answer));
            }
            Ok(())
        },
    )
}

pub fn bench_mcp(admin: &Client, args: &Args, report: &mut Report) -> Result<()> {
    let (_, key) = create_agent(admin, "bench-mcp")?;
    let client = admin.with_key(&key);
    let ids = parallel(&client, args.connections, SEED_TASKS, |c, i| {
        create_task(c, &format!("mcp task {i}"))?.id()
    })?;
    let pick = || ids[rand::thread_rng().gen_range(0..ids.len())];
    let rest_get = run_raw_load(
        &client.base,
        &key,
        args.connections,
        duration_of(args),
        200,
        |_| RawRequest {
            method: "GET",
            path: format!("/api/tasks/{}", pick()),
            body: None,
        },
    )?;
    report.add("REST GET /api/tasks/{id}", &rest_get);
    let mcp_get = tool_load(&client.base, &key, args, |n| {
        tool_call(n, "get_task", &format!(r#"{{"task_id":{}}}"#, pick()))
    })?;
    report.add("MCP tools/call get_task", &mcp_get);
    let rest_create = run_raw_load(
        &client.base,
        &key,
        args.connections,
        duration_of(args),
        201,
        |n| RawRequest {
            method: "POST",
            path: "/api/tasks".into(),
            body: Some(format!(r#"{{"content":"rest {n}","priority":2}}"#)),
        },
    )?;
    report.add("REST POST /api/tasks", &rest_create);
    let mcp_create = tool_load(&client.base, &key, args, |n| {
        tool_call(
            n,
            "create_task",
            &format!(r#"{{"content":"mcp {n}","priority":2}}"#),
        )
    })?;
    report.add("MCP tools/call create_task", &mcp_create);
    let addr = client.base.trim_start_matches("http://").to_string();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    sample(
        &addr,
        &key,
        20,
        |_| ("POST", "/mcp".into(), Some(list.into())),
        200,
    )?;
    let listed = sample(
        &addr,
        &key,
        1000,
        |_| ("POST", "/mcp".into(), Some(list.into())),
        200,
    )?;
    report.add("MCP tools/list (1 connection)", &listed);
    let ratio = |m: &Load, r: &Load| 100.0 * m.rate() / r.rate().max(f64::MIN_POSITIVE);
    report.notes.push(format!(
        "mcp: get_task at {:.0} % of REST GET, create_task at {:.0} % of REST POST; tools/list p99 {} ms",
        ratio(&mcp_get, &rest_get),
        ratio(&mcp_create, &rest_create),
        super::ms(summarize(listed.latencies_us.clone()).p99)
    ));
    Ok(())
}
