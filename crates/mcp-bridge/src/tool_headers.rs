//! `x-mcp-header` (MCP 2026-07-28, SEP-2243; `basic/transports/streamable-http` "Custom Headers from
//! Tool Parameters", `server/tools` "x-mcp-header"): the tool parameters a server wants mirrored into
//! `Mcp-Param-{Name}` headers, read from the tool schemas of the `tools/list` answers passing through
//! and kept in a bounded [`ToolCache`]; the tools whose annotations break the rules, taken out of
//! those answers; and the value encoding (`=?base64?…?=`) that `Mcp-Name` shares.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Encoding as _};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::wire2026::span_in;

/// The schema extension property.
const X_MCP_HEADER: &str = "x-mcp-header";
/// The Base64 sentinel form: `=?base64?{Base64 of the UTF-8 bytes}?=` ("Value Encoding").
const SENTINEL_PREFIX: &str = "=?base64?";
const SENTINEL_SUFFIX: &str = "?=";
/// Integers are mirrored only within JavaScript's safe range (±(2^53 − 1)).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// A declared header name longer than this makes the tool invalid here: no server needs it, and the
/// HTTP stack refuses very long names.
const MAX_NAME_LEN: usize = 256;
/// Keywords whose subschemas are not "statically reachable" through `properties` keys: an annotation
/// under any of them makes the tool invalid (`$ref` targets are not followed; `$defs` is swept).
const UNREACHABLE_KEYWORDS: &[&str] = &[
    "items",
    "prefixItems",
    "contains",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "patternProperties",
    "dependentSchemas",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "$defs",
    "definitions",
];
/// Of those, the ones whose value maps names to subschemas.
const MAP_KEYWORDS: &[&str] = &[
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];

/// The cache holds at most this many tools…
const MAX_TOOLS: usize = 4096;
/// …and about this many bytes of declarations; past either it starts over.
const MAX_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// One annotated parameter of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declaration {
    /// The `properties` keys from the arguments object to the parameter.
    pub(crate) path: Vec<String>,
    /// The `{Name}` of `Mcp-Param-{Name}` as declared: an RFC 9110 token.
    pub(crate) name: String,
}

/// What a tool's `inputSchema` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolHeaders {
    /// Valid: these parameters (maybe none) go into `Mcp-Param-*` headers.
    Valid(Vec<Declaration>),
    /// An annotation breaks a rule: the tool is taken out of `tools/list` and never called. The
    /// reason quotes server text: make it printable before showing it.
    Invalid(String),
}

impl ToolHeaders {
    /// Roughly the bytes it holds, for the cache bound.
    fn weight(&self) -> usize {
        match self {
            Self::Valid(declarations) => declarations.iter().fold(64, |total, d| {
                let path = d.path.iter().map(|k| k.len().saturating_add(24)).sum();
                total
                    .saturating_add(path)
                    .saturating_add(d.name.len())
                    .saturating_add(64)
            }),
            Self::Invalid(reason) => reason.len().saturating_add(64),
        }
    }
}

/// Reads the `x-mcp-header` annotations of a tool's `inputSchema` and checks the rules ("Schema
/// Extension"): not empty, an RFC 9110 token, case-insensitively unique, only on `string`,
/// `integer` or `boolean` parameters (not `number`), and only on properties reached from the root
/// through `properties` keys alone.
pub(crate) fn scan(input_schema: &Value) -> ToolHeaders {
    let mut scan = Scan::default();
    match scan.visit(input_schema, &mut Vec::new(), true) {
        Ok(()) => ToolHeaders::Valid(scan.declarations),
        Err(reason) => ToolHeaders::Invalid(reason),
    }
}

#[derive(Default)]
struct Scan {
    declarations: Vec<Declaration>,
    /// Lowercased names seen so far.
    seen: HashSet<String>,
}

