import { iamRoleName } from '../../contracts/naming';
import { pollerWorkflow } from '../../state-machines/poller';
import { Workflow } from '../workflow';
import { WorkflowSchedule } from '../workflow-schedule';
import { AWS_DOCS } from './rule-with-target';
import { NO_TRIGGER_PARTS, type TriggerBuilder } from './types';

/**
 * `schedule-poll`: no event in the path. A schedule runs a poller workflow that reads the control
 * table for succeeded upstream batches whose downstream has not started, and starts them.
 */
export const schedulePoll: TriggerBuilder = {
  upstreamStartsDownstream: false,
  latency: ({ pollExpression }) =>
    `up to one poll interval (\`${pollExpression}\`) plus Scheduler's 1-minute precision [Scheduler](${AWS_DOCS.scheduler})`,
  build(name, args, parent) {
    const built = pollerWorkflow({
      table: args.controlTable,
      pipeline: args.pipeline,
      downstream: { arn: args.downstreamArn },
      eventSource: args.eventSource,
      batchLimit: args.options.pollBatchLimit,
    });
    const poller = new Workflow(
      `${name}-poller`,
      {
        ...built,
        purpose: `${args.pipeline}-poller`,
        region: args.region,
        logLevel: args.logLevel,
        logRetentionDays: args.logRetentionDays,
        tags: args.tags,
      },
      { parent },
    );
    const scheduleName = `${args.pipeline}-downstream-poll`;
    const poll = new WorkflowSchedule(
      `${name}-poll`,
      {
        scheduleName,
        groupName: args.scheduleGroupName,
        description: `Polls for ${args.pipeline} batches whose downstream has not started`,
        expression: args.options.pollExpression,
        timezone: 'UTC',
        flexibleWindowMinutes: 0,
        state: args.scheduleState,
        targetArn: poller.arn,
        input: JSON.stringify({ pipeline: args.pipeline }),
        retry: args.scheduleRetry,
        roleName: iamRoleName(`poll-${args.pipeline}`, args.region),
        accountId: args.account.accountId,
        alarmTopicArn: args.alarmTopicArn,
        tags: args.tags,
      },
      { parent },
    );
    return {
      ...NO_TRIGGER_PARTS,
      toggles: [{ kind: 'schedule', name: scheduleName, state: args.scheduleState }],
      workflows: [poller],
      dlqNames: [poll.dlq.queue.name],
    };
  },
};
