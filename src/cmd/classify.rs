//! `timeaudit classify`: reads probe histories (CSV export, or the survey store), classifies each
//! (target, address, method) series and says, per name, whether its addresses agree.

use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use timeaudit_analysis::change::{OnlineCheck, OnlineParams};
use timeaudit_analysis::classify::names::{Verdict, agreement};
use timeaudit_analysis::classify::{Classification, Classifier, ClassifierParams, NameAgreement, Sample};
use timeaudit_analysis::observation::{Method, Observation};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON document: `series` and `names`.
    Json,
    /// One CSV row per series.
    Csv,
}

/// Arguments of `timeaudit classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Survey store (SQLite) to read.
    #[arg(long, value_name = "PATH", conflicts_with = "input", required_unless_present_any = ["input", "print_params"])]
    pub db: Option<PathBuf>,
    /// CSV of observations: columns target, address, method, t_send, t_recv, offset_lo,
    /// offset_hi (offset, delay, age, error and truth optional).
    #[arg(long, value_name = "FILE.csv")]
    pub input: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Classifier parameters from a JSON file (any subset of the fields; see --print-params).
    #[arg(long, value_name = "FILE.json")]
    pub params: Option<PathBuf>,
    /// Override one classifier parameter, e.g. `--set ok_max_offset_s=0.5` (repeatable; applied
    /// after --params).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Print the classifier parameters in use (JSON) and exit.
    #[arg(long)]
    pub print_params: bool,
}

/// Builds the parameters: defaults, then the JSON file, then each `--set`.
pub fn load_params(file: Option<&Path>, sets: &[String]) -> anyhow::Result<ClassifierParams> {
    let mut v = serde_json::to_value(ClassifierParams::default())?;
    let obj = v.as_object_mut().context("parameters are an object")?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let given: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
        let Some(given) = given.as_object() else {
            bail!("{}: expected a JSON object of classifier parameters", path.display())
        };
        for (k, val) in given {
            if !obj.contains_key(k) {
                bail!("{}: unknown classifier parameter {k:?} (see --print-params)", path.display());
            }
            obj.insert(k.clone(), val.clone());
        }
    }
    for s in sets {
        let Some((k, val)) = s.split_once('=') else { bail!("--set {s:?}: expected NAME=VALUE") };
        let k = k.trim();
        if !obj.contains_key(k) {
            bail!("--set {s:?}: unknown classifier parameter {k:?} (see --print-params)");
        }
        let parsed: serde_json::Value =
            serde_json::from_str(val.trim()).with_context(|| format!("--set {s:?}: value {val:?} is not a number"))?;
        obj.insert(k.to_string(), parsed);
    }
    let p: ClassifierParams = serde_json::from_value(v).context("classifier parameters")?;
    p.validate()?;
    Ok(p)
}

/// One series read from the input.
#[derive(Debug, Default)]
pub struct SeriesIn {
    /// Observations in input order.
    pub obs: Vec<Observation>,
    /// The `truth` column, when present (simulate output).
    pub truth: Option<String>,
}

/// Key of a series.
pub type Key = (String, String, String);

fn col(headers: &csv::StringRecord, name: &str) -> Option<usize> {
    headers.iter().position(|h| h.trim() == name)
}

