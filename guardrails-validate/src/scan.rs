//! The single-pass structural pre-scan of a JSON document.
//!
//! [`prescan`] walks the bytes once, before any deserialization, and rejects
//! what a well-formed document may still carry to hurt a server: a byte order
//! mark, invalid UTF-8, nesting deeper than the limit, over-long strings or
//! numbers, arrays or objects with too many entries, duplicate object keys,
//! lone UTF-16 surrogates in `\u` escapes, and (unless allowed) `\u0000`.
//!
//! It allocates nothing per token: one frame stack sized by the depth limit,
//! and key slices per object for the duplicate check (decoded only for keys
//! that contain escapes; hashed only in objects of more than 16 members).
//! It does not check JSON syntax: what it cannot make sense of it leaves to
//! the parser, which reports the error with its position.
//!
//! ```
//! use guardrails_validate::Config;
//! use guardrails_validate::scan::{prescan, ScanErrorKind};
//!
//! let config = Config::default();
//! assert!(prescan(br#"{"a":[1,2,{"b":"c"}]}"#, &config).is_ok());
//! let err = prescan(br#"{"a":1,"a":2}"#, &config).unwrap_err();
//! assert_eq!(err.kind(), ScanErrorKind::DuplicateKey);
//! assert_eq!(err.offset(), 7);
//! ```

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use crate::Config;

/// What the pre-scan rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScanErrorKind {
    /// The document starts with a UTF-8 byte order mark.
    Bom,
    /// The document is not valid UTF-8.
    InvalidUtf8,
    /// Arrays and objects nest deeper than the limit.
    DepthExceeded,
    /// A string is longer than the limit.
    StringTooLong,
    /// A number literal is longer than the limit.
    NumberTooLong,
    /// An array has more items than the limit.
    TooManyItems,
    /// An object has more members than the limit.
    TooManyMembers,
    /// An object has the same key twice.
    DuplicateKey,
    /// A `\u` escape is a UTF-16 surrogate without its pair.
    LoneSurrogate,
    /// A string contains `\u0000`.
    NulCharacter,
}

impl ScanErrorKind {
    /// The stable violation code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Bom => "bom",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::DepthExceeded => "depth_exceeded",
            Self::StringTooLong => "string_too_long",
            Self::NumberTooLong => "number_too_long",
            Self::TooManyItems => "too_many_items",
            Self::TooManyMembers => "too_many_members",
            Self::DuplicateKey => "duplicate_key",
            Self::LoneSurrogate => "lone_surrogate",
            Self::NulCharacter => "nul_character",
        }
    }
}

/// A pre-scan rejection: what, and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanError {
    kind: ScanErrorKind,
    offset: usize,
}

impl ScanError {
    /// What was rejected.
    pub fn kind(&self) -> ScanErrorKind {
        self.kind
    }

    /// The byte offset where the offending token starts.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind.code(), self.offset)
    }
}

impl std::error::Error for ScanError {}

/// Objects with more members than this use a hash set for the duplicate
/// check; smaller ones compare linearly, which is faster.
const LINEAR_KEYS: usize = 16;

struct Frame<'a> {
    /// The schema node of this container, or [`NO_NODE`].
    node: u32,
    is_object: bool,
    expect_key: bool,
    count: usize,
    keys_start: usize,
    /// Fields of the struct (by index in its tree node) already seen.
    seen: u64,
    // Boxed: most objects never need it, and the frame stays small.
    #[allow(clippy::box_collection)]
    set: Option<Box<HashSet<Cow<'a, [u8]>>>>,
}

/// Scans `bytes` under `config`'s structural limits; see the
/// [module documentation](self).
///
/// # Errors
///
/// [`ScanError`] with the kind and the byte offset of the first rejected
/// token.
pub fn prescan(bytes: &[u8], config: &Config) -> Result<(), ScanError> {
    prescan_str(bytes, config).map(|_| ())
}

