//! Reading configuration documents field by field.
//!
//! A document is first read into loose [`Value`]s (any self-describing
//! serde format works, JSON being the usual one), then each known field is
//! converted by a reader that names the field and its allowed range in the
//! error. So `"top_k": -1` is reported as `top_k must be an integer >= 0
//! (0 disables top-k), got -1`, not as a bare type mismatch, and unknown
//! keys are skipped without being interpreted.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::EosTokenId;
use crate::{Error, TokenId};

/// A value as the document holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value as an error message shows it.
    fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::List(_) => "a list".into(),
            Value::Object(_) => "an object".into(),
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number, if it is one.
    pub(crate) fn as_number(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(x) => Some(x),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        EntriesVisitor.visit_map(map).map(|e| Value::Object(e.0))
    }
}

/// The top-level object of a document: its entries, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entries(pub(crate) Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Entries(entries))
    }
}

/// Implements serde's `Deserialize` for a configuration type through
/// [`Entries`] and the type's `from_entries`, so that field errors keep
/// their wording inside any serde document.
macro_rules! deserialize_from_entries {
    ($ty:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let entries = <$crate::config::json::Entries as serde::Deserialize>::deserialize(
                    deserializer,
                )?;
                <$ty>::from_entries(entries).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use deserialize_from_entries;

/// Writes `"field": value` into `$map` for each listed `Option` field of
/// `$this` that is set; unset fields are left out.
macro_rules! serialize_set_fields {
    ($map:ident, $this:expr; $($field:ident),* $(,)?) => {
        $(if let Some(v) = &$this.$field {
            serde::ser::SerializeMap::serialize_entry(&mut $map, stringify!($field), v)?;
        })*
    };
}
pub(crate) use serialize_set_fields;

/// Parses a JSON document into its top-level entries.
pub(crate) fn parse_object(text: &str, what: &str) -> Result<Entries, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::Load { what: what.to_owned(), message: e.to_string() })
}

/// Reads a file into a string.
pub(crate) fn read_file(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Load { what: path.display().to_string(), message: e.to_string() })
}

// ---------------------------------------------------------------------------
// Field readers. `null` is "unset" (`None`) everywhere.
// ---------------------------------------------------------------------------

fn bad(name: &'static str, expected: &'static str, v: &Value) -> Error {
    Error::invalid(name, expected, v.describe())
}

/// A number (an integer is taken as a float).
pub(crate) fn number(
    v: &Value,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<f64>, Error> {
    match v {
        Value::Null => Ok(None),
        _ => v.as_number().map(Some).ok_or_else(|| bad(name, expected, v)),
    }
}

/// A boolean.
pub(crate) fn boolean(v: &Value, name: &'static str) -> Result<Option<bool>, Error> {
    match *v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        _ => Err(bad(name, "true, false or null", v)),
    }
}

