//! A text embedder that needs no model: signed feature hashing of word unigrams and character
//! n-grams, L2-normalised. Good enough to compare the distribution of prompts or responses
//! between windows (MMD, mean-embedding cosine distance), not a semantic model.
//!
//! Definition ([`HashingEmbedder::embed`]):
//! 1. Normalise: Unicode lowercase (`char::to_lowercase`), every run of whitespace becomes one
//!    space, leading/trailing whitespace dropped. An empty result is an error.
//! 2. Features: each *word* (maximal run of alphanumeric characters, `char::is_alphanumeric`)
//!    with weight `word_weight`, and each character n-gram, for every `n` in
//!    `char_ngram_min..=char_ngram_max`, of the normalised text padded with one space at each end
//!    (so punctuation and emoji count, and n-grams at word edges are marked), with weight
//!    `char_weight`. Texts shorter than `n` padded characters contribute one n-gram: the whole
//!    padded text.
//! 3. Hash: FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over a one-byte
//!    namespace (`b'w'` for words, `b'c'` for n-grams) followed by the feature's UTF-8 bytes,
//!    then the MurmurHash3 `fmix64` finaliser. Bucket = `hash mod D`; sign = `+1` if the top bit
//!    is 0, else `−1`.
//! 4. Sum the signed weights per bucket and divide by the euclidean norm (a vector whose features
//!    all cancel stays all zeros).
//!
//! Fixed constants and no `RandomState`, so the output is identical on every platform and run
//! (up to the Unicode tables of the Rust version for lowercasing and `is_alphanumeric`).

use serde::{Deserialize, Serialize};

use crate::StatsError;

/// Feature-hashing text embedder; see the [module documentation](self) for the exact definition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HashingEmbedder {
    /// Dimension D (default 256).
    pub dim: usize,
    /// Smallest character n-gram length (default 3).
    pub char_ngram_min: usize,
    /// Largest character n-gram length (default 5).
    pub char_ngram_max: usize,
    /// Weight of each word occurrence (default 1).
    pub word_weight: f64,
    /// Weight of each character n-gram occurrence (default 1).
    pub char_weight: f64,
}

