//! Native baselines for the benchmarks, each answering like a route of the app as cheaply as a
//! hyper server can:
//!
//! - `native-server static ADDRESS BODY CONTENT_TYPE`: every request gets `BODY` (bench/host.sh).
//! - `native-server users-me ADDRESS DATABASE_URL JWT_SECRET JWT_ISSUER`: `GET /users/me` as the
//!   app answers it: an HS256 bearer token checked (signature, expiry, issuer), then the user read
//!   with a prepared statement on a pool of tokio-postgres connections (bench/users-me.sh).

mod static_body;
mod users_me;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["static", address, body, content_type] => static_body::serve(address, body, content_type).await?,
        ["users-me", address, database_url, secret, issuer] => {
            users_me::serve(address, database_url, secret, issuer).await?
        }
        _ => {
            eprintln!(
                "usage: native-server static ADDRESS BODY CONTENT_TYPE\n       \
                 native-server users-me ADDRESS DATABASE_URL JWT_SECRET JWT_ISSUER"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}

/// Binds `address`, prints the URL (port 0 picks one) and serves every connection with `service`.
pub async fn serve_with<S, F>(address: &str, service: S) -> std::io::Result<()>
where
    S: Fn(hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = hyper::Response<http_body_util::Full<hyper::body::Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        // The same socket setting as the host, so the comparison is like for like.
        stream.set_nodelay(true)?;
        let service = service.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = service(request);
                async move { Ok::<_, std::convert::Infallible>(response.await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}
