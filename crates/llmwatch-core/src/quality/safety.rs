//! A fast pattern monitor on captured input and output: categories of regular expressions
//! (personal data, secrets, prompt injection, refusals) compiled once into one
//! [`regex::RegexSet`] per side.
//!
//! Matching is linear in the text (the `regex` crate has no backtracking), compiled programs are
//! bounded by [`SIZE_LIMIT`], and every pattern is case-insensitive. A category whose matches
//! need more than a pattern can say (card numbers) names a [`MatchCheck`] that a match must also
//! pass; only then is its own regex run to find the matches.
//!
//! The default patterns use ASCII word boundaries, `(?-u:\b)`, which keep the fast DFA engines in
//! use on non-ASCII text (Unicode `\b` makes them give way to a slower one).

use std::collections::HashSet;
use std::fmt;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// Most bytes one compiled side (or one pattern) may take; larger configurations are refused.
pub const SIZE_LIMIT: usize = 8 << 20;
/// Most bytes of lazy-DFA transition cache per search.
pub const DFA_SIZE_LIMIT: usize = 4 << 20;

/// Which captured side a category scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliesTo {
    Input,
    Output,
    Both,
}

impl AppliesTo {
    fn includes(self, source: Source) -> bool {
        matches!(
            (self, source),
            (AppliesTo::Both, _)
                | (AppliesTo::Input, Source::Input)
                | (AppliesTo::Output, Source::Output)
        )
    }
}

/// The side a flag was raised on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Input,
    Output,
}

impl Source {
    /// The `source` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Input => "input",
            Source::Output => "output",
        }
    }
}

/// What a match must pass, beyond the pattern, to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchCheck {
    /// The pattern is enough.
    #[default]
    None,
    /// The digits of the match (separators ignored) pass the Luhn checksum, as card numbers do.
    Luhn,
}

impl MatchCheck {
    fn passes(self, matched: &str) -> bool {
        match self {
            MatchCheck::None => true,
            MatchCheck::Luhn => luhn_valid(matched),
        }
    }
}

/// One category of patterns: a text is flagged for it when any pattern matches (and passes the
/// category's check).
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// The `category` label value; non-empty and unique.
    pub name: String,
    /// Regular expressions in the `regex` crate's syntax, matched case-insensitively.
    pub patterns: Vec<String>,
    pub applies_to: AppliesTo,
    pub check: MatchCheck,
}

impl Category {
    /// A category without a check.
    pub fn new(name: &str, patterns: &[&str], applies_to: AppliesTo) -> Category {
        Category {
            name: name.to_owned(),
            patterns: patterns.iter().map(|&p| p.to_owned()).collect(),
            applies_to,
            check: MatchCheck::None,
        }
    }

    pub fn with_check(mut self, check: MatchCheck) -> Category {
        self.check = check;
        self
    }
}

/// The categories to monitor. [`Default`] is the default set (see [`SafetyConfig::defaults`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyConfig {
    pub categories: Vec<Category>,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig::defaults()
    }
}

/// Personal data: e-mail addresses.
pub const PII_EMAIL: &[&str] =
    &[r"(?-u:\b)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}(?-u:\b)"];

/// Personal data: phone numbers written as phone numbers (a bare digit run is not one).
pub const PII_PHONE: &[&str] = &[
    // International: +country code, then 3–6 groups (e.g. +44 20 7946 0958, +33 6 12 34 56 78).
    r"\+[1-9][0-9]{0,2}[ .-]?\(?[0-9]{1,4}\)?(?:[ .-]?[0-9]{2,4}){2,4}(?-u:\b)",
    // North American: (415) 555-2671, 415-555-2671, 415.555.2671.
    r"(?:\([2-9][0-9]{2}\)\s?|(?-u:\b)[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}(?-u:\b)",
    // National with a trunk 0: 020 7946 0958, 030/901820.
    r"(?-u:\b)0[1-9][0-9]{1,3}[ /-][0-9]{3,4}[ -]?[0-9]{3,4}(?-u:\b)",
];

/// Personal data: payment card numbers, 13–19 digits with optional space or dash separators,
/// starting with an issuer digit 2–6; matches must pass the Luhn check.
pub const PII_CREDIT_CARD: &[&str] = &[r"(?-u:\b)[2-6][0-9](?:[ -]?[0-9]){11,17}(?-u:\b)"];

