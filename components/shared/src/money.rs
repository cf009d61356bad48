//! Money as exact decimals, never floats.
//!
//! An amount arrives as a JSON number (`100.50`, as in the seed's examples) or a string
//! (`"100.50"`). serde_json's `arbitrary_precision` keeps a number's digits as written, so both
//! forms are parsed from their text, exactly. Whether the amount has more decimal places than its
//! currency allows is the ledger's rule (see sql/functions/20_ledger.sql), checked where the currency table lives.
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::ApiError;
use crate::request::JsonObject;

/// Longest amount text accepted; far beyond any real transfer, well within `Decimal`'s range.
const AMOUNT_TEXT_LENGTH_MAX: usize = 24;

/// A positive amount of money, at most the configured per-transfer maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(Decimal);

impl Amount {
    /// Parses a JSON number or string written in plain decimal notation (`10`, `10.5`, `0.01`).
    /// Signs, exponents, spaces, `NaN` and empty strings are refused rather than guessed at.
    pub fn from_json(value: &Value, maximum: Decimal) -> Result<Self, ApiError> {
        let text = match value {
            Value::Number(number) => number.to_string(),
            Value::String(text) => text.clone(),
            _ => {
                return Err(invalid("amount must be a decimal number or a string such as \"10.50\""));
            }
        };
        Self::parse(&text, maximum)
    }

    pub fn parse(text: &str, maximum: Decimal) -> Result<Self, ApiError> {
        if !is_plain_decimal(text) {
            return Err(invalid("amount must be written as digits with an optional decimal point, e.g. \"10.50\""));
        }
        let amount = Decimal::from_str_exact(text).map_err(|_| invalid("amount is out of range"))?;
        if amount <= Decimal::ZERO {
            return Err(invalid("amount must be greater than zero"));
        }
        if amount > maximum {
            return Err(ApiError::unprocessable(
                "amount_too_large",
                format!("amount must not exceed {maximum} per transfer"),
            ));
        }
        Ok(Self(amount))
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

fn is_plain_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    text.len() <= AMOUNT_TEXT_LENGTH_MAX && all_digits(whole) && all_digits(fraction)
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::unprocessable("invalid_amount", message)
}

/// An ISO 4217 code (`USD`). Whether the ledger supports it is decided by its `currencies` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    /// The request's optional `currency` field, else `default`.
    pub fn take_from(fields: &mut JsonObject, default: &Currency) -> Result<Self, ApiError> {
        match fields.take_string("currency")? {
            Some(code) => code.parse(),
            None => Ok(default.clone()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Currency {
    type Err = ApiError;

    fn from_str(code: &str) -> Result<Self, ApiError> {
        if code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(ApiError::unprocessable(
                "invalid_currency",
                "currency must be a three-letter ISO 4217 code such as \"USD\"",
            ))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A transfer's note: trimmed, at most 280 characters, no control characters but line breaks and
/// no text-direction overrides (`text::is_refused`). An empty note is no note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub const CHARS_MAX: usize = 280;

    pub fn parse(raw: Option<String>) -> Result<Option<Self>, ApiError> {
        let Some(raw) = raw else { return Ok(None) };
        let note = raw.trim();
        if note.chars().count() > Self::CHARS_MAX {
            return Err(ApiError::unprocessable("invalid_note", "note must be at most 280 characters"));
        }
        if note.chars().any(|character| crate::text::is_refused(character, &['\n'])) {
            return Err(ApiError::unprocessable(
                "invalid_note",
                "note must not contain control characters or text-direction overrides",
            ));
        }
        Ok((!note.is_empty()).then(|| Self(note.to_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// What a payment moves: `amount`, `currency` (default: the ledger's default currency) and an
/// optional `note`, taken from a request body. Shared by `/fintech/transfer` and payments in chat.
pub struct PaymentTerms {
    pub amount: Amount,
    pub currency: Currency,
    pub note: Option<Note>,
}

impl PaymentTerms {
    pub fn take_from(fields: &mut JsonObject, maximum: Decimal, default_currency: &Currency) -> Result<Self, ApiError> {
        let amount = Amount::from_json(&fields.require("amount")?, maximum)?;
        let currency = Currency::take_from(fields, default_currency)?;
        let note = Note::parse(fields.take_string("note")?)?;
        Ok(Self { amount, currency, note })
    }

    pub fn note_text(&self) -> Option<String> {
        self.note.clone().map(Note::into_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maximum() -> Decimal {
        Decimal::from_str_exact("10000.00").unwrap()
    }

    fn parse_json(raw_json: &str) -> Result<String, &'static str> {
        let value: Value = serde_json::from_str(raw_json).unwrap();
        Amount::from_json(&value, maximum()).map(|amount| amount.to_string()).map_err(|error| error.code)
    }

    #[test]
    fn amounts_parse_exactly_from_numbers_and_strings() {
        assert_eq!(parse_json("100.50"), Ok("100.50".to_owned()));
        assert_eq!(parse_json("\"10.5\""), Ok("10.5".to_owned()));
        assert_eq!(parse_json("0.001"), Ok("0.001".to_owned()));
        assert_eq!(parse_json("0.1"), Ok("0.1".to_owned()));
        assert_eq!(parse_json("10000.00"), Ok("10000.00".to_owned()));
        // A float would print 0.30000000000000004 for 0.1 + 0.2; exact decimals do not drift.
        let sum = Amount::parse("0.1", maximum()).unwrap().get() + Amount::parse("0.2", maximum()).unwrap().get();
        assert_eq!(sum.to_string(), "0.3");
    }

    #[test]
    fn malformed_or_out_of_range_amounts_are_refused() {
        for bad in [
            "0",
            "-1",
            "\"-1\"",
            "1e2",
            "\"1e2\"",
            "\" 10\"",
            "\"10 \"",
            "\"NaN\"",
            "\"\"",
            "\".5\"",
            "\"5.\"",
            "\"+5\"",
            "null",
            "true",
            "[1]",
            "\"1,000\"",
            "123456789012345678901234567890",
        ] {
            assert_eq!(parse_json(bad), Err("invalid_amount"), "{bad}");
        }
        assert_eq!(parse_json("10000.01"), Err("amount_too_large"));
        assert_eq!(parse_json("\"99999999999\""), Err("amount_too_large"));
    }

    #[test]
    fn notes_are_trimmed_bounded_and_printable() {
        assert_eq!(Note::parse(Some("  lunch  ".into())).unwrap().map(Note::into_string), Some("lunch".into()));
        assert_eq!(Note::parse(Some("   ".into())).unwrap(), None);
        assert_eq!(Note::parse(None).unwrap(), None);
        assert!(Note::parse(Some("é".repeat(280))).unwrap().is_some());
        assert!(Note::parse(Some("x".repeat(281))).is_err());
        assert!(Note::parse(Some("bell\u{7}".into())).is_err());
        assert!(Note::parse(Some("two\nlines".into())).unwrap().is_some());
    }

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        assert!("USD".parse::<Currency>().is_ok());
        for bad in ["usd", "US", "USDT", "U$D", ""] {
            assert!(bad.parse::<Currency>().is_err(), "{bad}");
        }
    }
}
