/**
 * Compares the five trigger modes by EXECUTING what the program declares for each one.
 *   npm run compare-triggers      (writes docs/trigger-comparison.generated.md)
 *
 * For each mode: runs index.ts under the recording mocks (stack prod-east, us-east-1 active, pipeline
 * policycenter), extracts the recorded definitions, rule patterns/targets, schedules and Lambda
 * environments, and runs them locally (aws-local-stepfunctions + dynalite + the real handlers + the
 * fake dbt API) through tests/harness/trigger-fabric.ts for:
 *   1. one batch, from the upstream's success to the downstream's success;
 *   2. the same trigger delivered again (a duplicate of what that mode consumes);
 *   3. an idle day (no upstream batch): every trigger schedule ticks as often as its expression says.
 * Nothing here is typed in except the cited AWS limits; everything in the table is counted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TriggerMode } from '../regions/limits';
import { TRIGGER_BUILDERS, TRIGGER_MODE_NAMES } from '../components/triggers/registry';
import { UPSTREAM_STATES } from '../state-machines/upstream';
import { runProgram, ROOT } from '../tests/harness/program';
import {
  extractPlatform,
  LocalRegion,
  ticksPerDay,
  type ExecutionRecord,
} from '../tests/harness/trigger-fabric';

const PIPELINE = 'policycenter';
const SCHEDULED = '2026-11-27T07:00:00Z';
const BATCH = `${PIPELINE}-20261127T070000Z`;
const OUT = path.join(ROOT, 'docs', 'trigger-comparison.generated.md');

const UPSTREAM_TRIGGER_STATES = new Set<string>([
  UPSTREAM_STATES.startDownstream,
  UPSTREAM_STATES.alertDownstreamStart,
  UPSTREAM_STATES.downstreamStartFailed,
]);

interface Counts {
  triggerTransitions: number;
  downstreamTransitions: number;
  triggerLambdas: number;
  downstreamLambdas: number;
  scheduleInvocations: number;
}

interface ModeResult {
  mode: TriggerMode;
  hops: number;
  path: readonly string[];
  single: Counts;
  singleOutcome: string;
  duplicate: Counts & { what: string; outcomes: string[]; dbtRuns: number };
  idle: Counts & { ticks: number };
  forwarded: number;
  pollExpression?: string;
}

function outcomeOf(e: ExecutionRecord): string {
  const out = e.result?.output as { outcome?: string } | undefined;
  return e.result?.status === 'SUCCEEDED' ? (out?.outcome ?? 'SUCCEEDED') : `FAILED ${e.result?.error ?? ''}`;
}

function stateName(ev: { type: string; [key: string]: unknown }): string {
  return (ev.state as { name?: string } | undefined)?.name ?? '';
}

/** Counts from the execution logs (StateEntered + StateRetried) and the Lambda calls since `from`. */
function count(
  region: LocalRegion,
  from: { executions: number; lambdas: number; schedules: number },
): Counts {
  const downstream = `etl-${PIPELINE}-downstream`;
  const upstream = `etl-${PIPELINE}-upstream`;
  let triggerTransitions = 0;
  let downstreamTransitions = 0;
  for (const e of region.executions.slice(from.executions)) {
    const events = e.result?.events ?? [];
    if (e.machine === downstream) downstreamTransitions += e.result?.transitions ?? 0;
    else if (e.machine === upstream) {
      // Only the upstream's own trigger states (upstream-direct) count toward the trigger.
      triggerTransitions += events.filter(
        (ev) =>
          (ev.type === 'StateEntered' || ev.type === 'StateRetried') &&
          UPSTREAM_TRIGGER_STATES.has(stateName(ev)),
      ).length;
    } else triggerTransitions += e.result?.transitions ?? 0;
  }
  const calls = region.lambdaCalls.slice(from.lambdas);
  const triggerLambdas = calls.filter((c) => c.fn.startsWith('etl-start-ds-')).length;
  const downstreamLambdas = calls.filter(
    (c) => !c.fn.startsWith('etl-start-ds-') && c.path.length > 0,
  ).length;
  const scheduleInvocations = region.scheduleInvocations
    .slice(from.schedules)
    .filter((s) => !s.endsWith('-upstream')).length;
  return {
    triggerTransitions,
    downstreamTransitions,
    triggerLambdas,
    downstreamLambdas,
    scheduleInvocations,
  };
}

