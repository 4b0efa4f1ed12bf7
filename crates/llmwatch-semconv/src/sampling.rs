//! OpenTelemetry probability sampling as carried in the W3C `tracestate` (`ot=th:…;rv:…`).
//!
//! A span sampled with rejection threshold T (56 bits, written as up to 14 hex digits and padded
//! with zeros on the right) was kept with probability (2^56 − T) / 2^56, so it stands for
//! 2^56 / (2^56 − T) spans. Counting it that many times keeps metrics unbiased under upstream
//! sampling.

const RANDOMNESS_BITS: u32 = 56;
const MAX_HEX_DIGITS: usize = 14;

/// What the tracestate says about how this span was sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// How many spans this one stands for (1 when unsampled or unknown).
    pub adjusted_count: f64,
    /// The explicit randomness value `rv`, when present.
    pub randomness: Option<u64>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            adjusted_count: 1.0,
            randomness: None,
        }
    }
}

impl Sampling {
    /// Reads the `ot` entry of a W3C tracestate; anything malformed counts as unsampled.
    pub fn from_tracestate(tracestate: &str) -> Sampling {
        let mut sampling = Sampling::default();
        let Some(ot) = tracestate
            .split(',')
            .map(str::trim)
            .find_map(|entry| entry.strip_prefix("ot="))
        else {
            return sampling;
        };
        for field in ot.split(';') {
            if let Some(th) = field.strip_prefix("th:") {
                if let Some(threshold) = parse_56_bits(th, true) {
                    let kept = (1u64 << RANDOMNESS_BITS) - threshold;
                    sampling.adjusted_count = (1u64 << RANDOMNESS_BITS) as f64 / kept as f64;
                }
            } else if let Some(rv) = field.strip_prefix("rv:")
                && rv.len() == MAX_HEX_DIGITS
            {
                sampling.randomness = parse_56_bits(rv, false);
            }
        }
        sampling
    }
}

/// Parses 1–14 lowercase hex digits as the top digits of a 56-bit number.
fn parse_56_bits(hex: &str, pad_right: bool) -> Option<u64> {
    if hex.is_empty()
        || hex.len() > MAX_HEX_DIGITS
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let value = u64::from_str_radix(hex, 16).ok()?;
    let shift = if pad_right {
        4 * (MAX_HEX_DIGITS - hex.len())
    } else {
        0
    };
    Some(value << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_from_the_specification_examples() {
        // th:0 keeps everything; th:8 keeps one half; th:c one quarter; th:fd70a4 about 1 %.
        assert_eq!(Sampling::from_tracestate("ot=th:0").adjusted_count, 1.0);
        assert_eq!(Sampling::from_tracestate("ot=th:8").adjusted_count, 2.0);
        assert_eq!(
            Sampling::from_tracestate("vendor=x,ot=th:c;rv:ab").adjusted_count,
            4.0
        );
        let one_percent = Sampling::from_tracestate("ot=th:fd70a4").adjusted_count;
        assert!((one_percent - 100.0).abs() < 0.01, "{one_percent}");
    }

    #[test]
    fn randomness_and_malformed_values() {
        let s = Sampling::from_tracestate("ot=rv:00112233445566;th:8");
        assert_eq!(s.randomness, Some(0x0000_1122_3344_5566));
        assert_eq!(s.adjusted_count, 2.0);
        for bad in [
            "",
            "ot=th:",
            "ot=th:XYZ",
            "ot=th:123456789abcdef0",
            "other=th:8",
        ] {
            assert_eq!(Sampling::from_tracestate(bad), Sampling::default(), "{bad}");
        }
    }
}
