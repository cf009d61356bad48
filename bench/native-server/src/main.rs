//! `native-server ADDRESS BODY CONTENT_TYPE`: answers every request with `BODY`, as cheaply as a
//! hyper server can, so the host's figures have a ceiling to be compared with.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let usage = "usage: native-server ADDRESS BODY CONTENT_TYPE";
    let address = arguments.next().expect(usage);
    let body = Bytes::from(arguments.next().expect(usage));
    let content_type = arguments.next().expect(usage);
    let listener = TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        // The same socket setting as the host, so the comparison is like for like.
        stream.set_nodelay(true)?;
        let (body, content_type) = (body.clone(), content_type.clone());
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let response = Response::builder()
                    .header(header::CONTENT_TYPE, content_type.as_str())
                    .body(Full::new(body.clone()))
                    .expect("static response");
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
