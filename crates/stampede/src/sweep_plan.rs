//! A sweep's plan: axes from `--set FIELD=V1,V2,…` and the scenario file's `[sweep]` table,
//! their cross product as points, and each point's scenario text — the base file with the
//! point's values set through `toml_edit`, so the file's comments and layout stay.
//!
//! The `[sweep]` table (removed from every point's file, since `stampede run` refuses it):
//!
//! ```toml
//! [sweep]
//! repeat = 3                                   # runs per point; --repeat overrides
//! x = "start_concurrency"                      # the axis plotted along x; default: the first
//!                                              # axis with numbers, else the last axis
//! set = { start_concurrency = [1, 2, 4, 8], runtime = ["process", "docker"] }   # crossed
//! points = [{ "swarm.network" = "host" }, { "swarm.network" = "overlay" }]     # listed
//! ```
//!
//! Points are `points` (or one empty point) × the cross product of the axes of `set` and
//! `--set` (a `--set` of a field the file also sets replaces it).
//!
//! Fields: a dotted path in the first `[[group]]` (`start_concurrency`, `docker.network`,
//! `start_rate.qps`), or at the file's top level when prefixed `run.` (`run.start_rate.qps`);
//! `seed` and `timeout` exist only at the top level and need no prefix.

use stampede_report::sweep::Axis;
use toml_edit::{DocumentMut, Item, Value};

/// Keys that exist only at the top level of a scenario file.
const TOP_LEVEL_ONLY: [&str; 3] = ["seed", "timeout", "groups"];

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--set {0}: expected FIELD=V1,V2,… (e.g. start_concurrency=1,2,4,8)")]
    SetSyntax(String),
    #[error("the scenario file is not valid TOML: {0}")]
    Toml(String),
    #[error("[sweep] table: {0}")]
    SweepTable(String),
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
    #[error("--x {0}: not one of the swept fields ({1})")]
    XAxis(String, String),
}

/// One value of an axis, as TOML and as the user reads it.
#[derive(Debug, Clone)]
pub struct AxisValue {
    pub toml: Value,
    pub display: String,
}

impl AxisValue {
    /// A `--set` value: TOML when it parses as TOML (`4`, `0.5`, `true`, `"x"`, `{ qps = 5 }`),
    /// else a bare string (`docker`, `host`).
    pub fn parse(text: &str) -> AxisValue {
        let text = text.trim();
        match text.parse::<Value>() {
            Ok(v) => AxisValue::from_toml(v),
            Err(_) => AxisValue::from_toml(Value::from(text)),
        }
    }
    fn from_toml(mut v: Value) -> AxisValue {
        v.decor_mut().clear();
        let display = match &v {
            Value::String(s) => s.value().clone(),
            other => other.to_string().trim().to_owned(),
        };
        AxisValue { toml: v, display }
    }
}

#[derive(Debug, Clone)]
pub struct PlanAxis {
    pub field: String,
    pub values: Vec<AxisValue>,
}

/// The plan before anything runs.
#[derive(Debug)]
pub struct Plan {
    pub axes: Vec<PlanAxis>,
    pub x_axis: Option<String>,
    /// `[sweep] repeat`, when the file says.
    pub repeat: Option<u32>,
    /// Each point: (field, value) in axis order (listed points' fields first).
    pub points: Vec<Vec<(String, AxisValue)>>,
    /// The base document without its `[sweep]` table.
    base: DocumentMut,
}

/// Split `V1,V2,…` at the top-level commas (not inside quotes, `{}` or `[]`).
fn split_values(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None::<char>);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect()
}

/// `FIELD=V1,V2,…` → an axis.
pub fn parse_set(arg: &str) -> Result<PlanAxis, PlanError> {
    let (field, values) = arg.split_once('=').ok_or_else(|| PlanError::SetSyntax(arg.to_owned()))?;
    let field = field.trim();
    let values = split_values(values);
    if field.is_empty() || values.is_empty() {
        return Err(PlanError::SetSyntax(arg.to_owned()));
    }
    Ok(PlanAxis { field: field.to_owned(), values: values.iter().map(|v| AxisValue::parse(v)).collect() })
}

/// Flatten a TOML table of the `[sweep]` section into (dotted field, value) leaves.
fn flatten(prefix: &str, t: &dyn toml_edit::TableLike, out: &mut Vec<(String, Item)>) {
    for (k, v) in t.iter() {
        let field = if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
        match v.as_table_like() {
            Some(inner) => flatten(&field, inner, out),
            None => out.push((field, v.clone())),
        }
    }
}

