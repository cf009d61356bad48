//! Outbound HTTP (`wasi:http` client) for components, limited to `allowed_outbound_hosts`.
//!
//! Plain HTTP only: the app calls Pushpin's publish endpoint on loopback. An `https` URL gets an
//! error naming the limitation rather than an unverified connection.

use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi::TrappableError;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p3::{RequestOptions, WasiHttpHooks};

use crate::logging;
use crate::metrics::{self, ServerLabels};
use crate::network_policy::AllowedHosts;

type OutboundBody = UnsyncBoxBody<Bytes, ErrorCode>;
type GuestRequest = http::Request<OutboundBody>;
type GuestResponse = http::Response<OutboundBody>;
type IoOutcome = Box<dyn Future<Output = Result<(), ErrorCode>> + Send>;
type SendResult = Result<(GuestResponse, IoOutcome), TrappableError<ErrorCode>>;

/// Idle keep-alive connections are closed after this long.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle keep-alive connections kept per origin.
const MAX_IDLE_CONNECTIONS_PER_HOST: usize = 64;

/// One connection-pooling client for the whole process.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, OutboundBody>,
}

impl Default for HttpClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        // Nagle's algorithm would hold back the small request writes for ~40 ms.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS_PER_HOST)
            .build(connector);
        Self { client }
    }
}

/// The `wasi:http` hooks of one instance: its component's network policy and the shared client.
pub struct OutboundHttp {
    component_id: String,
    allowed_hosts: AllowedHosts,
    client: HttpClient,
}

impl OutboundHttp {
    pub fn new(component_id: &str, allowed_hosts: &AllowedHosts, client: &HttpClient) -> Self {
        Self { component_id: component_id.to_owned(), allowed_hosts: allowed_hosts.clone(), client: client.clone() }
    }

    /// Refuses a request the component may not make, with the reason in the host log.
    fn check(&self, request: &GuestRequest) -> Result<(), ErrorCode> {
        let uri = request.uri();
        if uri.scheme() == Some(&Scheme::HTTPS) {
            logging::warn(format_args!(
                "component {:?}: outbound HTTPS to {uri} is not supported by this local host",
                self.component_id
            ));
            return Err(ErrorCode::TlsProtocolError);
        }
        // The URI's own host and port: what the client will dial.
        let allowed = uri
            .host()
            .is_some_and(|host| self.allowed_hosts.allows(uri.scheme_str().unwrap_or("http"), host, uri.port_u16()));
        if !allowed {
            logging::warn(format_args!(
                "component {:?}: outbound request to {uri} refused: not in allowed_outbound_hosts",
                self.component_id
            ));
            return Err(ErrorCode::HttpRequestDenied);
        }
        Ok(())
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: GuestRequest,
        options: Option<RequestOptions>,
        _response_outcome: Box<dyn Future<Output = Result<(), ErrorCode>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let checked = self.check(&request);
        let client = self.client.client.clone();
        let server = request.uri().authority().map_or_else(|| "-".to_owned(), ToString::to_string);
        Box::new(async move {
            let result = send(client, request, options, checked).await;
            if result.is_err() {
                metrics::get().outbound_http_errors.get_or_create(&ServerLabels { server }).inc();
            }
            result
        })
    }
}

async fn send(
    client: Client<HttpConnector, OutboundBody>,
    request: GuestRequest,
    options: Option<RequestOptions>,
    checked: Result<(), ErrorCode>,
) -> SendResult {
    checked?;
    let first_byte_timeout = options.and_then(|options| options.first_byte_timeout);
    let response = match first_byte_timeout {
        Some(timeout) => tokio::time::timeout(timeout, client.request(request))
            .await
            .map_err(|_| ErrorCode::ConnectionReadTimeout)?,
        None => client.request(request).await,
    };
    let response = response.map_err(|error| {
        logging::warn(format_args!("outbound HTTP request failed: {error:?}"));
        if error.is_connect() { ErrorCode::ConnectionRefused } else { ErrorCode::HttpProtocolError }
    })?;
    let response =
        response.map(|body| body.map_err(|error| ErrorCode::InternalError(Some(error.to_string()))).boxed_unsync());
    let io_outcome: IoOutcome = Box::new(async { Ok(()) });
    Ok((response, io_outcome))
}
