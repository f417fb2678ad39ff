// Shared by the notebooks in this folder: open a results folder, read its files with the harness's
// own readers (build/harness/...), and turn rows into HTML tables and figures. It only reads what a
// run wrote; it never measures. Every function returns data or HTML strings; the notebook cells
// display them (tslab's display.html), so this file has no dependency on the kernel.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The compiled harness modules the notebooks use. Throws with the fix when build/ is missing. */
export async function loadHarness(root) {
  const b = (p) => path.join(root, 'build', 'harness', p);
  const need = ['results/raw-writer.js', 'results/summarize.js', 'results/comparison.js', 'figures/index.js', 'figures/by-path.js', 'measure/stats.js', 'measure/random.js', 'platform/modes.js'];
  const missing = need.filter((p) => !fs.existsSync(b(p)));
  if (missing.length) {
    throw new Error(`the compiled harness is missing (${missing.join(', ')}): run "npx tsc -p tsconfig.json" in ${root}`);
  }
  const imp = (p) => import(pathToFileURL(b(p)).href);
  const [rawWriter, summarize, comparison, figures, byPath, stats, random, modes] = await Promise.all(need.map(imp));
  return { rawWriter, summarize, comparison, figures, byPath, stats, random, modes };
}

/**
 * Which results folder to read: $FXH_RESULTS (absolute, or relative to the kernel's working
 * directory, or to the repository root); else the run folder enclosing the working directory (an
 * executed copy in results/<run>/notebooks/); else <root>/results/latest.
 */
export function resolveResultsDir(root, env = process.env, cwd = process.cwd()) {
  const fromEnv = env.FXH_RESULTS;
  if (fromEnv) {
    const candidates = path.isAbsolute(fromEnv) ? [fromEnv] : [path.resolve(fromEnv), path.resolve(root, fromEnv)];
    const hit = candidates.find((c) => fs.existsSync(c)) ?? candidates[0];
    return { dir: hit, source: `FXH_RESULTS=${fromEnv}`, exists: fs.existsSync(hit) };
  }
  // An executed copy inside a results folder (results/<run>/notebooks/) reads the folder it sits in.
  for (let dir = path.resolve(cwd); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'status.json')) && fs.existsSync(path.join(dir, 'raw.csv'))) {
      return { dir, source: 'the results folder this notebook runs in (FXH_RESULTS not set)', exists: true };
    }
  }
  const latest = path.join(root, 'results', 'latest');
  let dir = latest;
  let source = 'results/latest (FXH_RESULTS not set)';
  try {
    dir = fs.realpathSync(latest);
  } catch {
    try {
      source = `results/latest (FXH_RESULTS not set), a dangling link to ${fs.readlinkSync(latest)}`;
    } catch {
      source = 'results/latest (FXH_RESULTS not set), which does not exist: no run yet';
    }
  }
  return { dir, source, exists: fs.existsSync(dir) };
}

