//! The depth limit, with introspection under a cap of its own.
//!
//! The standard introspection query of graphql-js (what GraphQL Code
//! Generator, graphql-inspector, Postman and Insomnia send) nests `ofType`
//! nine levels deep inside `__schema`, deeper than any query of the data
//! needs. So the data's limit ([`super::Limits::max_depth`]) counts fields
//! outside `__schema` and `__type` only, and a document as a whole, with
//! introspection, may nest at most [`INTROSPECTION_MAX_DEPTH`] fields deep
//! (also the schema's own depth limit, as a backstop).
//!
//! Depth counts as async-graphql counts it: a field is one level more than
//! the selection it is in; fragments add no level.

use std::collections::{HashMap, HashSet};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult, Value, Variables};
use std::sync::Arc;

/// The most fields a document may nest, introspection included: the
/// standard introspection query needs 13.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;

/// The fragments walked so far: their depths once known, and those being
/// walked (a fragment that spreads itself is refused by validation; here
/// it only must not loop). Each fragment is walked once, however often it
/// is spread: a document of fragments that spread the next one twice would
/// otherwise cost 2^n steps.
#[derive(Default)]
struct Fragments<'a> {
    known: HashMap<&'a str, (usize, usize)>,
    walking: HashSet<&'a str>,
}

/// How deep a selection set nests: `(data, all)`, where `data` leaves out
/// the subtrees of `__schema` and `__type`.
fn depth<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, fragments: &mut Fragments<'a>) -> (usize, usize) {
    let mut data = 0;
    let mut all = 0;
    for item in &set.items {
        let (d, a) = match &item.node {
            Selection::Field(f) => {
                let (d, a) = depth(doc, &f.node.selection_set.node, fragments);
                let name = f.node.name.node.as_str();
                if name == "__schema" || name == "__type" { (0, a + 1) } else { (d + 1, a + 1) }
            }
            Selection::InlineFragment(f) => depth(doc, &f.node.selection_set.node, fragments),
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.as_str();
                match (fragments.known.get(name), doc.fragments.get(&s.node.fragment_name.node)) {
                    (Some(known), _) => *known,
                    (None, Some(fragment)) if fragments.walking.insert(name) => {
                        let r = depth(doc, &fragment.node.selection_set.node, fragments);
                        fragments.walking.remove(name);
                        fragments.known.insert(name, r);
                        r
                    }
                    _ => (0, 0),
                }
            }
        };
        data = data.max(d);
        all = all.max(a);
    }
    (data, all)
}

/// The deepest nesting of any operation of `doc`: `(data, all)`.
#[must_use]
pub fn document_depth(doc: &ExecutableDocument) -> (usize, usize) {
    let mut fragments = Fragments::default();
    operations(doc)
        .into_iter()
        .map(|s| depth(doc, s, &mut fragments))
        .fold((0, 0), |(d, a), (d2, a2)| (d.max(d2), a.max(a2)))
}

fn selects_introspection<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, seen: &mut HashSet<&'a str>) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(f) => {
            let name = f.node.name.node.as_str();
            name == "__schema" || name == "__type" || selects_introspection(doc, &f.node.selection_set.node, seen)
        }
        Selection::InlineFragment(f) => selects_introspection(doc, &f.node.selection_set.node, seen),
        Selection::FragmentSpread(s) => {
            let name = s.node.fragment_name.node.as_str();
            match doc.fragments.get(&s.node.fragment_name.node) {
                Some(fragment) if seen.insert(name) => {
                    selects_introspection(doc, &fragment.node.selection_set.node, seen)
                }
                _ => false,
            }
        }
    })
}

/// Whether any operation of `doc` selects `__schema` or `__type`.
#[must_use]
pub fn introspects(doc: &ExecutableDocument) -> bool {
    let mut seen = HashSet::new();
    operations(doc).into_iter().any(|s| selects_introspection(doc, s, &mut seen))
}

fn operations(doc: &ExecutableDocument) -> Vec<&SelectionSet> {
    match &doc.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node.selection_set.node).collect(),
    }
}

/// The extension that applies the data's depth limit after parsing, and
/// refuses introspection when it is turned off.
#[derive(Clone, Copy, Debug)]
pub struct DepthLimit {
    pub max_depth: usize,
    pub introspection: bool,
}

fn validation_error(message: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", Value::from("GRAPHQL_VALIDATION_FAILED"));
    e.extensions = Some(ext);
    e
}

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DepthLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let (data, all) = document_depth(&doc);
        if data > self.max_depth || all > INTROSPECTION_MAX_DEPTH {
            // The message and code async-graphql's own limit gives.
            return Err(validation_error("Query is nested too deep."));
        }
        if !self.introspection && introspects(&doc) {
            return Err(validation_error("Introspection is turned off on this server (TANDEM_INTROSPECTION=false)."));
        }
        Ok(doc)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn depths(q: &str) -> (usize, usize) {
        document_depth(&async_graphql::parser::parse_query(q).unwrap())
    }

    #[test]
    fn fields_count_and_fragments_do_not() {
        assert_eq!(depths("{ a }"), (1, 1));
        assert_eq!(depths("{ a { b c { d } } }"), (3, 3));
        assert_eq!(depths("query { a { ...F } } fragment F on T { b { c } }"), (3, 3));
        assert_eq!(depths("{ a { ... on T { b } } }"), (2, 2));
        assert_eq!(depths("query X { a } query Y { a { b } }"), (2, 2));
    }

    #[test]
    fn introspection_counts_only_against_its_own_cap() {
        assert_eq!(depths("{ __schema { types { fields { type { ofType { name } } } } } }"), (0, 6));
        assert_eq!(depths("{ __type(name: \"T\") { name } a { b } }"), (2, 2));
        assert_eq!(depths("{ __typename a { __typename } }"), (2, 2));
        let doc = |q: &str| async_graphql::parser::parse_query(q).unwrap();
        assert!(introspects(&doc("{ __schema { types { name } } }")));
        assert!(introspects(&doc("{ a { b } __type(name: \"T\") { name } }")));
        assert!(!introspects(&doc("{ __typename a { b } }")));
        assert!(introspects(&doc("query { ...F } fragment F on Query { __schema { description } }")));
    }

    #[test]
    fn fragments_spread_many_times_are_walked_once() {
        // Each fragment spreads the next twice: 2^40 paths, 41 fragments.
        let mut q = String::from("query { ...F0 }");
        for i in 0..40 {
            q.push_str(&format!(" fragment F{i} on Query {{ a {{ ...F{n} ...F{n} }} }}", n = i + 1));
        }
        q.push_str(" fragment F40 on Query { b }");
        assert_eq!(depths(&q), (41, 41));
    }

    #[test]
    fn a_fragment_spreading_itself_does_not_loop() {
        assert_eq!(depths("{ a { ...F } } fragment F on T { b { ...F } }"), (2, 2));
    }
}
