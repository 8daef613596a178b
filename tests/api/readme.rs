//! The README's curl quick start runs verbatim against a real server.

use std::process::Command;

use crate::helpers::TestServer;
use serde_json::Value;

#[test]
fn the_readme_quick_start_works_verbatim_and_records_the_three_hops() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- quickstart -->")
        .expect("quickstart marker");
    let end = readme.find("<!-- /quickstart -->").expect("end marker");
    let block = &readme[start..end];
    let script = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    let server = TestServer::start();
    // Only the address differs from what a reader runs.
    let script = script.replace("http://localhost:18890", &server.base);

    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("DELEGA_TOKEN", &server.token)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let chain: Value =
        serde_json::from_slice(&out.stdout).expect("the last command prints the chain");
    let hops: Vec<(String, String)> = chain["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap().into(),
                h["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("orchestrator", "research-agent"),
        ("research-agent", "data-agent"),
        ("data-agent", "research-agent"),
    ];
    assert_eq!(
        hops,
        expected.map(|(a, b)| (a.to_string(), b.to_string())),
        "{chain}"
    );
    assert_eq!(chain["root"]["status"], "completed");
    assert_eq!(chain["root"]["context"]["summary"], "Pricing drove churn");
    assert_eq!(chain["root"]["context"]["top_driver"], "pricing");
}
