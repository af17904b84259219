//! `ResponseFormat`: the structured output a request asks for.

/// The structured output a request asks for: OpenAI's `response_format`
/// (`{"type": "json_object"}`, `{"type": "json_schema", "json_schema":
/// {"name", "schema", "strict"}}`) or llama-server's `json_schema` and
/// `grammar` fields.
///
/// Reading it needs no grammar engine; building the constraint stage from
/// it ([`ResponseFormat::grammar`],
/// [`OpenAiParams::constraint`](super::OpenAiParams::constraint)) needs the
/// `structured` feature.
///
/// | request | variant |
/// |---|---|
/// | `"response_format": {"type": "text"}` | [`ResponseFormat::Text`] (no constraint) |
/// | `"response_format": {"type": "json_object"}` | [`ResponseFormat::JsonObject`] |
/// | `"response_format": {"type": "json_object", "schema": S}` (llama-server) | [`ResponseFormat::JsonSchema`] |
/// | `"response_format": {"type": "json_schema", "json_schema": {"schema": S, "strict": b, "name": n}}` | [`ResponseFormat::JsonSchema`] |
/// | `"json_schema": S` (llama-server) | [`ResponseFormat::JsonSchema`] |
/// | `"grammar": G` (llama-server) | [`ResponseFormat::Grammar`] |
///
/// `strict` is recorded but changes nothing: the output always follows the
/// schema exactly (a schema the engine cannot enforce exactly is an error,
/// never a silent relaxation). A request with more than one of
/// `response_format` (other than text), `json_schema` and `grammar` is an
/// error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text: no constraint.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid against a schema.
    JsonSchema {
        /// The schema, as compact JSON text.
        schema: String,
        /// The schema's `name` (OpenAI), if given.
        name: Option<String>,
        /// OpenAI's `strict` flag, if given.
        strict: Option<bool>,
    },
    /// llama-server's `grammar` field: a GBNF grammar (llama.cpp's
    /// format), or llguidance's Lark-like syntax when the text starts with
    /// `%llguidance`, as llama-server reads it (see
    /// [`Grammar::gbnf`](crate::structured::Grammar::gbnf)).
    Grammar(String),
}

#[cfg(feature = "structured")]
impl ResponseFormat {
    /// The grammar this format asks for (`None` for text).
    ///
    /// # Errors
    ///
    /// [`StructuredError::InvalidSchema`](crate::structured::StructuredError::InvalidSchema)
    /// when the schema text is not JSON,
    /// [`StructuredError::InvalidGbnf`](crate::structured::StructuredError::InvalidGbnf)
    /// when the grammar is malformed GBNF.
    pub fn grammar(
        &self,
    ) -> Result<Option<crate::structured::Grammar>, crate::structured::StructuredError> {
        use crate::structured::Grammar;
        Ok(match self {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(Grammar::json_object()),
            ResponseFormat::JsonSchema { schema, .. } => Some(Grammar::json_schema_str(schema)?),
            ResponseFormat::Grammar(text) => Some(Grammar::gbnf(text)?),
        })
    }
}

#[cfg(feature = "serde")]
pub(super) mod read {
    use super::super::json::Value;
    use super::ResponseFormat;
    use crate::Error;

    const EXPECTED: &str =
        "an object {\"type\": \"text\" | \"json_object\" | \"json_schema\", ...}";

