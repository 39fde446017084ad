import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { formatBatchId } from '../contracts/batch-id';
import { STATUS_INDEX } from '../contracts/control-table';
import {
  archiveName,
  DEFAULT_NAMES,
  downstreamRuleName,
  downstreamWorkflowName,
  forwardRuleName,
  PROJECT,
  upstreamScheduleName,
  upstreamWorkflowName,
} from '../contracts/naming';
import { REGION_STACK } from '../contracts/regions';
import { OpsError } from './io';

/** Names fixed by the program with the default config (contracts/naming.ts). */
export const PLATFORM = {
  controlTable: DEFAULT_NAMES.controlTableName,
  statusIndex: STATUS_INDEX.name,
  busName: DEFAULT_NAMES.eventBusName,
  archiveName: archiveName(DEFAULT_NAMES.eventBusName),
  scheduleGroup: DEFAULT_NAMES.scheduleGroup,
  downstreamStateMachine: downstreamWorkflowName,
  upstreamStateMachine: upstreamWorkflowName,
  downstreamRule: downstreamRuleName,
  forwardRule: forwardRuleName,
  upstreamSchedule: upstreamScheduleName,
} as const;

/** The two stacks of the active-passive pair, region -> stack (contracts/regions.ts). The first is home. */
export const DEFAULT_STACKS: Readonly<Record<string, string>> = REGION_STACK;

export function knownRegions(stacks: Readonly<Record<string, string>> = DEFAULT_STACKS): string[] {
  return Object.keys(stacks);
}

export function assertRegion(
  region: string,
  stacks: Readonly<Record<string, string>> = DEFAULT_STACKS,
): string {
  if (!Object.prototype.hasOwnProperty.call(stacks, region)) {
    throw new OpsError(
      `Unknown region "${region}". This platform runs in: ${knownRegions(stacks).join(', ')}.`,
    );
  }
  return region;
}

/** Pipelines named in the committed stack config (Pulumi.<stack>.yaml, key etl-platform:pipelines). */
export function pipelinesFromStackFile(workDir: string, stack: string): string[] {
  const file = path.join(workDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) return [];
  const doc = parse(fs.readFileSync(file, 'utf8')) as { config?: Record<string, unknown> };
  const pipelines = doc?.config?.[`${PROJECT}:pipelines`];
  return Array.isArray(pipelines)
    ? pipelines.map((p) => String((p as { name?: unknown }).name)).filter(Boolean)
    : [];
}

/** A key of the project's namespace in the committed Pulumi.<stack>.yaml, as a string (undefined if unset). */
export function configFromStackFile(workDir: string, stack: string, key: string): string | undefined {
  const file = path.join(workDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) return undefined;
  const doc = parse(fs.readFileSync(file, 'utf8')) as { config?: Record<string, unknown> };
  const value = doc?.config?.[`${PROJECT}:${key}`];
  return value === undefined || value === null ? undefined : String(value);
}

const DURATION = /^(\d+)\s*([smhd])$/;
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A point in time from the command line: a duration back from now (`90m`, `24h`, `7d`), `now`,
 * or an ISO-8601 timestamp (`2026-11-27T02:00:00Z`).
 */
export function parseTime(value: string, now: Date, option = 'time'): Date {
  const text = value.trim();
  if (text === 'now') return new Date(now.getTime());
  const match = DURATION.exec(text);
  if (match) return new Date(now.getTime() - Number(match[1]) * UNIT_MS[match[2]]);
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const parsed = new Date(text);
    if (!Number.isNaN(parsed.getTime())) return parsed;
  }
  throw new OpsError(
    `Invalid ${option} "${value}": use a duration back from now (30m, 24h, 7d), "now", or an ISO-8601 time (2026-11-27T02:00:00Z).`,
  );
}

/** `policycenter-20261127T020000Z` for a pipeline and a time: the lower bound of a batch-id range. */
export function batchIdAt(pipeline: string, at: Date): string {
  return formatBatchId(pipeline, at);
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m`
    : m > 0
      ? `${m}m${String(sec).padStart(2, '0')}s`
      : `${sec}s`;
}
