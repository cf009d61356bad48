//! `spin:postgres/postgres@4.2.0`: connections, queries and statements for components.
//!
//! Errors reach the guest as Spin builds them: a database error carries its SQLSTATE in
//! `query-failed(db-error{code, ...})`, parameter and value problems are reported in the same
//! variant Spin uses for each call.

// The WIT `error` (with its `db-error` record) is what every function here returns to the
// guest; boxing it inside the host would only add conversions at each boundary.
#![allow(clippy::result_large_err)]

mod convert;
pub mod pool;
mod pool_metrics;
pub mod resources;
mod session;
mod statement_cache;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use wasmtime::StoreContextMut;
use wasmtime::component::{
    Accessor, Destination, FutureReader, HasData, Resource, StreamProducer, StreamReader, StreamResult,
};

use pool::PooledConnection;
use resources::{PostgresConnection, PostgresConnectionBuilder};

use crate::bindings::postgres_wit::{self as wit, Column, DbError, Error, ParameterValue, QueryError, Row, RowSet};
use crate::host_state::InstanceState;

/// Largest query result the host buffers for a guest, as in Spin (128 MiB).
const MAX_BUFFERED_RESULT_BYTES: usize = 128 << 20;

/// Rows of a `query-async` result the host reads at once (those already arrived), before the
/// guest asks for them. A longer result is read by a task that keeps a queue of this many rows
/// (and one more) ahead.
const ROWS_READ_AHEAD: usize = 4;

/// Marker type through which the linker reaches the Postgres state of an instance.
pub struct Postgres;

impl HasData for Postgres {
    type Data<'a> = &'a mut InstanceState;
}

impl wit::Host for InstanceState {}

impl wit::HostConnection for InstanceState {
    async fn open(&mut self, address: String) -> Result<Resource<PostgresConnection>, Error> {
        let pool = self.postgres_pool(&address)?;
        let connection = pool.checkout(&self.component().id).await.map_err(connection_failed)?;
        self.push_connection(connection)
    }