impl Default for HashingEmbedder {
    fn default() -> Self {
        Self {
            dim: 256,
            char_ngram_min: 3,
            char_ngram_max: 5,
            word_weight: 1.0,
            char_weight: 1.0,
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `namespace` then `bytes`, finalised with MurmurHash3's `fmix64`.
fn feature_hash(namespace: u8, bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in std::iter::once(&namespace).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl HashingEmbedder {
    /// Checks the parameters: `dim ≥ 1`, `1 ≤ char_ngram_min ≤ char_ngram_max`, finite
    /// non-negative weights not both zero.
    pub fn validate(&self) -> Result<(), StatsError> {
        if self.dim == 0 {
            return Err(StatsError::InvalidParameter(
                "the embedding dimension must be at least 1".to_string(),
            ));
        }
        if self.char_ngram_min == 0 || self.char_ngram_min > self.char_ngram_max {
            return Err(StatsError::InvalidParameter(format!(
                "character n-gram lengths must satisfy 1 ≤ min ≤ max, got {}..={}",
                self.char_ngram_min, self.char_ngram_max
            )));
        }
        let ok = |w: f64| w.is_finite() && w >= 0.0;
        if !ok(self.word_weight)
            || !ok(self.char_weight)
            || self.word_weight + self.char_weight == 0.0
        {
            return Err(StatsError::InvalidParameter(
                "feature weights must be finite, non-negative and not both zero".to_string(),
            ));
        }
        Ok(())
    }

    /// The L2-normalised embedding of `text` (length `dim`). Errors: invalid parameters, or a
    /// text that is empty or only whitespace (`EmptySample("text")`).
    pub fn embed(&self, text: &str) -> Result<Vec<f64>, StatsError> {
        self.validate()?;
        let mut normalised = String::with_capacity(text.len() + 2);
        normalised.push(' ');
        let mut pending_space = false;
        for c in text.chars() {
            if c.is_whitespace() {
                pending_space = normalised.len() > 1;
                continue;
            }
            if pending_space {
                normalised.push(' ');
                pending_space = false;
            }
            normalised.extend(c.to_lowercase());
        }
        if normalised.len() == 1 {
            return Err(StatsError::EmptySample("text"));
        }
        normalised.push(' ');

        let mut vector = vec![0.0f64; self.dim];
        let mut add = |namespace: u8, feature: &str, weight: f64| {
            let h = feature_hash(namespace, feature.as_bytes());
            let bucket = (h % self.dim as u64) as usize;
            if h >> 63 == 0 {
                vector[bucket] += weight;
            } else {
                vector[bucket] -= weight;
            }
        };
        if self.word_weight > 0.0 {
            for word in normalised
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                add(b'w', word, self.word_weight);
            }
        }
        if self.char_weight > 0.0 {
            // Byte offsets of every char boundary, end included.
            let boundaries: Vec<usize> = normalised
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(normalised.len()))
                .collect();
            let chars = boundaries.len() - 1;
            for n in self.char_ngram_min..=self.char_ngram_max {
                if chars < n {
                    if n == self.char_ngram_min {
                        add(b'c', &normalised, self.char_weight);
                    }
                    break;
                }
                for start in 0..=chars - n {
                    add(
                        b'c',
                        &normalised[boundaries[start]..boundaries[start + n]],
                        self.char_weight,
                    );
                }
            }
        }
        let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(vector)
    }
}

/// Cosine similarity `a·b / (‖a‖ ‖b‖)` (0 when either vector is all zeros). Errors on different
/// lengths, empty vectors or non-finite components.
pub fn cosine_similarity(a: &[f64], b: &[f64]) -> Result<f64, StatsError> {
    if a.is_empty() {
        return Err(StatsError::EmptySample("a"));
    }
    if a.len() != b.len() {
        return Err(StatsError::DimensionMismatch {
            expected: a.len(),
            found: b.len(),
        });
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(StatsError::NotFinite("a"));
    }
    if b.iter().any(|v| !v.is_finite()) {
        return Err(StatsError::NotFinite("b"));
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    let nb = b.iter().map(|v| v * v).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return Ok(0.0);
    }
    Ok(dot / (na * nb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // Plain FNV-1a 64 test vectors: "" → offset basis, "a" → 0xaf63dc4c8601ec8c.
        let fnv = |bytes: &[u8]| {
            bytes.iter().fold(FNV_OFFSET, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
            })
        };
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn same_text_same_vector_and_unit_norm() {
        let e = HashingEmbedder::default();
        let a = e
            .embed("The quick brown fox jumps over the lazy dog.")
            .unwrap();
        let b = e
            .embed("  the QUICK brown fox\tjumps over the lazy dog. ")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 256);
        assert!((a.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let e = HashingEmbedder::default();
        let base = e
            .embed("Please reset my account password, I cannot log in.")
            .unwrap();
        let similar = e
            .embed("I can't log in, please reset the password of my account")
            .unwrap();
        let unrelated = e
            .embed("Quarterly revenue grew 12% thanks to strong cloud sales.")
            .unwrap();
        let s = cosine_similarity(&base, &similar).unwrap();
        let u = cosine_similarity(&base, &unrelated).unwrap();
        assert!(s > u + 0.3, "similar {s}, unrelated {u}");
    }

    #[test]
    fn short_and_empty_texts() {
        let e = HashingEmbedder::default();
        assert_eq!(e.embed(" \n\t "), Err(StatsError::EmptySample("text")));
        assert_eq!(e.embed(""), Err(StatsError::EmptySample("text")));
        let one = e.embed("a").unwrap();
        assert!((one.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12);
        let emoji = e.embed("🙂").unwrap();
        assert!(emoji.iter().any(|&v| v != 0.0));
        assert!(
            HashingEmbedder {
                dim: 0,
                ..HashingEmbedder::default()
            }
            .embed("x")
            .is_err()
        );
        assert!(
            HashingEmbedder {
                char_ngram_min: 4,
                char_ngram_max: 3,
                ..HashingEmbedder::default()
            }
            .embed("x")
            .is_err()
        );
        assert!(
            HashingEmbedder {
                word_weight: f64::NAN,
                ..HashingEmbedder::default()
            }
            .embed("x")
            .is_err()
        );
    }

    #[test]
    fn cosine_errors() {
        assert!(cosine_similarity(&[], &[]).is_err());
        assert_eq!(
            cosine_similarity(&[1.0], &[1.0, 2.0]),
            Err(StatsError::DimensionMismatch {
                expected: 1,
                found: 2
            })
        );
        assert!(cosine_similarity(&[f64::NAN], &[1.0]).is_err());
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 0.0]), Ok(0.0));
    }
}
