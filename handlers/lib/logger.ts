import { Logger } from '@aws-lambda-powertools/logger';
import { HANDLER_ENV } from '../../contracts/env';
import { readEnv } from './env';

/**
 * One Powertools logger per container. The level comes from POWERTOOLS_LOG_LEVEL (default INFO);
 * tests silence it with `logger.setLogLevel('SILENT')`.
 */
export const logger = new Logger({
  serviceName: readEnv(HANDLER_ENV.POWERTOOLS_SERVICE_NAME) ?? 'etl-handlers',
});

/** The Lambda context type Powertools expects, without depending on @types/aws-lambda directly. */
export type LambdaContext = Parameters<Logger['addContext']>[0];

/** Adds the Lambda context (request id, function name, cold start) when there is one. */
export function withContext(context: LambdaContext | undefined, keys: Record<string, unknown> = {}): void {
  if (context) logger.addContext(context);
  logger.resetKeys?.();
  logger.appendKeys(keys);
}