impl Plan {
    /// Read the file's `[sweep]` table, add the `--set` axes, and form the points.
    pub fn new(text: &str, sets: &[PlanAxis], x: Option<&str>) -> Result<Plan, PlanError> {
        let mut base: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| PlanError::Toml(e.to_string()))?;
        let sweep = base.remove("sweep");
        let mut axes: Vec<PlanAxis> = Vec::new();
        let mut listed: Vec<Vec<(String, AxisValue)>> = Vec::new();
        let (mut repeat, mut file_x) = (None, None);
        if let Some(sweep) = sweep {
            let t = sweep.as_table_like().ok_or_else(|| PlanError::SweepTable("must be a table".into()))?;
            for (k, v) in t.iter() {
                match k {
                    "repeat" => {
                        let n = v.as_integer().filter(|n| *n >= 1 && *n <= 1000);
                        repeat = Some(
                            n.ok_or_else(|| PlanError::SweepTable(format!("repeat: an integer 1..=1000, got {v}")))?
                                as u32,
                        );
                    }
                    "x" => {
                        file_x = Some(
                            v.as_str()
                                .ok_or_else(|| PlanError::SweepTable("x: a field name string".into()))?
                                .to_owned(),
                        )
                    }
                    "set" => {
                        let mut leaves = Vec::new();
                        flatten(
                            "",
                            v.as_table_like()
                                .ok_or_else(|| PlanError::SweepTable("set: a table of FIELD = [values]".into()))?,
                            &mut leaves,
                        );
                        for (field, item) in leaves {
                            let arr = item.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                                PlanError::SweepTable(format!("set.{field}: a non-empty list of values"))
                            })?;
                            axes.push(PlanAxis {
                                field,
                                values: arr.iter().map(|v| AxisValue::from_toml(v.clone())).collect(),
                            });
                        }
                    }
                    "points" => {
                        let arr =
                            v.as_array().ok_or_else(|| PlanError::SweepTable("points: a list of tables".into()))?;
                        for p in arr.iter() {
                            let t = p
                                .as_inline_table()
                                .ok_or_else(|| PlanError::SweepTable("points: each point is a table".into()))?;
                            let mut leaves = Vec::new();
                            flatten("", t, &mut leaves);
                            let point = leaves
                                .into_iter()
                                .map(|(f, item)| match item.into_value() {
                                    Ok(v) => Ok((f, AxisValue::from_toml(v))),
                                    Err(_) => Err(PlanError::SweepTable(format!("points: {f} is not a value"))),
                                })
                                .collect::<Result<Vec<_>, _>>()?;
                            listed.push(point);
                        }
                    }
                    other => {
                        return Err(PlanError::SweepTable(format!(
                            "unknown key `{other}`; allowed: repeat, x, set, points"
                        )));
                    }
                }
            }
        }
        for s in sets {
            axes.retain(|a| a.field != s.field);
            axes.push(s.clone());
        }
        // The listed points' fields are axes too (for the table, the CSV and the series).
        let mut listed_fields: Vec<String> = Vec::new();
        for p in &listed {
            for (f, _) in p {
                if !listed_fields.contains(f) {
                    listed_fields.push(f.clone());
                }
            }
        }
        let mut points: Vec<Vec<(String, AxisValue)>> =
            if listed.is_empty() { vec![Vec::new()] } else { listed.clone() };
        for a in &axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    a.values.iter().map(move |v| p.iter().cloned().chain([(a.field.clone(), v.clone())]).collect())
                })
                .collect();
        }
        let mut all_axes: Vec<PlanAxis> = listed_fields
            .iter()
            .map(|f| {
                let mut values: Vec<AxisValue> = Vec::new();
                for p in &listed {
                    if let Some((_, v)) = p.iter().find(|(k, _)| k == f) {
                        if !values.iter().any(|x| x.display == v.display) {
                            values.push(v.clone());
                        }
                    }
                }
                PlanAxis { field: f.clone(), values }
            })
            .collect();
        all_axes.extend(axes);
        let names = || all_axes.iter().map(|a| a.field.clone()).collect::<Vec<_>>().join(", ");
        let x_axis = match x.map(str::to_owned).or(file_x) {
            Some(x) if all_axes.iter().any(|a| a.field == x) => Some(x),
            Some(x) => return Err(PlanError::XAxis(x, names())),
            None => all_axes
                .iter()
                .find(|a| a.values.iter().all(|v| v.display.parse::<f64>().is_ok()))
                .or(all_axes.last())
                .map(|a| a.field.clone()),
        };
        Ok(Plan { axes: all_axes, x_axis, repeat, points, base })
    }

    /// The axes as `sweep.json` records them.
    pub fn axes_record(&self) -> Vec<Axis> {
        self.axes
            .iter()
            .map(|a| Axis { field: a.field.clone(), values: a.values.iter().map(|v| v.display.clone()).collect() })
            .collect()
    }

    /// The scenario text of point `i`.
    pub fn point_text(&self, i: usize) -> Result<String, PlanError> {
        let mut doc = self.base.clone();
        for (field, value) in &self.points[i] {
            set_field(&mut doc, field, value.toml.clone())?;
        }
        Ok(doc.to_string())
    }
}

