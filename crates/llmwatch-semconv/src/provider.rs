//! Provider names: the values of `gen_ai.provider.name`, whatever an emitter or version wrote.

/// Maps a provider or system name to the current semantic-convention value.
///
/// Known legacy and emitter-specific spellings are mapped (`gen_ai.system` values before v1.37,
/// OpenLLMetry's capitalised guesses, OpenInference's `llm.provider`); an unknown name passes
/// through unchanged so that a new provider still shows up.
pub fn normalize(raw: &str) -> &str {
    let trimmed = raw.trim();
    let mut buffer = [0u8; 32];
    let Some(lower) = crate::text::ascii_lowercase(trimmed, &mut buffer) else {
        return trimmed;
    };
    match lower {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "az.ai.openai" | "azure" | "azure.ai.openai" | "azure_openai" | "azureopenai" => {
            "azure.ai.openai"
        }
        "az.ai.inference" | "azure.ai.inference" => "azure.ai.inference",
        "aws" | "aws.bedrock" | "bedrock" | "aws_bedrock" => "aws.bedrock",
        "google" | "gcp.gen_ai" | "google_genai" | "google.genai" => "gcp.gen_ai",
        "gemini" | "gcp.gemini" | "google_gemini" => "gcp.gemini",
        "vertex_ai" | "vertexai" | "gcp.vertex_ai" | "vertex" => "gcp.vertex_ai",
        "openrouter" => "openrouter",
        "xai" | "x_ai" | "x.ai" => "x_ai",
        "mistralai" | "mistral_ai" | "mistral" => "mistral_ai",
        "cohere" => "cohere",
        "deepseek" => "deepseek",
        "groq" => "groq",
        "perplexity" => "perplexity",
        "ibm.watsonx.ai" | "ibm.watson.ai" | "watsonx" => "ibm.watsonx.ai",
        "moonshot_ai" | "moonshot" => "moonshot_ai",
        "ollama" => "ollama",
        _ => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn legacy_and_emitter_spellings_map_to_current_values() {
        let cases = [
            ("openai", "openai"),
            ("Azure", "azure.ai.openai"),
            ("az.ai.openai", "azure.ai.openai"),
            ("az.ai.inference", "azure.ai.inference"),
            ("AWS", "aws.bedrock"),
            ("Google", "gcp.gen_ai"),
            ("OpenRouter", "openrouter"),
            ("xai", "x_ai"),
            ("gemini", "gcp.gemini"),
            ("vertex_ai", "gcp.vertex_ai"),
            ("mistralai", "mistral_ai"),
            ("SomeNewLab", "SomeNewLab"),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize(raw), expected, "{raw}");
        }
    }
}