    async fn query(
        &mut self,
        connection: Resource<PostgresConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, Error> {
        let connection = self.connection(&connection)?;
        query_all(&connection, &statement, &params).await
    }

    async fn execute(
        &mut self,
        connection: Resource<PostgresConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<u64, Error> {
        let connection = self.connection(&connection)?;
        execute(&connection, &statement, &params).await
    }

    async fn drop(&mut self, connection: Resource<PostgresConnection>) -> wasmtime::Result<()> {
        self.table().delete(connection)?;
        Ok(())
    }
}

impl wit::HostConnectionBuilder for InstanceState {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<PostgresConnectionBuilder>> {
        Ok(self.table().push(PostgresConnectionBuilder { address })?)
    }

    async fn set_ca_root(&mut self, _: Resource<PostgresConnectionBuilder>, _certificate: String) -> Result<(), Error> {
        Err(Error::Other(
            "custom CA certificates need TLS to Postgres, which this local host does not support".to_owned(),
        ))
    }

    async fn build(
        &mut self,
        builder: Resource<PostgresConnectionBuilder>,
    ) -> Result<Resource<PostgresConnection>, Error> {
        let address = self.builder_address(&builder)?;
        wit::HostConnection::open(self, address).await
    }

    async fn drop(&mut self, builder: Resource<PostgresConnectionBuilder>) -> wasmtime::Result<()> {
        self.table().delete(builder)?;
        Ok(())
    }
}

impl wit::HostConnectionWithStore<InstanceState> for Postgres {
    async fn open_async(
        accessor: &Accessor<InstanceState, Self>,
        address: String,
    ) -> Result<Resource<PostgresConnection>, Error> {
        open_with_accessor(accessor, address).await
    }

    async fn query_async(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<PostgresConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<(Vec<Column>, StreamReader<Row>, FutureReader<Result<(), Error>>), Error> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        let QueryStream { columns, rows, outcome } = start_streaming_query(connection, statement, params).await?;
        accessor
            .with(|mut access| {
                let rows = StreamReader::new(&mut access, rows)?;
                let outcome = FutureReader::new(&mut access, async move {
                    let outcome = outcome.await.unwrap_or_else(|_| {
                        Err(Error::Other("the query's row reader stopped unexpectedly".to_owned()))
                    });
                    wasmtime::error::Ok(outcome)
                })?;
                wasmtime::error::Ok((columns, rows, outcome))
            })
            .map_err(|error| Error::Other(format!("host could not create the row stream: {error}")))
    }

    async fn execute_async(
        accessor: &Accessor<InstanceState, Self>,
        connection: Resource<PostgresConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<u64, Error> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        execute(&connection, &statement, &params).await
    }
}

impl wit::HostConnectionBuilderWithStore<InstanceState> for Postgres {
    async fn build_async(
        accessor: &Accessor<InstanceState, Self>,
        builder: Resource<PostgresConnectionBuilder>,
    ) -> Result<Resource<PostgresConnection>, Error> {
        let address = accessor.with(|mut access| access.get().builder_address(&builder))?;
        open_with_accessor(accessor, address).await
    }
}

async fn open_with_accessor(
    accessor: &Accessor<InstanceState, Postgres>,
    address: String,
) -> Result<Resource<PostgresConnection>, Error> {
    let (pool, component_id) = accessor.with(|mut access| {
        let state = access.get();
        Ok::<_, Error>((state.postgres_pool(&address)?, state.component().id.clone()))
    })?;
    let connection = pool.checkout(&component_id).await.map_err(connection_failed)?;
    accessor.with(|mut access| access.get().push_connection(connection))
}

impl InstanceState {
    /// The pool for `address`, after checking the component may reach every host it names.
    fn postgres_pool(&mut self, address: &str) -> Result<Arc<pool::Pool>, Error> {
        ensure_address_allowed(self, address)?;
        self.cached_postgres_pool(address).map_err(connection_failed)
    }

    fn push_connection(&mut self, connection: PooledConnection) -> Result<Resource<PostgresConnection>, Error> {
        let connection = PostgresConnection { connection: Arc::new(connection) };
        self.table().push(connection).map_err(|_| Error::ConnectionFailed("too many connections".to_owned()))
    }

    fn connection(&mut self, connection: &Resource<PostgresConnection>) -> Result<Arc<PooledConnection>, Error> {
        self.table()
            .get(connection)
            .map(|connection| connection.connection.clone())
            .map_err(|_| Error::ConnectionFailed("no connection found".to_owned()))
    }

    fn builder_address(&mut self, builder: &Resource<PostgresConnectionBuilder>) -> Result<String, Error> {
        self.table()
            .get(builder)
            .map(|builder| builder.address.clone())
            .map_err(|_| Error::ConnectionFailed("no builder found".to_owned()))
    }
}

/// Checks each host named by a connection string (URL or key/value form), and each `hostaddr`
/// (the address actually dialled when given), against the component's `allowed_outbound_hosts`.
fn ensure_address_allowed(state: &InstanceState, address: &str) -> Result<(), Error> {
    let config: tokio_postgres::Config =
        address.parse().map_err(|error: tokio_postgres::Error| Error::ConnectionFailed(error.to_string()))?;
    let ports = config.get_ports();
    // The port paired with the `index`th host, or the only port given for all hosts.
    let port = |index: usize| ports.get(index).or(if ports.len() == 1 { ports.first() } else { None });
    let allowed_hosts = &state.component().allowed_hosts;
    let refused = |host: &str, port: Option<&u16>| {
        // An IPv6 address in brackets, as in a URL.
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
        let target = match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Err(Error::ConnectionFailed(format!("address postgres://{target} is not permitted")))
    };
    for (index, host) in config.get_hosts().iter().enumerate() {
        let tokio_postgres::config::Host::Tcp(host) = host else {
            return Err(Error::ConnectionFailed("Unix sockets are not supported on WebAssembly".to_owned()));
        };
        if !allowed_hosts.allows("postgres", host, port(index).copied()) {
            return refused(host, port(index));
        }
    }
    for (index, address) in config.get_hostaddrs().iter().enumerate() {
        if !allowed_hosts.allows("postgres", &address.to_string(), port(index).copied()) {
            return refused(&address.to_string(), port(index));
        }
    }
    Ok(())
}

fn connection_failed(error: anyhow::Error) -> Error {
    Error::ConnectionFailed(format!("{error:?}"))
}

/// A failed statement, with the SQLSTATE and details when the server reported them.
fn query_failed(error: tokio_postgres::Error) -> Error {
    let as_text = format!("{error:?}");
    let Some(db_error) = error.as_db_error() else {
        return Error::QueryFailed(QueryError::Text(as_text));
    };
    Error::QueryFailed(QueryError::DbError(DbError {
        as_text,
        severity: db_error.severity().to_owned(),
        code: db_error.code().code().to_owned(),
        message: db_error.message().to_owned(),
        detail: db_error.detail().map(str::to_owned),
        extras: db_error_extras(db_error),
    }))
}

/// An error met while a synchronous query's rows were read: most errors a statement raises as it
/// runs (a constraint, a deadlock) arrive so, and so does a value that cannot be converted.
/// Spin's `query` reports each as the text of the error its row stream gave, the SQLSTATE lost
/// (its `query-async` keeps it), and a guest must meet here what it would meet there.
fn failed_while_reading(error: Error) -> Error {
    Error::QueryFailed(QueryError::Text(format!("{error:?}")))
}

fn db_error_extras(db_error: &tokio_postgres::error::DbError) -> Vec<(String, String)> {
    let line = db_error.line().map(|line| line.to_string());
    let fields = [
        ("column", db_error.column()),
        ("constraint", db_error.constraint()),
        ("routine", db_error.routine()),
        ("hint", db_error.hint()),
        ("table", db_error.table()),
        ("datatype", db_error.datatype()),
        ("schema", db_error.schema()),
        ("file", db_error.file()),
        ("line", line.as_deref()),
        ("where_", db_error.where_()),
    ];
    fields.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?.to_owned()))).collect()
}