function readJson(file, problems) {
  if (!fs.existsSync(file)) {
    problems.push(`${path.basename(file)} is missing`);
    return undefined;
  }
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${path.basename(file)} is unreadable: ${e.message}`);
    return undefined;
  }
}

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * Everything a notebook needs from a results folder, filtered to `experiment` where it matters.
 * Never throws on missing or damaged files: what could not be read is listed in `problems`.
 */
export function openRun(root, h, experiment, env = process.env) {
  const where = resolveResultsDir(root, env);
  const problems = [];
  const run = {
    ...where,
    experiment,
    problems,
    status: undefined,
    env: undefined,
    summaryAll: [],
    rawAll: [],
    summary: [],
    raw: [],
    summarySource: 'none',
    files: {},
  };
  if (!where.exists) {
    problems.push(`results folder ${where.dir} does not exist (${where.source}); set FXH_RESULTS to a results/<run> folder`);
    return run;
  }
  for (const f of ['status.json', 'env.json', 'raw.csv', 'summary.csv', 'cold-start-ratios.csv', 'figures']) {
    run.files[f] = fs.existsSync(path.join(where.dir, f));
  }
  run.status = readJson(path.join(where.dir, 'status.json'), problems);
  run.env = readJson(path.join(where.dir, 'env.json'), problems);
  // the modes as the run's variants declared them: the figures take labels and colours from these
  if (Array.isArray(run.env?.extra?.modes) && h.modes) {
    try {
      h.modes.declareModes(`the run in ${where.dir}`, run.env.extra.modes);
    } catch (e) {
      problems.push(`env.json's mode declarations were not used: ${e.message}`);
    }
  }

  const rawFile = path.join(where.dir, 'raw.csv');
  if (run.files['raw.csv']) {
    try {
      const text = fs.readFileSync(rawFile, 'utf8');
      const { truncated } = h.rawWriter.parseCsv(text);
      if (truncated !== undefined) problems.push(`raw.csv ends in a record cut off mid-write (${truncated.length} characters); it is left out`);
      run.rawAll = h.rawWriter.readRawCsv(rawFile);
    } catch (e) {
      problems.push(`raw.csv could not be read: ${e.message}`);
    }
  } else problems.push('raw.csv is missing');

  const summaryFile = path.join(where.dir, 'summary.csv');
  if (run.files['summary.csv']) {
    try {
      run.summaryAll = h.summarize.readSummaryCsv(summaryFile);
      run.summarySource = 'summary.csv';
    } catch (e) {
      problems.push(`summary.csv could not be read: ${e.message}`);
    }
  } else problems.push('summary.csv is missing (the run stopped before summarizing)');
  if (run.summarySource === 'none' && run.rawAll.length) {
    // Same function the runner uses, with the skips and failures env.json recorded.
    const skips = Array.isArray(run.env?.skips) ? run.env.skips : [];
    const failures = Array.isArray(run.env?.extra?.failures) ? run.env.extra.failures : [];
    run.summaryAll = h.summarize.summarize(run.rawAll, skips, failures);
    run.summarySource = 'recomputed here from raw.csv';
    problems.push('summary rows were recomputed in this notebook from raw.csv (same summarize() as the runner)');
  }
  const mine = (r) => r.experiment === experiment;
  run.summary = run.summaryAll.filter(mine);
  run.raw = run.rawAll.filter(mine);
  return run;
}

// ---------- formatting ----------

const sig3 = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 3 significant digits with thousands separators ("1,540", "24.2", "0.00977"); "–" if not finite. */
export function fmt3(v) {
  return typeof v === 'number' && Number.isFinite(v) ? sig3.format(v) : '–';
}

/** A whole number with separators. */
export function fmtInt(v) {
  return typeof v === 'number' && Number.isFinite(v) ? int.format(v) : '–';
}

/** "24.2 [23.9, 25.1]" (CI omitted when not finite). */
export function fmtCI(v, lo, hi) {
  const ci = Number.isFinite(lo) && Number.isFinite(hi) ? ` [${fmt3(lo)}, ${fmt3(hi)}]` : ' [no CI]';
  return Number.isFinite(v) ? fmt3(v) + ci : '–';
}

/** A ratio "37.1×". */
export function fmtX(v) {
  return Number.isFinite(v) ? `${fmt3(v)}×` : '–';
}

