//! Small allocation-free text helpers.

/// Lower-cases a short ASCII string into `buffer`; `None` when it does not fit.
pub fn ascii_lowercase<'b>(raw: &str, buffer: &'b mut [u8; 32]) -> Option<&'b str> {
    let bytes = raw.as_bytes();
    let out = buffer.get_mut(..bytes.len())?;
    out.copy_from_slice(bytes);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}