/// Whether the members of the document are all declared by the target type,
/// as far as its [`Tree`] tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Members {
    /// Every key of every object is a field of its struct.
    AllKnown,
    /// Some key is not a field of its struct (it may still be accepted: an
    /// alias the probe missed, another enum variant…).
    Unknown,
    /// Some object is where the tree has no struct (maps, `Value`, flatten,
    /// untagged enums): its keys could not be checked.
    Uncertain,
}

/// No schema node.
pub(crate) const NO_NODE: u32 = u32::MAX;

/// The struct shape of a type, as a tree walked by the pre-scan: node 0 is
/// the root. Built once per type from the serde probe.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// Per node: the struct's field names (with aliases), if a struct.
    fields: Vec<Option<&'static [&'static str]>>,
    /// Per node: the node of each field's value.
    children: Vec<Vec<u32>>,
    /// Per node: the node of an array item.
    items: Vec<u32>,
    /// Per node: whether the field names are all distinct.
    distinct: Vec<bool>,
    /// Per node: whether the field names are distinct and need no escape in
    /// JSON (no `"`, `\` or control byte).
    plain: Vec<bool>,
}

impl Tree {
    /// Builds the tree from struct field lists keyed by path pattern
    /// (`""`, `"/lines/*"`, …).
    pub(crate) fn from_patterns(
        structs: &std::collections::HashMap<String, &'static [&'static str]>,
    ) -> Self {
        let mut patterns: Vec<String> = vec![String::new()];
        for pattern in structs.keys() {
            let mut p = pattern.as_str();
            while !p.is_empty() {
                patterns.push(p.to_owned());
                p = p.rfind('/').map_or("", |idx| &p[..idx]);
            }
        }
        patterns.sort();
        patterns.dedup();
        let id = |p: &str| {
            patterns
                .binary_search_by(|x| x.as_str().cmp(p))
                .map_or(NO_NODE, |i| u32::try_from(i).unwrap_or(NO_NODE))
        };
        let mut tree = Tree::default();
        for pattern in &patterns {
            let fields = structs.get(pattern).copied();
            let children = fields
                .unwrap_or_default()
                .iter()
                .map(|f| {
                    let mut child = pattern.clone();
                    crate::pointer::push_token(&mut child, f);
                    id(&child)
                })
                .collect();
            let names = fields.unwrap_or_default();
            let distinct = names
                .iter()
                .enumerate()
                .all(|(i, f)| !names[..i].contains(f));
            tree.distinct.push(distinct);
            tree.plain.push(
                distinct
                    && names
                        .iter()
                        .all(|f| f.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')),
            );
            tree.fields.push(fields);
            tree.children.push(children);
            tree.items.push(id(&format!("{pattern}/*")));
        }
        tree
    }

    fn fields(&self, node: u32) -> Option<&'static [&'static str]> {
        self.fields.get(node as usize).copied().flatten()
    }

    fn distinct(&self, node: u32) -> bool {
        self.distinct.get(node as usize).copied().unwrap_or(false)
    }

    fn plain(&self, node: u32) -> bool {
        self.plain.get(node as usize).copied().unwrap_or(false)
    }

    fn item(&self, node: u32) -> u32 {
        self.items.get(node as usize).copied().unwrap_or(NO_NODE)
    }

    fn child(&self, node: u32, index: usize) -> u32 {
        self.children
            .get(node as usize)
            .and_then(|c| c.get(index))
            .copied()
            .unwrap_or(NO_NODE)
    }
}

/// [`prescan`], returning the document as the UTF-8 text it was checked to be.
pub(crate) fn prescan_str<'a>(bytes: &'a [u8], config: &Config) -> Result<&'a str, ScanError> {
    prescan_with(bytes, config, None).map(|(text, _)| text)
}

/// [`prescan_str`], also checking object keys against `tree`.
pub(crate) fn prescan_with<'a>(
    bytes: &'a [u8],
    config: &Config,
    tree: Option<&Tree>,
) -> Result<(&'a str, Members), ScanError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(ScanError {
            kind: ScanErrorKind::Bom,
            offset: 0,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ScanError {
        kind: ScanErrorKind::InvalidUtf8,
        offset: e.valid_up_to(),
    })?;
    let members = structure(bytes, config, tree)?;
    Ok((text, members))
}

