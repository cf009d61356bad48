//! `GET /fintech/statement?from=&to=&currency=&format=json|csv`: the caller's account in one
//! currency over a period, line by line with the balance after each, between its opening and
//! closing balances (sql/functions/24_statements.sql).
//!
//! The statement is one query, so one snapshot: the lines agree with each other and with the
//! balances. Its rows are read whole before the answer starts (at most `statement_lines_max`;
//! past that, 422 `statement_too_large`), and the pooled connection goes back at once: a client
//! reading slowly must not hold one, or 64 such clients would take the component's pool (under
//! Spin, which sets no deadline, for good). Every failure is therefore an ordinary error
//! response. The body is then rendered as the client reads it, at most [`CHUNK_BYTES`] at a time;
//! a statement that fits in one chunk goes out whole, with its length.
use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, SubsecRound, TimeDelta, Utc};
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use shared::ApiError;
use shared::ids::UserId;
use shared::money::Currency;
use shared::request::{query_pairs, query_value};
use shared::response::api_reply;
use shared::streaming::{StreamingReply, complete, streamed};
use spin_sdk::http::Request;
use spin_sdk::pg::{Connection, QueryResult, Row};

use crate::error::FintechError;
use crate::rate_limit;
use crate::settings::Settings;

/// The longest period one statement covers.
const PERIOD_DAYS_MAX: i64 = 366;

/// How much of the body is rendered before it is handed on.
const CHUNK_BYTES: usize = 16 * 1024;

const CSV_HEADER: &str =
    "created_at,transfer_id,kind,counterparty_id,counterparty_username,refund_of,note,amount,balance\r\n";

#[derive(Clone, Copy)]
enum Format {
    Json,
    Csv,
}

/// From (inclusive) to (exclusive), at most [`PERIOD_DAYS_MAX`] days.
struct Period {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Period {
    fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, ApiError> {
        let from = moment("from", from)?;
        let to = moment("to", to)?;
        if from >= to {
            return Err(ApiError::bad_request("invalid_period", "from must be before to"));
        }
        if to - from > TimeDelta::days(PERIOD_DAYS_MAX) {
            return Err(ApiError::bad_request(
                "period_too_long",
                format!("a statement covers at most {PERIOD_DAYS_MAX} days; ask for several"),
            ));
        }
        Ok(Self { from, to })
    }
}

/// A date (`2026-01-31`, midnight UTC) or an RFC 3339 timestamp.
fn moment(name: &'static str, raw: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::bad_request("missing_parameter", format!("{name} is required")))?;
    let parsed = match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(date) => date.and_hms_opt(0, 0, 0).map(|midnight| midnight.and_utc()),
        Err(_) => DateTime::parse_from_rfc3339(raw).ok().map(|moment| moment.with_timezone(&Utc)),
    };
    // Years 0 and 10000 parse here (the latter from 9999-12-31 with a negative offset), but the
    // period's bounds are written to Postgres as RFC 3339, which has four-digit years only. Cut
    // to microseconds, Postgres' precision, so that from < to holds for what it is given.
    parsed.filter(|moment| (1..=9999).contains(&moment.year())).map(|moment| moment.trunc_subsecs(6)).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_period",
            format!("{name} must be a date (2026-01-31) or an RFC 3339 timestamp, in the years 1 to 9999"),
        )
    })
}

fn timestamp(moment: DateTime<Utc>) -> String {
    moment.to_rfc3339_opts(SecondsFormat::Micros, true)
}

struct StatementQuery {
    period: Period,
    currency: Currency,
    format: Format,
}

impl StatementQuery {
    fn parse(request: &Request, settings: &Settings) -> Result<Self, ApiError> {
        let query = query_pairs(request.uri())?;
        let period = Period::parse(query_value(&query, "from"), query_value(&query, "to"))?;
        let currency = match query_value(&query, "currency") {
            None => settings.default_currency.clone(),
            Some(code) => code.parse().map_err(|_| {
                ApiError::bad_request("invalid_currency", "currency must be a three-letter ISO 4217 code such as USD")
            })?,
        };
        let format = match query_value(&query, "format") {
            None | Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some(_) => return Err(ApiError::bad_request("invalid_format", "format must be json or csv")),
        };
        Ok(Self { period, currency, format })
    }
}