/// Secrets: provider API keys and tokens, private key blocks.
pub const SECRET_API_KEY: &[&str] = &[
    // OpenAI / Anthropic style: sk-…, sk-proj-…, sk-ant-….
    r"(?-u:\b)sk-(?:proj-|ant-|live-|test-)?[a-z0-9_-]{20,}",
    // Stripe: sk_live_…, rk_test_….
    r"(?-u:\b)[rs]k_(?:live|test)_[a-z0-9]{16,}",
    // AWS access key ids.
    r"(?-i:(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b))",
    // GitHub tokens.
    r"(?-i:(?-u:\b)gh[pousr]_[A-Za-z0-9]{36}(?-u:\b))",
    r"(?-i:(?-u:\b)github_pat_[A-Za-z0-9_]{22,})",
    // Slack tokens.
    r"(?-i:(?-u:\b)xox[abprs]-[A-Za-z0-9-]{10,})",
    // Google API keys.
    r"(?-i:(?-u:\b)AIza[0-9A-Za-z_-]{35})",
    // PEM / OpenSSH / PGP private key blocks.
    r"-----BEGIN (?:[a-z]+ )*PRIVATE KEY(?: BLOCK)?-----",
];

/// Prompt injection: a few well-known phrases.
pub const PROMPT_INJECTION: &[&str] = &[
    r"(?-u:\b)ignore\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|preceding|earlier)\s+(?:instructions|prompts?|rules|directions|messages)",
    r"(?-u:\b)disregard\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?(?:above|previous|prior|preceding|earlier)(?-u:\b)",
    r"(?-u:\b)forget\s+(?:all\s+|everything\s+)?(?:of\s+)?(?:your|the|my)\s+(?:previous\s+|prior\s+)?(?:instructions|rules|guidelines)",
    r"(?-u:\b)you\s+are\s+now\s+(?:DAN|in\s+(?:developer|god)\s+mode|an?\s+unrestricted|jailbroken)(?-u:\b)",
    r"(?-u:\b)do\s+anything\s+now(?-u:\b)",
    r"(?-u:\b)(?:reveal|print|show|repeat|output)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|initial\s+instructions|hidden\s+instructions)",
];

/// Refusals by the model (output only).
pub const REFUSAL: &[&str] = &[
    r"(?-u:\b)I(?:\s+am|'m|’m)?\s+(?:cannot|can't|can’t|can\s+not|unable\s+to|not\s+able\s+to|won't|won’t|will\s+not)\s+(?:help(?:\s+you)?\s+with|assist|comply|fulfil)",
    r"(?-u:\b)as\s+an\s+AI(?:\s+language)?\s+model(?-u:\b)",
    r"(?-u:\b)I\s+(?:must|have\s+to)\s+(?:respectfully\s+)?decline(?-u:\b)",
    r"(?-u:\b)I(?:'m|’m|\s+am)\s+(?:sorry|afraid),?\s+but\s+I\s+(?:cannot|can't|can’t|won't|won’t)(?-u:\b)",
];

impl SafetyConfig {
    /// The default set: `pii_email`, `pii_phone`, `pii_credit_card` (Luhn-checked),
    /// `secret_api_key` and `prompt_injection` on both sides, `refusal` on output only.
    pub fn defaults() -> SafetyConfig {
        SafetyConfig {
            categories: vec![
                Category::new("pii_email", PII_EMAIL, AppliesTo::Both),
                Category::new("pii_phone", PII_PHONE, AppliesTo::Both),
                Category::new("pii_credit_card", PII_CREDIT_CARD, AppliesTo::Both)
                    .with_check(MatchCheck::Luhn),
                Category::new("secret_api_key", SECRET_API_KEY, AppliesTo::Both),
                Category::new("prompt_injection", PROMPT_INJECTION, AppliesTo::Both),
                Category::new("refusal", REFUSAL, AppliesTo::Output),
            ],
        }
    }
}

