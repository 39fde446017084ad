import { RegionalPlatform, regionalProvider } from './components/regional-platform';
import { loadSettings } from './regions/settings';

// Validated before any resource is declared: a bad key stops here with every problem listed.
const settings = loadSettings();

const platform = new RegionalPlatform('etl', settings, { providers: { aws: regionalProvider(settings) } });

export const failover = platform.failover;
export const eventBusName = platform.bus.busName;
export const eventBusArn = platform.bus.busArn;
export const archiveName = platform.bus.archiveName;
export const controlTableName = platform.controlTable.tableName;
export const alertsTopicArn = platform.alerts.topicArn;
export const dbtApiUrl = platform.dbtApp.apiUrl;
export const dbtImageRepositoryUrl = platform.dbtImage.repositoryUrl;