const mark = (r: LocalRegion) => ({
  executions: r.executions.length,
  lambdas: r.lambdaCalls.length,
  schedules: r.scheduleInvocations.length,
});

async function measure(mode: TriggerMode): Promise<ModeResult> {
  const run = await runProgram({
    stack: 'prod-east',
    activeRegion: 'us-east-1',
    config: { defaultTriggerMode: mode },
  });
  const platform = extractPlatform(run);
  const pollSchedule = platform.schedules.find((s) => s.name === `${PIPELINE}-downstream-poll`);
  const region = await LocalRegion.start(platform);
  try {
    // 1. one batch, end to end
    const m1 = mark(region);
    region.runUpstream(PIPELINE, SCHEDULED);
    await region.settle();
    if (pollSchedule) {
      region.tick(pollSchedule.name);
      await region.settle();
    }
    const single = count(region, m1);
    const ds = region.executions.filter((e) => e.machine === `etl-${PIPELINE}-downstream`);
    if (ds.length !== 1)
      throw new Error(
        `${mode}: expected one downstream execution, got ${ds.length}: ${JSON.stringify(region.executions.map((e) => [e.machine, e.result?.status, e.result?.error, e.result?.cause, e.result?.output]))}`,
      );
    const singleOutcome = outcomeOf(ds[0]);
    if (singleOutcome !== 'SUCCEEDED')
      throw new Error(`${mode}: downstream ended ${singleOutcome}: ${ds[0].result?.cause}`);
    const forwarded = region.forwarded.length;

    // 2. the same trigger again
    const m2 = mark(region);
    let what: string;
    const upstreamEvent = region.published.find(
      (p) => p.event['detail-type'] === 'UpstreamBatchSucceeded',
    )?.event;
    if (!upstreamEvent) throw new Error(`${mode}: the upstream published no UpstreamBatchSucceeded`);
    if (pollSchedule) {
      what = 'the poll schedule ticks again';
      region.tick(pollSchedule.name);
    } else if (TRIGGER_BUILDERS[mode].upstreamStartsDownstream) {
      what = 'the upstream schedule delivers the same scheduled time again';
      region.runUpstream(PIPELINE, SCHEDULED);
    } else {
      what = 'EventBridge delivers the same UpstreamBatchSucceeded event again';
      region.deliver(upstreamEvent, []);
    }
    await region.settle();
    const duplicate = {
      ...count(region, m2),
      what,
      outcomes: region.executions.slice(m2.executions).map((e) => `${e.machine}: ${outcomeOf(e)}`),
      dbtRuns: region.api.runsFor(BATCH).length,
    };

    // 3. an idle day: no batch; every trigger schedule ticks as its expression says
    const m3 = mark(region);
    let ticks = 0;
    if (pollSchedule) {
      ticks = ticksPerDay(pollSchedule.expression);
      for (let i = 0; i < ticks; i++) {
        region.tick(pollSchedule.name);
        await region.settle();
      }
    }
    const idle = { ...count(region, m3), ticks };

    return {
      mode,
      hops: ds[0].path.length,
      path: ds[0].path,
      single,
      singleOutcome,
      duplicate,
      idle,
      forwarded,
      pollExpression: pollSchedule?.expression,
    };
  } finally {
    await region.close();
  }
}

const DOCS = {
  ebDlq: 'https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html',
  sfnPricing: 'https://aws.amazon.com/step-functions/pricing/',
};

function latency(r: ModeResult): string {
  return TRIGGER_BUILDERS[r.mode].latency({ pollExpression: r.pollExpression });
}