/// Why a [`SafetyConfig`] was refused. Categories and patterns are numbered from 0.
#[derive(Debug, Clone, PartialEq)]
pub enum SafetyConfigError {
    EmptyName {
        index: usize,
    },
    DuplicateCategory {
        name: String,
        index: usize,
    },
    NoPatterns {
        category: String,
    },
    /// The pattern does not compile (syntax, or over [`SIZE_LIMIT`]).
    InvalidPattern {
        category: String,
        pattern: usize,
        message: String,
    },
    /// The pattern matches the empty string, so it would flag every text.
    MatchesEverything {
        category: String,
        pattern: usize,
    },
    /// One side's patterns together exceed [`SIZE_LIMIT`].
    TooLarge {
        source: Source,
        message: String,
    },
}

impl fmt::Display for SafetyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SafetyConfigError::EmptyName { index } => {
                write!(f, "safety category {index} has an empty name")
            }
            SafetyConfigError::DuplicateCategory { name, index } => {
                write!(f, "safety category {index} repeats the name {name:?}")
            }
            SafetyConfigError::NoPatterns { category } => {
                write!(f, "safety category {category:?} has no patterns")
            }
            SafetyConfigError::InvalidPattern {
                category,
                pattern,
                message,
            } => write!(
                f,
                "safety category {category:?}, pattern {pattern}: invalid regular expression: {message}"
            ),
            SafetyConfigError::MatchesEverything { category, pattern } => write!(
                f,
                "safety category {category:?}, pattern {pattern} matches the empty string, so every text"
            ),
            SafetyConfigError::TooLarge { source, message } => write!(
                f,
                "safety patterns on {} are too large together: {message}",
                source.as_str()
            ),
        }
    }
}

impl std::error::Error for SafetyConfigError {}

/// One category raised on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flag<'a> {
    pub category: &'a str,
    pub source: Source,
}

#[derive(Debug)]
struct CompiledCategory {
    name: String,
    applies_to: AppliesTo,
    check: MatchCheck,
    /// Each pattern on its own, kept only when a check needs the matches themselves.
    regexes: Vec<Regex>,
}

/// The patterns of one side in one set.
#[derive(Debug)]
struct Side {
    set: RegexSet,
    /// For each pattern of the set: its category and its index within the category.
    owners: Vec<(usize, usize)>,
}

/// Scans captured text against the configured categories; built once, shared freely.
#[derive(Debug)]
pub struct SafetyMonitor {
    categories: Vec<CompiledCategory>,
    input: Side,
    output: Side,
}

fn regex_builder(pattern: &str) -> RegexBuilder {
    let mut builder = RegexBuilder::new(pattern);
    builder
        .case_insensitive(true)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT);
    builder
}

impl SafetyMonitor {
    pub fn new(config: &SafetyConfig) -> Result<SafetyMonitor, SafetyConfigError> {
        let mut names = HashSet::new();
        let mut categories = Vec::with_capacity(config.categories.len());
        for (index, category) in config.categories.iter().enumerate() {
            if category.name.trim().is_empty() {
                return Err(SafetyConfigError::EmptyName { index });
            }
            if !names.insert(category.name.as_str()) {
                return Err(SafetyConfigError::DuplicateCategory {
                    name: category.name.clone(),
                    index,
                });
            }
            if category.patterns.is_empty() {
                return Err(SafetyConfigError::NoPatterns {
                    category: category.name.clone(),
                });
            }
            // Compiling each pattern alone names the one at fault, which a set's error cannot.
            let mut regexes = Vec::with_capacity(category.patterns.len());
            for (pattern, source) in category.patterns.iter().enumerate() {
                let regex = regex_builder(source).build().map_err(|error| {
                    SafetyConfigError::InvalidPattern {
                        category: category.name.clone(),
                        pattern,
                        message: error.to_string(),
                    }
                })?;
                if regex.is_match("") {
                    return Err(SafetyConfigError::MatchesEverything {
                        category: category.name.clone(),
                        pattern,
                    });
                }
                regexes.push(regex);
            }
            if category.check == MatchCheck::None {
                regexes.clear();
            }
            categories.push(CompiledCategory {
                name: category.name.clone(),
                applies_to: category.applies_to,
                check: category.check,
                regexes,
            });
        }
        let input = Self::side(config, Source::Input)?;
        let output = Self::side(config, Source::Output)?;
        Ok(SafetyMonitor {
            categories,
            input,
            output,
        })
    }