fn structure(bytes: &[u8], config: &Config, tree: Option<&Tree>) -> Result<Members, ScanError> {
    let err = |kind, offset| Err(ScanError { kind, offset });
    let mut members = if tree.is_some() {
        Members::AllKnown
    } else {
        Members::Uncertain
    };
    // The node of the value after the last key read.
    let mut pending = NO_NODE;
    // No allocation for documents nested at most `INLINE_FRAMES` deep whose
    // keys are all declared fields: the usual request body.
    let mut stack = Stack::default();
    let mut keys: Vec<Cow<'_, [u8]>> = Vec::new();
    let len = bytes.len();
    let mut i = 0;
    while i < len {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b':' => i += 1,
            // A loop: in the usual body a string is followed by another
            // (a key by its string value, a value by the next key), and
            // staying here spares a dispatch.
            b'"' => loop {
                let start = i;
                // The usual key: the declared field at this member's
                // position, sent as is. When the field names are plain (no
                // quote, backslash or control byte), bytes equal to the name
                // followed by a quote are exactly that key, unescaped: no
                // string scan and no search.
                if let Some(tree) = tree
                    && let Some(frame) = stack.last_mut()
                    && frame.is_object
                    && frame.expect_key
                    && tree.plain(frame.node)
                    && let Some(name) = tree.fields(frame.node).and_then(|f| f.get(frame.count))
                    && name.len() <= config.max_string_bytes
                    && bytes.get(i + 1 + name.len()) == Some(&b'"')
                    && bytes
                        .get(i + 1..i + 1 + name.len())
                        .is_some_and(|raw| same(raw, name.as_bytes()))
                {
                    let index = frame.count;
                    frame.expect_key = false;
                    frame.count += 1;
                    if frame.count > config.max_object_members {
                        return err(ScanErrorKind::TooManyMembers, start);
                    }
                    pending = tree.child(frame.node, index);
                    let end = i + 1 + name.len();
                    let fresh = if index < 64 {
                        let bit = 1u64 << index;
                        let fresh = frame.seen & bit == 0;
                        frame.seen |= bit;
                        fresh
                    } else {
                        insert_key(frame, &mut keys, Cow::Borrowed(&bytes[i + 1..end]))
                    };
                    if !fresh {
                        return err(ScanErrorKind::DuplicateKey, start);
                    }
                    i = end + 1;
                    if bytes.get(i) == Some(&b':') {
                        i += 1;
                    }
                    if bytes.get(i) == Some(&b'"') {
                        continue;
                    }
                    break;
                }
                let Some(s) = scan_string(bytes, i + 1, config.allow_nul)? else {
                    return Ok(members); // unterminated: the parser reports it
                };
                if s.end - (i + 1) > config.max_string_bytes {
                    return err(ScanErrorKind::StringTooLong, start);
                }
                match stack.last_mut() {
                    Some(frame) if frame.is_object && frame.expect_key => {
                        frame.expect_key = false;
                        frame.count += 1;
                        if frame.count > config.max_object_members {
                            return err(ScanErrorKind::TooManyMembers, start);
                        }
                        let raw = &bytes[i + 1..s.end];
                        let key = if s.escaped {
                            Cow::Owned(unescape(raw))
                        } else {
                            Cow::Borrowed(raw)
                        };
                        pending = NO_NODE;
                        let mut field = None;
                        if let Some(tree) = tree
                            && let Some(fields) = tree.fields(frame.node)
                        {
                            // Clients mostly send the fields in declaration
                            // order: try the one at this member's position
                            // first (only when the names are distinct, so
                            // the answer is the one a search would give).
                            let guess = frame.count - 1;
                            let found = match fields.get(guess) {
                                Some(f)
                                    if same(f.as_bytes(), &key) && tree.distinct(frame.node) =>
                                {
                                    Some(guess)
                                }
                                _ => fields.iter().position(|f| same(f.as_bytes(), &key)),
                            };
                            match found {
                                Some(index) => {
                                    pending = tree.child(frame.node, index);
                                    field = Some(index);
                                }
                                None => {
                                    if members == Members::AllKnown {
                                        members = Members::Unknown;
                                    }
                                }
                            }
                        }
                        // A declared field: one bit per field. Anything
                        // else: compared with the other keys of the object.
                        let fresh = match field {
                            Some(index) if index < 64 => {
                                let bit = 1u64 << index;
                                let fresh = frame.seen & bit == 0;
                                frame.seen |= bit;
                                fresh
                            }
                            _ => insert_key(frame, &mut keys, key),
                        };
                        if !fresh {
                            return err(ScanErrorKind::DuplicateKey, start);
                        }
                    }
                    Some(frame) if !frame.is_object => {
                        frame.count += 1;
                        if frame.count > config.max_array_len {
                            return err(ScanErrorKind::TooManyItems, start);
                        }
                    }
                    Some(_) => {}
                    None => {}
                }
                i = s.end + 1;
                // A key is followed by `:`, a value usually by `,`: skip
                // them here rather than through the dispatch.
                match bytes.get(i) {
                    Some(b':') => i += 1,
                    Some(b',') => {
                        after_comma(&mut stack);
                        i += 1;
                    }
                    _ => {}
                }
                if bytes.get(i) != Some(&b'"') {
                    break;
                }
            },
            b'{' | b'[' => {
                if stack.len() >= config.max_depth {
                    return err(ScanErrorKind::DepthExceeded, i);
                }
                if let Some(frame) = stack.last_mut()
                    && !frame.is_object
                {
                    frame.count += 1;
                    if frame.count > config.max_array_len {
                        return err(ScanErrorKind::TooManyItems, i);
                    }
                }
                let is_object = c == b'{';
                let node = match (tree, stack.last()) {
                    (None, _) => NO_NODE,
                    (Some(_), None) => 0,
                    (Some(_), Some(parent)) if parent.is_object => pending,
                    (Some(tree), Some(parent)) => tree.item(parent.node),
                };
                if is_object
                    && members == Members::AllKnown
                    && tree.is_some_and(|t| t.fields(node).is_none())
                {
                    members = Members::Uncertain;
                }
                stack.push(Frame {
                    node,
                    is_object,
                    expect_key: is_object,
                    count: 0,
                    keys_start: keys.len(),
                    seen: 0,
                    set: None,
                });
                i += 1;
            }
            b'}' | b']' => {
                let Some(frame) = stack.pop() else {
                    return Ok(members);
                };
                keys.truncate(frame.keys_start);
                i += 1;
                if bytes.get(i) == Some(&b',') {
                    after_comma(&mut stack);
                    i += 1;
                }
            }
            b',' => {
                after_comma(&mut stack);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < len && NUMBER[bytes[i] as usize] {
                    i += 1;
                }
                if i - start > config.max_number_len {
                    return err(ScanErrorKind::NumberTooLong, start);
                }
                if let Some(frame) = stack.last_mut()
                    && !frame.is_object
                {
                    frame.count += 1;
                    if frame.count > config.max_array_len {
                        return err(ScanErrorKind::TooManyItems, start);
                    }
                }
                if bytes.get(i) == Some(&b',') {
                    after_comma(&mut stack);
                    i += 1;
                }
            }
            b't' | b'f' | b'n' => {
                let start = i;
                while i < len && bytes[i].is_ascii_lowercase() {
                    i += 1;
                }
                if let Some(frame) = stack.last_mut()
                    && !frame.is_object
                {
                    frame.count += 1;
                    if frame.count > config.max_array_len {
                        return err(ScanErrorKind::TooManyItems, start);
                    }
                }
                if bytes.get(i) == Some(&b',') {
                    after_comma(&mut stack);
                    i += 1;
                }
            }
            // Anything else is a syntax error: the parser reports it.
            _ => return Ok(members),
        }
    }
    Ok(members)
}

