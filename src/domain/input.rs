//! Request input: flexible ids, agent references, optional-vs-null fields,
//! typed parsing that names the offending field, query strings.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// An integer id, sent as a number or a numeric string (the SDK sends both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub i64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                i64::try_from(v)
                    .map(Id)
                    .map_err(|_| E::custom("id out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
                if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(Id(v as i64))
                } else {
                    Err(E::custom("expected an integer id"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                v.trim()
                    .parse()
                    .map(Id)
                    .map_err(|_| E::custom(format!("expected an integer id, got {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A schema that is an int64 or a string matching `pattern`.
fn integer_or_string(pattern: &str) -> utoipa::openapi::schema::OneOfBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    use utoipa::openapi::{KnownFormat, SchemaFormat};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern)),
        )
}

/// In the OpenAPI document: an integer, or a string of one.
impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        integer_or_string(r"^\s*-?[0-9]{1,18}\s*$")
            .description(Some("An integer id: a number or a numeric string."))
            .into()
    }
}

impl utoipa::ToSchema for Id {}

/// An agent named by id (number or numeric string) or by unique name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRef {
    Id(i64),
    Name(String),
}

impl AgentRef {
    pub fn parse(s: &str) -> AgentRef {
        match s.trim().parse::<i64>() {
            Ok(id) => AgentRef::Id(id),
            Err(_) => AgentRef::Name(s.trim().to_string()),
        }
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentRef::Id(id) => write!(f, "{id}"),
            AgentRef::Name(n) => write!(f, "{n:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for AgentRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AgentRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an agent id or name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AgentRef, E> {
                Ok(AgentRef::Id(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AgentRef, E> {
                i64::try_from(v)
                    .map(AgentRef::Id)
                    .map_err(|_| E::custom("id out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AgentRef, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("agent reference must not be empty"));
                }
                Ok(AgentRef::parse(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// In the OpenAPI document: an agent's id (an integer) or its name.
impl utoipa::PartialSchema for AgentRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        integer_or_string(r"\S")
            .description(Some(
                "An agent: its id (a number or numeric string) or its unique name.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for AgentRef {}

/// For fields where "absent" and "null" differ (PUT): `None` = absent,
/// `Some(None)` = set to null.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Converts a parsed body into `T`, naming the field that did not fit.
pub fn parse<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        let reason = e.into_inner().to_string();
        Error::validation(field, reason)
    })
}

/// Parses a body that must be a JSON object into `T`.
pub fn object<T: DeserializeOwned>(body: Value) -> Result<T> {
    require_object(&body)?;
    parse(body)
}

/// Fields that must not appear in a body.
pub fn forbid(body: &Value, fields: &[&str], why: &str) -> Result<()> {
    if let Value::Object(map) = body {
        for f in fields {
            if map.contains_key(*f) {
                return Err(Error::bad_request(format!(
                    "field '{f}' cannot be set here: {why}"
                )));
            }
        }
    }
    Ok(())
}

pub fn require_object(body: &Value) -> Result<()> {
    if body.is_object() {
        Ok(())
    } else {
        Err(Error::validation("body", "expected a JSON object"))
    }
}

/// Trims nothing: strings are stored verbatim. Checks length in characters.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

pub fn check_non_blank(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::validation(field, "must not be blank"));
    }
    check_len(field, value, max)
}

/// A parsed query string; keys may repeat (`labels=a&labels=b`).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query_string: &str) -> Query {
        Query {
            pairs: url::form_urlencoded::parse(query_string.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The query a JSON object of arguments stands for (an MCP tool's
    /// `list_tasks` arguments): arrays repeat their key, booleans and
    /// numbers are written as text, nulls are left out.
    pub fn from_object(args: &serde_json::Map<String, serde_json::Value>) -> Query {
        use serde_json::Value;
        let mut pairs = Vec::new();
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        for (k, v) in args {
            match v {
                Value::Array(items) => {
                    pairs.extend(items.iter().filter_map(text).map(|t| (k.clone(), t)))
                }
                other => pairs.extend(text(other).map(|t| (k.clone(), t))),
            }
        }
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| Error::validation(key, format!("expected an integer, got {v:?}")))
            })
            .transpose()
    }

    pub fn float(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| Error::validation(key, format!("expected a number, got {v:?}")))
            })
            .transpose()
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(Error::validation(
                    key,
                    format!("expected true or false, got {v:?}"),
                )),
            })
            .transpose()
    }

    /// The query without the keys `drop`, plus `key=value` (for building
    /// `Link: rel="next"`).
    pub fn with(&self, key: &str, value: &str, drop: &[&str]) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self
            .pairs
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
        {
            ser.append_pair(k, v);
        }
        ser.append_pair(key, value);
        ser.finish()
    }
}

/// `limit` (default and max 1000) and `offset` of list endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub const MAX: i64 = 1000;

    pub fn from_query(q: &Query) -> Result<Page> {
        let limit = q.int("limit")?.unwrap_or(Self::MAX);
        if !(1..=Self::MAX).contains(&limit) {
            return Err(Error::validation("limit", "must be between 1 and 1000"));
        }
        let offset = q.int("offset")?.unwrap_or(0);
        if offset < 0 {
            return Err(Error::validation("offset", "must not be negative"));
        }
        Ok(Page { limit, offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct T {
        #[allow(dead_code)]
        priority: Option<i64>,
        id: Option<Id>,
        agent: Option<AgentRef>,
    }

    #[test]
    fn ids_accept_numbers_and_numeric_strings() {
        let t: T = parse(json!({"id": "12", "agent": "7"})).unwrap();
        assert_eq!(t.id, Some(Id(12)));
        assert_eq!(t.agent, Some(AgentRef::Id(7)));
        let t: T = parse(json!({"agent": "research-agent"})).unwrap();
        assert_eq!(t.agent, Some(AgentRef::Name("research-agent".into())));
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        match parse::<T>(json!({"priority": "high"})) {
            Err(Error::Validation { field, .. }) => assert_eq!(field, "priority"),
            other => panic!("{other:?}"),
        }
    }
}