export function escapeHtml(s) {
  return String(s ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const TABLE_STYLE =
  'border-collapse:collapse;font-size:12px;margin:4px 0 12px 0;font-family:DejaVu Sans,Arial,sans-serif';
const CELL_STYLE = 'border:1px solid #ccc;padding:2px 6px;';

/**
 * HTML table. columns: [{key, label, align?: 'left'|'right', html?: true}]; a cell value is
 * escaped unless its column has html: true. Empty rows give an "(none)" line instead.
 */
export function htmlTable(columns, rows, opts = {}) {
  const caption = opts.caption ? `<caption style="text-align:left;font-weight:bold;padding:4px 0">${escapeHtml(opts.caption)}</caption>` : '';
  if (!rows.length) return `<p><b>${escapeHtml(opts.caption ?? '')}</b> <i>${escapeHtml(opts.empty ?? '(none)')}</i></p>`;
  const head = columns.map((c) => `<th style="${CELL_STYLE}background:#f0f0f0;text-align:${c.align ?? 'left'}">${escapeHtml(c.label)}</th>`).join('');
  const body = rows
    .map((r) => {
      const bg = r._bg ? `background:${r._bg};` : '';
      return '<tr>' + columns.map((c) => {
        const v = r[c.key];
        return `<td style="${CELL_STYLE}${bg}text-align:${c.align ?? 'left'}">${c.html ? (v ?? '') : escapeHtml(v)}</td>`;
      }).join('') + '</tr>';
    })
    .join('');
  const note = opts.note ? `<div style="font-size:11px;color:#444;margin:-8px 0 12px 0">${escapeHtml(opts.note)}</div>` : '';
  return `<table style="${TABLE_STYLE}">${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${note}`;
}

/** A coloured box: kind 'ok' | 'warn' | 'bad' | 'info'. `html` is inserted as is. */
export function box(kind, html) {
  const colors = { ok: ['#e8f5e9', '#2e7d32'], warn: ['#fff8e1', '#f9a825'], bad: ['#ffebee', '#c62828'], info: ['#e3f2fd', '#1565c0'] };
  const [bg, border] = colors[kind] ?? colors.info;
  return `<div style="background:${bg};border-left:5px solid ${border};padding:6px 10px;margin:6px 0;font-family:DejaVu Sans,Arial,sans-serif;font-size:13px">${html}</div>`;
}

export function ul(items) {
  return items.length ? `<ul style="margin:2px 0">${items.map((i) => `<li>${i}</li>`).join('')}</ul>` : '';
}

// ---------- header: folder, status, environment ----------

/** The state of the run as one HTML box (loud when not complete) plus a plain-text line. */
export function statusReport(run) {
  const s = run.status;
  if (!run.exists) return { text: `NO RESULTS FOLDER: ${run.dir}`, html: box('bad', `<b>No results folder</b> at <code>${escapeHtml(run.dir)}</code> (${escapeHtml(run.source)}). Run <code>zx experiments/suite.mjs --quick</code> or set <code>FXH_RESULTS</code>.`) };
  if (!s) return { text: 'status.json MISSING: state unknown', html: box('bad', '<b>status.json is missing</b>: the state of this run is unknown; treat every number as possibly partial.') };
  if (s.state === 'complete') return { text: `complete (${s.started} → ${s.ended})`, html: box('ok', `<b>Run complete</b>: started ${escapeHtml(s.started)}, ended ${escapeHtml(s.ended ?? '?')}.`) };
  if (s.state === 'running') {
    const alive = pidAlive(s.pid);
    const end = run.env?.extra?.state;
    if (alive && end && !end.interrupted && !end.error) {
      // The runner executes the notebooks after measuring and summarizing, before it marks the folder.
      const failures = Array.isArray(run.env.extra.failures) ? run.env.extra.failures.length : 0;
      const then = failures
        ? `it will then be marked <b>incomplete</b>: ${failures} cell(s) failed (listed below)`
        : 'it will then be marked complete';
      return {
        text: `measurements finished; the run (pid ${s.pid}) is executing its notebooks, then status.json is updated (${failures ? `${failures} failed cell(s): it will be marked incomplete` : 'no failures'})`,
        html: box(failures ? 'bad' : 'ok', `<b>Measurements finished</b>: the run (pid ${s.pid}) has summarized everything and is executing this notebook; ${then}. status.json still says <code>running</code> until that step ends.`),
      };
    }
    const why = alive
      ? `the run (pid ${s.pid}) is still going: the numbers below are a snapshot`
      : `but its process (pid ${s.pid}) is gone: the run died without marking the folder (killed, or it crashed while finishing)`;
    return { text: `INCOMPLETE: status.json says running, ${why}`, html: box('bad', `<b>INCOMPLETE RUN</b>: status.json says <code>running</code>, ${escapeHtml(why)}. What follows is only what was written before; missing cells are listed below.`) };
  }
  return { text: `INCOMPLETE: ${s.reason ?? 'no reason given'}`, html: box('bad', `<b>INCOMPLETE RUN</b> (${escapeHtml(s.state)}): ${escapeHtml(s.reason ?? 'no reason given')}. Started ${escapeHtml(s.started)}, ended ${escapeHtml(s.ended ?? '?')}. The tables show what was measured; missing cells are listed below.`) };
}

function argValue(argv, flag) {
  if (!Array.isArray(argv)) return undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = String(argv[i]);
    if (a === flag) return argv[i + 1];
    if (a.startsWith(flag + '=')) return a.slice(flag.length + 1);
  }
  return undefined;
}

/** A flag's value from env.json's command line, e.g. argFromEnv(run, '--compare'). */
export function argFromEnv(run, flag) {
  return argValue(run.env?.commandLine, flag);
}

/** Key facts of env.json as [label, value] pairs. */
export function envFacts(run) {
  const e = run.env;
  if (!e) return [['env.json', 'missing: machine fingerprint unknown']];
  const gib = (b) => (Number.isFinite(b) ? `${(b / 2 ** 30).toFixed(1)} GiB` : '?');
  const gov = typeof e.cpuGovernor === 'string' ? e.cpuGovernor : [...new Set(Object.values(e.cpuGovernor ?? {}))].join(', ');
  const facts = [
    ['kernel', `${e.kernel?.release ?? '?'} (${e.os ?? '?'})`],
    ['CPU', `${e.cpu?.model ?? '?'} × ${e.cpu?.logicalCores ?? '?'} logical cores; memory ${gib(e.memoryTotalBytes)}`],
    ['CPU governor / turbo', `${gov} / ${e.turbo ?? '?'}`],
    ['Node / V8', `${e.node ?? '?'} / ${e.v8 ?? '?'}`],
    ['runc', e.tools?.runc ?? '?'],
    ['clang / wasm-opt / bpftool', [e.tools?.clang, e.tools?.['wasm-opt'], e.tools?.bpftool].map((x) => x ?? '?').join(' / ')],
    ['git commit', `${e.git?.commit ?? '?'}${e.git?.dirty === true ? ' (with uncommitted changes)' : ''}`],
    ['quick / seed', `${e.quick ? 'quick (few repetitions: indicative only)' : 'full'} / seed ${e.seed ?? '?'}`],
    ['command line', Array.isArray(e.commandLine) ? e.commandLine.join(' ') : '?'],
    ['load average at the end', e.loadAverage ? `${e.loadAverage['1m']} (1 min), ${e.loadAverage['5m']} (5 min)` : '?'],
    ['root', String(e.root ?? '?')],
    ['env.json written', e.timestamp ?? '?'],
  ];
  if (e.extra?.state && (e.extra.state.interrupted || e.extra.state.error)) {
    facts.push(['end of run', e.extra.state.interrupted ? `interrupted by ${e.extra.state.interrupted}` : `error: ${JSON.stringify(e.extra.state.error)}`]);
  }
  if (!e.extra) facts.push(['env.json', 'written at the start only (no skips, failures or notes: the run never reached its end)']);
  return facts;
}

/** Folder, state, environment and file inventory as one HTML block, and a plain-text version. */
export function headerReport(run) {
  const st = statusReport(run);
  const lines = [`results folder: ${run.dir}`, `  chosen by: ${run.source}`, `  state: ${st.text}`];
  let html = `<p style="font-family:DejaVu Sans,Arial,sans-serif;font-size:13px">Results folder: <code>${escapeHtml(run.dir)}</code><br>chosen by: ${escapeHtml(run.source)}</p>${st.html}`;
  if (!run.exists) return { text: lines.join('\n'), html };
  const facts = envFacts(run);
  for (const [k, v] of facts) lines.push(`  ${k}: ${v}`);
  html += htmlTable([{ key: 'k', label: 'environment' }, { key: 'v', label: '' }], facts.map(([k, v]) => ({ k, v })));
  const inv = Object.entries(run.files).map(([f, ok]) => `${f} ${ok ? '✓' : '✗ missing'}`);
  const experiments = [...new Set(run.summaryAll.map((r) => r.experiment).concat(run.rawAll.map((r) => r.experiment)))];
  html += `<p style="font-size:12px">Files: ${escapeHtml(inv.join(' · '))}<br>Experiments in this folder: ${escapeHtml(experiments.join(', ') || 'none')} · rows for <b>${escapeHtml(run.experiment)}</b>: ${run.raw.length} samples, ${run.summary.length} summary rows (${escapeHtml(run.summarySource)})</p>`;
  lines.push(`  files: ${inv.join(', ')}`, `  experiments here: ${experiments.join(', ') || 'none'}; ${run.experiment}: ${run.raw.length} samples, ${run.summary.length} summary rows`);
  if (run.problems.length) {
    html += box('warn', `<b>Problems reading this folder</b>${ul(run.problems.map(escapeHtml))}`);
    for (const p of run.problems) lines.push(`  PROBLEM: ${p}`);
  }
  return { text: lines.join('\n'), html };
}

// ---------- tables ----------

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Sort summary-like rows by the given keys (strings compare, numbers compare numerically). */
export function sortBy(rows, keys) {
  return rows.slice().sort((a, b) => {
    for (const k of keys) {
      const c = typeof a[k] === 'number' && typeof b[k] === 'number' ? a[k] - b[k] : cmp(String(a[k]), String(b[k]));
      if (c) return c;
    }
    return 0;
  });
}

/** Summary rows of `metric` with status ok, every statistic converted to µs. */
export function latencyRowsUs(h, summary, metric, filter = () => true) {
  return summary
    .filter((r) => r.metric === metric && r.status === 'ok' && r.n > 0 && filter(r))
    .map((r) => {
      let f = NaN;
      try {
        f = h.figures.microsPerUnit(r.unit);
      } catch {
        // not a time unit: left NaN so it shows as "–" rather than a wrong number
      }
      const o = { ...r };
      for (const k of ['mean', 'sd', 'min', 'p50', 'p90', 'p99', 'p999', 'max', 'ci95_mean_lo', 'ci95_mean_hi', 'ci95_median_lo', 'ci95_median_hi']) o[k] = r[k] * f;
      return o;
    });
}

/** The standard latency table: variant × function × mode × path, p50 [95% CI], p99, n, noisy (µs). */
export function latencyTableHtml(h, summary, metric, opts = {}) {
  const rows = sortBy(latencyRowsUs(h, summary, metric, opts.filter), ['path', 'function', 'variant', 'mode', 'params']).map((r) => ({
    path: r.path,
    function: r.function,
    variant: r.variant,
    mode: r.mode,
    params: r.params,
    p50: fmtCI(r.p50, r.ci95_median_lo, r.ci95_median_hi),
    p90: fmt3(r.p90),
    p99: fmt3(r.p99),
    max: fmt3(r.max),
    n: fmtInt(r.n),
    noisy: r.noisy ? `yes (±${((r.ci95_median_hi - r.ci95_median_lo) / 2 / Math.abs(r.p50) * 100).toFixed(0)}%)` : '',
    _bg: r.noisy ? '#fff8e1' : undefined,
  }));
  const cols = [
    { key: 'path', label: 'path' },
    { key: 'function', label: 'function' },
    { key: 'variant', label: 'variant' },
    { key: 'mode', label: 'mode' },
    ...(opts.showParams ? [{ key: 'params', label: 'params' }] : []),
    { key: 'p50', label: 'p50 µs [95% CI]', align: 'right' },
    { key: 'p90', label: 'p90 µs', align: 'right' },
    { key: 'p99', label: 'p99 µs', align: 'right' },
    { key: 'max', label: 'max µs', align: 'right' },
    { key: 'n', label: 'n', align: 'right' },
    { key: 'noisy', label: 'noisy' },
  ];
  return htmlTable(cols, rows, { caption: opts.caption, empty: 'no measured cells', note: opts.note });
}

/** Skipped and failed rows of one experiment (never dropped silently), plus env.json skips with no summary row. */
export function notOkTableHtml(run, opts = {}) {
  const bad = run.summary.filter((r) => r.status !== 'ok');
  const rows = sortBy(bad, ['status', 'variant', 'function', 'mode']).map((r) => ({
    status: r.status,
    variant: r.variant,
    function: r.function,
    mode: r.mode,
    path: r.path,
    metric: r.metric,
    params: r.params,
    n: fmtInt(r.n),
    note: r.note,
    _bg: r.status === 'failed' ? '#ffebee' : '#f5f5f5',
  }));
  const cols = ['status', 'variant', 'function', 'mode', 'path', 'metric', 'params', 'n', 'note'].map((k) => ({ key: k, label: k === 'note' ? 'reason' : k, align: k === 'n' ? 'right' : 'left' }));
  return {
    count: rows.length,
    failed: bad.filter((r) => r.status === 'failed').length,
    html: htmlTable(cols, rows, {
      caption: opts.caption ?? `Skipped and failed cells of ${run.experiment}`,
      empty: run.summary.length
        ? 'none: every planned cell of this experiment was measured (as far as summary.csv knows)'
        : `none recorded, but this folder has no summary rows for ${run.experiment} at all (see coverage below)`,
      note: 'A failed cell keeps the statistics of the samples taken before it failed (n > 0) but is not drawn in the figures.',
    }),
  };
}

/**
 * What is missing: for every variant known to the harness or to this folder, whether this
 * experiment has measured rows, only skips/failures, or nothing at all; and the expected
 * paths/modes/metrics that have no measured row.
 */
export function coverageReport(root, run, expect = {}) {
  if (!run.exists) return { html: box('bad', 'No results folder: nothing to cover.'), missing: ['everything (no results folder)'] };
  const known = new Set();
  const vdir = path.join(root, 'build', 'harness', 'variants');
  try {
    // A plug-in is a module with a default export (what the registry loads); helpers have none.
    for (const f of fs.readdirSync(vdir)) {
      if (f.endsWith('.js') && /^export default /m.test(fs.readFileSync(path.join(vdir, f), 'utf8'))) known.add(f.replace(/\.js$/, ''));
    }
  } catch {
    // no compiled variants folder: fall back to the variants named in the data
  }
  for (const r of run.summaryAll) if (r.variant && r.variant !== '*') known.add(r.variant);
  const asked = argFromEnv(run, '--variants');
  const askedSet = asked ? new Set(String(asked).split(',')) : undefined;
  const items = [];
  const missing = [];
  for (const v of [...known].sort()) {
    const rows = run.summary.filter((r) => r.variant === v);
    const ok = rows.filter((r) => r.status === 'ok' && r.n > 0);
    const skipped = rows.filter((r) => r.status === 'skipped');
    const failed = rows.filter((r) => r.status === 'failed');
    const skipAll = run.summaryAll.find((r) => r.variant === v && r.status === 'skipped' && r.function === '*');
    if (ok.length) {
      let s = `<b>${escapeHtml(v)}</b>: ${ok.length} measured cell(s)`;
      if (skipped.length || failed.length) s += `, ${skipped.length} skipped, ${failed.length} failed (table above)`;
      const gaps = [];
      for (const [key, values] of Object.entries(expect)) {
        for (const val of values) if (!ok.some((r) => r[key] === val)) gaps.push(`${key} ${val}`);
      }
      if (gaps.length) {
        s += `; <span style="color:#c62828">nothing measured for ${escapeHtml(gaps.join(', '))}</span>`;
        missing.push(`${v}: no ${gaps.join(', ')}`);
      }
      items.push(s);
    } else if (skipAll) {
      items.push(`<b>${escapeHtml(v)}</b>: <span style="color:#c62828">not measured: the whole variant was skipped</span> — ${escapeHtml(skipAll.note)}`);
      missing.push(`${v}: skipped (${skipAll.note})`);
    } else if (failed.length) {
      items.push(`<b>${escapeHtml(v)}</b>: <span style="color:#c62828">nothing measured; ${failed.length} cell(s) failed</span> — ${escapeHtml(failed[0].note)}${skipped.length ? ` (and ${skipped.length} skipped)` : ''}`);
      missing.push(`${v}: failed (${failed[0].note})`);
    } else if (askedSet && !askedSet.has(v)) {
      items.push(`<b>${escapeHtml(v)}</b>: not asked for (the run was started with <code>--variants ${escapeHtml(asked)}</code>)`);
    } else {
      const why = run.status?.state === 'complete'
        ? 'no measured rows for this experiment (the variant was not built or not registered when the run started)'
        : 'no measured rows: the run stopped before reaching it';
      const sk = skipped.length ? ` Only ${skipped.length} skipped cell(s) (e.g. ${skipped[0].function}: ${skipped[0].note}), listed above.` : '';
      items.push(`<b>${escapeHtml(v)}</b>: <span style="color:#c62828">missing</span> — ${escapeHtml(why)}.${escapeHtml(sk)}`);
      missing.push(`${v}: missing (${why})`);
    }
  }
  const html = box(missing.length ? 'warn' : 'ok', `<b>Coverage of ${escapeHtml(run.experiment)}</b> by variant${ul(items)}${missing.length ? '' : 'Nothing missing.'}`);
  return { html, missing };
}

// ---------- figures ----------

/** Draw figures (already built by a harness figure module) as inline SVG; a figure that throws becomes an error box. */
export function figuresHtml(h, figs) {
  const out = [];
  const errors = [];
  for (const fig of figs) {
    try {
      const svg = h.figures.figureToSvg(fig).replace(/^<\?xml[^>]*>\s*/, '');
      out.push(`<div style="margin:8px 0">${svg}</div>`);
    } catch (e) {
      errors.push(`${fig.name}: ${e.message}`);
      out.push(box('bad', `Figure <b>${escapeHtml(fig.name)}</b> could not be drawn: ${escapeHtml(e.message)}`));
    }
  }
  return { html: out.join(''), errors };
}

/** Build figures with `build()` and draw them; a builder that throws is reported, not raised. */
export function safeFigures(h, label, build) {
  let figs;
  try {
    figs = build();
  } catch (e) {
    return { html: box('bad', `The ${escapeHtml(label)} figure module threw: ${escapeHtml(e.message)}`), errors: [`${label}: ${e.message}`], count: 0 };
  }
  if (!figs.length) return { html: box('warn', `No ${escapeHtml(label)} figure: no measured cells in this folder.`), errors: [], count: 0 };
  return { ...figuresHtml(h, figs), count: figs.length };
}

// ---------- other files ----------

/** cold-start-ratios.csv (COMPARISON_COLUMNS) as objects with numbers; undefined if absent. */
export function readComparisonCsv(h, file) {
  if (!fs.existsSync(file)) return undefined;
  const { records } = h.rawWriter.parseCsv(fs.readFileSync(file, 'utf8'));
  const { rows } = h.rawWriter.recordsToObjects(records, h.comparison.COMPARISON_COLUMNS, file);
  const text = new Set(['metric', 'path', 'params', 'function', 'unit', 'numerator', 'denominator']);
  return rows.map((o) => {
    const r = {};
    for (const c of h.comparison.COMPARISON_COLUMNS) r[c] = text.has(c) ? o[c] : h.rawWriter.parseNumber(o[c]);
    return r;
  });
}

/** Notes the run recorded in env.json (extra.notes), optionally only those starting with `prefix`. */
export function envNotes(run, prefix = '') {
  const notes = Array.isArray(run.env?.extra?.notes) ? run.env.extra.notes : [];
  return notes.filter((n) => String(n).startsWith(prefix));
}

/**
 * Percentile-bootstrap 95% CI of median(b) − median(a), a and b resampled independently
 * (seeded: the same data gives the same interval).
 */
export function bootstrapMedianDiff(h, a, b, seed = 7, iterations = 2000) {
  const { median, quantileSorted } = h.stats;
  if (!a.length || !b.length) return { diff: NaN, lo: NaN, hi: NaN };
  const rng = h.random.createRng(seed);
  const ra = new Array(a.length);
  const rb = new Array(b.length);
  const diffs = [];
  for (let i = 0; i < iterations; i++) {
    for (let k = 0; k < a.length; k++) ra[k] = a[Math.floor(rng() * a.length)];
    for (let k = 0; k < b.length; k++) rb[k] = b[Math.floor(rng() * b.length)];
    diffs.push(median(rb) - median(ra));
  }
  diffs.sort((x, y) => x - y);
  return { diff: median(b) - median(a), lo: quantileSorted(diffs, 0.025), hi: quantileSorted(diffs, 0.975) };
}

/** Why `variant` has no measured rows in this experiment: the skip or failure reason, or "no rows". */
export function whyMissing(run, variant) {
  const rows = run.summary.filter((r) => r.variant === variant && r.status !== 'ok');
  const anySkip = run.summaryAll.find((r) => r.variant === variant && r.status === 'skipped');
  const r = rows[0] ?? anySkip;
  if (r) return `${r.status}: ${r.note}`;
  return run.status?.state === 'complete' ? 'no rows for it in this folder' : 'no rows for it: the run did not get that far';
}
