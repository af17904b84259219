//! `Grammar`: what a constrained output must look like.

use llguidance::api::TopLevelGrammar;
use serde_json::Value;

use super::StructuredError;

/// The shape a constrained output must have: a JSON Schema, a regular
/// expression, a Lark-like context-free grammar, or one of a fixed set of
/// strings.
///
/// A `Grammar` is only a description; [`TokenVocabulary::constraint`]
/// compiles it for a tokenizer, and reports every problem of the grammar
/// there (malformed, unsupported or unsatisfiable) as a
/// [`StructuredError`].
///
/// # Syntax
///
/// - **JSON Schema**: the large subset llguidance implements (`$ref` and
///   `$defs`/`definitions`, `enum`, `const`, `anyOf`, `allOf`, `pattern`,
///   `format`, `minLength`/`maxLength`, `minItems`/`maxItems`,
///   `minimum`/`maximum`, `required`, `additionalProperties`, `oneOf` of
///   disjoint schemas, ...). The output is compact JSON (no whitespace
///   between tokens, so a model cannot fill it with blank lines; a schema
///   with llguidance's `"x-guidance": {"whitespace_flexible": true}` allows
///   free whitespace); properties come in the schema's order. Keywords the
///   engine does not implement are [`StructuredError::Unsupported`] (never
///   silently ignored).
/// - **Regex**: Rust `regex` syntax, matched against the whole output
///   (anchored at both ends).
/// - **Lark**: llguidance's Lark-like syntax (`start: ...` rules, string
///   literals, `/regex/` terminals, `%json {...}` schema embedding).
/// - **GBNF**: llama.cpp's grammar format (`root ::= ...`), translated to
///   the Lark-like syntax when the `Grammar` is made (see
///   [`Grammar::gbnf`]).
/// - **Choice**: exactly one of the given strings.
///
/// # Example
///
/// ```
/// use decoding::structured::Grammar;
///
/// let schema = Grammar::json_schema_str(r#"{"type": "object", "properties": {"n": {"type": "integer"}}}"#)?;
/// let date = Grammar::regex(r"\d{4}-\d{2}-\d{2}")?;
/// let yes_no = Grammar::choice(["yes", "no"])?;
/// let list = Grammar::lark(r#"start: "[" item ("," item)* "]"
/// item: /[0-9]+/"#);
/// let answer = Grammar::gbnf(r#"root ::= ("yes" | "no") ".""#)?;
/// assert!(Grammar::regex("").is_err());
/// # let _ = (schema, date, yes_no, list, answer);
/// # Ok::<(), decoding::structured::StructuredError>(())
/// ```
///
/// [`TokenVocabulary::constraint`]: super::TokenVocabulary::constraint
#[derive(Debug, Clone, PartialEq)]
pub struct Grammar {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    JsonSchema(Value),
    Regex(String),
    Lark(String),
    Choice(Vec<String>),
}

impl Grammar {
    /// Outputs valid against a JSON Schema.
    pub fn json_schema(schema: Value) -> Self {
        Grammar { kind: Kind::JsonSchema(schema) }
    }

    /// [`Grammar::json_schema`] from the schema's JSON text.
    ///
    /// # Errors
    ///
    /// [`StructuredError::InvalidSchema`] when `text` is not JSON.
    pub fn json_schema_str(text: &str) -> Result<Self, StructuredError> {
        let schema = serde_json::from_str(text)
            .map_err(|e| StructuredError::InvalidSchema { message: e.to_string() })?;
        Ok(Self::json_schema(schema))
    }

    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    pub fn json_object() -> Self {
        Self::json_schema(serde_json::json!({"type": "object"}))
    }

    /// Outputs matching a regular expression as a whole.
    ///
    /// # Errors
    ///
    /// [`StructuredError::EmptyRegex`] for an empty pattern (syntax errors
    /// are found when the grammar is compiled).
    pub fn regex(pattern: impl Into<String>) -> Result<Self, StructuredError> {
        let pattern = pattern.into();
        if pattern.is_empty() {
            return Err(StructuredError::EmptyRegex);
        }
        Ok(Grammar { kind: Kind::Regex(pattern) })
    }

    /// Outputs of a Lark-like context-free grammar (llguidance's syntax).
    pub fn lark(grammar: impl Into<String>) -> Self {
        Grammar { kind: Kind::Lark(grammar.into()) }
    }

