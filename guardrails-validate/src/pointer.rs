//! RFC 6901 JSON pointers into the submitted document (error path only).

use std::collections::HashMap;

/// Appends `/token` to `pointer`, escaping `~` and `/` (RFC 6901).
pub(crate) fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Appends `/index` to `pointer`.
pub(crate) fn push_index(pointer: &mut String, index: usize) {
    use std::fmt::Write as _;
    let _ = write!(pointer, "/{index}");
}

/// A lenient walk over a JSON document that keeps the pointer of the
/// current position; it stops at the first token it cannot make sense of.
struct Walker<'a> {
    bytes: &'a [u8],
    i: usize,
    pointer: String,
    /// Per open container: pointer length before it, is-object, next index.
    stack: Vec<(usize, bool, usize)>,
    /// A key was just read: the next string is its value.
    after_key: bool,
}

/// Something the walker reached.
enum Event {
    /// A value starts at `offset`; the walker's pointer is the value's.
    Value(usize),
    /// A key starts at `offset`; the pointer is the member's.
    Key(usize),
    /// A container closes at `offset`; the pointer is the container's.
    Close(usize),
}

impl<'a> Walker<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            i: 0,
            pointer: String::new(),
            stack: Vec::new(),
            after_key: false,
        }
    }

    fn skip_ws(&mut self) {
        while self.i < self.bytes.len()
            && matches!(self.bytes[self.i], b' ' | b'\t' | b'\n' | b'\r')
        {
            self.i += 1;
        }
    }

    /// The end (exclusive, after the closing quote) of the string at `i`.
    fn string_end(&self) -> Option<usize> {
        let mut j = self.i + 1;
        while j < self.bytes.len() {
            match self.bytes[j] {
                b'"' => return Some(j + 1),
                b'\\' => j += 2,
                _ => j += 1,
            }
        }
        None
    }

    /// Before a value in an array: set the pointer to the item's.
    fn enter_item(&mut self) {
        if let Some((base, false, next)) = self.stack.last_mut() {
            let index = *next;
            *next += 1;
            self.pointer.truncate(*base);
            push_index(&mut self.pointer, index);
        }
    }

    fn next_event(&mut self) -> Option<Event> {
        loop {
            self.skip_ws();
            let c = *self.bytes.get(self.i)?;
            let in_object = matches!(self.stack.last(), Some((_, true, _)));
            match c {
                b',' | b':' => {
                    self.i += 1;
                    continue;
                }
                b'}' | b']' => {
                    let at = self.i;
                    let (base, ..) = self.stack.pop()?;
                    self.i += 1;
                    self.after_key = false;
                    // The pointer of the container itself.
                    self.pointer.truncate(base);
                    return Some(Event::Close(at));
                }
                b'"' if in_object && !self.after_key => {
                    let at = self.i;
                    let end = self.string_end()?;
                    let raw = &self.bytes[at + 1..end - 1];
                    if let Some((base, ..)) = self.stack.last() {
                        self.pointer.truncate(*base);
                    }
                    match std::str::from_utf8(raw) {
                        // No escapes: the key is its bytes (no allocation).
                        Ok(key) if !raw.contains(&b'\\') => push_token(&mut self.pointer, key),
                        _ => {
                            let key: String = serde_json::from_slice(&self.bytes[at..end])
                                .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned());
                            push_token(&mut self.pointer, &key);
                        }
                    }
                    self.i = end;
                    self.after_key = true;
                    return Some(Event::Key(at));
                }
                _ => {
                    let at = self.i;
                    self.enter_item();
                    self.after_key = false;
                    match c {
                        b'{' | b'[' => {
                            self.stack.push((self.pointer.len(), c == b'{', 0));
                            self.i += 1;
                        }
                        b'"' => self.i = self.string_end()?,
                        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                            while self.i < self.bytes.len()
                                && matches!(self.bytes[self.i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'a'..=b'z' | b'E')
                            {
                                self.i += 1;
                            }
                        }
                        _ => return None,
                    }
                    return Some(Event::Value(at));
                }
            }
        }
    }
}

/// The pointer of the innermost value or member at byte `offset`.
pub(crate) fn pointer_at(bytes: &[u8], offset: usize) -> String {
    let mut walker = Walker::new(bytes);
    let mut best = String::new();
    while let Some(event) = walker.next_event() {
        let at = match event {
            Event::Value(at) | Event::Key(at) => at,
            Event::Close(at) => {
                if at >= offset {
                    break;
                }
                // Past a closed container: its parent is the best guess.
                best.clone_from(&walker.pointer);
                if let Some(idx) = best.rfind('/') {
                    best.truncate(idx);
                }
                continue;
            }
        };
        if at > offset {
            break;
        }
        best.clone_from(&walker.pointer);
    }
    best
}

/// Sort keys for `pointers`, in document order: the offset where the value
/// starts, or, for a pointer absent from the document (a missing member),
/// the offset where its nearest present ancestor closes.
pub(crate) fn document_order(bytes: &[u8], pointers: &[&str]) -> Vec<usize> {
    let mut wanted: HashMap<&str, (Option<usize>, Option<usize>)> = HashMap::new();
    for p in pointers {
        let mut p: &str = p;
        loop {
            wanted.entry(p).or_insert((None, None));
            match p.rfind('/') {
                Some(idx) => p = &p[..idx],
                None => break,
            }
        }
    }
    let mut walker = Walker::new(bytes);
    if wanted.contains_key("") {
        // the root starts at its first byte; it closes at the end
        wanted.insert("", (Some(0), Some(bytes.len())));
    }
    while let Some(event) = walker.next_event() {
        match event {
            Event::Value(at) | Event::Key(at) => {
                if let Some(entry) = wanted.get_mut(walker.pointer.as_str())
                    && entry.0.is_none()
                {
                    entry.0 = Some(at);
                }
            }
            Event::Close(at) => {
                if let Some(entry) = wanted.get_mut(walker.pointer.as_str()) {
                    entry.1 = Some(at);
                }
            }
        }
    }
    pointers
        .iter()
        .map(|p| {
            if let Some((Some(start), _)) = wanted.get(p) {
                return *start;
            }
            let mut p: &str = p;
            while let Some(idx) = p.rfind('/') {
                p = &p[..idx];
                if let Some((_, Some(end))) = wanted.get(p) {
                    return *end;
                }
            }
            usize::MAX
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"{"a":1,"b":[10,{"c/d":"x","e~":[]}],"f":{}}"#;

    #[test]
    fn pointer_at_finds_the_innermost_token() {
        let at = |needle: &str| {
            let s = std::str::from_utf8(DOC).unwrap();
            pointer_at(DOC, s.find(needle).unwrap())
        };
        assert_eq!(at("1,"), "/a");
        assert_eq!(at("10"), "/b/0");
        assert_eq!(at("\"x\""), "/b/1/c~1d");
        assert_eq!(at("\"e~\""), "/b/1/e~0");
        assert_eq!(at("[]}"), "/b/1/e~0");
        assert_eq!(at("{}}"), "/f");
        assert_eq!(pointer_at(DOC, 0), "");
    }

    #[test]
    fn document_order_places_missing_members_at_their_parents_end() {
        let keys = document_order(DOC, &["/f", "/b/1/missing", "/a", "/b/0", "/nope"]);
        assert!(keys[2] < keys[3]);
        assert!(keys[3] < keys[1]);
        assert!(keys[1] < keys[0]);
        assert!(keys[0] < keys[4]);
    }
}