    /// The loose value as JSON text (objects keep their key order).
    pub(crate) fn to_json(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(x), _) => x.into(),
                (_, Ok(x)) => x.into(),
                _ => serde_json::Number::from_f64(*i as f64)
                    .map_or(serde_json::Value::Null, Into::into),
            },
            Value::Float(x) => {
                serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into)
            }
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => items.iter().map(to_json).collect(),
            Value::Object(entries) => serde_json::Value::Object(
                entries.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
            ),
        }
    }

    fn field<'a>(entries: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
        entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn schema_text(v: &Value, name: &'static str) -> Result<String, Error> {
        match v {
            Value::Object(_) | Value::Bool(_) => Ok(to_json(v).to_string()),
            _ => Err(Error::invalid(name, "a JSON schema (an object)", v)),
        }
    }

    /// `response_format`.
    pub(crate) fn response_format(v: &Value) -> Result<Option<ResponseFormat>, Error> {
        let name = "response_format";
        let entries = match v {
            Value::Null => return Ok(None),
            Value::Object(entries) => entries,
            _ => return Err(Error::invalid(name, EXPECTED, v)),
        };
        let kind = match field(entries, "type") {
            Some(Value::Str(s)) => s.as_str(),
            Some(other) => return Err(Error::invalid("response_format.type", EXPECTED, other)),
            None => return Err(Error::invalid(name, EXPECTED, "an object without \"type\"")),
        };
        Ok(Some(match kind {
            "text" => ResponseFormat::Text,
            "json_object" => match field(entries, "schema") {
                Some(s) if !s.is_null() => ResponseFormat::JsonSchema {
                    schema: schema_text(s, "response_format.schema")?,
                    name: None,
                    strict: None,
                },
                _ => ResponseFormat::JsonObject,
            },
            "json_schema" => {
                let Some(Value::Object(spec)) = field(entries, "json_schema") else {
                    return Err(Error::invalid(
                        "response_format.json_schema",
                        "an object {\"schema\": ..., \"name\": ..., \"strict\": ...}",
                        field(entries, "json_schema").map_or("nothing".into(), |v| v.to_string()),
                    ));
                };
                let schema = match field(spec, "schema") {
                    Some(s) => schema_text(s, "response_format.json_schema.schema")?,
                    // OpenAI's default: any JSON object.
                    None => "{\"type\":\"object\"}".into(),
                };
                let name = match field(spec, "name") {
                    Some(Value::Str(s)) => Some(s.clone()),
                    _ => None,
                };
                let strict = match field(spec, "strict") {
                    Some(Value::Bool(b)) => Some(*b),
                    None | Some(Value::Null) => None,
                    Some(other) => {
                        return Err(Error::invalid(
                            "response_format.json_schema.strict",
                            "a boolean",
                            other,
                        ));
                    }
                };
                ResponseFormat::JsonSchema { schema, name, strict }
            }
            other => {
                return Err(Error::invalid("response_format.type", EXPECTED, format!("{other:?}")));
            }
        }))
    }

    /// llama-server's `json_schema`.
    pub(crate) fn json_schema(v: &Value) -> Result<Option<ResponseFormat>, Error> {
        if v.is_null() {
            return Ok(None);
        }
        Ok(Some(ResponseFormat::JsonSchema {
            schema: schema_text(v, "json_schema")?,
            name: None,
            strict: None,
        }))
    }

    /// llama-server's `grammar` (an empty string is no grammar).
    pub(crate) fn grammar(v: &Value) -> Result<Option<ResponseFormat>, Error> {
        match v {
            Value::Null => Ok(None),
            Value::Str(s) if s.trim().is_empty() => Ok(None),
            Value::Str(s) => Ok(Some(ResponseFormat::Grammar(s.clone()))),
            _ => Err(Error::invalid("grammar", "a string", v)),
        }
    }

    /// The one structured format of a request, from its three fields.
    pub(crate) fn merge(
        current: Option<ResponseFormat>,
        new: Option<ResponseFormat>,
    ) -> Result<Option<ResponseFormat>, Error> {
        match (current, new) {
            (None | Some(ResponseFormat::Text), n) => Ok(n),
            (c, None | Some(ResponseFormat::Text)) => Ok(c),
            (Some(_), Some(_)) => Err(Error::invalid(
                "response_format",
                "the only structured-output field (not with json_schema or grammar)",
                "two structured-output fields",
            )),
        }
    }
}
