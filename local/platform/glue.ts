import { StatesError, type GlueJobRunOutcome } from '../sfn-local';

/**
 * Glue stand-in. The scenario sets each table's outcome; on success the run "writes" the job's
 * result object (glue/README.md: s3://<lake>/_runs/<pipeline>/<batchId>/[snowflake/]<table>.json)
 * where the workflow's s3:getObject reads it. The Glue scripts themselves are not run (they are
 * tested in glue/test_*.py).
 */

export type TableOutcome = 'ok' | 'fail';

export interface GlueRun {
  region: string;
  job: string;
  table: string;
  batchId: string;
  state: string;
}

interface Log {
  log(region: string, component: string, text: string, to?: string): void;
}

export class GlueWorld {
  readonly runs: GlueRun[] = [];
  readonly objects = new Map<string, unknown>();
  private readonly outcomes = new Map<string, TableOutcome>();
  /** Next N starts of any job are refused with ConcurrentRunsExceededException. */
  concurrencyExceeded = 0;
  /** Rows each table lands (default 100). */
  rows = new Map<string, number>();
  private watermarkSeq = 1_700_000_000_000;

  constructor(private readonly sink: Log) {}

  setOutcome(table: string, outcome: TableOutcome): void {
    this.outcomes.set(table, outcome);
  }

  run(region: string, params: Record<string, unknown>): GlueJobRunOutcome {
    const args = (params.Arguments ?? {}) as Record<string, string>;
    const jobName = String(params.JobName);
    const job = jobName.endsWith('cda-to-lake') ? 'cda' : 'sf';
    const table = args['--table'];
    const batchId = args['--batch_id'];
    const bucket = args['--lake_bucket'];
    if (this.concurrencyExceeded > 0) {
      this.concurrencyExceeded--;
      this.sink.log(region, `Glue ${jobName}`, `${table}: ConcurrentRunsExceededException (injected)`);
      throw new StatesError(
        'Glue.ConcurrentRunsExceededException',
        `Concurrent runs exceeded for ${jobName}`,
      );
    }
    const id = `jr_${job}_${table}_${this.runs.length + 1}`;
    const outcome = this.outcomes.get(table) ?? 'ok';
    this.runs.push({
      region,
      job: jobName,
      table,
      batchId,
      state: outcome === 'ok' ? 'SUCCEEDED' : 'FAILED',
    });
    if (outcome === 'fail') {
      this.sink.log(region, `Glue ${jobName}`, `${table}: run FAILED (scenario)`);
      return { JobRunState: 'FAILED', Id: id, ErrorMessage: `AnalysisException: table ${table} (injected)` };
    }
    const rows = this.rows.get(table) ?? 100;
    const base = {
      schemaVersion: 1,
      pipeline: args['--pipeline'],
      batchId,
      table,
      status: 'SUCCEEDED',
      rows,
      lakePath: `s3://${bucket}/raw/${args['--pipeline']}/${table}/batch_id=${batchId}/`,
      glueRunId: id,
      startedAt: '2026-11-27T07:01:00Z',
      completedAt: '2026-11-27T07:04:00Z',
    };
    const prefix = `${bucket}/_runs/${args['--pipeline']}/${batchId}/`;
    if (job === 'cda') {
      this.objects.set(`${prefix}${table}.json`, {
        ...base,
        job: 'cda_to_lake',
        previousWatermark: args['--watermark'],
        watermark: rows > 0 ? String(++this.watermarkSeq) : args['--watermark'],
        folders: [],
      });
    } else {
      this.objects.set(`${prefix}snowflake/${table}.json`, {
        ...base,
        job: 'lake_to_snowflake',
        target: `BASE.${table.toUpperCase()}`,
        upstreamRows: rows,
      });
    }
    return { JobRunState: 'SUCCEEDED', Id: id, ExecutionTime: 180 };
  }

  s3(action: string, params: Record<string, unknown>): unknown {
    if (action !== 'getObject') throw new StatesError('States.Runtime', `twin: s3:${action} not simulated`);
    const body = this.objects.get(`${String(params.Bucket)}/${String(params.Key)}`);
    if (body === undefined)
      throw new StatesError(
        'S3.NoSuchKeyException',
        `The specified key does not exist: ${String(params.Key)}`,
      );
    return { Body: JSON.stringify(body), ContentType: 'application/json' };
  }
}
