//! Spin's routing rules and request headers.

use serde_json::Value;

use super::{get_json, shared_app};

fn headers_for(path: &str) -> Value {
    let (status, body) = get_json(&shared_app().url(path));
    assert_eq!(status, 200, "{path}: {body}");
    body["headers"].clone()
}

#[test]
fn the_most_specific_route_wins() {
    let cases = [
        ("/routes/exact", "/routes/exact"),
        ("/routes/exactly", "/routes/..."),
        ("/routes/users/7/posts/9", "/routes/users/:user_id/posts/:post_id"),
        ("/routes/users/7/posts/9/comments", "/routes/users/:user_id/..."),
        ("/routes/users/special/anything", "/routes/users/special/..."),
        ("/routes/users/7", "/routes/users/:user_id/..."),
        ("/routes", "/routes/..."),
    ];
    for (path, expected_route) in cases {
        assert_eq!(headers_for(path)["spin-raw-component-route"], expected_route, "{path}");
    }
}

#[test]
fn wildcard_route_headers_describe_the_match() {
    let base_url = shared_app().base_url();
    let headers = headers_for("/routes/a/b/?q=1");
    assert_eq!(headers["spin-full-url"], format!("{base_url}/routes/a/b/?q=1"));
    assert_eq!(headers["spin-path-info"], "/a/b/");
    assert_eq!(headers["spin-matched-route"], "/routes/...");
    assert_eq!(headers["spin-component-route"], "/routes");
    assert_eq!(headers["spin-raw-component-route"], "/routes/...");
    assert_eq!(headers["spin-base-path"], "/");
    let client = headers["spin-client-addr"].as_str().expect("client address");
    assert!(client.starts_with("127.0.0.1:"), "{client}");
}

#[test]
fn named_segments_become_path_match_headers() {
    let headers = headers_for("/routes/users/alice/posts/42");
    assert_eq!(headers["spin-path-match-user-id"], "alice");
    assert_eq!(headers["spin-path-match-post-id"], "42");
    assert_eq!(headers["spin-path-info"], "");
    assert_eq!(headers["spin-matched-route"], "/routes/users/:user_id/posts/:post_id");
}

#[test]
fn unmatched_paths_get_a_json_404() {
    let (status, body) = get_json(&shared_app().url("/no/such/route"));
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[test]
fn the_well_known_health_route_answers() {
    let mut response = sendinchat_tests::processes::http_client(super::REQUEST_TIMEOUT)
        .get(&shared_app().url("/.well-known/spin/health"))
        .call()
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.body_mut().read_to_string().expect("body"), "OK");
}