/// Byte equality without a `memcmp` call for the short keys of most bodies.
/// Keys of 4 to 16 bytes are compared as two (overlapping) words.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let word = |s: &[u8], at: usize| {
            s.get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map(u64::from_le_bytes)
        };
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    if (4..8).contains(&n) {
        let word = |s: &[u8], at: usize| {
            s.get(at..at + 4)
                .and_then(|w| <[u8; 4]>::try_from(w).ok())
                .map(u32::from_le_bytes)
        };
        return word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4);
    }
    a == b
}

/// After a `,`: an object expects a key again.
#[inline]
fn after_comma(stack: &mut Stack<'_>) {
    if let Some(frame) = stack.last_mut() {
        frame.expect_key = frame.is_object;
    }
}

/// The bytes a number literal is scanned over.
static NUMBER: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = b'0';
    while c <= b'9' {
        table[c as usize] = true;
        c += 1;
    }
    table[b'-' as usize] = true;
    table[b'+' as usize] = true;
    table[b'.' as usize] = true;
    table[b'e' as usize] = true;
    table[b'E' as usize] = true;
    table
};

const INLINE_FRAMES: usize = 8;

/// A stack of frames, the first [`INLINE_FRAMES`] without allocating.
struct Stack<'a> {
    inline: [Option<Frame<'a>>; INLINE_FRAMES],
    len: usize,
    spill: Vec<Frame<'a>>,
}