/// A non-negative integer.
pub(crate) fn count(
    v: &Value,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<usize>, Error> {
    match *v {
        Value::Null => Ok(None),
        Value::Int(i) => usize::try_from(i).map(Some).map_err(|_| bad(name, expected, v)),
        _ => Err(bad(name, expected, v)),
    }
}

/// A signed 32-bit integer (llama.cpp's `int32_t` settings, where `-1`
/// often has a meaning).
pub(crate) fn int32(
    v: &Value,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<i32>, Error> {
    match *v {
        Value::Null => Ok(None),
        Value::Int(i) => i32::try_from(i).map(Some).map_err(|_| bad(name, expected, v)),
        _ => Err(bad(name, expected, v)),
    }
}

/// An unsigned 64-bit integer.
pub(crate) fn u64_value(
    v: &Value,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<u64>, Error> {
    match *v {
        Value::Null => Ok(None),
        Value::Int(i) => u64::try_from(i).map(Some).map_err(|_| bad(name, expected, v)),
        _ => Err(bad(name, expected, v)),
    }
}

const ID: &str = "a token id (an integer in [0, 4294967295])";

fn id_of(v: &Value) -> Option<TokenId> {
    match *v {
        Value::Int(i) => TokenId::try_from(i).ok(),
        _ => None,
    }
}

/// A token id.
pub(crate) fn token_id(v: &Value, name: &'static str) -> Result<Option<TokenId>, Error> {
    match v {
        Value::Null => Ok(None),
        _ => id_of(v).map(Some).ok_or_else(|| bad(name, ID, v)),
    }
}

fn ids_of(v: &Value, name: &'static str, expected: &'static str) -> Result<Vec<TokenId>, Error> {
    match v {
        Value::List(items) => items
            .iter()
            .map(|x| id_of(x).ok_or_else(|| Error::invalid(name, expected, x.describe())))
            .collect(),
        _ => Err(bad(name, expected, v)),
    }
}

/// A list of token ids.
pub(crate) fn token_ids(v: &Value, name: &'static str) -> Result<Option<Vec<TokenId>>, Error> {
    match v {
        Value::Null => Ok(None),
        _ => ids_of(v, name, "a list of token ids (integers in [0, 4294967295])").map(Some),
    }
}

/// A list of lists of token ids.
pub(crate) fn token_id_lists(
    v: &Value,
    name: &'static str,
) -> Result<Option<Vec<Vec<TokenId>>>, Error> {
    const EXPECTED: &str = "a list of lists of token ids";
    match v {
        Value::Null => Ok(None),
        Value::List(items) => {
            items.iter().map(|x| ids_of(x, name, EXPECTED)).collect::<Result<_, _>>().map(Some)
        }
        _ => Err(bad(name, EXPECTED, v)),
    }
}

/// `eos_token_id`: one id or a list of ids.
pub(crate) fn eos(v: &Value, name: &'static str) -> Result<Option<EosTokenId>, Error> {
    const EXPECTED: &str = "a token id or a list of token ids";
    match v {
        Value::Null => Ok(None),
        Value::List(_) => ids_of(v, name, EXPECTED).map(|ids| Some(EosTokenId::Many(ids))),
        _ => id_of(v).map(|id| Some(EosTokenId::One(id))).ok_or_else(|| bad(name, EXPECTED, v)),
    }
}

/// `[ids, bias]` pairs.
type SequenceBiasList = Vec<(Vec<TokenId>, f64)>;

/// `sequence_bias`: a list of `[[ids...], bias]` pairs.
pub(crate) fn sequence_bias(
    v: &Value,
    name: &'static str,
) -> Result<Option<SequenceBiasList>, Error> {
    const EXPECTED: &str = "a list of [[token ids], bias] pairs";
    let pair = |x: &Value| match x {
        Value::List(p) if p.len() == 2 => {
            let ids = ids_of(&p[0], name, EXPECTED)?;
            let bias = p[1].as_number().ok_or_else(|| bad(name, EXPECTED, &p[1]))?;
            Ok((ids, bias))
        }
        _ => Err(bad(name, EXPECTED, x)),
    };
    match v {
        Value::Null => Ok(None),
        Value::List(items) => items.iter().map(pair).collect::<Result<_, _>>().map(Some),
        _ => Err(bad(name, EXPECTED, v)),
    }
}

/// A `[count, number]` pair (transformers' `(start_index, decay_factor)`).
pub(crate) fn count_and_number(
    v: &Value,
    name: &'static str,
) -> Result<Option<(usize, f64)>, Error> {
    const EXPECTED: &str = "a pair [integer >= 0, number]";
    match v {
        Value::Null => Ok(None),
        Value::List(p) if p.len() == 2 => {
            let n = match p[0] {
                Value::Int(i) => usize::try_from(i).ok(),
                _ => None,
            };
            let x = p[1].as_number();
            match (n, x) {
                (Some(n), Some(x)) => Ok(Some((n, x))),
                _ => Err(bad(name, EXPECTED, v)),
            }
        }
        _ => Err(bad(name, EXPECTED, v)),
    }
}

/// A string or a list of strings.
pub(crate) fn strings(v: &Value, name: &'static str) -> Result<Option<Vec<String>>, Error> {
    const EXPECTED: &str = "a string or a list of strings";
    match v {
        Value::Str(s) => Ok(Some(vec![s.clone()])),
        _ => string_list(v, name, EXPECTED),
    }
}

/// A list of strings only (a bare string is not accepted).
pub(crate) fn string_list(
    v: &Value,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<Vec<String>>, Error> {
    match v {
        Value::Null => Ok(None),
        Value::List(items) => items
            .iter()
            .map(|x| match x {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(bad(name, expected, x)),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        _ => Err(bad(name, expected, v)),
    }
}

/// An object whose keys are token ids (as strings, JSON's only key type)
/// and whose values are numbers: OpenAI's `logit_bias`.
pub(crate) fn id_map(
    v: &Value,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<Vec<(TokenId, f64)>>, Error> {
    match v {
        Value::Null => Ok(None),
        Value::Object(entries) => entries
            .iter()
            .map(|(k, x)| {
                let id = k
                    .trim()
                    .parse::<TokenId>()
                    .map_err(|_| Error::invalid(name, expected, format_args!("key {k:?}")))?;
                let bias = x.as_number().ok_or_else(|| {
                    Error::invalid(name, expected, format_args!("{} for token {id}", x.describe()))
                })?;
                Ok((id, bias))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        _ => Err(bad(name, expected, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn values_keep_their_kind() {
        assert_eq!(parse("null"), Value::Null);
        assert_eq!(parse("-3"), Value::Int(-3));
        assert_eq!(parse("18446744073709551615"), Value::Int(u64::MAX.into()));
        assert_eq!(parse("0.5"), Value::Float(0.5));
        assert_eq!(parse(r#"{"a": [1, {"b": null}]}"#).describe(), "an object");
    }

    #[test]
    fn readers_name_the_field_and_the_range() {
        let err = count(&parse("-1"), "top_k", "an integer >= 0").unwrap_err();
        assert_eq!(err.to_string(), "top_k must be an integer >= 0, got -1");
        let err = token_ids(&parse("[1, 2.5]"), "suppress_tokens").unwrap_err();
        assert!(
            err.to_string().starts_with("suppress_tokens must be a list of token ids"),
            "{err}"
        );
        assert!(err.to_string().ends_with("got 2.5"), "{err}");
        let err = eos(&parse("4294967296"), "eos_token_id").unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { name: "eos_token_id", .. }));
        assert_eq!(
            number(&parse(r#""0.7""#), "temperature", "a number").unwrap_err().to_string(),
            "temperature must be a number, got \"0.7\""
        );
    }

    #[test]
    fn null_is_unset_and_integers_are_numbers() {
        assert_eq!(number(&parse("null"), "t", "x").unwrap(), None);
        assert_eq!(number(&parse("2"), "t", "x").unwrap(), Some(2.0));
        assert_eq!(eos(&parse("7"), "e").unwrap(), Some(EosTokenId::One(7)));
        assert_eq!(eos(&parse("[7, 8]"), "e").unwrap(), Some(EosTokenId::Many(vec![7, 8])));
        assert_eq!(strings(&parse(r#""\n""#), "s").unwrap(), Some(vec!["\n".to_string()]));
        assert_eq!(
            sequence_bias(&parse("[[[1, 2], -1.5], [[3], 2]]"), "b").unwrap(),
            Some(vec![(vec![1, 2], -1.5), (vec![3], 2.0)])
        );
        assert_eq!(
            id_map(&parse(r#"{"50256": -100, "7": 5.5}"#), "l", "x").unwrap(),
            Some(vec![(50256, -100.0), (7, 5.5)])
        );
        assert!(id_map(&parse(r#"{"eos": 1}"#), "l", "x").is_err());
    }
}
