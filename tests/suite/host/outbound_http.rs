//! Outbound HTTP from components, limited to `allowed_outbound_hosts` (here rendered from the
//! `http_origin` variable, so the template expansion is exercised too).

use super::{UPSTREAM_BODY, get_json, own_host, upstream_origin};

fn fetch_through_probe(url: &str) -> serde_json::Value {
    let (status, body) = get_json(&format!("{}/probe/http?url={url}", own_host().base_url()));
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_declared_origin_is_reachable() {
    let body = fetch_through_probe(&format!("{}/anything", upstream_origin()));
    assert_eq!(body["status"], 200, "{body}");
    assert_eq!(body["body"], UPSTREAM_BODY);
}

#[test]
fn an_undeclared_host_is_refused_before_connecting() {
    // Same server, other name: only the declared 127.0.0.1 is allowed.
    let port = upstream_origin().rsplit(':').next().unwrap().to_owned();
    let body = fetch_through_probe(&format!("http://localhost:{port}/anything"));
    let error = body["error"].as_str().expect("an error");
    assert!(error.contains("HttpRequestDenied"), "{error}");
    own_host().wait_for_log("not in allowed_outbound_hosts", std::time::Duration::from_secs(5)).unwrap();

    // An undeclared port of the declared address is refused too, and never dialled: a listener
    // of the test's own on that port has no connection waiting once the answer is back.
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = fetch_through_probe(&format!("http://127.0.0.1:{port}/anything"));
    assert!(body["error"].as_str().is_some_and(|error| error.contains("HttpRequestDenied")), "{body}");
    let dialled = listener.accept();
    assert!(
        matches!(&dialled, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "the host connected to an undeclared address: {dialled:?}"
    );
}

/// A URL whose path holds an `@` and a declared address (`http://localhost:port/x@127.0.0.1:port`)
/// is checked on the host the client dials, `localhost`, and refused; and an `@` in a declared
/// origin's query does not make its request look like one to another host.
#[test]
fn an_at_sign_past_the_authority_neither_smuggles_nor_hides_a_host() {
    let origin = upstream_origin();
    let port = origin.rsplit(':').next().unwrap().to_owned();
    let body = fetch_through_probe(&format!("http://localhost:{port}/x@127.0.0.1:{port}"));
    let error = body["error"].as_str().expect("an error");
    assert!(error.contains("HttpRequestDenied"), "{error}");
    let body = fetch_through_probe(&format!("{origin}/anything?u=a@b"));
    assert_eq!(body["status"], 200, "{body}");
}