impl Default for Stack<'_> {
    fn default() -> Self {
        Self {
            inline: [const { None }; INLINE_FRAMES],
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl<'a> Stack<'a> {
    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn push(&mut self, frame: Frame<'a>) {
        if self.len < INLINE_FRAMES {
            self.inline[self.len] = Some(frame);
        } else {
            self.spill.push(frame);
        }
        self.len += 1;
    }

    #[inline]
    fn pop(&mut self) -> Option<Frame<'a>> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        if self.len < INLINE_FRAMES {
            self.inline[self.len].take()
        } else {
            self.spill.pop()
        }
    }

    #[inline]
    fn last(&self) -> Option<&Frame<'a>> {
        match self.len {
            0 => None,
            n if n <= INLINE_FRAMES => self.inline[n - 1].as_ref(),
            _ => self.spill.last(),
        }
    }

    #[inline]
    fn last_mut(&mut self) -> Option<&mut Frame<'a>> {
        match self.len {
            0 => None,
            n if n <= INLINE_FRAMES => self.inline[n - 1].as_mut(),
            _ => self.spill.last_mut(),
        }
    }
}

struct StringEnd {
    /// Offset of the closing quote.
    end: usize,
    escaped: bool,
}

/// Finds the end of the string whose content starts at `from`, checking
/// `\u` escapes. `Ok(None)` when the string is not terminated or an escape is
/// malformed (the parser reports those).
fn scan_string(bytes: &[u8], from: usize, allow_nul: bool) -> Result<Option<StringEnd>, ScanError> {
    let mut j = from;
    let mut escaped = false;
    loop {
        // Most strings (keys, short values) end within a few words: eight
        // bytes at a time (SWAR) beats the setup of a vectorized search
        // there; longer strings go to `memchr2`.
        let short_end = (j + 64).min(bytes.len());
        let mut found = false;
        while j + 8 <= short_end {
            let Ok(word) = <[u8; 8]>::try_from(&bytes[j..j + 8]) else {
                break;
            };
            let mask = special_bytes(u64::from_le_bytes(word));
            if mask != 0 {
                j += (mask.trailing_zeros() / 8) as usize;
                found = true;
                break;
            }
            j += 8;
        }
        if !found {
            while j < short_end && bytes[j] != b'"' && bytes[j] != b'\\' {
                j += 1;
            }
            if j == short_end {
                let Some(k) = memchr::memchr2(b'"', b'\\', &bytes[j..]) else {
                    return Ok(None);
                };
                j += k;
            }
        }
        if bytes[j] == b'"' {
            return Ok(Some(StringEnd { end: j, escaped }));
        }
        escaped = true;
        match bytes.get(j + 1) {
            Some(b'u') => {
                let Some(cp) = hex4(bytes, j + 2) else {
                    return Ok(None);
                };
                if (0xD800..0xDC00).contains(&cp) {
                    let low = if bytes.get(j + 6) == Some(&b'\\') && bytes.get(j + 7) == Some(&b'u')
                    {
                        hex4(bytes, j + 8)
                    } else {
                        None
                    };
                    match low {
                        Some(low) if (0xDC00..0xE000).contains(&low) => j += 12,
                        _ => {
                            return Err(ScanError {
                                kind: ScanErrorKind::LoneSurrogate,
                                offset: j,
                            });
                        }
                    }
                } else if (0xDC00..0xE000).contains(&cp) {
                    return Err(ScanError {
                        kind: ScanErrorKind::LoneSurrogate,
                        offset: j,
                    });
                } else if cp == 0 && !allow_nul {
                    return Err(ScanError {
                        kind: ScanErrorKind::NulCharacter,
                        offset: j,
                    });
                } else {
                    j += 6;
                }
            }
            Some(_) => j += 2,
            None => return Ok(None),
        }
    }
}

