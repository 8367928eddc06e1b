"""Writes the notebooks of this directory from the cells below (outputs empty).

Run `python3 notebooks/make_notebooks.py` after editing a cell here; the .ipynb files are what
Jupyter opens and what scripts/run-notebooks.py executes.
"""
import nbformat as nbf
from pathlib import Path

HERE = Path(__file__).resolve().parent

def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                  "language_info": {"name": "python"}}
    n.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c.strip("\n")) for c in cells]
    for i, c in enumerate(n.cells):
        c["id"] = f"cell-{i}"
    return n

SURVEY = [
"""md:# Clock survey analysis

Reads the observations of a survey — `timeaudit export --format parquet` of a survey store, or any
CSV in the export's columns (the default is the synthetic history in `datasets/`) — and works
through the survey part of `timeaudit report` step by step: what answered, each series' latest
offset, the offset bands and percentiles, the worst clocks, one clock's offset over time, and the
addresses of each name.

Inputs (environment variables): `TIMEAUDIT_SURVEY` (Parquet or CSV[.gz]), optionally
`TIMEAUDIT_REPORT_JSON` (the `report.json` of the same data: the notebook then checks that its
tables equal the report's).""",
"""import json, os
from pathlib import Path
import polars as pl
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

root = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
src = os.environ.get("TIMEAUDIT_SURVEY", str(root / "datasets/survey/synthetic-304-hosts.csv.gz"))
obs = pl.read_parquet(src) if src.endswith(".parquet") else pl.read_csv(src, infer_schema_length=100000)
print(src, obs.shape)
obs.head()""",
"""md:## 1. What answered

One row per probe. A probe answered when it produced an offset; `error` says why not.""",
"""obs = obs.with_columns(pl.col("offset").is_not_null().alias("answered"))
obs.group_by("method").agg(pl.len().alias("probes"), pl.col("answered").sum(), pl.col("target").n_unique().alias("targets")).sort("method")""",
"""obs.filter(~pl.col("answered")).group_by("method", "error").len().sort("len", descending=True).head(10)""",
"""md:## 2. Each series' latest offset

A series is one (target, address, method). The report's bands and percentiles use the latest
offset each series measured.""",
"""answered = obs.filter(pl.col("answered")).sort("t_send")
latest = answered.group_by("target", "address", "method").agg(
    pl.col("offset").last().alias("latest"), pl.col("offset").median().alias("median"), pl.len().alias("n"))
latest = latest.with_columns(pl.col("latest").abs().alias("abs_latest"))
latest.sort("abs_latest", descending=True).head(10)""",
"""md:## 3. Offset bands by method

The bands of the seed survey: under a second, 1–59 s, a minute to an hour, an hour to a day, a day
to a month, more than a month.""",
"""bounds = [1.0, 60.0, 3600.0, 86400.0, 30 * 86400.0]
labels = ["<1 s", "1–59 s", "1 min–1 h", "1 h–1 day", "1 day–1 month", ">1 month"]
def band(x):
    for i, b in enumerate(bounds):
        if x < b:
            return i
    return len(bounds)
latest = latest.with_columns(pl.col("abs_latest").map_elements(band, return_dtype=pl.Int64).alias("band"))
bands = {m: [int(latest.filter((pl.col("method") == m) & (pl.col("band") == i)).height) for i in range(6)]
         for m in sorted(latest["method"].unique().to_list())}
pl.DataFrame({"method": list(bands)} | {labels[i]: [bands[m][i] for m in bands] for i in range(6)})""",
"""md:## 4. Percentiles of |offset|

Nearest-rank percentiles 1, 5, 50, 95 and 99 % of the series' |latest offset|, as ntpviz
tabulates them.""",
"""import math
def pct(sorted_vals, p):
    rank = max(1, math.ceil(p / 100 * len(sorted_vals)))
    return sorted_vals[min(rank, len(sorted_vals)) - 1]
percentiles = {}
for m in sorted(latest["method"].unique().to_list()) + ["all"]:
    v = sorted((latest if m == "all" else latest.filter(pl.col("method") == m))["abs_latest"].to_list())
    percentiles[m] = [pct(v, p) for p in (1, 5, 50, 95, 99)]
pl.DataFrame({"method": list(percentiles)} | {f"{p}%": [percentiles[m][i] for m in percentiles] for i, p in enumerate((1, 5, 50, 95, 99))})""",
"""md:## 5. Cross-check with `timeaudit report`

When the report of the same data is given, its tables must be exactly what this notebook
computed.""",
"""rep = os.environ.get("TIMEAUDIT_REPORT_JSON")
if rep:
    r = json.loads(Path(rep).read_text())["survey"]
    assert r["observations"] == obs.height, (r["observations"], obs.height)
    assert {b["method"]: b["counts"] for b in r["bands"]} == bands, (r["bands"], bands)
    for row in r["percentile_rows"]:
        assert all(abs(a - b) < 1e-12 for a, b in zip(row["values_s"], percentiles[row["method"]])), row
    print("report.json agrees:", r["series_count"], "series,", r["observations"], "observations")
else:
    print("no TIMEAUDIT_REPORT_JSON given: cross-check skipped")""",
"""md:## 6. One clock over time

The worst series: every probe is an interval certain to contain the offset (NTP: θ ± δ/2;
HTTP: the one-second `Date` window), drawn as a bar.""",
"""worst = latest.sort("abs_latest", descending=True).row(0, named=True)
s = answered.filter((pl.col("target") == worst["target"]) & (pl.col("address") == worst["address"]) & (pl.col("method") == worst["method"]))
t = (s["t_send"] - s["t_send"].min()) / 3600
fig, ax = plt.subplots(figsize=(8, 4))
ax.vlines(t, s["offset_lo"], s["offset_hi"], color="tab:blue", label="interval")
ax.plot(t, s["offset"], "o", ms=3, color="tab:blue", label="midpoint")
ax.set(title=f"{worst['target']} {worst['address']} ({worst['method']})", xlabel="hours since first probe", ylabel="offset (s)")
ax.legend(); fig.tight_layout()""",
"""md:## 7. Names with several addresses

Round-robin DNS puts several machines behind one name; their clocks need not agree.""",
"""per_name = latest.group_by("target", "method").agg(pl.col("address").n_unique().alias("addresses"),
    (pl.col("median").max() - pl.col("median").min()).alias("spread_s"))
per_name.filter(pl.col("addresses") > 1).sort("spread_s", descending=True).head(10)""",
"""md:## 8. Ground truth (synthetic data only)

The synthetic history carries the class each series was drawn from.""",
"""if "truth" in obs.columns:
    display_df = obs.group_by("truth", "method").agg(pl.struct("target", "address").n_unique().alias("series")).sort("truth", "method")
    print(display_df)
else:
    print("no truth column: real data")""",
]

