//! `eos_token_id`: one id or a list of ids.

use std::fmt;

use crate::TokenId;

/// The `eos_token_id` of a `generation_config.json`: a single id (GPT-2:
/// `50256`) or a list (Llama 3: `[128001, 128009]`).
///
/// The form is kept, so a configuration written back is written as it was
/// read. Everything that uses the ids goes through [`EosTokenId::ids`].
///
/// # Example
///
/// ```
/// use decoding::config::EosTokenId;
///
/// assert_eq!(EosTokenId::One(50256).ids(), [50256]);
/// assert_eq!(EosTokenId::Many(vec![128001, 128009]).ids(), [128001, 128009]);
/// assert_eq!(EosTokenId::from(vec![2, 3]).to_string(), "[2, 3]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EosTokenId {
    /// One end-of-sequence id.
    One(TokenId),
    /// Several end-of-sequence ids (any of them ends a sequence).
    Many(Vec<TokenId>),
}

impl EosTokenId {
    /// The ids, in the order given.
    pub fn ids(&self) -> &[TokenId] {
        match self {
            EosTokenId::One(id) => std::slice::from_ref(id),
            EosTokenId::Many(ids) => ids,
        }
    }
}

impl From<TokenId> for EosTokenId {
    fn from(id: TokenId) -> Self {
        EosTokenId::One(id)
    }
}

impl From<Vec<TokenId>> for EosTokenId {
    fn from(ids: Vec<TokenId>) -> Self {
        EosTokenId::Many(ids)
    }
}

/// Prints the JSON spelling: `2` or `[2, 3]`.
impl fmt::Display for EosTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EosTokenId::One(id) => write!(f, "{id}"),
            EosTokenId::Many(ids) => write!(f, "{ids:?}"),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for EosTokenId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EosTokenId::One(id) => serializer.serialize_u32(*id),
            EosTokenId::Many(ids) => ids.serialize(serializer),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for EosTokenId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = super::json::Value::deserialize(deserializer)?;
        super::json::eos(&value, "eos_token_id").map_err(serde::de::Error::custom)?.ok_or_else(
            || {
                serde::de::Error::custom(
                    "eos_token_id must be a token id or a list of ids, got null",
                )
            },
        )
    }
}