/// A mask whose lowest set bit is the high bit of the first `"` or `\\`
/// byte in `word` (little-endian), or 0 when there is none.
#[inline]
fn special_bytes(word: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let quote = word ^ (LO * u64::from(b'"'));
    let backslash = word ^ (LO * u64::from(b'\\'));
    ((quote.wrapping_sub(LO) & !quote) | (backslash.wrapping_sub(LO) & !backslash)) & HI
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let mut v = 0u32;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        v = v * 16 + u32::from(n);
    }
    Some(v)
}

/// Decodes the escapes of a key (valid escapes only matter: an invalid one is
/// a syntax error the parser reports), so that `"a"` and `"\u0061"` compare
/// equal.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        match raw.get(i + 1) {
            Some(b'u') => {
                let hi = hex4(raw, i + 2).unwrap_or(0xFFFD);
                let (cp, used) = if (0xD800..0xDC00).contains(&hi) {
                    let lo = hex4(raw, i + 8).unwrap_or(0xDC00);
                    (
                        0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF),
                        12,
                    )
                } else {
                    (hi, 6)
                };
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += used;
            }
            Some(&e) => {
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'b' => 0x08,
                    b'f' => 0x0C,
                    other => other,
                });
                i += 2;
            }
            None => i += 1,
        }
    }
    out
}

