//! Responses written while they are produced: a body pulled chunk by chunk from an async source
//! (such as a query's rows as Postgres returns them) only as fast as the client reads it, so a
//! large answer never sits in memory whole.
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http::{HeaderValue, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::Either;
use spin_sdk::http::FullBody;

use crate::Reply;

/// A failure after the head was sent: the body ends with an error instead of its last chunk, so
/// the client sees a broken transfer rather than a complete-looking but truncated answer.
pub type ChunkError = std::io::Error;

/// A body made of the chunks a stream yields.
pub struct StreamedBody(Pin<Box<dyn Stream<Item = Result<Bytes, ChunkError>>>>);

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = ChunkError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ChunkError>>> {
        self.0.as_mut().poll_next(context).map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

/// A reply whose body is either complete (every ordinary answer, errors included) or streamed.
pub type StreamingReply = http::Response<Either<FullBody<Bytes>, StreamedBody>>;

/// An ordinary reply, as a [`StreamingReply`].
pub fn complete(reply: Reply) -> StreamingReply {
    reply.map(Either::Left)
}

/// A `200` whose body is the chunks of `chunks`, of type `content_type`, kept out of shared caches
/// like every API response.
pub fn streamed(
    content_type: &'static str,
    chunks: impl Stream<Item = Result<Bytes, ChunkError>> + 'static,
) -> StreamingReply {
    let mut reply = http::Response::new(Either::Right(StreamedBody(Box::pin(chunks))));
    *reply.status_mut() = StatusCode::OK;
    reply.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    reply
}
