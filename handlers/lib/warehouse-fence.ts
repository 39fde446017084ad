import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';

/**
 * The warehouse side of the fence: `CONTROL.FENCE` (one row: REGION, EPOCH, CHANGED_AT) in the
 * Snowflake account both regions share. Failover writes it BEFORE the DynamoDB fence
 * (docs/fence-and-locks.md, "Failover order").
 */
export interface WarehouseFenceRow {
  readonly region: string;
  readonly epoch: number;
}

export interface WarehouseFence {
  /** The fence row, or undefined when the table is empty. Throws when it holds more than one row. */
  read(): Promise<WarehouseFenceRow | undefined>;
  /**
   * Points the fence at (region, epoch) if that moves it forward; idempotent for the same pair.
   * Throws `WarehouseFenceRefused` when the fence already holds a newer epoch (or another region
   * at this epoch).
   */
  advance(region: string, epoch: number): Promise<WarehouseFenceRow>;
}

export class WarehouseFenceRefused extends Error {
  override name = 'WarehouseFenceRefused';
}

export const FENCE_TABLE = 'CONTROL.FENCE';

/** One statement with `?` placeholders and its positional bindings (Snowflake SQL API v2 style). */
export interface Statement {
  readonly sql: string;
  readonly bindings: ReadonlyArray<string | number>;
}

/** The SQL the real implementation sends, in order; tests run exactly these against the local warehouse. */
export const FENCE_SQL = {
  read: (): Statement => ({ sql: `SELECT REGION, EPOCH FROM ${FENCE_TABLE}`, bindings: [] }),
  /** Only forward: a row at a lower epoch moves; an equal or newer one is left alone. */
  update: (region: string, epoch: number): Statement => ({
    sql: `UPDATE ${FENCE_TABLE} SET REGION = ?, EPOCH = ?, CHANGED_AT = CURRENT_TIMESTAMP() WHERE EPOCH < ?`,
    bindings: [region, epoch, epoch],
  }),
  /** The first fence ever: only into an empty table. */
  insertFirst: (region: string, epoch: number): Statement => ({
    sql: `INSERT INTO ${FENCE_TABLE} (REGION, EPOCH, CHANGED_AT) SELECT ?, ?, CURRENT_TIMESTAMP() WHERE NOT EXISTS (SELECT 1 FROM ${FENCE_TABLE})`,
    bindings: [region, epoch],
  }),
} as const;

/** Runs one statement and returns its rows as strings (what the SQL API returns). */
export type RunStatement = (statement: Statement) => Promise<string[][]>;

/**
 * The fence over any statement runner: read, conditional update, insert-if-empty, read back. The
 * read-back decides: anything but (region, epoch) after the writes is a refusal.
 */
export class SqlWarehouseFence implements WarehouseFence {
  constructor(private readonly run: RunStatement) {}

  async read(): Promise<WarehouseFenceRow | undefined> {
    const rows = await this.run(FENCE_SQL.read());
    if (rows.length > 1)
      throw new WarehouseFenceRefused(
        `${FENCE_TABLE} holds ${rows.length} rows; it must hold one. Fix: delete all but the newest epoch`,
      );
    if (rows.length === 0) return undefined;
    return { region: String(rows[0][0]), epoch: Number(rows[0][1]) };
  }

  async advance(region: string, epoch: number): Promise<WarehouseFenceRow> {
    checkRow(region, epoch);
    await this.run(FENCE_SQL.update(region, epoch));
    await this.run(FENCE_SQL.insertFirst(region, epoch));
    const now = await this.read();
    if (!now || now.region !== region || now.epoch !== epoch) {
      throw new WarehouseFenceRefused(
        `${FENCE_TABLE} was not moved to ${region} epoch ${epoch}: it holds ${now ? `${now.region} epoch ${now.epoch}` : 'no row'} (it only moves forward)`,
      );
    }
    return now;
  }
}

export function checkRow(region: string, epoch: number): void {
  if (!/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(region))
    throw new Error(`warehouse fence region must be a region name, got ${JSON.stringify(region)}`);
  if (!Number.isSafeInteger(epoch) || epoch < 1)
    throw new Error(`warehouse fence epoch must be a whole number >= 1, got ${epoch}`);
}

// ---- Snowflake SQL API v2 with key-pair JWT (no driver: fetch and node:crypto)

/** The Snowflake secret's fields the SQL API needs (components/snowflake.ts). */
export interface SqlApiCredentials {
  readonly account: string;
  readonly user: string;
  readonly privateKey: string;
  readonly warehouse: string;
  readonly database: string;
  readonly role: string;
}

/**
 * A key-pair JWT for the SQL API: iss `<ACCOUNT>.<USER>.SHA256:<fingerprint of the public key>`,
 * sub `<ACCOUNT>.<USER>`, RS256, at most one hour (Snowflake's key-pair authentication rules).
 */
export function keyPairJwt(
  credentials: Pick<SqlApiCredentials, 'account' | 'user' | 'privateKey'>,
  now = new Date(),
): string {
  const key = createPrivateKey(credentials.privateKey);
  const der = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const fingerprint = `SHA256:${createHash('sha256').update(der).digest('base64')}`;
  const account = credentials.account.split('.')[0].toUpperCase();
  const user = credentials.user.toUpperCase();
  const iat = Math.floor(now.getTime() / 1000);
  const b64 = (value: object | Buffer) =>
    (Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value))).toString('base64url');
  const body = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: `${account}.${user}.${fingerprint}`, sub: `${account}.${user}`, iat, exp: iat + 3600 })}`;
  return `${body}.${b64(sign('RSA-SHA256', Buffer.from(body), key))}`;
}

/** The SQL API request for one statement. */
export function sqlApiRequest(
  credentials: SqlApiCredentials,
  statement: Statement,
  jwt: string,
  baseUrl?: string,
): { url: string; init: RequestInit } {
  const bindings = Object.fromEntries(
    statement.bindings.map((value, i) => [
      String(i + 1),
      typeof value === 'number' ? { type: 'FIXED', value: String(value) } : { type: 'TEXT', value },
    ]),
  );
  return {
    url: `${baseUrl ?? `https://${credentials.account}.snowflakecomputing.com`}/api/v2/statements`,
    init: {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${jwt}`,
        'X-Snowflake-Authorization-Token-Type': 'KEYPAIR_JWT',
        'Content-Type': 'application/json',
        Accept: 'application/json',
      },
      body: JSON.stringify({
        statement: statement.sql,
        timeout: 30,
        database: credentials.database,
        warehouse: credentials.warehouse,
        role: credentials.role,
        bindings,
      }),
    },
  };
}

/** A statement runner over the SQL API; each call is its own request (one statement each). */
export function sqlApiRunner(
  credentials: SqlApiCredentials,
  options: { baseUrl?: string; fetchImpl?: typeof fetch } = {},
): RunStatement {
  const fetchImpl = options.fetchImpl ?? fetch;
  return async (statement) => {
    const { url, init } = sqlApiRequest(credentials, statement, keyPairJwt(credentials), options.baseUrl);
    const response = await fetchImpl(url, { ...init, signal: AbortSignal.timeout(35_000) });
    const text = await response.text();
    if (response.status !== 200) {
      // 202 means still running after `timeout`: for these one-row statements that is a failure too.
      throw new Error(
        `Snowflake SQL API answered ${response.status} to "${statement.sql.slice(0, 60)}…": ${text.slice(0, 500)}`,
      );
    }
    return ((JSON.parse(text) as { data?: string[][] }).data ?? []) as string[][];
  };
}