impl Scan {
    fn visit(
        &mut self,
        node: &Value,
        path: &mut Vec<String>,
        reachable: bool,
    ) -> Result<(), String> {
        let Value::Object(schema) = node else {
            return Ok(());
        };
        if let Some(annotation) = schema.get(X_MCP_HEADER) {
            let at = if path.is_empty() {
                "the schema root".to_owned()
            } else {
                format!("parameter `{}`", path.join("."))
            };
            if !reachable || path.is_empty() {
                return Err(format!(
                    "x-mcp-header on {at}, which is not reached through `properties` alone"
                ));
            }
            let Some(name) = annotation.as_str().filter(|n| !n.is_empty()) else {
                return Err(format!("empty or non-string x-mcp-header on {at}"));
            };
            if name.len() > MAX_NAME_LEN || !name.bytes().all(is_tchar) {
                return Err(format!(
                    "x-mcp-header `{name}` on {at} is not an HTTP field-name token"
                ));
            }
            let kind = schema.get("type").and_then(Value::as_str);
            if !matches!(kind, Some("string" | "integer" | "boolean")) {
                return Err(format!(
                    "x-mcp-header on {at}, whose type is {}, not string, integer or boolean",
                    kind.unwrap_or("not a single type name")
                ));
            }
            if !self.seen.insert(name.to_ascii_lowercase()) {
                return Err(format!("x-mcp-header `{name}` is declared twice"));
            }
            self.declarations.push(Declaration {
                path: path.clone(),
                name: name.to_owned(),
            });
        }
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (key, child) in properties {
                path.push(key.clone());
                let result = self.visit(child, path, reachable);
                path.pop();
                result?;
            }
        }
        for keyword in UNREACHABLE_KEYWORDS {
            let Some(sub) = schema.get(*keyword) else {
                continue;
            };
            path.push(format!("<{keyword}>"));
            let result = match sub {
                Value::Array(branches) => {
                    branches.iter().try_for_each(|b| self.visit(b, path, false))
                }
                Value::Object(map) if MAP_KEYWORDS.contains(keyword) => {
                    map.values().try_for_each(|b| self.visit(b, path, false))
                }
                other => self.visit(other, path, false),
            };
            path.pop();
            result?;
        }
        Ok(())
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header value for `value` ("Value Encoding"): as it is when it is plain visible ASCII (inner
/// spaces allowed), else the Base64 sentinel form. Empty values, values with leading or trailing
/// whitespace, tabs, control or non-ASCII characters, and values that look like the sentinel are
/// encoded.
pub(crate) fn encode_value(value: &str) -> String {
    let looks_encoded = value.starts_with(SENTINEL_PREFIX) && value.ends_with(SENTINEL_SUFFIX);
    let unsafe_edge = value.is_empty() || value.starts_with(' ') || value.ends_with(' ');
    if !looks_encoded && !unsafe_edge && value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        value.to_owned()
    } else {
        format!(
            "{SENTINEL_PREFIX}{}{SENTINEL_SUFFIX}",
            Base64::encode_string(value.as_bytes())
        )
    }
}

/// The text of a primitive argument ("Type conversion"): strings as they are, booleans as
/// `true`/`false`, integers in decimal (only within the safe range). `None` for anything else.
fn primitive_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                (i.unsigned_abs() <= MAX_SAFE_INTEGER).then(|| i.to_string())
            } else if let Some(u) = n.as_u64() {
                (u <= MAX_SAFE_INTEGER).then(|| u.to_string())
            } else {
                let f = n.as_f64()?;
                if !f.is_finite() {
                    None
                } else if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 {
                    // 42.0 is the integer 42 (and -0 is 0).
                    Some(if f == 0.0 {
                        "0".to_owned()
                    } else {
                        format!("{f:.0}")
                    })
                } else {
                    Some(f.to_string())
                }
            }
        }
        _ => None,
    }
}

/// The `Mcp-Param-{Name}` headers of one `tools/call` ("Client Behavior", steps 3–5): for each
/// declaration, the argument at its path, omitted when absent, `null` or not a primitive.
pub(crate) fn param_headers(
    declarations: &[Declaration],
    arguments: Option<&Value>,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    for declaration in declarations {
        let mut node = arguments;
        for key in &declaration.path {
            node = node.and_then(|n| n.get(key));
        }
        if let Some(text) = node.and_then(primitive_text) {
            headers.push((
                format!("Mcp-Param-{}", declaration.name),
                encode_value(&text),
            ));
        }
    }
    headers
}

