//! Conversions between `spin:postgres@4.2.0` values and Postgres wire values.
//!
//! These follow Spin's `factor-outbound-pg` conversions rule for rule, failures included: a
//! component that works here must work under Spin. In particular a TIMESTAMPTZ column is read
//! as a naive date-time, which the driver refuses, so reading one fails here as it does there
//! (select `col AT TIME ZONE 'UTC'` instead); and the `timestamp` parameter is a TIMESTAMPTZ.

use std::error::Error as StdError;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BufMut, BytesMut};
use chrono::{Datelike, Timelike};
use postgres_range::{BoundSided, BoundType, Normalizable, Range, RangeBound};
use rust_decimal::Decimal;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::bindings::postgres_wit::{
    self as wit, DbDataType, DbValue, Interval as WitInterval, ParameterValue, RangeBoundKind,
};

type BoxedError = Box<dyn StdError + Sync + Send>;

/// The WIT data type reported for a column of Postgres type `pg_type`.
pub fn data_type(pg_type: &Type) -> DbDataType {
    match *pg_type {
        Type::BOOL => DbDataType::Boolean,
        Type::BYTEA => DbDataType::Binary,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DbDataType::Str,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::UUID => DbDataType::Uuid,
        Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_RANGE => DbDataType::RangeInt32,
        Type::INT8_RANGE => DbDataType::RangeInt64,
        Type::NUM_RANGE => DbDataType::RangeDecimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        _ => DbDataType::Other(pg_type.name().to_owned()),
    }
}

pub fn columns(columns: &[tokio_postgres::Column]) -> Vec<wit::Column> {
    columns
        .iter()
        .map(|column| wit::Column { name: column.name().to_owned(), data_type: data_type(column.type_()) })
        .collect()
}

pub fn row_values(row: &Row) -> anyhow::Result<Vec<DbValue>> {
    (0..row.len()).map(|index| value(row, index)).collect()
}