SEED003 = [
"""md:# Why is my NTP server costing me money? — the seed analysis, step by step

The seed blog post took a 45-minute tcpdump of a pool NTP server and answered, with
`tcpdump | awk | sort | uniq` and a spreadsheet: how much it sends, to how many clients, who the
greedy clients are, what share of the traffic comes from clients with at most N queries, what
blocking clients above N queries would save, and how clients poll. Here the same questions are
answered from the per-client tables of `timeaudit pcap CAPTURE --out-dir DIR --table-format parquet`.

Input: `TIMEAUDIT_PCAP_TABLES` (that directory), `TIMEAUDIT_PRICE_PER_GB` (default 0.09, as
`timeaudit pcap`).""",
"""import os
from pathlib import Path
import polars as pl
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

tables = Path(os.environ["TIMEAUDIT_PCAP_TABLES"])
price = float(os.environ.get("TIMEAUDIT_PRICE_PER_GB", "0.09"))
clients = pl.read_parquet(tables / "clients.parquet")
print(clients.shape); clients.head()""",
"""md:## 1. Outbound bytes and throughput (the seed's `pcap_len`)

Frame bytes the server sent to clients, over the capture's span.""",
"""out_bytes = clients["bytes_out"].sum()
span = clients["last_seen"].max() - clients["first_seen"].min()
print(f"{out_bytes} bytes out in {span:.0f} s = {out_bytes * 8 / span / 1000:.1f} kbit/s")""",
"""md:## 2. Unique clients (the seed's `awk '{print $5}' | sort | uniq | wc -l`)

Counted by what clients *sent*, so clients that were never answered are not lost.""",
"""print(clients.height, "clients;", clients.filter(pl.col("responses") == 0).height, "never answered")""",
"""md:## 3. Greedy clients

Queries per client over the capture, and their rate.""",
"""clients.with_columns((pl.col("requests") / span).alias("queries_per_s")).sort("requests", descending=True).select(
    "address", "requests", "queries_per_s", "median_interval_s", "kod_received", "client_type").head(10)""",
"""md:## 4. Share of traffic from clients with ≤ N queries

The seed's chart: for each N, the share of the server's outbound traffic (bytes it sent) that went
to clients that made at most N queries (log x axis). Recomputed here from the client table and
checked against `traffic_cdf.parquet`.""",
"""counts = clients.group_by("requests").agg(pl.len().alias("clients"), pl.col("bytes_out").sum()).sort("requests")
cdf = counts.with_columns((100 * pl.col("bytes_out").cum_sum() / out_bytes).alias("traffic_pct"))
theirs = pl.read_parquet(tables / "traffic_cdf.parquet").sort("queries")
joined = cdf.join(theirs, left_on="requests", right_on="queries", suffix="_tool")
assert joined.height == theirs.height, (joined.height, theirs.height)
assert (joined["traffic_pct"] - joined["traffic_pct_tool"]).abs().max() < 1e-9
fig, ax = plt.subplots(figsize=(8, 4))
ax.step(cdf.filter(pl.col("requests") > 0)["requests"], cdf.filter(pl.col("requests") > 0)["traffic_pct"], where="post", marker="o", ms=3)
ax.set_xscale("log"); ax.set(title="Share of traffic from clients with ≤ N queries", xlabel="N, queries per client (log scale)", ylabel="share of outbound bytes (%)")
fig.tight_layout()""",
"""md:## 5. What if clients above N queries were blocked?

The seed's table: bandwidth cut and yearly spend. Blocking a client saves the replies it was sent;
the yearly figure extrapolates the capture's rate at the egress price.""",
"""whatif = pl.read_parquet(tables / "what_if.parquet")
year = 365 * 86400
rows = []
for n in whatif["more_than"].to_list():
    blocked = clients.filter(pl.col("requests") > n)
    cut = blocked["bytes_out"].sum() / out_bytes
    rows.append({"more_than": n, "clients_blocked": blocked.height, "traffic_cut_pct": 100 * cut,
                 "spend_per_year": (1 - cut) * out_bytes / span * year / 1e9 * price})
mine = pl.DataFrame(rows)
check = mine.join(whatif, on="more_than", suffix="_tool")
assert (check["clients_blocked"] == check["clients_blocked_tool"]).all()
assert (check["traffic_cut_pct"] - check["traffic_cut_pct_tool"]).abs().max() < 1e-9
# The tool extrapolates over the capture's first-to-last frame; the client table only gives the
# clients' first and last packets, a slightly shorter span: the yearly figures differ by that ratio.
assert ((check["spend_per_year"] - check["spend_per_year_tool"]).abs() <= 0.005 * check["spend_per_year_tool"] + 1e-12).all()
print(check.select("more_than", "clients_blocked", "traffic_cut_pct", "traffic_cut_pct_tool", "spend_per_year", "spend_per_year_tool"))""",
"""md:## 6. How clients poll

Median polling interval against queries sent: minpoll-stuck clients sit at 64 s, well-behaved
ones back off towards 1024 s, abusive ones poll several times a second.""",
"""p = clients.filter(pl.col("median_interval_s").is_not_null())
fig, ax = plt.subplots(figsize=(8, 4))
for kind, marker in zip(sorted(p["client_type"].unique().to_list()), "os^vDx+*"):
    q = p.filter(pl.col("client_type") == kind)
    ax.scatter(q["requests"], q["median_interval_s"], marker=marker, s=14, label=kind)
ax.set_xscale("log"); ax.set_yscale("log")
ax.set(title="Polling interval by client", xlabel="queries in the capture (log scale)", ylabel="median polling interval (s, log scale)")
ax.legend(fontsize=8); fig.tight_layout()
clients.group_by("client_type").agg(pl.len().alias("clients"), pl.col("requests").sum()).sort("requests", descending=True)""",
]

if __name__ == "__main__":
    nbf.write(nb(SURVEY), HERE / "survey-analysis.ipynb")
    nbf.write(nb(SEED003), HERE / "seed-003-ntp-server-cost.ipynb")
