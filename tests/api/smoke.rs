use crate::helpers::TestServer;
use serde_json::json;

#[test]
fn health_answers_without_credentials_under_every_prefix() {
    let server = TestServer::start();
    for path in ["/health", "/api/health", "/v1/health"] {
        let r = server.anonymous().get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body["ok"], json!(true));
        assert_eq!(r.body["service"], json!("delega"));
    }
    assert!(server.token.starts_with("dlp_") && server.token.len() == 47);
}
