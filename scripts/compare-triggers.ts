/**
 * Compares the five trigger modes by EXECUTING what the program declares for each one.
 *   npm run compare-triggers      (writes docs/trigger-comparison.generated.md)
 *
 * For each mode: starts the local platform (local/platform/twin.ts: index.ts run under the recording
 * mocks for both stacks with us-east-1 active, the recorded definitions, rule patterns/targets,
 * schedules and Lambda environments run on aws-local-stepfunctions, dynalite replicas, the real
 * handlers and the fake dbt API) and measures, in us-east-1 for pipeline policycenter:
 *   1. one batch, from the upstream's success to the downstream's success;
 *   2. the same trigger delivered again (a duplicate of what that mode consumes);
 *   3. an idle day (no upstream batch): every trigger schedule ticks as often as its expression says.
 * Nothing here is typed in except the cited AWS limits; everything in the table is counted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TRIGGER_BUILDERS, TRIGGER_MODE_NAMES } from '../components/triggers/registry';
import { UPSTREAM_BATCH_SUCCEEDED } from '../contracts/events';
import { downstreamWorkflowName, upstreamWorkflowName } from '../contracts/naming';
import type { TriggerMode } from '../contracts/trigger-modes';
import { UPSTREAM_STATES } from '../state-machines/upstream';
import { firings } from '../local/platform/clock';
import type { ExtractedSchedule } from '../local/extract';
import { ROOT } from '../local/program';
import { Twin, type ExecutionRecord, type Region, type TriggerPath } from '../local/platform/twin';

const PIPELINE = 'policycenter';
const REGION = 'us-east-1';
const SCHEDULED = '2026-11-27T07:00:00Z';
const BATCH = `${PIPELINE}-20261127T070000Z`;
const DOWNSTREAM = downstreamWorkflowName(PIPELINE);
const UPSTREAM = upstreamWorkflowName(PIPELINE);
const OUT = path.join(ROOT, 'docs', 'trigger-comparison.generated.md');

const UPSTREAM_TRIGGER_STATES: readonly string[] = [
  UPSTREAM_STATES.startDownstream,
  UPSTREAM_STATES.alertDownstreamStart,
  UPSTREAM_STATES.downstreamStartFailed,
];

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
  path: TriggerPath;
  single: Counts;
  singleOutcome: string;
  duplicate: Counts & { what: string; outcomes: string[]; dbtRuns: number };
  idle: Counts & { ticks: number };
  forwarded: number;
  pollExpression?: string;
}

function outcomeOf(e: ExecutionRecord): string {
  const out = e.output as { outcome?: string } | undefined;
  return e.status === 'SUCCEEDED' ? (out?.outcome ?? 'SUCCEEDED') : `${e.status} ${e.error ?? ''}`;
}

/** How far each log had grown: counts are taken from there on. */
interface Mark {
  executions: number;
  lambdas: number;
  schedules: number;
}

const mark = (twin: Twin, region: Region): Mark => ({
  executions: region.executions.length,
  lambdas: twin.lambdaInvocations.length,
  schedules: twin.scheduleFirings.length,
});

/** Counts from the executions' transitions (StateEntered + StateRetried) and the Lambda calls since `from`. */
function count(twin: Twin, region: Region, from: Mark): Counts {
  let triggerTransitions = 0;
  let downstreamTransitions = 0;
  for (const e of region.executions.slice(from.executions)) {
    if (e.stateMachine === DOWNSTREAM) downstreamTransitions += e.transitions;
    else if (e.stateMachine === UPSTREAM) {
      // Only the upstream's own trigger states (upstream-direct) count toward the trigger.
      for (const state of UPSTREAM_TRIGGER_STATES) triggerTransitions += e.transitionsByState[state] ?? 0;
    } else triggerTransitions += e.transitions;
  }
  const calls = twin.lambdaInvocations.slice(from.lambdas).filter((c) => c.region === region.region);
  return {
    triggerTransitions,
    downstreamTransitions,
    triggerLambdas: calls.filter((c) => c.fn.startsWith('etl-start-ds-')).length,
    downstreamLambdas: calls.filter((c) => c.caller === DOWNSTREAM).length,
    scheduleInvocations: twin.scheduleFirings.slice(from.schedules).filter((f) => f.region === region.region)
      .length,
  };
}

