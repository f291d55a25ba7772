//! Reading a provider's answer: our own serde types for the parts of Anthropic Messages and
//! OpenAI Chat Completions responses we use (tool calls, stop reason, token usage).

use serde::Deserialize;
use serde_json::Value;

use crate::request::Provider;

/// The answer, in one shape for both providers.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReply {
    /// The model that answered, as the provider names it.
    pub model: String,
    pub tool_calls: Vec<ToolCall>,
    /// Any prose the model wrote.
    pub text: String,
    /// `tool_use`, `end_turn`, `max_tokens` (Anthropic); `tool_calls`, `stop`, `length` (OpenAI).
    pub stop_reason: String,
    pub usage: Usage,
}

/// One tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments, or why they are not a JSON value (OpenAI sends them as a string).
    pub input: Result<Value, String>,
}

/// Tokens billed for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Input tokens, including cache writes and reads (billed at the input price here).
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The body ends in the middle of a JSON document.
    #[error(
        "the provider's answer is cut off after {bytes} bytes (incomplete JSON); the connection or a proxy ended it early"
    )]
    Truncated { bytes: usize },
    /// The body is not JSON at all.
    #[error("the provider's answer is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not the shape of this provider's answer.
    #[error("the provider's answer does not have the {provider} response shape: {problem}")]
    Shape { provider: String, problem: String },
}

#[derive(Deserialize)]
struct AnthropicMessage {
    model: String,
    content: Vec<AnthropicBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AnthropicBlock {
    Text {
        text: String,
    },
    ToolUse {
        name: String,
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct AnthropicUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OpenAiCompletion {
    model: String,
    choices: Vec<OpenAiChoice>,
    usage: OpenAiUsage,
}

#[derive(Deserialize)]
struct OpenAiChoice {
    message: OpenAiMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<OpenAiToolCall>>,
}

#[derive(Deserialize)]
struct OpenAiToolCall {
    function: OpenAiFunction,
}

#[derive(Deserialize)]
struct OpenAiFunction {
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// Reads a successful (HTTP 2xx) answer body.
pub fn parse_reply(provider: Provider, body: &[u8]) -> Result<ParsedReply, ReplyError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        if err.is_eof() {
            ReplyError::Truncated { bytes: body.len() }
        } else {
            ReplyError::NotJson(err.to_string())
        }
    })?;
    let shape = |err: serde_json::Error| ReplyError::Shape {
        provider: provider.to_string(),
        problem: err.to_string(),
    };
    match provider {
        Provider::Anthropic => {
            let message: AnthropicMessage = serde_json::from_value(value).map_err(shape)?;
            let mut text = String::new();
            let mut tool_calls = Vec::new();
            for block in message.content {
                match block {
                    AnthropicBlock::Text { text: t } => text.push_str(&t),
                    AnthropicBlock::ToolUse { name, input } => tool_calls.push(ToolCall {
                        name,
                        input: Ok(input),
                    }),
                    AnthropicBlock::Other => {}
                }
            }
            let usage = &message.usage;
            Ok(ParsedReply {
                model: message.model,
                tool_calls,
                text,
                stop_reason: message.stop_reason.unwrap_or_default(),
                usage: Usage {
                    input_tokens: usage.input_tokens
                        + usage.cache_creation_input_tokens.unwrap_or(0)
                        + usage.cache_read_input_tokens.unwrap_or(0),
                    output_tokens: usage.output_tokens,
                },
            })
        }
        Provider::OpenAi => {
            let completion: OpenAiCompletion = serde_json::from_value(value).map_err(shape)?;
            let usage = Usage {
                input_tokens: completion.usage.prompt_tokens,
                output_tokens: completion.usage.completion_tokens,
            };
            let Some(choice) = completion.choices.into_iter().next() else {
                return Err(ReplyError::Shape {
                    provider: provider.to_string(),
                    problem: "no choices".to_owned(),
                });
            };
            let tool_calls = choice
                .message
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(|call| ToolCall {
                    name: call.function.name,
                    input: serde_json::from_str(&call.function.arguments).map_err(|err| {
                        format!(
                            "the tool call's arguments are not JSON ({err}): {}",
                            call.function
                                .arguments
                                .chars()
                                .take(200)
                                .collect::<String>()
                        )
                    }),
                })
                .collect();
            let text = [choice.message.content, choice.message.refusal]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n");
            Ok(ParsedReply {
                model: completion.model,
                tool_calls,
                text,
                stop_reason: choice.finish_reason.unwrap_or_default(),
                usage,
            })
        }
    }
}

/// The usage figures of an answer whose body is JSON but otherwise unusable, when they can be
/// read (so a rejected answer is still billed exactly).
pub fn usage_only(provider: Provider, body: &[u8]) -> Option<Usage> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let usage = value.get("usage")?;
    let field = |name: &str| usage.get(name).and_then(Value::as_u64);
    match provider {
        Provider::Anthropic => Some(Usage {
            input_tokens: field("input_tokens")?
                + field("cache_creation_input_tokens").unwrap_or(0)
                + field("cache_read_input_tokens").unwrap_or(0),
            output_tokens: field("output_tokens")?,
        }),
        Provider::OpenAi => Some(Usage {
            input_tokens: field("prompt_tokens")?,
            output_tokens: field("completion_tokens")?,
        }),
    }
}

/// The message in a provider's error envelope (`{"type":"error","error":{…}}` or
/// `{"error":{"message":…}}`), or the start of the body.
pub fn error_message(body: &[u8]) -> String {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let from_envelope = value.as_ref().and_then(|v| {
        let error = v.get("error")?;
        let kind = error.get("type").and_then(Value::as_str).unwrap_or("error");
        let message = error.get("message").and_then(Value::as_str)?;
        Some(format!("{kind}: {message}"))
    });
    from_envelope.unwrap_or_else(|| {
        String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_owned()
    })
}