/// Reads column `index`; NULL becomes `db-null` for every type.
fn value(row: &Row, index: usize) -> anyhow::Result<DbValue> {
    fn read<'a, T: FromSql<'a>>(
        row: &'a Row,
        index: usize,
        convert: impl FnOnce(T) -> anyhow::Result<DbValue>,
    ) -> anyhow::Result<DbValue> {
        match row.try_get::<_, Option<T>>(index)? {
            Some(value) => convert(value),
            None => Ok(DbValue::DbNull),
        }
    }
    let ok = |value| Ok(value);
    match *row.columns()[index].type_() {
        Type::BOOL => read(row, index, |v| ok(DbValue::Boolean(v))),
        Type::BYTEA => read(row, index, |v| ok(DbValue::Binary(v))),
        Type::FLOAT4 => read(row, index, |v| ok(DbValue::Floating32(v))),
        Type::FLOAT8 => read(row, index, |v| ok(DbValue::Floating64(v))),
        Type::INT2 => read(row, index, |v| ok(DbValue::Int16(v))),
        Type::INT4 => read(row, index, |v| ok(DbValue::Int32(v))),
        Type::INT8 => read(row, index, |v| ok(DbValue::Int64(v))),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => read(row, index, |v| ok(DbValue::Str(v))),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => read(row, index, |v| datetime_to_wit(v).map(DbValue::Datetime)),
        Type::DATE => read(row, index, |v| date_to_wit(v).map(DbValue::Date)),
        Type::TIME => read(row, index, |v| time_to_wit(v).map(DbValue::Time)),
        Type::UUID => read(row, index, |v: uuid::Uuid| ok(DbValue::Uuid(v.to_string()))),
        Type::JSONB => read(row, index, |v: serde_json::Value| {
            Ok(DbValue::Jsonb(serde_json::to_vec(&spin_json_numbers(v)?).context("invalid JSON from database")?))
        }),
        Type::NUMERIC => read(row, index, |v: Decimal| ok(DbValue::Decimal(v.to_string()))),
        Type::INT4_RANGE => read(row, index, |v| ok(DbValue::RangeInt32(range_to_wit(v)))),
        Type::INT8_RANGE => read(row, index, |v| ok(DbValue::RangeInt64(range_to_wit(v)))),
        Type::NUM_RANGE => read(row, index, |v| ok(DbValue::RangeDecimal(decimal_range_to_wit(v)))),
        Type::INT4_ARRAY => read(row, index, |v| ok(DbValue::ArrayInt32(v))),
        Type::INT8_ARRAY => read(row, index, |v| ok(DbValue::ArrayInt64(v))),
        Type::NUMERIC_ARRAY => read(row, index, |v: Vec<Option<Decimal>>| {
            ok(DbValue::ArrayDecimal(v.iter().map(|d| d.map(|d| d.to_string())).collect()))
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => read(row, index, |v| ok(DbValue::ArrayStr(v))),
        Type::INTERVAL => read(row, index, |v: Interval| ok(DbValue::Interval(v.0))),
        _ => read(row, index, |v: RawBytes| ok(DbValue::Unsupported(v.0))),
    }
}

/// Approximate host memory a value holds, counted the way Spin counts it against its limit on
/// buffered query results.
pub fn memory_size(value: &DbValue) -> usize {
    let own = std::mem::size_of::<DbValue>();
    own + match value {
        DbValue::ArrayInt32(values) => values.len() * std::mem::size_of::<Option<i32>>(),
        DbValue::ArrayInt64(values) => values.len() * std::mem::size_of::<Option<i64>>(),
        DbValue::ArrayDecimal(values) | DbValue::ArrayStr(values) => {
            values.iter().map(|v| std::mem::size_of::<Option<String>>() + v.as_ref().map_or(0, String::len)).sum()
        }
        DbValue::Str(text) | DbValue::Uuid(text) | DbValue::Decimal(text) => text.len(),
        DbValue::Jsonb(bytes) | DbValue::Binary(bytes) | DbValue::Unsupported(bytes) => bytes.len(),
        _ => 0,
    }
}

/// A statement parameter, typed as Spin types it.
pub fn parameter(value: &ParameterValue) -> anyhow::Result<Box<dyn ToSql + Send + Sync>> {
    Ok(match value {
        ParameterValue::Boolean(v) => Box::new(*v),
        ParameterValue::Int8(v) => Box::new(*v),
        ParameterValue::Int16(v) => Box::new(*v),
        ParameterValue::Int32(v) => Box::new(*v),
        ParameterValue::Int64(v) => Box::new(*v),
        ParameterValue::Floating32(v) => Box::new(*v),
        ParameterValue::Floating64(v) => Box::new(*v),
        ParameterValue::Str(v) => Box::new(v.clone()),
        ParameterValue::Binary(v) => Box::new(v.clone()),
        ParameterValue::Date(v) => Box::new(date_from_wit(v)?),
        ParameterValue::Time(v) => Box::new(time_from_wit(v)?),
        ParameterValue::Datetime(v) => Box::new(datetime_from_wit(v)?),
        ParameterValue::Timestamp(seconds) => Box::new(
            chrono::DateTime::<chrono::Utc>::from_timestamp(*seconds, 0)
                .ok_or_else(|| anyhow!("invalid epoch timestamp {seconds}"))?,
        ),
        ParameterValue::Uuid(v) => Box::new(uuid::Uuid::parse_str(v).with_context(|| format!("invalid UUID {v}"))?),
        ParameterValue::Jsonb(v) => Box::new(spin_json_numbers(
            serde_json::from_slice::<serde_json::Value>(v)
                .with_context(|| format!("invalid JSON {}", String::from_utf8_lossy(v)))?,
        )?),
        ParameterValue::Decimal(v) => Box::new(decimal_from_wit(v)?),
        ParameterValue::RangeInt32(v) => Box::new(range_from_wit(*v, i32::MAX)?),
        ParameterValue::RangeInt64(v) => Box::new(range_from_wit(*v, i64::MAX)?),
        ParameterValue::RangeDecimal(v) => Box::new(decimal_range_from_wit(v)?),
        ParameterValue::ArrayInt32(v) => Box::new(v.clone()),
        ParameterValue::ArrayInt64(v) => Box::new(v.clone()),
        ParameterValue::ArrayDecimal(v) => Box::new(
            v.iter().map(|d| d.as_deref().map(decimal_from_wit).transpose()).collect::<anyhow::Result<Vec<_>>>()?,
        ),
        ParameterValue::ArrayStr(v) => Box::new(v.clone()),
        ParameterValue::Interval(v) => Box::new(Interval(*v)),
        ParameterValue::DbNull => Box::new(Null),
    })
}

/// JSON numbers as Spin's serde_json holds them: an integer if one fits in 64 bits, else the
/// nearest f64 (`1.10` becomes `1.1`; past f64's range, an error). The app's components enable
/// serde_json's `arbitrary_precision`, which keeps every digit, and a build of the whole
/// workspace unifies that feature into the host's serde_json too: without this, the host's
/// answers would depend on how it was built.
fn spin_json_numbers(value: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    use serde_json::{Number, Value};
    Ok(match value {
        Value::Number(number) => Value::Number(if let Some(integer) = number.as_i64() {
            Number::from(integer)
        } else if let Some(integer) = number.as_u64() {
            Number::from(integer)
        } else {
            number.as_f64().and_then(Number::from_f64).ok_or_else(|| anyhow!("JSON number out of range: {number}"))?
        }),
        Value::Array(items) => Value::Array(items.into_iter().map(spin_json_numbers).collect::<anyhow::Result<_>>()?),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, field)| Ok((name, spin_json_numbers(field)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => other,
    })
}

fn decimal_from_wit(text: &str) -> anyhow::Result<Decimal> {
    Decimal::from_str_exact(text).with_context(|| format!("invalid decimal {text}"))
}

fn datetime_to_wit(value: chrono::NaiveDateTime) -> anyhow::Result<(i32, u8, u8, u8, u8, u8, u32)> {
    let (year, month, day) = date_to_wit(value.date())?;
    let (hour, minute, second, nanosecond) = time_to_wit(value.time())?;
    Ok((year, month, day, hour, minute, second, nanosecond))
}

fn datetime_from_wit(
    &(year, month, day, hour, minute, second, nanosecond): &(i32, u8, u8, u8, u8, u8, u32),
) -> anyhow::Result<chrono::NaiveDateTime> {
    let date = date_from_wit(&(year, month, day))?;
    let time = time_from_wit(&(hour, minute, second, nanosecond))?;
    Ok(chrono::NaiveDateTime::new(date, time))
}

fn date_to_wit(value: chrono::NaiveDate) -> anyhow::Result<(i32, u8, u8)> {
    Ok((value.year(), value.month().try_into()?, value.day().try_into()?))
}

fn date_from_wit(&(year, month, day): &(i32, u8, u8)) -> anyhow::Result<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(year, month.into(), day.into())
        .ok_or_else(|| anyhow!("invalid date y={year}, m={month}, d={day}"))
}

fn time_to_wit(value: chrono::NaiveTime) -> anyhow::Result<(u8, u8, u8, u32)> {
    Ok((value.hour().try_into()?, value.minute().try_into()?, value.second().try_into()?, value.nanosecond()))
}

fn time_from_wit(&(hour, minute, second, nanosecond): &(u8, u8, u8, u32)) -> anyhow::Result<chrono::NaiveTime> {
    chrono::NaiveTime::from_hms_nano_opt(hour.into(), minute.into(), second.into(), nanosecond)
        .ok_or_else(|| anyhow!("invalid time {hour}:{minute}:{second}:{nanosecond}"))
}

type WitRange<T> = (Option<(T, RangeBoundKind)>, Option<(T, RangeBoundKind)>);

fn range_to_wit<T: Copy + Normalizable + PartialOrd>(range: Range<T>) -> WitRange<T> {
    let bound = |value: T, kind: BoundType| (value, bound_kind_to_wit(kind));
    (range.lower().map(|b| bound(b.value, b.type_)), range.upper().map(|b| bound(b.value, b.type_)))
}

/// An integer range, refused when its canonical form would need a bound past `max`: Postgres
/// keeps ranges as `[lower, upper)`, so an exclusive lower or inclusive upper bound of `max` is out
/// of range (and `postgres_range` panics on one).
fn range_from_wit<T: Normalizable + PartialOrd + Copy + std::fmt::Display>(
    (lower, upper): WitRange<T>,
    max: T,
) -> anyhow::Result<Range<T>> {
    let lower_past_max = matches!(lower, Some((value, RangeBoundKind::Exclusive)) if value == max);
    let upper_past_max = matches!(upper, Some((value, RangeBoundKind::Inclusive)) if value == max);
    if lower_past_max || upper_past_max {
        bail!("a range bound past {max} is out of range");
    }
    Ok(Range::new(
        lower.map(|(value, kind)| RangeBound::new(value, bound_kind_from_wit(kind))),
        upper.map(|(value, kind)| RangeBound::new(value, bound_kind_from_wit(kind))),
    ))
}

fn decimal_range_to_wit(range: Range<RangeableDecimal>) -> WitRange<String> {
    fn bound<S: BoundSided>(bound: &RangeBound<S, RangeableDecimal>) -> (String, RangeBoundKind) {
        (bound.value.0.to_string(), bound_kind_to_wit(bound.type_))
    }
    (range.lower().map(bound), range.upper().map(bound))
}

fn decimal_range_from_wit((lower, upper): &WitRange<String>) -> anyhow::Result<Range<RangeableDecimal>> {
    fn bound<S: BoundSided>(
        (text, kind): &(String, RangeBoundKind),
    ) -> anyhow::Result<RangeBound<S, RangeableDecimal>> {
        Ok(RangeBound::new(RangeableDecimal(decimal_from_wit(text)?), bound_kind_from_wit(*kind)))
    }
    Ok(Range::new(lower.as_ref().map(bound).transpose()?, upper.as_ref().map(bound).transpose()?))
}

fn bound_kind_to_wit(kind: BoundType) -> RangeBoundKind {
    match kind {
        BoundType::Inclusive => RangeBoundKind::Inclusive,
        BoundType::Exclusive => RangeBoundKind::Exclusive,
    }
}

fn bound_kind_from_wit(kind: RangeBoundKind) -> BoundType {
    match kind {
        RangeBoundKind::Inclusive => BoundType::Inclusive,
        RangeBoundKind::Exclusive => BoundType::Exclusive,
    }
}

/// SQL NULL that the driver accepts for a parameter of any type: the guest's `db-null` carries
/// no type, so a typed `Option::None` would be refused for most columns.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, BoxedError> {
        Ok(IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, BoxedError> {
        Ok(IsNull::Yes)
    }
}

/// INTERVAL in its binary wire form: microseconds, days, months.
#[derive(Debug)]
struct Interval(WitInterval);

/// Bytes of an INTERVAL on the wire: i64 microseconds, i32 days, i32 months.
const INTERVAL_WIRE_BYTES: usize = 16;

impl ToSql for Interval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxedError> {
        out.put_i64(self.0.micros);
        out.put_i32(self.0.days);
        out.put_i32(self.0.months);
        Ok(IsNull::No)
    }

    fn accepts(pg_type: &Type) -> bool {
        *pg_type == Type::INTERVAL
    }

    to_sql_checked!();
}

impl FromSql<'_> for Interval {
    fn from_sql(_: &Type, mut raw: &[u8]) -> Result<Self, BoxedError> {
        if raw.len() != INTERVAL_WIRE_BYTES {
            return Err("unexpected binary format for Postgres INTERVAL".into());
        }
        Ok(Self(WitInterval { micros: raw.get_i64(), days: raw.get_i32(), months: raw.get_i32() }))
    }

    fn accepts(pg_type: &Type) -> bool {
        *pg_type == Type::INTERVAL
    }
}

