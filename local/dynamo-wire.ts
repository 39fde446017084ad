/**
 * The typed boundary between raw DynamoDB JSON-protocol bodies (as the proxy sees them on the wire)
 * and the engine: parse, narrow, and convert keys to the SDK's AttributeValue shape. Nothing past
 * this module handles `unknown` request bodies.
 */
import type { AttributeValue, KeySchemaElement } from '@aws-sdk/client-dynamodb';

/** The service prefix of every `X-Amz-Target` header the SDK sends to DynamoDB. */
export const TARGET_PREFIX = 'DynamoDB_20120810.';
/** Error `__type` namespace the DynamoDB JSON protocol uses. */
export const ERROR_NAMESPACE = 'com.amazonaws.dynamodb.v20120810#';

/** A key as the SDK wants it (binary values decoded). */
export type SdkKey = Record<string, AttributeValue>;

/** One item-level write the proxy saw succeed. */
export interface WrittenKey {
  readonly table: string;
  readonly key: SdkKey;
  readonly keyId: string;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, fix: string): never {
  throw new Error(`replicated-dynamo: cannot read ${where} from the request body; ${fix}`);
}

/** Parses a request or response body as a JSON object ({} for an empty body). */
export function parseBody(raw: Buffer, what: string): Json {
  if (raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new Error(
      `replicated-dynamo: ${what} is not JSON (${(e as Error).message}); send DynamoDB JSON protocol`,
    );
  }
  if (!isObject(parsed)) fail(what, 'the DynamoDB JSON protocol sends an object');
  return parsed;
}

/**
 * Picks the key attributes out of a wire item or key, decoding binary (base64 on the wire) so the
 * key can be sent again through the SDK.
 */
export function keyFromWire(table: string, attrs: unknown, schema: readonly KeySchemaElement[]): WrittenKey {
  if (!isObject(attrs)) fail(`the key of a write to table ${table}`, 'send Item or Key as an attribute map');
  const key: SdkKey = {};
  const parts: string[] = [];
  for (const { AttributeName: name } of schema) {
    if (name === undefined) continue;
    const av = attrs[name];
    if (!isObject(av)) fail(`key attribute ${name} of table ${table}`, `include ${name} in Item/Key`);
    if (typeof av.S === 'string') {
      key[name] = { S: av.S };
      parts.push(`S:${av.S}`);
    } else if (typeof av.N === 'string') {
      key[name] = { N: av.N };
      parts.push(`N:${av.N}`);
    } else if (typeof av.B === 'string') {
      key[name] = { B: Buffer.from(av.B, 'base64') };
      parts.push(`B:${av.B}`);
    } else {
      fail(`key attribute ${name} of table ${table}`, 'key attributes are S, N or B');
    }
  }
  return { table, key, keyId: keyIdOf(table, parts) };
}

/** Canonical id of one item: table plus its key values in key-schema order. */
export function keyIdOf(table: string, parts: readonly string[]): string {
  return JSON.stringify([table, ...parts]);
}

/** The same canonical id, from an SDK-shaped key (as read back). */
export function keyIdFromSdk(table: string, key: SdkKey, schema: readonly KeySchemaElement[]): string {
  const parts = schema.map(({ AttributeName: name }) => {
    const av = name === undefined ? undefined : key[name];
    if (av?.S !== undefined) return `S:${av.S}`;
    if (av?.N !== undefined) return `N:${av.N}`;
    if (av?.B !== undefined) return `B:${Buffer.from(av.B).toString('base64')}`;
    throw new Error(`replicated-dynamo: key attribute ${name} of table ${table} is missing or not S/N/B`);
  });
  return keyIdOf(table, parts);
}

function tableName(body: Json, op: string): string {
  if (typeof body.TableName !== 'string') fail(`TableName of ${op}`, 'set TableName');
  return body.TableName;
}

/** Key schema lookup; throws naming the table when it is not one the engine created. */
export type SchemaOf = (table: string) => readonly KeySchemaElement[];

/**
 * The items a successful write touched. For BatchWriteItem, requests the response lists as
 * `UnprocessedItems` did not happen and are left out.
 */
export function writtenKeys(op: string, request: Json, response: Json, schemaOf: SchemaOf): WrittenKey[] {
  switch (op) {
    case 'PutItem': {
      const table = tableName(request, op);
      return [keyFromWire(table, request.Item, schemaOf(table))];
    }
    case 'UpdateItem':
    case 'DeleteItem': {
      const table = tableName(request, op);
      return [keyFromWire(table, request.Key, schemaOf(table))];
    }
    case 'BatchWriteItem': {
      const unprocessed = new Set(batchKeys(response.UnprocessedItems, schemaOf).map((k) => k.keyId));
      return batchKeys(request.RequestItems, schemaOf).filter((k) => !unprocessed.has(k.keyId));
    }
    default:
      throw new Error(`replicated-dynamo: ${op} is not a replicated write`);
  }
}

function batchKeys(requestItems: unknown, schemaOf: SchemaOf): WrittenKey[] {
  if (requestItems === undefined) return [];
  if (!isObject(requestItems))
    fail('RequestItems of BatchWriteItem', 'send a map of table name to write requests');
  const keys: WrittenKey[] = [];
  for (const [table, requests] of Object.entries(requestItems)) {
    if (!Array.isArray(requests)) fail(`RequestItems.${table}`, 'send a list of PutRequest/DeleteRequest');
    const schema = schemaOf(table);
    for (const r of requests) {
      if (isObject(r) && isObject(r.PutRequest)) keys.push(keyFromWire(table, r.PutRequest.Item, schema));
      else if (isObject(r) && isObject(r.DeleteRequest))
        keys.push(keyFromWire(table, r.DeleteRequest.Key, schema));
      else
        fail(
          `a request in RequestItems.${table}`,
          'each entry is {PutRequest:{Item}} or {DeleteRequest:{Key}}',
        );
    }
  }
  return keys;
}

/** A DynamoDB JSON-protocol error body, as the SDK's error parser reads it. */
export function errorBody(type: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ __type: `${ERROR_NAMESPACE}${type}`, message }), 'utf8');
}
