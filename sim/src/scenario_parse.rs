//! Reading scenario files with every error at once: the document is parsed into a
//! spanned tree (`toml::de::DeTable`), each `[[step]]`/`[[fault]]` table is split into
//! its common keys ([`StepCommon`]) and its action's keys ([`Action`], deserialized
//! through the externally tagged form so each error keeps the offending value's span),
//! and serde's messages are put in plain words ("expected a number of milliseconds, got
//! the string \"500\"") with "did you mean" for misspelt actions and keys.

use crate::step::{Action, ActionKind, Step, StepCommon, ACTIONS, COMMON_KEYS};
use std::borrow::Cow;
use std::ops::Range;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// One problem in a file: the byte range it is about and what is wrong.
pub type Problem = (Range<usize>, String);

/// The closest of `candidates` to `word` (edit distance at most 2, or a prefix), if any.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(word.len() / 4) || c.starts_with(word) && word.len() >= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `unknown WHAT WORD; did you mean CLOSE? (expected one of LIST)` (the hint only when a
/// word of `list` is close), `word` (without backticks) and the suggestion quoted by
/// `quote`.
fn unknown(what: &str, word: &str, list: &[String], quote: fn(&str) -> String) -> String {
    let word = word.trim_matches('`');
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    let hint = did_you_mean(word, &refs)
        .map(|d| format!("; did you mean {}?", quote(d)))
        .unwrap_or_default();
    format!(
        "unknown {what} {}{hint} (expected one of {})",
        quote(word),
        list.join(", ")
    )
}

fn backticked(list: &str) -> Vec<String> {
    list.split(", ")
        .map(|s| s.trim().trim_matches('`').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What a value of type `want` (serde's words) is, for a key named `key`.
fn wanted(want: &str, key: &str) -> String {
    let whole = matches!(want, "u8" | "u16" | "u32" | "u64" | "usize");
    if whole && key.ends_with("ms") {
        "a number of milliseconds".into()
    } else if whole {
        "a whole number (0 or more)".into()
    } else if matches!(want, "f32" | "f64") {
        "a number".into()
    } else if want == "a boolean" {
        "true or false".into()
    } else if want == "a sequence" {
        "a list [...]".into()
    } else if want.starts_with("struct") || want == "a map" {
        "a table { ... }".into()
    } else {
        want.to_string()
    }
}

fn got(what: &str) -> String {
    let what = what.replace('`', "");
    if let Some(s) = what.strip_prefix("string ") {
        format!("the string {s}")
    } else if let Some(n) = what
        .strip_prefix("integer ")
        .or_else(|| what.strip_prefix("floating point "))
    {
        format!("the number {n}")
    } else if let Some(b) = what.strip_prefix("boolean ") {
        b.to_string()
    } else if what == "sequence" {
        "a list".into()
    } else if what == "map" {
        "a table".into()
    } else {
        what
    }
}

/// serde's message `msg` about the key `key`, in plain words.
pub fn plain_words(msg: &str, key: &str) -> String {
    let msg = msg.trim();
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((what, want)) = rest.rsplit_once(", expected ") {
                let key_part = if key.is_empty() {
                    String::new()
                } else {
                    format!("`{key}`: ")
                };
                return format!(
                    "{key_part}expected {}, got {}",
                    wanted(want, key),
                    got(what)
                );
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        if let Some((word, list)) = rest.split_once(", expected one of ") {
            return unknown("value", word, &backticked(list), |w| format!("{w:?}"));
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let (word, list) = rest
            .split_once(", expected one of ")
            .or_else(|| rest.split_once(", expected "))
            .unwrap_or((rest, ""));
        return unknown("key", word, &backticked(list), |w| format!("`{w}`"));
    }
    if let Some(rest) = msg.strip_prefix("unexpected keys in table: ") {
        let (words, list) = rest.split_once(", available keys: ").unwrap_or((rest, ""));
        let list: Vec<String> = list
            .split(", ")
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        let word = words.split(", ").next().unwrap_or(words);
        return unknown("key", word, &list, |w| format!("`{w}`"));
    }
    if let Some(field) = msg.strip_prefix("missing field ") {
        return format!("needs {field}");
    }
    msg.to_string()
}

/// The key (dotted) whose value contains byte `offset` in `table`, if any.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    for (k, v) in table.iter() {
        if k.span().contains(&offset) {
            return Some(k.get_ref().to_string());
        }
        if v.span().contains(&offset) {
            if let DeValue::Table(t) = v.get_ref() {
                if let Some(inner) = key_at(t, offset) {
                    return Some(inner);
                }
            }
            return Some(k.get_ref().to_string());
        }
    }
    None
}

/// An error of deserializing (part of) a table spanning `whole`, in plain words.
fn problem(e: toml::de::Error, table: &DeTable<'_>, whole: &Range<usize>) -> Problem {
    let span = e.span().unwrap_or(whole.clone());
    let key = key_at(table, span.start).unwrap_or_default();
    (span, plain_words(e.message(), &key))
}

fn value_of<'i>(span: Range<usize>, table: DeTable<'i>) -> ValueDeserializer<'i> {
    ValueDeserializer::from(Spanned::new(span, DeValue::Table(table)))
}