fn conversion_failed(error: anyhow::Error) -> Error {
    Error::QueryFailed(QueryError::Text(format!("{error:?}")))
}

fn parameters(params: &[ParameterValue]) -> anyhow::Result<Vec<Box<dyn ToSql + Send + Sync>>> {
    params.iter().map(convert::parameter).collect()
}

async fn execute(connection: &PooledConnection, statement: &str, params: &[ParameterValue]) -> Result<u64, Error> {
    // Spin reports a bad parameter of `execute` as a value conversion failure.
    let params = parameters(params).map_err(|error| Error::ValueConversionFailed(format!("{error:?}")))?;
    connection.session().execute(statement, &params).await.map_err(query_failed)
}

async fn query_all(connection: &PooledConnection, statement: &str, params: &[ParameterValue]) -> Result<RowSet, Error> {
    let params = parameters(params).map_err(|error| Error::BadParameter(format!("{error:?}")))?;
    let stream = connection.session().query_raw(statement, &params).await.map_err(query_failed)?;
    let columns = convert::columns(stream.columns());
    let mut stream = std::pin::pin!(stream);
    let mut rows = Vec::new();
    let mut buffered_bytes = std::mem::size_of::<RowSet>();
    while let Some(row) = stream.next().await {
        let row = row.map_err(|error| failed_while_reading(query_failed(error)))?;
        let converted = convert::row_values(&row).map_err(|error| failed_while_reading(conversion_failed(error)));
        let taken = converted.and_then(|values| {
            buffered_bytes += values.iter().map(convert::memory_size).sum::<usize>();
            if buffered_bytes > MAX_BUFFERED_RESULT_BYTES { Err(result_too_large()) } else { Ok(values) }
        });
        match taken {
            Ok(values) => rows.push(values),
            Err(error) => {
                discard_rest(stream).await;
                return Err(error);
            }
        }
    }
    Ok(RowSet { columns, rows })
}

fn result_too_large() -> Error {
    Error::QueryFailed(QueryError::Text(format!("query result exceeds limit of {MAX_BUFFERED_RESULT_BYTES} bytes")))
}

/// A started query: its columns, its rows, and how the row stream ended (once it has).
struct QueryStream {
    columns: Vec<Column>,
    rows: RowProducer,
    outcome: oneshot::Receiver<Result<(), Error>>,
}

