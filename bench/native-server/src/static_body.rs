//! Every request answered with the same bytes: the ceiling for the host's trivial route.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, header};

pub async fn serve(address: &str, body: &str, content_type: &str) -> std::io::Result<()> {
    let body = Bytes::from(body.to_owned());
    let content_type = content_type.to_owned();
    crate::serve_with(address, move |_request| {
        let response = Response::builder()
            .header(header::CONTENT_TYPE, content_type.as_str())
            .body(Full::new(body.clone()))
            .expect("static response");
        async move { response }
    })
    .await
}
