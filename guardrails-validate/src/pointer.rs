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
    pointer.push('/');
    pointer.push_str(itoa::Buffer::new().format(index));
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
    /// Whether `pointer` is kept (a walk that only counts events skips it).
    track: bool,
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
            track: true,
        }
    }

    /// A walker that leaves `pointer` empty.
    fn counting(bytes: &'a [u8]) -> Self {
        Self {
            track: false,
            ..Self::new(bytes)
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
            if self.track {
                self.pointer.truncate(*base);
                push_index(&mut self.pointer, index);
            }
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
                    if self.track {
                        if let Some((base, ..)) = self.stack.last() {
                            self.pointer.truncate(*base);
                        }
                        match std::str::from_utf8(raw) {
                            // No escapes: the key is its bytes (no allocation).
                            Ok(key) if !raw.contains(&b'\\') => {
                                push_token(&mut self.pointer, key);
                            }
                            _ => {
                                let key: String = serde_json::from_slice(&self.bytes[at..end])
                                    .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned());
                                push_token(&mut self.pointer, &key);
                            }
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
///
/// Linear in the document: the first walk only counts events (copying the
/// pointer at every one would cost the pointer's length each time, which a
/// hostile document of long keys makes quadratic); the second walks to the
/// chosen event and takes its pointer once.
pub(crate) fn pointer_at(bytes: &[u8], offset: usize) -> String {
    let mut walker = Walker::counting(bytes);
    // The chosen event (1-based), and whether the answer is its parent.
    let mut best: Option<(usize, bool)> = None;
    let mut count = 0;
    while let Some(event) = walker.next_event() {
        count += 1;
        match event {
            Event::Close(at) => {
                if at >= offset {
                    break;
                }
                // Past a closed container: its parent is the best guess.
                best = Some((count, true));
            }
            Event::Value(at) | Event::Key(at) => {
                if at > offset {
                    break;
                }
                best = Some((count, false));
            }
        }
    }
    let Some((chosen, parent)) = best else {
        return String::new();
    };
    let mut walker = Walker::new(bytes);
    for _ in 0..chosen {
        walker.next_event();
    }
    let mut pointer = walker.pointer;
    if parent && let Some(idx) = pointer.rfind('/') {
        pointer.truncate(idx);
    }
    pointer
}

/// The pointers asked for and their prefixes, as a tree of escaped
/// segments, with where each starts and closes in the document.
#[derive(Default)]
struct Node<'p> {
    children: HashMap<&'p str, usize>,
    start: Option<usize>,
    end: Option<usize>,
}

/// Sort keys for `pointers`, in document order: the offset where the value
/// starts, or, for a pointer absent from the document (a missing member),
/// the offset where its nearest present ancestor closes.
///
/// Linear in the document: each event looks up only its last segment under
/// its parent's node, never the whole pointer (which a hostile document of
/// long keys makes long at every event).
pub(crate) fn document_order(bytes: &[u8], pointers: &[&str]) -> Vec<usize> {
    const ROOT: usize = 0;
    let mut nodes: Vec<Node<'_>> = vec![Node::default()];
    let leaves: Vec<usize> = pointers
        .iter()
        .map(|p| {
            let mut node = ROOT;
            for segment in p.split('/').skip(1) {
                let next = nodes.len();
                node = *nodes[node].children.entry(segment).or_insert(next);
                if node == next {
                    nodes.push(Node::default());
                }
            }
            node
        })
        .collect();
    // The root starts at its first byte and closes at the end.
    nodes[ROOT].start = Some(0);
    nodes[ROOT].end = Some(bytes.len());

    // The prefixes of the walker's pointer seen so far: (length, node),
    // lengths increasing; `None` for a prefix that no pointer asked for.
    let mut path: Vec<(usize, Option<usize>)> = vec![(0, Some(ROOT))];
    let mut walker = Walker::new(bytes);
    while let Some(event) = walker.next_event() {
        let pointer = walker.pointer.as_str();
        match event {
            Event::Value(at) | Event::Key(at) => {
                let node = match pointer.rfind('/') {
                    None => Some(ROOT),
                    Some(idx) => {
                        // The pointer only ever changes at its end: every
                        // prefix up to its parent's is still in `path`.
                        while path.last().is_some_and(|(len, _)| *len > idx) {
                            path.pop();
                        }
                        let parent = path.last().and_then(|(_, node)| *node);
                        let node = parent
                            .and_then(|parent| nodes[parent].children.get(&pointer[idx + 1..]))
                            .copied();
                        path.push((pointer.len(), node));
                        node
                    }
                };
                if let Some(node) = node
                    && nodes[node].start.is_none()
                {
                    nodes[node].start = Some(at);
                }
            }
            Event::Close(at) => {
                // The container's own pointer, a prefix seen at its start.
                while path.last().is_some_and(|(len, _)| *len > pointer.len()) {
                    path.pop();
                }
                if let Some(&(len, Some(node))) = path.last()
                    && len == pointer.len()
                {
                    nodes[node].end = Some(at);
                }
            }
        }
    }
    pointers
        .iter()
        .zip(leaves)
        .map(|(p, leaf)| {
            if let Some(start) = nodes[leaf].start {
                return start;
            }
            // The nearest ancestor that closes in the document.
            let mut node = ROOT;
            let mut end = nodes[ROOT].end;
            for segment in p.split('/').skip(1) {
                let Some(&child) = nodes[node].children.get(segment) else {
                    break;
                };
                node = child;
                if nodes[node].end.is_some() && node != leaf {
                    end = nodes[node].end;
                }
            }
            end.unwrap_or(usize::MAX)
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
    fn long_keys_and_many_siblings_keep_exact_pointers() {
        // Long keys at every level and thousands of siblings: the shape
        // that made a walk copying or hashing the whole pointer at every
        // event quadratic.
        let long = "k".repeat(4096);
        let items = vec!["0"; 3000].join(",");
        let doc = format!(r#"{{"{long}":{{"{long}":[[{items}],{{"a":1,"b~/":[2]}}]}},"z":3}}"#);
        let bytes = doc.as_bytes();
        let base = format!("/{long}/{long}");
        let at = |needle: &str| pointer_at(bytes, doc.find(needle).unwrap());
        assert_eq!(at(r#""a":1"#), format!("{base}/1/a"));
        assert_eq!(at("[2]"), format!("{base}/1/b~0~1"));
        assert_eq!(at("3}"), "/z");
        // The last of the 3000 items.
        assert_eq!(
            pointer_at(bytes, doc.find("]").unwrap() - 1),
            format!("{base}/0/2999")
        );
        let wanted = [
            "/z".to_owned(),
            format!("{base}/1/b~0~1/0"),
            format!("{base}/0/2999"),
            format!("{base}/0/0"),
            format!("{base}/1/missing"),
            format!("/{long}/nope"),
        ];
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let keys = document_order(bytes, &wanted);
        assert!(keys[3] < keys[2], "{keys:?}");
        assert!(keys[2] < keys[1], "{keys:?}");
        // A missing member sorts where its parent object closes…
        assert_eq!(keys[4], doc.find("]}").unwrap() + 1);
        assert!(keys[1] < keys[4], "{keys:?}");
        // …after its last member, and before what follows the parent.
        assert!(keys[4] < keys[5], "{keys:?}");
        assert!(keys[5] < keys[0], "{keys:?}");
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