/// Reads observation rows from CSV text; errors name the file, line and column.
pub fn read_csv(path: &Path) -> anyhow::Result<BTreeMap<Key, SeriesIn>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(std::io::BufReader::new(file));
    let name = path.display().to_string();
    let headers = rdr.headers().with_context(|| format!("{name}: reading the header line"))?.clone();
    let need = ["target", "address", "method", "t_send", "t_recv", "offset_lo", "offset_hi"];
    let missing: Vec<&str> = need.iter().copied().filter(|c| col(&headers, c).is_none()).collect();
    if !missing.is_empty() {
        bail!("{name}: line 1: missing column(s) {} (need {})", missing.join(", "), need.join(", "));
    }
    let ix = |c: &str| col(&headers, c).unwrap_or(usize::MAX);
    let (i_target, i_addr, i_method) = (ix("target"), ix("address"), ix("method"));
    let (i_send, i_recv, i_lo, i_hi) = (ix("t_send"), ix("t_recv"), ix("offset_lo"), ix("offset_hi"));
    let (i_off, i_delay, i_age, i_err, i_truth) = (ix("offset"), ix("delay"), ix("age"), ix("error"), ix("truth"));
    let mut out: BTreeMap<Key, SeriesIn> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            anyhow::anyhow!("{name}: line {line}: {e}")
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |i: usize| rec.get(i).map(str::trim).filter(|s| !s.is_empty());
        let num = |i: usize, c: &str| -> anyhow::Result<Option<f64>> {
            match get(i) {
                None => Ok(None),
                Some(s) => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some(v)),
                    _ => bail!("{name}: line {line}: column {c}: {s:?} is not a finite number"),
                },
            }
        };
        let target = get(i_target).with_context(|| format!("{name}: line {line}: column target is empty"))?;
        let address = get(i_addr).unwrap_or("");
        let method_s = get(i_method).with_context(|| format!("{name}: line {line}: column method is empty"))?;
        let method: Method =
            method_s.parse().map_err(|e| anyhow::anyhow!("{name}: line {line}: column method: {e}"))?;
        let t_send = num(i_send, "t_send")?.with_context(|| format!("{name}: line {line}: column t_send is empty"))?;
        let t_recv = num(i_recv, "t_recv")?.unwrap_or(t_send);
        let age = match get(i_age) {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                anyhow::anyhow!("{name}: line {line}: column age: {s:?} is not a whole number of seconds")
            })?),
        };
        let o = Observation {
            target: target.to_string(),
            address: address.to_string(),
            method: Some(method),
            t_send,
            t_recv,
            offset: num(i_off, "offset")?,
            offset_lo: num(i_lo, "offset_lo")?,
            offset_hi: num(i_hi, "offset_hi")?,
            delay: num(i_delay, "delay")?,
            age,
            error: get(i_err).map(str::to_string),
            ..Default::default()
        };
        let e = out.entry((target.to_string(), address.to_string(), method.as_str().to_string())).or_default();
        if e.truth.is_none() {
            e.truth = get(i_truth).map(str::to_string);
        }
        e.obs.push(o);
    }
    Ok(out)
}

/// One output row.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Target.
    pub target: String,
    /// Address.
    pub address: String,
    /// Method.
    pub method: String,
    /// The verdict.
    #[serde(flatten)]
    pub c: Classification,
    /// Local time of the last online-check alarm (a change flagged after some probe).
    pub last_alarm: Option<f64>,
    /// Ground truth, when the input had a `truth` column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
}

/// Classifies every series.
pub fn classify_all(series: BTreeMap<Key, SeriesIn>, params: &ClassifierParams) -> Vec<Row> {
    let mut cl = Classifier::new(params.clone());
    series
        .into_iter()
        .map(|((target, address, method), s)| {
            let (mut samples, failed) = timeaudit_analysis::classify::samples_from_observations(&s.obs);
            samples.sort_by(|a: &Sample, b: &Sample| a.t.total_cmp(&b.t));
            let c = cl.classify(&samples, failed);
            let mut oc = OnlineCheck::new(OnlineParams::default());
            let last_alarm = samples.iter().map(|x| oc.observe(x)).filter(|v| v.new_alarm).map(|v| v.t).last();
            Row { target, address, method, c, last_alarm, truth: s.truth }
        })
        .collect()
}

fn f(v: Option<f64>, prec: usize) -> String {
    v.map_or(String::new(), |x| format!("{x:.prec$}"))
}

fn backends_text(c: &Classification) -> String {
    c.backends
        .iter()
        .map(|b| format!("{:.0}%:{}:{:.3}s:{:.1}ppm", b.share * 100.0, b.class, b.offset_s, b.rate_ppm))
        .collect::<Vec<_>>()
        .join(" ")
}

fn segments_text(c: &Classification) -> String {
    c.segments
        .iter()
        .map(|s| format!("{:.0}-{:.0}:{}:{:.3}s:{:.1}ppm", s.start, s.end, s.class, s.offset_s, s.rate_ppm))
        .collect::<Vec<_>>()
        .join(" ")
}

