//! Chat templates, as llama.cpp renders them: the GGUF's Jinja template is recognised by its
//! markers, not run. Only ChatML is known here; any other is a named error, never a guess.

use crate::TokenizerError;

/// One chat turn, as OpenAI-style APIs carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Template {
    ChatMl,
}

impl Template {
    /// The template a GGUF's `tokenizer.chat_template` is, by llama.cpp's detection rules.
    pub(crate) fn detect(source: Option<&str>) -> Result<Self, TokenizerError> {
        let source = source.ok_or(TokenizerError::NoChatTemplate)?;
        let chatml = source == "chatml" || (source.contains("<|im_start|>") && !source.contains("<|im_sep|>") && !source.contains("<end_of_utterance>"));
        if chatml {
            Ok(Self::ChatMl)
        } else {
            Err(TokenizerError::UnsupportedChatTemplate(source.chars().take(80).collect()))
        }
    }

    /// The conversation as text, ending with the assistant's turn opened.
    pub(crate) fn render(self, turns: &[ChatTurn]) -> String {
        match self {
            Self::ChatMl => {
                let mut text = String::new();
                for turn in turns {
                    text.push_str("<|im_start|>");
                    text.push_str(&turn.role);
                    text.push('\n');
                    text.push_str(&turn.content);
                    text.push_str("<|im_end|>\n");
                }
                text.push_str("<|im_start|>assistant\n");
                text
            },
        }
    }
}
