//! Reusable step blocks (issue 17): a `[[macro]]` names a list of steps; a `[[step]]`
//! with `macro = "NAME"` (and optionally `client`) stands for those steps, each taking
//! the using step's `client` unless it names its own. Expansion happens on the spanned
//! tree before the steps are read, so every error of an expanded step points at the
//! macro's own lines.
//!
//! ```toml
//! [[macro]]
//! name = "join-and-greet"
//! [[macro.step]]
//! action = "join"
//! room = "Design"
//! [[macro.step]]
//! action = "post"
//! room = "Design"
//! text = "hello #{i}"
//!
//! [[step]]
//! client = "user1"
//! macro = "join-and-greet"
//! ```

use crate::scenario_parse::{did_you_mean, Problem};
use std::collections::BTreeMap;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

type Steps<'i> = Vec<Spanned<DeValue<'i>>>;

/// Takes `[[macro]]` out of `root` and replaces every `[[step]]` that uses one by the
/// macro's steps; pushes every problem (unknown macro, bad keys, nesting).
pub fn expand(root: &mut DeTable<'_>, out: &mut Vec<Problem>) {
    let macros = take_macros(root, out);
    let Some(steps) = root.get_mut("step") else {
        return;
    };
    let DeValue::Array(items) = steps.get_mut() else {
        return; // reported when the steps are read
    };
    if !items.iter().any(|i| uses_macro(i).is_some()) {
        return;
    }
    let old: Steps<'_> = items.iter().cloned().collect();
    let new: DeArray<'_> = old
        .into_iter()
        .flat_map(|item| expand_item(item, &macros, out))
        .collect();
    *items = new;
}

fn uses_macro<'a>(item: &'a Spanned<DeValue<'_>>) -> Option<&'a Spanned<DeValue<'a>>> {
    match item.get_ref() {
        DeValue::Table(t) => t.get("macro"),
        _ => None,
    }
}

/// The macros of the file by name (each a list of step tables).
fn take_macros<'i>(root: &mut DeTable<'i>, out: &mut Vec<Problem>) -> BTreeMap<String, Steps<'i>> {
    let mut macros = BTreeMap::new();
    let Some(list) = root.remove("macro") else {
        return macros;
    };
    let span = list.span();
    let DeValue::Array(items) = list.into_inner() else {
        out.push((span, "`macro` must be a list of tables: [[macro]]".into()));
        return macros;
    };
    for item in items {
        let at = item.span();
        let DeValue::Table(mut t) = item.into_inner() else {
            out.push((at, "each `macro` must be a table: [[macro]]".into()));
            continue;
        };
        let name = t
            .remove("name")
            .and_then(|n| n.get_ref().as_str().map(str::to_string));
        let steps = t.remove("step");
        for (k, _) in t.iter() {
            let msg = format!(
                "key `{}` does not apply to a [[macro]] (it takes name and [[macro.step]])",
                k.get_ref()
            );
            out.push((k.span(), msg));
        }
        let (Some(name), Some(steps)) = (name, steps) else {
            out.push((
                at,
                "a [[macro]] needs `name` and at least one [[macro.step]]".into(),
            ));
            continue;
        };
        let steps_at = steps.span();
        let DeValue::Array(steps) = steps.into_inner() else {
            out.push((
                steps_at,
                "`step` of a macro must be a list of tables: [[macro.step]]".into(),
            ));
            continue;
        };
        if macros
            .insert(name.clone(), steps.into_iter().collect())
            .is_some()
        {
            out.push((at, format!("macro {name:?} is defined twice")));
        }
    }
    macros
}

/// `item` itself, or the steps of the macro it uses with its `client`.
fn expand_item<'i>(
    item: Spanned<DeValue<'i>>,
    macros: &BTreeMap<String, Steps<'i>>,
    out: &mut Vec<Problem>,
) -> Steps<'i> {
    let span = item.span();
    let DeValue::Table(t) = item.get_ref() else {
        return vec![item];
    };
    let Some(m) = t.get("macro") else {
        return vec![item];
    };
    let Some(name) = m.get_ref().as_str() else {
        out.push((
            m.span(),
            "`macro`: expected the macro's name as a string".into(),
        ));
        return Vec::new();
    };
    for (k, _) in t.iter() {
        if !matches!(k.get_ref().as_ref(), "macro" | "client") {
            let msg = format!(
                "key `{}` does not apply to a step that uses a macro (it takes macro and client)",
                k.get_ref()
            );
            out.push((k.span(), msg));
        }
    }
    let Some(steps) = macros.get(name) else {
        let known: Vec<&str> = macros.keys().map(String::as_str).collect();
        let hint = did_you_mean(name, &known)
            .map(|d| format!("; did you mean {d:?}?"))
            .unwrap_or_default();
        out.push((
            m.span(),
            format!(
                "unknown macro {name:?}{hint} (macros: {})",
                known.join(", ")
            ),
        ));
        return Vec::new();
    };
    let client = t
        .get_key_value("client")
        .map(|(k, v)| (k.clone(), v.clone()));
    let mut expanded = Vec::new();
    for step in steps {
        let mut step = step.clone();
        if let DeValue::Table(st) = step.get_mut() {
            if let Some(inner) = st.get("macro") {
                out.push((
                    inner.span(),
                    "macros do not nest: a [[macro.step]] cannot use a macro".into(),
                ));
                continue;
            }
            if let (Some((k, v)), false) = (&client, st.contains_key("client")) {
                st.insert(k.clone(), v.clone());
            }
        }
        expanded.push(step);
    }
    if expanded.is_empty() {
        out.push((span, format!("macro {name:?} has no steps")));
    }
    expanded
}
