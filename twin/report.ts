import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ScenarioResult } from './scenarios';
import { formatEntry, formatTime, type TimelineEntry } from '../local/platform/twin';

/** Readable timeline, mermaid sequence diagrams and an HTML report (reports/, gitignored). */

export function printScenario(r: ScenarioResult, out: (line: string) => void = console.log): void {
  out('');
  out(`═══ ${r.name} — ${r.title}`);
  out('virtual time          region     component                           what happened');
  for (const e of r.timeline) out(formatEntry(e));
  out('');
  for (const c of r.checks) out(`  ${c.ok ? '✔' : '✘'} ${c.name} ${c.detail}`);
  if (r.table) {
    out('');
    for (const line of formatTable(r.table)) out(`  ${line}`);
  }
  const f = r.figures;
  out(
    `  figures: hops ${f.hops} · transitions ${f.transitions} · Lambda calls ${f.lambdaCalls} · dbt runs ${f.dbtRuns} · alerts ${f.alerts} · DLQ messages ${f.dlqMessages} · executions ${f.executions} · wall ${r.wallMs} ms`,
  );
}

/** Rows as an aligned text table: each column as wide as its widest cell, numbers right-aligned. */
export function formatTable(rows: ReadonlyArray<Record<string, string | number>>): string[] {
  const cols = Object.keys(rows[0] ?? {});
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((row) => String(row[c]).length)));
  const numeric = cols.map((c) => rows.every((row) => typeof row[c] === 'number'));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [
    line(cols),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((row) => line(cols.map((c) => String(row[c])))),
  ];
}

function participant(name: string): string {
  return name.replace(/[^A-Za-z0-9]/g, '_');
}

function label(text: string): string {
  return text
    .replace(/[;#<>]/g, ' ')
    .replace(/\s+/g, ' ')
    .slice(0, 90);
}

/** One sequence diagram: messages between components (long runs are sampled to stay readable). */
export function mermaidSequence(timeline: TimelineEntry[], maxMessages = 80): string {
  const lines = ['sequenceDiagram', '  autonumber'];
  const seen = new Map<string, string>();
  const declare = (region: string, comp: string) => {
    const key = comp.includes(region) || region === 'global' ? comp : `${comp} (${region})`;
    const id = participant(key);
    if (!seen.has(id)) {
      seen.set(id, key);
      lines.push(`  participant ${id} as ${label(key)}`);
    }
    return id;
  };
  const relevant = timeline.filter(
    (e) => e.to || /GOES DARK|BACK|ALERT|FAILED|SUCCEEDED|SKIPPED|DUPLICATE/.test(e.text),
  );
  const step = Math.max(1, Math.ceil(relevant.length / maxMessages));
  relevant.forEach((e, i) => {
    const important = /GOES DARK|BACK|ALERT|FAILED|DLQ|operator|pulumi|replay/.test(e.text + e.component);
    if (i % step !== 0 && !important) return;
    const from = declare(e.region, e.component);
    const text = `${formatTime(e.t).slice(11, 16)} ${label(e.text)}`;
    if (e.to) lines.push(`  ${from}->>${declare(e.region, e.to)}: ${text}`);
    else lines.push(`  Note over ${from}: ${text}`);
  });
  return lines.join('\n');
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

/** The browser build of mermaid from the npm package (a devDependency): one classic script, no CDN. */
export const MERMAID_SCRIPT = 'mermaid.min.js';

/**
 * Copies mermaid's browser bundle beside the reports (once per version), so a report opens
 * offline, from file://, with no network.
 */
export function copyMermaid(dir: string): string {
  const source = require.resolve(`mermaid/dist/${MERMAID_SCRIPT}`);
  const target = path.join(dir, MERMAID_SCRIPT);
  if (!fs.existsSync(target) || fs.statSync(target).size !== fs.statSync(source).size)
    fs.copyFileSync(source, target);
  return target;
}

export function writeHtmlReport(
  results: ScenarioResult[],
  dir = path.resolve(__dirname, '..', 'reports'),
): string {
  fs.mkdirSync(dir, { recursive: true });
  copyMermaid(dir);
  const file = path.join(dir, `twin-${new Date().toISOString().replace(/[:.]/g, '-')}.html`);
  const metricRows = results
    .map((r) => {
      const f = r.figures;
      const ok = r.checks.every((c) => c.ok);
      return `<tr><td>${escapeHtml(r.name)}</td><td>${ok ? '✔' : '✘'}</td><td>${f.hops}</td><td>${f.transitions}</td><td>${f.lambdaCalls}</td><td>${f.dbtRuns}</td><td>${f.alerts}</td><td>${f.dlqMessages}</td><td>${f.executions}</td><td>${r.wallMs}</td></tr>`;
    })
    .join('\n');
  const sections = results
    .map((r) => {
      const checks = r.checks
        .map(
          (c) =>
            `<li class="${c.ok ? 'ok' : 'bad'}">${c.ok ? '✔' : '✘'} ${escapeHtml(c.name)} <code>${escapeHtml(c.detail.slice(0, 300))}</code></li>`,
        )
        .join('\n');
      const table = r.table
        ? `<table><tr>${Object.keys(r.table[0] ?? {})
            .map((k) => `<th>${escapeHtml(k)}</th>`)
            .join('')}</tr>${r.table
            .map(
              (row) =>
                `<tr>${Object.values(row)
                  .map((v) => `<td>${escapeHtml(String(v))}</td>`)
                  .join('')}</tr>`,
            )
            .join('')}</table>`
        : '';
      const timeline = r.timeline.map((e) => escapeHtml(formatEntry(e))).join('\n');
      return `<section><h2>${escapeHtml(r.name)}</h2><p>${escapeHtml(r.title)}</p>
<pre class="mermaid">
${escapeHtml(mermaidSequence(r.timeline))}
</pre>
${table}<ul>${checks}</ul>
<details><summary>timeline (${r.timeline.length} entries)</summary><pre>${timeline}</pre></details></section>`;
    })
    .join('\n');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>etl-platform local twin</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child{text-align:left}.ok{color:#070}.bad{color:#b00}pre{font-size:12px;overflow:auto}</style>
<script src="${MERMAID_SCRIPT}"></script>
<script>mermaid.initialize({ startOnLoad: true, sequence: { useMaxWidth: false } });</script>
</head><body><h1>etl-platform — local twin report</h1>
<p>Both regions (us-east-1 active, us-west-1 passive) run from the program's own definitions, patterns, schedules and handlers; times are virtual.</p>
<table><tr><th>scenario</th><th>checks</th><th>hops</th><th>transitions</th><th>Lambda calls</th><th>dbt runs</th><th>alerts</th><th>DLQ messages</th><th>executions</th><th>wall ms</th></tr>
${metricRows}</table>
${sections}
</body></html>`;
  fs.writeFileSync(file, html);
  return file;
}
