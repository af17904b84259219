//! Errors in the OpenAI shape: `{"error": {"message", "type", "param", "code"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error response: the HTTP status and the OpenAI error object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A sentence for the user.
    pub message: String,
    /// `invalid_request_error`, `server_error`, ...
    pub kind: &'static str,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// A machine-readable code, when there is one.
    pub code: Option<&'static str>,
}

impl ApiError {
    /// A `400 invalid_request_error` about `param`.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code: None,
        }
    }

    /// The same error with `code`.
    #[must_use]
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// A field of the wrong type.
    pub fn wrong_type(param: &str, expected: &str) -> Self {
        Self::invalid(Some(param), format!("`{param}` must be {expected}"))
    }

    /// A feature this server does not offer (400, code `unsupported`).
    pub fn unsupported(param: &str, message: impl Into<String>) -> Self {
        Self::invalid(Some(param), message).with_code("unsupported")
    }

    /// `404 model_not_found`.
    pub fn unknown_model(name: &str, served: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{name}` does not exist; this server serves `{served}`"),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
    }

    /// `503`: the queue is full.
    pub fn overloaded() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "The server is overloaded (its request queue is full); retry later".into(),
            kind: "server_error",
            param: None,
            code: Some("server_overloaded"),
        }
    }

    /// `500`: something failed on the server's side.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    /// `404` for a path the server does not have.
    pub fn not_found(path: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("No route for `{path}`"),
            kind: "invalid_request_error",
            param: None,
            code: Some("not_found"),
        }
    }

    /// The error object, `{"error": {...}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl From<decoding::Error> for ApiError {
    /// A parameter error names the parameter; anything else is a 400 without
    /// one.
    fn from(e: decoding::Error) -> Self {
        let param = match &e {
            decoding::Error::InvalidParameter { name, .. } => Some(*name),
            _ => None,
        };
        ApiError::invalid(param, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