    fn side(config: &SafetyConfig, source: Source) -> Result<Side, SafetyConfigError> {
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (index, category) in config.categories.iter().enumerate() {
            if category.applies_to.includes(source) {
                for (pattern, text) in category.patterns.iter().enumerate() {
                    patterns.push(text.as_str());
                    owners.push((index, pattern));
                }
            }
        }
        let set = RegexSetBuilder::new(patterns)
            .case_insensitive(true)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|error| SafetyConfigError::TooLarge {
                source,
                message: error.to_string(),
            })?;
        Ok(Side { set, owners })
    }

    /// The categories, in configuration order, with the sides they scan (to pre-register series).
    pub fn categories(&self) -> impl Iterator<Item = (&str, AppliesTo)> + '_ {
        self.categories
            .iter()
            .map(|c| (c.name.as_str(), c.applies_to))
    }

    /// The categories raised on the input, then on the output, each in configuration order and at
    /// most once per side.
    pub fn scan(&self, input: Option<&str>, output: Option<&str>) -> Vec<Flag<'_>> {
        let mut flags = Vec::new();
        if let Some(text) = input {
            self.scan_side(&self.input, Source::Input, text, &mut flags);
        }
        if let Some(text) = output {
            self.scan_side(&self.output, Source::Output, text, &mut flags);
        }
        flags
    }

    fn scan_side<'a>(&'a self, side: &Side, source: Source, text: &str, flags: &mut Vec<Flag<'a>>) {
        if text.is_empty() || side.owners.is_empty() {
            return;
        }
        // Set matches come in pattern order, and a category's patterns are contiguous, so a
        // category is done once one of its patterns counted.
        let mut last = None;
        for matched in side.set.matches(text).iter() {
            let (index, pattern) = side.owners[matched];
            if last == Some(index) {
                continue;
            }
            let category = &self.categories[index];
            let counts = category.check == MatchCheck::None
                || category.regexes[pattern]
                    .find_iter(text)
                    .any(|m| category.check.passes(m.as_str()));
            if counts {
                last = Some(index);
                flags.push(Flag {
                    category: &category.name,
                    source,
                });
            }
        }
    }
}

/// The Luhn checksum over the ASCII digits of `text` (anything else ignored); at least two digits.
pub fn luhn_valid(text: &str) -> bool {
    let mut sum = 0u32;
    let mut digits = 0usize;
    for byte in text.bytes().rev().filter(u8::is_ascii_digit) {
        let mut digit = u32::from(byte - b'0');
        if digits % 2 == 1 {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
        digits += 1;
    }
    digits >= 2 && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_on_known_numbers() {
        for valid in [
            "4111 1111 1111 1111",
            "5555-5555-5555-4444",
            "378282246310005",
            "79927398713",
        ] {
            assert!(luhn_valid(valid), "{valid}");
        }
        for invalid in ["4111 1111 1111 1112", "79927398710", "0", ""] {
            assert!(!luhn_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn every_default_pattern_compiles_alone() {
        for category in SafetyConfig::defaults().categories {
            for (index, pattern) in category.patterns.iter().enumerate() {
                let regex = regex_builder(pattern).build();
                assert!(regex.is_ok(), "{} {index}: {regex:?}", category.name);
                assert!(!regex.unwrap().is_match(""), "{} {index}", category.name);
            }
        }
    }

    #[test]
    fn a_failed_check_on_one_pattern_leaves_the_next_pattern_its_chance() {
        let config = SafetyConfig {
            categories: vec![
                Category::new(
                    "digits",
                    &[r"\b[0-9]{4}\b", r"\b[0-9]{3}\b"],
                    AppliesTo::Both,
                )
                .with_check(MatchCheck::Luhn),
            ],
        };
        let monitor = SafetyMonitor::new(&config).unwrap();
        // 1234 fails Luhn; 125 (1+4+5 = 10) passes.
        assert_eq!(monitor.scan(Some("1234 and 125"), None).len(), 1);
        assert!(monitor.scan(Some("1234 and 124"), None).is_empty());
    }
}
