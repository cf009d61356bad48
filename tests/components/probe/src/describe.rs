//! A compact, exact text form of each database value, so tests compare what the guest received
//! (variant and content) as plain strings.

use spin_sdk::pg::{DbValue, RangeBoundKind};

pub fn describe(value: &DbValue) -> String {
    match value {
        DbValue::Boolean(v) => format!("boolean:{v}"),
        DbValue::Int8(v) => format!("int8:{v}"),
        DbValue::Int16(v) => format!("int16:{v}"),
        DbValue::Int32(v) => format!("int32:{v}"),
        DbValue::Int64(v) => format!("int64:{v}"),
        DbValue::Floating32(v) => format!("floating32:{v}"),
        DbValue::Floating64(v) => format!("floating64:{v}"),
        DbValue::Str(v) => format!("str:{v}"),
        DbValue::Binary(v) => format!("binary:{}", hex(v)),
        DbValue::Date((y, m, d)) => format!("date:{y}-{m}-{d}"),
        DbValue::Time((h, mi, s, ns)) => format!("time:{h}:{mi}:{s}.{ns}"),
        DbValue::Datetime((y, m, d, h, mi, s, ns)) => {
            format!("datetime:{y}-{m}-{d} {h}:{mi}:{s}.{ns}")
        }
        DbValue::Timestamp(v) => format!("timestamp:{v}"),
        DbValue::Uuid(v) => format!("uuid:{v}"),
        DbValue::Jsonb(v) => format!("jsonb:{}", String::from_utf8_lossy(v)),
        DbValue::Decimal(v) => format!("decimal:{v}"),
        DbValue::RangeInt32((lower, upper)) => format!("range-int32:{}", range(lower, upper)),
        DbValue::RangeInt64((lower, upper)) => format!("range-int64:{}", range(lower, upper)),
        DbValue::RangeDecimal((lower, upper)) => format!("range-decimal:{}", range(lower, upper)),
        DbValue::ArrayInt32(v) => format!("array-int32:{}", list(v)),
        DbValue::ArrayInt64(v) => format!("array-int64:{}", list(v)),
        DbValue::ArrayDecimal(v) => format!("array-decimal:{}", list(v)),
        DbValue::ArrayStr(v) => format!("array-str:{}", list(v)),
        DbValue::Interval(v) => format!("interval:{}m{}d{}us", v.months, v.days, v.micros),
        DbValue::DbNull => "null".to_owned(),
        DbValue::Unsupported(v) => format!("unsupported:{}", hex(v)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn list<T: std::fmt::Display>(values: &[Option<T>]) -> String {
    let items: Vec<String> =
        values.iter().map(|value| value.as_ref().map_or("null".to_owned(), ToString::to_string)).collect();
    format!("[{}]", items.join(","))
}

/// `[1,10)` style, with an absent bound written as `-inf` / `inf`.
fn range<T: std::fmt::Display>(lower: &Option<(T, RangeBoundKind)>, upper: &Option<(T, RangeBoundKind)>) -> String {
    let lower = match lower {
        Some((value, RangeBoundKind::Inclusive)) => format!("[{value}"),
        Some((value, RangeBoundKind::Exclusive)) => format!("({value}"),
        None => "(-inf".to_owned(),
    };
    let upper = match upper {
        Some((value, RangeBoundKind::Inclusive)) => format!("{value}]"),
        Some((value, RangeBoundKind::Exclusive)) => format!("{value})"),
        None => "inf)".to_owned(),
    };
    format!("{lower},{upper}")
}