pub async fn statement(settings: &Settings, request: Request) -> Result<StreamingReply, FintechError> {
    let caller = settings.keys.authenticate(request.headers())?;
    let query = StatementQuery::parse(&request, settings)?;
    rate_limit::allow_statement(settings, caller).await?;
    let mut lines = read_lines(settings, caller, &query).await?.into_iter();
    let Some(opening) = lines.next() else {
        return Err(ApiError::unprocessable("unsupported_currency", "the ledger does not hold that currency").into());
    };
    let renderer = Renderer {
        format: query.format,
        balance: opening.balance.clone(),
        lines: 0,
        closing_at: timestamp(query.period.to),
    };
    let head = renderer.head(&query, &opening);
    let mut lines = Lines { lines: Some(lines), renderer, pending: head };
    let content_type = match query.format {
        Format::Json => "application/json",
        Format::Csv => "text/csv; charset=utf-8; header=present",
    };
    let first = lines.render_chunk().expect("the first chunk holds at least the head");
    // A statement that fits in one chunk goes out whole with its length (see
    // shared::response::complete_reply); only a longer one is streamed.
    let mut reply =
        if lines.is_rendered() {
            complete(api_reply(StatusCode::OK, HeaderValue::from_static(content_type), first))
        } else {
            let rest = futures::stream::unfold(lines, |mut lines| async move {
                lines.render_chunk().map(|chunk| (Ok(chunk), lines))
            });
            streamed(content_type, futures::stream::once(async { Ok(first) }).chain(rest))
        };
    if let Format::Csv = query.format {
        let filename = format!("statement-{}.csv", query.currency);
        let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .map_err(|_| ApiError::internal("currency codes are header-safe"))?;
        reply.headers_mut().insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(reply)
}

/// The opening balance and every line, read whole; the connection is released on return.
async fn read_lines(settings: &Settings, caller: UserId, query: &StatementQuery) -> Result<Vec<Line>, FintechError> {
    let database = shared::db::connect(&settings.database_url).await?;
    // One row more than the opening balance and the allowed lines tells that there are too many;
    // the limit stops Postgres there instead of producing a year it would then discard.
    let rows_max = settings.statement_lines_max + 2;
    let mut rows = open_rows(&database, caller, query, rows_max).await?;
    let started = std::time::Instant::now();
    let mut lines = Vec::new();
    while let Some(row) = rows.next().await {
        // The opening balance is a row too.
        if lines.len() > settings.statement_lines_max {
            return Err(ApiError::unprocessable(
                "statement_too_large",
                format!("a statement holds at most {} lines; ask for a shorter period", settings.statement_lines_max),
            )
            .into());
        }
        lines.push(Line::from_row(&row)?);
    }
    rows.result().await?;
    shared::request_log::note_database_time(started.elapsed());
    Ok(lines)
}

async fn open_rows(
    database: &Connection,
    caller: UserId,
    query: &StatementQuery,
    rows_max: usize,
) -> Result<QueryResult, FintechError> {
    let started = std::time::Instant::now();
    let rows = database
        .query(
            "SELECT * FROM fintech_statement($1::int8, $2::text, $3::text::timestamptz, $4::text::timestamptz) LIMIT $5",
            vec![
                caller.get().into(),
                query.currency.as_str().to_owned().into(),
                timestamp(query.period.from).into(),
                timestamp(query.period.to).into(),
                i64::try_from(rows_max).unwrap_or(i64::MAX).into(),
            ],
        )
        .await;
    shared::request_log::note_database_time(started.elapsed());
    Ok(rows?)
}

/// One row of `fintech_statement`: the opening balance, or a line.
struct Line {
    kind: String,
    transfer_id: Option<i64>,
    created_at: String,
    counterparty_id: Option<i64>,
    counterparty_username: Option<String>,
    refund_of: Option<i64>,
    note: Option<String>,
    amount: Option<String>,
    balance: String,
}

impl Line {
    fn from_row(row: &Row) -> Result<Self, ApiError> {
        let text = |name: &str| shared::db::column::<String>(row, name);
        Ok(Self {
            kind: text("kind")?,
            transfer_id: row.get("transfer_id"),
            created_at: text("created_at")?,
            counterparty_id: row.get("counterparty_id"),
            counterparty_username: row.get("counterparty_username"),
            refund_of: row.get("refund_of"),
            note: row.get("note"),
            amount: row.get("amount"),
            balance: text("balance")?,
        })
    }
}

/// Writes the statement in its format; remembers the last balance, the closing one.
struct Renderer {
    format: Format,
    balance: String,
    lines: usize,
    /// The closing balance's moment: the end of the period.
    closing_at: String,
}

impl Renderer {
    fn head(&self, query: &StatementQuery, opening: &Line) -> String {
        match self.format {
            Format::Json => {
                let head = json!({
                    "currency": query.currency.as_str(),
                    "from": timestamp(query.period.from),
                    "to": timestamp(query.period.to),
                    "opening_balance": opening.balance,
                })
                .to_string();
                // The object stays open: the lines follow, then the closing balance.
                format!("{},\"lines\":[", head.trim_end_matches('}'))
            }
            Format::Csv => {
                let mut head = CSV_HEADER.to_owned();
                csv_row(&mut head, &[&opening.created_at, "", &opening.kind, "", "", "", "", "", &opening.balance]);
                head
            }
        }
    }

    fn line(&mut self, line: Line, out: &mut String) {
        match self.format {
            Format::Json => {
                if self.lines > 0 {
                    out.push(',');
                }
                let value = json!({
                    "transfer_id": line.transfer_id,
                    "created_at": line.created_at,
                    "kind": line.kind,
                    "counterparty_id": line.counterparty_id,
                    "counterparty_username": line.counterparty_username,
                    "refund_of": line.refund_of,
                    "note": line.note,
                    "amount": line.amount,
                    "balance": line.balance,
                });
                out.push_str(&value.to_string());
            }
            Format::Csv => csv_row(
                out,
                &[
                    &line.created_at,
                    &optional(line.transfer_id),
                    &line.kind,
                    &optional(line.counterparty_id),
                    &spreadsheet_safe(line.counterparty_username.as_deref().unwrap_or_default()),
                    &optional(line.refund_of),
                    &spreadsheet_safe(line.note.as_deref().unwrap_or_default()),
                    line.amount.as_deref().unwrap_or_default(),
                    &line.balance,
                ],
            ),
        }
        self.lines += 1;
        self.balance = line.balance;
    }

    fn tail(&self, out: &mut String) {
        match self.format {
            Format::Json => out.push_str(&format!("],\"closing_balance\":{}}}", json!(self.balance))),
            Format::Csv => csv_row(out, &[&self.closing_at, "", "closing_balance", "", "", "", "", "", &self.balance]),
        }
    }
}

fn optional(id: Option<i64>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// One CSV record (RFC 4180): fields joined by commas, each quoted when it holds a comma, a quote
/// or a line break (quotes doubled inside), ended by CRLF.
fn csv_row(out: &mut String, fields: &[&str]) {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

/// A field as a spreadsheet cell that is text, never a formula: notes and usernames are written by
/// other people, and a spreadsheet runs a cell starting with `=`, `+`, `-` or `@` (OWASP's CSV
/// injection; a username may start with `-`). Such a field gets a leading `'`, which spreadsheets
/// read as "this is text".
fn spreadsheet_safe(field: &str) -> String {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{field}") } else { field.to_owned() }
}

/// The lines still to be rendered, and what is rendered but not yet handed on.
struct Lines {
    /// `None` once the last line is rendered: the body is complete.
    lines: Option<std::vec::IntoIter<Line>>,
    renderer: Renderer,
    pending: String,
}

impl Lines {
    /// The next chunk of the body: lines rendered until [`CHUNK_BYTES`] are ready or they end.
    fn render_chunk(&mut self) -> Option<Bytes> {
        let mut lines = self.lines.take()?;
        let mut chunk = std::mem::take(&mut self.pending);
        while chunk.len() < CHUNK_BYTES {
            let Some(line) = lines.next() else {
                self.renderer.tail(&mut chunk);
                return Some(Bytes::from(chunk));
            };
            self.renderer.line(line, &mut chunk);
        }
        self.lines = Some(lines);
        Some(Bytes::from(chunk))
    }

    fn is_rendered(&self) -> bool {
        self.lines.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::{Period, csv_row, spreadsheet_safe};

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        let mut out = String::new();
        csv_row(&mut out, &["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn notes_that_a_spreadsheet_would_run_become_text() {
        assert_eq!(spreadsheet_safe("=1+2"), "'=1+2");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("-5 for lunch"), "'-5 for lunch");
        assert_eq!(spreadsheet_safe("lunch = 5"), "lunch = 5");
    }

    #[test]
    fn periods_are_dates_or_timestamps_in_order_and_at_most_366_days() {
        let period = Period::parse(Some("2026-01-01"), Some("2026-01-02T12:00:00+02:00")).expect("valid");
        assert_eq!((period.to - period.from).num_hours(), 34);
        assert!(Period::parse(Some("2026-01-01"), Some("2027-01-02")).is_ok(), "366 days");
        for (from, to) in [("2026-01-01", "2027-01-03"), ("2026-01-02", "2026-01-01"), ("2026-13-01", "2026-02-01")] {
            assert!(Period::parse(Some(from), Some(to)).is_err(), "{from} to {to}");
        }
    }
}