    /// Outputs of a GBNF grammar (llama.cpp's format; llama-server's
    /// `grammar` field), translated to the Lark-like syntax here by
    /// [`gbnf_to_lark`](super::gbnf_to_lark), whose docs give the syntax
    /// read and the translation's exact semantics.
    ///
    /// A text that starts with `%llguidance` (after blanks) is already
    /// llguidance's Lark-like syntax, as in llama.cpp, and is taken as
    /// [`Grammar::lark`] takes it.
    ///
    /// # Errors
    ///
    /// [`StructuredError::InvalidGbnf`] with the line and column of the
    /// first problem (a malformed rule, an undefined rule, no `root`, ...).
    ///
    /// # Example
    ///
    /// ```
    /// use decoding::structured::{GbnfErrorKind, Grammar, StructuredError};
    ///
    /// let list = Grammar::gbnf(r#"
    /// root ::= "[" (item ("," item)*)? "]"
    /// item ::= [0-9]+
    /// "#)?;
    /// let err = Grammar::gbnf("root ::= item").unwrap_err();
    /// assert!(matches!(
    ///     err,
    ///     StructuredError::InvalidGbnf { line: 1, column: 10, kind: GbnfErrorKind::UndefinedRule(_) }
    /// ));
    /// # let _ = list;
    /// # Ok::<(), StructuredError>(())
    /// ```
    pub fn gbnf(text: &str) -> Result<Self, StructuredError> {
        if text.trim_start().starts_with("%llguidance") {
            return Ok(Self::lark(text));
        }
        Ok(Self::lark(super::gbnf_to_lark(text)?))
    }

    /// Exactly one of `choices`.
    ///
    /// # Errors
    ///
    /// [`StructuredError::EmptyChoice`] when there is no choice.
    pub fn choice<I, S>(choices: I) -> Result<Self, StructuredError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let choices: Vec<String> = choices.into_iter().map(Into::into).collect();
        if choices.is_empty() {
            return Err(StructuredError::EmptyChoice);
        }
        Ok(Grammar { kind: Kind::Choice(choices) })
    }

    /// The engine's form of the grammar.
    pub(super) fn to_engine(&self) -> TopLevelGrammar {
        match &self.kind {
            Kind::JsonSchema(schema) => {
                let mut schema = schema.clone();
                // Compact JSON unless the schema asks otherwise: with free
                // whitespace a model can fill the output with blank lines.
                if let Some(obj) = schema.as_object_mut() {
                    obj.entry("x-guidance")
                        .or_insert_with(|| serde_json::json!({"whitespace_flexible": false}));
                }
                TopLevelGrammar::from_json_schema(schema)
            }
            Kind::Regex(pattern) => TopLevelGrammar::from_regex(pattern),
            Kind::Lark(text) => TopLevelGrammar::from_lark(text.clone()),
            Kind::Choice(choices) => {
                let alternatives: Vec<String> = choices.iter().map(|c| escape(c)).collect();
                TopLevelGrammar::from_regex(&alternatives.join("|"))
            }
        }
    }

    /// The typed error for the engine's compile-time `message`.
    pub(super) fn classify(&self, message: String) -> StructuredError {
        let unsupported = ["Unimplemented", "not supported", "unsupported"];
        if message.contains("Unsatisfiable") || message.contains("unsatisfiable") {
            return StructuredError::Unsatisfiable { message };
        }
        match self.kind {
            Kind::JsonSchema(_) if unsupported.iter().any(|u| message.contains(u)) => {
                StructuredError::Unsupported { message }
            }
            Kind::JsonSchema(_) => StructuredError::InvalidSchema { message },
            Kind::Regex(_) => StructuredError::InvalidRegex { message },
            Kind::Lark(_) | Kind::Choice(_) => StructuredError::InvalidGrammar { message },
        }
    }
}

/// `text` as a regex that matches exactly it.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert_eq!(Grammar::regex(""), Err(StructuredError::EmptyRegex));
        assert_eq!(Grammar::choice(Vec::<String>::new()), Err(StructuredError::EmptyChoice));
        assert!(matches!(
            Grammar::json_schema_str("{\"type\": "),
            Err(StructuredError::InvalidSchema { .. })
        ));
    }

    #[test]
    fn choices_are_escaped_literals() {
        assert_eq!(escape("a.b|c"), r"(a\.b\|c)");
        assert_eq!(escape("(x)"), r"(\(x\))");
    }
}