/// Records `key` in the current object; `false` if it is already there.
#[inline]
fn insert_key<'a>(
    frame: &mut Frame<'a>,
    keys: &mut Vec<Cow<'a, [u8]>>,
    key: Cow<'a, [u8]>,
) -> bool {
    if let Some(set) = &mut frame.set {
        return set.insert(key);
    }
    let current = &keys[frame.keys_start..];
    // Length first, then two words: cheaper than hashing for a few keys.
    if current.iter().any(|k| same(k, &key)) {
        return false;
    }
    if current.len() >= LINEAR_KEYS {
        let mut set: HashSet<Cow<'a, [u8]>> = keys.drain(frame.keys_start..).collect();
        set.insert(key);
        frame.set = Some(Box::new(set));
    } else {
        keys.push(key);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(doc: &[u8]) -> Option<ScanErrorKind> {
        prescan(doc, &Config::default()).err().map(|e| e.kind())
    }

    #[test]
    fn accepts_ordinary_documents() {
        for doc in [
            &br#"{"a":1,"b":[true,false,null,-1.5e3,"x\"y"],"c":{"a":1}}"#[..],
            b"[]",
            b"\"\\ud83d\\ude00\"",
            b"  42 ",
            br#"{"a":{"b":1},"b":{"b":2}}"#,
        ] {
            assert_eq!(kind(doc), None, "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn rejects_each_kind() {
        let cases: &[(&[u8], ScanErrorKind)] = &[
            (b"\xEF\xBB\xBF{}", ScanErrorKind::Bom),
            (b"[\"\xff\"]", ScanErrorKind::InvalidUtf8),
            (br#"{"a":1,"a":2}"#, ScanErrorKind::DuplicateKey),
            (br#"{"a":1,"\u0061":2}"#, ScanErrorKind::DuplicateKey),
            (br#"["\ud800"]"#, ScanErrorKind::LoneSurrogate),
            (br#"["\udc00\ud800"]"#, ScanErrorKind::LoneSurrogate),
            (br#"["a\u0000"]"#, ScanErrorKind::NulCharacter),
        ];
        for (doc, want) in cases {
            assert_eq!(kind(doc), Some(*want), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn enforces_limits() {
        let config = Config::default()
            .max_depth(3)
            .max_string_bytes(4)
            .max_array_len(2)
            .max_object_members(2)
            .max_number_len(3);
        let check = |doc: &[u8]| prescan(doc, &config).err().map(|e| e.kind());
        assert_eq!(check(b"[[[]]]"), None);
        assert_eq!(check(b"[[[[]]]]"), Some(ScanErrorKind::DepthExceeded));
        assert_eq!(check(br#"["abcde"]"#), Some(ScanErrorKind::StringTooLong));
        assert_eq!(check(b"[1,2,3]"), Some(ScanErrorKind::TooManyItems));
        assert_eq!(
            check(br#"{"a":1,"b":2,"c":3}"#),
            Some(ScanErrorKind::TooManyMembers)
        );
        assert_eq!(check(b"[1234]"), Some(ScanErrorKind::NumberTooLong));
    }

    #[test]
    fn string_ends_are_found_at_every_offset() {
        for n in 0..150 {
            for tail in ["", "\\\"x", "\\u00e9", "é"] {
                let doc = format!("[\"{}{tail}\",\"{}\"]", "a".repeat(n), "b".repeat(n % 7));
                assert!(prescan(doc.as_bytes(), &Config::default()).is_ok(), "{doc}");
                let dup = format!(
                    "{{\"{}{tail}\":1,\"{}{tail}\":2}}",
                    "k".repeat(n),
                    "k".repeat(n)
                );
                let err = prescan(dup.as_bytes(), &Config::default()).unwrap_err();
                assert_eq!(err.kind(), ScanErrorKind::DuplicateKey, "{dup}");
            }
        }
    }

    #[test]
    fn key_comparison_sees_every_byte() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone();
                b[at] = b'#';
                assert!(!same(&a, &b), "{n} {at}");
            }
            assert!(!same(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn fields_out_of_order_and_repeated_are_found() {
        let mut structs = std::collections::HashMap::new();
        let fields: &'static [&'static str] = &["a", "b", "c"];
        structs.insert(String::new(), fields);
        let tree = Tree::from_patterns(&structs);
        let config = Config::default();
        let check = |doc: &'static str| prescan_with(doc.as_bytes(), &config, Some(&tree));
        assert_eq!(
            check(r#"{"c":1,"a":2,"b":3}"#).unwrap().1,
            Members::AllKnown
        );
        assert_eq!(check(r#"{"a":1,"x":2,"c":3}"#).unwrap().1, Members::Unknown);
        assert_eq!(check(r#"{"a":1,"bc":2}"#).unwrap().1, Members::Unknown);
        assert_eq!(check(r#"{"a":1,"\u0062":2}"#).unwrap().1, Members::AllKnown);
        let dup = check(r#"{"a":1,"\u0061":2}"#).unwrap_err();
        assert_eq!((dup.kind(), dup.offset()), (ScanErrorKind::DuplicateKey, 7));
        let dup = check(r#"{"b":1,"b":2}"#).unwrap_err();
        assert_eq!((dup.kind(), dup.offset()), (ScanErrorKind::DuplicateKey, 7));
    }

    #[test]
    fn large_objects_switch_to_hashing() {
        let mut doc = String::from("{");
        for i in 0..100 {
            doc.push_str(&format!("\"k{i}\":{i},"));
        }
        doc.push_str("\"k57\":0}");
        let err = prescan(doc.as_bytes(), &Config::default()).unwrap_err();
        assert_eq!(err.kind(), ScanErrorKind::DuplicateKey);
        assert_eq!(&doc[err.offset()..err.offset() + 5], "\"k57\"");
        doc.truncate(doc.len() - 9);
        doc.push('}');
        assert!(prescan(doc.as_bytes(), &Config::default()).is_ok());
    }
}
