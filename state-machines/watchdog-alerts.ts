import type * as pulumi from '@pulumi/pulumi';
import type { IamStatement } from '../contracts/iam';
import type { StateMachineDefinition } from './asl';
import { composeFragments, fragment, type Fragment } from './fragment';
import { assertGraph } from './graph';
import { choice, fail, snsPublish, succeed, workflow } from './tasks';

/**
 * The watchdog's alert workflow (docs/watchdog.md): the watchdog Lambda starts it with
 * `{subject, message}` instead of publishing to SNS itself, which keeps the SNS client out of the
 * Lambda's bundle. Its one real state is the SNS publish task, with the helper's retries.
 *
 *   CheckAlert ─ not {subject: string, message: string} ─▶ InvalidAlert (Fail)
 *        │
 *   PublishAlert (sns:publish, retried on throttling) ──▶ Published (Succeed)
 *        │ any error after the retries
 *   AlertNotPublished (Fail)
 *
 * A failed execution is alarmed (ExecutionsFailed on this machine, components/observability.ts),
 * and the CloudWatch alarm reaches the topic through CloudWatch, not through this workflow.
 * Happy path: CheckAlert, PublishAlert, Published = 3 transitions.
 */

/** The Fail state's error when SNS refused the alert after the task's retries. */
export const ALERT_NOT_PUBLISHED = 'AlertNotPublished';
/** The Fail state's error when the input is not `{subject, message}` strings. */
export const INVALID_ALERT = 'InvalidAlert';

/** Bounds a stuck execution: the publish retries take under two minutes. */
const TIMEOUT_SECONDS = 300;

export interface WatchdogAlertRefs {
  /** The alerts topic and the key it is encrypted with (the role gets exactly these). */
  readonly alertTopic: { readonly arn: pulumi.Input<string>; readonly kmsKeyArn?: pulumi.Input<string> };
}

const S = {
  check: 'CheckAlert',
  invalid: 'InvalidAlert',
  publish: 'PublishAlert',
  published: 'Published',
  notPublished: 'AlertNotPublished',
} as const;

/** The input guard: both fields present and strings, else the execution fails with InvalidAlert. */
function inputFragment(): Fragment {
  return fragment({
    name: 'watchdogAlerts/input',
    entries: [S.check],
    exits: [S.publish],
    states: {
      // Rules run in order: the IsPresent guards before any test reads the path (on AWS a type
      // test of a missing path fails the execution with States.Runtime).
      [S.check]: choice(
        [
          { Not: { Variable: '$.subject', IsPresent: true }, Next: S.invalid },
          { Not: { Variable: '$.message', IsPresent: true }, Next: S.invalid },
          {
            And: [
              { Variable: '$.subject', IsString: true },
              { Variable: '$.message', IsString: true },
            ],
            Next: S.publish,
          },
        ],
        S.invalid,
      ),
      [S.invalid]: fail({
        error: INVALID_ALERT,
        cause: 'the input is not {"subject": string, "message": string}; nothing was published',
      }),
    },
  });
}

/** The publish itself: the snsPublish helper's state, retries and IAM (sns:Publish, the key). */
function publishFragment(refs: WatchdogAlertRefs): Fragment {
  return fragment({
    name: 'watchdogAlerts/publish',
    entries: [S.publish],
    states: {
      [S.publish]: snsPublish(
        refs.alertTopic,
        { 'Subject.$': '$.subject', 'Message.$': '$.message' },
        { next: S.published, resultPath: null, catchTo: S.notPublished },
      ),
      [S.published]: succeed('The alert is on the topic.'),
      [S.notPublished]: fail({
        error: ALERT_NOT_PUBLISHED,
        cause:
          'SNS refused the alert after the task retries; its subject and message are this execution input, the SNS error is in its history',
      }),
    },
  });
}

/** The alert workflow's definition and the IAM its states need (its role gets exactly these). */
export function watchdogAlertWorkflow(refs: WatchdogAlertRefs): {
  definition: StateMachineDefinition;
  statements: IamStatement[];
} {
  const built = workflow({
    ...composeFragments([inputFragment(), publishFragment(refs)]),
    comment: 'Publishes one lateness-watchdog alert ({subject, message}) to the alerts topic',
    timeoutSeconds: TIMEOUT_SECONDS,
  });
  assertGraph(built.definition, 'watchdogAlertWorkflow');
  return built;
}
