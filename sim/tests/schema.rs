//! The committed JSON Schema of scenario files (docs/scenario.schema.json) is what the
//! code generates, and every scenario under scenarios/ conforms to it.
//!
//! The conformance check is a small validator for the JSON Schema keywords schemars
//! emits here (`$ref`, `type`, `properties`, `required`, `additionalProperties: false`,
//! `items`, `anyOf`/`oneOf`, `const`/`enum`, `minimum`/`maximum`, `pattern`); any other
//! keyword in the schema fails the test, so the check cannot silently go blind.

use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn committed_schema() -> Value {
    let path = root().join("docs/scenario.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Keywords that only annotate (no effect on validity).
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "title",
    "description",
    "default",
    "format",
    "$defs",
];

/// Checks `v` against `schema`; errors name the JSON path.
fn check(root: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Some(obj) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("{at}: unexpected schema {schema}")),
        };
    };
    for (k, s) in obj {
        match k.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let name = s
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or_else(|| format!("{at}: unsupported $ref {s}"))?;
                let def = &root["$defs"][name];
                if def.is_null() {
                    return Err(format!("{at}: $ref to missing {name}"));
                }
                check(root, def, v, at)?;
            }
            "type" => {
                let types: Vec<&str> = match s {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad type {s}")),
                };
                let ok = types.iter().any(|t| match *t {
                    "object" => v.is_object(),
                    "array" => v.is_array(),
                    "string" => v.is_string(),
                    "boolean" => v.is_boolean(),
                    "integer" => v.is_i64() || v.is_u64(),
                    "number" => v.is_number(),
                    "null" => v.is_null(),
                    _ => false,
                });
                if !ok {
                    return Err(format!("{at}: {v} is not of type {s}"));
                }
            }
            "properties" => {
                if let Some(map) = v.as_object() {
                    for (key, val) in map {
                        if let Some(ps) = s.get(key) {
                            check(root, ps, val, &format!("{at}.{key}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                if s != &Value::Bool(false) {
                    return Err(format!("{at}: unsupported additionalProperties {s}"));
                }
                if let Some(map) = v.as_object() {
                    let props = obj.get("properties").and_then(Value::as_object);
                    for key in map.keys() {
                        if !props.is_some_and(|p| p.contains_key(key)) {
                            return Err(format!("{at}: key `{key}` is not in the schema"));
                        }
                    }
                }
            }
            "required" => {
                if let Some(map) = v.as_object() {
                    for key in s.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !map.contains_key(key) {
                            return Err(format!("{at}: required key `{key}` missing"));
                        }
                    }
                }
            }
            "items" => {
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    check(root, s, item, &format!("{at}[{i}]"))?;
                }
            }
            "anyOf" | "oneOf" => {
                let branches = s.as_array().ok_or_else(|| format!("{at}: bad {k}"))?;
                let matching = branches
                    .iter()
                    .filter(|b| check(root, b, v, at).is_ok())
                    .count();
                if matching == 0 || (k == "oneOf" && matching > 1) {
                    return Err(format!("{at}: {v} matches {matching} of the {k} branches"));
                }
            }
            "const" => {
                if v != s {
                    return Err(format!("{at}: {v} is not {s}"));
                }
            }
            "enum" => {
                if !s.as_array().is_some_and(|a| a.contains(v)) {
                    return Err(format!("{at}: {v} is not one of {s}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(x), Some(bound)) = (v.as_f64(), s.as_f64()) {
                    if (k == "minimum" && x < bound) || (k == "maximum" && x > bound) {
                        return Err(format!("{at}: {v} is out of range ({k} {s})"));
                    }
                }
            }
            "pattern" => {
                let re = regex::Regex::new(s.as_str().unwrap_or_default())
                    .map_err(|e| format!("{at}: bad pattern: {e}"))?;
                if let Some(text) = v.as_str() {
                    if !re.is_match(text) {
                        return Err(format!("{at}: {v} does not match {s}"));
                    }
                }
            }
            other => return Err(format!("{at}: schema keyword `{other}` not checked here")),
        }
    }
    Ok(())
}

fn toml_as_json(text: &str) -> Value {
    let doc: toml::Table = toml::from_str(text).expect("scenario parses as TOML");
    serde_json::to_value(doc).expect("TOML converts to JSON")
}

#[test]
fn committed_schema_is_up_to_date() {
    let generated: Value =
        serde_json::from_str(&pchat_sim::scenario::json_schema().expect("schema serializes"))
            .expect("generated schema is JSON");
    let committed_text = std::fs::read_to_string(root().join("docs/scenario.schema.json"))
        .expect("docs/scenario.schema.json exists");
    assert!(
        generated == committed_schema()
            && committed_text == pchat_sim::scenario::json_schema().expect("schema serializes"),
        "docs/scenario.schema.json is out of date with the scenario types; regenerate it with\n\
         \tcargo run -p pchat-sim -- schema > docs/scenario.schema.json"
    );
}

#[test]
fn every_scenario_file_conforms_to_the_schema() {
    let schema = committed_schema();
    let mut files = Vec::new();
    let mut dirs = vec![root().join("scenarios")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("scenarios/ readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() >= 10,
        "expected the scenario files, got {files:?}"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).expect("scenario readable");
        if let Err(e) = check(&schema, &schema, &toml_as_json(&text), "$") {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn the_check_rejects_what_the_parser_rejects() {
    let schema = committed_schema();
    let base = r#"
        [[client]]
        name = "user1"
        uri = "sip:user1@contoso.com"

        [[step]]
        client = "user1"
        action = "sign-in"
        expect = { status = 200 }
    "#;
    check(&schema, &schema, &toml_as_json(base), "$").expect("base scenario conforms");
    let bad = [
        // A step is one of the actions' variants: a misspelt or foreign key matches none.
        (base.replace("action =", "acton ="), "$.step[0]"),
        (
            base.replace("expect =", "text = \"hi\"\nexpect ="),
            "$.step[0]",
        ),
        (base.replace("\"sign-in\"", "\"signin\""), "$.step[0]"),
        (base.replace("status = 200", "stauts = 200"), "$.step[0]"),
        (format!("sed = 3\n{base}"), "`sed`"),
        (base.replace("[[client]]", "[[clients]]"), "`clients`"),
        (
            format!("[[room]]\nname = \"R\"\nprivacy = \"hidden\"\n{base}"),
            "$.room[0].privacy",
        ),
        (
            format!("[compliance]\nrun_interval = \"5 parsecs\"\n{base}"),
            "run_interval",
        ),
    ];
    for (text, needle) in bad {
        let err = check(&schema, &schema, &toml_as_json(&text), "$")
            .expect_err("a bad scenario does not conform");
        assert!(err.contains(needle), "{needle} not in {err}");
        // The parser rejects the same file.
        assert!(
            pchat_sim::scenario::Scenario::parse(&text, Path::new("x.toml")).is_err(),
            "the parser accepts {text}"
        );
    }
}
