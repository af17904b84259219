//! The chat template: GPT-2 was never trained on conversations, so a chat
//! is rendered as a plain-text transcript that it can continue.
//!
//! ```text
//! {system and developer messages, each followed by a blank line}
//! User: {user message}
//! Assistant: {assistant message}
//! User: {user message}
//! Assistant:
//! ```
//!
//! Each message is one line prefixed by its speaker (`User: ` or
//! `Assistant: `); the prompt ends with `Assistant:` and the reply is the
//! model's continuation (usually starting with a space). The stop string
//! [`TURN_STOP`] (`"\nUser:"`) is added to the request's own stop strings so
//! the reply ends where the model starts the user's next turn.

use serde_json::Value;

use crate::error::ApiError;

/// The stop string every chat request gets: the start of the next user
/// turn.
pub const TURN_STOP: &str = "\nUser:";

/// Renders `messages` (the request's list) into the prompt text.
///
/// # Errors
///
/// `messages` missing, empty, or not a list of `{role, content}` objects with
/// a known role (`system`, `developer`, `user`, `assistant`) and text
/// content (a string, or a list of `{"type": "text", "text": ...}` parts).
pub fn render(messages: Option<&Value>) -> Result<String, ApiError> {
    let Some(messages) = messages else {
        return Err(ApiError::invalid(Some("messages"), "`messages` is required"));
    };
    let list = messages
        .as_array()
        .ok_or_else(|| ApiError::wrong_type("messages", "a list of message objects"))?;
    if list.is_empty() {
        return Err(ApiError::invalid(Some("messages"), "`messages` must not be empty"));
    }
    let mut out = String::new();
    for (i, m) in list.iter().enumerate() {
        let param = format!("messages[{i}]");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::wrong_type(&format!("{param}.role"), "a string"))?;
        let content = content_text(m.get("content"), &format!("{param}.content"))?;
        match role {
            "system" | "developer" => {
                out.push_str(&content);
                out.push_str("\n\n");
            }
            "user" => {
                out.push_str("User: ");
                out.push_str(&content);
                out.push('\n');
            }
            "assistant" => {
                out.push_str("Assistant: ");
                out.push_str(&content);
                out.push('\n');
            }
            other => {
                return Err(ApiError::unsupported(
                    &format!("{param}.role"),
                    format!(
                        "role `{other}` is not supported (system, developer, user and assistant are)"
                    ),
                ));
            }
        }
    }
    out.push_str("Assistant:");
    Ok(out)
}

/// A message's text: a string, or the concatenated text parts of a list.
fn content_text(content: Option<&Value>, param: &str) -> Result<String, ApiError> {
    match content {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Ok(String::new()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(s))) => text.push_str(s),
                    _ => {
                        return Err(ApiError::unsupported(
                            param,
                            "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(ApiError::wrong_type(param, "a string or a list of text parts")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conversation_renders_as_a_transcript() {
        let m = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "user", "content": "Bye"}
        ]);
        assert_eq!(
            render(Some(&m)).unwrap(),
            "Be brief.\n\nUser: Hi\nAssistant: Hello\nUser: Bye\nAssistant:"
        );
    }

    #[test]
    fn bad_messages_name_the_field() {
        for (m, param) in [
            (json!([]), "messages"),
            (json!("hi"), "messages"),
            (json!([{"content": "x"}]), "messages[0].role"),
            (json!([{"role": "tool", "content": "x"}]), "messages[0].role"),
            (json!([{"role": "user", "content": 5}]), "messages[0].content"),
            (json!([{"role": "user", "content": [{"type": "image_url"}]}]), "messages[0].content"),
        ] {
            let e = render(Some(&m)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{m}");
        }
        assert_eq!(render(None).unwrap_err().param.as_deref(), Some("messages"));
    }
}
