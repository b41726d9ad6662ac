//! The bodies of the OpenAI calls the gateway takes, and their checks: a parameter it does not
//! honour, or one out of OpenAI's range, is refused by name with OpenAI's error object before
//! anything is paid, never silently dropped or clamped.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub(super) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Self {
        Self { status, kind, message: message.to_string(), param: None, code: None }
    }

    fn invalid(param: &str, message: impl std::fmt::Display) -> Self {
        Self { param: Some(param.to_string()), ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "message": self.message, "type": self.kind, "param": self.param, "code": self.code } });
        (self.status, Json(body)).into_response()
    }
}

/// What both calls take besides the model and the prompt.
#[derive(Deserialize)]
pub(super) struct Options {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    #[serde(default)]
    pub stream: bool,
    /// Every other parameter, refused unless it asks for what the gateway does anyway.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Deserialize)]
pub(super) struct CompletionBody {
    pub model: String,
    pub prompt: String,
    #[serde(flatten)]
    pub options: Options,
}

#[derive(Deserialize)]
pub(super) struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Deserialize)]
pub(super) struct ChatBody {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_completion_tokens: Option<u32>,
    #[serde(flatten)]
    pub options: Options,
}

/// Sampling as a provider runs it, in thousandths, checked against OpenAI's ranges.
#[derive(Debug, PartialEq)]
pub(super) struct Sampling {
    pub temperature_milli: u32,
    pub top_p_milli: u32,
}

/// Checks `temperature` (0 to 2, default 0: greedy) and `top_p` (0 to 1, default 1: off).
pub(super) fn sampling(temperature: Option<f64>, top_p: Option<f64>) -> Result<Sampling, ApiError> {
    let milli = |name: &str, value: Option<f64>, default: f64, max: f64| {
        let value = value.unwrap_or(default);
        if !(0.0..=max).contains(&value) {
            return Err(ApiError::invalid(name, format!("{value} is not a valid {name}: it must be between 0 and {max}")));
        }
        Ok((value * 1000.0).round() as u32)
    };
    Ok(Sampling { temperature_milli: milli("temperature", temperature, 0.0, 2.0)?, top_p_milli: milli("top_p", top_p, 1.0, 1.0)? })
}

/// Parameters that change nothing when sent with the value given here (the one the gateway
/// always uses); any other value of them, and any other parameter, is refused.
const NEUTRAL: &[(&str, Neutral)] = &[
    ("n", Neutral::Is(1.0)),
    ("presence_penalty", Neutral::Is(0.0)),
    ("frequency_penalty", Neutral::Is(0.0)),
    ("logprobs", Neutral::False),
    ("user", Neutral::Any),
    ("stream_options", Neutral::Any),
];

enum Neutral {
    Is(f64),
    False,
    Any,
}

/// Refuses the first parameter of `other` (those the body does not name) that would ask for
/// something the gateway does not do. A `null` is as good as absent.
pub(super) fn refuse_unsupported(other: &Map<String, Value>) -> Result<(), ApiError> {
    for (name, value) in other.iter().filter(|(_, v)| !v.is_null()) {
        let neutral = NEUTRAL.iter().find(|(known, _)| known == name).is_some_and(|(_, neutral)| match neutral {
            Neutral::Is(expected) => value.as_f64() == Some(*expected),
            Neutral::False => value == &Value::Bool(false),
            Neutral::Any => true,
        });
        if !neutral {
            let what = match NEUTRAL.iter().any(|(known, _)| known == name) {
                true => format!("{name} = {value} is not supported by this gateway"),
                false => format!("the parameter {name} is not supported by this gateway"),
            };
            return Err(ApiError::invalid(name, format!("{what}: each call gets one answer, sampled by temperature and top_p alone")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(result: Result<impl std::fmt::Debug, ApiError>) -> Option<String> {
        result.expect_err("refused").param
    }

    #[test]
    fn sampling_out_of_openais_range_is_refused_by_name_not_clamped() {
        assert_eq!(sampling(None, None).unwrap(), Sampling { temperature_milli: 0, top_p_milli: 1000 });
        assert_eq!(sampling(Some(0.7), Some(0.95)).unwrap(), Sampling { temperature_milli: 700, top_p_milli: 950 });
        assert_eq!(sampling(Some(2.0), Some(0.0)).unwrap(), Sampling { temperature_milli: 2000, top_p_milli: 0 });
        assert_eq!(param(sampling(None, Some(7.0))).as_deref(), Some("top_p"));
        assert_eq!(param(sampling(Some(2.5), None)).as_deref(), Some("temperature"));
        assert_eq!(param(sampling(Some(-0.1), None)).as_deref(), Some("temperature"));
        assert_eq!(param(sampling(Some(f64::NAN), None)).as_deref(), Some("temperature"));
    }

    #[test]
    fn only_the_parameters_a_body_does_not_name_are_left_to_check() {
        let chat = json!({ "model": "m", "messages": [], "max_completion_tokens": 4, "temperature": 0.5, "stream": true, "n": 2, "seed": 7 });
        let chat: ChatBody = serde_json::from_value(chat).unwrap();
        assert_eq!((chat.max_completion_tokens, chat.options.temperature, chat.options.stream), (Some(4), Some(0.5), true));
        assert_eq!(chat.options.other.keys().collect::<Vec<_>>(), ["n", "seed"]);
        let completion: CompletionBody = serde_json::from_value(json!({ "model": "m", "prompt": "p", "max_tokens": 3, "echo": true })).unwrap();
        assert_eq!((completion.options.max_tokens, completion.options.other.keys().map(String::as_str).collect::<Vec<_>>()), (Some(3), vec!["echo"]));
    }

    #[test]
    fn parameters_the_gateway_does_not_honour_are_refused_by_name() {
        let body = |value: Value| value.as_object().unwrap().clone();
        assert!(refuse_unsupported(&body(json!({}))).is_ok());
        let neutral = json!({ "n": 1, "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": false, "user": "u", "stop": null });
        assert!(refuse_unsupported(&body(neutral)).is_ok());
        for (refused, name) in [
            (json!({ "n": 2 }), "n"),
            (json!({ "presence_penalty": 0.5 }), "presence_penalty"),
            (json!({ "logprobs": true }), "logprobs"),
            (json!({ "stop": ["\n"] }), "stop"),
            (json!({ "seed": 7 }), "seed"),
            (json!({ "tools": [] }), "tools"),
            (json!({ "response_format": { "type": "json_object" } }), "response_format"),
        ] {
            let error = refuse_unsupported(&body(refused.clone())).expect_err("refused");
            assert_eq!((error.status, error.param.as_deref()), (StatusCode::BAD_REQUEST, Some(name)), "{refused}");
            assert!(error.message.contains(name), "{}", error.message);
        }
    }
}