/// A key in `table` that is not a common key and not the action's: an error naming only
/// that action's keys, with "did you mean".
fn foreign_key(kind: ActionKind, key: &str) -> String {
    let own = kind.keys();
    let mut candidates: Vec<&str> = own.to_vec();
    candidates.extend(COMMON_KEYS.iter().copied().filter(|k| *k != "action"));
    let hint = did_you_mean(key, &candidates)
        .map(|d| format!("; did you mean `{d}`?"))
        .unwrap_or_default();
    let takes = if own.is_empty() {
        "no keys of its own".to_string()
    } else {
        format!("{} of its own", own.join(", "))
    };
    let elsewhere: Vec<&str> = ACTIONS
        .iter()
        .filter(|a| a.keys().contains(&key))
        .map(|a| a.name())
        .take(4)
        .collect();
    let belongs = if elsewhere.is_empty() || !hint.is_empty() {
        String::new()
    } else {
        format!(" (`{key}` belongs to {})", elsewhere.join(", "))
    };
    format!(
        "key `{key}` does not apply to action `{}`{hint}{belongs}; `{}` takes {takes}, and every step takes client, repeat, think_ms, timeout_ms, allow_fail, expect",
        kind.name(),
        kind.name()
    )
}

/// Parses one step table spanning `span`; pushes its problems.
/// With `fault_only`, the action must be a fault (a `[[fault]]`).
pub fn parse_step(
    span: Range<usize>,
    table: DeTable<'_>,
    fault_only: bool,
    out: &mut Vec<Problem>,
) -> Option<Step> {
    let (name, kind, at) = action_of(&span, &table, fault_only, out)?;
    let own = kind.keys();
    let (mut common, mut rest) = (DeTable::new(), DeTable::new());
    let mut ok = true;
    for (k, v) in table.iter() {
        if COMMON_KEYS.contains(&k.get_ref().as_ref()) {
            common.insert(k.clone(), v.clone());
        } else if own.contains(&k.get_ref().as_ref()) {
            rest.insert(k.clone(), v.clone());
        } else {
            out.push((k.span(), foreign_key(kind, k.get_ref())));
            ok = false;
        }
    }
    let common =
        match <StepCommon as serde::Deserialize>::deserialize(value_of(span.clone(), common)) {
            Ok(c) => Some(c),
            Err(e) => {
                out.push(problem(e, &table, &span));
                None
            }
        };
    let mut outer = DeTable::new();
    outer.insert(
        Spanned::new(at, Cow::Owned(name.clone())),
        Spanned::new(span.clone(), DeValue::Table(rest)),
    );
    let action = match <Action as serde::Deserialize>::deserialize(value_of(span.clone(), outer)) {
        Ok(a) => Some(a),
        Err(e) => {
            let (at, msg) = problem(e, &table, &span);
            let msg = match msg.strip_prefix("needs ") {
                Some(field) => format!("action `{name}` needs {field}"),
                None => msg,
            };
            out.push((at, msg));
            None
        }
    };
    let (common, action) = (common?, action?);
    ok.then(|| step_of(common, action))
}

/// The step's action: its name, kind and the span of its value; pushes why not.
fn action_of(
    span: &Range<usize>,
    table: &DeTable<'_>,
    fault_only: bool,
    out: &mut Vec<Problem>,
) -> Option<(String, ActionKind, Range<usize>)> {
    let names: Vec<&str> = ACTIONS.iter().map(|a| a.name()).collect();
    let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref() == "action") else {
        let msg = format!(
            "step has no `action` (expected one of: {})",
            names.join(", ")
        );
        out.push((span.clone(), msg));
        return None;
    };
    let at = value.span();
    let Some(name) = value.get_ref().as_str().map(str::to_string) else {
        let msg = "`action`: expected the action's name as a string".to_string();
        out.push((at, msg));
        return None;
    };
    let Some(kind) = ActionKind::from_name(&name) else {
        let hint = did_you_mean(&name, &names)
            .map(|d| format!("; did you mean {d:?}?"))
            .unwrap_or_default();
        let msg = format!(
            "unknown action {name:?}{hint} (expected one of: {})",
            names.join(", ")
        );
        out.push((at, msg));
        return None;
    };
    if fault_only && !kind.is_fault() {
        out.push((at, format!("`{name}` is not a fault; a [[fault]] is one of: overload, partition, repair, latency, loss, crash, restart, store-fail, disk-full")));
        return None;
    }
    Some((name, kind, at))
}

fn step_of(common: StepCommon, action: Action) -> Step {
    Step {
        client: common.client,
        action: Spanned::new(common.action.span(), action),
        repeat: common.repeat.map(|r| *r.get_ref()),
        think_ms: common.think_ms,
        timeout_ms: common.timeout_ms.map(|t| *t.get_ref()),
        allow_fail: common.allow_fail,
        before_step: common.before_step.map(|b| *b.get_ref()),
        expect: common.expect.map(|e| e.into_inner()).unwrap_or_default(),
    }
}

