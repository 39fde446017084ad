import { FENCE_ATTRIBUTE_KEY } from '../contracts/control-table';
import type { BooleanExpression, Path } from './asl';
import { dynamoGetItem, type DynamoTable, type TaskOptions, type TaskResult } from './tasks';

// The fence item (docs/fence-and-locks.md) as both workflows read it: the upstream before any
// write or Glue job and before each Snowflake load, the downstream at entry, before dbt starts and
// before recording success.

/** A strongly consistent GetItem of the fence item (its key: contracts/control-table.ts). */
export function readFenceItem(table: DynamoTable, opts: TaskOptions): TaskResult {
  return dynamoGetItem(table, { Key: FENCE_ATTRIBUTE_KEY, ConsistentRead: true }, opts);
}

/** The fence item read at `path` (a GetItem result) names a region and an epoch N >= 1. */
export function fenceValid(path: Path): BooleanExpression[] {
  return [
    { Variable: `${path}.Item.activeRegion.S`, IsPresent: true },
    { Not: { Variable: `${path}.Item.activeRegion.S`, StringEquals: '' } },
    { Variable: `${path}.Item.epoch.N`, IsPresent: true },
    // DynamoDB normalises N: "0", negatives and fractions are the only ways to be below 1.
    { Not: { Variable: `${path}.Item.epoch.N`, StringEquals: '0' } },
    { Not: { Variable: `${path}.Item.epoch.N`, StringMatches: '-*' } },
    { Not: { Variable: `${path}.Item.epoch.N`, StringMatches: '*.*' } },
  ];
}

/**
 * The fence item read at `path` still names the region and epoch of the fence the work was
 * claimed under (`claimed`: the item's attributes, e.g. `$.fenceItem.Item`).
 */
export function fenceUnchanged(path: Path, claimed: Path): BooleanExpression {
  return {
    And: [
      { Variable: `${path}.Item.activeRegion.S`, IsPresent: true },
      { Variable: `${path}.Item.epoch.N`, IsPresent: true },
      { Variable: `${path}.Item.activeRegion.S`, StringEqualsPath: `${claimed}.activeRegion.S` },
      { Variable: `${path}.Item.epoch.N`, StringEqualsPath: `${claimed}.epoch.N` },
    ],
  };
}