/** The upstream run for the scheduled time, started directly (the trigger path starts after it). */
function runUpstream(region: Region): void {
  region.startExecution({
    stateMachineArn: region.machineByName(UPSTREAM).arn,
    input: JSON.stringify({ pipeline: PIPELINE, scheduledTime: SCHEDULED }),
  });
}

/** One Scheduler invocation of `schedule` now, and everything it starts. */
async function tick(twin: Twin, region: Region, schedule: ExtractedSchedule): Promise<void> {
  await twin.fireSchedule(region, schedule, twin.clock.now());
  await twin.idle();
}

/** 1. One batch, end to end: the downstream it started, by which path. */
async function oneBatch(twin: Twin, region: Region, mode: TriggerMode, poll?: ExtractedSchedule) {
  const from = mark(twin, region);
  runUpstream(region);
  await twin.idle();
  if (poll) await tick(twin, region, poll);
  const single = count(twin, region, from);
  const ds = region.executions.filter((e) => e.stateMachine === DOWNSTREAM);
  if (ds.length !== 1)
    throw new Error(
      `${mode}: expected one downstream execution, got ${ds.length}: ${JSON.stringify(region.executions.map((e) => [e.stateMachine, e.status, e.error, e.cause, e.output]))}`,
    );
  const singleOutcome = outcomeOf(ds[0]);
  if (singleOutcome !== 'SUCCEEDED')
    throw new Error(`${mode}: downstream ended ${singleOutcome}: ${ds[0].cause}`);
  const forwarded = region.bus.deliveries.filter((d) => d.rule.startsWith('forward-to-')).length;
  return { single, singleOutcome, forwarded, downstream: ds[0] };
}

/** 2. The same trigger again, as each mode would see a duplicate. */
async function duplicateTrigger(twin: Twin, region: Region, mode: TriggerMode, poll?: ExtractedSchedule) {
  const from = mark(twin, region);
  const upstreamEvent = region.bus.accepted.find((e) => e['detail-type'] === UPSTREAM_BATCH_SUCCEEDED);
  if (!upstreamEvent) throw new Error(`${mode}: the upstream published no ${UPSTREAM_BATCH_SUCCEEDED}`);
  let what: string;
  if (poll) {
    what = 'the poll schedule ticks again';
    await twin.fireSchedule(region, poll, twin.clock.now());
  } else if (TRIGGER_BUILDERS[mode].upstreamStartsDownstream) {
    what = 'the upstream schedule delivers the same scheduled time again';
    runUpstream(region);
  } else {
    what = `EventBridge delivers the same ${UPSTREAM_BATCH_SUCCEEDED} event again`;
    region.bus.redeliver(upstreamEvent);
  }
  await twin.idle();
  return {
    ...count(twin, region, from),
    what,
    outcomes: region.executions.slice(from.executions).map((e) => `${e.stateMachine}: ${outcomeOf(e)}`),
    dbtRuns: region.dbt.runsFor(BATCH).length,
  };
}

/** 3. An idle day: no batch; the trigger's schedule (if any) ticks as its expression says. */
async function idleDay(twin: Twin, region: Region, poll?: ExtractedSchedule) {
  const from = mark(twin, region);
  const start = twin.clock.now();
  const ticks = poll ? firings(poll.expression, poll.timezone, start, start + 86_400_000) : [];
  for (const at of ticks) {
    twin.clock.set(at);
    await tick(twin, region, poll!);
  }
  return { ...count(twin, region, from), ticks: ticks.length };
}

async function measure(mode: TriggerMode): Promise<ModeResult> {
  const twin = await Twin.start({
    activeRegion: REGION,
    start: SCHEDULED,
    config: { defaultTriggerMode: mode },
  });
  try {
    const region = twin.region(REGION);
    const poll = region.schedules.find((s) => s.name === `${PIPELINE}-downstream-poll`);
    const { single, singleOutcome, forwarded, downstream } = await oneBatch(twin, region, mode, poll);
    const duplicate = await duplicateTrigger(twin, region, mode, poll);
    const idle = await idleDay(twin, region, poll);
    return {
      mode,
      hops: downstream.path.length,
      path: downstream.path,
      single,
      singleOutcome,
      duplicate,
      idle,
      forwarded,
      pollExpression: poll?.expression,
    };
  } finally {
    await twin.close();
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
