/**
 * Prints the generated downstream workflow ASL (or one state of it) as JSON, built from the code
 * with example references, so docs quote what the program generates.
 *   npx ts-node --transpile-only scripts/print-asl.ts                  # the whole definition
 *   npx ts-node --transpile-only scripts/print-asl.ts ConsistencyCheck IsConsistent
 */
import { downstreamWorkflow, type DownstreamWorkflowRefs } from '../state-machines/downstream';

const account = '123456789012';
const region = 'us-east-1';
const fn = (name: string) => ({ arn: `arn:aws:lambda:${region}:${account}:function:etl-platform-${name}` });

export const EXAMPLE_REFS: DownstreamWorkflowRefs = {
  region,
  eventSource: 'com.insurer.etl-platform',
  pipeline: {
    name: 'policycenter',
    expectedTables: ['pc_policy', 'pc_claim'],
    dbtSelect: 'tag:policycenter',
  },
  controlTable: {
    name: 'etl-platform-control',
    arn: `arn:aws:dynamodb:${region}:${account}:table/etl-platform-control`,
  },
  functions: {
    batchContext: fn('batch-context'),
    checkConsistency: fn('check-consistency'),
    startDbtRun: fn('start-dbt-run'),
    getDbtRun: fn('get-dbt-run'),
  },
  bus: { arn: `arn:aws:events:${region}:${account}:event-bus/etl-platform` },
  alerts: { arn: `arn:aws:sns:${region}:${account}:etl-platform-alerts` },
  dbt: {
    maxRunMinutes: 240,
    maxQueueMinutes: 60,
    heartbeatSeconds: 300,
    maxLostRetries: 1,
    lockWaitMinutes: 60,
    lockLeaseMinutes: 15,
    replicationWaitMinutes: 5,
  },
};

const { definition } = downstreamWorkflow(EXAMPLE_REFS);
const names = process.argv.slice(2);
if (names.length === 0) {
  console.log(JSON.stringify(definition, null, 2));
} else {
  const missing = names.filter((n) => !(n in definition.States));
  if (missing.length > 0) {
    console.error(`No state ${missing.join(', ')}. States: ${Object.keys(definition.States).join(', ')}`);
    process.exit(1);
  }
  console.log(JSON.stringify(Object.fromEntries(names.map((n) => [n, definition.States[n]])), null, 2));
}