/// Takes the `[[step]]` (or `[[fault]]`) array `key` out of `root` and parses each
/// table; pushes every problem.
pub fn take_steps(root: &mut DeTable<'_>, key: &str, out: &mut Vec<Problem>) -> Vec<Spanned<Step>> {
    let Some(list) = root.remove(key) else {
        return Vec::new();
    };
    let list_span = list.span();
    let DeValue::Array(items) = list.into_inner() else {
        out.push((
            list_span,
            format!("`{key}` must be a list of tables: [[{key}]]"),
        ));
        return Vec::new();
    };
    let mut steps = Vec::new();
    for item in items {
        let span = item.span();
        match item.into_inner() {
            DeValue::Table(t) => {
                if let Some(s) = parse_step(span.clone(), t, key == "fault", out) {
                    steps.push(Spanned::new(span, s));
                }
            }
            _ => out.push((span, format!("each `{key}` must be a table: [[{key}]]"))),
        }
    }
    steps
}

/// Problems with `repeat`, `timeout_ms` and `before_step` placement that serde cannot
/// see (values, not types).
pub fn common_value_problems(step: &Spanned<Step>, in_fault_list: bool, out: &mut Vec<Problem>) {
    let s = step.get_ref();
    let at = step.span();
    if s.repeat == Some(0) {
        out.push((at.clone(), "`repeat` must be at least 1".into()));
    }
    if s.timeout_ms == Some(0) {
        out.push((at.clone(), "`timeout_ms` must be at least 1".into()));
    }
    if !in_fault_list && s.before_step.is_some() {
        out.push((
            at,
            "`before_step` belongs in a [[fault]], not a [[step]]".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> (Option<Step>, Vec<Problem>) {
        let root = DeTable::parse(text).expect("toml");
        let span = root.span();
        let mut out = Vec::new();
        let s = parse_step(span, root.into_inner(), false, &mut out);
        (s, out)
    }

    /// The keys of action `kind` as serde knows them (its variant of [`Action`]).
    fn action_keys(kind: ActionKind) -> Vec<String> {
        let probe = format!("{} = {{ zz-no-such-key = 0 }}", kind.name());
        let msg = ValueDeserializer::parse(&format!("{{ {probe} }}"))
            .map_err(|e| e.to_string())
            .and_then(|d| {
                <Action as serde::Deserialize>::deserialize(d)
                    .map(|_| String::new())
                    .map_err(|e| e.message().to_string())
            })
            .unwrap_or_else(|e| e);
        msg.split_once(", expected one of ")
            .or_else(|| msg.split_once(", expected "))
            .or_else(|| msg.split_once(", available keys: "))
            .map(|(_, list)| backticked(list))
            .unwrap_or_default()
            .into_iter()
            .filter(|k| k != "there are no fields")
            .collect()
    }

    fn debug_probe(kind: ActionKind) -> String {
        let probe = format!("{{ {} = {{ zz-no-such-key = 0 }} }}", kind.name());
        match ValueDeserializer::parse(&probe) {
            Ok(d) => format!("{:?}", <Action as serde::Deserialize>::deserialize(d).err()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_key_table_is_the_enum() {
        for a in ACTIONS {
            let mut want: Vec<String> = a.keys().iter().map(|k| k.to_string()).collect();
            let mut got = action_keys(*a);
            want.sort();
            got.sort();
            assert_eq!(got, want, "{}: {:?}", a.name(), debug_probe(*a));
        }
    }

    #[test]
    fn plain_words_for_types() {
        let (_, p) = step("action = \"wait\"\nms = \"500\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(
            p[0].1,
            "`ms`: expected a number of milliseconds, got the string \"500\""
        );
        assert_eq!(p[0].0.start, "action = \"wait\"\nms = ".len());
        let (_, p) = step("action = \"wait\"\nms = -100\n");
        assert!(p[0].1.contains("got the number -100"), "{p:?}");
    }

    #[test]
    fn foreign_keys_list_only_the_actions_keys() {
        let (s, p) = step("action = \"join\"\nroom = \"Design\"\ntext = \"x\"\n");
        assert!(s.is_none());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].1.contains("`join` takes room, room_uri of its own"),
            "{p:?}"
        );
        assert!(!p[0].1.contains("msgid"), "{p:?}");
        let (_, p) = step("action = \"post\"\nroom = \"Design\"\ntxt = \"x\"\n");
        assert!(
            p.iter().any(|(_, m)| m.contains("did you mean `text`")),
            "{p:?}"
        );
        assert!(p.iter().any(|(_, m)| m.contains("needs `text`")), "{p:?}");
    }

    #[test]
    fn misspelt_action() {
        let (_, p) = step("action = \"psot\"\n");
        assert!(p[0].1.contains("did you mean \"post\""), "{p:?}");
        assert_eq!(p[0].0.start, "action = ".len());
    }

    #[test]
    fn wrong_kind_points_at_the_value() {
        let (_, p) = step("action = \"receive\"\nkind = \"grpcht\"\n");
        assert_eq!(p[0].0.start, "action = \"receive\"\nkind = ".len(), "{p:?}");
        assert!(p[0].1.contains("did you mean \"grpchat\""), "{p:?}");
    }
}