/// Set a dotted field in the first group (or at the top level, see the module docs), keeping
/// the comment that followed the old value.
fn set_field(doc: &mut DocumentMut, field: &str, value: Value) -> Result<(), PlanError> {
    let fail = |reason: String| PlanError::Field { field: field.to_owned(), reason };
    let (top, path) = match field.strip_prefix("run.") {
        Some(rest) => (true, rest),
        None => (TOP_LEVEL_ONLY.contains(&field.split('.').next().unwrap_or("")), field),
    };
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(fail("empty part in the field name".into()));
    }
    let mut table: &mut dyn toml_edit::TableLike = if top {
        doc.as_table_mut()
    } else {
        match doc.get_mut("group").and_then(Item::as_array_of_tables_mut).and_then(|a| a.get_mut(0)) {
            Some(t) => t,
            None => return Err(fail("the file has no [[group]] to set it in".into())),
        }
    };
    let (last, parents) = segments.split_last().expect("at least one segment");
    for seg in parents {
        let item = table.entry(seg).or_insert(Item::Value(Value::InlineTable(Default::default())));
        table = item.as_table_like_mut().ok_or_else(|| fail(format!("`{seg}` is not a table in the file")))?;
    }
    let mut value = value;
    if let Some(old) = table.get(last).and_then(Item::as_value) {
        *value.decor_mut() = old.decor().clone();
    }
    table.insert(last, Item::Value(value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "# a comment that stays\nname = \"t\"\n\n[[group]]\nruntime = \"process\" # which runtime\nactions = 2\n\n[sweep]\nrepeat = 2\nset = { actions = [1, 2] }\n";

    #[test]
    fn cross_product_and_comments_kept() {
        let sets = [parse_set("runtime=process,docker").unwrap(), parse_set("docker.network=host,bridge").unwrap()];
        let plan = Plan::new(BASE, &sets, None).unwrap();
        assert_eq!(plan.repeat, Some(2));
        assert_eq!(plan.points.len(), 2 * 2 * 2);
        assert_eq!(plan.x_axis.as_deref(), Some("actions"));
        let text = plan.point_text(7).unwrap();
        assert!(text.contains("# a comment that stays"), "{text}");
        assert!(text.contains("runtime = \"docker\" # which runtime"), "{text}");
        assert!(text.contains("actions = 2"), "{text}");
        assert!(text.contains("docker = { network = \"bridge\" }"), "{text}");
        assert!(!text.contains("[sweep]"), "{text}");
    }

    #[test]
    fn listed_points_top_level_fields_and_values() {
        let text =
            "[[group]]\n\n[sweep]\npoints = [{ swarm.network = \"host\" }, { \"swarm.network\" = \"overlay\" }]\n";
        let plan = Plan::new(
            text,
            &[parse_set("run.start_rate.qps=5,0.5").unwrap(), parse_set("seed=1").unwrap()],
            Some("run.start_rate.qps"),
        )
        .unwrap();
        assert_eq!(plan.points.len(), 4);
        let t = plan.point_text(3).unwrap();
        assert!(
            t.contains("start_rate = { qps = 0.5 }") && t.contains("seed = 1") && t.contains("network = \"overlay\""),
            "{t}"
        );
        assert_eq!(split_values("{ qps = 5, burst = 2 },3, 'a,b'"), vec!["{ qps = 5, burst = 2 }", "3", "'a,b'"]);
        assert!(matches!(Plan::new(text, &[], Some("nope")), Err(PlanError::XAxis(..))));
        assert!(matches!(parse_set("x"), Err(PlanError::SetSyntax(_))));
    }
}
