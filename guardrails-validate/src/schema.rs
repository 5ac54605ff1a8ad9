//! The serde field names of a type, for mapping garde's Rust field names to
//! the JSON names the client sent.
//!
//! garde reports paths with Rust field names; serde may rename fields. The
//! probe drives `T::deserialize` with a fake deserializer that records, for
//! each struct it meets, the field names serde expects (the JSON names, in
//! declaration order) under a path pattern where array indices are `*`.
//! A Rust name is then mapped to the JSON name that equals it, or that equals
//! it under one of serde's `rename_all` conventions. A per-field
//! `#[serde(rename = "...")]` to an unrelated name cannot be derived this way
//! (serde does not keep Rust names at run time); such a field keeps its Rust
//! name in pointers.
//!
//! The probe only runs when garde reports a violation, never on success.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::scan::Tree;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};

/// Field names per struct path pattern (`""`, `"/lines/*"`, …).
#[derive(Debug, Default)]
pub(crate) struct Schema {
    structs: HashMap<String, &'static [&'static str]>,
}

/// The pre-scan [`Tree`] of `T`, probed once per type and thread.
pub(crate) fn tree_of<T: de::DeserializeOwned + 'static>() -> Rc<Tree> {
    thread_local! {
        static TREES: RefCell<HashMap<TypeId, Rc<Tree>, BuildHasherDefault<IdHasher>>> =
            RefCell::new(HashMap::default());
    }
    let id = TypeId::of::<T>();
    if let Some(tree) =
        TREES.with(|trees| trees.try_borrow().ok().and_then(|t| t.get(&id).cloned()))
    {
        return tree;
    }
    let tree = Rc::new(Tree::from_patterns(&Schema::of::<T>().structs));
    TREES.with(|trees| {
        if let Ok(mut trees) = trees.try_borrow_mut() {
            trees.insert(id, Rc::clone(&tree));
        }
    });
    tree
}

/// A hasher for [`TypeId`]s, which are already hashes: SipHash on every
/// request buys nothing.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

impl Schema {
    /// Probes `T`. A `Deserialize` impl that panics on the probe's made-up
    /// values leaves the schema empty (pointers then keep Rust names, and
    /// strict mode takes the `serde_ignored` path) rather than failing the
    /// request.
    pub(crate) fn of<'de, T: serde::Deserialize<'de>>() -> Self {
        let mut schema = Schema::default();
        let probed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = T::deserialize(Probe {
                schema: &mut schema,
                pattern: String::new(),
                depth: 0,
            });
        }));
        if probed.is_err() {
            return Schema::default();
        }
        schema
    }

    /// The serde field names of the struct at `pattern`.
    pub(crate) fn fields(&self, pattern: &str) -> Option<&'static [&'static str]> {
        self.structs.get(pattern).copied()
    }

    /// The JSON name of Rust field `rust` of the struct at `pattern`.
    pub(crate) fn json_name(&self, pattern: &str, rust: &str) -> Option<&'static str> {
        let fields = self.structs.get(pattern)?;
        let rust = rust.strip_prefix("r#").unwrap_or(rust);
        for candidate in conventions(rust) {
            if let Some(found) = fields.iter().find(|f| **f == candidate) {
                return Some(found);
            }
        }
        None
    }
}

/// `rust` under each of serde's `rename_all` conventions, identity first.
fn conventions(rust: &str) -> [String; 8] {
    let words: Vec<&str> = rust.split('_').filter(|w| !w.is_empty()).collect();
    let capitalize = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let pascal: String = words.iter().map(|w| capitalize(w)).collect();
    let camel = match words.split_first() {
        Some((first, rest)) => {
            (*first).to_owned() + &rest.iter().map(|w| capitalize(w)).collect::<String>()
        }
        None => String::new(),
    };
    [
        rust.to_owned(),
        camel,
        pascal,
        rust.replace('_', "-"),
        rust.to_uppercase(),
        rust.to_uppercase().replace('_', "-"),
        rust.to_lowercase(),
        rust.replace('_', ""),
    ]
}

const MAX_PROBE_DEPTH: usize = 24;

struct Probe<'s> {
    schema: &'s mut Schema,
    pattern: String,
    depth: usize,
}

#[derive(Debug)]
struct ProbeError;

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        ProbeError
    }
}

impl<'s> Probe<'s> {
    fn child(&mut self, token: &str) -> Result<Probe<'_>, ProbeError> {
        if self.depth >= MAX_PROBE_DEPTH {
            return Err(ProbeError);
        }
        let mut pattern = self.pattern.clone();
        if !token.is_empty() {
            crate::pointer::push_token(&mut pattern, token);
        }
        Ok(Probe {
            schema: self.schema,
            pattern,
            depth: self.depth + 1,
        })
    }
}