fn detail(c: &Classification) -> String {
    let mut d = Vec::new();
    if let (Some(r), Some(p)) = (c.resets, c.reset_period_s) {
        d.push(format!("resets={r} period={p:.0}s"));
    }
    if !c.backends.is_empty() {
        d.push(format!("backends=[{}]", backends_text(c)));
    }
    if !c.segments.is_empty() {
        d.push(format!("segments=[{}]", segments_text(c)));
    }
    if c.timezone_suspect {
        d.push("timezone?".into());
    }
    d.join(" ")
}

fn write_table(rows: &[Row], names: &[NameAgreement]) -> String {
    let mut out = String::new();
    let head = ["target", "address", "method", "class", "conf", "n", "span_s", "offset_s", "rate_ppm", "detail"];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        cells.push(vec![
            r.target.clone(),
            r.address.clone(),
            r.method.clone(),
            r.c.class.to_string(),
            format!("{:.2}", r.c.confidence),
            r.c.n.to_string(),
            format!("{:.0}", r.c.span_s),
            f(r.c.offset_s, 3),
            f(r.c.rate_ppm, 1),
            detail(&r.c),
        ]);
    }
    out += &align(&cells);
    if !names.is_empty() {
        out += "\n";
        let mut cells = vec![
            ["target", "method", "addresses", "compared", "clocks", "spread_s", "agree"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ];
        for a in names {
            cells.push(vec![
                a.target.clone(),
                a.method.clone(),
                a.addresses.to_string(),
                a.compared.to_string(),
                a.clocks.to_string(),
                f(a.spread_s, 3),
                if a.agree { "yes".into() } else { "no".into() },
            ]);
        }
        out += &align(&cells);
    }
    out
}

fn align(cells: &[Vec<String>]) -> String {
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|i| cells.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in cells {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        out += line.join("  ").trim_end();
        out += "\n";
    }
    out
}

fn write_csv(rows: &[Row]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let with_truth = rows.iter().any(|r| r.truth.is_some());
    let mut head = vec![
        "target",
        "address",
        "method",
        "class",
        "confidence",
        "n",
        "failed",
        "span_s",
        "offset_s",
        "rate_ppm",
        "resets",
        "reset_period_s",
        "backends",
        "segments",
        "timezone_suspect",
        "last_alarm",
    ];
    if with_truth {
        head.push("truth");
    }
    w.write_record(&head)?;
    for r in rows {
        let c = &r.c;
        let mut rec = vec![
            r.target.clone(),
            r.address.clone(),
            r.method.clone(),
            c.class.to_string(),
            format!("{:.4}", c.confidence),
            c.n.to_string(),
            c.failed.to_string(),
            format!("{:.3}", c.span_s),
            c.offset_s.map_or(String::new(), |x| x.to_string()),
            c.rate_ppm.map_or(String::new(), |x| x.to_string()),
            c.resets.map_or(String::new(), |x| x.to_string()),
            c.reset_period_s.map_or(String::new(), |x| x.to_string()),
            backends_text(c),
            segments_text(c),
            c.timezone_suspect.to_string(),
            r.last_alarm.map_or(String::new(), |x| x.to_string()),
        ];
        if with_truth {
            rec.push(r.truth.clone().unwrap_or_default());
        }
        w.write_record(&rec)?;
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?)?)
}

/// Runs the classify subcommand.
pub fn run(args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    let params = load_params(args.params.as_deref(), &args.set)?;
    if args.print_params {
        println!("{}", serde_json::to_string_pretty(&params)?);
        return Ok(ExitCode::SUCCESS);
    }
    let series = match (&args.input, &args.db) {
        (Some(path), _) => read_csv(path)?,
        (None, Some(db)) => bail!(
            "--db {}: reading the survey store is not available in this build yet; export the observations to CSV and use --input",
            db.display()
        ),
        (None, None) => bail!("give --input FILE.csv (or --db PATH)"),
    };
    let rows = classify_all(series, &params);
    let verdicts: Vec<Verdict<'_>> = rows
        .iter()
        .map(|r| Verdict { target: &r.target, address: &r.address, method: &r.method, classification: &r.c })
        .collect();
    let names = agreement(&verdicts, params.name_agree_tol_s);
    let text = match args.format {
        Format::Table => write_table(&rows, &names),
        Format::Json => {
            let doc = serde_json::json!({ "series": rows, "names": names });
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        Format::Csv => write_csv(&rows)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
