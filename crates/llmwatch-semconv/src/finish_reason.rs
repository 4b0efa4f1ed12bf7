//! One small vocabulary of finish reasons, so providers compare and cardinality stays bounded.

/// Why a model stopped generating, across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCall,
    Error,
    Other,
}

impl FinishReason {
    pub const ALL: [FinishReason; 6] = [
        FinishReason::Stop,
        FinishReason::Length,
        FinishReason::ContentFilter,
        FinishReason::ToolCall,
        FinishReason::Error,
        FinishReason::Other,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCall => "tool_call",
            FinishReason::Error => "error",
            FinishReason::Other => "other",
        }
    }

    /// Maps any provider's or instrumentation's spelling to the vocabulary.
    ///
    /// OpenAI (`stop`, `length`, `tool_calls`, `function_call`, `content_filter`), Anthropic
    /// (`end_turn`, `stop_sequence`, `max_tokens`, `tool_use`, `refusal`), Gemini (`STOP`,
    /// `MAX_TOKENS`, `SAFETY`, `RECITATION`, …), Bedrock (`guardrail_intervened`), Cohere
    /// (`COMPLETE`, `MAX_TOKENS`, `ERROR_TOXIC`) and OpenLLMetry's `tool_call`.
    pub fn parse(raw: &str) -> FinishReason {
        let mut buffer = [0u8; 32];
        let Some(lower) = crate::text::ascii_lowercase(raw.trim(), &mut buffer) else {
            return FinishReason::Other;
        };
        match lower.strip_prefix("finish_reason_").unwrap_or(lower) {
            "stop" | "end_turn" | "stop_sequence" | "complete" | "eos" | "eos_token" | "end"
            | "finished" => FinishReason::Stop,
            "length"
            | "max_tokens"
            | "max_output_tokens"
            | "model_length"
            | "max_length"
            | "token_limit"
            | "model_context_window_exceeded" => FinishReason::Length,
            "content_filter"
            | "safety"
            | "recitation"
            | "blocklist"
            | "prohibited_content"
            | "spii"
            | "image_safety"
            | "refusal"
            | "guardrail_intervened"
            | "content_filtered"
            | "error_toxic" => FinishReason::ContentFilter,
            "tool_calls" | "tool_call" | "function_call" | "tool_use" | "function_calls" => {
                FinishReason::ToolCall
            }
            "error" | "malformed_function_call" | "error_limit" | "unexpected_tool_call" => {
                FinishReason::Error
            }
            _ => FinishReason::Other,
        }
    }
}

/// How many choices ended for each reason in one call (a call can have several choices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinishReasonCounts([u16; 6]);

impl FinishReasonCounts {
    pub fn add(&mut self, reason: FinishReason) {
        let slot = &mut self.0[reason as usize];
        *slot = slot.saturating_add(1);
    }

    pub fn count(&self, reason: FinishReason) -> u16 {
        self.0[reason as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// Every reason with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (FinishReason, u16)> + '_ {
        FinishReason::ALL
            .into_iter()
            .map(|reason| (reason, self.count(reason)))
            .filter(|&(_, n)| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::FinishReason::*;
    use super::*;

    #[test]
    fn every_provider_spelling_lands_in_the_vocabulary() {
        let cases = [
            ("stop", Stop),
            ("end_turn", Stop),
            ("STOP", Stop),
            ("stop_sequence", Stop),
            ("COMPLETE", Stop),
            ("FINISH_REASON_STOP", Stop),
            ("length", Length),
            ("max_tokens", Length),
            ("MAX_TOKENS", Length),
            ("content_filter", ContentFilter),
            ("SAFETY", ContentFilter),
            ("RECITATION", ContentFilter),
            ("refusal", ContentFilter),
            ("guardrail_intervened", ContentFilter),
            ("tool_calls", ToolCall),
            ("tool_call", ToolCall),
            ("function_call", ToolCall),
            ("tool_use", ToolCall),
            ("error", Error),
            ("MALFORMED_FUNCTION_CALL", Error),
            ("pause_turn", Other),
            ("", Other),
            ("a-reason-far-too-long-to-be-any-known-finish-reason", Other),
        ];
        for (raw, expected) in cases {
            assert_eq!(FinishReason::parse(raw), expected, "{raw}");
        }
    }

    #[test]
    fn counts_keep_one_slot_per_reason() {
        let mut counts = FinishReasonCounts::default();
        counts.add(Stop);
        counts.add(Stop);
        counts.add(Length);
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            vec![(Stop, 2), (Length, 1)]
        );
    }
}