macro_rules! probe_scalar {
    ($($method:ident => $visit:ident($($value:expr)?);)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    probe_scalar! {
        deserialize_bool => visit_bool(false);
        deserialize_i8 => visit_i8(0);
        deserialize_i16 => visit_i16(0);
        deserialize_i32 => visit_i32(0);
        deserialize_i64 => visit_i64(0);
        deserialize_i128 => visit_i128(0);
        deserialize_u8 => visit_u8(0);
        deserialize_u16 => visit_u16(0);
        deserialize_u32 => visit_u32(0);
        deserialize_u64 => visit_u64(0);
        deserialize_u128 => visit_u128(0);
        deserialize_f32 => visit_f32(0.0);
        deserialize_f64 => visit_f64(0.0);
        deserialize_char => visit_char('a');
        deserialize_str => visit_str("");
        deserialize_string => visit_str("");
        deserialize_bytes => visit_bytes(b"");
        deserialize_byte_buf => visit_bytes(b"");
        deserialize_unit => visit_unit();
        deserialize_any => visit_unit();
        deserialize_ignored_any => visit_unit();
        deserialize_identifier => visit_str("");
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_some(self.child("")?)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        mut self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self.child("")?)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ProbeError> {
        let child = self.child("*")?;
        visitor.visit_seq(ProbeSeq {
            next: Some(child),
            remaining: 1,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        mut self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        if len <= 1 {
            let child = self.child("*")?;
            return visitor.visit_seq(ProbeSeq {
                next: Some(child),
                remaining: len,
            });
        }
        // One pattern (`*`) cannot tell the elements of `(A, B)` apart:
        // recording `A`'s fields there would check `B`'s objects against
        // them, and accept `A`'s fields in `B` as known. Nothing is recorded
        // below a tuple, so its members are checked by deserializing.
        let mut scratch = Schema::default();
        let child = Probe {
            schema: &mut scratch,
            pattern: String::new(),
            depth: self.depth + 1,
        };
        visitor.visit_seq(ProbeSeq {
            next: Some(child),
            remaining: len,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_map(de::value::MapDeserializer::<
            std::iter::Empty<((), ())>,
            ProbeError,
        >::new(std::iter::empty()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.schema.structs.insert(self.pattern.clone(), fields);
        visitor.visit_map(ProbeStruct {
            probe: self,
            fields,
            next: 0,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        let variant = variants.first().copied().ok_or(ProbeError)?;
        visitor.visit_enum(ProbeEnum {
            probe: self,
            variant,
        })
    }
}

struct ProbeSeq<'s> {
    next: Option<Probe<'s>>,
    remaining: usize,
}

impl<'de> de::SeqAccess<'de> for ProbeSeq<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        match self.next.take() {
            Some(probe) => seed.deserialize(probe).map(Some),
            // Further tuple elements: plain values, no more recording.
            None => seed
                .deserialize(de::value::UnitDeserializer::<ProbeError>::new())
                .map(Some),
        }
    }
}

struct ProbeStruct<'s> {
    probe: Probe<'s>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> de::MapAccess<'de> for ProbeStruct<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(IntoDeserializer::<ProbeError>::into_deserializer(*field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let field = self.fields.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        seed.deserialize(self.probe.child(field)?)
    }
}

struct ProbeEnum<'s> {
    probe: Probe<'s>,
    variant: &'static str,
}

impl<'de, 's> de::EnumAccess<'de> for ProbeEnum<'s> {
    type Error = ProbeError;
    type Variant = Probe<'s>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Probe<'s>), ProbeError> {
        let value = seed.deserialize(IntoDeserializer::<ProbeError>::into_deserializer(
            self.variant,
        ))?;
        Ok((value, self.probe))
    }
}

impl<'de> de::VariantAccess<'de> for Probe<'_> {
    type Error = ProbeError;

    fn unit_variant(self) -> Result<(), ProbeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ProbeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        customer_email: String,
        lines: Vec<Inner>,
        maybe: Option<Inner>,
        #[serde(rename = "type")]
        r#type: u8,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    #[allow(dead_code)]
    struct Inner {
        unit_price: u64,
    }

    #[test]
    fn maps_rust_names_to_json_names() {
        let schema = Schema::of::<Outer>();
        assert_eq!(
            schema.json_name("", "customer_email"),
            Some("customerEmail")
        );
        assert_eq!(schema.json_name("", "r#type"), Some("type"));
        assert_eq!(
            schema.json_name("/lines/*", "unit_price"),
            Some("UNIT_PRICE")
        );
        assert_eq!(schema.json_name("/maybe", "unit_price"), Some("UNIT_PRICE"));
        assert_eq!(schema.json_name("", "nope"), None);
    }
}

#[cfg(test)]
mod tuple_tests {
    use crate::{Config, json};
    use garde::Validate;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Validate)]
    struct Left {
        #[garde(skip)]
        left: u32,
        #[garde(skip)]
        shared: u32,
    }

    /// Its one field is also one of `Left`'s.
    #[derive(Debug, Deserialize, Validate)]
    struct Right {
        #[garde(skip)]
        shared: u32,
    }

    #[derive(Debug, Deserialize, Validate)]
    struct Pair {
        #[garde(skip)]
        pair: (Left, Right),
    }

    #[test]
    fn each_tuple_element_is_checked_against_its_own_fields() {
        let config = Config::default();
        let ok = br#"{"pair":[{"left":1,"shared":2},{"shared":3}]}"#;
        let pair = json::from_slice::<Pair>(ok, &config, &()).unwrap().pair;
        assert_eq!((pair.0.left, pair.0.shared, pair.1.shared), (1, 2, 3));
        // `left` is a field of the first element's type, not of the
        // second's: unknown there.
        let sneaky = br#"{"pair":[{"left":1,"shared":2},{"shared":3,"left":4}]}"#;
        let problem = json::from_slice::<Pair>(sneaky, &config, &()).unwrap_err();
        assert_eq!(problem.status().as_u16(), 422);
        let found: Vec<(&str, &str)> = problem
            .violations()
            .iter()
            .map(|v| (v.pointer.as_str(), &*v.code))
            .collect();
        assert_eq!(found, [("/pair/1/left", "unknown_field")]);
    }
}