/// The `x-mcp-header` reading of every tool seen in a `tools/list` answer, by tool name; bounded in
/// tools and bytes (past a bound it starts over: a tool not in the cache is called without
/// `Mcp-Param-*` headers, and a server that needs them says so with `HeaderMismatch`).
#[derive(Debug, Default)]
pub(crate) struct ToolCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    tools: HashMap<String, Arc<ToolHeaders>>,
    bytes: usize,
}

impl ToolCache {
    /// What is known of tool `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<ToolHeaders>> {
        self.inner.lock().ok()?.tools.get(name).cloned()
    }

    fn insert(&self, name: &str, headers: ToolHeaders) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let weight = headers.weight().saturating_add(name.len());
        if let Some(old) = inner.tools.remove(name) {
            let old_weight = old.weight().saturating_add(name.len());
            inner.bytes = inner.bytes.saturating_sub(old_weight);
        }
        if inner.tools.len() >= MAX_TOOLS || inner.bytes.saturating_add(weight) > MAX_CACHE_BYTES {
            tracing::debug!("the tool schema cache is full; starting over");
            inner.tools.clear();
            inner.bytes = 0;
        }
        if weight <= MAX_CACHE_BYTES {
            inner.bytes = inner.bytes.saturating_add(weight);
            inner.tools.insert(name.to_owned(), Arc::new(headers));
        }
    }

    /// Reads the tools of a `tools/list` answer `line` into the cache and takes out the tools whose
    /// `x-mcp-header` annotations are invalid (MUST, with a warning naming the tool and the
    /// reason). Returns the answer without them, changed only inside the `tools` array, or `None`
    /// when nothing was taken out (the answer then goes on as it came). A `tools` entry that is
    /// not an object with a string `name` is left alone.
    pub(crate) fn read_tools_list(&self, line: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Answer<'a> {
            #[serde(borrow)]
            result: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct ListResult<'a> {
            #[serde(borrow)]
            tools: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Tool {
            name: String,
            #[serde(rename = "inputSchema", default)]
            input_schema: Value,
        }
        let answer: Answer<'_> = serde_json::from_str(line).ok()?;
        let result: ListResult<'_> = serde_json::from_str(answer.result?.get()).ok()?;
        let tools_raw = result.tools?;
        let tools: Vec<&RawValue> = serde_json::from_str(tools_raw.get()).ok()?;
        let mut kept = Vec::with_capacity(tools.len());
        let mut dropped = 0usize;
        for raw in &tools {
            let Ok(tool) = serde_json::from_str::<Tool>(raw.get()) else {
                kept.push(raw.get());
                continue;
            };
            let headers = scan(&tool.input_schema);
            if let ToolHeaders::Invalid(reason) = &headers {
                tracing::warn!(
                    tool = %context_harness_providers::terminal_text_max(&tool.name, 128),
                    reason = %context_harness_providers::terminal_text_max(reason, 300),
                    "leaving out a tool with an invalid x-mcp-header annotation"
                );
                dropped = dropped.saturating_add(1);
            } else {
                kept.push(raw.get());
            }
            self.insert(&tool.name, headers);
        }
        if dropped == 0 {
            return None;
        }
        let (start, end) = span_in(line, tools_raw.get())?;
        let mut out = String::with_capacity(line.len());
        out.push_str(line.get(..start)?);
        out.push('[');
        out.push_str(&kept.join(","));
        out.push(']');
        out.push_str(line.get(end..)?);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn invalid(schema: Value) -> String {
        match scan(&schema) {
            ToolHeaders::Invalid(reason) => reason,
            valid => panic!("expected invalid: {schema} gave {valid:?}"),
        }
    }

    fn declaration(path: &[&str], name: &str) -> Declaration {
        Declaration {
            path: path.iter().map(|k| (*k).to_owned()).collect(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn scans_the_spec_example_and_nested_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "query": {"type": "string"},
                "target": {"type": "object", "properties": {
                    "tenant": {"type": "integer", "x-mcp-header": "Tenant-Id"},
                    "dry": {"type": "boolean", "x-mcp-header": "Dry_Run"}
                }}
            }
        });
        let ToolHeaders::Valid(mut found) = scan(&schema) else {
            panic!("valid schema refused");
        };
        found.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            found,
            vec![
                declaration(&["target", "dry"], "Dry_Run"),
                declaration(&["region"], "Region"),
                declaration(&["target", "tenant"], "Tenant-Id"),
            ]
        );
        assert_eq!(scan(&json!({"type": "object"})), ToolHeaders::Valid(vec![]));
        assert_eq!(scan(&Value::Null), ToolHeaders::Valid(vec![]));
    }

    #[test]
    fn refuses_what_the_rules_forbid() {
        let one = |prop: Value| json!({"type": "object", "properties": {"p": prop}});
        // The conformance suite's invalid tools (http-invalid-tool-headers).
        for (prop, why) in [
            (json!({"type": "string", "x-mcp-header": ""}), "empty"),
            (
                json!({"type": "object", "x-mcp-header": "Data"}),
                "type is object",
            ),
            (
                json!({"type": "array", "x-mcp-header": "Items"}),
                "type is array",
            ),
            (
                json!({"type": "null", "x-mcp-header": "Nil"}),
                "type is null",
            ),
            (
                json!({"type": "number", "x-mcp-header": "Score"}),
                "type is number",
            ),
            (
                json!({"type": ["string", "null"], "x-mcp-header": "S"}),
                "not a single type",
            ),
            (json!({"x-mcp-header": "NoType"}), "not a single type"),
            (
                json!({"type": "string", "x-mcp-header": "My Region"}),
                "token",
            ),
            (
                json!({"type": "string", "x-mcp-header": "Region:Primary"}),
                "token",
            ),
            (json!({"type": "string", "x-mcp-header": "Région"}), "token"),
            (
                json!({"type": "string", "x-mcp-header": "Region\t1"}),
                "token",
            ),
            (
                json!({"type": "string", "x-mcp-header": "a\r\nX-Evil: 1"}),
                "token",
            ),
            (json!({"type": "string", "x-mcp-header": 7}), "non-string"),
            (
                json!({"type": "string", "x-mcp-header": "x".repeat(300)}),
                "token",
            ),
        ] {
            let reason = invalid(one(prop.clone()));
            assert!(reason.contains(why), "{prop}: {reason}");
        }
        for (a, b) in [("Region", "Region"), ("MyField", "myfield")] {
            let schema = json!({"type": "object", "properties": {
                "f1": {"type": "string", "x-mcp-header": a},
                "f2": {"type": "string", "x-mcp-header": b}
            }});
            assert!(invalid(schema).contains("twice"));
        }
    }

    #[test]
    fn refuses_annotations_not_reached_through_properties() {
        let annotated = json!({"type": "string", "x-mcp-header": "X"});
        for schema in [
            json!({"type": "string", "x-mcp-header": "Root"}),
            json!({"type": "object", "properties": {"a": {"type": "array", "items": annotated}}}),
            json!({"anyOf": [{"properties": {"a": annotated}}]}),
            json!({"properties": {"a": {"oneOf": [annotated]}}}),
            json!({"if": {"properties": {"a": annotated}}}),
            json!({"$defs": {"T": {"properties": {"a": annotated}}}}),
            json!({"additionalProperties": annotated}),
            json!({"patternProperties": {"^x": annotated}}),
        ] {
            assert!(invalid(schema.clone()).contains("not reached"), "{schema}");
        }
    }

    #[test]
    fn encodes_values_as_the_spec_table_says() {
        for (value, header) in [
            ("us-west1", "us-west1"),
            ("us west 1", "us west 1"),
            ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
            (" padded ", "=?base64?IHBhZGRlZCA=?="),
            ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
            ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
            ("\tindented", "=?base64?CWluZGVudGVk?="),
            ("", "=?base64??="),
        ] {
            assert_eq!(encode_value(value), header, "{value:?}");
        }
    }

    #[test]
    fn mirrors_present_primitive_arguments_only() {
        let declarations = vec![
            declaration(&["region"], "Region"),
            declaration(&["priority"], "Priority"),
            declaration(&["verbose"], "Verbose"),
            declaration(&["debug"], "Debug"),
            declaration(&["nested", "id"], "Id"),
            declaration(&["missing"], "Missing"),
            declaration(&["big"], "Big"),
            declaration(&["whole"], "Whole"),
            declaration(&["object"], "Object"),
        ];
        let arguments = json!({
            "region": "us-west1", "priority": 42, "verbose": null, "debug": false,
            "nested": {"id": -7}, "big": 9_007_199_254_740_993_u64, "whole": 42.0,
            "object": {"a": 1}, "query": "SELECT 1"
        });
        let headers = param_headers(&declarations, Some(&arguments));
        let expected: Vec<(String, String)> = [
            ("Mcp-Param-Region", "us-west1"),
            ("Mcp-Param-Priority", "42"),
            ("Mcp-Param-Debug", "false"),
            ("Mcp-Param-Id", "-7"),
            ("Mcp-Param-Whole", "42"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(headers, expected);
        assert!(param_headers(&declarations, None).is_empty());
    }

    #[test]
    fn takes_invalid_tools_out_of_a_tools_list_answer_and_nothing_else() {
        let cache = ToolCache::default();
        let line = r#"{"jsonrpc":"2.0","id":3,"result":{"ttlMs":0, "tools":[ {"name":"ok","inputSchema":{"type":"object","properties":{"r":{"type":"string","x-mcp-header":"Region"}}}}, {"name":"bad","inputSchema":{"properties":{"v":{"type":"string","x-mcp-header":""}}}},{"name":"plain","inputSchema":{"type":"object"},"x":"\u00e9"} ],"nextCursor":"c"}}"#;
        let Some(out) = cache.read_tools_list(line) else {
            panic!("the invalid tool was not taken out");
        };
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":3,"result":{"ttlMs":0, "tools":[{"name":"ok","inputSchema":{"type":"object","properties":{"r":{"type":"string","x-mcp-header":"Region"}}}},{"name":"plain","inputSchema":{"type":"object"},"x":"\u00e9"}],"nextCursor":"c"}}"#
        );
        assert_eq!(
            cache.get("ok").as_deref(),
            Some(&ToolHeaders::Valid(vec![declaration(&["r"], "Region")]))
        );
        assert!(matches!(
            cache.get("bad").as_deref(),
            Some(ToolHeaders::Invalid(_))
        ));
        assert_eq!(
            cache.get("plain").as_deref(),
            Some(&ToolHeaders::Valid(vec![]))
        );
        // All valid, or not a tools/list result: the answer goes on untouched.
        let fine = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":5}]}}"#;
        assert_eq!(cache.read_tools_list(fine), None);
        assert_eq!(
            cache.read_tools_list(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#),
            None
        );
        // Every tool invalid: an empty array.
        let all_bad = r#"{"id":1,"result":{"tools":[{"name":"bad","inputSchema":{"type":"string","x-mcp-header":"X"}}]}}"#;
        assert_eq!(
            cache.read_tools_list(all_bad).as_deref(),
            Some(r#"{"id":1,"result":{"tools":[]}}"#)
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ToolCache::default();
        for i in 0..(MAX_TOOLS + 10) {
            cache.insert(&format!("t{i}"), ToolHeaders::Valid(vec![]));
        }
        let len = cache
            .inner
            .lock()
            .map(|i| i.tools.len())
            .unwrap_or(usize::MAX);
        assert!(len <= MAX_TOOLS, "{len}");
        let huge = ToolHeaders::Invalid("x".repeat(MAX_CACHE_BYTES + 1));
        cache.insert("huge", huge);
        assert!(cache.get("huge").is_none());
        let bytes = cache.inner.lock().map(|i| i.bytes).unwrap_or(usize::MAX);
        assert!(bytes <= MAX_CACHE_BYTES, "{bytes}");
    }
}