/// Starts a query and reads its first rows. Most results are a
/// few rows that arrive together, all read here; a longer or slower one is handed to a background
/// task. A task per query cost the host a spawn, two channels and their wake-ups for the one row
/// most statements return.
async fn start_streaming_query(
    connection: Arc<PooledConnection>,
    statement: String,
    params: Vec<ParameterValue>,
) -> Result<QueryStream, Error> {
    let params = parameters(&params).map_err(|error| Error::BadParameter(format!("{error:?}")))?;
    let mut stream = connection.session().query_raw(&statement, &params).await.map_err(query_failed)?;
    let columns = convert::columns(stream.columns());
    let mut read = VecDeque::new();
    // The rows before an error reach the guest; the error ends the stream.
    let end = loop {
        // The first row is waited for (Postgres sends a statement's answer in one flush, so it is
        // usually here with the bind's); the next ones only taken if they are already here, so
        // the guest gets its answer as soon as under Spin even when later rows are slow to come
        // (a lock they wait for, say).
        let next = if read.is_empty() { Some(stream.next().await) } else { stream.next().now_or_never() };
        let Some(next) = next else {
            let (rows, outcome) = read_rest_in_background(connection, stream, read);
            return Ok(QueryStream { columns, rows, outcome });
        };
        let row = match next {
            None => break Ok(()),
            Some(Err(error)) => break Err(query_failed(error)),
            Some(Ok(row)) => row,
        };
        match guest_row(&row) {
            Ok(values) => read.push_back(values),
            Err(error) => {
                discard_rest(&mut stream).await;
                break Err(error);
            }
        }
        // One row past the read-ahead tells a longer result from one that ends there.
        if read.len() > ROWS_READ_AHEAD {
            let (rows, outcome) = read_rest_in_background(connection, stream, read);
            return Ok(QueryStream { columns, rows, outcome });
        }
    };
    let (outcome_sender, outcome) = oneshot::channel();
    let _ = outcome_sender.send(end);
    Ok(QueryStream { columns, rows: RowProducer::Read(read), outcome })
}

/// Queues the rows read so far and spawns a task that reads the rest behind them.
fn read_rest_in_background(
    connection: Arc<PooledConnection>,
    stream: session::Rows,
    read: VecDeque<Row>,
) -> (RowProducer, oneshot::Receiver<Result<(), Error>>) {
    assert!((1..=ROWS_READ_AHEAD + 1).contains(&read.len()));
    let (row_sender, rows) = mpsc::channel(ROWS_READ_AHEAD + 1);
    for row in read {
        assert!(row_sender.try_send(row).is_ok(), "the queue has room for the rows read");
    }
    let (outcome_sender, outcome) = oneshot::channel();
    tokio::spawn(async move {
        // Holding the connection keeps it out of the pool until the last row is read.
        let _connection = connection;
        let _ = outcome_sender.send(forward_rows(stream, row_sender).await);
    });
    (RowProducer::Reading(rows), outcome)
}

/// A row as the guest receives it, refused past the buffering limit.
fn guest_row(row: &tokio_postgres::Row) -> Result<Row, Error> {
    let values = convert::row_values(row).map_err(conversion_failed)?;
    if values.iter().map(convert::memory_size).sum::<usize>() > MAX_BUFFERED_RESULT_BYTES {
        return Err(result_too_large());
    }
    Ok(values)
}

async fn forward_rows(mut stream: session::Rows, row_sender: mpsc::Sender<Row>) -> Result<(), Error> {
    loop {
        let next = tokio::select! {
            biased;
            // The guest dropped the stream: stop reading.
            _ = row_sender.closed() => return Ok(()),
            next = stream.next() => next,
        };
        let Some(row) = next else { return Ok(()) };
        let values = match guest_row(&row.map_err(query_failed)?) {
            Ok(values) => values,
            Err(error) => {
                discard_rest(&mut stream).await;
                return Err(error);
            }
        };
        if row_sender.send(values).await.is_err() {
            return Ok(());
        }
    }
}

/// Reads what is left of a result after a row the guest cannot take (a type it has no value
/// for, or past the size limit) has ended it, so that the statement finishes and its connection
/// stays usable: as under Spin, where tokio-postgres discards the rest of a dropped result.
/// Left unread, the statement would count as unfinished, and its connection be closed.
async fn discard_rest<S: futures::Stream<Item = Result<tokio_postgres::Row, tokio_postgres::Error>> + Unpin>(
    mut stream: S,
) {
    while let Some(Ok(_)) = stream.next().await {}
}

/// Delivers a query's rows to the guest's `stream<row>`: a short result read whole, or the queue
/// a background task fills.
enum RowProducer {
    Read(VecDeque<Row>),
    Reading(mpsc::Receiver<Row>),
}

impl<D> StreamProducer<D> for RowProducer {
    type Item = Row;
    type Buffer = Option<Row>;

    fn poll_produce<'a>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        _: StoreContextMut<'a, D>,
        mut destination: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let producer = self.get_mut();
        let next = match producer {
            RowProducer::Read(rows) => Poll::Ready(rows.pop_front()),
            RowProducer::Reading(rows) => rows.poll_recv(cx),
        };
        match next {
            Poll::Ready(Some(row)) => {
                destination.set_buffer(Some(row));
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Poll::Ready(None) => Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}