function render(results: ModeResult[]): string {
  const lines: string[] = [];
  lines.push(
    '<!-- Generated by `npm run compare-triggers` (scripts/compare-triggers.ts). Do not edit by hand. -->',
  );
  lines.push('# Trigger modes compared (generated)');
  lines.push('');
  lines.push(
    `Measured by executing, for each mode, the definitions, rule patterns, targets and schedules that \`index.ts\` declares under mocks (stack prod-east, us-east-1 active), pipeline \`${PIPELINE}\`, batch \`${BATCH}\`, with aws-local-stepfunctions, dynalite, the real Lambda handlers and the fake dbt API. Transitions = StateEntered + StateRetried (what Step Functions bills). "Trigger" counts exclude the upstream's own states except its StartDownstream path (upstream-direct) and exclude the downstream workflow, which is the same listener in every mode.`,
  );
  lines.push('');
  lines.push('## One batch: upstream success → downstream success');
  lines.push('');
  lines.push(
    '| mode | hops to downstream start | path | trigger transitions | trigger Lambda calls | trigger schedule invocations | downstream transitions | downstream Lambda calls | downstream outcome |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    lines.push(
      `| \`${r.mode}\` | ${r.hops} | ${r.path.join(' ⇒ ')} | ${r.single.triggerTransitions} | ${r.single.triggerLambdas} | ${r.single.scheduleInvocations} | ${r.single.downstreamTransitions} | ${r.single.downstreamLambdas} | ${r.singleOutcome} |`,
    );
  }
  lines.push('');
  lines.push('## The same trigger delivered twice');
  lines.push('');
  lines.push(
    '| mode | duplicate simulated | executions it started (outcome) | extra trigger transitions | extra downstream transitions | extra Lambda calls | dbt runs for the batch |',
  );
  lines.push('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const d = r.duplicate;
    lines.push(
      `| \`${r.mode}\` | ${d.what} | ${d.outcomes.join('; ') || 'none'} | ${d.triggerTransitions} | ${d.downstreamTransitions} | ${d.triggerLambdas + d.downstreamLambdas} | ${d.dbtRuns} |`,
    );
  }
  lines.push('');
  lines.push('## An idle day (no batch), per pipeline');
  lines.push('');
  lines.push(
    '| mode | schedule invocations / day | state transitions / day | Lambda calls / day | transitions / 30 days |',
  );
  lines.push('|---|---|---|---|---|');
  for (const r of results) {
    const t = r.idle.triggerTransitions + r.idle.downstreamTransitions;
    lines.push(
      `| \`${r.mode}\` | ${r.idle.scheduleInvocations} | ${t} | ${r.idle.triggerLambdas + r.idle.downstreamLambdas} | ${t * 30} |`,
    );
  }
  lines.push('');
  lines.push(
    `Standard workflows are billed per state transition ([pricing](${DOCS.sfnPricing})); multiply per-pipeline figures by the number of configured pipelines.`,
  );
  lines.push('');
  lines.push('## Worst-case trigger latency (cited, not measured)');
  lines.push('');
  lines.push('| mode | added latency from upstream success to downstream start |');
  lines.push('|---|---|');
  for (const r of results) lines.push(`| \`${r.mode}\` | ${latency(r)} |`);
  lines.push('');
  lines.push(
    `Events that exhaust a rule target's retries go to the target's DLQ ([EB DLQ](${DOCS.ebDlq})). AWS publishes no delivery-latency SLA for EventBridge rules.`,
  );
  lines.push('');
  lines.push(
    `Cross-region forwarding (every mode, active region only) forwarded ${results[0].forwarded} event(s) in the one-batch run of \`${results[0].mode}\`; it is not a trigger hop.`,
  );
  lines.push('');
  return lines.join('\n');
}

async function main(): Promise<void> {
  const results: ModeResult[] = [];
  for (const mode of process.env.MODES
    ? (process.env.MODES.split(',') as TriggerMode[])
    : TRIGGER_MODE_NAMES) {
    process.stderr.write(`compare-triggers: ${mode}\n`);
    results.push(await measure(mode));
  }
  fs.writeFileSync(OUT, render(results));
  process.stderr.write(`compare-triggers: wrote ${path.relative(ROOT, OUT)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