/// Any other column type, handed to the guest as its raw binary wire value.
struct RawBytes(Vec<u8>);

impl FromSql<'_> for RawBytes {
    fn from_sql(_: &Type, raw: &[u8]) -> Result<Self, BoxedError> {
        Ok(Self(raw.to_owned()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `Decimal` as a range bound type (postgres_range needs `Normalizable`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct RangeableDecimal(Decimal);

impl ToSql for RangeableDecimal {
    fn to_sql(&self, pg_type: &Type, out: &mut BytesMut) -> Result<IsNull, BoxedError> {
        self.0.to_sql(pg_type, out)
    }

    fn accepts(pg_type: &Type) -> bool {
        <Decimal as ToSql>::accepts(pg_type)
    }

    to_sql_checked!();
}

impl FromSql<'_> for RangeableDecimal {
    fn from_sql(pg_type: &Type, raw: &[u8]) -> Result<Self, BoxedError> {
        Decimal::from_sql(pg_type, raw).map(Self)
    }

    fn accepts(pg_type: &Type) -> bool {
        <Decimal as FromSql>::accepts(pg_type)
    }
}

impl Normalizable for RangeableDecimal {
    fn normalize<S: BoundSided>(bound: RangeBound<S, Self>) -> RangeBound<S, Self> {
        bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_spins_whatever_the_build() {
        let normalised = |text: &str| {
            spin_json_numbers(serde_json::from_str(text).unwrap()).map(|value| serde_json::to_string(&value).unwrap())
        };
        assert_eq!(
            normalised(r#"{"a":[1.10,-7,18446744073709551615]}"#).unwrap(),
            r#"{"a":[1.1,-7,18446744073709551615]}"#
        );
        assert_eq!(normalised("123456789012345678901234567890").unwrap(), "1.2345678901234568e+29");
        // Refused by the parser without `arbitrary_precision` (as Spin's is), here with it.
        let past_f64 = serde_json::from_str("1e400").map_err(anyhow::Error::from).and_then(spin_json_numbers);
        assert!(past_f64.is_err());
    }

    #[test]
    fn integer_ranges_past_the_largest_value_are_refused_not_a_panic() {
        use RangeBoundKind::{Exclusive, Inclusive};
        for range in [(Some((i32::MAX, Exclusive)), None), (None, Some((i32::MAX, Inclusive)))] {
            assert!(parameter(&ParameterValue::RangeInt32(range)).is_err(), "{range:?}");
        }
        let past = (Some((i64::MAX, Exclusive)), Some((i64::MAX, Inclusive)));
        assert!(parameter(&ParameterValue::RangeInt64(past)).is_err());
        for range in [(Some((i32::MAX, Inclusive)), None), (Some((1, Inclusive)), Some((i32::MAX, Exclusive)))] {
            assert!(parameter(&ParameterValue::RangeInt32(range)).is_ok(), "{range:?}");
        }
    }
}
